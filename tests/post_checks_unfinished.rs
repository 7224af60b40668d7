//! A run whose post-checks do not reach a verdict (a check that fails to evaluate, a process
//! killed while they run) stays `checking`, and the next `mig run` runs them again. The run
//! was once marked completed before its checks ran: cut short, it stayed changed with no
//! check applied, and the next `mig run` started a new run that had nothing to undo.
mod common;

use common::{backends, stderr, stdout, Project, Setup};

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, c TEXT);
     INSERT INTO t VALUES (1, 1, 'x'), (2, 2, 'y'), (3, 3, 'z');";

fn spec(check: &str) -> String {
    format!(
        "migrate tag on t {{\n    set c = c || '!'\n    batch 2\n    check sane\n}}\n\
         validate sane on t {{\n    expect {check}\n}}\n"
    )
}

fn status(project: &Project) -> Vec<String> {
    project.query("SELECT id || ':' || status FROM _mig_runs ORDER BY id")
}

#[test]
fn a_check_that_cannot_be_evaluated_leaves_the_run_checking_until_the_next_run_checks_it() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &setup, &spec("length(c) / (a - a) > 0"));
        let before = project.dump("t");

        let out = project.mig(&["run", "tag"]);
        assert_eq!(out.status.code(), Some(4), "{name}: {}", stderr(&out));
        let message = stderr(&out);
        for needle in [
            "run 1 of tag wrote all its batches but its post-checks did not run to the end",
            "division by zero",
            "`mig run tag` runs the checks again",
        ] {
            assert!(message.contains(needle), "{name}: {needle:?} in {message}");
        }
        assert_eq!(status(&project), ["1:checking"], "{name}");
        assert!(
            stdout(&project.mig(&["status"])).contains("checking"),
            "{name}"
        );
        assert!(
            stdout(&project.mig(&["status"])).contains(
                "interrupted (recorded checking, but no process works on it: \
                 `mig run tag` runs its post-checks again)"
            ),
            "{name}: the run's process has ended"
        );

        // The check, fixed, now fails on the rows the run wrote: run 1 is restored.
        project.write_spec(&spec("not c matches '!$'"));
        let out = project.mig(&["run", "tag"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("the run's 3 updated rows were restored"),
            "{name}: {}",
            stderr(&out)
        );
        assert_eq!(status(&project), ["1:failed"], "{name}");
        assert_eq!(project.dump("t"), before, "{name}");

        // A check that passes completes the run it checks.
        project.write_spec(&spec("c matches '!$'"));
        let out = project.mig(&["run", "tag", "--restart"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(status(&project), ["1:failed", "2:completed"], "{name}");
    }
}
