//! `mig status` tells a run some process works on from one whose process died. A run's
//! recorded state is only what its process last wrote, so a killed run said `running` for
//! ever, and a DBA read it as a backfill in progress.
mod common;

use common::{backends, envelope, reply_to, stderr, stdout, Backend, Project, Setup};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TABLE: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, a TEXT, label TEXT);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
     INSERT INTO items SELECT i, 'item' || i, NULL FROM n;";

/// 50 batches of 100, 50 ms apart: slow enough to look at between two of them.
const SPEC: &str = "backfill label on items {
    set label = a || '!'
    batch 100
    pause 50ms
}
";

const INTERRUPTED: &str = "interrupted (recorded running, but no process works on it: \
                           `mig run items.label` resumes it at its checkpoint)";

/// The line `mig status` prints for the one run.
fn status_line(project: &Project) -> String {
    let out = project.mig(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim_end().to_string()
}

/// The node's status entry of the one run.
fn node_status(project: &Project) -> Value {
    let (replies, log) = project.node(&[envelope(json!({"type": "status", "msg_id": 1}))]);
    let reply = reply_to(&replies, 1);
    assert_eq!(
        reply["runs"].as_array().map(Vec::len),
        Some(1),
        "{reply}\n{log}"
    );
    reply["runs"][0].clone()
}

/// Waits until the run has committed three batches, panicking if `child` ends first.
fn wait_for_three_batches(backend: &Backend, project: &Project, child: &mut std::process::Child) {
    if let Backend::Postgres(_) = backend {
        return project.wait_for_batches(child, 3);
    }
    while project
        .query_i64("SELECT batches >= 3 FROM _mig_runs")
        .unwrap_or(0)
        == 0
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("mig ended ({status}) before its third batch");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_killed_run_shows_interrupted_and_a_live_one_running() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &setup, SPEC);
        let mut run = project.spawn_mig(&["run", "items.label"]);
        wait_for_three_batches(&backend, &project, &mut run);

        let line = status_line(&project);
        assert!(
            line.starts_with("run 1 items.label running: "),
            "{name}: {line}"
        );
        let entry = node_status(&project);
        assert_eq!(
            (&entry["state"], &entry["active"]),
            (&json!("running"), &json!(true)),
            "{name}: {entry}"
        );

        run.kill().unwrap();
        run.wait().unwrap();
        if let Backend::Postgres(_) = backend {
            // The server ends the killed client's session, and its locks, once it reads the
            // closed socket: not always before the next statement of another session.
            wait_until_no_session_holds_a_run(&project);
        }
        let line = status_line(&project);
        assert!(
            line.starts_with(&format!("run 1 items.label {INTERRUPTED}: ")),
            "{name}: {line}"
        );
        let entry = node_status(&project);
        assert_eq!(
            (&entry["state"], &entry["active"]),
            (&json!("running"), &json!(false)),
            "{name}: {entry}"
        );

        let out = project.mig(&["run", "items.label", "--batch", "5000"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let line = status_line(&project);
        assert!(
            line.starts_with("run 1 items.label completed: 5000 processed"),
            "{name}: {line}"
        );
        let left: Vec<_> = std::fs::read_dir(project.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".lock"))
            .collect();
        assert!(left.is_empty(), "{name}: lock files left behind: {left:?}");
    }
}

/// A run stopped by an error is interrupted too: its process is gone, its state `running`.
#[test]
fn a_run_stopped_by_an_error_shows_interrupted() {
    let setup = Setup {
        sqlite: "CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, label INTEGER);
                 INSERT INTO items VALUES (1, 1, NULL), (2, 0, NULL);",
        postgres: "CREATE TABLE items (id INTEGER PRIMARY KEY, a INTEGER, label INTEGER);
                   INSERT INTO items VALUES (1, 1, NULL), (2, 0, NULL);",
    };
    let spec = "backfill label on items {\n    set label = 10 / a\n    batch 1\n}\n";
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["run", "items.label"]);
        assert_eq!(out.status.code(), Some(4), "{name}: {}", stderr(&out));
        let line = status_line(&project);
        assert!(
            line.starts_with(&format!("run 1 items.label {INTERRUPTED}: ")),
            "{name}: {line}"
        );
    }
}

fn wait_until_no_session_holds_a_run(project: &Project) {
    let started = Instant::now();
    while project
        .query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2")
        != ["0"]
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the killed run's session still holds its lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
