//! Several workers share one run on PostgreSQL: key ranges are claimed from the database, so
//! each row is processed exactly once, whether the workers are threads or processes.
mod common;

use common::{postgres_url, stderr, stdout, Backend, Project, Setup};
use std::process::Stdio;

const TABLE: Setup = Setup {
    sqlite: "",
    postgres: "CREATE TABLE t (id bigint PRIMARY KEY, n bigint NOT NULL);
               INSERT INTO t SELECT i, i FROM generate_series(1, 3000) AS i;",
};

/// Not idempotent on purpose: a row processed twice would show it.
const SPEC: &str = "migrate bump on t {\n    set n = n + 1\n    batch 50\n}\n";

/// The run's totals are a one-worker run's over `TABLE`: 3000 rows processed, 3000 updated.
fn assert_totals_of_one_worker(project: &Project) {
    assert_eq!(
        project.query("SELECT processed || '/' || updated FROM _mig_runs"),
        ["3000/3000"]
    );
}

/// Every one of `TABLE`'s 3000 rows went through `SPEC`'s `n + 1` exactly once.
fn assert_every_row_bumped_once(project: &Project) {
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE n = id + 1"),
        ["3000"],
        "every row bumped exactly once"
    );
}

#[test]
fn three_processes_with_two_workers_each_process_every_row_once() {
    let Some(url) = postgres_url() else {
        return;
    };
    let shared = Project::on(&Backend::Postgres(url.clone()), &TABLE, SPEC);
    let processes: Vec<_> = (0..3)
        .map(|_| {
            shared
                .command(&["run", "bump", "--workers", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for process in processes {
        let out = process.wait_with_output().unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    assert_every_row_bumped_once(&shared);
    let shared_totals =
        shared.query("SELECT processed || '/' || updated || '/' || batches FROM _mig_runs");
    assert_eq!(
        shared.query("SELECT count(*) FROM _mig_runs"),
        ["1"],
        "one run, shared"
    );
    assert_eq!(
        shared.query("SELECT count(*) FROM _mig_claims WHERE NOT done"),
        ["0"]
    );

    let alone = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let out = alone.mig(&["run", "bump"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        alone.query("SELECT processed || '/' || updated || '/' || batches FROM _mig_runs"),
        shared_totals,
        "the shared run's totals equal a one-worker run's"
    );
    assert_eq!(alone.dump("t"), shared.dump("t"));

    let out = shared.mig(&["rollback", "bump"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3000 rows restored, 0 conflicts"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        shared.query("SELECT count(*) FROM t WHERE n = id"),
        ["3000"]
    );
}

#[test]
fn workers_started_together_share_one_fresh_run_and_report_it_whole() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let out = project.mig(&["run", "bump", "--workers", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(
        summary.contains("bump: run 1: 3000 rows processed, 3000 updated"),
        "{summary}"
    );
    assert!(!summary.contains("resumed"), "{summary}");
    assert_eq!(
        project.query("SELECT count(*) FROM _mig_runs"),
        ["1"],
        "workers started together share one run"
    );
}

#[test]
fn workers_on_sqlite_are_refused_clearly() {
    let project = Project::sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO t VALUES (1, 1);",
        SPEC,
    );
    let out = project.mig(&["run", "bump", "--workers", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("workers need PostgreSQL"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM sqlite_master WHERE name = '_mig_runs'"),
        ["0"],
        "refused before anything was written, mig's tables too"
    );
}

/// Workers share pushed-down steps only. A step on the read-compute-write path (`upper`,
/// which only the interpreter computes) is refused before its run opens: refused once the
/// workers started, it left a run `running` with nothing done.
#[test]
fn workers_refuse_a_read_compute_write_step_before_its_run_opens() {
    let spec = "backfill b on w {\n    set b = upper(a)\n    batch 5\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE w (id integer PRIMARY KEY, a text, b text);
                   INSERT INTO w SELECT i, 'x' || i, NULL FROM generate_series(1, 20) AS i;",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["run", "w.b", "--workers", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("workers share pushed-down steps only"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT to_regclass('_mig_runs') IS NULL"),
        ["t"],
        "refused before anything was written, mig's tables too"
    );
    let out = project.mig(&["run", "w.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT id || ':' || status FROM _mig_runs"),
        ["1:completed"]
    );
}

#[test]
fn a_claim_left_by_a_stopped_worker_is_taken_over_and_done_once() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 50\n    lock_timeout 100ms\n    retries 0\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let lock = project.postgres.as_ref().unwrap().lock_row(1234);
    let out = project.mig(&["run", "bump", "--workers", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM _mig_claims WHERE NOT done"),
        ["1"],
        "the range with the locked row stays claimed and undone"
    );
    lock.release();
    // Retries and lock timeout are not part of the run's spec: the workers resume it with
    // room to wait for each other on the run's row, which every batch locks.
    project.write_spec(&spec.replace("retries 0", "retries 5"));
    let out = project.mig(&["run", "bump", "--workers", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("bump: run 1 (resumed): 3000 rows processed"),
        "the summary is the whole run's, resumed: {}",
        stdout(&out)
    );
    assert_every_row_bumped_once(&project);
    assert_totals_of_one_worker(&project);
}

#[test]
fn a_shared_run_is_not_resumed_alone() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 50\n    lock_timeout 100ms\n    retries 0\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let lock = project.postgres.as_ref().unwrap().lock_row(1234);
    assert_eq!(
        project
            .mig(&["run", "bump", "--workers", "1"])
            .status
            .code(),
        Some(3)
    );
    lock.release();
    let out = project.mig(&["run", "bump"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: run 1 is shared by workers (its key ranges are in _mig_claims), so one process \
         alone does not walk it; this one stopped without writing: resume the run with --workers\n"
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE n = id + 2"),
        ["0"]
    );
}

/// A worker killed with SIGKILL while its batch waits for a row lock leaves its claim undone;
/// the workers started next take it over and every row is bumped exactly once.
#[test]
fn a_claim_of_a_worker_killed_mid_batch_is_taken_over_and_done_once() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 50\n    lock_timeout 5s\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let lock = project.postgres.as_ref().unwrap().lock_row(1234);
    let mut worker = project.spawn_mig(&["run", "bump", "--workers", "1"]);
    project.postgres.as_ref().unwrap().wait_for_a_lock_wait();
    worker.kill().unwrap();
    worker.wait().unwrap();
    lock.release();
    let out = project.mig(&["run", "bump", "--workers", "2"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_every_row_bumped_once(&project);
    assert_eq!(
        project.query("SELECT count(*) FROM _mig_claims WHERE NOT done"),
        ["0"]
    );
    assert_totals_of_one_worker(&project);
}

/// Workers of one process join the run it opened: one that starts after the others have
/// finished the run finds nothing left, instead of opening a new run and processing every
/// row again. A table of a few rows is finished before the last of 4 workers starts.
#[test]
fn a_worker_starting_after_the_run_ended_processes_nothing_again() {
    let Some(url) = postgres_url() else {
        return;
    };
    let small = Setup {
        sqlite: "",
        postgres: "CREATE TABLE t (id bigint PRIMARY KEY, n bigint NOT NULL);
                   INSERT INTO t SELECT i, i FROM generate_series(1, 10) AS i;",
    };
    for attempt in 0..5 {
        let project = Project::on(&Backend::Postgres(url.clone()), &small, SPEC);
        let out = project.mig(&["run", "bump", "--workers", "4"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            project.query("SELECT count(*) FROM t WHERE n = id + 1"),
            ["10"],
            "attempt {attempt}: every row bumped exactly once; runs: {:?}",
            project.query("SELECT id || ' ' || status || ' ' || processed FROM _mig_runs")
        );
        assert_eq!(
            project.query("SELECT count(*) FROM _mig_runs"),
            ["1"],
            "attempt {attempt}: one run"
        );
        assert!(
            stdout(&out).contains("10 rows processed, 10 updated"),
            "attempt {attempt}: {}",
            stdout(&out)
        );
    }
}

/// Every worker of a shared run reaches its end; only the one that completes it runs the
/// post-checks. When they fail, that one worker restores the run: two rollbacks of one run
/// would each find the other's restored rows changed since and record them as conflicts.
#[test]
fn a_failing_post_check_of_a_shared_run_is_rolled_back_once_without_conflicts() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 50\n    check small\n}\n\
                validate small on t {\n    expect n < 2500\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let before = project.dump("t");
    let out = project.mig(&["run", "bump", "--workers", "4"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "post-check failed for bump: small failed on 502 rows, the first at key 2499; \
             the run's 3000 updated rows were restored from the backup (0 conflicts)"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(project.dump("t"), before);
    assert_eq!(project.query("SELECT count(*) FROM _mig_conflicts"), ["0"]);
    assert_eq!(project.query("SELECT status FROM _mig_runs"), ["failed"]);
}

/// Two processes share a run with a post-check: it runs once, in the process whose worker
/// completed the run; the other says where it ran.
#[test]
fn the_post_checks_of_a_run_shared_by_two_processes_run_once() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 10\n    check positive\n}\n\
                validate positive on t {\n    expect n > 0\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let processes: Vec<_> = (0..2)
        .map(|_| {
            project
                .command(&["run", "bump", "--workers", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outputs = Vec::new();
    for process in processes {
        let out = process.wait_with_output().unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        outputs.push(stdout(&out));
    }
    let checked = outputs
        .iter()
        .filter(|o| o.contains("check positive: passed (0 failed rows)"))
        .count();
    let elsewhere = outputs
        .iter()
        .filter(|o| o.contains("post-checks: not run here: another mig process completed the run"))
        .count();
    assert_eq!((checked, elsewhere), (1, 1), "{outputs:?}");
    assert_every_row_bumped_once(&project);
}

/// A rollback started while workers run: each claim commits only while the run is still
/// running, under the run's row lock, so once the rollback has marked the run, no worker
/// writes another row; the rollback restores every row written before, and the workers stop.
#[test]
fn a_rollback_beside_running_workers_stops_them_and_restores_everything() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 20\n    pause 50ms\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let before = project.dump("t");
    let mut workers = project.spawn_mig(&["run", "bump", "--workers", "2"]);
    project.wait_for_batches(&mut workers, 4);
    let out = project.mig(&["rollback", "bump"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(", 0 conflicts"), "{}", stdout(&out));
    assert_eq!(
        workers.wait().unwrap().code(),
        Some(1),
        "the workers' next claims find the run rolled back and write nothing"
    );
    assert_eq!(
        project.dump("t"),
        before,
        "every row the workers wrote is restored"
    );
    assert_eq!(
        project.query("SELECT status FROM _mig_runs"),
        ["rolled_back"]
    );
    assert_eq!(project.query("SELECT count(*) FROM _mig_backup"), ["0"]);
}

/// Workers report progress as one run does: piped, a line a second with the rows the
/// process's workers processed together.
#[test]
fn workers_print_their_summed_progress_when_piped() {
    let Some(url) = postgres_url() else {
        return;
    };
    // 150 claims with 20 ms after each, two workers: over 1.5 s, so a line must show.
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 20\n    pause 20ms\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let out = project.mig(&["run", "bump", "--workers", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("bump: ") && l.contains("/3000 rows processed"))
        .collect();
    assert!(!lines.is_empty(), "no progress line on piped stderr: {err}");
    let processed: u64 = lines[0]["bump: ".len()..]
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {}", lines[0]));
    assert!(
        processed > 0 && processed.is_multiple_of(20),
        "whole claims of both workers: {}",
        lines[0]
    );
}

/// A run one process walked alone and stopped is resumed by workers from its checkpoint:
/// the rows it wrote are not written again, and the workers' batches are numbered after its
/// own, so every batch keeps a backup of its own for rollback.
#[test]
fn a_run_stopped_alone_is_resumed_by_workers_from_its_checkpoint() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 50\n    lock_timeout 100ms\n    retries 0\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let before = project.dump("t");
    let lock = project.postgres.as_ref().unwrap().lock_row(1234);
    assert_eq!(project.mig(&["run", "bump"]).status.code(), Some(3));
    lock.release();
    assert_eq!(
        project.query("SELECT checkpoint_int || ' ' || batches FROM _mig_runs"),
        ["1200 24"],
        "stopped alone before the locked row"
    );

    // Retries and lock timeout are not part of the run's spec: the workers resume it with
    // room to wait for each other on the run's row, which every batch locks.
    project.write_spec(&spec.replace("retries 0", "retries 5"));
    let out = project.mig(&["run", "bump", "--workers", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("bump: run 1 (resumed): 3000 rows processed, 3000 updated"),
        "{}",
        stdout(&out)
    );
    assert_every_row_bumped_once(&project);
    assert_eq!(
        project.query("SELECT min(batch) || ' ' || max(batch) || ' ' || count(*) FROM _mig_backup"),
        ["1 60 60"]
    );

    let out = project.mig(&["rollback", "bump"]);
    assert!(
        stdout(&out).contains("3000 rows restored, 0 conflicts"),
        "{}",
        stdout(&out)
    );
    assert_eq!(project.dump("t"), before);
}

/// Workers joining a run another process is walking alone take it over: that process's next
/// batch finds the run shared and stops, and the workers claim on from where it committed,
/// under the run's row lock, so no row is written twice.
#[test]
fn a_run_walked_alone_stops_when_workers_join_it_and_every_row_is_written_once() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 20\n    pause 50ms\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let mut alone = project
        .command(&["run", "bump"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    project.wait_for_batches(&mut alone, 3);
    let out = project.mig(&["run", "bump", "--workers", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let alone = alone.wait_with_output().unwrap();
    assert!(!alone.status.success(), "{}", stdout(&alone));
    assert!(
        stderr(&alone).contains("run 1 is shared by workers"),
        "{}",
        stderr(&alone)
    );
    assert_every_row_bumped_once(&project);
    assert_totals_of_one_worker(&project);
}

/// More workers than the server takes connections are refused before the run opens, with
/// what it takes, instead of failing one by one while the others run.
#[test]
fn more_workers_than_the_server_takes_connections_are_refused_before_the_run_opens() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let before = project.dump("t");
    let max: u64 = project.query("SHOW max_connections")[0].parse().unwrap();
    let out = project.mig(&["run", "bump", "--workers", &(max + 1).to_string()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("--workers {} needs {0} connections", max + 1)),
        "{}",
        stderr(&out)
    );
    assert_eq!(project.dump("t"), before);
    assert_eq!(
        project.query("SELECT to_regclass('_mig_runs') IS NULL"),
        ["t"],
        "no run opened, nor mig's tables made"
    );
}

/// A shared run stopped by a batch that fails again: the error says so and names
/// `--workers`, and `mig plan` says that `mig run` alone refuses the run and `--workers`
/// resumes it. The error was the bare database error, and the plan said `mig run` would
/// resume the run at its checkpoint.
#[test]
fn plan_says_a_stopped_shared_run_resumes_with_workers() {
    let spec = "migrate wm on w {\n    set b = 10 / n\n    batch 100\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE w (id bigint PRIMARY KEY, n bigint, b bigint);
                   INSERT INTO w SELECT i, CASE WHEN i = 1500 THEN 0 ELSE i END, NULL
                   FROM generate_series(1, 3000) AS i;",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["run", "wm", "--workers", "2"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    // The failed batch's error says, as a lone run's does, that it will fail again.
    assert!(
        stderr(&out).contains(
            "shared by workers, failed and was rolled back; its key range stays to do, for the \
             workers that resume the run, and the spec's expression failed on a row of this \
             batch, as it will again: fix the row and `mig run wm --workers N` resumes the run"
        ),
        "{}",
        stderr(&out)
    );
    let plan = stdout(&project.mig(&["plan", "wm"]));
    assert!(
        plan.contains("run 1 is unfinished and shared by workers")
            && plan.contains("`mig run wm` alone refuses it; `mig run wm --workers N` resumes it"),
        "{plan}"
    );
    let out = project.mig(&["run", "wm"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// Ctrl-C stops every worker after its batch in flight, and the message gives the run's
/// totals, as `mig status` does; it gave the rows of whichever worker reported first, a
/// third of them with three workers.
#[test]
fn workers_stopped_by_ctrl_c_report_the_runs_totals() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate bump on t {\n    set n = n + 1\n    batch 50\n    pause 100ms\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let mut run = project
        .command(&["run", "bump", "--workers", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // _mig_claims is made by the run as it opens, after the process starts.
    let done = || {
        project
            .query("SELECT count(*) FROM pg_tables WHERE tablename = '_mig_claims'")
            .first()
            .is_some_and(|n| n == "1")
            && project.query("SELECT count(*) FROM _mig_claims WHERE done")[0]
                .parse::<u64>()
                .unwrap()
                >= 12
    };
    while !done() {
        if run.try_wait().unwrap().is_some() {
            panic!(
                "the run ended too soon: {}",
                stderr(&run.wait_with_output().unwrap())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let totals = project
        .query("SELECT processed || ' rows processed, ' || updated || ' updated' FROM _mig_runs");
    assert!(
        stderr(&out).contains(&format!(
            "run 1 of bump stopped at the key ranges its workers have done ({})",
            totals[0]
        )),
        "{}",
        stderr(&out)
    );
}
