//! A backfill beside a live application. The application updates `a` and writes the matching
//! `c = a * 2` itself (a new app server), and inserts rows with `c` null (an old one), in a
//! loop on its own connection, while `mig run` fills `c` for the rest. A batch that computed
//! `c` from an `a` the application changed before the batch wrote would leave `c <> a * 2`.
//!
//! `cargo test --release --test live_writers -- --nocapture` prints the writer's longest wait.
mod common;

use common::{stderr, stdout, Project, Rng};
use rusqlite::{Connection, ErrorCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: i64 = 50_000;
const BATCH: i64 = 500;

const SPEC: &str = common::LIVE_WRITER_SPEC;

#[derive(Debug, Default)]
struct Writer {
    updates: u64,
    inserts: u64,
    busy: u64,
    longest_wait: Duration,
}

/// Retries every 0.1 ms for up to 10 s, the writer's busy timeout.
fn poll_lock(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(100));
    attempt < 100_000
}

fn write_until(db: &std::path::Path, stop: &AtomicBool, started: &AtomicU64) -> Writer {
    let conn = Connection::open(db).unwrap();
    // Polling the lock every 0.1 ms (SQLite's own handler backs off to 1, 2, 5, 10 ms
    // sleeps) and leaving WAL checkpoints to mig's connection make the figure the time spent
    // waiting for the batch, not back-off or the writer's own checkpoint work.
    conn.busy_handler(Some(poll_lock)).unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
    let mut rng = Rng::new(7);
    let mut writer = Writer::default();
    while !stop.load(Ordering::Relaxed) {
        let begun = Instant::now();
        let result = if rng.range(0, 8) == 0 {
            writer.inserts += 1;
            conn.execute(
                "INSERT INTO accounts (a, c) VALUES (?1, NULL)",
                [rng.range(0, 1000) as i64],
            )
        } else {
            writer.updates += 1;
            conn.execute(
                "UPDATE accounts SET a = a + 1, c = (a + 1) * 2 WHERE id = ?1",
                [rng.range(1, ROWS as u64 + 1) as i64],
            )
        };
        writer.longest_wait = writer.longest_wait.max(begun.elapsed());
        match result {
            Ok(_) => {}
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => writer.busy += 1,
            Err(e) => panic!("writer failed: {e}"),
        }
        started.fetch_add(1, Ordering::Relaxed);
        // Traffic, not a lock held back to back: SQLite's lock is not a fair queue, and a
        // writer that never lets go starves every other one (mig then stops at its
        // checkpoint with a lock timeout, and resumes from there).
        std::thread::sleep(Duration::from_micros(300));
    }
    writer
}

#[test]
fn a_backfill_beside_live_writers_never_writes_a_stale_value_and_takes_their_inserts() {
    let project = Project::sqlite(
        &format!(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, a INTEGER, c INTEGER);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
             INSERT INTO accounts SELECT i, i % 1000, NULL FROM n;"
        ),
        SPEC,
    );
    std::fs::write(
        project.path().join("mig.toml"),
        "specs = \"specs\"\n[database]\nurl = \"sqlite:db.sqlite\"\n",
    )
    .unwrap();
    // The writer opens the database after mig has switched it to WAL, as a live app would.
    assert!(project.mig(&["plan", "accounts.c"]).status.success());

    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, writes) = (project.db_path(), Arc::clone(&stop), Arc::clone(&writes));
        std::thread::spawn(move || write_until(&db, &stop, &writes))
    };
    while writes.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    let out = project.mig(&["run", "accounts.c"]);
    stop.store(true, Ordering::Relaxed);
    let writer = writer.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let checkpoint = project
        .query_i64("SELECT checkpoint FROM _mig_runs")
        .unwrap();
    let processed = project
        .query_i64("SELECT processed FROM _mig_runs")
        .unwrap();
    let batches = project.query_i64("SELECT batches FROM _mig_runs").unwrap();
    let stale = project
        .query_i64(&format!(
            "SELECT count(*) FROM accounts WHERE id <= {checkpoint} AND c IS NOT a * 2"
        ))
        .unwrap();
    let inserted_and_processed = project
        .query_i64(&format!(
            "SELECT count(*) FROM accounts WHERE id > {ROWS} AND id <= {checkpoint}"
        ))
        .unwrap();
    let inserted_after = project
        .query_i64(&format!(
            "SELECT count(*) FROM accounts WHERE id > {checkpoint}"
        ))
        .unwrap();
    let backed_up_not_null = project
        .backed_up_rows()
        .iter()
        .filter(|(_, values)| values.iter().any(|(old, _)| !old.is_null()))
        .count();
    let run_line = stdout(&out);
    println!("mig: {}", run_line.trim());
    println!(
        "writer: {} updates, {} inserts ({} processed by the run, {} after its last batch), {} busy errors",
        writer.updates, writer.inserts, inserted_and_processed, inserted_after, writer.busy
    );
    let longest_batch: f64 = run_line
        .split("longest batch transaction ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .expect("mig run reports its longest batch transaction");
    println!(
        "writer's longest wait: {:.1} ms; mig's longest batch transaction: {longest_batch:.1} ms \
         ({batches} batches of {BATCH} rows)",
        writer.longest_wait.as_secs_f64() * 1000.0,
    );

    assert_eq!(
        stale, 0,
        "rows whose c was computed from an a changed before the write"
    );
    assert_eq!(
        writer.busy, 0,
        "the writer never waited past its busy timeout"
    );
    assert!(
        inserted_and_processed > 0,
        "rows inserted mid-run were processed"
    );
    assert_eq!(processed, ROWS + inserted_and_processed);
    assert_eq!(
        backed_up_not_null, 0,
        "the run only wrote rows the application had not already filled"
    );
    assert!(writer.updates > 0);
}
