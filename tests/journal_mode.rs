//! Only `mig run` and `mig rollback` switch a SQLite database to WAL, a journal mode that
//! stays with the database; commands that only read leave it as the application chose it.
//! Every command once switched it, `mig status` and `mig check` too.
mod common;

use common::{envelope, reply_to, stderr, stdout, Project};
use serde_json::json;

const SETUP: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, label TEXT);\n\
     INSERT INTO t (name) VALUES ('a'), ('b'), (NULL);\n";

const SPEC: &str = "backfill label on t {\n    set label = name || '!'\n}\n\
     validate labelled on t {\n    not_null label\n}\n";

fn journal_mode(project: &Project) -> String {
    project.query("PRAGMA journal_mode").concat()
}

#[test]
fn commands_that_only_read_leave_the_journal_mode_alone() {
    let project = Project::sqlite(SETUP, SPEC);
    assert_eq!(journal_mode(&project), "delete");

    for args in [&["status"][..], &["check"], &["plan", "t.label"]] {
        let out = project.mig(args);
        assert!(out.status.success(), "mig {args:?}: {}", stderr(&out));
        assert_eq!(journal_mode(&project), "delete", "after mig {args:?}");
    }
    let out = project.mig(&["validate"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("labelled: FAILED (3 failed rows, the first at key "));
    assert_eq!(journal_mode(&project), "delete", "after mig validate");
    let (replies, log) = project.node(&[
        envelope(json!({"type": "plan", "msg_id": 1, "kind": "backfill", "table": "t", "column": "label"})),
        envelope(json!({"type": "validate", "msg_id": 2, "table": "t", "validations": ["labelled"]})),
        envelope(json!({"type": "status", "msg_id": 3})),
    ]);
    for msg_id in 1..=3 {
        assert_ne!(reply_to(&replies, msg_id)["type"], "error", "{log}");
    }
    assert_eq!(
        journal_mode(&project),
        "delete",
        "after the node's requests"
    );
    assert_eq!(
        project
            .query("SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_mig\\_%' ESCAPE '\\'"),
        ["0"],
        "a command that only reads made mig's tables"
    );

    let plan = stdout(&project.mig(&["plan", "t.label"]));
    let switch = "journal mode: the run switches the database from delete to WAL, and it stays \
                  WAL after the run, so the application's readers do not wait for mig's writes";
    assert!(plan.contains(switch), "{plan}");

    let out = project.mig(&["run", "t.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(journal_mode(&project), "wal");
    let plan = stdout(&project.mig(&["plan", "t.label"]));
    assert!(!plan.contains("journal mode"), "{plan}");
}
