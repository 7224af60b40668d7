//! A spec's `yield` shrinks a run's batches while another session is busy on the database,
//! and only then: alone (mig's own workers included) it takes whole batches. SQLite shows
//! mig no other connection, so there a yielding run always takes shorter batches.
mod common;

use common::{postgres_url, stderr, stdout, Backend, Project, Setup};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TABLE: Setup = Setup {
    sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
             WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 2000)
             INSERT INTO t SELECT x, x FROM i;",
    postgres: "CREATE TABLE t (id bigint PRIMARY KEY, n bigint NOT NULL);
               INSERT INTO t SELECT i, i FROM generate_series(1, 2000) AS i;",
};

/// `yield 1m` lets a batch take up to a minute while others are busy, which no batch here
/// comes near: beside a busy session a run starts at 100 rows and doubles each batch up to
/// `batch`, so 2,000 rows take batches of 100, 200, 400, 800 and the 500 left: 5 batches.
/// Alone it takes whole batches: 2.
const SPEC: &str = "migrate double on t {\n    set n = id * 2\n    batch 1000\n    yield 1m\n}\n";

/// The batches `mig run` reports, and how many of them it says ran while others were busy.
fn batches(out: &std::process::Output) -> (u64, u64) {
    let text = stdout(out);
    assert!(out.status.success(), "{text}{}", stderr(out));
    let number_before = |marker: &str| -> u64 {
        let head = &text[..text
            .find(marker)
            .unwrap_or_else(|| panic!("no `{marker}` in:\n{text}"))];
        head.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let busy = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("yield: "))
        .unwrap_or_else(|| panic!("no `yield:` line in:\n{text}"));
    (
        number_before(" batches in "),
        busy.split(' ').next().unwrap().parse().unwrap(),
    )
}

/// Every row of `t` holds what the spec sets: none was skipped or left half done.
fn assert_all_doubled(project: &Project) {
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE n = id * 2"),
        ["2000"]
    );
}

/// Points the project's mig.toml at `url` in place of its scratch database's own URL.
fn connect_as(project: &Project, url: &str) {
    let path = project.path().join("mig.toml");
    let own = &project.postgres.as_ref().unwrap().url;
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, config.replace(own, url)).unwrap();
}

#[test]
fn a_run_alone_on_postgres_takes_whole_batches_even_with_workers() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    assert_eq!(batches(&project.mig(&["run", "double"])), (2, 0));
    project.execute("UPDATE t SET n = id");
    assert_eq!(
        batches(&project.mig(&["run", "double", "--workers", "3"])).1,
        0,
        "workers do not count one another as the application"
    );
    assert_all_doubled(&project);
}

#[test]
fn a_run_beside_a_busy_session_on_postgres_takes_shorter_batches() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let db = project.postgres.as_ref().unwrap();
    // The application, inside a transaction: busy, though it holds no lock mig needs.
    let mut application = db.client();
    application.batch_execute("BEGIN; SELECT 1").unwrap();
    assert_eq!(batches(&project.mig(&["run", "double"])), (5, 5));
    assert_all_doubled(&project);
    application.batch_execute("COMMIT").unwrap();
    project.execute("UPDATE t SET n = id");
    // A session idle for less than a second may be between two requests; past that it is not.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        batches(&project.mig(&["run", "double"])),
        (2, 0),
        "the application went idle over a second ago: whole batches again"
    );
}

#[test]
fn a_run_beside_an_application_between_requests_on_postgres_takes_shorter_batches() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let db = project.postgres.as_ref().unwrap();
    // The application: a short request every 20 ms, idle in between, nearly all the time.
    let mut application = db.client();
    let stop = Arc::new(AtomicBool::new(false));
    let requests = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                application.batch_execute("SELECT 1").unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let beside = batches(&project.mig(&["run", "double"]));
    stop.store(true, Ordering::Relaxed);
    requests.join().unwrap();
    assert_eq!(beside, (5, 5));
    assert_all_doubled(&project);
}

#[test]
fn a_url_that_names_the_application_makes_sessions_of_that_name_mig_s_own() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let db = project.postgres.as_ref().unwrap();
    let named = format!("{}?application_name=backfiller", db.url);
    connect_as(&project, &named);
    let mut same_name = postgres::Client::connect(&named, postgres::NoTls).unwrap();
    same_name.batch_execute("BEGIN; SELECT 1").unwrap();
    assert_eq!(
        batches(&project.mig(&["run", "double"])),
        (2, 0),
        "a session named as mig's own is not the application"
    );
    let mut other_name = db.client();
    other_name.batch_execute("BEGIN; SELECT 1").unwrap();
    project.execute("UPDATE t SET n = id");
    assert_eq!(batches(&project.mig(&["run", "double"])), (5, 5));
}

#[test]
fn a_role_that_cannot_see_other_roles_sessions_counts_them_busy() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url.clone()), &TABLE, SPEC);
    let db = project.postgres.as_ref().unwrap();
    // A role of its own, without pg_read_all_stats: other roles' sessions show it no state.
    let role = format!("{}_role", db.name);
    let mut admin = db.client();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; GRANT CREATE, USAGE ON SCHEMA public TO {role}; \
             GRANT SELECT, UPDATE ON t TO {role}"
        ))
        .unwrap();
    let (scheme, rest) = db.url.split_once("://").unwrap();
    let server_and_db = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    connect_as(&project, &format!("{scheme}://{role}@{server_and_db}"));
    // `admin`, another role's session, is idle; mig cannot tell, so it yields.
    let counted = batches(&project.mig(&["run", "double"]));
    drop(admin);
    drop(project);
    let mut server = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    server.batch_execute(&format!("DROP ROLE {role}")).unwrap();
    assert_eq!(counted, (5, 5));
}

#[test]
fn a_run_on_sqlite_cannot_see_other_connections_and_always_takes_shorter_batches() {
    let project = Project::on(&Backend::Sqlite, &TABLE, SPEC);
    assert_eq!(batches(&project.mig(&["run", "double"])), (5, 5));
    let plan = stdout(&project.mig(&["plan", "double"]));
    assert!(
        plan.contains("yield 60s: while another session is busy, batches are sized to take about 60s each (at most 1000 rows); SQLite shows mig no other connection: every batch counts as beside a busy one"),
        "{plan}"
    );
}

/// The opening of a batch of the run `child` walks, as PostgreSQL shows it while `session`
/// holds the run's row and the opening waits for it; then lets the run go on.
fn blocked_opening(
    project: &Project,
    child: &mut std::process::Child,
    session: &mut postgres::Client,
) -> String {
    let running = "SELECT count(*) FROM _mig_runs WHERE status = 'running' AND batches >= 1";
    let waiting = "SELECT query FROM pg_stat_activity WHERE datname = current_database() \
                   AND wait_event_type = 'Lock' AND query LIKE 'BEGIN; SET LOCAL lock_timeout%'";
    // Named as mig's own sessions are, so that its polling does not count as busy.
    let mut watch = project.postgres.as_ref().unwrap().client();
    watch.batch_execute("SET application_name = 'mig'").unwrap();
    let mut locked = false;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("mig ended ({status}) before a batch waited for the run's row");
        }
        let made: Option<String> = watch
            .query_one("SELECT to_regclass('_mig_runs')::text", &[])
            .unwrap()
            .get(0);
        if !locked && made.is_some() && watch.query_one(running, &[]).unwrap().get::<_, i64>(0) == 1
        {
            session
                .batch_execute("BEGIN; SELECT 1 FROM _mig_runs WHERE status = 'running' FOR UPDATE")
                .unwrap();
            locked = true;
        }
        if let Some(row) = watch.query_opt(waiting, &[]).unwrap() {
            session.batch_execute("COMMIT").unwrap();
            return row.get(0);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A batch the throttle sizes for a busy database also writes gently (`backend_flush_after`,
/// see README), which only the store can do: the engine must hand its `yielding` through.
/// Seen from the server, in the opening of a batch held at the run's row lock.
#[test]
fn only_a_batch_sized_for_a_busy_database_opens_with_gentle_writes() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate double on t {\n    set n = id * 2\n    batch 1000\n    yield 1m\n    pause 300ms\n}\n";
    let project = Project::on(&Backend::Postgres(url), &TABLE, spec);
    let db = project.postgres.as_ref().unwrap();
    let gentle = "SET LOCAL backend_flush_after = '256kB'";

    // Beside an application inside a transaction: every batch yields.
    let mut application = db.client();
    application
        .batch_execute("BEGIN; SELECT 1; COMMIT")
        .unwrap();
    let mut busy = db.client();
    busy.batch_execute("BEGIN; SELECT 1").unwrap();
    let mut child = project.spawn_mig(&["run", "double"]);
    let opening = blocked_opening(&project, &mut child, &mut application);
    assert!(opening.contains(gentle), "{opening}");
    assert!(child.wait().unwrap().success());
    busy.batch_execute("COMMIT").unwrap();

    // Alone: the session holding the run's row is named as mig's own, so it is not busy.
    project.execute("UPDATE t SET n = id");
    std::thread::sleep(Duration::from_millis(1100));
    let mut own = db.client();
    own.batch_execute("SET application_name = 'mig'").unwrap();
    let mut child = project.spawn_mig(&["run", "double", "--restart"]);
    let opening = blocked_opening(&project, &mut child, &mut own);
    assert!(opening.contains("SET LOCAL lock_timeout"), "{opening}");
    assert!(!opening.contains(gentle), "{opening}");
    assert!(child.wait().unwrap().success());
    assert_all_doubled(&project);
}

/// A rollback with a spec that yields restores, while another session is busy, each batch's
/// record in parts, each its own transaction, sized as a yielding run's batches are: a run
/// made alone in two batches of 1,000 (the spec had no `yield` then) is restored in parts of
/// 100, 200, 400 and the 300 left of the newest record, then 600 and the 400 left of the
/// other. Every row gets its old value back, and the backup is gone. The same where an
/// earlier mig made the state tables, whose backup records have no count of rows restored.
#[test]
fn a_rollback_beside_a_busy_session_restores_each_batch_in_parts() {
    for (backend, earlier) in common::backends()
        .into_iter()
        .flat_map(|b| [(b.clone(), false), (b, true)])
    {
        let project = Project::on(&backend, &TABLE, &SPEC.replace("    yield 1m\n", ""));
        let before = project.dump("t");
        let run = project.mig(&["run", "double"]);
        if earlier {
            project.execute("ALTER TABLE _mig_backup DROP COLUMN restored");
        }
        assert!(
            stdout(&run).contains("2000 rows processed, 2000 updated, 2 batches in "),
            "{backend:?}: {}{}",
            stdout(&run),
            stderr(&run)
        );
        project.write_spec(SPEC);
        // On PostgreSQL the application, inside a transaction; SQLite shows mig no other
        // connection, so there every batch counts as beside a busy one.
        let mut application = project.postgres.as_ref().map(|db| db.client());
        if let Some(application) = application.as_mut() {
            application.batch_execute("BEGIN; SELECT 1").unwrap();
        }
        let out = project.mig(&["rollback", "double"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains(
                "run 1 rolled back: 2000 rows restored, 0 conflicts in "
            ) && stdout(&out).contains(
                "\n  yield: 6 transactions ran while another session was busy (2000 rows, 333 a \
                 transaction)"
            ),
            "{backend:?}: {}",
            stdout(&out)
        );
        assert_eq!(project.dump("t"), before, "{backend:?}");
        assert_eq!(project.query("SELECT count(*) FROM _mig_backup"), ["0"]);
    }
}

/// A record of two set columns (on PostgreSQL, 2-D arrays: a row per backed-up row) restored
/// in parts gives every row back both of its own old values, whichever part it falls in.
#[test]
fn a_rollback_in_parts_restores_every_set_column_of_each_row() {
    const TWO_COLUMNS: Setup = Setup {
        sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, m TEXT);
                 WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 2000)
                 INSERT INTO t SELECT x, x, 'm' || x FROM i;",
        postgres: "CREATE TABLE t (id bigint PRIMARY KEY, n bigint NOT NULL, m text);
                   INSERT INTO t SELECT i, i, 'm' || i FROM generate_series(1, 2000) AS i;",
    };
    let spec = "migrate both on t {\n    set n = id * 2\n    set m = 'x'\n    batch 1000\n}\n";
    for backend in common::backends() {
        let project = Project::on(&backend, &TWO_COLUMNS, spec);
        let before = project.dump("t");
        assert!(
            project.mig(&["run", "both"]).status.success(),
            "{backend:?}"
        );
        project.write_spec(&spec.replace("    batch 1000\n", "    batch 1000\n    yield 1m\n"));
        let mut application = project.postgres.as_ref().map(|db| db.client());
        if let Some(application) = application.as_mut() {
            application.batch_execute("BEGIN; SELECT 1").unwrap();
        }
        let out = project.mig(&["rollback", "both"]);
        assert!(
            stdout(&out).contains("run 1 rolled back: 2000 rows restored, 0 conflicts in ")
                && stdout(&out).contains("\n  yield: 6 transactions ran while another session"),
            "{backend:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(project.dump("t"), before, "{backend:?}");
    }
}

/// A rollback killed (SIGKILL) between two parts of a batch leaves the record holding exactly
/// the rows not yet restored, and the rollback started again restores those: the table ends
/// as it was before the run.
#[test]
fn a_rollback_killed_between_the_parts_of_a_batch_resumes_with_the_rows_left() {
    for backend in common::backends() {
        let project = Project::on(&backend, &TABLE, &SPEC.replace("    yield 1m\n", ""));
        let before = project.dump("t");
        assert!(project.mig(&["run", "double"]).status.success());
        project.write_spec(&SPEC.replace("    yield 1m\n", "    yield 1m\n    pause 300ms\n"));
        let mut application = project.postgres.as_ref().map(|db| db.client());
        if let Some(application) = application.as_mut() {
            application.batch_execute("BEGIN; SELECT 1").unwrap();
        }
        let backed_up = || -> i64 {
            let sql = match backend {
                Backend::Sqlite => "SELECT coalesce(sum(row_count - restored), 0) FROM _mig_backup",
                Backend::Postgres(_) => {
                    "SELECT coalesce(sum(cardinality(keys) - restored), 0) FROM _mig_backup"
                }
            };
            project.query(sql)[0].parse().unwrap()
        };
        let mut rollback = project.spawn_mig(&["rollback", "double"]);
        while backed_up() == 2000 {
            assert!(rollback.try_wait().unwrap().is_none(), "{backend:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        rollback.kill().unwrap();
        rollback.wait().unwrap();
        let left = backed_up();
        assert!((1..2000).contains(&left), "{backend:?}: {left} rows left");
        assert_eq!(
            project.query("SELECT count(*) FROM t WHERE n = id * 2"),
            [left.to_string()],
            "{backend:?}: the rows still backed up are the rows not yet restored"
        );
        let out = project.mig(&["rollback", "double"]);
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains(&format!("{left} rows restored, 0 conflicts")),
            "{backend:?}: {}",
            stdout(&out)
        );
        assert_eq!(project.dump("t"), before, "{backend:?}");
    }
}
