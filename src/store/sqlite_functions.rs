//! The interpreter's operators and functions as SQLite scalar functions, and the SQL text
//! of an expression that calls them.
//!
//! Every function registered here is a thin wrapper over a building block of
//! `exec::eval`, so an expression pushed down into SQLite and the same expression run by
//! the interpreter agree exactly, errors included: an `EvalError` raised inside SQLite
//! fails the statement with the error's own message.
//!
//! | SQL function | meaning |
//! | --- | --- |
//! | `mig_and(a, b)`, `mig_or(a, b)`, `mig_not(a)` | three-valued logic |
//! | `mig_eq`, `mig_ne`, `mig_lt`, `mig_le`, `mig_gt`, `mig_ge` `(a, b)` | comparisons |
//! | `mig_add`, `mig_sub`, `mig_mul`, `mig_div`, `mig_mod` `(a, b)`, `mig_neg(a)` | arithmetic |
//! | `mig_concat_op(a, b)` | the `\|\|` operator |
//! | `mig_in(x, item, ...)` | `x in (item, ...)` |
//! | `mig_between(x, low, high)` | `x between low and high` |
//! | `mig_matches(x, pattern)` | `x matches 'pattern'` |
//! | `mig_truth(x)` | a condition as `where` reads it: 1, 0 or NULL |
//! | `mig_lower(...)` ... `mig_concat(...)` | the DSL function of the same name |
//! | `mig_unknown_function(name)` | the error of calling a function that does not exist |
//! | `mig_text_real(x)` | a real as the interpreter's text form, any other value as it is |
//! | `mig_real_affinity(x)` | `x` as a column of REAL affinity stores it |
//!
//! `is [not] null` is rendered as SQLite's own `IS [NOT] NULL`, which means the same.

use crate::exec::eval::{self, EvalError};
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Function, Literal, UnaryOp};
use crate::value::Value;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{ffi, Connection, ToSql};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::ffi::c_int;
use std::fmt::Write;

/// Every function here is pure, so SQLite may evaluate a constant call once per statement.
const FLAGS: FunctionFlags = FunctionFlags::SQLITE_UTF8.union(FunctionFlags::SQLITE_DETERMINISTIC);

/// SQLite's way of saying "any number of arguments".
const VARIADIC: i32 = -1;

/// The SQL function that computes `op`.
pub fn binary_function(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Or => "mig_or",
        BinaryOp::And => "mig_and",
        BinaryOp::Eq => "mig_eq",
        BinaryOp::Ne => "mig_ne",
        BinaryOp::Lt => "mig_lt",
        BinaryOp::Le => "mig_le",
        BinaryOp::Gt => "mig_gt",
        BinaryOp::Ge => "mig_ge",
        BinaryOp::Concat => "mig_concat_op",
        BinaryOp::Add => "mig_add",
        BinaryOp::Sub => "mig_sub",
        BinaryOp::Mul => "mig_mul",
        BinaryOp::Div => "mig_div",
        BinaryOp::Mod => "mig_mod",
    }
}

/// The SQL function that computes `op`.
pub fn unary_function(op: UnaryOp) -> &'static str {
    match op {
        UnaryOp::Not => "mig_not",
        UnaryOp::Neg => "mig_neg",
    }
}

/// The SQL function that computes the DSL function `function`.
pub fn call_function(function: Function) -> String {
    format!("mig_{}", function.name())
}

/// Registers every `mig_*` function on `conn`. Call it once per connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    for op in [UnaryOp::Not, UnaryOp::Neg] {
        conn.create_scalar_function(unary_function(op), 1, FLAGS, move |ctx| {
            fail_with(eval::unary(op, &arg(ctx, 0)?))
        })?;
    }
    for op in BinaryOp::ALL {
        conn.create_scalar_function(binary_function(op), 2, FLAGS, move |ctx| {
            fail_with(eval::binary(op, &arg(ctx, 0)?, &arg(ctx, 1)?))
        })?;
    }
    conn.create_scalar_function("mig_in", VARIADIC, FLAGS, |ctx| {
        let args = all_args(ctx)?;
        match args.split_first() {
            Some((operand, items)) => fail_with(eval::in_list(operand, items)),
            None => Err(rusqlite::Error::UserFunctionError(
                "mig_in needs an operand".into(),
            )),
        }
    })?;
    conn.create_scalar_function("mig_between", 3, FLAGS, |ctx| {
        fail_with(eval::between(&arg(ctx, 0)?, &arg(ctx, 1)?, &arg(ctx, 2)?))
    })?;
    conn.create_scalar_function("mig_matches", 2, FLAGS, |ctx| {
        let pattern = ctx.get_raw(1).as_str().map_err(from_sql_error)?;
        fail_with(eval::matches(&arg(ctx, 0)?, pattern))
    })?;
    conn.create_scalar_function("mig_truth", 1, FLAGS, |ctx| {
        let truth = eval::is_true(&arg(ctx, 0)?);
        fail_with(truth.map(|t| t.map_or(Value::Null, Value::from_bool)))
    })?;
    conn.create_scalar_function("mig_unknown_function", 1, FLAGS, |ctx| {
        let name = ctx.get_raw(0).as_str().map_err(from_sql_error)?;
        fail_with(Err(EvalError::UnknownFunction(name.to_owned())))
    })?;
    // A real written into a column of TEXT affinity is stored as text, and SQLite's own
    // conversion keeps 15 significant digits: 0.1 + 0.2 became '0.3' where PostgreSQL and
    // `(0.1 + 0.2) || ''` give '0.30000000000000004'. Written through this, it is stored
    // as the interpreter's text form.
    conn.create_scalar_function("mig_text_real", 1, FLAGS, |ctx| {
        Ok(match arg(ctx, 0)? {
            Value::Real(r) => Value::Text(r.to_string()),
            other => other,
        })
    })?;
    for function in Function::ALL {
        conn.create_scalar_function(&call_function(function), VARIADIC, FLAGS, move |ctx| {
            fail_with(eval::call(function, &all_args(ctx)?))
        })?;
    }
    register_real_affinity(conn)
}

/// `mig_real_affinity(x)`, through SQLite's C interface: only it reads text as a column's
/// affinity does (`sqlite3_value_numeric_type`), and rusqlite's values do not reach it.
///
/// An UPDATE compares a new value with a column of REAL affinity after converting it as a
/// NUMERIC column would, which keeps an integer an integer, while the column stores a real:
/// 9007199254740993, stored as 9007199254740992.0, differed from what the column held, so
/// every run wrote the row again and a rollback took the run's own value for a change.
fn register_real_affinity(conn: &Connection) -> rusqlite::Result<()> {
    // SAFETY: `conn.handle()` is the live connection `conn` owns; the function has no user
    // data to release.
    let code = unsafe {
        ffi::sqlite3_create_function_v2(
            conn.handle(),
            c"mig_real_affinity".as_ptr(),
            1,
            ffi::SQLITE_UTF8 | ffi::SQLITE_DETERMINISTIC,
            std::ptr::null_mut(),
            Some(real_affinity),
            None,
            None,
            None,
        )
    };
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }
}

/// The body of `mig_real_affinity`: SQLite's REAL affinity, which turns an integer, or text
/// that looks like a number, into a real, and leaves anything else as it is.
unsafe extern "C" fn real_affinity(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    if argc != 1 {
        return;
    }
    // SAFETY: SQLite calls this with `argc` (registered as 1) live argument values. Text that
    // looks like a number is converted in place, as SQLite's own `sum` converts its argument;
    // SQLite copies the result.
    unsafe {
        let value = *argv;
        match ffi::sqlite3_value_numeric_type(value) {
            ffi::SQLITE_INTEGER => {
                ffi::sqlite3_result_double(ctx, ffi::sqlite3_value_int64(value) as f64)
            }
            _ => ffi::sqlite3_result_value(ctx, value),
        }
    }
}

fn arg(ctx: &Context<'_>, index: usize) -> rusqlite::Result<Value> {
    Value::column_result(ctx.get_raw(index)).map_err(from_sql_error)
}

fn all_args(ctx: &Context<'_>) -> rusqlite::Result<Vec<Value>> {
    (0..ctx.len()).map(|i| arg(ctx, i)).collect()
}

fn from_sql_error(error: FromSqlError) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(error))
}

thread_local! {
    /// The last error one of mig's functions raised on this thread. SQLite hands it on as
    /// text only; a batch that failed on it says that it will fail again (`take_raised`).
    static RAISED: RefCell<Option<EvalError>> = const { RefCell::new(None) };
}

fn fail_with(result: Result<Value, EvalError>) -> rusqlite::Result<Value> {
    result.map_err(|e| {
        RAISED.with(|raised| *raised.borrow_mut() = Some(e.clone()));
        rusqlite::Error::UserFunctionError(Box::new(e))
    })
}

/// Takes the error mig's functions last raised on this thread, if any.
pub fn take_raised() -> Option<EvalError> {
    RAISED.with(|raised| raised.borrow_mut().take())
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl FromSql for Value {
    /// Text that is not UTF-8 is refused rather than silently altered.
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(_) => Value::Text(value.as_str()?.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        })
    }
}

/// How a chain of `||` over columns and text literals, the common backfill shape, is
/// rendered. SQLite's own `||` is the interpreter's for text and NULL operands (and integers,
/// which both write in decimal) and costs several times less than a registered function per
/// row; for reals and blobs the two differ.
pub enum Concat<'a> {
    /// SQLite's `||` under a per-row test that each column holds text, the registered
    /// function otherwise: exact anywhere, on its own.
    Guarded,
    /// SQLite's `||` with no test; the columns it reads are added to the set, and the caller
    /// must let through only rows where each holds NULL, text or an integer.
    Unguarded(&'a mut BTreeSet<String>),
    /// Registered functions only: exact for any values.
    Registered,
}

impl Concat<'_> {
    /// The same choice, borrowed again for one more expression.
    pub fn reborrow(&mut self) -> Concat<'_> {
        match self {
            Concat::Guarded => Concat::Guarded,
            Concat::Unguarded(needs_text) => Concat::Unguarded(needs_text),
            Concat::Registered => Concat::Registered,
        }
    }
}

/// The SQL text of `expr` for SQLite, calling only the functions `register` defines.
///
/// Columns go through `quote_column`; every literal is appended to `params` and written as
/// `?N`, its 1-based position there, so a caller may put its own parameters first.
pub fn render(
    expr: &Expr,
    quote_column: &dyn Fn(&str) -> String,
    params: &mut Vec<Value>,
) -> String {
    render_with(expr, quote_column, params, Concat::Guarded)
}

/// `render`, with `||` chains rendered as `concat` says.
pub fn render_with(
    expr: &Expr,
    quote_column: &dyn Fn(&str) -> String,
    params: &mut Vec<Value>,
    concat: Concat<'_>,
) -> String {
    let mut sql = String::new();
    Renderer {
        quote_column,
        params,
        sql: &mut sql,
        concat,
    }
    .expr(expr);
    sql
}

/// The SQL text of `expr` as a `WHERE` condition: true for SQLite exactly where the
/// interpreter's `eval_predicate` is true, and failing where it fails (a text condition).
pub fn render_predicate(
    expr: &Expr,
    quote_column: &dyn Fn(&str) -> String,
    params: &mut Vec<Value>,
) -> String {
    render_predicate_with(expr, quote_column, params, Concat::Guarded)
}

/// `render_predicate`, with `||` chains rendered as `concat` says.
pub fn render_predicate_with(
    expr: &Expr,
    quote_column: &dyn Fn(&str) -> String,
    params: &mut Vec<Value>,
    concat: Concat<'_>,
) -> String {
    format!(
        "mig_truth({})",
        render_with(expr, quote_column, params, concat)
    )
}

struct Renderer<'a> {
    quote_column: &'a dyn Fn(&str) -> String,
    params: &'a mut Vec<Value>,
    sql: &'a mut String,
    concat: Concat<'a>,
}

impl Renderer<'_> {
    fn expr(&mut self, expr: &Expr) {
        match &expr.kind {
            ExprKind::Column(name) => self.sql.push_str(&(self.quote_column)(name)),
            ExprKind::Literal(literal) => self.param(eval::literal_value(literal)),
            ExprKind::Unary { op, operand } => self.call(unary_function(*op), [&**operand]),
            ExprKind::Binary {
                op: BinaryOp::Concat,
                ..
            } if self.native_concat(expr) => {}
            ExprKind::Binary { op, left, right } => {
                self.call(binary_function(*op), [&**left, &**right])
            }
            ExprKind::IsNull { operand, negated } => {
                self.sql.push('(');
                self.expr(operand);
                self.sql.push_str(if *negated {
                    " IS NOT NULL)"
                } else {
                    " IS NULL)"
                });
            }
            ExprKind::InList {
                operand,
                list,
                negated,
            } => self.negated(*negated, |r| {
                r.call("mig_in", std::iter::once(&**operand).chain(list))
            }),
            ExprKind::Between {
                operand,
                low,
                high,
                negated,
            } => self.negated(*negated, |r| {
                r.call("mig_between", [&**operand, &**low, &**high])
            }),
            ExprKind::Matches {
                operand, pattern, ..
            } => {
                self.sql.push_str("mig_matches(");
                self.expr(operand);
                self.sql.push_str(", ");
                self.param(Value::Text(pattern.clone()));
                self.sql.push(')');
            }
            ExprKind::Call { function, args } => match Function::lookup(&function.name) {
                Some(known) => self.call(&call_function(known), args),
                // Never pasted into the SQL: the name travels as a parameter.
                None => {
                    self.sql.push_str("mig_unknown_function(");
                    self.param(Value::Text(function.name.clone()));
                    self.sql.push(')');
                }
            },
        }
    }

    /// Renders a chain of `||` over columns and text literals as `self.concat` says. Returns
    /// false, rendering nothing, when registered functions are asked for or the chain has
    /// another kind of operand.
    fn native_concat(&mut self, expr: &Expr) -> bool {
        let mut leaves = Vec::new();
        if matches!(self.concat, Concat::Registered)
            || !concat_leaves(expr, &mut leaves)
            || !leaves.iter().any(|l| matches!(l.kind, ExprKind::Column(_)))
        {
            return false;
        }
        let columns = leaves.iter().filter_map(|leaf| match &leaf.kind {
            ExprKind::Column(name) => Some(name.as_str()),
            _ => None,
        });
        match &mut self.concat {
            Concat::Unguarded(needs_text) => {
                needs_text.extend(columns.map(str::to_string));
                self.native_chain(&leaves);
            }
            _ => {
                let guards: Vec<String> = columns
                    .map(|name| format!("typeof({}) = 'text'", (self.quote_column)(name)))
                    .collect();
                write!(self.sql, "CASE WHEN {} THEN ", guards.join(" AND "))
                    .expect("writing to a String cannot fail");
                self.native_chain(&leaves);
                self.sql.push_str(" ELSE ");
                // The fallback never reaches a native chain: it is what runs when one cannot.
                let guarded = std::mem::replace(&mut self.concat, Concat::Registered);
                self.expr(expr);
                self.concat = guarded;
                self.sql.push_str(" END");
            }
        }
        true
    }

    fn native_chain(&mut self, leaves: &[&Expr]) {
        self.sql.push('(');
        for (i, leaf) in leaves.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(" || ");
            }
            self.expr(leaf);
        }
        self.sql.push(')');
    }

    fn negated(&mut self, negated: bool, inner: impl FnOnce(&mut Self)) {
        if negated {
            self.sql.push_str(unary_function(UnaryOp::Not));
            self.sql.push('(');
            inner(self);
            self.sql.push(')');
        } else {
            inner(self);
        }
    }

    fn call<'e>(&mut self, function: &str, args: impl IntoIterator<Item = &'e Expr>) {
        self.sql.push_str(function);
        self.sql.push('(');
        for (i, arg) in args.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.expr(arg);
        }
        self.sql.push(')');
    }

    fn param(&mut self, value: Value) {
        self.params.push(value);
        write!(self.sql, "?{}", self.params.len()).expect("writing to a String cannot fail");
    }
}

/// The columns `expr` is NULL exactly when one of them is, if that is the only way it can be
/// NULL: a chain of `||` over columns and text literals, which both SQLite and the interpreter
/// make NULL when an operand is NULL and text otherwise (or an error, which computing it shows).
pub fn null_only_through(expr: &Expr) -> Option<Vec<&str>> {
    let mut leaves = Vec::new();
    if !matches!(
        expr.kind,
        ExprKind::Binary {
            op: BinaryOp::Concat,
            ..
        }
    ) || !concat_leaves(expr, &mut leaves)
    {
        return None;
    }
    Some(
        leaves
            .iter()
            .filter_map(|leaf| match &leaf.kind {
                ExprKind::Column(name) => Some(name.as_str()),
                _ => None,
            })
            .collect(),
    )
}

/// Collects the operands of a `||` chain, left to right; false if one is neither a column
/// nor a text literal.
fn concat_leaves<'e>(expr: &'e Expr, leaves: &mut Vec<&'e Expr>) -> bool {
    match &expr.kind {
        ExprKind::Binary {
            op: BinaryOp::Concat,
            left,
            right,
        } => concat_leaves(left, leaves) && concat_leaves(right, leaves),
        ExprKind::Column(_) | ExprKind::Literal(Literal::Text(_)) => {
            leaves.push(expr);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::build::*;

    #[test]
    fn a_concat_chain_is_null_only_through_its_columns() {
        let chain = bin(
            BinaryOp::Concat,
            bin(BinaryOp::Concat, col("a"), text(" ")),
            col("b"),
        );
        assert_eq!(null_only_through(&chain), Some(vec!["a", "b"]));
        assert_eq!(null_only_through(&col("a")), None);
        let with_call = bin(BinaryOp::Concat, func("lower", vec![col("a")]), col("b"));
        assert_eq!(null_only_through(&with_call), None);
    }

    #[test]
    fn only_chains_of_columns_and_text_literals_run_as_native_concat() {
        let mut params = Vec::new();
        let native = render(
            &bin(BinaryOp::Concat, col("a"), text("x")),
            &quote,
            &mut params,
        );
        assert!(
            native.starts_with("CASE WHEN typeof(\"a\") = 'text'"),
            "{native}"
        );
        let with_call = bin(BinaryOp::Concat, func("lower", vec![col("a")]), col("b"));
        let generic = render(&with_call, &quote, &mut params);
        assert!(generic.starts_with("mig_concat_op(mig_lower("), "{generic}");
        let literals_only = render(
            &bin(BinaryOp::Concat, text("a"), text("b")),
            &quote,
            &mut params,
        );
        assert!(
            literals_only.starts_with("mig_concat_op("),
            "{literals_only}"
        );
    }
    use rusqlite::params_from_iter;

    /// Tricky values as SQL literals: integers a double cannot hold, text SQLite reads as a
    /// number (spaces, exponents, beyond 64 bits) and text it does not.
    const AFFINITY_CASES: [&str; 18] = [
        "12",
        "9007199254740993",
        "-9223372036854775808",
        "1.5",
        "-0.0",
        "'9007199254740993'",
        "' 12 '",
        "'1e5'",
        "'3.0'",
        "'9007199254740993.0'",
        "'99999999999999999999'",
        "'abc'",
        "'12abc'",
        "'0x10'",
        "''",
        "x'3132'",
        "NULL",
        "9223372036854775807",
    ];

    #[test]
    fn real_affinity_gives_what_a_real_column_stores() {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (r REAL)").unwrap();
        for value in AFFINITY_CASES {
            conn.execute_batch(&format!("DELETE FROM t; INSERT INTO t VALUES ({value})"))
                .unwrap();
            let shown = |sql: &str| format!("typeof({sql}) || ' ' || quote({sql})");
            let (stored, converted): (String, String) = conn
                .query_row(
                    &format!(
                        "SELECT {}, {} FROM t",
                        shown("r"),
                        shown(&format!("mig_real_affinity({value})"))
                    ),
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!(converted, stored, "{value}");
        }
    }

    fn quote(name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    fn users() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT,
                                 email TEXT, full_name TEXT);
             INSERT INTO users VALUES (1, 'Ada', 'Lovelace', '  ADA@Example.com ', NULL),
                                      (2, 'Alan', NULL, 'alan@example.com', NULL);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn literals_are_numbered_after_the_callers_params() {
        let full_name = bin(
            BinaryOp::Concat,
            bin(BinaryOp::Concat, col("first_name"), text(" ")),
            col("last_name"),
        );
        let mut params = vec![Value::Integer(0)];
        let sql = render(&full_name, &quote, &mut params);
        assert_eq!(
            sql,
            r#"CASE WHEN typeof("first_name") = 'text' AND typeof("last_name") = 'text' THEN ("first_name" || ?2 || "last_name") ELSE mig_concat_op(mig_concat_op("first_name", ?3), "last_name") END"#
        );
        let space = Value::Text(" ".to_owned());
        assert_eq!(params, vec![Value::Integer(0), space.clone(), space]);

        let conn = users();
        conn.execute(
            &format!("UPDATE users SET full_name = {sql} WHERE id > ?1"),
            params_from_iter(&params),
        )
        .unwrap();
        let names: Vec<Option<String>> = conn
            .prepare("SELECT full_name FROM users ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(names, vec![Some("Ada Lovelace".to_owned()), None]);
    }

    #[test]
    fn the_demo_email_normalisation_runs_in_sqlite() {
        let normalize = func("lower", vec![func("trim", vec![col("email")])]);
        let mut params = Vec::new();
        let sql = render(&normalize, &quote, &mut params);
        assert_eq!(sql, r#"mig_lower(mig_trim("email"))"#);
        let conn = users();
        let email: String = conn
            .query_row(&format!("SELECT {sql} FROM users WHERE id = 1"), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(email, "ada@example.com");
    }

    #[test]
    fn is_null_is_native_and_negations_wrap() {
        let mut params = Vec::new();
        let is_not_null = expr(ExprKind::IsNull {
            operand: Box::new(col("email")),
            negated: true,
        });
        assert_eq!(
            render(&is_not_null, &quote, &mut params),
            r#"("email" IS NOT NULL)"#
        );
        let not_in = expr(ExprKind::InList {
            operand: Box::new(col("id")),
            list: vec![text("a")],
            negated: true,
        });
        assert_eq!(
            render(&not_in, &quote, &mut params),
            r#"mig_not(mig_in("id", ?1))"#
        );
        assert_eq!(
            render_predicate(&col("id"), &quote, &mut params),
            r#"mig_truth("id")"#
        );
    }

    #[test]
    fn an_unknown_function_name_is_a_parameter_never_sql() {
        let mut params = Vec::new();
        let sql = render(
            &func("x); DROP TABLE users; --", vec![]),
            &quote,
            &mut params,
        );
        assert_eq!(sql, "mig_unknown_function(?1)");
        let conn = users();
        let error = conn
            .query_row(&format!("SELECT {sql}"), params_from_iter(&params), |r| {
                r.get::<_, Value>(0)
            })
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown function `x); DROP TABLE users; --`"
        );
    }

    #[test]
    fn an_eval_error_fails_the_statement_with_its_message() {
        let conn = users();
        let mut params = Vec::new();
        let sql = render(
            &bin(BinaryOp::Add, col("first_name"), col("id")),
            &quote,
            &mut params,
        );
        let error = conn
            .execute(&format!("UPDATE users SET full_name = {sql}"), [])
            .unwrap_err();
        assert_eq!(error.to_string(), "cannot apply `+` to text and integer");
    }

    #[test]
    fn values_cross_the_boundary_unchanged() {
        let conn = users();
        let values = [
            Value::Null,
            Value::Integer(i64::MIN),
            Value::Real(-0.0),
            Value::Real(f64::INFINITY),
            Value::Text("straße\t".to_owned()),
            Value::Blob(vec![0, 255]),
        ];
        for value in values {
            let back: Value = conn
                .query_row("SELECT mig_coalesce(?1)", [&value], |r| r.get(0))
                .unwrap();
            match (&value, &back) {
                (Value::Real(a), Value::Real(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                _ => assert_eq!(value, back),
            }
        }
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let conn = users();
        let error = conn
            .query_row("SELECT mig_lower(CAST(x'ff' AS TEXT))", [], |r| {
                r.get::<_, Value>(0)
            })
            .unwrap_err();
        assert!(error.to_string().contains("utf-8"), "{error}");
    }
}
