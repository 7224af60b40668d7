//! A value that a column of REAL affinity stores as a real (an integer, or text that looks
//! like a number) is compared and backed up as that real. SQLite stores 9007199254740993 as
//! 9007199254740992.0; compared as the integer, the row differed on every run, which wrote
//! it again, and a rollback took the run's own value for the application's and left it.
mod common;

use common::{backends, envelope, reply_to, stderr, stdout, Backend, Project, Setup};
use serde_json::json;

const SETUP: Setup = Setup {
    sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, s TEXT, wr REAL);\n\
             INSERT INTO t (id, i, s) VALUES (1, 12, '12'), (2, 9007199254740993, '9007199254740993');\n",
    postgres: "CREATE TABLE t (id integer PRIMARY KEY, i bigint, s text, wr double precision);\n\
               INSERT INTO t (id, i, s) VALUES (1, 12, '12'), (2, 9007199254740993, '9007199254740993');\n",
};

/// The first run writes both rows, and a rollback restores both with no conflict; run
/// again, it writes them once more, and a further run writes none.
fn written_once_and_rolled_back_exactly(backend: &Backend, spec: &str) {
    let name = backend.name();
    let project = Project::on(backend, &SETUP, spec);
    let before = project.dump("t");
    let run = |updated: &str| {
        let out = project.mig(&["run", "m"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains(updated), "{name}: {}", stdout(&out));
    };

    run("2 updated");
    // Cast, so both stores print the same text.
    assert_eq!(
        project.query("SELECT CAST(wr AS bigint) FROM t ORDER BY id"),
        ["12", "9007199254740992"],
        "{name}"
    );
    if *backend == Backend::Sqlite {
        assert_eq!(
            project.query("SELECT typeof(wr) FROM t ORDER BY id"),
            ["real", "real"]
        );
    }

    let back = project.mig(&["rollback", "m"]);
    assert!(back.status.success(), "{name}: {}", stderr(&back));
    assert!(
        stdout(&back).contains("2 rows restored, 0 conflicts"),
        "{name}: {}",
        stdout(&back)
    );
    assert_eq!(project.dump("t"), before, "{name}");

    run("2 updated");
    run("0 updated");
}

#[test]
fn an_integer_set_into_a_real_column_is_written_once_and_rolls_back_exactly() {
    for backend in backends() {
        written_once_and_rolled_back_exactly(&backend, "migrate m on t { set wr = i }\n");
    }
}

/// PostgreSQL refuses text into a double precision column; SQLite converts it.
#[test]
fn integer_text_set_into_a_real_column_is_written_once_and_rolls_back_exactly() {
    written_once_and_rolled_back_exactly(&Backend::Sqlite, "migrate m on t { set wr = s }\n");
}

#[test]
fn an_integer_set_into_a_real_column_is_unchanged_by_a_second_run_of_the_node() {
    let project = Project::sqlite(SETUP.sqlite, "migrate m on t { set wr = i }\n");
    let (replies, _) = project.node(&[envelope(json!({
        "type": "migrate", "msg_id": 1, "table": "t", "runs": 2, "idempotent": true
    }))]);
    let done = reply_to(&replies, 1);
    assert_eq!(done["type"], "migration_complete", "{done}");
    assert_eq!(done["rows_updated"], 2, "{done}");
    assert_eq!(done["final_state"], "unchanged", "{done}");
    assert_eq!(
        project.query("SELECT typeof(wr) FROM t ORDER BY id"),
        ["real", "real"]
    );
}
