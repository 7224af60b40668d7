//! The node's framing, error codes and concurrency, through the real binary.
mod common;

use common::{backends, envelope, reply_to, Backend, Project};
use serde_json::json;

fn code_of(replies: &[serde_json::Value], msg_id: u64) -> u64 {
    let body = reply_to(replies, msg_id);
    assert_eq!(body["type"], "error", "{body}");
    assert!(!body["text"].as_str().unwrap_or("").is_empty(), "{body}");
    body["code"].as_u64().unwrap()
}

#[test]
fn errors_carry_maelstrom_codes_and_the_node_reads_on() {
    let project = Project::demo();
    let (replies, stderr) = project.node(&[
        envelope(json!({"type": "frobnicate", "msg_id": 1})),
        envelope(json!({"type": "backfill", "msg_id": 2, "column": "full_name"})),
        envelope(json!({"type": "backfill", "msg_id": 3, "table": "users", "column": "nope"})),
        "this is not json".to_string(),
        envelope(json!({"type": "validate", "msg_id": 4, "table": "users", "validations": ["nope"]})),
        envelope(json!({"type": "backfill", "msg_id": 5, "table": "users", "column": "full_name", "batch_size": "many"})),
        envelope(json!({"type": "backfill", "msg_id": 6, "table": "users", "column": "full_name", "colour": "red"})),
        envelope(json!({"type": "validate", "msg_id": 7, "table": "orders", "validations": ["no_nulls"]})),
        envelope(json!({"type": "backfill", "msg_id": 8, "table": "users", "column": "full_name", "batch_size": 0})),
        envelope(json!({"type": "status", "msg_id": 9})),
    ]);
    assert_eq!(code_of(&replies, 1), 10);
    let missing = reply_to(&replies, 2);
    assert_eq!(missing["code"], 12);
    assert!(
        missing["text"].as_str().unwrap().contains("table"),
        "{missing}"
    );
    assert_eq!(code_of(&replies, 3), 20);
    assert_eq!(code_of(&replies, 4), 20);
    let mistyped = reply_to(&replies, 5);
    assert_eq!(mistyped["code"], 12);
    assert!(
        mistyped["text"].as_str().unwrap().contains("batch_size"),
        "{mistyped}"
    );
    let unknown = reply_to(&replies, 6);
    assert_eq!(unknown["code"], 12);
    assert!(
        unknown["text"].as_str().unwrap().contains("colour"),
        "{unknown}"
    );
    assert_eq!(code_of(&replies, 7), 20);
    assert_eq!(code_of(&replies, 8), 12);
    assert_eq!(reply_to(&replies, 9)["type"], "status");
    let bare_error = replies
        .iter()
        .find(|r| r.get("body").is_none() && r["type"] == "error")
        .unwrap_or_else(|| panic!("no error for the non-JSON line: {replies:?}"));
    assert_eq!(bare_error["code"], 12);
    assert!(bare_error.get("in_reply_to").is_none());
    assert!(
        stderr.contains("not valid JSON"),
        "logs go to stderr: {stderr}"
    );
}

#[test]
fn init_names_the_node_and_bare_bodies_get_bare_replies() {
    let project = Project::demo();
    let (replies, _) = project.node(&[
        envelope(json!({"type": "status", "msg_id": 1})),
        envelope(json!({"type": "init", "msg_id": 2, "node_id": "n7", "node_ids": ["n7"]})),
        envelope(json!({"type": "status", "msg_id": 3})),
        json!({"type": "status", "msg_id": 4}).to_string(),
    ]);
    let before = replies
        .iter()
        .find(|r| r["body"]["in_reply_to"] == 1)
        .unwrap();
    assert_eq!(
        before["src"], "migrations",
        "read before init, a request is answered from its dest"
    );
    assert_eq!(reply_to(&replies, 2)["type"], "init_ok");
    let after = replies
        .iter()
        .find(|r| r["body"]["in_reply_to"] == 3)
        .unwrap();
    assert_eq!(after["src"], "n7");
    assert_eq!(after["dest"], "admin");
    let bare = replies.iter().find(|r| r["in_reply_to"] == 4).unwrap();
    assert_eq!(bare["type"], "status");
    assert!(bare.get("body").is_none());
    let ids: Vec<u64> = replies
        .iter()
        .map(|r| r.get("body").unwrap_or(r)["msg_id"].as_u64().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "replies carry increasing msg_ids: {ids:?}"
    );
}

#[test]
fn status_is_answered_while_a_long_run_holds_the_worker() {
    let project = Project::sqlite(
        &common::numbered_t(400),
        "backfill b on t {\n    set b = a * 2\n    batch 10\n    pause 50ms\n}\n",
    );
    let (replies, stderr) = project.node(&[
        envelope(json!({"type": "backfill", "msg_id": 1, "table": "t", "column": "b"})),
        envelope(json!({"type": "status", "msg_id": 2})),
    ]);
    let position = |id: u64| {
        replies
            .iter()
            .position(|r| r["body"]["in_reply_to"] == id)
            .unwrap_or_else(|| panic!("no reply to {id}: {replies:?} {stderr}"))
    };
    assert!(
        position(2) < position(1),
        "status must not wait for the run: {replies:?}"
    );
    assert_eq!(reply_to(&replies, 1)["total_updated"], 400);
}

#[test]
fn rollback_restores_a_backfill_through_the_node() {
    for backend in backends() {
        rollback_restores_a_backfill_on(&backend);
    }
}

fn rollback_restores_a_backfill_on(backend: &Backend) {
    let project = Project::demo_on(backend);
    let before = project.node(&[envelope(json!({"type": "status", "msg_id": 1}))]);
    assert_eq!(reply_to(&before.0, 1)["runs"], json!([]));
    let original = project.dump("users");
    let (replies, _) = project.node(&[
        envelope(json!({"type": "backfill", "msg_id": 1, "table": "users", "column": "full_name"})),
        envelope(json!({"type": "rollback", "msg_id": 2, "table": "users", "column": "full_name"})),
    ]);
    let rollback = reply_to(&replies, 2);
    assert_eq!(rollback["type"], "rollback_complete", "{rollback}");
    assert_eq!(rollback["rows_restored"], 9500);
    assert_eq!(rollback["conflicts"], 0);
    assert_eq!(project.dump("users"), original);
    let (status, _) = project.node(&[envelope(json!({"type": "status", "msg_id": 1}))]);
    let runs = reply_to(&status, 1)["runs"].clone();
    assert_eq!(runs[0]["state"], "rolled_back", "{runs}");
}

#[test]
fn plan_request_answers_the_steps() {
    let project = Project::demo();
    let (replies, _) = project.node(&[envelope(json!({
        "type": "plan", "msg_id": 1, "kind": "backfill", "table": "users", "column": "full_name", "batch_size": 500
    }))]);
    let plan = reply_to(&replies, 1);
    assert_eq!(plan["type"], "plan", "{plan}");
    let steps: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(
        steps.iter().any(|s| s.contains("batches of 500")),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.contains("UPDATE OR ABORT \"users\"")),
        "{steps:?}"
    );
}
