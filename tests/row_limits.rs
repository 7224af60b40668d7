//! A run's row limit (`--limit`, the node's `total_rows`) counts its rows from its start, so
//! a stopped run resumes only under the limit it started with. Resumed under another, or
//! none, it once silently processed more or fewer rows than either asked for: all 6 rows for
//! a request of 1, or 3 for a request without a limit, answered as complete.
mod common;

use common::{backends, envelope, reply_to, stderr, stdout, Backend, Project, Setup};
use serde_json::json;

/// Row 2's `a` is 0, so `10 / a` stops the run there: after batch 1, at checkpoint 1.
const TABLE: &str = "CREATE TABLE w (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);
     INSERT INTO w VALUES (1, 1, NULL), (2, 0, NULL), (3, 1, NULL), (4, 1, NULL), (5, 1, NULL), (6, 1, NULL);";

const SPEC: &str = "backfill b on w {\n    set b = 10 / a\n    batch 1\n}\n";

fn runs(project: &Project) -> Vec<String> {
    project.query("SELECT id || ':' || status || ':' || processed FROM _mig_runs ORDER BY id")
}

#[test]
fn a_stopped_run_resumes_only_under_the_limit_it_started_with() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &setup, SPEC);
        let out = project.mig(&["run", "w.b", "--limit", "3"]);
        assert_eq!(out.status.code(), Some(4), "{name}: {}", stderr(&out));
        project.execute("UPDATE w SET a = 1 WHERE id = 2");

        for (args, asked, restart) in [
            (
                vec!["run", "w.b"],
                "no row limit",
                "`mig run w.b --restart`",
            ),
            (
                vec!["run", "w.b", "--limit", "5"],
                "a row limit of 5",
                "`mig run w.b --restart --limit 5`",
            ),
        ] {
            let out = project.mig(&args);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{name} {args:?}: {}",
                stderr(&out)
            );
            let said = format!(
                "run 1 of w.b stopped at its checkpoint with a row limit of 3, and this run asks for {asked}; \
                 resume it with the limit it started with (`mig run w.b --limit 3`"
            );
            assert!(
                stderr(&out).contains(&said) && stderr(&out).contains(restart),
                "{name} {args:?}: {}",
                stderr(&out)
            );
        }
        if let Backend::Postgres(_) = backend {
            let out = project.mig(&["run", "w.b", "--workers", "2"]);
            assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("with a row limit of 3"),
                "{name}: {}",
                stderr(&out)
            );
        }
        assert_eq!(runs(&project), ["1:running:1"], "{name}: nothing ran");

        let out = project.mig(&["run", "w.b", "--limit", "3"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(runs(&project), ["1:completed:3"], "{name}");
        assert_eq!(
            project.query("SELECT count(*) FROM w WHERE b = 10"),
            ["3"],
            "{name}"
        );
    }
}

#[test]
fn the_node_resumes_a_stopped_run_only_under_its_total_rows() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &setup, SPEC);
        let backfill = |msg_id: u64, total_rows: Option<u64>| {
            let mut body =
                json!({"type": "backfill", "msg_id": msg_id, "table": "w", "column": "b"});
            if let Some(n) = total_rows {
                body["total_rows"] = json!(n);
            }
            envelope(body)
        };
        let (replies, _) = project.node(&[backfill(1, None)]);
        assert_eq!(reply_to(&replies, 1)["code"], 22, "{name}: {replies:?}");
        project.execute("UPDATE w SET a = 1 WHERE id = 2");

        let (replies, _) = project.node(&[backfill(2, Some(1)), backfill(3, None)]);
        let refused = reply_to(&replies, 2);
        assert_eq!(refused["code"], 22, "{name}: {refused}");
        assert!(
            refused["text"]
                .as_str()
                .unwrap()
                .contains("with no row limit, and this run asks for a row limit of 1"),
            "{name}: {refused}"
        );
        let done = reply_to(&replies, 3);
        assert_eq!(done["type"], "backfill_complete", "{name}: {done}");
        assert_eq!(done["total_processed"], 6, "{name}: {done}");
        assert_eq!(
            project.query("SELECT count(*) FROM w WHERE b = 10"),
            ["6"],
            "{name}"
        );
        assert!(
            stdout(&project.mig(&["status"])).contains("completed"),
            "{name}"
        );
    }
}
