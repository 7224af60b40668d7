//! A run can be rolled back after its spec left the specs folder: `mig rollback NAME` then
//! reads the spec the run recorded (`_mig_runs.spec`: table, key, sets, filter). It once
//! answered only "no migration named NAME", while the backup sat there.
mod common;

use common::{backends, stderr, stdout, Project, Setup};

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
