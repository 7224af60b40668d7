//! Two `mig run` processes on one migration, without workers: both resume the same run, and
//! the first to commit a batch wins it. The other finds the run moved on when it opens its
//! next batch and stops, writing nothing, so no row is processed twice.
mod common;

use common::{backends, stderr, stdout, Project, Setup};
use std::process::Stdio;
use std::time::Duration;

const TABLE: Setup = Setup {
    sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 300)
             INSERT INTO t SELECT i, i FROM s;",
    postgres: "CREATE TABLE t (id bigint PRIMARY KEY, n bigint NOT NULL);
               INSERT INTO t SELECT i, i FROM generate_series(1, 300) AS i;",
};

/// Not idempotent on purpose: a row processed twice would show it. 30 batches 100 ms apart
/// leave the second process seconds to start while the first is still running.
const SPEC: &str = "migrate bump on t {\n    set n = n + 1\n    batch 10\n    pause 100ms\n}\n";

#[test]
fn a_second_process_on_a_running_migration_stops_without_writing_a_row_twice() {
    for backend in backends() {
        let project = Project::on(&backend, &TABLE, SPEC);
        let spawn = || {
            project
                .command(&["run", "bump"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let first = spawn();
        // Once the first batch is in, the run exists for the second process to resume.
        while project.query("SELECT count(*) FROM t WHERE n = id + 1") == ["0"] {
            std::thread::sleep(Duration::from_millis(5));
        }
        let second = spawn();
        let outputs = [
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        ];
        let said: Vec<String> = outputs
            .iter()
            .map(|o| format!("{}{}", stdout(o), stderr(o)))
            .collect();
        let stopped = said
            .iter()
            .filter(|s| s.contains("moved on without this process"))
            .count();
        assert_eq!(
            stopped,
            1,
            "{}: one of the two stops: {said:?}",
            backend.name()
        );
        assert_eq!(
            project.query("SELECT count(*) FROM t WHERE n = id + 1"),
            ["300"],
            "{}: every row bumped exactly once: {said:?}",
            backend.name()
        );
        assert_eq!(
            project.query("SELECT status || ' ' || processed || ' ' || updated FROM _mig_runs"),
            ["completed 300 300"],
            "{}: one run, its totals those of one process",
            backend.name()
        );
    }
}
