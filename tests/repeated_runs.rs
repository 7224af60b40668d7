//! `migrate` with `runs: N, idempotent: true` is one request: when a later run fails, the
//! table goes back to its state before run 1, as when a later run changes it. A failed run
//! 2 once left run 1 applied and run 2's first batches with it (10, 20, 30 became 10, 0, 0:
//! neither the table before nor after run 1).
mod common;

use common::{backends, envelope, reply_to, stderr, stdout, Project, Setup};
use serde_json::json;

const TABLE: &str = "CREATE TABLE z (id INTEGER PRIMARY KEY, a INTEGER);
     INSERT INTO z VALUES (1, 10), (2, 20), (3, 30);";

fn migrate_three_times(project: &Project) -> serde_json::Value {
    let (replies, _) = project.node(&[envelope(json!({
        "type": "migrate", "msg_id": 1, "table": "z", "runs": 3, "idempotent": true
    }))]);
    reply_to(&replies, 1)
}

#[test]
fn a_later_run_that_fails_leaves_the_table_as_before_run_1() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    // Run 1 leaves 1, 0, 0; run 2 writes 10 to row 1, then divides by row 2's 0.
    let divides = "migrate inv on z {\n    set a = 10 / a\n    batch 1\n}\n";
    // Run 1 leaves 20, 40, 60, which the check passes; run 2's 40, 80, 120 fail it.
    let checked = "migrate dbl on z {\n    set a = a * 2\n    batch 1\n    check small\n}\n\
                   validate small on z {\n    expect a < 70\n}\n";
    for backend in backends() {
        let name = backend.name();
        for (spec, code, says) in [
            (divides, 22, "division by zero"),
            (checked, 22, "post-check failed for dbl: small"),
        ] {
            let project = Project::on(&backend, &setup, spec);
            let reply = migrate_three_times(&project);
            assert_eq!(reply["code"], code, "{name}: {reply}");
            let text = reply["text"].as_str().unwrap();
            assert!(text.starts_with("run 2 of "), "{name}: {text}");
            assert!(text.contains(says), "{name}: {text}");
            assert!(
                text.contains("the table was restored to its state before run 1"),
                "{name}: {text}"
            );
            assert_eq!(
                project.query("SELECT a FROM z ORDER BY id"),
                ["10", "20", "30"],
                "{name}: {spec}"
            );
        }
    }
}

/// `mig run bump` again after run 1 completed would add 1 a second time to every row, and
/// did, without a word: rerun by habit, or on the advice to resume after an error that came
/// as run 1 completed. A set not proven idempotent runs again only with `--again`; `mig plan`
/// says so; a rollback of run 1 frees it. A proven set (`b = a`) runs again as it always did.
#[test]
fn a_completed_run_of_a_set_not_proven_idempotent_is_not_applied_twice_unasked() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    let spec = "migrate bump on z {\n    set a = a + 1\n    batch 2\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let values = || project.query("SELECT a FROM z ORDER BY id");
        assert!(project.mig(&["run", "bump"]).status.success());
        assert_eq!(values(), ["11", "21", "31"], "{backend:?}");

        let again = project.mig(&["run", "bump"]);
        assert_eq!(
            again.status.code(),
            Some(1),
            "{backend:?}: {}",
            stdout(&again)
        );
        let why = stderr(&again);
        assert!(
            why.contains("run 1 of bump completed")
                && why.contains("`set a = a + 1` is not idempotent")
                && why.contains("mig run bump --again"),
            "{backend:?}: {why}"
        );
        assert_eq!(
            values(),
            ["11", "21", "31"],
            "{backend:?}: refused, nothing written"
        );
        let plan = stdout(&project.mig(&["plan", "bump"]));
        assert!(plan.contains("--again"), "{backend:?}: {plan}");

        let asked = project.mig(&["run", "bump", "--again"]);
        assert!(asked.status.success(), "{backend:?}: {}", stderr(&asked));
        assert_eq!(values(), ["12", "22", "32"], "{backend:?}");
        assert!(project.mig(&["rollback", "bump"]).status.success());
        assert_eq!(
            project.mig(&["run", "bump"]).status.code(),
            Some(1),
            "{backend:?}: run 1 is still applied"
        );
        assert!(project.mig(&["rollback", "bump"]).status.success());
        assert_eq!(values(), ["10", "20", "30"], "{backend:?}");
        assert!(
            project.mig(&["run", "bump"]).status.success(),
            "{backend:?}"
        );
        assert_eq!(values(), ["11", "21", "31"], "{backend:?}");
    }
}
