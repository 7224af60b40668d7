//! Columns declared with a domain on PostgreSQL: read, written, walked and restored as the
//! type under the domain (through a domain over a domain, with the inner one's length),
//! while the server checks the domain's own constraints on every value written, so a value a
//! domain refuses stops the run before its batch commits, as a table's CHECK does. Before,
//! every domain column was refused as a type mig cannot read.
mod common;

use common::{envelope, reply_to, stderr, Project};
use serde_json::json;

/// Keyed by a domain over integer; `n` a domain with a CHECK, `code` a domain over a domain
/// over `varchar(3)`, `tag` a domain NOT NULL, `payload` a domain over jsonb, which mig
/// cannot read.
const TABLE: &str = "CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
     CREATE DOMAIN code3 AS varchar(3);
     CREATE DOMAIN product_code AS code3 CHECK (VALUE <> 'ZZ');
     CREATE DOMAIN document AS jsonb;
     CREATE DOMAIN required AS text NOT NULL;
     CREATE TABLE items (id positive PRIMARY KEY, n positive, name text, code product_code,
                         label text, payload document, tag required);
     INSERT INTO items SELECT i, i, 'item' || i, NULL, NULL, '{}', 'x'
     FROM generate_series(1, 40) AS i;";

const SPEC: &str =
    "backfill label on items {\n    set label = name || '/' || n\n    batch 7\n}\n\n\
     migrate bump on items {\n    set n = n + 1\n    batch 7\n}\n\n\
     backfill code on items {\n    set code = upper(substr(name, 1, 2))\n    batch 7\n}\n\n\
     migrate shrink on items {\n    set n = n - 30\n    batch 7\n}\n\n\
     migrate untag on items {\n    set tag = null\n    where id = 9\n    batch 7\n}\n";

fn project() -> Option<Project> {
    Project::postgres(TABLE, SPEC)
}

#[test]
fn domain_columns_are_walked_written_on_both_paths_and_restored() {
    let Some(project) = project() else {
        return;
    };
    let before = project.dump("items");
    project.mig_ok(&["check", "specs/test.mig"]);
    let plan = project.mig_ok(&["plan", "bump"]);
    assert!(plan.contains("path: pushdown"), "{plan}");
    let plan = project.mig_ok(&["plan", "items.code"]);
    assert!(plan.contains("path: read-compute-write"), "{plan}");

    assert!(project
        .mig_ok(&["run", "items.label"])
        .contains("40 rows processed, 40 updated"));
    assert!(project
        .mig_ok(&["run", "bump"])
        .contains("40 rows processed, 40 updated"));
    assert!(project
        .mig_ok(&["run", "items.code"])
        .contains("40 rows processed, 40 updated"));
    assert_eq!(
        project.query(
            "SELECT count(*) FROM items WHERE label = name || '/' || id AND n = id + 1 \
             AND code = 'IT'"
        ),
        ["40"]
    );

    for migration in ["items.code", "bump", "items.label"] {
        project.mig_ok(&["rollback", migration]);
    }
    assert_eq!(project.dump("items"), before, "rollback restores exactly");
}

#[test]
fn a_value_a_domain_refuses_stops_the_run_before_its_batch_commits() {
    let Some(project) = project() else {
        return;
    };
    let out = project.mig(&["run", "shrink"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("batch 1 of run 1 failed and was rolled back")
            && stderr(&out)
                .contains("value for domain positive violates check constraint \"positive_check\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM items WHERE n <> id"),
        ["0"]
    );
    let (replies, _) = project.node(&[envelope(
        json!({"type": "migrate", "msg_id": 1, "table": "items", "name": "shrink"}),
    )]);
    assert_eq!(reply_to(&replies, 1)["code"], 22, "{replies:?}");

    project.execute("UPDATE items SET name = 'abcd' WHERE id = 10");
    let spec = SPEC.replace("upper(substr(name, 1, 2))", "upper(name)");
    project.write_spec(&spec);
    project.execute("UPDATE items SET name = 'ab' WHERE id <> 10");
    let out = project.mig(&["run", "items.code"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("batch 2 of run 2 failed and was rolled back")
            && stderr(&out).contains(
                "a value is too long for `items`.`code` (product_code, a domain over \
                 character varying(3))"
            ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM items WHERE code IS NOT NULL"),
        ["7"],
        "the first batch committed, the second wrote nothing"
    );

    let out = project.mig(&["run", "untag"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("batch 2 of run 3 failed and was rolled back")
            && stderr(&out).contains("domain required does not allow null values"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM items WHERE tag = 'x'"),
        ["40"]
    );
}

#[test]
fn a_domain_over_a_type_mig_cannot_read_is_named_with_its_base_type() {
    let Some(project) = project() else {
        return;
    };
    project.write_spec("backfill label on items {\n    set label = payload\n}\n");
    let out = project.mig(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "column `payload` of `items` has type document, a domain over jsonb, which mig \
             cannot read or write"
        ),
        "{}",
        stderr(&out)
    );
}
