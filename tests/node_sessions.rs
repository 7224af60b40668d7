//! The node answers each request as a `mig` command started then would: from the specs and
//! the schema as they are now, on a database connection of its own. It once kept what its
//! first request read for its whole life: later edits to the specs went unseen, and once its
//! PostgreSQL connection was lost, every later request failed with "connection closed".
mod common;

use common::{backends, envelope, postgres_url, Backend, LiveNode, Project, Setup};
use serde_json::{json, Value};

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);
     INSERT INTO t VALUES (1, 'x', NULL), (2, 'y', NULL);";

/// Sends `body` in an envelope and answers the reply's body.
fn ask(node: &mut LiveNode, body: Value) -> Value {
    node.send(envelope(body).as_bytes());
    node.reply()["body"].clone()
}

/// A project on `backend` whose table `t` the spec backfills with `upper(a)`.
fn upper_case_project(backend: &Backend) -> Project {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    Project::on(
        backend,
        &setup,
        "backfill b on t {\n    set b = upper(a)\n}\n",
    )
}

fn plan(msg_id: u64) -> Value {
    json!({"type": "plan", "msg_id": msg_id, "kind": "backfill", "table": "t", "column": "b"})
}

fn backfill(msg_id: u64) -> Value {
    json!({"type": "backfill", "msg_id": msg_id, "table": "t", "column": "b"})
}

#[test]
fn a_spec_edited_while_the_node_runs_is_the_one_its_next_request_runs() {
    for backend in backends() {
        let name = backend.name();
        let project = upper_case_project(&backend);
        let mut node = LiveNode::start(&project);
        let planned = ask(&mut node, plan(1));
        assert_eq!(planned["type"], "plan", "{name}: {planned}");

        project.write_spec("backfill b on t {\n    set b = a || '!'\n}\n");
        let done = ask(&mut node, backfill(2));
        assert_eq!(done["type"], "backfill_complete", "{name}: {done}");
        assert_eq!(
            project.query("SELECT b FROM t ORDER BY id"),
            ["x!", "y!"],
            "{name}"
        );
    }
}

#[test]
fn a_node_whose_postgres_connection_was_killed_answers_its_next_request() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = upper_case_project(&Backend::Postgres(url));
    let mut node = LiveNode::start(&project);
    let planned = ask(&mut node, plan(1));
    assert_eq!(planned["type"], "plan", "{planned}");
    project.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'mig'",
    );
    let done = ask(&mut node, backfill(2));
    assert_eq!(done["type"], "backfill_complete", "{done}");
    assert_eq!(project.query("SELECT b FROM t ORDER BY id"), ["X", "Y"]);
}

/// `status` was answered on the thread that reads requests. Behind a session holding
/// `_mig_runs` locked whole it waited as long as the lock was held, and the node read no
/// request meanwhile; it now answers error 11 after the lock timeout and reads on.
#[test]
fn status_behind_a_locked_runs_table_answers_within_the_lock_timeout() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = upper_case_project(&Backend::Postgres(url));
    assert!(project.mig(&["run", "t.b"]).status.success());
    let lock = project.postgres.as_ref().unwrap().lock_table("_mig_runs");
    let mut node = LiveNode::start(&project);
    let refused = ask(&mut node, json!({"type": "status", "msg_id": 1}));
    assert_eq!(refused["code"], 11, "{refused}");
    lock.release();
    let status = ask(&mut node, json!({"type": "status", "msg_id": 2}));
    assert_eq!(status["runs"][0]["state"], "completed", "{status}");
}
