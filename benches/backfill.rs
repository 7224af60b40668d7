//! `cargo bench --bench backfill`: mig's backfill against one bare `UPDATE` computing the same
//! values over the same table, measured in the same run; and mig's peak memory at 1M and 4M
//! rows. Each case runs in a child process of its own, so its peak RSS is its own.
//!
//! Options (after `--`): `--rows N` (default 1000000), `--big N` (default 4000000),
//! `--batch N` (default 1000), `--repeat N` (default 3; the median is reported).

use mig::config::{Config, Database, Defaults};
use mig::exec::Engine;
use mig::plan::RunOptions;
use rusqlite::Connection;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const SPEC: &str =
    "backfill full_name on users {\n    set full_name = first_name || ' ' || last_name\n}\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let (case, db) = (&args[i + 1], Path::new(&args[i + 2]));
        child(
            case,
            db,
            args[i + 3].parse().unwrap(),
            args[i + 4].parse().unwrap(),
        );
        return;
    }
    let option = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().unwrap())
    };
    let rows = option("--rows", 1_000_000);
    let big = option("--big", 4_000_000);
    let batch = option("--batch", 1000);
    let repeat = option("--repeat", 3);

    let templates = tempfile::tempdir().unwrap();
    let small_table = templates.path().join("small.sqlite");
    let big_table = templates.path().join("big.sqlite");
    make_table(&small_table, rows);
    make_table(&big_table, big);
    let mut bare = Vec::new();
    let mut mig = Vec::new();
    for _ in 0..repeat {
        bare.push(spawn("bare", &small_table, rows, batch));
        mig.push(spawn("mig", &small_table, rows, batch));
    }
    let big_run = spawn("mig", &big_table, big, batch);
    let ratios: Vec<f64> = mig
        .iter()
        .zip(&bare)
        .map(|(m, b)| m.rows_per_sec / b.rows_per_sec)
        .collect();
    println!("rows={rows} batch={batch} repeat={repeat}");
    println!(
        "bare UPDATE rows/s (median): {:.0}",
        median(bare.iter().map(|c| c.rows_per_sec))
    );
    println!(
        "mig backfill rows/s (median): {:.0}",
        median(mig.iter().map(|c| c.rows_per_sec))
    );
    println!(
        "ratio mig/bare, pair by pair: {ratios:.3?}; median {:.3}",
        median(ratios.iter().copied())
    );
    let small_rss = median(mig.iter().map(|c| c.peak_rss_kb as f64));
    println!("mig peak RSS at {rows} rows: {small_rss:.0} kB");
    println!("mig peak RSS at {big} rows: {} kB", big_run.peak_rss_kb);
    println!(
        "RSS ratio {big}/{rows}: {:.3}",
        big_run.peak_rss_kb as f64 / small_rss
    );
}

struct Case {
    rows_per_sec: f64,
    peak_rss_kb: u64,
}

/// Runs one case in a child process on a fresh copy of `table`.
fn spawn(case: &str, table: &Path, rows: u64, batch: u64) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.sqlite");
    std::fs::copy(table, &db).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .arg(case)
        .arg(&db)
        .args([rows.to_string(), batch.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{case}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{case}: no {name} in {text}"))
            .trim()
            .parse()
            .unwrap()
    };
    Case {
        rows_per_sec: field("rows_per_sec="),
        peak_rss_kb: field("peak_rss_kb=") as u64,
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Times one case on the table in `db`, set up as `mig`'s own `main` sets up SQLite.
fn child(case: &str, db: &Path, rows: u64, batch: u64) {
    let dir = db.parent().unwrap();
    let started = Instant::now();
    match case {
        "bare" => {
            let conn = Connection::open(db).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
            let n = conn
                .execute(
                    "UPDATE users SET full_name = first_name || ' ' || last_name",
                    [],
                )
                .unwrap();
            assert_eq!(n as u64, rows);
        }
        "mig" => {
            std::fs::create_dir(dir.join("specs")).unwrap();
            std::fs::write(dir.join("specs/bench.mig"), SPEC).unwrap();
            let config = Config {
                root: dir.to_path_buf(),
                specs: dir.join("specs"),
                database: Database::Sqlite(db.to_path_buf()),
                defaults: Defaults::default(),
            };
            let mut engine = Engine::open(config).unwrap();
            let plan = engine
                .plan(
                    "users.full_name",
                    &RunOptions {
                        batch: Some(batch),
                        limit: None,
                    },
                )
                .unwrap();
            let summary = engine.run(&plan, false, &mut |_| {}).unwrap();
            assert_eq!(summary.updated, rows);
        }
        other => panic!("unknown case {other}"),
    }
    let secs = started.elapsed().as_secs_f64();
    println!("rows_per_sec={}", rows as f64 / secs);
    println!("peak_rss_kb={}", peak_rss_kb());
}

fn make_table(db: &Path, rows: u64) {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE users (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
                             email TEXT NOT NULL, full_name TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO users (id, first_name, last_name, email)
         SELECT i, 'First' || (i % 997), 'Last' || (i % 991), 'user' || i || '@example.com' FROM n;
         PRAGMA journal_mode = DELETE;"
    ))
    .unwrap();
}

/// The process's peak resident set (VmHWM), in kB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
