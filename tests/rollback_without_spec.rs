//! A run can be rolled back after its spec left the specs folder or was edited: `mig rollback
//! NAME` then reads the spec the run recorded (`_mig_runs.spec`: table, key, sets, filter).
//! It once answered only "no migration named NAME" while the backup sat there, and after an
//! edit it restored by the spec as it was then, giving rows each other's old values.
mod common;

use common::{backends, stderr, stdout, Backend, Project, Setup};

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, s TEXT);\n\
     INSERT INTO t VALUES (1, 1, NULL, 'x'), (2, 2, NULL, 'y'), (3, 3, 7, 'x'), (4, 4, NULL, 'x');\n";

#[test]
fn a_run_whose_spec_was_removed_is_rolled_back_from_the_spec_it_recorded() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    let spec = "migrate tag on t {\n    set b = a * 10\n    set s = upper(s)\n    where s = 'x'\n    batch 2\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let before =
            project.query("SELECT id || ':' || coalesce(b, -1) || ':' || s FROM t ORDER BY id");
        let out = project.mig(&["run", "tag"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert_eq!(
            project.query("SELECT id || ':' || coalesce(b, -1) || ':' || s FROM t ORDER BY id"),
            ["1:10:X", "2:-1:y", "3:30:X", "4:40:X"],
            "{}",
            backend.name()
        );

        project.write_spec("validate any on t {\n    not_null a\n}\n");
        let out = project.mig(&["rollback", "tag"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert!(
            stdout(&out).contains("tag: run 1 rolled back: 3 rows restored, 0 conflicts"),
            "{}: {}",
            backend.name(),
            stdout(&out)
        );
        assert_eq!(
            project.query("SELECT id || ':' || coalesce(b, -1) || ':' || s FROM t ORDER BY id"),
            before,
            "{}",
            backend.name()
        );
    }
}

/// The run walked `tq` by `id` and backed up by `id`; the spec then declares `u` (unique,
/// `1001 - id`) as the key. Restored by `u`, row 1 got row 1000's old value, and no conflict
/// was reported, since every row held the value the run wrote.
#[test]
fn a_run_whose_spec_changed_key_is_rolled_back_by_the_key_it_recorded() {
    let setup = Setup {
        sqlite: "CREATE TABLE tq (id INTEGER PRIMARY KEY, u INTEGER NOT NULL UNIQUE, s TEXT);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
                 INSERT INTO tq SELECT i, 1001 - i, 'orig' || i FROM n;",
        postgres: "CREATE TABLE tq (id integer PRIMARY KEY, u integer NOT NULL UNIQUE, s text);
                   INSERT INTO tq SELECT i, 1001 - i, 'orig' || i FROM generate_series(1, 1000) AS i;",
    };
    let spec = "migrate mark on tq {\n    set s = 'X'\n    batch 100\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let before = project.dump("tq");
        let out = project.mig(&["run", "mark"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));

        project.write_spec(&format!("table tq key u\n{spec}"));
        let out = project.mig(&["rollback", "mark"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert!(
            stdout(&out).contains("mark: run 1 rolled back: 1000 rows restored, 0 conflicts"),
            "{}: {}",
            backend.name(),
            stdout(&out)
        );
        let after = project.dump("tq");
        let wrong: Vec<_> = after.iter().zip(&before).filter(|(a, b)| a != b).collect();
        assert!(
            wrong.is_empty(),
            "{}: {} rows not restored, first {:?}",
            backend.name(),
            wrong.len(),
            wrong.first()
        );
    }
}

/// A rollback restores what the run backed up and computes nothing, so an expression the
/// schema as it is now makes fail (`a` was an integer column when `a * 10` ran, and is a text
/// one now) does not stop it. `mig check`'s type errors once refused the recorded spec, and
/// with it the rollback.
#[test]
fn a_run_whose_recorded_spec_the_schema_now_refuses_is_rolled_back() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    let retyped = Setup {
        sqlite: "CREATE TABLE t2 (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, s TEXT);
                 INSERT INTO t2 SELECT * FROM t; DROP TABLE t; ALTER TABLE t2 RENAME TO t;",
        postgres: "ALTER TABLE t ALTER COLUMN a TYPE text",
    };
    let spec = "migrate tag on t {\n    set b = a * 10\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["run", "tag"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        project.execute(match backend {
            Backend::Sqlite => retyped.sqlite,
            Backend::Postgres(_) => retyped.postgres,
        });
        let out = project.mig(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{}", backend.name());
        assert!(
            stderr(&out).contains("`*` needs numbers; `a` is a text column"),
            "{}: {}",
            backend.name(),
            stderr(&out)
        );

        project.write_spec("validate any on t {\n    not_null a\n}\n");
        let out = project.mig(&["rollback", "tag"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert_eq!(
            project.query("SELECT id || ':' || coalesce(b, -1) FROM t ORDER BY id"),
            ["1:-1", "2:-1", "3:7", "4:-1"],
            "{}",
            backend.name()
        );
    }
}
