//! A real written into a text column is stored as the interpreter's text form of it, the
//! text `||` gives, on every store. SQLite converts a real into a column of TEXT affinity
//! with 15 significant digits of its own, and `set x = 0.1 + 0.2` once stored '0.3' there
//! where PostgreSQL stored '0.30000000000000004'.
mod common;

use common::{backends, stderr, Project, Setup};

const SETUP: Setup = Setup {
    sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, a REAL, b REAL, x TEXT, y TEXT);\n\
             INSERT INTO t VALUES (1, 0.1, 0.2, 'old', NULL), (2, 1.5, 3.0, NULL, 'old'), \
             (3, NULL, 1.0, 'kept?', 'kept?');\n",
    postgres: "CREATE TABLE t (id integer PRIMARY KEY, a double precision, b double precision, \
               x text, y text);\n\
               INSERT INTO t VALUES (1, 0.1, 0.2, 'old', NULL), (2, 1.5, 3.0, NULL, 'old'), \
               (3, NULL, 1.0, 'kept?', 'kept?');\n",
};

const SPEC: &str = "migrate sums on t {\n    set x = a + b\n    set y = (a * b) || ''\n}\n";

#[test]
fn a_real_set_into_a_text_column_is_stored_as_its_text_form_and_rolls_back_exactly() {
    for backend in backends() {
        let project = Project::on(&backend, &SETUP, SPEC);
        let before = project.dump("t");
        let out = project.mig(&["run", "sums"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert_eq!(
            project.query("SELECT x FROM t ORDER BY id"),
            ["0.30000000000000004", "4.5", "NULL"],
            "{}",
            backend.name()
        );
        assert_eq!(
            project.query("SELECT y FROM t ORDER BY id"),
            ["0.020000000000000004", "4.5", "NULL"],
            "{}",
            backend.name()
        );

        // A second run finds every value already written.
        let again = project.mig(&["run", "sums"]);
        assert!(again.status.success(), "{}", stderr(&again));
        assert!(
            String::from_utf8_lossy(&again.stdout).contains("0 updated"),
            "{}: {}",
            backend.name(),
            String::from_utf8_lossy(&again.stdout)
        );

        let back = project.mig(&["rollback", "sums"]);
        assert!(back.status.success(), "{}", stderr(&back));
        assert!(
            String::from_utf8_lossy(&back.stdout).contains("0 conflicts"),
            "{}: {}",
            backend.name(),
            String::from_utf8_lossy(&back.stdout)
        );
        assert_eq!(project.dump("t"), before, "{}", backend.name());
    }
}
