//! A node client can do what `mig run --restart` does: give up a migration's unfinished run
//! and start anew, with `"restart": true` on `backfill` or `migrate`. Before, the node's
//! errors advised `--restart`, which no request could send, so a run stopped under a changed
//! spec could be finished only from a shell.
mod common;

use common::{backends, envelope, reply_to, Project, Setup};
use serde_json::json;

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);\n\
     INSERT INTO t VALUES (1, 1, NULL), (2, 2, NULL), (3, 3, NULL), (4, 4, NULL);\n";

#[test]
fn a_request_with_restart_abandons_the_run_a_changed_spec_stopped() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(
            &backend,
            &setup,
            "backfill b on t {\n    set b = 10 / (a - 3)\n    batch 2\n}\n\n\
             migrate double on t {\n    set b = 20 / (a - 3)\n    batch 2\n}\n",
        );
        // Both migrations stop at their second batch (a division by zero at row 3), then
        // their specs change.
        for args in [["run", "t.b"], ["run", "double"]] {
            assert_eq!(
                project.mig(&args).status.code(),
                Some(4),
                "{name}: {args:?}"
            );
        }
        project.write_spec(
            "backfill b on t {\n    set b = a + 10\n    batch 2\n}\n\n\
             migrate double on t {\n    set b = a * 3\n    batch 2\n}\n",
        );

        let backfill = json!({"type": "backfill", "msg_id": 1, "table": "t", "column": "b"});
        let (replies, log) = project.node(&[envelope(backfill.clone())]);
        let refused = reply_to(&replies, 1);
        assert_eq!(refused["code"], 22, "{name}: {refused}\n{log}");
        assert!(
            refused["text"]
                .as_str()
                .unwrap_or("")
                .ends_with("(through the node: the same request with \"restart\": true)"),
            "{name}: {refused}"
        );

        let mut restarted = backfill.clone();
        restarted["restart"] = json!(true);
        let migrate = json!({"type": "migrate", "msg_id": 2, "table": "t", "name": "double",
                             "restart": true});
        let (replies, log) = project.node(&[envelope(restarted), envelope(migrate)]);
        let done = reply_to(&replies, 1);
        assert_eq!(done["type"], "backfill_complete", "{name}: {done}\n{log}");
        assert_eq!(done["total_processed"], 4, "{name}: {done}");
        let done = reply_to(&replies, 2);
        assert_eq!(done["type"], "migration_complete", "{name}: {done}\n{log}");
        assert_eq!(done["rows_updated"], 4, "{name}: {done}");
        assert_eq!(
            project.query("SELECT b FROM t ORDER BY id"),
            ["3", "6", "9", "12"],
            "{name}"
        );

        let wrong = json!({"type": "backfill", "msg_id": 3, "table": "t", "column": "b",
                           "restart": "yes"});
        // `plan` takes the fields of the request it plans, `restart` checked as there.
        let planned = json!({"type": "plan", "msg_id": 4, "kind": "backfill", "table": "t",
                             "column": "b", "restart": true});
        let wrong_plan = json!({"type": "plan", "msg_id": 5, "kind": "backfill", "table": "t",
                                "column": "b", "restart": 1});
        let (replies, _) =
            project.node(&[envelope(wrong), envelope(planned), envelope(wrong_plan)]);
        for id in [3, 5] {
            let refused = reply_to(&replies, id);
            assert_eq!(refused["code"], 12, "{name}: {refused}");
            assert!(
                refused["text"].as_str().unwrap_or("").contains("restart"),
                "{name}: {refused}"
            );
        }
        assert_eq!(reply_to(&replies, 4)["type"], "plan", "{name}");
    }
}
