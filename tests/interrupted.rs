//! Interrupted runs and rollbacks: a changed spec refuses to resume, rollback never clobbers
//! what the application wrote since, and a killed rollback finishes when called again.
mod common;

use common::{envelope, reply_to, stderr, stdout, Project};
use serde_json::json;

const ROWS: u64 = 20_000;

fn items() -> String {
    format!(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, label TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         INSERT INTO items SELECT i, 'item' || (i % 97), i % 1000, NULL FROM n;"
    )
}

/// 100 batches of 200, 30 ms apart: slow enough to kill between two polls.
const SPEC: &str = "backfill label on items {
    set label = a || '#' || b
    batch 200
    pause 30ms
}
";

fn interrupted_run(project: &Project) {
    let run = project.spawn_mig(&["run", "items.label"]);
    project.kill_when(run, "SELECT batches >= 5 FROM _mig_runs");
}

#[test]
fn resuming_under_a_changed_spec_is_refused_with_a_diff_and_restart_starts_anew() {
    let project = Project::sqlite(&items(), SPEC);
    interrupted_run(&project);
    project.write_spec(&SPEC.replace("'#'", "'-'"));

    let out = project.mig(&["run", "items.label"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stderr(&out);
    assert!(text.contains("resume refused"), "{text}");
    assert!(
        text.contains("- set label = (a || '#') || b\n+ set label = (a || '-') || b\n"),
        "{text}"
    );
    assert!(
        !text.contains("- on items"),
        "unchanged lines are not listed: {text}"
    );
    assert!(text.contains("mig run items.label --restart"), "{text}");

    let (replies, _) = project.node(&[envelope(
        json!({"type": "backfill", "msg_id": 1, "table": "items", "column": "label"}),
    )]);
    let refused = reply_to(&replies, 1);
    assert_eq!(refused["code"], 22, "{refused}");
    assert!(
        refused["text"]
            .as_str()
            .unwrap()
            .contains("+ set label = (a || '-') || b"),
        "{refused}"
    );
    assert_eq!(project.runs()[0].0, "running", "a refusal changes nothing");

    let out = project.mig(&["run", "items.label", "--restart", "--batch", "5000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let runs = project.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].0, "failed");
    assert_eq!((runs[1].0.as_str(), runs[1].1), ("completed", ROWS as i64));
    let new_labels = project
        .query_i64("SELECT count(*) FROM items WHERE label = a || '-' || b")
        .unwrap();
    assert_eq!(new_labels, ROWS as i64);
}

#[test]
fn rollback_after_a_full_run_restores_the_table_exactly() {
    let project = Project::sqlite(&items(), SPEC);
    let before = project.dump("items");
    assert!(project
        .mig(&["run", "items.label", "--batch", "2000"])
        .status
        .success());
    assert_ne!(project.dump("items"), before);
    let out = project.mig(&["rollback", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("{ROWS} rows restored, 0 conflicts")),
        "{}",
        stdout(&out)
    );
    assert!(project.dump("items") == before, "tables differ");
    assert_eq!(project.runs()[0].0, "rolled_back");
}

#[test]
fn rollback_of_an_interrupted_run_restores_it_and_a_new_run_may_follow() {
    let project = Project::sqlite(&items(), SPEC);
    let before = project.dump("items");
    interrupted_run(&project);
    let out = project.mig(&["rollback", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(project.dump("items") == before, "tables differ");
    let out = project.mig(&["run", "items.label", "--batch", "5000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("(resumed)"), "{}", stdout(&out));
    let runs = project.runs();
    assert_eq!(runs[0].0, "rolled_back");
    assert_eq!((runs[1].0.as_str(), runs[1].1), ("completed", ROWS as i64));
}

#[test]
fn a_killed_rollback_blocks_runs_and_finishes_when_called_again_without_clobbering() {
    let project = Project::sqlite(&items(), SPEC);
    let before = project.dump("items");
    assert!(project.mig(&["run", "items.label"]).status.success());
    project
        .db()
        .execute_batch(
            "UPDATE items SET label = 'app wrote this' WHERE id IN (7, 9000);
             DELETE FROM items WHERE id = 15000;",
        )
        .unwrap();

    for left in [90, 60, 30] {
        let rollback = project.spawn_mig(&["rollback", "items.label"]);
        project.kill_when(
            rollback,
            &format!("SELECT count(DISTINCT batch) <= {left} FROM _mig_backup"),
        );
        assert_eq!(project.runs()[0].0, "rolling_back");
        let refused = project.mig(&["run", "items.label"]);
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            stderr(&refused).contains("the rollback of run 1 of items.label is unfinished"),
            "{}",
            stderr(&refused)
        );
    }
    let out = project.mig(&["rollback", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 conflicts")
            && stdout(&out)
                .contains("left alone, changed since the run wrote them: 7, 9000, 15000"),
        "{}",
        stdout(&out)
    );
    assert_eq!(project.runs()[0].0, "rolled_back");
    let expected: Vec<String> = before
        .into_iter()
        .filter(|row| !row.starts_with("15000|"))
        .map(|row| {
            if row.starts_with("7|") || row.starts_with("9000|") {
                row.replace("|NULL", "|app wrote this")
            } else {
                row
            }
        })
        .collect();
    assert!(
        project.dump("items") == expected,
        "every row restored but the ones the application changed"
    );
}

#[test]
fn a_rollback_killed_after_its_last_batch_is_marked_done_not_passed_over() {
    let project = Project::sqlite(&items(), SPEC);
    assert!(project
        .mig(&["run", "items.label", "--batch", "5000"])
        .status
        .success());
    project
        .db()
        .execute_batch("UPDATE items SET label = NULL WHERE id <= 100")
        .unwrap();
    assert!(project
        .mig(&["run", "items.label", "--batch", "5000"])
        .status
        .success());
    // The state a kill leaves between the last restored batch and the final status: run 2's
    // backup is gone, its status still says rolling back.
    project
        .db()
        .execute_batch(
            "UPDATE items SET label = NULL WHERE id <= 100;
             DELETE FROM _mig_backup WHERE run_id = 2;
             UPDATE _mig_runs SET status = 'rolling_back' WHERE id = 2;",
        )
        .unwrap();
    let out = project.mig(&["rollback", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("run 2 rolled back: 0 rows restored"),
        "{}",
        stdout(&out)
    );
    let states: Vec<String> = project.runs().into_iter().map(|r| r.0).collect();
    assert_eq!(
        states,
        ["completed", "rolled_back"],
        "run 1 is left as it was"
    );
    assert_eq!(
        project.query_i64("SELECT count(*) FROM items WHERE label IS NULL"),
        Some(100),
        "run 1's values stay"
    );
}

#[test]
fn a_rollback_beside_a_live_run_stops_the_run_and_restores_everything() {
    let project = Project::sqlite(&items(), SPEC);
    let before = project.dump("items");
    let mut run = project.spawn_mig(&["run", "items.label"]);
    while project.query_i64("SELECT batches >= 5 FROM _mig_runs") != Some(1) {
        assert!(run.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let out = project.mig(&["rollback", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = run.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the run's next batch finds it rolled back"
    );
    assert!(project.dump("items") == before, "tables differ");
    assert_eq!(project.runs()[0].0, "rolled_back");
    assert_eq!(
        project.query_i64("SELECT count(*) FROM _mig_backup"),
        Some(0)
    );
}

#[test]
fn node_rollback_reports_restored_rows_and_conflicts() {
    let project = Project::sqlite(&items(), SPEC);
    assert!(project
        .mig(&["run", "items.label", "--batch", "5000"])
        .status
        .success());
    project
        .db()
        .execute("UPDATE items SET label = 'app' WHERE id = 42", [])
        .unwrap();
    let (replies, _) = project.node(&[envelope(
        json!({"type": "rollback", "msg_id": 1, "table": "items", "column": "label"}),
    )]);
    let done = reply_to(&replies, 1);
    assert_eq!(done["type"], "rollback_complete", "{done}");
    assert_eq!(done["rows_restored"], ROWS - 1);
    assert_eq!(done["conflicts"], 1);
    assert_eq!(done["conflict_keys"], json!([42]));
}

/// Sends `signal` (`INT`, `TERM`) to `child` once `sql` holds, and returns its output.
fn signal_when(
    project: &Project,
    mut child: std::process::Child,
    sql: &str,
    signal: &str,
) -> std::process::Output {
    while project.query_i64(sql).unwrap_or(0) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "mig ended before `{sql}` held"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let sent = std::process::Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    child.wait_with_output().unwrap()
}

fn spawn_with_stderr(project: &Project, args: &[&str]) -> std::process::Child {
    project
        .command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Ctrl-C (SIGINT) and SIGTERM stop a run or a rollback after the batch in flight and say
/// where it stands and what goes on from there; they ended it silently before, the progress
/// bar cut off. Then the run resumes to every row, and the rollback finishes to the table
/// as it was.
#[test]
fn ctrl_c_and_sigterm_stop_between_batches_and_say_how_to_go_on() {
    let project = Project::sqlite(&items(), SPEC);
    let before = project.dump("items");

    let run = spawn_with_stderr(&project, &["run", "items.label"]);
    let out = signal_when(&project, run, "SELECT batches >= 5 FROM _mig_runs", "INT");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("stopped by SIGINT (Ctrl-C) after the batch in flight: run 1 of items.label stopped at checkpoint")
            && said.contains("`mig run items.label` resumes it"),
        "{said}"
    );
    assert_eq!(
        project.query_i64("SELECT count(*) FROM items WHERE label IS NOT NULL"),
        project.query_i64("SELECT updated FROM _mig_runs"),
        "every committed batch whole"
    );
    assert!(project.mig(&["run", "items.label"]).status.success());
    assert_eq!(
        project.query_i64("SELECT count(*) FROM items WHERE label IS NULL"),
        Some(0)
    );

    let rollback = spawn_with_stderr(&project, &["rollback", "items.label"]);
    let out = signal_when(
        &project,
        rollback,
        "SELECT count(*) >= 5 FROM items WHERE label IS NULL",
        "TERM",
    );
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "stopped by SIGTERM after the batch in flight: the rollback of run 1 restored"
        ) && stderr(&out).contains("`mig rollback items.label` goes on from there"),
        "{}",
        stderr(&out)
    );
    assert!(project.mig(&["rollback", "items.label"]).status.success());
    assert_eq!(project.dump("items"), before);
}

/// Ctrl-C during a long `pause` stops the command then, not once the pause is over: with
/// `pause 1m` the run and the rollback kept the terminal for up to a minute, as if hung.
#[test]
fn ctrl_c_cuts_a_long_pause_short() {
    let long_pause = SPEC.replace("pause 30ms", "pause 60s");
    let project = Project::sqlite(&items(), &long_pause);
    let run = spawn_with_stderr(&project, &["run", "items.label"]);
    let asked = std::time::Instant::now();
    let out = signal_when(&project, run, "SELECT batches >= 1 FROM _mig_runs", "INT");
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(30),
        "the run stopped only after its pause: {:?}",
        asked.elapsed()
    );
    assert!(
        stderr(&out).contains("run 1 of items.label stopped at checkpoint 200"),
        "{}",
        stderr(&out)
    );

    project.write_spec(&SPEC.replace("pause 30ms", "pause 0ms"));
    assert!(project.mig(&["run", "items.label"]).status.success());
    project.write_spec(&long_pause);
    let rollback = spawn_with_stderr(&project, &["rollback", "items.label"]);
    let asked = std::time::Instant::now();
    let out = signal_when(
        &project,
        rollback,
        "SELECT count(*) >= 1 FROM items WHERE label IS NULL",
        "INT",
    );
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(30),
        "the rollback stopped only after its pause: {:?}",
        asked.elapsed()
    );
    assert_eq!(
        project.query_i64("SELECT count(*) FROM items WHERE label IS NULL"),
        Some(200),
        "one batch restored, none after the signal"
    );
}
