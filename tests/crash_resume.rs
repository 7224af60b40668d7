//! A run killed (SIGKILL) at random moments and started again ends exactly where an
//! uninterrupted run ends: same table, same totals, same backup; one rollback undoes it all.
//! The same through the node. Kill points are seeded, so a failure replays.
mod common;

use common::{envelope, reply_to, stderr, stdout, Project, Rng};
use serde_json::json;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

const ROWS: u64 = 60_000;
const BATCH: u64 = 400;
const PAUSE_MS: u64 = 20;
const KILLS: usize = 25;
const SEED: u64 = 0x5eed_0003;

fn items() -> String {
    format!(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, label TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         INSERT INTO items
         SELECT i * 3, 'item' || (i % 97), i % 1000,
                CASE WHEN i % 10 = 0 THEN 'item' || (i % 97) || '#' || (i % 1000) END
         FROM n;"
    )
}

fn spec() -> String {
    format!(
        "backfill label on items {{\n    set label = a || '#' || b\n    batch {BATCH}\n    pause {PAUSE_MS}ms\n}}\n"
    )
}

const BATCHES_SQL: &str = "SELECT batches FROM _mig_runs ORDER BY id DESC LIMIT 1";

#[test]
fn killed_runs_resume_to_what_an_uninterrupted_run_does() {
    let project = Project::sqlite(&items(), &spec());
    let original = project.dump("items");
    let reference = project.copy();
    let out = reference.mig(&["run", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let mut rng = Rng::new(SEED);
    let mut kills = 0;
    let mut during_startup = 0;
    for _ in 0..KILLS {
        let mut child = project.spawn_mig(&["run", "items.label"]);
        if rng.range(0, 5) == 0 {
            // Somewhere in startup or the first batches: opening, compiling, starting the run.
            std::thread::sleep(Duration::from_millis(rng.range(0, 40)));
            during_startup += 1;
        } else {
            // Some batches further on, then anywhere in the next pause or transaction.
            let target = project.query_i64(BATCHES_SQL).unwrap_or(0) + rng.range(1, 4) as i64;
            while project.query_i64(BATCHES_SQL).unwrap_or(0) < target {
                assert!(child.try_wait().unwrap().is_none(), "the run ended early");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.range(0, PAUSE_MS + 5)));
        }
        common::kill_while_running(&mut child, &format!("kill {}", kills + 1));
        kills += 1;
    }
    let at_last_kill = project.runs();
    println!(
        "{kills} kills ({during_startup} early in startup); the run stood at {at_last_kill:?} after the last"
    );
    assert_eq!(at_last_kill.len(), 1, "every start resumed the same run");
    assert_eq!(at_last_kill[0].0, "running");

    let out = project.mig(&["run", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(resumed)"), "{}", stdout(&out));
    assert_eq!(project.runs(), reference.runs(), "status totals");
    assert_eq!(project.runs()[0].1, ROWS as i64);
    assert!(
        project.dump("items") == reference.dump("items"),
        "tables differ"
    );
    assert!(project.backup() == reference.backup(), "backups differ");

    let out = project.mig(&["rollback", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        project.dump("items") == original,
        "one rollback undoes every resumption"
    );
}

#[test]
fn a_node_killed_mid_backfill_resumes_on_the_repeated_request() {
    let project = Project::sqlite(&items(), &spec());
    let reference = project.copy();
    let request = || {
        vec![
            envelope(json!({"type": "init", "msg_id": 1, "node_id": "n1", "node_ids": ["n1"]})),
            envelope(json!({"type": "backfill", "msg_id": 2, "table": "items", "column": "label"})),
        ]
    };
    let (replies, _) = reference.node(&request());
    let expected = reply_to(&replies, 2);
    assert_eq!(expected["type"], "backfill_complete", "{expected}");

    let mut node = project
        .command(&["node"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = node.stdin.take().unwrap();
    for line in request() {
        writeln!(stdin, "{line}").unwrap();
    }
    project.kill_when(node, "SELECT batches >= 10 FROM _mig_runs");
    drop(stdin);
    let killed_at = project.runs();
    assert_eq!(killed_at[0].0, "running", "{killed_at:?}");

    let (replies, _) = project.node(&request());
    let resumed = reply_to(&replies, 2);
    assert_eq!(resumed["type"], "backfill_complete", "{resumed}");
    assert_eq!(resumed["total_processed"], expected["total_processed"]);
    assert_eq!(resumed["total_updated"], expected["total_updated"]);
    assert_eq!(project.runs(), reference.runs());
    assert!(
        project.dump("items") == reference.dump("items"),
        "tables differ"
    );
    assert!(project.backup() == reference.backup(), "backups differ");
}
