//! `max_replica_lag` in mig.toml: no batch starts while a replica streaming from the database
//! has more WAL than that left to replay. Shown on a primary and a hot standby of the test's
//! own (`common::cluster`): the standby's replay is paused, the run stops writing once the
//! standby is behind, and goes on to its end once replay resumes.
mod common;

use common::cluster::{Cluster, Prepared};
use common::{stderr, stdout, Backend, Project, Setup};
use std::time::{Duration, Instant};

const TABLE: Setup = Setup {
    sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);
             INSERT INTO t (id, a) VALUES (1, 1), (2, 2), (3, 3);",
    postgres: "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);
               INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 20000) AS i;",
};

/// `warm` changes nothing; its run makes mig's state tables, so the backfill's first batch
/// finds the standby caught up.
const SPEC: &str = "backfill b on t {\n    set b = a * 2\n    batch 500\n}\n\n\
     migrate warm on t {\n    set a = a\n    where id = 1\n}\n";

/// The most WAL the standby may have left to replay; a batch of `SPEC` writes more.
const MAX_LAG: &str = "64kB";

/// `project`'s mig.toml with `max_replica_lag` among its defaults (the last section).
fn watching_replicas(project: &Project) {
    let config = project.path().join("mig.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("[defaults]"), "{text}");
    text.push_str(&format!("max_replica_lag = \"{MAX_LAG}\"\n"));
    std::fs::write(config, text).unwrap();
}

/// How many bytes of WAL the replica of `primary` has left to replay, once it streams and
/// has replayed something.
fn replay_lag(primary: &mut postgres::Client) -> Option<i64> {
    primary
        .query_opt(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::int8 \
             FROM pg_stat_replication WHERE state = 'streaming'",
            &[],
        )
        .unwrap()
        .and_then(|row| row.get(0))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "not within a minute: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A primary and a standby streaming from it, caught up.
fn primary_and_standby() -> Option<(Cluster, Cluster)> {
    let primary = Prepared::new()?.primary(&[]);
    let standby = Prepared::new()?.standby_of(&primary);
    let mut admin = primary.admin("postgres");
    wait_until("the standby streams, caught up", || {
        replay_lag(&mut admin) == Some(0)
    });
    Some((primary, standby))
}

#[test]
fn batches_wait_while_a_standby_is_behind_and_the_run_ends_once_it_catches_up() {
    let Some((primary, standby)) = primary_and_standby() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(primary.url("postgres")), &TABLE, SPEC);
    watching_replicas(&project);
    let warm = project.mig(&["run", "warm"]);
    assert!(warm.status.success(), "{}", stderr(&warm));
    let mut admin = primary.admin("postgres");
    wait_until("the standby replays the table", || {
        replay_lag(&mut admin) == Some(0)
    });
    let plan = project.mig(&["plan", "t.b"]);
    assert!(
        stdout(&plan).contains(&format!(
            "max_replica_lag {MAX_LAG}: no batch starts while a replica streaming from this \
             database has more WAL than that left to replay"
        )) && stdout(&plan).contains("1 replica connected now"),
        "{}{}",
        stdout(&plan),
        stderr(&plan)
    );

    standby
        .admin("postgres")
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    let mut run = project
        .command(&["run", "t.b"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Stalled: the batches stop while the run is unfinished and the standby is behind.
    let batches = || {
        project
            .query("SELECT batches FROM _mig_runs WHERE migration = 't.b'")
            .first()
            .map_or(0, |n| n.parse::<i64>().unwrap())
    };
    let mut seen = (batches(), Instant::now());
    wait_until("the run stops writing", || {
        let now = batches();
        if now != seen.0 {
            seen = (now, Instant::now());
        }
        now > 0 && seen.1.elapsed() > Duration::from_millis(1500)
    });
    assert!(run.try_wait().unwrap().is_none(), "the run ended");
    assert!(
        replay_lag(&mut admin).unwrap() > 64 * 1024,
        "the standby is behind"
    );
    let filled: i64 = project.query("SELECT count(*) FROM t WHERE b IS NOT NULL")[0]
        .parse()
        .unwrap();
    assert!((1..20000).contains(&filled), "{filled} rows filled");

    standby
        .admin("postgres")
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("replicas: batches waited"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains("; waiting: a replica is "),
        "the progress lines say why the run stands still: {}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["20000"]
    );

    // A rollback puts back what the run changed without waiting for the standby, however
    // far behind: its own writes take the standby further past the limit.
    standby
        .admin("postgres")
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    let mut rollback = project.spawn_mig(&["rollback", "t.b"]);
    let mut ended = None;
    wait_until("the rollback ends with the standby paused", || {
        ended = rollback.try_wait().unwrap();
        ended.is_some()
    });
    assert!(ended.unwrap().success());
    assert!(
        replay_lag(&mut admin).unwrap() > 64 * 1024,
        "the standby is behind"
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NULL"),
        ["20000"]
    );
}

/// A role that cannot see the replicas' positions is refused before a run opens, rather
/// than running unwatched.
#[test]
fn a_role_that_cannot_see_the_replicas_is_refused_before_the_run_opens() {
    let Some((primary, _standby)) = primary_and_standby() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(primary.url("postgres")), &TABLE, SPEC);
    let role = project.postgres.as_ref().unwrap().role("lagless", "");
    let config = project.path().join("mig.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let admin_url = &project.postgres.as_ref().unwrap().url;
    std::fs::write(&config, text.replace(admin_url.as_str(), &role.url)).unwrap();
    watching_replicas(&project);

    let out = project.mig(&["run", "t.b"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("mig's role cannot see how far the replicas are behind"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM pg_tables WHERE tablename = '_mig_runs'"),
        ["0"],
        "no run opened"
    );
}

#[test]
fn on_sqlite_there_is_no_replica_to_wait_for() {
    let project = Project::sqlite(TABLE.sqlite, SPEC);
    watching_replicas(&project);
    let plan = project.mig(&["plan", "t.b"]);
    assert!(
        stdout(&plan).contains("this database has no replicas"),
        "{}",
        stdout(&plan)
    );
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("replicas: batches waited 0 times for a replica to catch up"),
        "{}",
        stdout(&out)
    );
}
