//! A SQLite backfill whose `||` runs as SQLite's own operator writes, row by row, exactly what
//! the interpreter computes, whatever each column holds: rows holding reals or blobs are
//! passed over by the fast UPDATE and written by the registered-function one, and a value the
//! interpreter refuses stops the run at that row's batch with the earlier batches whole.
use mig::config::{Config, Database, Defaults};
use mig::exec::eval::eval;
use mig::exec::Engine;
use mig::plan::RunOptions;
use mig::syntax::ast::{Expr, Item, StatementKind};
use mig::syntax::parse;
use mig::value::Value;
use proptest::prelude::*;
use rusqlite::Connection;
use std::time::Duration;

/// Declared types covering SQLite's affinities, so a stored value can differ from the one
/// inserted (TEXT turns numbers into text) and TEXT-affinity columns take the cheap test.
const DECLARED: [&str; 5] = ["TEXT", "VARCHAR(20)", "", "INTEGER", "REAL"];

const SET: &str = "a || '-' || b";

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => "[a-c ß]{0,3}".prop_map(Value::Text),
        1 => Just(Value::Null),
        1 => (-3i64..30).prop_map(Value::Integer),
        1 => (-6i64..6).prop_map(|i| Value::Real(i as f64 / 4.0)),
        1 => proptest::collection::vec(any::<u8>(), 0..3).prop_map(Value::Blob),
    ]
}

fn set_expression() -> Expr {
    let spec = parse(&format!("backfill c on t {{\n    set c = {SET}\n}}\n")).unwrap();
    let Some(Item::Block(block)) = spec.items.into_iter().next() else {
        panic!("one block")
    };
    match block.statements.into_iter().next().map(|s| s.kind) {
        Some(StatementKind::Set { value, .. }) => value,
        other => panic!("a set statement, got {other:?}"),
    }
}

/// The table's rows as stored (`id`, `a`, `b`, `c`), read back as mig's values.
fn stored(conn: &Connection) -> Vec<(i64, Value, Value, Value)> {
    let mut stmt = conn
        .prepare("SELECT id, a, b, c FROM t ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_native_concat_backfill_writes_what_the_interpreter_computes(
        a_type in proptest::sample::select(&DECLARED[..]),
        b_type in proptest::sample::select(&DECLARED[..]),
        cells in proptest::collection::vec((value(), value(), value()), 1..24),
        batch in 1u64..6,
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        std::fs::write(
            dir.path().join("specs/t.mig"),
            format!("backfill c on t {{\n    set c = {SET}\n}}\n"),
        )
        .unwrap();
        let db = dir.path().join("db.sqlite");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, a {a_type}, b {b_type}, c TEXT)"
        ))
        .unwrap();
        for (id, (a, b, c)) in cells.iter().enumerate() {
            conn.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![id as i64 + 1, a, b, c],
            )
            .unwrap();
        }
        let before = stored(&conn);

        let expr = set_expression();
        let expected: Vec<Result<Value, String>> = before
            .iter()
            .map(|(_, a, b, _)| {
                let row = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
                eval(&expr, &row).map_err(|e| e.to_string())
            })
            .collect();

        let root = dir.path().to_path_buf();
        let mut engine = Engine::open(Config {
            specs: root.join("specs"),
            database: Database::Sqlite(db.clone()),
            defaults: Defaults { lock_timeout: Duration::from_secs(5), ..Defaults::default() },
            root,
        })
        .unwrap();
        let plan = engine.plan("t.c", &RunOptions { batch: Some(batch), limit: None }).unwrap();
        let outcome = engine.run(&plan, false, &mut |_| {});
        let after = stored(&conn);

        let first_error = expected.iter().position(Result::is_err);
        prop_assert_eq!(outcome.is_err(), first_error.is_some(), "{:?}", outcome.err());
        // Batches before the one holding the first refused row are written; the rest untouched.
        let written = first_error.map_or(before.len(), |row| row / batch as usize * batch as usize);
        for (i, ((_, _, _, c_before), (_, _, _, c_after))) in before.iter().zip(&after).enumerate() {
            match (&expected[i], i < written) {
                (Ok(new), true) => {
                    // What the column stores for `new`: c has TEXT affinity.
                    let stored_new: Value = conn
                        .query_row("SELECT CAST(?1 AS TEXT) WHERE ?1 IS NOT NULL", [new], |r| r.get(0))
                        .unwrap_or(Value::Null);
                    let want = if matches!(new, Value::Blob(_)) { new.clone() } else { stored_new };
                    prop_assert_eq!(c_after, &want, "row {}: a {:?}, b {:?}", i + 1, before[i].1, before[i].2);
                }
                _ => prop_assert_eq!(c_after, c_before, "row {} must be untouched", i + 1),
            }
        }
    }
}
