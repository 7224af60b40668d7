//! A batch the table refuses (a NOT NULL, CHECK or UNIQUE constraint) is rolled back whole,
//! and the error says that resuming alone would be refused again: fix the rows, or change
//! the spec and restart. It once said only that `mig run` resumes the run.
mod common;

use common::{backends, stderr, Project, Setup};

/// Row 5's `a` is NULL, and `b` is NOT NULL.
const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER NOT NULL);\n\
     INSERT INTO t VALUES (1, 1, 0), (2, 2, 0), (3, 3, 0), (4, 4, 0), (5, NULL, 0), (6, 6, 0);\n";

#[test]
fn a_batch_the_table_refuses_stops_the_run_saying_it_will_be_refused_again() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    let spec = "migrate copy_a on t {\n    set b = a\n    batch 2\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["run", "copy_a"]);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{}: {said}", backend.name());
        assert!(
            said.contains(
                "batch 3 of run 1 failed and was rolled back; the run stopped at its checkpoint \
                 and the table refused a value the spec computed, as it will again: fix the rows \
                 it names and `mig run copy_a` resumes the run, or change the spec and start a \
                 new run with `mig run copy_a --restart`"
            ),
            "{}: {said}",
            backend.name()
        );
        assert_eq!(
            project.query("SELECT b FROM t ORDER BY id"),
            ["1", "2", "3", "4", "0", "0"],
            "{}: the refused batch was not rolled back whole",
            backend.name()
        );

        // Fixing the row lets the run resume where it stopped.
        project.execute("UPDATE t SET a = 5 WHERE id = 5");
        let out = project.mig(&["run", "copy_a"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert_eq!(
            project.query("SELECT b FROM t ORDER BY id"),
            ["1", "2", "3", "4", "5", "6"]
        );
    }
}
