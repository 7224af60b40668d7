//! A rollback needs only the run's record (`_mig_runs`, `_mig_backup`), so it goes on
//! whatever the specs folder holds: a spec file that does not compile or cannot be read is
//! named in a warning and left out. It once printed that file's errors and exited 2, rolling
//! nothing back: the emergency undo depended on unrelated files compiling.
mod common;

use common::{backends, envelope, reply_to, stderr, stdout, Backend, Project, Setup};
use serde_json::json;

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);\n\
     INSERT INTO t VALUES (1, 1, NULL), (2, 2, NULL), (3, 3, NULL);\n";

const SPEC: &str = "backfill b on t {\n    set b = a * 10\n    batch 2\n}\n";

/// A project on `backend` whose backfill `t.b` has run.
fn after_a_run(backend: &Backend) -> Project {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    let project = Project::on(backend, &setup, SPEC);
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
    assert_eq!(
        project.query("SELECT b FROM t ORDER BY id"),
        ["10", "20", "30"]
    );
    project
}

fn restored(project: &Project) -> bool {
    project.query("SELECT coalesce(b, -1) FROM t ORDER BY id") == ["-1", "-1", "-1"]
}

/// Each breakage, as (file, content, what the warning says of it).
fn breakages() -> Vec<(&'static str, &'static [u8], &'static str)> {
    vec![
        (
            "bad.mig",
            b"validate bad on t {\n    not_null nosuch\n}\n",
            "warning: specs/bad.mig:2:14: unknown column `nosuch` in table `t`; \
             the rollback goes on without it",
        ),
        (
            "bad.mig",
            b"validate bad on t {\n    not_null a\n",
            "warning: specs/bad.mig:3:1: expected",
        ),
        (
            "latin1.mig",
            b"validate bad on t {\n    expect a <> 'caf\xe9'\n}\n",
            "warning: cannot read spec file specs/latin1.mig:2:21: byte 0xe9 is not UTF-8",
        ),
        // The migration's own spec broken: the run's record still restores it.
        (
            "test.mig",
            b"backfill b on t {\n    set b = a * 10\n",
            "warning: specs/test.mig:3:1: expected",
        ),
    ]
}

#[test]
fn mig_rollback_goes_on_beside_spec_files_that_do_not_compile() {
    for backend in backends() {
        for (file, content, warning) in breakages() {
            let project = after_a_run(&backend);
            std::fs::write(project.path().join("specs").join(file), content).unwrap();
            let out = project.mig(&["rollback", "t.b"]);
            let case = format!("{} {file}", backend.name());
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            assert!(stderr(&out).contains(warning), "{case}: {}", stderr(&out));
            assert!(
                stdout(&out).contains("t.b: run 1 rolled back: 3 rows restored, 0 conflicts"),
                "{case}: {}",
                stdout(&out)
            );
            assert!(restored(&project), "{case}");

            let out = project.mig(&["status"]);
            assert!(out.status.success(), "{case}: {}", stderr(&out));
            assert!(stdout(&out).contains("run 1 t.b rolled_back"), "{case}");
        }
    }
}

#[test]
fn a_node_rollback_goes_on_beside_spec_files_that_do_not_compile() {
    for backend in backends() {
        for (file, content, warning) in breakages() {
            let project = after_a_run(&backend);
            std::fs::write(project.path().join("specs").join(file), content).unwrap();
            let (replies, log) = project.node(&[
                envelope(json!({"type": "rollback", "msg_id": 1, "table": "t", "column": "b"})),
                envelope(json!({"type": "status", "msg_id": 2})),
            ]);
            let case = format!("{} {file}", backend.name());
            let rollback = reply_to(&replies, 1);
            assert_eq!(rollback["type"], "rollback_complete", "{case}: {rollback}");
            assert_eq!(rollback["rows_restored"], 3, "{case}");
            assert!(log.contains(warning), "{case}: {log}");
            assert!(restored(&project), "{case}");
            assert_eq!(reply_to(&replies, 2)["type"], "status", "{case}");
        }
    }
}
