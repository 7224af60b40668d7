//! PostgreSQL's spelling of an expression, where one exists that means exactly what
//! `exec::eval` means; otherwise the reason there is none, which `mig plan` prints.
//!
//! "Exactly" is judged per operator and per operand type, conservatively:
//!
//! | DSL | PostgreSQL | why it is exact |
//! | --- | --- | --- |
//! | integer, boolean column | `c::int8` (`c::int4::int8` for bool) | eval works in i64; booleans are 1/0 |
//! | text, varchar column | `c` | |
//! | uuid column | `c::text` | eval sees it as text, as PostgreSQL prints it |
//! | enum column | `c::text` | eval sees its label as text and compares it so |
//! | `= <> < <= > >=` on text | `COLLATE "C"` | eval compares bytes; "C" compares bytes |
//! | `= <> < <= > >=` on integers | as is | |
//! | `+ - * / %`, `-x`, `abs` on integers | int8 operators | checked the same way: overflow and division by zero fail in both |
//! | `\|\|`, `concat`, `length` on text and integers | `\|\|`, `concat`, `char_length` | an integer's text form is its decimal in both |
//! | `and or not`, `is null`, `in`, `between` | as is | SQL's three-valued logic in both |
//! | `trim`, `replace`, `coalesce`, `nullif` | `btrim(x, ' ')`, `replace`, `coalesce`, `nullif` | |
//! | `substr(s, start[, len])` with literal bounds | `substr` | SQL-standard in both |
//!
//! Not pushed: reals and numerics (text forms and range checks differ), `lower`/`upper`
//! (they follow the database's ctype, eval follows Unicode), `matches` (the regex crate's
//! syntax is not PostgreSQL's), `round`, blobs, and anything the interpreter rejects as a
//! type error, so that the interpreter raises it.
//!
//! Errors: eval evaluates every operand, PostgreSQL may skip one (`and`, `or`, `coalesce`,
//! `in` and `between` short-circuit). So an operand that can fail is pushed only where
//! PostgreSQL must evaluate it. Parts without columns are evaluated here, once, by eval
//! itself and bound as parameters, so PostgreSQL never folds a failing constant.

use crate::exec::eval;
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Function, UnaryOp};
use crate::value::Value;
use std::fmt::Write;

/// A column's PostgreSQL type, as far as mig reads and writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// Read as a real (float8): precision beyond 15 digits is not seen; never written.
    Numeric,
    Text,
    Varchar,
    /// `char(n)`: blank-padded; read as text, never pushed down.
    Bpchar,
    /// Read and written as the integers 1 and 0.
    Bool,
    Bytea,
    /// Read and written as text in the form PostgreSQL prints (`postgres_uuid`).
    Uuid,
    /// An enum: read as its label's text, compared as text (not in the enum's order), and
    /// written as text the server casts to the enum, refusing a label it does not have.
    Enum,
}

impl ColumnType {
    /// The type for a catalog type name (`pg_type.typname`), None when mig cannot map it.
    pub fn from_catalog(typname: &str) -> Option<ColumnType> {
        Some(match typname {
            "int2" => ColumnType::Int2,
            "int4" => ColumnType::Int4,
            "int8" => ColumnType::Int8,
            "float4" => ColumnType::Float4,
            "float8" => ColumnType::Float8,
            "numeric" => ColumnType::Numeric,
            "text" => ColumnType::Text,
            "varchar" => ColumnType::Varchar,
            "bpchar" => ColumnType::Bpchar,
            "bool" => ColumnType::Bool,
            "bytea" => ColumnType::Bytea,
            "uuid" => ColumnType::Uuid,
            _ => return None,
        })
    }

    /// The type as PostgreSQL names it, for messages.
    pub fn sql_name(self) -> &'static str {
        match self {
            ColumnType::Int2 => "smallint",
            ColumnType::Int4 => "integer",
            ColumnType::Int8 => "bigint",
            ColumnType::Float4 => "real",
            ColumnType::Float8 => "double precision",
            ColumnType::Numeric => "numeric",
            ColumnType::Text => "text",
            ColumnType::Varchar => "character varying",
            ColumnType::Bpchar => "character",
            ColumnType::Bool => "boolean",
            ColumnType::Bytea => "bytea",
            ColumnType::Uuid => "uuid",
            ColumnType::Enum => "enum",
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8)
    }

    pub fn is_text(self) -> bool {
        matches!(
            self,
            ColumnType::Text | ColumnType::Varchar | ColumnType::Bpchar
        )
    }

    /// The select-list spelling that reads `column` as a type `FromSql for Value` takes. A
    /// `char(n)` is read as PostgreSQL's own cast to text reads it, without the blanks it
    /// pads values with: read padded, `status = 'A'` was false for the `'A  '` a `char(3)`
    /// holds (true in PostgreSQL and on SQLite), and `set code = status` copied the blanks.
    pub fn read(self, column: &str) -> String {
        match self {
            ColumnType::Numeric => format!("{column}::float8"),
            ColumnType::Bpchar | ColumnType::Enum => format!("{column}::text"),
            _ => column.to_string(),
        }
    }
}

/// The type a pushed-down expression has in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Int,
    Text,
    Bool,
    /// The NULL literal, typed by what it meets.
    Null,
}

/// An expression's PostgreSQL spelling.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub sql: String,
    pub ty: SqlType,
    /// False where PostgreSQL may raise an error for some row (overflow, division by zero).
    pub total: bool,
}

/// Why an expression stays with the interpreter, in words for `mig plan`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotPushed(pub String);

fn refuse<T>(reason: impl Into<String>) -> Result<T, NotPushed> {
    Err(NotPushed(reason.into()))
}

/// Renders expressions for one statement: columns through `column` (its SQL reference and
/// type, None when unknown), literals appended to `params` as `$N`.
pub struct Renderer<'a> {
    pub column: &'a dyn Fn(&str) -> Option<(String, ColumnType)>,
    pub params: &'a mut Vec<Value>,
}

impl Renderer<'_> {
    /// `expr` as a value.
    pub fn value(&mut self, expr: &Expr) -> Result<Pushed, NotPushed> {
        let pushed = self.expr(expr)?;
        Ok(match pushed.ty {
            SqlType::Bool => Pushed {
                sql: format!("({})::int4::int8", pushed.sql),
                ty: SqlType::Int,
                total: pushed.total,
            },
            _ => pushed,
        })
    }

    /// `expr` as a condition, true exactly where `eval_predicate` is.
    pub fn predicate(&mut self, expr: &Expr) -> Result<Pushed, NotPushed> {
        let pushed = self.expr(expr)?;
        let sql = truth(&pushed, "where")?;
        Ok(Pushed {
            sql,
            ty: SqlType::Bool,
            total: pushed.total,
        })
    }

    fn param(&mut self, value: Value) -> Result<Pushed, NotPushed> {
        let (cast, ty) = match &value {
            Value::Null => {
                return Ok(Pushed {
                    sql: "NULL".into(),
                    ty: SqlType::Null,
                    total: true,
                })
            }
            Value::Integer(_) => ("int8", SqlType::Int),
            Value::Text(_) => ("text", SqlType::Text),
            Value::Real(_) => return refuse("a real literal: reals have no exact PostgreSQL spelling (text forms and range checks differ)"),
            Value::Blob(_) => return refuse("a blob value"),
        };
        self.params.push(value);
        let mut sql = String::new();
        write!(sql, "${}::{cast}", self.params.len()).expect("writing to a String cannot fail");
        Ok(Pushed {
            sql,
            ty,
            total: true,
        })
    }

    fn expr(&mut self, expr: &Expr) -> Result<Pushed, NotPushed> {
        if !has_column(expr) {
            // Evaluated once here, so the value (or the error) is eval's own.
            return match eval::eval(expr, &Vec::new()) {
                Ok(value) => self.param(value),
                Err(e) => refuse(format!("a constant part fails in the interpreter ({e})")),
            };
        }
        match &expr.kind {
            ExprKind::Column(name) => self.column_ref(name),
            ExprKind::Literal(literal) => self.param(eval::literal_value(literal)),
            ExprKind::Unary { op, operand } => {
                let operand = self.expr(operand)?;
                match op {
                    UnaryOp::Not => Ok(Pushed {
                        sql: format!("(NOT {})", truth(&operand, "not")?),
                        ty: SqlType::Bool,
                        total: operand.total,
                    }),
                    UnaryOp::Neg => {
                        let sql = integer(&operand, "-")?;
                        Ok(Pushed {
                            sql: format!("(-{sql})"),
                            ty: SqlType::Int,
                            total: false,
                        })
                    }
                }
            }
            ExprKind::Binary { op, left, right } => {
                let left = self.expr(left)?;
                let right = self.expr(right)?;
                binary(*op, &left, &right)
            }
            ExprKind::IsNull { operand, negated } => {
                let operand = self.expr(operand)?;
                let sql = format!(
                    "({} IS{} NULL)",
                    typed(&operand, SqlType::Int),
                    not(*negated)
                );
                Ok(Pushed {
                    sql,
                    ty: SqlType::Bool,
                    total: operand.total,
                })
            }
            ExprKind::InList {
                operand,
                list,
                negated,
            } => {
                let operand = self.expr(operand)?;
                let items = list
                    .iter()
                    .map(|e| self.expr(e))
                    .collect::<Result<Vec<_>, _>>()?;
                let ty = unify("in", std::iter::once(&operand).chain(&items))?;
                short_circuit_safe("in", std::iter::once(&operand).chain(&items))?;
                let items: Vec<String> = items.iter().map(|i| typed(i, ty)).collect();
                Ok(Pushed {
                    sql: format!(
                        "({}{} IN ({}))",
                        comparable(&operand, ty),
                        not(*negated),
                        items.join(", ")
                    ),
                    ty: SqlType::Bool,
                    total: true,
                })
            }
            ExprKind::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let operand = self.expr(operand)?;
                let low = self.expr(low)?;
                let high = self.expr(high)?;
                let all = [&operand, &low, &high];
                let ty = unify("between", all)?;
                short_circuit_safe("between", all)?;
                Ok(Pushed {
                    sql: format!(
                        "({}{} BETWEEN {} AND {})",
                        comparable(&operand, ty),
                        not(*negated),
                        typed(&low, ty),
                        typed(&high, ty)
                    ),
                    ty: SqlType::Bool,
                    total: true,
                })
            }
            ExprKind::Matches { .. } => refuse(
                "`matches` uses the regex crate's syntax, which PostgreSQL's regular expressions do not share",
            ),
            ExprKind::Call { function, args } => match Function::lookup(&function.name) {
                Some(known) => self.call(known, args),
                None => refuse(format!(
                    "`{}` is not a function (the interpreter reports it)",
                    function.name
                )),
            },
        }
    }

    fn column_ref(&mut self, name: &str) -> Result<Pushed, NotPushed> {
        let Some((sql, ty)) = (self.column)(name) else {
            return refuse(format!("`{name}` is not a column mig can read"));
        };
        let (sql, ty) = match ty {
            ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8 => {
                (format!("{sql}::int8"), SqlType::Int)
            }
            ColumnType::Bool => (format!("{sql}::int4::int8"), SqlType::Int),
            ColumnType::Text | ColumnType::Varchar => (format!("{sql}::text"), SqlType::Text),
            ColumnType::Bpchar => {
                return refuse(format!(
                "`{name}` is char(n), whose trailing blanks PostgreSQL ignores and eval does not"
            ))
            }
            ColumnType::Float4 | ColumnType::Float8 | ColumnType::Numeric => {
                return refuse(format!(
                    "`{name}` is a real: text forms and range checks of reals differ"
                ))
            }
            ColumnType::Bytea => return refuse(format!("`{name}` is a blob")),
            // Its text (a uuid as PostgreSQL prints it, an enum's label), which is what eval
            // sees; compared as text, as eval compares it: an enum not in its declared order.
            ColumnType::Uuid | ColumnType::Enum => (format!("{sql}::text"), SqlType::Text),
        };
        Ok(Pushed {
            sql,
            ty,
            total: true,
        })
    }

    fn call(&mut self, function: Function, args: &[Expr]) -> Result<Pushed, NotPushed> {
        let (min, max) = function.arity();
        if args.len() < min || max.is_some_and(|max| args.len() > max) {
            return refuse(format!(
                "`{}` with {} arguments (the interpreter reports it)",
                function.name(),
                args.len()
            ));
        }
        let name = function.name();
        match function {
            Function::Lower | Function::Upper => {
                return refuse(format!(
                    "`{name}` depends on the database's ctype; eval maps full Unicode case"
                ))
            }
            Function::Round => {
                return refuse(
                    "`round` rounds the printed decimal; PostgreSQL has no such spelling",
                )
            }
            Function::Substr => return self.substr(args),
            _ => {}
        }
        let args = args
            .iter()
            .map(|e| self.expr(e))
            .collect::<Result<Vec<_>, _>>()?;
        let total = args.iter().all(|a| a.total);
        let (sql, ty, total) = match function {
            Function::Trim => (
                format!("btrim({}, ' ')", text_only(&args[0], name)?),
                SqlType::Text,
                total,
            ),
            Function::Length => {
                let arg = match args[0].ty {
                    SqlType::Int => format!("({})::text", args[0].sql),
                    SqlType::Text => args[0].sql.clone(),
                    SqlType::Null => "NULL::text".into(),
                    SqlType::Bool => return refuse("`length` of a condition"),
                };
                (format!("char_length({arg})::int8"), SqlType::Int, total)
            }
            Function::Replace => {
                null_keeps_failures(name, &args)?;
                let texts = args
                    .iter()
                    .map(|a| text_only(a, name))
                    .collect::<Result<Vec<_>, _>>()?;
                // Bytes, as eval searches; a column's nondeterministic (case-insensitive)
                // collation made PostgreSQL refuse the search outright.
                (
                    format!(
                        "replace(({}) COLLATE \"C\", {})",
                        texts[0],
                        texts[1..].join(", ")
                    ),
                    SqlType::Text,
                    total,
                )
            }
            Function::Coalesce => {
                let ty = unify(name, &args)?;
                short_circuit_safe(name, &args)?;
                let items: Vec<String> = args.iter().map(|a| typed(a, ty)).collect();
                (format!("coalesce({})", items.join(", ")), ty, true)
            }
            Function::Nullif => {
                let ty = unify(name, &args)?;
                (
                    format!(
                        "nullif({}, {})",
                        comparable(&args[0], ty),
                        typed(&args[1], ty)
                    ),
                    ty,
                    total,
                )
            }
            Function::Abs => (
                format!("abs({})", integer(&args[0], name)?),
                SqlType::Int,
                false,
            ),
            Function::Concat => {
                let texts: Vec<String> = args.iter().map(text_form).collect();
                (
                    format!("concat({})", texts.join(", ")),
                    SqlType::Text,
                    total,
                )
            }
            Function::Lower | Function::Upper | Function::Round | Function::Substr => {
                unreachable!("handled before the arguments are rendered")
            }
        };
        Ok(Pushed { sql, ty, total })
    }

    /// Only literal bounds of a modest size: PostgreSQL's `substr` takes int4 bounds.
    fn substr(&mut self, args: &[Expr]) -> Result<Pushed, NotPushed> {
        let Some(start) = small_literal(&args[1]) else {
            return refuse("`substr` with a start that is not a small integer literal");
        };
        let len =
            match args.get(2) {
                None => None,
                Some(e) => match small_literal(e) {
                    Some(len) if len >= 0 => Some(len),
                    _ => return refuse(
                        "`substr` with a length that is not a small non-negative integer literal",
                    ),
                },
            };
        let text = self.expr(&args[0])?;
        let text = text_only(&text, "substr")?;
        let mut bounds = vec![start];
        bounds.extend(len);
        let bounds: Vec<String> = bounds
            .into_iter()
            .map(|b| {
                self.params.push(Value::Integer(b));
                format!("${}::int4", self.params.len())
            })
            .collect();
        Ok(Pushed {
            sql: format!("substr({text}, {})", bounds.join(", ")),
            ty: SqlType::Text,
            total: true,
        })
    }
}

fn small_literal(expr: &Expr) -> Option<i64> {
    if has_column(expr) {
        return None;
    }
    match eval::eval(expr, &Vec::new()) {
        Ok(Value::Integer(i)) if (-1_000_000..=1_000_000).contains(&i) => Some(i),
        _ => None,
    }
}

fn has_column(expr: &Expr) -> bool {
    let mut found = false;
    expr.walk(&mut |e| found |= matches!(e.kind, ExprKind::Column(_)));
    found
}

fn not(negated: bool) -> &'static str {
    if negated {
        " NOT"
    } else {
        ""
    }
}

/// A value as SQL's condition: integers are true unless 0, as eval's truthiness.
fn truth(p: &Pushed, op: &str) -> Result<String, NotPushed> {
    match p.ty {
        SqlType::Bool => Ok(p.sql.clone()),
        SqlType::Int => Ok(format!("({} <> 0)", p.sql)),
        SqlType::Null => Ok("NULL::bool".into()),
        SqlType::Text => refuse(format!(
            "`{op}` on text (the interpreter reports a type error)"
        )),
    }
}

fn integer(p: &Pushed, op: &str) -> Result<String, NotPushed> {
    match p.ty {
        SqlType::Int => Ok(p.sql.clone()),
        SqlType::Null => Ok("NULL::int8".into()),
        SqlType::Bool => Ok(format!("({})::int4::int8", p.sql)),
        SqlType::Text => refuse(format!(
            "`{op}` on text (the interpreter reports a type error)"
        )),
    }
}

fn text_only(p: &Pushed, op: &str) -> Result<String, NotPushed> {
    match p.ty {
        SqlType::Text => Ok(p.sql.clone()),
        SqlType::Null => Ok("NULL::text".into()),
        _ => refuse(format!(
            "`{op}` on a number (the interpreter reports a type error)"
        )),
    }
}

/// The text form eval's `||` and `concat` use: integers in decimal in both.
fn text_form(p: &Pushed) -> String {
    match p.ty {
        SqlType::Text => p.sql.clone(),
        SqlType::Int => format!("({})::text", p.sql),
        SqlType::Bool => format!("({})::int4::text", p.sql),
        SqlType::Null => "NULL::text".into(),
    }
}

/// The one type the operands compare as; Bool compares as Int, as eval's 1 and 0.
fn unify<'p>(op: &str, all: impl IntoIterator<Item = &'p Pushed>) -> Result<SqlType, NotPushed> {
    let mut ty = SqlType::Null;
    for p in all {
        let this = match p.ty {
            SqlType::Bool => SqlType::Int,
            other => other,
        };
        ty = match (ty, this) {
            (SqlType::Null, t) | (t, SqlType::Null) => t,
            (a, b) if a == b => a,
            _ => {
                return refuse(format!(
                    "`{op}` between text and a number (the interpreter reports a type error)"
                ))
            }
        };
    }
    Ok(match ty {
        SqlType::Null => SqlType::Int,
        t => t,
    })
}

fn short_circuit_safe<'p>(
    op: &str,
    all: impl IntoIterator<Item = &'p Pushed>,
) -> Result<(), NotPushed> {
    if all.into_iter().all(|p| p.total) {
        Ok(())
    } else {
        refuse(format!(
            "`{op}` over an operand that can fail: PostgreSQL may skip it where eval fails"
        ))
    }
}

/// PostgreSQL's planner folds a strict operator or function with a NULL literal operand to
/// NULL without evaluating the other operands; eval evaluates them, so one that fails
/// (`a / b + null` where b is 0) must fail in both.
fn null_keeps_failures<'p>(
    op: &str,
    all: impl IntoIterator<Item = &'p Pushed> + Clone,
) -> Result<(), NotPushed> {
    let has_null = all.clone().into_iter().any(|p| p.ty == SqlType::Null);
    if has_null && all.into_iter().any(|p| !p.total) {
        refuse(format!(
            "`{op}` of NULL and an operand that can fail: PostgreSQL folds it to NULL without evaluating the operand, where eval fails"
        ))
    } else {
        Ok(())
    }
}

/// `p` as type `ty` (after `unify`).
fn typed(p: &Pushed, ty: SqlType) -> String {
    match (p.ty, ty) {
        (SqlType::Null, SqlType::Text) => "NULL::text".into(),
        (SqlType::Null, _) => "NULL::int8".into(),
        (SqlType::Bool, _) => format!("({})::int4::int8", p.sql),
        _ => p.sql.clone(),
    }
}

/// The left operand of a comparison: text compares in the "C" collation, by bytes.
fn comparable(p: &Pushed, ty: SqlType) -> String {
    match ty {
        SqlType::Text => format!("({} COLLATE \"C\")", typed(p, ty)),
        _ => typed(p, ty),
    }
}

fn binary(op: BinaryOp, left: &Pushed, right: &Pushed) -> Result<Pushed, NotPushed> {
    let symbol = op.symbol();
    let total = left.total && right.total;
    if !matches!(op, BinaryOp::And | BinaryOp::Or) {
        null_keeps_failures(symbol, [left, right])?;
    }
    let (sql, ty, total) = match op {
        BinaryOp::And | BinaryOp::Or => {
            short_circuit_safe(symbol, [left, right])?;
            let word = if op == BinaryOp::And { "AND" } else { "OR" };
            (
                format!(
                    "({} {word} {})",
                    truth(left, symbol)?,
                    truth(right, symbol)?
                ),
                SqlType::Bool,
                true,
            )
        }
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let ty = unify(symbol, [left, right])?;
            let sql_op = if op == BinaryOp::Ne { "<>" } else { symbol };
            (
                format!("({} {sql_op} {})", comparable(left, ty), typed(right, ty)),
                SqlType::Bool,
                total,
            )
        }
        BinaryOp::Concat => (
            format!("({} || {})", text_form(left), text_form(right)),
            SqlType::Text,
            total,
        ),
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => (
            format!(
                "({} {symbol} {})",
                integer(left, symbol)?,
                integer(right, symbol)?
            ),
            SqlType::Int,
            false,
        ),
    };
    Ok(Pushed { sql, ty, total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parser::set_expression as expr;

    fn column(name: &str) -> Option<(String, ColumnType)> {
        let ty = match name {
            "n" => ColumnType::Int4,
            "s" | "t" => ColumnType::Text,
            "r" => ColumnType::Float8,
            "c" => ColumnType::Bpchar,
            _ => return None,
        };
        Some((format!("\"{name}\""), ty))
    }

    fn push(source: &str) -> (Result<Pushed, NotPushed>, Vec<Value>) {
        let mut params = Vec::new();
        let pushed = Renderer {
            column: &column,
            params: &mut params,
        }
        .value(&expr(source));
        (pushed, params)
    }

    fn reason(source: &str) -> String {
        match push(source).0 {
            Err(NotPushed(reason)) => reason,
            Ok(p) => panic!("{source} was pushed as {}", p.sql),
        }
    }

    #[test]
    fn text_compares_by_bytes_in_the_c_collation() {
        let (pushed, _) = push("s < t");
        assert_eq!(
            pushed.unwrap().sql,
            "(((\"s\"::text COLLATE \"C\") < \"t\"::text))::int4::int8"
        );
    }

    #[test]
    fn integer_columns_compute_in_bigint_and_literals_are_parameters() {
        let (pushed, params) = push("n * 2 + 1");
        let pushed = pushed.unwrap();
        assert_eq!(pushed.sql, "((\"n\"::int8 * $1::int8) + $2::int8)");
        assert_eq!(params, vec![Value::Integer(2), Value::Integer(1)]);
        assert!(!pushed.total, "overflow can fail");
    }

    #[test]
    fn constant_parts_are_computed_by_the_interpreter() {
        let (pushed, params) = push("s || (1 + 2)");
        assert_eq!(pushed.unwrap().sql, "(\"s\"::text || ($1::int8)::text)");
        assert_eq!(params, vec![Value::Integer(3)]);
        assert!(reason("n + 1 / 0").contains("a constant part fails in the interpreter"));
    }

    #[test]
    fn what_has_no_exact_equivalent_stays_with_the_interpreter() {
        assert!(reason("lower(s)").contains("depends on the database's ctype"));
        assert!(reason("s matches 'a+'").starts_with("`matches`"));
        assert!(reason("r + 1").contains("is a real"));
        assert!(reason("c || s").contains("char(n)"));
        assert!(reason("s + 1").contains("type error"));
        assert!(reason("round(n)").starts_with("`round`"));
    }

    #[test]
    fn an_operand_that_can_fail_is_never_where_postgresql_may_skip_it() {
        assert!(reason("n > 0 or n / n = 1").contains("can fail"));
        assert!(reason("coalesce(n, n * n)").contains("can fail"));
        assert!(push("n > 0 or s = t").0.is_ok());
        assert!(reason("n / n + null").contains("folds it to NULL"));
        assert!(reason("null || n % n").contains("folds it to NULL"));
        assert!(reason("replace(s || (n / n), null, t)").contains("folds it to NULL"));
        assert!(push("n + null").0.is_ok());
    }
}
