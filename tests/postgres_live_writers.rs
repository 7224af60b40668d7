//! A backfill beside a live application on PostgreSQL, as `live_writers.rs` on SQLite. The
//! application updates `a` and writes the matching `c = a * 2` itself (a new app server), and
//! inserts rows with `c` null (an old one), in a loop on its own connection, while `mig run`
//! fills `c` for the rest. PostgreSQL locks rows, not the database, so the application's
//! writes land between a batch's key walk and its write, and while it waits for a row lock:
//! a batch that computed `c` from an `a` the application changed before the batch wrote
//! would leave `c <> a * 2`, and one that overwrote a `c` the application wrote would back
//! up a value that is not NULL. The rollback afterwards, with the application still writing
//! where the rollback restores next, must restore NULL to every row the application never
//! wrote and leave every row it wrote as it wrote it.
//!
//! `cargo test --release --test postgres_live_writers -- --nocapture` prints what the
//! application did and its longest write.
mod common;

use common::{stderr, stdout, Project, Rng};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: i64 = 50_000;

const TABLE: &str = "CREATE TABLE accounts (id bigserial PRIMARY KEY, a bigint, c bigint);
     INSERT INTO accounts (a, c) SELECT i % 1000, NULL FROM generate_series(1, 50000) AS i;";

const SPEC: &str = common::LIVE_WRITER_SPEC;

#[derive(Debug, Default)]
struct Writer {
    updates: u64,
    /// The rows it updated, each now holding the `c` it wrote.
    updated: BTreeSet<i64>,
    inserts: u64,
    longest: Duration,
}

/// One connection, one statement at a time, each its own transaction: ids are handed out
/// and committed in the same order, so no row commits behind a batch that has passed its id
/// (two writers could commit id 9 after a batch saw id 10, and the run would never see 9).
/// Three updates in four go to the rows `hot_spot` names, where mig reads, locks and writes.
fn write_until(url: &str, stop: &AtomicBool, written: &AtomicU64) -> Writer {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let update = client
        .prepare("UPDATE accounts SET a = a + 1, c = (a + 1) * 2 WHERE id = $1")
        .unwrap();
    let insert = client
        .prepare("INSERT INTO accounts (a, c) VALUES ($1, NULL)")
        .unwrap();
    let mut rng = Rng::new(11);
    let mut writer = Writer::default();
    let mut spot = 0;
    while !stop.load(Ordering::Relaxed) {
        if writer.updates % 20 == 0 {
            spot = hot_spot(&mut client);
        }
        let id = if rng.range(0, 4) == 0 {
            rng.range(1, ROWS as u64 + 1) as i64
        } else {
            (spot + rng.range(1, 1001) as i64).clamp(1, ROWS)
        };
        let begun = Instant::now();
        if rng.range(0, 8) == 0 {
            writer.inserts += 1;
            client
                .execute(&insert, &[&(rng.range(0, 1000) as i64)])
                .unwrap();
        } else {
            writer.updates += 1;
            client.execute(&update, &[&id]).unwrap();
            writer.updated.insert(id);
        }
        writer.longest = writer.longest.max(begun.elapsed());
        written.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_micros(300));
    }
    writer
}

/// Where mig works next, less one: the run's checkpoint while it runs; while it is rolled
/// back, a thousand keys below the last key of the newest batch left to restore (a rollback
/// restores the newest batches first). 0 before the run makes its tables.
fn hot_spot(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT CASE WHEN status = 'rolling_back' THEN \
             (SELECT max(k::int8) - 1000 FROM _mig_backup, unnest(keys) AS k \
              WHERE batch = (SELECT max(batch) FROM _mig_backup)) \
             ELSE checkpoint_int END FROM _mig_runs ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_or(0, |row| row.get::<_, Option<i64>>(0).unwrap_or(0))
}

#[test]
fn a_backfill_beside_a_live_writer_never_writes_a_stale_value_and_takes_its_inserts() {
    beside_a_live_writer(1, &[], 0);
}

/// The same with the run killed (SIGKILL) eight times a few batches in, and started again at
/// once each time: the killed batches commit whole or not at all, the writer's changes
/// included.
#[test]
fn a_backfill_killed_and_resumed_beside_a_live_writer_ends_as_one_run_does() {
    beside_a_live_writer(1, &[], 8);
}

/// The same killed with three workers: their claims are taken over when they start again.
#[test]
fn workers_killed_and_resumed_beside_a_live_writer_end_as_one_run_does() {
    beside_a_live_writer(1, &["--workers", "3"], 8);
}

/// The same with three workers claiming key ranges from the database.
#[test]
fn workers_beside_a_live_writer_never_write_a_stale_value_and_take_its_inserts() {
    beside_a_live_writer(1, &["--workers", "3"], 0);
}

/// The same with three `mig run --workers 1` processes started at once.
#[test]
fn three_processes_beside_a_live_writer_never_write_a_stale_value_and_take_its_inserts() {
    beside_a_live_writer(3, &["--workers", "1"], 0);
}

/// The run's committed batches, 0 before mig makes its tables.
fn batches(project: &Project) -> i64 {
    if project.query("SELECT to_regclass('_mig_runs') IS NOT NULL") != ["t"] {
        return 0;
    }
    project.query("SELECT coalesce(max(batches), 0) FROM _mig_runs")[0]
        .parse()
        .unwrap()
}

/// `mig run accounts.c ARGS` beside the writer, killed `kills` times a few batches in and
/// started again at once, then to its end in `processes` processes at once; then the run's
/// rollback.
fn beside_a_live_writer(processes: usize, args: &[&str], kills: usize) {
    let Some(project) = Project::postgres(TABLE, SPEC) else {
        return;
    };
    // Waits for the writer's row locks as long as a production run would.
    let config = project.path().join("mig.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "lock_timeout = \"200ms\"\nretries = 1",
            "lock_timeout = \"2s\"\nretries = 5",
        ),
    )
    .unwrap();
    let url = project.postgres.as_ref().unwrap().url.clone();

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || write_until(&url, &stop, &written))
    };
    while written.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    let mut command = vec!["run", "accounts.c"];
    command.extend(args);
    let mut rng = Rng::new(23);
    for kill in 0..kills {
        let mut run = project.spawn_mig(&command);
        let target = batches(&project) + rng.range(1, 4) as i64;
        while batches(&project) < target {
            if let Some(status) = run.try_wait().unwrap() {
                panic!("start {kill} ended ({status}) before batch {target}");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(rng.range(0, 6)));
        run.kill().unwrap();
        run.wait().unwrap();
    }
    let runs: Vec<_> = (0..processes)
        .map(|_| {
            project
                .command(&command)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = runs
        .into_iter()
        .map(|run| run.wait_with_output().unwrap())
        .collect();
    for out in &outs {
        assert!(out.status.success(), "{}{}", stdout(out), stderr(out));
    }
    let out = &outs[0];

    let one = |sql: &str| -> i64 { project.query(sql)[0].parse().unwrap() };
    let checkpoint = one("SELECT checkpoint_int FROM _mig_runs");
    let processed = one("SELECT processed FROM _mig_runs");
    let stale = one(&format!(
        "SELECT count(*) FROM accounts WHERE id <= {checkpoint} AND c IS DISTINCT FROM a * 2"
    ));
    let inserted_and_processed = one(&format!(
        "SELECT count(*) FROM accounts WHERE id > {ROWS} AND id <= {checkpoint}"
    ));
    let inserted_after = one(&format!(
        "SELECT count(*) FROM accounts WHERE id > {checkpoint}"
    ));
    let backed_up = one("SELECT coalesce(sum(cardinality(keys)), 0) FROM _mig_backup");
    let backed_up_not_null =
        one("SELECT count(*) FROM _mig_backup, unnest(old) AS o WHERE o IS NOT NULL");
    let updated = one("SELECT updated FROM _mig_runs");
    println!("mig: {}", stdout(out).trim());

    assert_eq!(
        stale, 0,
        "rows whose c was computed from an a changed before the write, or left unwritten"
    );
    assert!(
        inserted_and_processed > 0,
        "rows inserted mid-run were processed"
    );
    assert_eq!(processed, ROWS + inserted_and_processed);
    assert_eq!(backed_up, updated, "every written row is backed up once");
    assert_eq!(
        backed_up_not_null, 0,
        "the run only wrote rows the application had not already filled"
    );

    // The writer goes on while the run is rolled back.
    let out = project.mig(&["rollback", "accounts.c"]);
    stop.store(true, Ordering::Relaxed);
    let writer = writer.join().unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    println!(
        "rollback: {}",
        stdout(&out).lines().next().unwrap_or_default()
    );
    println!(
        "writer, through the run and its rollback: {} updates, {} inserts \
         ({inserted_and_processed} processed by the run, {inserted_after} after its last \
         batch when it ended); its longest write {:.1} ms",
        writer.updates,
        writer.inserts,
        writer.longest.as_secs_f64() * 1000.0
    );
    assert!(writer.updates > 0);
    let filled: BTreeSet<i64> = project
        .query("SELECT id FROM accounts WHERE c IS NOT NULL")
        .iter()
        .map(|id| id.parse().unwrap())
        .collect();
    assert!(
        filled == writer.updated,
        "after the rollback exactly the rows the application wrote hold a c: {} such rows, \
         {} filled",
        writer.updated.len(),
        filled.len()
    );
    assert_eq!(
        one("SELECT count(*) FROM accounts WHERE c <> a * 2"),
        0,
        "each as the application wrote it"
    );
}
