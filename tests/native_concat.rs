//! A SQLite run whose `||` runs as SQLite's own operator writes, row by row, exactly what the
//! interpreter computes, whatever each column holds: rows holding reals or blobs are passed
//! over by the fast UPDATE and written by the registered-function one, and a value the
//! interpreter refuses stops the run at that row's batch with the earlier batches whole.
use mig::config::{Config, Database, Defaults};
use mig::exec::eval::{eval, eval_predicate};
use mig::exec::{Engine, ExecError, RunSummary};
use mig::plan::RunOptions;
use mig::syntax::ast::{Expr, Item, StatementKind};
use mig::syntax::parse;
use mig::value::Value;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;

/// Declared types covering SQLite's affinities, so a stored value can differ from the one
/// inserted (TEXT turns numbers into text) and TEXT-affinity columns take the cheap test.
const DECLARED: [&str; 5] = ["TEXT", "VARCHAR(20)", "", "INTEGER", "REAL"];

/// `||` at the top of a set, inside a registered function's argument, and in the filter.
const SPEC: &str = "migrate m on t {
    set c = a || '-' || b
    set d = coalesce(b || '!', d)
    where (a || b) is not null
}
";

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => "[a-c ß]{0,3}".prop_map(Value::Text),
        1 => Just(Value::Null),
        1 => (-3i64..30).prop_map(Value::Integer),
        1 => (-6i64..6).prop_map(|i| Value::Real(i as f64 / 4.0)),
        1 => proptest::collection::vec(any::<u8>(), 0..3).prop_map(Value::Blob),
    ]
}

/// A spec's set expressions and its filter, if it has one.
fn spec_parts(spec: &str) -> (Vec<Expr>, Option<Expr>) {
    let spec = parse(spec).unwrap();
    let Some(Item::Block(block)) = spec.items.into_iter().next() else {
        panic!("one block")
    };
    let mut sets = Vec::new();
    let mut filter = None;
    for statement in block.statements {
        match statement.kind {
            StatementKind::Set { value, .. } => sets.push(value),
            StatementKind::Where(condition) => filter = Some(condition),
            other => panic!("unexpected statement {other:?}"),
        }
    }
    (sets, filter)
}

type Row = (i64, Value, Value, Value, Value);

/// The table's rows as stored (`id`, `a`, `b`, `c`, `d`), read back as mig's values.
fn stored(conn: &Connection) -> Vec<Row> {
    let mut stmt = conn
        .prepare("SELECT id, a, b, c, d FROM t ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// What the interpreter makes of one row: the new values of the sets (`c`, then `d`), None
/// when the filter passes over it, or the error that stops the run.
fn interpreted(
    row: &Row,
    sets: &[Expr],
    filter: Option<&Expr>,
) -> Result<Option<Vec<Value>>, String> {
    let (_, a, b, c, d) = row;
    let named = vec![
        ("a".to_string(), a.clone()),
        ("b".to_string(), b.clone()),
        ("c".to_string(), c.clone()),
        ("d".to_string(), d.clone()),
    ];
    if let Some(filter) = filter {
        if !eval_predicate(filter, &named).map_err(|e| e.to_string())? {
            return Ok(None);
        }
    }
    let values = sets
        .iter()
        .map(|set| eval(set, &named).map_err(|e| e.to_string()));
    values.collect::<Result<Vec<_>, _>>().map(Some)
}

/// `value` as a TEXT-affinity column stores it.
fn as_stored_text(conn: &Connection, value: &Value) -> Value {
    conn.query_row("SELECT CAST(?1 AS TEXT)", [value], |r| r.get(0))
        .map(|text: Value| match value {
            Value::Null | Value::Blob(_) => value.clone(),
            _ => text,
        })
        .unwrap()
}

/// Runs `migration` of the project in `root` (specs in `specs/`, the table in `db.sqlite`).
fn run(root: &Path, migration: &str, batch: u64) -> Result<RunSummary, mig::exec::ExecError> {
    let mut engine = Engine::open(Config {
        specs: root.join("specs"),
        database: Database::Sqlite(root.join("db.sqlite")),
        defaults: Defaults {
            lock_timeout: Duration::from_secs(5),
            ..Defaults::default()
        },
        root: root.to_path_buf(),
    })
    .unwrap();
    let plan = engine
        .plan(
            migration,
            &RunOptions {
                batch: Some(batch),
                limit: None,
            },
        )
        .unwrap();
    engine.run(&plan, false, &mut |_| {})
}

/// A project in a fresh folder: `spec` as `specs/NAME.mig`, and `db.sqlite` holding table `t`
/// (`a` and `b` of the declared types, `c` and `d` TEXT) with `cells` as its rows.
fn project(
    name: &str,
    spec: &str,
    a_type: &str,
    b_type: &str,
    cells: &[(Value, Value, Value, Value)],
) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    std::fs::write(dir.path().join(format!("specs/{name}.mig")), spec).unwrap();
    let conn = Connection::open(dir.path().join("db.sqlite")).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a {a_type}, b {b_type}, c TEXT, d TEXT)"
    ))
    .unwrap();
    for (id, (a, b, c, d)) in cells.iter().enumerate() {
        conn.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![id as i64 + 1, a, b, c, d],
        )
        .unwrap();
    }
    (dir, conn)
}

/// Checks a run of the spec whose per-row interpretation is `expected` against the table
/// before and after it: batches before the one holding the first refused row are written,
/// the rest untouched; each written row holds what the interpreter computed, as its column
/// stores it; and the run counts as updated exactly the rows whose values changed (NULL over
/// NULL is no change).
fn check_run(
    conn: &Connection,
    before: &[Row],
    expected: &[Result<Option<Vec<Value>>, String>],
    outcome: Result<RunSummary, ExecError>,
    batch: u64,
) -> Result<(), TestCaseError> {
    let after = stored(conn);
    let first_error = expected.iter().position(Result::is_err);
    prop_assert_eq!(
        outcome.is_err(),
        first_error.is_some(),
        "{:?}",
        outcome.err()
    );
    let batch = batch as usize;
    let written = first_error.map_or(before.len(), |row| row / batch * batch);
    let mut changed = 0;
    for (i, (old, new)) in before.iter().zip(&after).enumerate() {
        let mut want = vec![old.3.clone(), old.4.clone()];
        if let (Ok(Some(values)), true) = (&expected[i], i < written) {
            for (cell, value) in want.iter_mut().zip(values) {
                *cell = as_stored_text(conn, value);
            }
        }
        prop_assert_eq!(
            vec![new.3.clone(), new.4.clone()],
            want.clone(),
            "row {}: a {:?}, b {:?}, interpreter {:?}",
            i + 1,
            old.1,
            old.2,
            expected[i]
        );
        changed += usize::from(want != [old.3.clone(), old.4.clone()]);
    }
    if let Ok(summary) = outcome {
        prop_assert_eq!(summary.updated, changed as u64);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_native_concat_run_writes_what_the_interpreter_computes(
        a_type in proptest::sample::select(&DECLARED[..]),
        b_type in proptest::sample::select(&DECLARED[..]),
        cells in proptest::collection::vec((value(), value(), value(), value()), 1..24),
        batch in 1u64..6,
    ) {
        let (dir, conn) = project("m", SPEC, a_type, b_type, &cells);
        let before = stored(&conn);
        let (sets, filter) = spec_parts(SPEC);
        let expected: Vec<_> =
            before.iter().map(|row| interpreted(row, &sets, filter.as_ref())).collect();
        let outcome = run(dir.path(), "m", batch);
        check_run(&conn, &before, &expected, outcome, batch)?;
    }
}

/// A backfill with no filter, so rows whose old value is NULL meet NULL operands: the UPDATE
/// decides "changed" for them from the operands' NULL tests alone.
const BACKFILL: &str = "backfill c on t {
    set c = a || '-' || b
}
";

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_backfill_over_null_old_values_writes_and_counts_only_changed_rows(
        a_type in proptest::sample::select(&DECLARED[..]),
        cells in proptest::collection::vec((value(), value(), prop_oneof![3 => Just(Value::Null), 1 => value()]), 1..24),
        batch in 1u64..6,
    ) {
        let cells: Vec<_> = cells.into_iter().map(|(a, b, c)| (a, b, c, Value::Null)).collect();
        let (dir, conn) = project("c", BACKFILL, a_type, "TEXT", &cells);
        let before = stored(&conn);
        let (sets, filter) = spec_parts(BACKFILL);
        let expected: Vec<_> =
            before.iter().map(|row| interpreted(row, &sets, filter.as_ref())).collect();
        let outcome = run(dir.path(), "t.c", batch);
        check_run(&conn, &before, &expected, outcome, batch)?;
    }
}
