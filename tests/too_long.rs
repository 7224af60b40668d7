//! A value longer than its `varchar(n)` or `char(n)` column allows is refused on PostgreSQL,
//! as an assignment refuses it, never cut short: on the read-compute-write path too, where
//! mig sends the values it computed, and when a rollback restores an old value.
mod common;

use common::{postgres_url, stderr, stdout, Backend, Project, Setup};

const NO_TABLES: Setup = Setup {
    sqlite: "",
    postgres: "",
};

/// 30 rows, batch 10; `upper(a)` only the interpreter computes (PostgreSQL's follows the
/// database's ctype), and for row 15 it is `ABCD`, one character too many. Batch 1 commits;
/// batch 2 must write nothing: no row cut to `ABC`, no backup record, no checkpoint move.
#[test]
fn a_computed_value_too_long_for_its_column_stops_the_run_before_its_batch() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "backfill c on codes {\n    set c = upper(a)\n    batch 10\n}\n";
    for (declared, shown) in [
        ("varchar(3)", "character varying(3)"),
        ("char(3)", "character(3)"),
    ] {
        let project = Project::on(&Backend::Postgres(url.clone()), &NO_TABLES, spec);
        project.execute(&format!(
            "CREATE TABLE codes (id integer PRIMARY KEY, a text, c {declared});
             INSERT INTO codes SELECT i, CASE WHEN i = 15 THEN 'abcd' ELSE 'ab' END, 'x'
             FROM generate_series(1, 30) AS i;"
        ));
        let plan = stdout(&project.mig(&["plan", "codes.c"]));
        assert!(plan.contains("path: read-compute-write"), "{plan}");
        let before = project.dump("codes");

        let out = project.mig(&["run", "codes.c"]);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{declared}: {message}");
        for needle in [
            "batch 2 of run 1 failed and was rolled back",
            &format!("`codes`.`c` ({shown})"),
            &format!("value too long for type {shown}"),
            "as it will again: fix the row",
        ] {
            assert!(
                message.contains(needle),
                "{declared}: no `{needle}` in {message}"
            );
        }

        let after = project.dump("codes");
        assert_eq!(
            after[10..],
            before[10..],
            "{declared}: batch 2 wrote nothing"
        );
        assert_eq!(
            project.query("SELECT count(*) FROM codes WHERE c = 'AB'"),
            ["10"],
            "{declared}: batch 1 committed"
        );
        assert_eq!(
            project.query("SELECT batch FROM _mig_backup ORDER BY batch"),
            ["1"],
            "{declared}"
        );
        assert_eq!(
            project.query(
                "SELECT concat_ws(' ', status, checkpoint_int, processed, updated, batches) \
                 FROM _mig_runs"
            ),
            ["running 10 10 10 1"],
            "{declared}: the run stopped at batch 1's checkpoint"
        );

        // Not contention: a resumed run meets the same value and stops the same way, at once.
        let again = project.mig(&["run", "codes.c"]);
        assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
        assert!(!stderr(&again).contains("lock"), "{}", stderr(&again));
        assert_eq!(project.dump("codes"), after, "{declared}");
    }
}

/// A rollback restores the old value or refuses: when the column was narrowed since the run,
/// an old value that no longer fits stops the rollback; it is not restored cut short.
#[test]
fn a_rollback_into_a_column_narrowed_since_refuses_an_old_value_that_no_longer_fits() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "backfill c on codes {\n    set c = lower(a)\n    batch 10\n}\n";
    let project = Project::on(&Backend::Postgres(url), &NO_TABLES, spec);
    project.execute(
        "CREATE TABLE codes (id integer PRIMARY KEY, a text, c varchar(10));
         INSERT INTO codes SELECT i, 'AB', 'abcdefgh' FROM generate_series(1, 30) AS i;",
    );
    let out = project.mig(&["run", "codes.c"]);
    assert!(out.status.success(), "{}", stderr(&out));
    project.execute("ALTER TABLE codes ALTER c TYPE varchar(3)");
    let after = project.dump("codes");

    let out = project.mig(&["rollback", "codes.c"]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{}{message}", stdout(&out));
    assert!(
        message.contains("`codes`.`c` (character varying(3))"),
        "{message}"
    );
    assert_eq!(project.dump("codes"), after, "no row restored cut short");
    assert_eq!(
        project.query("SELECT count(*) FROM _mig_backup"),
        ["3"],
        "every batch is still backed up"
    );
}

/// Spaces past a `varchar(n)`'s length are cut as PostgreSQL writes the value, so the value
/// computed is not the value stored: compared uncut, every run found every row changed and
/// wrote and backed it up again. On both paths a re-run now updates nothing.
#[test]
fn spaces_cut_by_a_varchar_do_not_make_every_run_write_again() {
    let Some(url) = postgres_url() else {
        return;
    };
    let setup = Setup {
        sqlite: "",
        postgres: "CREATE TABLE v (id bigint PRIMARY KEY, src text, vc varchar(4), lc varchar(4));
                   INSERT INTO v SELECT i, 'ab', NULL, NULL FROM generate_series(1, 20) AS i;",
    };
    // `lower` only the interpreter computes: the read-compute-write path.
    let spec = "migrate pad on v {\n    set vc = src || '   '\n    batch 7\n}\n\n\
                migrate pad_lower on v {\n    set lc = lower(src) || '   '\n    batch 7\n}\n";
    let project = Project::on(&Backend::Postgres(url), &setup, spec);
    for migration in ["pad", "pad_lower"] {
        let first = project.mig(&["run", migration]);
        assert!(first.status.success(), "{}", stderr(&first));
        assert!(
            stdout(&first).contains("20 rows processed, 20 updated"),
            "{migration}: {}",
            stdout(&first)
        );
        let again = project.mig(&["run", migration]);
        assert!(
            stdout(&again).contains("20 rows processed, 0 updated"),
            "{migration}: {}",
            stdout(&again)
        );
    }
    assert_eq!(
        project.query("SELECT count(*) FROM v WHERE vc = 'ab  ' AND lc = 'ab  '"),
        ["20"]
    );
}
