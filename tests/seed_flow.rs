//! The demo's documented flow through the node, exact to the row, on every store.
mod common;

use common::{backends, envelope, reply_to, stable, Backend, Project};
use serde_json::json;

#[test]
fn seed_flow_is_exact_on_a_fresh_demo_database() {
    for backend in backends() {
        seed_flow_on(&backend);
    }
}

fn seed_flow_on(backend: &Backend) {
    let project = Project::demo_on(backend);
    let (replies, stderr) = project.node(&[
        envelope(json!({"type": "backfill", "msg_id": 1, "table": "users", "column": "full_name", "batch_size": 1000, "total_rows": 10000})),
        envelope(json!({"type": "validate", "msg_id": 2, "table": "users", "validations": ["no_nulls", "email_format"]})),
        envelope(json!({"type": "migrate", "msg_id": 3, "idempotent": true, "table": "users", "runs": 3})),
        envelope(json!({"type": "backfill", "msg_id": 4, "table": "users", "column": "full_name", "batch_size": 1000, "total_rows": 10000})),
    ]);
    for r in &replies {
        assert_eq!(r["src"], "migrations", "{r}");
        assert_eq!(r["dest"], "admin", "{r}");
    }
    let first = reply_to(&replies, 1);
    assert!(first["duration_seconds"].as_f64().unwrap() > 0.0, "{first}");
    assert_eq!(
        stable(first),
        json!({"type": "backfill_complete", "in_reply_to": 1, "total_processed": 10000, "total_updated": 9500}),
        "{}: stderr: {stderr}",
        backend.name()
    );
    assert_eq!(
        stable(reply_to(&replies, 2)),
        json!({"type": "validation_results", "in_reply_to": 2, "results": [
            {"name": "no_nulls", "passed": true, "failed_rows": 0},
            {"name": "email_format", "passed": true, "failed_rows": 0}]})
    );
    assert_eq!(
        stable(reply_to(&replies, 3)),
        json!({"type": "migration_complete", "in_reply_to": 3, "rows_updated": 100, "final_state": "unchanged"})
    );
    assert_eq!(
        stable(reply_to(&replies, 4)),
        json!({"type": "backfill_complete", "in_reply_to": 4, "total_processed": 10000, "total_updated": 0})
    );
}

#[test]
fn no_nulls_fails_on_9500_rows_before_the_backfill() {
    for backend in backends() {
        no_nulls_fails_before_the_backfill_on(&backend);
    }
}

fn no_nulls_fails_before_the_backfill_on(backend: &Backend) {
    let project = Project::demo_on(backend);
    let (replies, _) = project.node(&[envelope(
        json!({"type": "validate", "msg_id": 1, "table": "users", "validations": ["no_nulls"]}),
    )]);
    assert_eq!(
        stable(reply_to(&replies, 1)),
        json!({"type": "validation_results", "in_reply_to": 1, "results": [
            {"name": "no_nulls", "passed": false, "failed_rows": 9500}]})
    );
}

#[test]
fn demo_command_tells_the_flow_and_ends_with_nothing_left_to_write() {
    let project = Project::demo();
    let out = project.mig(&["demo"]);
    let text = common::stdout(&out);
    assert!(out.status.success(), "{text}\n{}", common::stderr(&out));
    assert!(
        text.contains("10000 rows processed, 9500 updated"),
        "{text}"
    );
    assert!(text.contains("no_nulls: passed (0 failed rows)"), "{text}");
    assert!(
        text.contains("100 rows updated in all; final state unchanged"),
        "{text}"
    );
    assert!(text.contains("10000 rows processed, 0 updated"), "{text}");
    let again = project.mig(&["demo"]);
    assert_eq!(
        common::stdout(&again)
            .lines()
            .filter(|l| l.contains("updated"))
            .count(),
        text.lines().filter(|l| l.contains("updated")).count(),
        "a second demo starts from a fresh database and tells the same story"
    );
}
