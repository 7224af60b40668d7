//! A text key whose collation is not the database's default orders its keys otherwise than
//! mig's `_mig_runs.checkpoint_text` would: with `en-x-icu`, `Z` sorts after `k50`, in the
//! database's `C.UTF-8` before it. A read-compute-write batch once advanced the checkpoint by
//! the default order, kept `k50` after its batch ending at `Z`, and the next batch stopped
//! the run: "run N moved on without this process".
mod common;

use common::{stderr, stdout, Backend, Project, Setup};

/// 54 rows keyed so that the ICU order (a, B, é, k1 … k50, Z) and the byte order differ.
const TABLE: &str =
    "CREATE TABLE tk (id text COLLATE \"en-x-icu\" PRIMARY KEY, v integer, w integer);\n\
     INSERT INTO tk SELECT 'k' || g, g, NULL FROM generate_series(1, 50) AS g;\n\
     INSERT INTO tk VALUES ('B', 51, NULL), ('a', 52, NULL), ('Z', 53, NULL), ('é', 54, NULL);\n";

/// The pushed-down backfill, then a read-compute-write migration (`lower` depends on the
/// database's ctype), both in batches of 7.
const SPEC: &str = "backfill w on tk {\n    set w = v * 2\n    batch 7\n}\n\
     migrate bump on tk {\n    set v = v + 1\n    where lower(id) = id\n    batch 7\n}\n";

#[test]
fn a_text_key_of_another_collation_than_the_databases_is_walked_to_its_end() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let setup = Setup {
        sqlite: "",
        postgres: TABLE,
    };
    let project = Project::on(&Backend::Postgres(url), &setup, SPEC);
    for migration in ["tk.w", "bump"] {
        let out = project.mig(&["run", migration]);
        assert!(
            out.status.success(),
            "{migration}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    assert_eq!(
        project.query("SELECT count(*) FROM tk WHERE w IS NULL"),
        ["0"]
    );
    assert_eq!(
        project.query("SELECT count(*) FROM tk WHERE w = (v - 1) * 2 AND lower(id) = id"),
        ["52"],
        "every lower-case key was bumped once, after its backfill"
    );
    assert_eq!(
        project.query("SELECT string_agg(id, ',' ORDER BY id) FROM tk WHERE w = v * 2"),
        ["B,Z"],
        "the upper-case keys were backfilled and not bumped"
    );
}

/// A declared key whose only unique index compares in another collation than the column
/// (a case-insensitive column, unique in bytes) holds 'abc' and 'ABC', which the walk and
/// the rollback, comparing in the column's collation, take for one key. Refused as a key.
#[test]
fn a_declared_key_unique_only_in_another_collation_is_refused() {
    let spec = "table h key code\n\nmigrate mark on h {\n    set note = note || '!'\n}\n";
    let Some(project) = Project::postgres(
        "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
                   CREATE TABLE h (code text COLLATE ci NOT NULL, note text);
                   CREATE UNIQUE INDEX h_code ON h (code COLLATE \"C\");
                   INSERT INTO h VALUES ('abc', 'n1'), ('ABC', 'n2');",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["run", "mark"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not both NOT NULL and unique by an index of its own"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM h WHERE note LIKE '%!'"),
        ["0"]
    );
}
