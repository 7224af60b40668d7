//! An expression pushed down into SQLite gives exactly what the interpreter gives:
//! the same value (reals bit for bit) or the same error. An expression the PostgreSQL store
//! pushes down gives the interpreter's value there too, or fails where it fails. What `mig
//! check` refuses for its operands' types fails in the interpreter wherever those operands
//! are not NULL, and nothing the PostgreSQL store pushes down is refused.
mod common;

use mig::compile::types::{type_errors, Role};
use mig::compile::{ColumnValues, TableSchema, ValueKinds};
use mig::exec::eval::eval;
use mig::store::postgres_sql::{ColumnType, Renderer};
use mig::store::sqlite_functions::{register, render, render_predicate};
use mig::syntax::ast::{BinaryOp, Expr, ExprKind, Function, Ident, Literal, Span, UnaryOp};
use mig::value::Value;
use proptest::prelude::*;
use rusqlite::{params_from_iter, Connection};

const COLUMNS: [&str; 4] = ["a", "b", "c", "d"];

const PATTERNS: [&str; 7] = ["a", "^[a-z]+$", "ß", "(", r"\d", "^$", "é|B"];

fn expr(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

fn text() -> impl Strategy<Value = String> {
    "[a-cA-C0-9 ß\tÀÉéİ]{0,6}"
}

/// Reals SQLite can hold: everything but NaN, which it stores as NULL.
fn real() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("SQLite has no NaN", |r| !r.is_nan()),
        (-100.0..100.0_f64),
        (-4..4_i32).prop_map(|i| f64::from(i) / 2.0),
        Just(0.0),
        Just(-0.0),
        Just(1e308),
        Just(1e-300),
    ]
}

fn integer() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -5..5_i64,
        Just(i64::MAX),
        Just(i64::MIN),
        Just(-1),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        integer().prop_map(Value::Integer),
        real().prop_map(Value::Real),
        text().prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..3).prop_map(Value::Blob),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Bool),
        integer().prop_map(Literal::Integer),
        real()
            .prop_filter("literals are finite", |r| r.is_finite())
            .prop_map(Literal::Real),
        text().prop_map(Literal::Text),
    ]
}

fn call(name: String, args: Vec<Expr>) -> Expr {
    expr(ExprKind::Call {
        function: Ident {
            name,
            span: Span::default(),
        },
        args,
    })
}

fn expression() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        proptest::sample::select(&COLUMNS[..]).prop_map(|c| expr(ExprKind::Column(c.to_owned()))),
        literal().prop_map(|l| expr(ExprKind::Literal(l))),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let b = |e: Expr| Box::new(e);
        prop_oneof![
            6 => (
                proptest::sample::select(&[UnaryOp::Not, UnaryOp::Neg][..]),
                inner.clone()
            )
                .prop_map(move |(op, e)| expr(ExprKind::Unary { op, operand: b(e) })),
            12 => (
                proptest::sample::select(&BinaryOp::ALL[..]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(move |(op, l, r)| expr(ExprKind::Binary {
                    op,
                    left: b(l),
                    right: b(r)
                })),
            3 => (inner.clone(), any::<bool>()).prop_map(move |(e, negated)| expr(ExprKind::IsNull {
                operand: b(e),
                negated
            })),
            4 => (
                inner.clone(),
                proptest::collection::vec(inner.clone(), 1..4),
                any::<bool>()
            )
                .prop_map(move |(e, list, negated)| expr(ExprKind::InList {
                    operand: b(e),
                    list,
                    negated
                })),
            4 => (inner.clone(), inner.clone(), inner.clone(), any::<bool>()).prop_map(
                move |(e, low, high, negated)| expr(ExprKind::Between {
                    operand: b(e),
                    low: b(low),
                    high: b(high),
                    negated
                })
            ),
            3 => (inner.clone(), proptest::sample::select(&PATTERNS[..])).prop_map(
                move |(e, pattern)| expr(ExprKind::Matches {
                    operand: b(e),
                    pattern: pattern.to_owned(),
                    pattern_span: Span::default(),
                })
            ),
            12 => (
                proptest::sample::select(&Function::ALL[..]),
                proptest::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(function, args)| {
                    // Mostly a valid arity, so that calls get past the arity check.
                    let (min, max) = function.arity();
                    let count = if args.len() < min || max.is_some_and(|max| args.len() > max) {
                        if args.len() % 4 != 3 {
                            args.len().clamp(min, max.unwrap_or(usize::MAX))
                        } else {
                            args.len()
                        }
                    } else {
                        args.len()
                    };
                    let mut args = args;
                    while args.len() < count {
                        args.push(expr(ExprKind::Literal(Literal::Integer(1))));
                    }
                    args.truncate(count);
                    call(function.name().to_uppercase(), args)
                }),
            1 => proptest::collection::vec(inner, 0..2).prop_map(|args| call("nope".to_owned(), args)),
        ]
    })
}

fn same(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Real(l), Value::Real(r)) => {
            l.to_bits() == r.to_bits() || (l.is_nan() && r.is_nan())
        }
        _ => left == right,
    }
}

fn quote(column: &str) -> String {
    format!("\"{column}\"")
}

fn connection() -> Connection {
    let conn = Connection::open_in_memory().expect("an in-memory database opens");
    register(&conn).expect("the mig functions register");
    conn
}

/// The first value of `select`, run where `r` is a one-row table whose columns a, b, c, d
/// are `?1` to `?4`: `params` starts with the row.
fn in_sqlite(conn: &Connection, select: &str, params: &[Value]) -> Result<Value, String> {
    let sql = format!("WITH r(a, b, c, d) AS (VALUES (?1, ?2, ?3, ?4)) {select}");
    conn.query_row(&sql, params_from_iter(params), |r| r.get::<_, Value>(0))
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(_, Some(message)) => message,
            other => format!("not a function error: {other}"),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn pushdown_agrees_with_the_interpreter(
        expr in expression(),
        row in proptest::collection::vec(value(), 4),
    ) {
        let named: Vec<(String, Value)> =
            COLUMNS.iter().map(|c| c.to_string()).zip(row.iter().cloned()).collect();
        let interpreted = eval(&expr, &named).map_err(|e| e.to_string());

        let conn = connection();
        let mut params = row.clone();
        let sql = render(&expr, &quote, &mut params);
        let pushed = in_sqlite(&conn, &format!("SELECT {sql} FROM r"), &params);

        match (&interpreted, &pushed) {
            (Ok(i), Ok(p)) => prop_assert!(same(i, p), "{sql}: interpreter {i:?}, SQLite {p:?}"),
            (Err(i), Err(p)) => prop_assert_eq!(i, p, "{}", sql),
            _ => prop_assert!(false, "{sql}: interpreter {interpreted:?}, SQLite {pushed:?}"),
        }

        let mut params = row.clone();
        let predicate = render_predicate(&expr, &quote, &mut params);
        let selected = in_sqlite(&conn, &format!("SELECT 1 FROM r WHERE {predicate} UNION ALL SELECT 0"), &params);
        let holds = mig::exec::eval::eval_predicate(&expr, &named).map_err(|e| e.to_string());
        match (holds, selected) {
            (Ok(h), Ok(s)) => prop_assert_eq!(Value::from_bool(h), s, "{}", predicate),
            (Err(h), Err(s)) => prop_assert_eq!(h, s, "{}", predicate),
            (h, s) => prop_assert!(false, "{predicate}: interpreter {h:?}, SQLite {s:?}"),
        }
    }
}

/// A row of the typed table PostgreSQL expressions run over: a int8, b text, c int4, d text.
fn typed_row() -> impl Strategy<Value = Vec<Value>> {
    let nullable = |s: BoxedStrategy<Value>| prop_oneof![1 => Just(Value::Null), 5 => s];
    (
        nullable(integer().prop_map(Value::Integer).boxed()),
        nullable(text().prop_map(Value::Text).boxed()),
        nullable(
            prop_oneof![any::<i32>(), -5..5_i32, Just(i32::MIN)]
                .prop_map(|i| Value::Integer(i.into()))
                .boxed(),
        ),
        nullable(text().prop_map(Value::Text).boxed()),
    )
        .prop_map(|(a, b, c, d)| vec![a, b, c, d])
}

fn postgres_column(name: &str) -> Option<(String, ColumnType)> {
    let ty = match name {
        "a" => ColumnType::Int8,
        "b" | "d" => ColumnType::Text,
        "c" => ColumnType::Int4,
        _ => return None,
    };
    Some((format!("r.\"{name}\""), ty))
}

/// The first value of `select` where `r` is the typed one-row table of `typed_row`.
fn in_postgres(
    client: &mut postgres::Client,
    select: &str,
    params: &[Value],
) -> Result<Value, String> {
    let sql =
        format!("WITH r(a, b, c, d) AS (VALUES ($1::int8, $2::text, $3::int4, $4::text)) {select}");
    let bound: Vec<&(dyn postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect();
    client
        .query_one(sql.as_str(), &bound)
        .map(|row| row.get::<_, Value>(0))
        .map_err(|e| e.to_string())
}

/// Agreement of one outcome with the interpreter's: equal values, or both failing.
fn agrees(interpreted: &Result<Value, String>, other: &Result<Value, String>) -> bool {
    match (interpreted, other) {
        (Ok(i), Ok(o)) => same(i, o),
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

#[test]
fn postgres_pushdown_agrees_with_the_interpreter_and_sqlite() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let client = std::cell::RefCell::new(postgres::Client::connect(&url, postgres::NoTls).unwrap());
    let sqlite = connection();
    let pushed_count = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(3000));
    runner
        .run(&(expression(), typed_row()), |(expr, row)| {
            let named: Vec<(String, Value)> = COLUMNS
                .iter()
                .map(|c| c.to_string())
                .zip(row.iter().cloned())
                .collect();
            let mut params = row.clone();
            let rendered = Renderer {
                column: &postgres_column,
                params: &mut params,
            }
            .value(&expr);
            let Ok(pushed) = rendered else {
                return Ok(());
            };
            pushed_count.set(pushed_count.get() + 1);
            let interpreted = eval(&expr, &named).map_err(|e| e.to_string());
            let on_postgres = in_postgres(
                &mut client.borrow_mut(),
                &format!("SELECT {} FROM r", pushed.sql),
                &params,
            );
            prop_assert!(
                agrees(&interpreted, &on_postgres),
                "{}: interpreter {:?}, PostgreSQL {:?}",
                pushed.sql,
                interpreted,
                on_postgres
            );
            let mut sqlite_params = row.clone();
            let sql = render(&expr, &quote, &mut sqlite_params);
            let on_sqlite = in_sqlite(&sqlite, &format!("SELECT {sql} FROM r"), &sqlite_params);
            prop_assert!(
                agrees(&interpreted, &on_sqlite),
                "{}: SQLite {:?}",
                sql,
                on_sqlite
            );

            let mut params = row.clone();
            if let Ok(predicate) = (Renderer {
                column: &postgres_column,
                params: &mut params,
            })
            .predicate(&expr)
            {
                let holds = mig::exec::eval::eval_predicate(&expr, &named)
                    .map(Value::from_bool)
                    .map_err(|e| e.to_string());
                let selected = in_postgres(
                    &mut client.borrow_mut(),
                    &format!(
                        "SELECT CASE WHEN {} THEN 1::int8 ELSE 0::int8 END FROM r",
                        predicate.sql
                    ),
                    &params,
                );
                prop_assert!(
                    agrees(&holds, &selected),
                    "{}: interpreter {:?}, PostgreSQL {:?}",
                    predicate.sql,
                    holds,
                    selected
                );
            }
            Ok(())
        })
        .unwrap();
    assert!(
        pushed_count.get() > 300,
        "the generator must reach the pushdown often enough to mean something: {}",
        pushed_count.get()
    );
}

/// The expression of `set x = SOURCE`, parsed as a spec would be.
fn parsed(source: &str) -> Expr {
    let spec =
        mig::syntax::parser::parse(&format!("backfill x on t {{\n    set x = {source}\n}}\n"))
            .unwrap_or_else(|e| panic!("{source}: {e:?}"));
    let mut found = None;
    for item in spec.items {
        if let mig::syntax::ast::Item::Block(block) = item {
            for statement in block.statements {
                if let mig::syntax::ast::StatementKind::Set { value, .. } = statement.kind {
                    found = Some(value);
                }
            }
        }
    }
    found.unwrap_or_else(|| panic!("no set in {source}"))
}

/// A NULL literal beside an operand that fails on this row (c is 0): PostgreSQL's planner
/// folded `a / c + null` to NULL and the run wrote NULL where the interpreter stops.
#[test]
fn postgres_never_folds_away_an_operand_that_fails() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // A table, not `in_postgres`'s VALUES: the planner folds a row of constants before it
    // reaches the NULL, so the division failed there either way.
    client
        .batch_execute(
            "CREATE TEMPORARY TABLE r (a int8, b text, c int4, d text);
             INSERT INTO r VALUES (1, 'x', 0, NULL);",
        )
        .unwrap();
    let row = [
        Value::Integer(1),
        Value::Text("x".into()),
        Value::Integer(0),
        Value::Null,
    ];
    let named: Vec<(String, Value)> = COLUMNS.iter().map(|c| c.to_string()).zip(row).collect();
    for source in [
        "a / c + null",
        "null - a % c",
        "b || (a / c) || null",
        "(a / c) = null",
        "replace(b || (a / c), null, d)",
        "(a / c + null) is null",
    ] {
        let expr = parsed(source);
        let interpreted = eval(&expr, &named).map_err(|e| e.to_string());
        assert!(interpreted.is_err(), "{source} fails in the interpreter");
        let mut params = Vec::new();
        let rendered = Renderer {
            column: &postgres_column,
            params: &mut params,
        }
        .value(&expr);
        if let Ok(pushed) = rendered {
            let bound: Vec<&(dyn postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                .collect();
            let on_postgres = client
                .query_one(&format!("SELECT {} FROM r", pushed.sql), &bound)
                .map(|row| row.get::<_, Value>(0))
                .map_err(|e| e.to_string());
            assert!(
                agrees(&interpreted, &on_postgres),
                "{source} as {}: interpreter {interpreted:?}, PostgreSQL {on_postgres:?}",
                pushed.sql
            );
        }
    }
}

/// Columns typed as the stores type them: `a` an integer column, `b` a text one (as in
/// PostgreSQL), `c` one of no certain type (SQLite's INTEGER affinity), `d` text or blobs
/// (SQLite's TEXT affinity).
fn typed_schema() -> TableSchema {
    let values = |kinds: ValueKinds| ColumnValues {
        kinds,
        accepts: ValueKinds::ANY,
        described: "a typed column".into(),
        because: "is typed".into(),
    };
    TableSchema {
        name: "r".into(),
        columns: COLUMNS.map(String::from).to_vec(),
        values: [
            ("a", values(ValueKinds::INTEGER)),
            ("b", values(ValueKinds::TEXT)),
            ("d", values(ValueKinds::TEXT | ValueKinds::BLOB)),
        ]
        .into_iter()
        .map(|(c, v)| (c.to_string(), v))
        .collect(),
        ..TableSchema::default()
    }
}

/// A row `typed_schema` allows, its values mostly not NULL.
fn row_of_typed_schema() -> impl Strategy<Value = Vec<Value>> {
    let nullable = |s: BoxedStrategy<Value>| prop_oneof![1 => Just(Value::Null), 5 => s];
    let blob = proptest::collection::vec(any::<u8>(), 0..3).prop_map(Value::Blob);
    (
        nullable(integer().prop_map(Value::Integer).boxed()),
        nullable(text().prop_map(Value::Text).boxed()),
        value(),
        nullable(prop_oneof![text().prop_map(Value::Text), blob].boxed()),
    )
        .prop_map(|(a, b, c, d)| vec![a, b, c, d])
}

/// Whether `mig check` refuses `node` itself, not only a part of it: a part's errors are
/// the same wherever the part stands.
fn refused_here(node: &Expr, table: &TableSchema) -> bool {
    let count = |e: &Expr| type_errors(e, Role::Set("x"), Some(table)).len();
    count(node) > node.children().into_iter().map(count).sum::<usize>()
}

#[test]
fn what_check_refuses_fails_wherever_its_operands_are_not_null() {
    let table = typed_schema();
    let tried = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(3000));
    runner
        .run(&(expression(), row_of_typed_schema()), |(expr, row)| {
            let named: Vec<(String, Value)> =
                COLUMNS.iter().map(|c| c.to_string()).zip(row).collect();
            let mut refused = Vec::new();
            expr.walk(&mut |node| {
                if refused_here(node, &table) {
                    refused.push(node);
                }
            });
            for node in refused {
                let operands: Result<Vec<Value>, _> =
                    node.children().iter().map(|c| eval(c, &named)).collect();
                let Ok(operands) = operands else { continue };
                if operands.iter().any(Value::is_null) {
                    continue;
                }
                tried.set(tried.get() + 1);
                let value = eval(node, &named);
                prop_assert!(
                    value.is_err(),
                    "mig check refuses {node} but over {operands:?} it gives {value:?}"
                );
            }
            Ok(())
        })
        .unwrap();
    assert!(
        tried.get() > 300,
        "the generator must reach refused parts over values often enough to mean something: {}",
        tried.get()
    );
}

#[test]
fn what_postgresql_pushes_down_check_accepts() {
    let values = |kinds: ValueKinds| ColumnValues {
        kinds,
        accepts: ValueKinds::ANY,
        described: "a typed column".into(),
        because: "is typed".into(),
    };
    // As `postgres_column` types them.
    let table = TableSchema {
        name: "r".into(),
        columns: COLUMNS.map(String::from).to_vec(),
        values: [
            ("a", values(ValueKinds::INTEGER)),
            ("b", values(ValueKinds::TEXT)),
            ("c", values(ValueKinds::INTEGER)),
            ("d", values(ValueKinds::TEXT)),
        ]
        .into_iter()
        .map(|(c, v)| (c.to_string(), v))
        .collect(),
        ..TableSchema::default()
    };
    let pushed = std::cell::Cell::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(5000));
    runner
        .run(&expression(), |expr| {
            let mut params = Vec::new();
            let mut renderer = Renderer {
                column: &postgres_column,
                params: &mut params,
            };
            if renderer.value(&expr).is_ok() {
                pushed.set(pushed.get() + 1);
                let refused = type_errors(&expr, Role::Set("x"), Some(&table));
                prop_assert!(
                    refused.is_empty(),
                    "{expr} is pushed down yet refused: {refused:?}"
                );
            }
            if renderer.predicate(&expr).is_ok() {
                let refused = type_errors(&expr, Role::Condition("where"), Some(&table));
                prop_assert!(
                    refused.is_empty(),
                    "`where {expr}` is pushed down yet refused: {refused:?}"
                );
            }
            Ok(())
        })
        .unwrap();
    assert!(pushed.get() > 300, "pushed down only {}", pushed.get());
}
