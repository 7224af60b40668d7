//! Live traffic on PostgreSQL: a row the application holds locked makes a batch wait at most
//! its `lock_timeout`, is retried `retries` times, and then stops the run at its checkpoint.
mod common;

use common::{envelope, postgres_url, reply_to, stderr, stdout, Backend, Project, Setup};
use serde_json::json;
use std::process::Output;
use std::time::Duration;

const TABLE: Setup = Setup {
    sqlite: "",
    postgres: "CREATE TABLE t (id bigint PRIMARY KEY, a integer, b integer);
               INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 100) AS i;",
};

const SPEC: &str = "backfill b on t {\n    set b = a * 2\n    batch 10\n    lock_timeout 100ms\n    retries 2\n}\n";

#[test]
fn a_held_row_lock_stops_the_run_at_its_checkpoint_and_it_resumes_later() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let lock = project.postgres.as_ref().unwrap().lock_row(35);

    let out = project.mig(&["run", "t.b"]);
    assert_stopped(&out, &["lock timeout after 2 retries"]);
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["30"],
        "the three batches before the locked row are committed"
    );
    let (replies, _) = project.node(&[envelope(
        json!({"type": "backfill", "msg_id": 1, "table": "t", "column": "b"}),
    )]);
    assert_eq!(reply_to(&replies, 1)["code"], 11, "{replies:?}");

    lock.release();
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["100"]
    );
    assert_eq!(
        project.query("SELECT count(*) FROM _mig_runs"),
        ["1"],
        "the stopped run was resumed, not started anew"
    );
}

#[test]
fn a_lock_released_within_the_retries_costs_only_a_wait() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = SPEC.replace("retries 2", "retries 5");
    let project = Project::on(&Backend::Postgres(url), &TABLE, &spec);
    let lock = project.postgres.as_ref().unwrap().lock_row(55);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        lock.release();
    });
    let out = project.mig(&["run", "t.b"]);
    releaser.join().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_said(&out, "100 rows processed, 100 updated");
}

/// Fails unless mig exited 3 (stopped by contention at its checkpoint) saying each of `said`
/// on stderr.
fn assert_stopped(out: &Output, said: &[&str]) {
    assert_eq!(out.status.code(), Some(3), "{}{}", stdout(out), stderr(out));
    for needle in said {
        assert!(stderr(out).contains(needle), "{}", stderr(out));
    }
}

/// Fails unless mig's output says `summary` (e.g. "100 rows processed, 100 updated").
fn assert_said(out: &Output, summary: &str) {
    assert!(stdout(out).contains(summary), "{}", stdout(out));
}

/// Rolls back the run of `t.b`, which must succeed.
fn roll_back(project: &Project) {
    let out = project.mig(&["rollback", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Runs `mig run t.b` while the application holds `change` uncommitted, committing it only
/// once the batch waits for the lock of a row it changed; answers mig's output.
fn run_while_the_application_commits(project: &Project, change: &str) -> Output {
    let database = project.postgres.as_ref().unwrap();
    let mut app = database.client();
    let mut tx = app.transaction().unwrap();
    tx.batch_execute(change).unwrap();
    let out = std::thread::scope(|scope| {
        let run = scope.spawn(|| project.mig(&["run", "t.b"]));
        database.wait_for_a_lock_wait();
        tx.commit().unwrap();
        run.join().unwrap()
    });
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    out
}

/// The application changes a row the batch is waiting to lock and commits after the batch's
/// statement began: the batch must write that row from its committed version (which the
/// statement's snapshot does not see) and back up the value the application wrote.
#[test]
fn a_row_committed_while_the_batch_waits_is_written_and_backed_up_from_its_new_version() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 10\n    lock_timeout 5s\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let out =
        run_while_the_application_commits(&project, "UPDATE t SET a = 1000, b = 7 WHERE id = 55");
    assert_said(&out, "100 rows processed, 100 updated");
    assert_eq!(
        project.query("SELECT b FROM t WHERE id = 55"),
        ["2000"],
        "computed from the committed a"
    );
    roll_back(&project);
    assert_eq!(
        project.query("SELECT a || '|' || b FROM t WHERE id = 55"),
        ["1000|7"],
        "the backup holds the value the application committed"
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["1"]
    );
}

/// The application moves a row of the batch to a key far ahead while the batch waits for
/// it: the batch's checkpoint must not jump to that key over the rows in between. Both
/// batch paths: pushed down, and read-compute-write (`lower` has no exact equivalent).
#[test]
fn a_row_whose_key_moves_ahead_while_the_batch_waits_does_not_move_the_checkpoint() {
    let Some(url) = postgres_url() else {
        return;
    };
    for (set, expected) in [
        ("a * 2", "a * 2"),
        ("length(lower('x' || a))", "length('x' || a)"),
    ] {
        let spec = format!(
            "backfill b on t {{\n    set b = {set}\n    batch 10\n    lock_timeout 5s\n}}\n"
        );
        let project = Project::on(&Backend::Postgres(url.clone()), &TABLE, &spec);
        let out =
            run_while_the_application_commits(&project, "UPDATE t SET id = 1005 WHERE id = 5");
        assert!(
            stdout(&out).contains("100 rows processed, 100 updated"),
            "set b = {set}: {}",
            stdout(&out)
        );
        assert_eq!(
            project.query(&format!(
                "SELECT count(*) FROM t WHERE b IS DISTINCT FROM {expected}"
            )),
            ["0"],
            "set b = {set}: every row written, the moved one at its new key"
        );
    }
}

/// The backed-up old values of row `id`, one per backup record holding it.
fn backed_up_old(project: &Project, id: i64) -> Vec<String> {
    project.query(&format!(
        "SELECT coalesce(o, 'NULL') FROM _mig_backup, unnest(keys, old) AS r(k, o) WHERE k = '{id}'"
    ))
}

const WAITING: &str =
    "backfill b on t {\n    set b = a * 2\n    batch 10\n    lock_timeout 5s\n}\n";

/// A row whose `b` is NULL in the snapshot of the batch's first statement, which the
/// application fills while that statement waits for its lock: the statement's re-check on the
/// committed version passes over it, so the second statement must write it from that version
/// and back up the application's value.
#[test]
fn a_null_row_the_application_fills_while_the_batch_waits_is_written_over_the_applications_value() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, WAITING);
    let out = run_while_the_application_commits(&project, "UPDATE t SET b = 7 WHERE id = 55");
    assert_said(&out, "100 rows processed, 100 updated");
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["100"]
    );
    assert_eq!(backed_up_old(&project, 55), ["7"]);
    assert_eq!(
        project
            .query("SELECT cardinality(keys) FROM _mig_backup, unnest(keys) AS k WHERE k = '55'"),
        ["10"],
        "the second statement's rows join the batch's record"
    );
    roll_back(&project);
    assert_eq!(
        project.query("SELECT id || '|' || b FROM t WHERE b IS NOT NULL"),
        ["55|7"],
        "the rollback restores the application's value and NULL elsewhere"
    );
}

/// A row holding a value that the application sets to NULL while the batch waits for it: it
/// is written from the committed NULL, and backed up as NULL.
#[test]
fn a_row_the_application_empties_while_the_batch_waits_is_written_and_backed_up_as_null() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, WAITING);
    project.execute("UPDATE t SET b = 5 WHERE id = 55");
    let out = run_while_the_application_commits(&project, "UPDATE t SET b = NULL WHERE id = 55");
    assert_said(&out, "100 rows processed, 100 updated");
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["100"]
    );
    assert_eq!(backed_up_old(&project, 55), ["NULL"]);
    roll_back(&project);
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["0"]
    );
}

/// Rows of the batch's range deleted or inserted while the batch waits: a deleted row is not
/// processed, an inserted one is when the batch's second statement runs (here because the
/// application also filled a NULL row the first statement waited for).
#[test]
fn rows_deleted_or_inserted_while_the_batch_waits_are_counted_as_they_are() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url.clone()), &TABLE, WAITING);
    let out = run_while_the_application_commits(&project, "DELETE FROM t WHERE id = 55");
    assert_said(&out, "99 rows processed, 99 updated");
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["99"]
    );

    let project = Project::on(&Backend::Postgres(url), &TABLE, WAITING);
    project.execute("DELETE FROM t WHERE id = 56");
    let out = run_while_the_application_commits(
        &project,
        "INSERT INTO t VALUES (56, 56, NULL); UPDATE t SET b = 7 WHERE id = 55",
    );
    assert_said(&out, "100 rows processed, 100 updated");
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["100"]
    );
    assert_eq!(backed_up_old(&project, 56), ["NULL"]);
}

/// The application deletes every row of a batch while the batch waits to lock them: the
/// batch finds none left, but rows after it remain, and the run must go on to them instead
/// of ending there. Both paths that lock a batch as they read it: pushed down (a
/// `varchar(n)` column rules out the NULL-old statement) and read-compute-write (`lower`).
#[test]
fn a_batch_whose_rows_are_all_deleted_while_it_waits_does_not_end_the_run() {
    let Some(url) = postgres_url() else {
        return;
    };
    let table = Setup {
        sqlite: "",
        postgres: "CREATE TABLE t (id bigint PRIMARY KEY, a integer, b varchar(20));
                   INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 100) AS i;",
    };
    for set in ["concat('n', a)", "lower(concat('N', a))"] {
        let spec = format!(
            "backfill b on t {{\n    set b = {set}\n    batch 10\n    lock_timeout 5s\n}}\n"
        );
        let project = Project::on(&Backend::Postgres(url.clone()), &table, &spec);
        let out = run_while_the_application_commits(&project, "DELETE FROM t WHERE id <= 10");
        assert_said(&out, "90 rows processed, 90 updated");
        assert_eq!(
            project.query("SELECT count(*) FROM t WHERE b = 'n' || a"),
            ["90"],
            "{set}"
        );
    }
}

/// The same over old values that all change: from its second batch on, the run's batches
/// skip the NULL-old statement (it wrote nothing in the first), and the statement that locks
/// only the rows that change waits for the moved row. Its checkpoint must not jump either.
/// (That statement counts the range's rows in its snapshot, so the moved row is counted
/// again where it lands: 101 processed.)
#[test]
fn a_row_whose_key_moves_ahead_while_the_changing_statement_waits_does_not_move_the_checkpoint() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, WAITING);
    project.execute("UPDATE t SET b = -1");
    let out = run_while_the_application_commits(&project, "UPDATE t SET id = 1005 WHERE id = 15");
    assert!(stdout(&out).contains(", 100 updated"), "{}", stdout(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["100"],
        "every row written, the moved one at its new key"
    );
}

#[test]
fn a_rollback_beside_a_live_run_stops_the_run_and_restores_everything() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 5\n    pause 100ms\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let before = project.dump("t");
    let mut run = project.spawn_mig(&["run", "t.b"]);
    project.wait_for_batches(&mut run, 3);
    roll_back(&project);
    let status = run.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the run's next batch finds it rolled back and writes nothing"
    );
    assert_eq!(
        project.dump("t"),
        before,
        "every row the run wrote is restored"
    );
    assert_eq!(
        project.query("SELECT status FROM _mig_runs"),
        ["rolled_back"]
    );
}

/// Every committed batch is whole: rows written, rows backed up and the run's `updated` agree,
/// and exactly the rows up to the checkpoint are written.
fn batches_are_whole(project: &Project) {
    let written = project.query("SELECT count(*) FROM t WHERE b IS NOT NULL");
    assert_eq!(
        written,
        project.query("SELECT coalesce(sum(cardinality(keys)), 0) FROM _mig_backup"),
        "rows written vs rows backed up"
    );
    assert_eq!(
        written,
        project.query("SELECT coalesce(sum(updated), 0) FROM _mig_runs"),
        "rows written vs the run's updated total"
    );
    assert_eq!(
        written,
        project.query(
            "SELECT count(*) FROM t WHERE id <= (SELECT coalesce(max(checkpoint_int), 0) FROM _mig_runs)"
        ),
        "exactly the rows up to the checkpoint are written"
    );
}

#[test]
fn a_connection_killed_mid_run_leaves_whole_batches_and_a_later_run_resumes() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 5\n    pause 100ms\n}\n";
    let project = Project::on(&Backend::Postgres(url.clone()), &TABLE, spec);
    let reference = Project::on(&Backend::Postgres(url), &TABLE, spec);
    assert!(reference.mig(&["run", "t.b"]).status.success());

    let run = project
        .command(&["run", "t.b"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let database = &project.postgres.as_ref().unwrap().name;
    let running = |p: &Project| {
        p.query("SELECT count(*) FROM pg_tables WHERE tablename = '_mig_runs'") == ["1"]
            && p.query("SELECT count(*) FROM _mig_runs WHERE batches >= 3") == ["1"]
    };
    while !running(&project) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = project.query(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    ));
    assert_ne!(killed, ["0"], "mig's connection was found and terminated");
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "a lost connection is a database error"
    );
    // Where the run stands, read again on a new connection: the lost one's last statement
    // may have committed or not.
    assert!(
        stderr(&out).contains(
            "the connection to the database was lost; read again, run 1 of t.b is running"
        ) && stderr(&out).contains("`mig run t.b` resumes it at its checkpoint"),
        "{}",
        stderr(&out)
    );
    batches_are_whole(&project);
    assert_ne!(
        project.query("SELECT count(*) FROM t WHERE b IS NULL"),
        ["0"],
        "the run stopped part-way"
    );

    let resumed = project.mig(&["run", "t.b"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stdout(&resumed).contains("(resumed)"),
        "{}",
        stdout(&resumed)
    );
    batches_are_whole(&project);
    assert_eq!(project.dump("t"), reference.dump("t"));
    assert_eq!(
        project.query("SELECT processed || ' ' || updated FROM _mig_runs"),
        reference.query("SELECT processed || ' ' || updated FROM _mig_runs"),
        "the run's totals equal an unfaulted run's"
    );
}

/// Two rollbacks of one run at once (a second terminal, a retry while the first still
/// runs): each batch is restored by one of them, and neither takes the rows the other
/// restored for rows the application changed since. Both wait on a row the application
/// holds in the newest batch, the first to be restored, for 300 ms at least; then it
/// commits. Each rollback's summary counts that wait in its longest batch transaction.
#[test]
fn two_rollbacks_of_one_run_at_once_restore_it_once_and_find_no_conflicts() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 10\n    lock_timeout 10s\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let before = project.dump("t");
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let database = project.postgres.as_ref().unwrap();
    let lock = database.lock_row(95);
    let outputs = std::thread::scope(|scope| {
        let rollbacks: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| project.mig(&["rollback", "t.b"])))
            .collect();
        database.wait_for_lock_waits(2);
        std::thread::sleep(std::time::Duration::from_millis(300));
        lock.release();
        rollbacks
            .into_iter()
            .map(|r| r.join().unwrap())
            .collect::<Vec<_>>()
    });
    for out in &outputs {
        assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
        assert!(stdout(out).contains(", 0 conflicts"), "{}", stdout(out));
        let longest: f64 = stdout(out)
            .split("; longest batch transaction ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("no longest batch transaction in {}", stdout(out)));
        assert!(longest >= 300.0, "{}", stdout(out));
    }
    assert_eq!(project.dump("t"), before, "every row restored");
    assert_eq!(project.query("SELECT count(*) FROM _mig_conflicts"), ["0"]);
    assert_eq!(
        project.query("SELECT status FROM _mig_runs"),
        ["rolled_back"]
    );
}

/// A session holding the table's ACCESS EXCLUSIVE lock (an `ALTER TABLE`, say) stops a run
/// as a held row does. The run's first statement was prepared, and a table without
/// statistics counted, before the batch transaction set its lock timeout: `mig` waited as
/// long as the lock was held, then ran.
#[test]
fn a_table_locked_by_another_session_stops_the_run_within_the_lock_timeout() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let lock = project.postgres.as_ref().unwrap().lock_table("t");

    let out = project.mig(&["run", "t.b"]);
    assert_stopped(&out, &["another transaction holds a lock mig needs"]);
    let (replies, _) = project.node(&[envelope(
        json!({"type": "backfill", "msg_id": 1, "table": "t", "column": "b"}),
    )]);
    assert_eq!(reply_to(&replies, 1)["code"], 11, "{replies:?}");
    lock.release();
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["0"]
    );
}

/// The same lock held while a validation reads the table: `mig validate` and the node's
/// `validate` waited as long as the lock was held (and every node request queued behind
/// it), while every other command stopped within the lock timeout. Now a validation's wait
/// for the table is bounded the same way: exit 3, error 11; the scan itself is not.
#[test]
fn a_validation_of_a_locked_table_stops_within_the_lock_timeout() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = format!("{SPEC}validate a_known on t {{\n    not_null a\n    expect a >= 0\n}}\n");
    let project = Project::on(&Backend::Postgres(url), &TABLE, &spec);
    let lock = project.postgres.as_ref().unwrap().lock_table("t");

    let out = project.mig(&["validate", "a_known"]);
    assert_stopped(&out, &["another transaction holds a lock mig needs"]);
    let (replies, _) = project.node(&[envelope(
        json!({"type": "validate", "msg_id": 1, "table": "t", "validations": ["a_known"]}),
    )]);
    assert_eq!(reply_to(&replies, 1)["code"], 11, "{replies:?}");
    lock.release();
    let out = project.mig(&["validate", "a_known"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

/// The application locks row 35 and then asks for row 32, which the waiting batch holds: a
/// deadlock, which PostgreSQL breaks by cancelling the batch. It is retried as a lock timeout
/// is, and once the retries are spent the run stops saying what happened, not "lock timeout".
#[test]
fn a_deadlock_with_the_application_is_named_when_the_retries_run_out() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 10\n    lock_timeout 10s\n    retries 0\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    // The batch's session finds the deadlock: it waits first, so its check comes first.
    project.set_database_default("deadlock_timeout", "'200ms'");
    let db = project.postgres.as_ref().unwrap();
    let mut application = db.client();
    application
        .batch_execute(
            "SET deadlock_timeout = '5s'; BEGIN; SELECT 1 FROM t WHERE id = 35 FOR UPDATE",
        )
        .unwrap();
    let run = project
        .command(&["run", "t.b"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    db.wait_for_a_lock_wait();
    application
        .batch_execute("UPDATE t SET a = a + 1000 WHERE id = 32")
        .unwrap();
    application.batch_execute("COMMIT").unwrap();
    let out = run.wait_with_output().unwrap();
    assert_stopped(
        &out,
        &["deadlock after 0 retries", "PostgreSQL cancelled the batch"],
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["30"],
        "the cancelled batch wrote nothing"
    );
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["100"]
    );
}

/// A serialization failure (SQLSTATE 40001: what CockroachDB and YugabyteDB answer for a
/// transaction that lost to a concurrent one, and PostgreSQL under a stricter isolation) is
/// retried as a lock timeout is; once the retries are spent the run stops at its checkpoint
/// saying so, the node answers error 11, and a later run resumes. A trigger plays the
/// conflicting database: it fails the first six row updates, counted by a sequence, which the
/// failed transactions do not roll back.
#[test]
fn a_serialization_failure_is_retried_then_named_and_the_run_resumes() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    project.execute(
        "CREATE SEQUENCE failures;
         CREATE FUNCTION fail_first_updates() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF nextval('failures') <= 6 THEN
                 RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER fail_first BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION fail_first_updates();",
    );

    let out = project.mig(&["run", "t.b"]);
    assert_stopped(
        &out,
        &[
            "serialization failure after 2 retries",
            "PostgreSQL could not serialize this batch",
        ],
    );
    assert_eq!(project.query("SELECT last_value FROM failures"), ["3"]);
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["0"]
    );

    let (replies, _) = project.node(&[envelope(
        json!({"type": "backfill", "msg_id": 1, "table": "t", "column": "b"}),
    )]);
    assert_eq!(reply_to(&replies, 1)["code"], 11, "{replies:?}");
    assert_eq!(project.query("SELECT last_value FROM failures"), ["6"]);

    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_said(&out, "100 rows processed, 100 updated");
    assert_eq!(
        project.query("SELECT count(*) FROM _mig_runs"),
        ["1"],
        "the stopped run was resumed, not started anew"
    );
}
