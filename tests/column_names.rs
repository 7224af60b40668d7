//! User columns named like the counts mig's validation query adds beside a table's own
//! columns. A `unique` check counts each row's duplicates into a column of its own, once
//! named `_mig_unique_0` whatever the table held: on SQLite the check then read the table's
//! column of that name and passed over duplicates, and on PostgreSQL it failed with an
//! ambiguous column.
mod common;

use common::{backends, stderr, stdout, Project, Setup};

const TABLE: &str = "CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT, \
     \"_mig_unique_0\" INTEGER, \"__mig_unique_0\" INTEGER, n INTEGER);\n\
     INSERT INTO accounts VALUES (1, 'a@example.com', 1, 1, 1), (2, 'a@example.com', 1, 1, 2), \
     (3, 'b@example.com', 1, 1, 3);\n";

const SPEC: &str =
    "validate unique_email on accounts {\n    unique email\n    expect _mig_unique_0 = 1\n}\n\
     migrate bump on accounts {\n    set n = n + 1\n    check unique_email\n}\n";

#[test]
fn a_unique_check_counts_duplicates_beside_a_column_named_like_its_count() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    for backend in backends() {
        let project = Project::on(&backend, &setup, SPEC);
        let out = project.mig(&["validate", "unique_email"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}{}",
            backend.name(),
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stdout(&out).contains("unique_email: FAILED (2 failed rows, the first at key 1)"),
            "{}: {}",
            backend.name(),
            stdout(&out)
        );

        // The same check after a run: it fails, so the run is rolled back.
        let out = project.mig(&["run", "bump"]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}",
            backend.name(),
            stdout(&out)
        );
        assert_eq!(
            project.query("SELECT n FROM accounts ORDER BY id"),
            ["1", "2", "3"],
            "{}: the failed run was not rolled back",
            backend.name()
        );
    }
}
