//! Idempotence verdicts as users see them: golden `mig check` output of every
//! `tests/data/idempotence/NAME.mig` in `NAME.out` (`UPDATE_GOLDEN=1` rewrites them), the
//! verdicts in `mig plan`, and repeated runs through the node: a set that is not idempotent,
//! run with `idempotent: true`, is undone back to the table before run 1 and refused.
mod common;

use common::{envelope, reply_to, stderr, stdout, Project};
use serde_json::json;
use std::fs;
use std::path::Path;

const TABLE: &str = "
CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, x TEXT, y TEXT, a INTEGER, b INTEGER);
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 300)
INSERT INTO t SELECT i, i % 7, CASE WHEN i % 3 = 0 THEN NULL ELSE ' Word' || i END,
                     'x' || i, 'y' || i, i, 300 - i FROM k;";

#[test]
fn check_prints_the_golden_verdict_of_every_set() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/idempotence");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".mig").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "only {} golden specs", names.len());
    let project = Project::sqlite(TABLE, "");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut mismatched = Vec::new();
    for name in &names {
        // In the specs folder, as a run reads it: a file named from elsewhere is noted as one
        // a run does not see.
        project.write_spec(&fs::read_to_string(dir.join(format!("{name}.mig"))).unwrap());
        let out = project.mig(&["check"]);
        let shown = format!(
            "{}{}exit: {}\n",
            stdout(&out),
            stderr(&out),
            out.status.code().unwrap_or(-1)
        );
        let golden = dir.join(format!("{name}.out"));
        if update {
            fs::write(&golden, &shown).unwrap();
        } else if fs::read_to_string(&golden).ok().as_deref() != Some(shown.as_str()) {
            eprintln!("--- {name}.out differs; got:\n{shown}");
            mismatched.push(name.clone());
        }
    }
    assert!(
        mismatched.is_empty(),
        "goldens differ: {mismatched:?} (UPDATE_GOLDEN=1 rewrites them)"
    );
}

#[test]
fn plan_shows_each_verdict_with_its_reason() {
    let spec = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/idempotence/mixed.mig"),
    )
    .unwrap();
    let project = Project::sqlite(TABLE, &spec);
    let out = project.mig(&["plan", "mixed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "  idempotent: normalises `s`: applying it again changes nothing",
        "  not idempotent: multiplies `n` on every run",
        "  idempotence unknown: reads `y`, which this block also sets",
        "  idempotent: does not read `y`",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

fn migrate(runs: u64, idempotent: bool) -> Vec<String> {
    vec![envelope(json!({
        "type": "migrate", "msg_id": 1, "table": "t", "runs": runs, "idempotent": idempotent
    }))]
}

#[test]
fn a_counter_run_three_times_as_idempotent_is_undone_and_refused() {
    let project = Project::sqlite(
        TABLE,
        "migrate bump on t {\n    set n = n + 1\n    batch 40\n}\n",
    );
    let before = project.dump("t");
    let (replies, _) = project.node(&migrate(3, true));
    let refused = reply_to(&replies, 1);
    assert_eq!(refused["code"], 22, "{refused}");
    assert!(
        refused["text"]
            .as_str()
            .unwrap()
            .contains("run 2 changed the state again"),
        "{refused}"
    );
    assert!(
        project.dump("t") == before,
        "the table is as it was before run 1"
    );
    let states: Vec<String> = project.runs().into_iter().map(|r| r.0).collect();
    assert_eq!(states, ["rolled_back", "rolled_back"]);
}

#[test]
fn a_counter_run_three_times_without_the_promise_changes_every_time() {
    let project = Project::sqlite(TABLE, "migrate bump on t {\n    set n = n + 1\n}\n");
    let sum_before = project.query_i64("SELECT sum(n) FROM t").unwrap();
    let (replies, _) = project.node(&migrate(3, false));
    let done = reply_to(&replies, 1);
    assert_eq!(done["type"], "migration_complete", "{done}");
    assert_eq!(done["rows_updated"], 900);
    assert_eq!(done["final_state"], "changed");
    assert_eq!(
        project.query_i64("SELECT sum(n) FROM t"),
        Some(sum_before + 3 * 300)
    );
}

#[test]
fn a_proven_set_run_three_times_is_unchanged_after_run_1() {
    let project = Project::sqlite(
        TABLE,
        "migrate tidy on t {\n    set s = lower(trim(s))\n}\n",
    );
    let (replies, _) = project.node(&migrate(3, true));
    let done = reply_to(&replies, 1);
    assert_eq!(done["type"], "migration_complete", "{done}");
    assert_eq!(done["rows_updated"], 200);
    assert_eq!(done["final_state"], "unchanged");
}
