//! The safety laws over generated tables and specs, driving the library's `Engine` directly:
//! a re-run of an idempotent set updates nothing; a run interrupted after any batch and
//! resumed ends where an uninterrupted run ends; rollback after a run restores the table
//! exactly. Columns of every SQLite affinity take values of every type, so what a column
//! stores can differ from what the expression computed.
use mig::config::{Config, Database, Defaults};
use mig::exec::Engine;
use mig::plan::RunOptions;
use proptest::prelude::*;
use rusqlite::types::Value as Sql;
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::Duration;

const AFFINITIES: [&str; 5] = ["INTEGER", "TEXT", "REAL", "NUMERIC", ""];

/// Sets of `c` that do not read `c`, or read it as a projection: proven idempotent.
const IDEMPOTENT: [&str; 13] = [
    "a + 1",
    "b || 'x'",
    "lower(b)",
    "upper(trim(b))",
    "length(b)",
    "42",
    "'007'",
    "a * 1.5",
    "null",
    "coalesce(c, a)",
    "abs(a)",
    "b",
    "2.0",
];
const NOT_IDEMPOTENT: [&str; 3] = ["c || '!'", "'<' || c", "coalesce(c, '') || b"];
const FILTERS: [Option<&str>; 4] = [
    None,
    Some("a > 3"),
    Some("b is not null"),
    Some("a % 2 = 0"),
];
/// 9007199254740993 is an integer no real holds: a REAL column stores 9007199254740992.0.
const TEXTS: [&str; 6] = ["x", " Mixed Case ", "12", "", "3.5", "9007199254740993"];

#[derive(Debug, Clone)]
struct Case {
    affinity: &'static str,
    set: &'static str,
    filter: Option<&'static str>,
    batch: u64,
    rows: Vec<(i64, Sql, Sql, Sql)>,
}

fn integer() -> impl Strategy<Value = Sql> {
    prop_oneof![
        Just(Sql::Null),
        (-5i64..20).prop_map(Sql::Integer),
        Just(Sql::Integer(9_007_199_254_740_993)),
    ]
}

fn text() -> impl Strategy<Value = Sql> {
    prop_oneof![
        Just(Sql::Null),
        proptest::sample::select(&TEXTS[..]).prop_map(|t| Sql::Text(t.to_string())),
    ]
}

/// `a` holds integers and `b` text, as the interpreter's types demand of `a + 1` or
/// `lower(b)`; `c`, the column written, holds anything.
fn any_value() -> impl Strategy<Value = Sql> {
    prop_oneof![
        integer(),
        (-5i64..20).prop_map(|i| Sql::Real(i as f64 / 2.0)),
        text(),
    ]
}

fn cases(sets: Vec<&'static str>) -> impl Strategy<Value = Case> {
    (
        proptest::sample::select(&AFFINITIES[..]),
        proptest::sample::select(sets),
        proptest::sample::select(&FILTERS[..]),
        proptest::collection::vec((1i64..4, integer(), text(), any_value()), 2..40),
    )
        .prop_flat_map(|(affinity, set, filter, cells)| {
            let most = (cells.len() as u64 / 2).max(1);
            (1..=most).prop_map(move |batch| {
                let mut key = 0;
                let rows = cells
                    .iter()
                    .map(|(gap, a, b, c)| {
                        key += gap;
                        (key, a.clone(), b.clone(), c.clone())
                    })
                    .collect();
                Case {
                    affinity,
                    set,
                    filter,
                    batch,
                    rows,
                }
            })
        })
}

fn any_set() -> Vec<&'static str> {
    IDEMPOTENT.iter().chain(&NOT_IDEMPOTENT).copied().collect()
}

/// A project folder holding the case's table and spec, and an engine on it.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(case: &Case) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        let filter = case
            .filter
            .map_or(String::new(), |f| format!("    where {f}\n"));
        std::fs::write(
            dir.path().join("specs/law.mig"),
            format!(
                "migrate law on t {{\n    set c = {}\n{filter}}}\n",
                case.set
            ),
        )
        .unwrap();
        let conn = Connection::open(dir.path().join("db.sqlite")).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c {})",
            case.affinity
        ))
        .unwrap();
        for (key, a, b, c) in &case.rows {
            conn.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![key, a, b, c],
            )
            .unwrap();
        }
        Scratch { dir }
    }

    fn engine(&self) -> Engine {
        let root = self.dir.path().to_path_buf();
        Engine::open(Config {
            specs: root.join("specs"),
            database: Database::Sqlite(root.join("db.sqlite")),
            defaults: Defaults {
                lock_timeout: Duration::from_secs(5),
                ..Defaults::default()
            },
            root,
        })
        .unwrap()
    }

    fn rows(&self, sql: &str) -> Vec<String> {
        rows(&self.dir.path().join("db.sqlite"), sql)
    }

    fn table(&self) -> Vec<String> {
        self.rows("SELECT * FROM t ORDER BY id")
    }

    fn backup(&self) -> Vec<String> {
        self.rows("SELECT batch, columns, row_count, hex(rows) FROM _mig_backup ORDER BY batch")
    }

    fn totals(&self) -> Vec<String> {
        self.rows(
            "SELECT status, processed, updated, batches, checkpoint FROM _mig_runs ORDER BY id",
        )
    }
}

fn rows(db: &Path, sql: &str) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |row| {
        Ok((0..n)
            .map(|i| format!("{:?}", row.get::<_, Sql>(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn options(case: &Case) -> RunOptions {
    RunOptions {
        batch: Some(case.batch),
        limit: None,
    }
}

const CRASH: &str = "simulated crash after a committed batch";

/// The panics the interruption law raises on purpose are not printed.
fn quiet_simulated_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&CRASH) {
                previous(info);
            }
        }));
    });
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_rerun_of_an_idempotent_set_updates_nothing(case in cases(IDEMPOTENT.to_vec())) {
        let scratch = Scratch::new(&case);
        let mut engine = scratch.engine();
        let plan = engine.plan("law", &options(&case)).unwrap();
        engine.run(&plan, false, &mut |_| {}).unwrap();
        let after_first = scratch.table();
        let again = engine.run(&plan, false, &mut |_| {}).unwrap();
        prop_assert_eq!(again.updated, 0);
        prop_assert_eq!(again.processed, case.rows.len() as u64);
        prop_assert_eq!(scratch.table(), after_first);
    }

    #[test]
    fn a_run_interrupted_after_any_batch_and_resumed_ends_as_an_uninterrupted_one(
        case in cases(any_set()),
        at in any::<proptest::sample::Index>(),
    ) {
        quiet_simulated_crashes();
        let whole = Scratch::new(&case);
        let mut engine = whole.engine();
        let plan = engine.plan("law", &options(&case)).unwrap();
        let summary = engine.run(&plan, false, &mut |_| {}).unwrap();

        let full_batches = case.rows.len().div_ceil(case.batch as usize);
        let stop_after = 1 + at.index(full_batches - 1) as i64;
        let interrupted = Scratch::new(&case);
        let mut engine = interrupted.engine();
        let crashed = catch_unwind(AssertUnwindSafe(|| {
            engine.run(&plan, false, &mut |p| {
                if p.batches == stop_after {
                    std::panic::panic_any(CRASH);
                }
            })
        }));
        prop_assert!(crashed.is_err(), "the run stopped after batch {}", stop_after);
        drop(engine);
        let resumed = interrupted.engine().run(&plan, false, &mut |_| {}).unwrap();
        prop_assert!(resumed.resumed);
        prop_assert_eq!((resumed.processed, resumed.updated), (summary.processed, summary.updated));
        prop_assert_eq!(interrupted.table(), whole.table());
        prop_assert_eq!(interrupted.totals(), whole.totals());
        prop_assert_eq!(interrupted.backup(), whole.backup());
    }

    #[test]
    fn rollback_after_a_run_restores_the_table_exactly(case in cases(any_set())) {
        let scratch = Scratch::new(&case);
        let before = scratch.table();
        let mut engine = scratch.engine();
        let plan = engine.plan("law", &options(&case)).unwrap();
        let summary = engine.run(&plan, false, &mut |_| {}).unwrap();
        if summary.updated > 0 {
            let rolled = engine.rollback("law", &mut |_| {}).unwrap();
            prop_assert!(rolled.conflict_keys.is_empty(), "conflicts: {:?}", rolled.conflict_keys);
            prop_assert_eq!(rolled.restored, summary.updated);
        }
        prop_assert_eq!(scratch.table(), before);
    }
}
