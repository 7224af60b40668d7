//! The meaning of every expression, evaluated over one row.
//!
//! This module is the single definition of the DSL's semantics. The SQLite store registers
//! these same functions with the database (`store::sqlite_functions`), so an expression run
//! as SQL and an expression run here give the same value or the same error by construction.
//! Every rule below was chosen so that PostgreSQL can match it later with plain SQL.
//!
//! - **Evaluation order.** Every operand is evaluated, left to right, before its operator:
//!   `and`/`or` do not short-circuit. An error anywhere is an error of the whole expression,
//!   so the result never depends on an evaluation order the database chose.
//! - **NULL.** An operator or function with a NULL operand gives NULL, except where stated:
//!   `and`/`or` (three-valued logic), `is [not] null`, `in`, `coalesce`, `nullif`, `concat`.
//! - **Truthiness** (`and`, `or`, `not`, `where`): integer 0 and real 0.0 are false, other
//!   numbers true, NULL unknown; text and blobs are type errors.
//! - **Comparisons** give 1, 0 or NULL. Integers and reals compare numerically, the integer
//!   converted to a real first (as PostgreSQL's implicit `int8 → float8` cast does). NaN
//!   equals NaN and sorts above every other real (as in PostgreSQL). Text compares by bytes
//!   (binary collation), blobs by bytes; comparing across those kinds is a type error.
//! - **Arithmetic.** Two integers give an integer, checked: overflow is an error. Integer
//!   division truncates toward zero; `%` takes the sign of the dividend. Any real operand
//!   gives a real, with PostgreSQL's `float8` checks: a finite computation that overflows to
//!   infinity, or underflows a non-zero product or quotient to zero, is an error. A result
//!   that is not a number is an error too, because SQLite cannot hold NaN. Dividing by zero
//!   (integer or real, `/` or `%`) is an error.
//! - **Text forms**, used by `||`, `concat` and `length`: integers in decimal, reals as
//!   Rust's `Display` prints them (`1.5`, `2`, `100000000000000000000`, `inf`), text as is;
//!   a blob has no text form (type error).
//!
//! What a PostgreSQL pushdown must mind to match: text comparisons need `COLLATE "C"`;
//! `and`/`or` must not let the planner skip an operand that would fail; real `%`, the
//! text form of reals and the NaN/underflow checks have no native spelling and need small
//! SQL functions; `round` is given its spelling in [`call`].

use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Function, Literal, UnaryOp};
use crate::value::Value;
use regex::Regex;
use std::borrow::Cow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use thiserror::Error;

/// Why an expression has no value for a row.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvalError {
    /// `nmae || 'x'` over a row without `nmae`.
    #[error("unknown column `{0}`")]
    UnknownColumn(String),
    /// `lenght(name)`.
    #[error("unknown function `{0}`")]
    UnknownFunction(String),
    /// `lower(a, b)`.
    #[error("`{function}` takes {expected} argument(s), got {got}")]
    Arity {
        function: &'static str,
        expected: String,
        got: usize,
    },
    /// `1 / 0`, `1.5 % 0.0`.
    #[error("division by zero")]
    DivisionByZero,
    /// `9223372036854775807 + 1`, `abs(-9223372036854775808)`.
    #[error("integer overflow in `{0}`")]
    IntegerOverflow(&'static str),
    /// `1e308 * 10.0`, `1e-300 * 1e-300`, `round(1.7976931348623157e308, -308)`.
    #[error("real out of range in `{0}`")]
    RealOutOfRange(&'static str),
    /// `inf - inf` (SQLite cannot store NaN).
    #[error("result of `{0}` is not a number")]
    NotANumber(&'static str),
    /// `'a' + 1`, `1 < 'a'`.
    #[error("cannot apply `{op}` to {left} and {right}")]
    BinaryType {
        op: &'static str,
        left: &'static str,
        right: &'static str,
    },
    /// `-'a'`, `not 'a'`, `'a' and 1`, `where name`.
    #[error("cannot apply `{op}` to {operand}")]
    UnaryType {
        op: &'static str,
        operand: &'static str,
    },
    /// `lower(1)`, `substr('abc', 1.5)`.
    #[error("argument {position} of `{function}` must be {expected}, got {got}")]
    ArgumentType {
        function: &'static str,
        position: usize,
        expected: &'static str,
        got: &'static str,
    },
    /// `substr('abc', 1, -1)`.
    #[error("negative substring length not allowed")]
    NegativeLength,
    /// `email matches '('`.
    #[error("invalid regex `{pattern}`: {reason}")]
    InvalidRegex { pattern: String, reason: String },
}

/// Where `eval` reads a row's columns from.
pub trait ColumnSource {
    fn column(&self, name: &str) -> Option<&Value>;
}

/// A borrowed row; `&[...]` rather than `[...]` because only a sized type becomes a `dyn`.
impl ColumnSource for &[(String, Value)] {
    fn column(&self, name: &str) -> Option<&Value> {
        find_column(self, name)
    }
}

impl ColumnSource for Vec<(String, Value)> {
    fn column(&self, name: &str) -> Option<&Value> {
        find_column(self, name)
    }
}

fn find_column<'a>(row: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    row.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

impl ColumnSource for HashMap<String, Value> {
    fn column(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// The name of a value's type, as error messages print it.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Integer(_) => "integer",
        Value::Real(_) => "real",
        Value::Text(_) => "text",
        Value::Blob(_) => "blob",
    }
}

/// The value of `expr` over `row`.
pub fn eval(expr: &Expr, row: &dyn ColumnSource) -> Result<Value, EvalError> {
    match &expr.kind {
        ExprKind::Column(name) => row
            .column(name)
            .cloned()
            .ok_or_else(|| EvalError::UnknownColumn(name.clone())),
        ExprKind::Literal(literal) => Ok(literal_value(literal)),
        ExprKind::Unary { op, operand } => unary(*op, &eval(operand, row)?),
        ExprKind::Binary { op, left, right } => {
            let left = eval(left, row)?;
            let right = eval(right, row)?;
            binary(*op, &left, &right)
        }
        ExprKind::IsNull { operand, negated } => {
            Ok(Value::from_bool(eval(operand, row)?.is_null() != *negated))
        }
        ExprKind::InList {
            operand,
            list,
            negated,
        } => {
            let operand = eval(operand, row)?;
            let list = eval_all(list, row)?;
            negate_if(*negated, in_list(&operand, &list)?)
        }
        ExprKind::Between {
            operand,
            low,
            high,
            negated,
        } => {
            let operand = eval(operand, row)?;
            let low = eval(low, row)?;
            let high = eval(high, row)?;
            negate_if(*negated, between(&operand, &low, &high)?)
        }
        ExprKind::Matches {
            operand, pattern, ..
        } => matches(&eval(operand, row)?, pattern),
        ExprKind::Call { function, args } => {
            let function = Function::lookup(&function.name)
                .ok_or_else(|| EvalError::UnknownFunction(function.name.clone()))?;
            call(function, &eval_all(args, row)?)
        }
    }
}

/// Whether `expr` holds for `row`, as `where` and `expect` decide: only true is true.
pub fn eval_predicate(expr: &Expr, row: &dyn ColumnSource) -> Result<bool, EvalError> {
    Ok(is_true(&eval(expr, row)?)? == Some(true))
}

fn eval_all(exprs: &[Expr], row: &dyn ColumnSource) -> Result<Vec<Value>, EvalError> {
    exprs.iter().map(|e| eval(e, row)).collect()
}

fn negate_if(negated: bool, value: Value) -> Result<Value, EvalError> {
    if negated {
        unary(UnaryOp::Not, &value)
    } else {
        Ok(value)
    }
}

/// A literal's value; `true` and `false` are the integers 1 and 0.
pub fn literal_value(literal: &Literal) -> Value {
    match literal {
        Literal::Null => Value::Null,
        Literal::Bool(b) => Value::from_bool(*b),
        Literal::Integer(i) => Value::Integer(*i),
        Literal::Real(r) => Value::Real(*r),
        Literal::Text(s) => Value::Text(s.clone()),
    }
}

/// The truth of a condition (`where`, `expect`): `None` is SQL's unknown.
pub fn is_true(value: &Value) -> Result<Option<bool>, EvalError> {
    truth("where", value)
}

fn truth(op: &'static str, value: &Value) -> Result<Option<bool>, EvalError> {
    match value {
        Value::Null => Ok(None),
        Value::Integer(i) => Ok(Some(*i != 0)),
        Value::Real(r) => Ok(Some(*r != 0.0)),
        Value::Text(_) | Value::Blob(_) => Err(EvalError::UnaryType {
            op,
            operand: type_name(value),
        }),
    }
}

fn from_truth(truth: Option<bool>) -> Value {
    truth.map_or(Value::Null, Value::from_bool)
}

/// `not x` and `-x`.
pub fn unary(op: UnaryOp, operand: &Value) -> Result<Value, EvalError> {
    match op {
        UnaryOp::Not => Ok(from_truth(truth("not", operand)?.map(|b| !b))),
        UnaryOp::Neg => match operand {
            Value::Null => Ok(Value::Null),
            Value::Integer(i) => i
                .checked_neg()
                .map(Value::Integer)
                .ok_or(EvalError::IntegerOverflow("-")),
            Value::Real(r) => Ok(Value::Real(-r)),
            Value::Text(_) | Value::Blob(_) => Err(EvalError::UnaryType {
                op: "-",
                operand: type_name(operand),
            }),
        },
    }
}

/// Every binary operator: logic, comparison, `||` and arithmetic.
pub fn binary(op: BinaryOp, left: &Value, right: &Value) -> Result<Value, EvalError> {
    match op {
        BinaryOp::And => {
            let (l, r) = (truth("and", left)?, truth("and", right)?);
            Ok(from_truth(match (l, r) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }))
        }
        BinaryOp::Or => {
            let (l, r) = (truth("or", left)?, truth("or", right)?);
            Ok(from_truth(match (l, r) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }))
        }
        BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let ordering = compare(op.symbol(), left, right)?;
            Ok(from_truth(ordering.map(|o| match op {
                BinaryOp::Eq => o.is_eq(),
                BinaryOp::Ne => o.is_ne(),
                BinaryOp::Lt => o.is_lt(),
                BinaryOp::Le => o.is_le(),
                BinaryOp::Gt => o.is_gt(),
                _ => o.is_ge(),
            })))
        }
        BinaryOp::Concat => match (text_form("||", left)?, text_form("||", right)?) {
            (Some(l), Some(r)) => Ok(Value::Text(l.into_owned() + &r)),
            _ => Ok(Value::Null),
        },
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
            arithmetic(op, left, right)
        }
    }
}

/// How `left` orders against `right`, `None` when either is NULL.
pub fn compare(
    op: &'static str,
    left: &Value,
    right: &Value,
) -> Result<Option<Ordering>, EvalError> {
    Ok(Some(match (left, right) {
        (Value::Null, _) | (_, Value::Null) => return Ok(None),
        (Value::Integer(l), Value::Integer(r)) => l.cmp(r),
        (Value::Integer(l), Value::Real(r)) => compare_reals(*l as f64, *r),
        (Value::Real(l), Value::Integer(r)) => compare_reals(*l, *r as f64),
        (Value::Real(l), Value::Real(r)) => compare_reals(*l, *r),
        (Value::Text(l), Value::Text(r)) => l.as_bytes().cmp(r.as_bytes()),
        (Value::Blob(l), Value::Blob(r)) => l.cmp(r),
        _ => return Err(binary_type(op, left, right)),
    }))
}

fn compare_reals(l: f64, r: f64) -> Ordering {
    match (l.is_nan(), r.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) if l < r => Ordering::Less,
        (false, false) if l > r => Ordering::Greater,
        (false, false) => Ordering::Equal,
    }
}

fn binary_type(op: &'static str, left: &Value, right: &Value) -> EvalError {
    EvalError::BinaryType {
        op,
        left: type_name(left),
        right: type_name(right),
    }
}

fn arithmetic(op: BinaryOp, left: &Value, right: &Value) -> Result<Value, EvalError> {
    match (left, right) {
        (Value::Null, _) | (_, Value::Null) => Ok(Value::Null),
        (Value::Integer(l), Value::Integer(r)) => integer_arithmetic(op, *l, *r),
        (Value::Integer(l), Value::Real(r)) => real_arithmetic(op, *l as f64, *r),
        (Value::Real(l), Value::Integer(r)) => real_arithmetic(op, *l, *r as f64),
        (Value::Real(l), Value::Real(r)) => real_arithmetic(op, *l, *r),
        _ => Err(binary_type(op.symbol(), left, right)),
    }
}

fn integer_arithmetic(op: BinaryOp, l: i64, r: i64) -> Result<Value, EvalError> {
    let result = match op {
        BinaryOp::Add => l.checked_add(r),
        BinaryOp::Sub => l.checked_sub(r),
        BinaryOp::Mul => l.checked_mul(r),
        BinaryOp::Div if r == 0 => return Err(EvalError::DivisionByZero),
        BinaryOp::Div => l.checked_div(r),
        BinaryOp::Mod if r == 0 => return Err(EvalError::DivisionByZero),
        // i64::MIN % -1 is 0 mathematically; PostgreSQL answers 0 too.
        BinaryOp::Mod => Some(l.wrapping_rem(r)),
        _ => unreachable!("integer_arithmetic is only called for arithmetic operators"),
    };
    result
        .map(Value::Integer)
        .ok_or(EvalError::IntegerOverflow(op.symbol()))
}

fn real_arithmetic(op: BinaryOp, l: f64, r: f64) -> Result<Value, EvalError> {
    let symbol = op.symbol();
    if matches!(op, BinaryOp::Div | BinaryOp::Mod) && r == 0.0 {
        return Err(EvalError::DivisionByZero);
    }
    let result = match op {
        BinaryOp::Add => l + r,
        BinaryOp::Sub => l - r,
        BinaryOp::Mul => l * r,
        BinaryOp::Div => l / r,
        BinaryOp::Mod => l % r,
        _ => unreachable!("real_arithmetic is only called for arithmetic operators"),
    };
    // The same range checks as PostgreSQL's float8 operators.
    let overflow = match op {
        BinaryOp::Div | BinaryOp::Mod => result.is_infinite() && !l.is_infinite(),
        _ => result.is_infinite() && !l.is_infinite() && !r.is_infinite(),
    };
    let underflow = result == 0.0
        && match op {
            BinaryOp::Mul => l != 0.0 && r != 0.0,
            BinaryOp::Div => l != 0.0 && !r.is_infinite(),
            _ => false,
        };
    if result.is_nan() {
        Err(EvalError::NotANumber(symbol))
    } else if overflow || underflow {
        Err(EvalError::RealOutOfRange(symbol))
    } else {
        Ok(Value::Real(result))
    }
}

/// A value's text form (see the module docs), `None` for NULL; a blob is a type error of `op`.
pub fn text_form<'a>(
    op: &'static str,
    value: &'a Value,
) -> Result<Option<Cow<'a, str>>, EvalError> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Integer(i) => Cow::Owned(i.to_string()),
        Value::Real(r) => Cow::Owned(r.to_string()),
        Value::Text(s) => Cow::Borrowed(s.as_str()),
        Value::Blob(_) => {
            return Err(EvalError::UnaryType {
                op,
                operand: "blob",
            })
        }
    }))
}

/// `x in (items)`: true if any item equals `x`; otherwise NULL if `x` or any item is NULL;
/// otherwise false. Every item is compared, so a type error anywhere is an error.
pub fn in_list(operand: &Value, items: &[Value]) -> Result<Value, EvalError> {
    let mut found = false;
    let mut unknown = operand.is_null();
    for item in items {
        match compare("in", operand, item)? {
            Some(ordering) => found |= ordering.is_eq(),
            None => unknown = true,
        }
    }
    Ok(if found {
        Value::from_bool(true)
    } else if unknown {
        Value::Null
    } else {
        Value::from_bool(false)
    })
}

/// `x between low and high`, which is `x >= low and x <= high` in three-valued logic.
pub fn between(operand: &Value, low: &Value, high: &Value) -> Result<Value, EvalError> {
    let above = compare("between", operand, low)?.map(Ordering::is_ge);
    let below = compare("between", operand, high)?.map(Ordering::is_le);
    binary(BinaryOp::And, &from_truth(above), &from_truth(below))
}

/// The most compiled regexes a thread keeps; a migration uses a handful, so when a strange
/// workload overflows the cache it is simply emptied.
const REGEX_CACHE_CAPACITY: usize = 64;

thread_local! {
    static REGEX_CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// `x matches 'pattern'`: an unanchored search with the `regex` crate's syntax.
/// NULL gives NULL; any other non-text operand is a type error.
pub fn matches(operand: &Value, pattern: &str) -> Result<Value, EvalError> {
    let text = match operand {
        Value::Null => return Ok(Value::Null),
        Value::Text(text) => text,
        _ => {
            return Err(EvalError::UnaryType {
                op: "matches",
                operand: type_name(operand),
            })
        }
    };
    REGEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(regex) = cache.get(pattern) {
            return Ok(Value::from_bool(regex.is_match(text)));
        }
        let regex = Regex::new(pattern).map_err(|e| EvalError::InvalidRegex {
            pattern: pattern.to_owned(),
            reason: e.to_string(),
        })?;
        let found = regex.is_match(text);
        if cache.len() >= REGEX_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), regex);
        Ok(Value::from_bool(found))
    })
}

/// A call of one of the DSL's functions. Arguments are checked against `Function::arity`.
///
/// - `lower`, `upper`: Unicode full case mapping (`upper('straße')` is `'STRASSE'`); text only.
/// - `trim`: removes ASCII spaces (not tabs or newlines) from both ends, as SQL's default.
/// - `length`: characters of the text, or of a number's text form; bytes of a blob.
/// - `substr(s, start[, len])`: SQL-standard, on characters. `start` is 1-based; the
///   characters taken are those at positions `start .. start + len` that exist, so a
///   `start` below 1 shortens the result. No `len` means to the end; a negative `len` is
///   an error. `start` and `len` must be integers.
/// - `replace(s, from, to)`: every occurrence, left to right; an empty `from` gives `s`.
/// - `coalesce(...)`: the first non-NULL argument, or NULL.
/// - `nullif(a, b)`: NULL if `a = b`, else `a`.
/// - `abs(x)`: checked on integers.
/// - `round(x[, n])`: `n` (default 0, an integer) decimal places, halves away from zero.
///   An integer stays an integer: unchanged for `n >= 0`, rounded to a multiple of
///   `10^-n` otherwise (overflow is an error). A real is rounded as the decimal it prints
///   as (so `round(2.675, 2)` is `2.68`), giving a real; zero comes back as `0.0`, never
///   `-0.0`. PostgreSQL matches with `round(x::numeric, n)::int8` and
///   `round(x::text::numeric, n)::float8`.
/// - `concat(...)`: the text forms of the non-NULL arguments, concatenated; never NULL.
///
/// Every other function gives NULL when any argument is NULL.
pub fn call(function: Function, args: &[Value]) -> Result<Value, EvalError> {
    check_arity(function, args.len())?;
    let name = function.name();
    match function {
        Function::Coalesce => {
            return Ok(args
                .iter()
                .find(|v| !v.is_null())
                .cloned()
                .unwrap_or(Value::Null))
        }
        Function::Nullif => {
            return Ok(match compare(name, &args[0], &args[1])? {
                Some(Ordering::Equal) => Value::Null,
                _ => args[0].clone(),
            })
        }
        Function::Concat => {
            let mut out = String::new();
            for arg in args {
                if let Some(text) = text_form(name, arg)? {
                    out.push_str(&text);
                }
            }
            return Ok(Value::Text(out));
        }
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    match function {
        Function::Lower => Ok(Value::Text(text_arg(name, args, 0)?.to_lowercase())),
        Function::Upper => Ok(Value::Text(text_arg(name, args, 0)?.to_uppercase())),
        Function::Trim => Ok(Value::Text(
            text_arg(name, args, 0)?.trim_matches(' ').to_owned(),
        )),
        Function::Length => Ok(Value::Integer(length(&args[0]))),
        Function::Substr => {
            let start = integer_arg(name, args, 1)?;
            let len = match args.get(2) {
                Some(_) => Some(integer_arg(name, args, 2)?),
                None => None,
            };
            substr(text_arg(name, args, 0)?, start, len).map(Value::Text)
        }
        Function::Replace => {
            let text = text_arg(name, args, 0)?;
            let from = text_arg(name, args, 1)?;
            let to = text_arg(name, args, 2)?;
            Ok(Value::Text(if from.is_empty() {
                text.to_owned()
            } else {
                text.replace(from, to)
            }))
        }
        Function::Abs => match &args[0] {
            Value::Integer(i) => i
                .checked_abs()
                .map(Value::Integer)
                .ok_or(EvalError::IntegerOverflow(name)),
            Value::Real(r) => Ok(Value::Real(r.abs())),
            other => Err(argument_type(name, 0, "a number", other)),
        },
        Function::Round => {
            let places = match args.get(1) {
                Some(_) => integer_arg(name, args, 1)?,
                None => 0,
            };
            match &args[0] {
                Value::Integer(i) => round_integer(*i, places).map(Value::Integer),
                Value::Real(r) => round_real(*r, places).map(Value::Real),
                other => Err(argument_type(name, 0, "a number", other)),
            }
        }
        Function::Coalesce | Function::Nullif | Function::Concat => {
            unreachable!("handled before the NULL check")
        }
    }
}

fn check_arity(function: Function, got: usize) -> Result<(), EvalError> {
    let (min, max) = function.arity();
    if got >= min && max.is_none_or(|max| got <= max) {
        return Ok(());
    }
    let expected = match max {
        Some(max) if max == min => min.to_string(),
        Some(max) => format!("{min} to {max}"),
        None => format!("at least {min}"),
    };
    Err(EvalError::Arity {
        function: function.name(),
        expected,
        got,
    })
}

fn argument_type(
    function: &'static str,
    index: usize,
    expected: &'static str,
    got: &Value,
) -> EvalError {
    EvalError::ArgumentType {
        function,
        position: index + 1,
        expected,
        got: type_name(got),
    }
}

fn text_arg<'a>(
    function: &'static str,
    args: &'a [Value],
    index: usize,
) -> Result<&'a str, EvalError> {
    match &args[index] {
        Value::Text(text) => Ok(text),
        other => Err(argument_type(function, index, "text", other)),
    }
}

fn integer_arg(function: &'static str, args: &[Value], index: usize) -> Result<i64, EvalError> {
    match &args[index] {
        Value::Integer(i) => Ok(*i),
        other => Err(argument_type(function, index, "an integer", other)),
    }
}

fn length(value: &Value) -> i64 {
    let count = match value {
        Value::Null => 0,
        Value::Integer(i) => i.to_string().len(),
        Value::Real(r) => r.to_string().chars().count(),
        Value::Text(s) => s.chars().count(),
        Value::Blob(b) => b.len(),
    };
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn substr(text: &str, start: i64, len: Option<i64>) -> Result<String, EvalError> {
    if len.is_some_and(|len| len < 0) {
        return Err(EvalError::NegativeLength);
    }
    let first = start.max(1);
    let taken = match len {
        // i128 because `start + len` may leave the i64 range.
        Some(len) => (i128::from(start) + i128::from(len) - i128::from(first)).max(0),
        None => i128::MAX,
    };
    let skip = usize::try_from(first - 1).unwrap_or(usize::MAX);
    let take = usize::try_from(taken).unwrap_or(usize::MAX);
    Ok(text.chars().skip(skip).take(take).collect())
}

fn round_integer(value: i64, places: i64) -> Result<i64, EvalError> {
    if places >= 0 {
        return Ok(value);
    }
    // Rounding can leave the i64 range (i64::MAX rounds up to 10^19), so work in i128,
    // where every power of ten up to 10^38 fits; larger ones round every i64 to 0.
    let digits = places.unsigned_abs();
    if digits > 38 {
        return Ok(0);
    }
    let unit = 10_i128.pow(digits as u32);
    let magnitude = i128::from(value).abs();
    let rounded = (magnitude + unit / 2) / unit * unit;
    let signed = if value < 0 { -rounded } else { rounded };
    i64::try_from(signed).map_err(|_| EvalError::IntegerOverflow("round"))
}

/// Beyond this many places either way, rounding a finite f64 is the identity or gives 0.
const ROUND_PLACES_LIMIT: i64 = 400;

fn round_real(value: f64, places: i64) -> Result<f64, EvalError> {
    if !value.is_finite() || places > ROUND_PLACES_LIMIT {
        return Ok(value);
    }
    if value == 0.0 || places < -ROUND_PLACES_LIMIT {
        return Ok(0.0);
    }
    // The shortest decimal that reads back as `value`, as digits d0 d1 d2 ... and the
    // power of ten of d0: what the user wrote and sees, so that is what gets rounded.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always prints an exponent");
    let exponent: i64 = exponent.parse().expect("`{:e}` prints an integer exponent");
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    // Digit i stands for 10^(exponent - i); those down to 10^-places are kept.
    let kept = exponent + places + 1;
    if kept >= digits.len() as i64 {
        return Ok(value);
    }
    let mut rounded: Vec<u8> = if kept < 0 {
        Vec::new()
    } else {
        digits[..kept as usize].to_vec()
    };
    let round_up = kept >= 0 && digits[kept as usize] >= b'5';
    if round_up {
        increment_decimal(&mut rounded);
    }
    if rounded.iter().all(|d| *d == b'0') {
        return Ok(0.0);
    }
    let text = format!(
        "{}{}e{}",
        if value < 0.0 { "-" } else { "" },
        String::from_utf8_lossy(&rounded),
        -places
    );
    let result: f64 = text
        .parse()
        .expect("a decimal in scientific notation parses");
    if result.is_infinite() {
        return Err(EvalError::RealOutOfRange("round"));
    }
    Ok(result)
}

fn increment_decimal(digits: &mut Vec<u8>) {
    for digit in digits.iter_mut().rev() {
        if *digit == b'9' {
            *digit = b'0';
        } else {
            *digit += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::Span;
    use crate::syntax::build::*;

    fn row() -> Vec<(String, Value)> {
        vec![
            ("first_name".to_owned(), Value::Text("Ada".to_owned())),
            ("last_name".to_owned(), Value::Text("Lovelace".to_owned())),
            ("age".to_owned(), Value::Integer(36)),
            ("nickname".to_owned(), Value::Null),
        ]
    }

    fn run(e: &Expr) -> Result<Value, EvalError> {
        eval(e, &row())
    }

    fn ok(e: &Expr) -> Value {
        run(e).unwrap_or_else(|err| panic!("{e:?} failed: {err}"))
    }

    fn err(e: &Expr) -> String {
        match run(e) {
            Ok(v) => panic!("{e:?} gave {v:?}, expected an error"),
            Err(error) => error.to_string(),
        }
    }

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    fn call_ok(function: Function, args: &[Value]) -> Value {
        call(function, args).unwrap_or_else(|e| panic!("{function:?}{args:?} failed: {e}"))
    }

    const TRUE: Value = Value::Integer(1);
    const FALSE: Value = Value::Integer(0);

    #[test]
    fn columns_are_read_from_any_source() {
        assert_eq!(ok(&col("age")), Value::Integer(36));
        let map: HashMap<String, Value> = row().into_iter().collect();
        assert_eq!(eval(&col("first_name"), &map), Ok(t("Ada")));
        assert_eq!(eval(&col("first_name"), &row().as_slice()), Ok(t("Ada")));
        assert_eq!(err(&col("nmae")), "unknown column `nmae`");
    }

    #[test]
    fn the_demo_full_name_concatenates_with_a_space() {
        let full = bin(
            BinaryOp::Concat,
            bin(BinaryOp::Concat, col("first_name"), text(" ")),
            col("last_name"),
        );
        assert_eq!(ok(&full), t("Ada Lovelace"));
    }

    #[test]
    fn literals_booleans_are_integers() {
        assert_eq!(ok(&lit(Literal::Bool(true))), TRUE);
        assert_eq!(ok(&lit(Literal::Bool(false))), FALSE);
        assert_eq!(ok(&null()), Value::Null);
    }

    #[test]
    fn and_or_follow_three_valued_logic() {
        let values = [TRUE, FALSE, Value::Null];
        // Rows: left true, false, null; columns: right true, false, null.
        let and = [
            [TRUE, FALSE, Value::Null],
            [FALSE, FALSE, FALSE],
            [Value::Null, FALSE, Value::Null],
        ];
        let or = [
            [TRUE, TRUE, TRUE],
            [TRUE, FALSE, Value::Null],
            [TRUE, Value::Null, Value::Null],
        ];
        for (i, l) in values.iter().enumerate() {
            for (j, r) in values.iter().enumerate() {
                assert_eq!(binary(BinaryOp::And, l, r), Ok(and[i][j].clone()));
                assert_eq!(binary(BinaryOp::Or, l, r), Ok(or[i][j].clone()));
            }
        }
        assert_eq!(unary(UnaryOp::Not, &TRUE), Ok(FALSE));
        assert_eq!(unary(UnaryOp::Not, &FALSE), Ok(TRUE));
        assert_eq!(unary(UnaryOp::Not, &Value::Null), Ok(Value::Null));
    }

    #[test]
    fn truthiness_of_numbers_and_text() {
        assert_eq!(is_true(&Value::Integer(-3)), Ok(Some(true)));
        assert_eq!(is_true(&Value::Integer(0)), Ok(Some(false)));
        assert_eq!(is_true(&Value::Real(0.0)), Ok(Some(false)));
        assert_eq!(is_true(&Value::Real(-0.0)), Ok(Some(false)));
        assert_eq!(is_true(&Value::Real(0.5)), Ok(Some(true)));
        assert_eq!(is_true(&Value::Null), Ok(None));
        assert_eq!(
            err(&un(UnaryOp::Not, text("x"))),
            "cannot apply `not` to text"
        );
        assert_eq!(
            err(&bin(BinaryOp::And, lit(Literal::Bool(false)), text("x"))),
            "cannot apply `and` to text"
        );
        assert!(!eval_predicate(&null(), &row()).unwrap());
        assert!(eval_predicate(&int(2), &row()).unwrap());
    }

    #[test]
    fn operands_are_all_evaluated_so_errors_never_hide() {
        let failing = bin(BinaryOp::Eq, bin(BinaryOp::Div, int(1), int(0)), int(1));
        assert_eq!(
            err(&bin(
                BinaryOp::And,
                lit(Literal::Bool(false)),
                failing.clone()
            )),
            "division by zero"
        );
        assert_eq!(
            err(&bin(BinaryOp::Or, lit(Literal::Bool(true)), failing)),
            "division by zero"
        );
    }

    #[test]
    fn comparisons() {
        let cases = [
            (BinaryOp::Eq, Value::Integer(1), Value::Real(1.0), TRUE),
            (BinaryOp::Ne, Value::Integer(1), Value::Real(1.5), TRUE),
            (BinaryOp::Lt, Value::Integer(1), Value::Real(1.5), TRUE),
            (BinaryOp::Le, Value::Real(2.0), Value::Integer(2), TRUE),
            (BinaryOp::Gt, Value::Integer(-1), Value::Integer(2), FALSE),
            (BinaryOp::Ge, t("b"), t("a"), TRUE),
            (BinaryOp::Lt, t("Z"), t("a"), TRUE),
            (BinaryOp::Lt, t("z"), t("é"), TRUE),
            (BinaryOp::Eq, t("a"), t("a "), FALSE),
            (BinaryOp::Eq, Value::Real(0.0), Value::Real(-0.0), TRUE),
            (
                BinaryOp::Eq,
                Value::Real(f64::NAN),
                Value::Real(f64::NAN),
                TRUE,
            ),
            (
                BinaryOp::Gt,
                Value::Real(f64::NAN),
                Value::Real(f64::INFINITY),
                TRUE,
            ),
            (
                BinaryOp::Lt,
                Value::Blob(vec![1]),
                Value::Blob(vec![2]),
                TRUE,
            ),
            (BinaryOp::Eq, Value::Null, Value::Null, Value::Null),
            (BinaryOp::Ne, Value::Integer(1), Value::Null, Value::Null),
            (BinaryOp::Lt, Value::Null, t("a"), Value::Null),
        ];
        for (op, l, r, expected) in cases {
            assert_eq!(binary(op, &l, &r), Ok(expected), "{l:?} {op:?} {r:?}");
        }
        assert_eq!(
            err(&bin(BinaryOp::Eq, int(1), text("1"))),
            "cannot apply `=` to integer and text"
        );
        assert_eq!(
            err(&bin(BinaryOp::Lt, text("a"), lit(Literal::Bool(true)))),
            "cannot apply `<` to text and integer"
        );
    }

    #[test]
    fn integer_arithmetic_is_checked() {
        let cases = [
            (BinaryOp::Add, 2, 3, 5),
            (BinaryOp::Sub, 2, 3, -1),
            (BinaryOp::Mul, -4, 3, -12),
            (BinaryOp::Div, 7, 2, 3),
            (BinaryOp::Div, -7, 2, -3),
            (BinaryOp::Mod, 7, 3, 1),
            (BinaryOp::Mod, -7, 3, -1),
            (BinaryOp::Mod, 7, -3, 1),
            (BinaryOp::Mod, i64::MIN, -1, 0),
        ];
        for (op, l, r, expected) in cases {
            assert_eq!(
                binary(op, &Value::Integer(l), &Value::Integer(r)),
                Ok(Value::Integer(expected)),
                "{l} {op:?} {r}"
            );
        }
        assert_eq!(err(&bin(BinaryOp::Div, int(1), int(0))), "division by zero");
        assert_eq!(err(&bin(BinaryOp::Mod, int(1), int(0))), "division by zero");
        assert_eq!(
            err(&bin(BinaryOp::Add, int(i64::MAX), int(1))),
            "integer overflow in `+`"
        );
        assert_eq!(
            err(&bin(BinaryOp::Sub, int(i64::MIN), int(1))),
            "integer overflow in `-`"
        );
        assert_eq!(
            err(&bin(BinaryOp::Mul, int(i64::MAX), int(2))),
            "integer overflow in `*`"
        );
        assert_eq!(
            err(&bin(BinaryOp::Div, int(i64::MIN), int(-1))),
            "integer overflow in `/`"
        );
        assert_eq!(
            err(&un(UnaryOp::Neg, int(i64::MIN))),
            "integer overflow in `-`"
        );
        assert_eq!(ok(&un(UnaryOp::Neg, int(5))), Value::Integer(-5));
    }

    #[test]
    fn real_arithmetic_follows_float8() {
        assert_eq!(ok(&bin(BinaryOp::Add, int(1), real(0.5))), Value::Real(1.5));
        assert_eq!(
            ok(&bin(BinaryOp::Div, real(1.0), int(4))),
            Value::Real(0.25)
        );
        assert_eq!(
            ok(&bin(BinaryOp::Mod, real(-5.5), int(2))),
            Value::Real(-1.5)
        );
        assert_eq!(ok(&un(UnaryOp::Neg, real(2.5))), Value::Real(-2.5));
        assert_eq!(
            err(&bin(BinaryOp::Div, real(1.0), real(0.0))),
            "division by zero"
        );
        assert_eq!(
            err(&bin(BinaryOp::Div, int(1), real(-0.0))),
            "division by zero"
        );
        assert_eq!(
            err(&bin(BinaryOp::Mul, real(1e308), real(10.0))),
            "real out of range in `*`"
        );
        assert_eq!(
            err(&bin(BinaryOp::Mul, real(1e-300), real(1e-300))),
            "real out of range in `*`"
        );
        let inf = Value::Real(f64::INFINITY);
        assert_eq!(
            binary(BinaryOp::Add, &inf, &Value::Integer(1)),
            Ok(inf.clone())
        );
        assert_eq!(
            binary(BinaryOp::Sub, &inf, &inf),
            Err(EvalError::NotANumber("-"))
        );
    }

    #[test]
    fn arithmetic_with_null_is_null_and_with_text_an_error() {
        for op in [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Mod,
        ] {
            assert_eq!(ok(&bin(op, null(), int(1))), Value::Null);
            assert_eq!(ok(&bin(op, real(1.0), null())), Value::Null);
            assert_eq!(ok(&bin(op, null(), int(0))), Value::Null);
        }
        assert_eq!(
            err(&bin(BinaryOp::Add, text("1"), int(1))),
            "cannot apply `+` to text and integer"
        );
        assert_eq!(
            err(&un(UnaryOp::Neg, text("1"))),
            "cannot apply `-` to text"
        );
    }

    #[test]
    fn concat_operator_uses_text_forms() {
        let cat = |l, r| ok(&bin(BinaryOp::Concat, l, r));
        assert_eq!(cat(text("n="), int(-42)), t("n=-42"));
        assert_eq!(cat(real(1.5), text("|")), t("1.5|"));
        assert_eq!(cat(real(2.0), text("")), t("2"));
        assert_eq!(cat(text("a"), null()), Value::Null);
        assert_eq!(cat(null(), null()), Value::Null);
        assert_eq!(
            binary(BinaryOp::Concat, &t("a"), &Value::Blob(vec![0])),
            Err(EvalError::UnaryType {
                op: "||",
                operand: "blob"
            })
        );
    }

    #[test]
    fn is_null_is_never_null() {
        let is_null = |operand, negated| {
            ok(&expr(ExprKind::IsNull {
                operand: Box::new(operand),
                negated,
            }))
        };
        assert_eq!(is_null(col("nickname"), false), TRUE);
        assert_eq!(is_null(col("nickname"), true), FALSE);
        assert_eq!(is_null(int(0), false), FALSE);
        assert_eq!(is_null(text(""), true), TRUE);
    }

    #[test]
    fn in_list_is_true_null_or_false() {
        let in_list = |operand, list, negated| {
            run(&expr(ExprKind::InList {
                operand: Box::new(operand),
                list,
                negated,
            }))
        };
        assert_eq!(in_list(int(2), vec![int(1), real(2.0)], false), Ok(TRUE));
        assert_eq!(in_list(int(2), vec![null(), int(2)], false), Ok(TRUE));
        assert_eq!(
            in_list(int(3), vec![int(1), null()], false),
            Ok(Value::Null)
        );
        assert_eq!(in_list(null(), vec![int(1)], false), Ok(Value::Null));
        assert_eq!(in_list(int(3), vec![int(1), int(2)], false), Ok(FALSE));
        assert_eq!(in_list(int(3), vec![int(1), int(2)], true), Ok(TRUE));
        assert_eq!(in_list(int(3), vec![int(1), null()], true), Ok(Value::Null));
        assert_eq!(in_list(int(1), vec![int(1)], true), Ok(FALSE));
        assert_eq!(
            in_list(int(1), vec![int(1), text("a")], false).map_err(|e| e.to_string()),
            Err("cannot apply `in` to integer and text".to_owned())
        );
    }

    #[test]
    fn between_is_two_comparisons_in_three_valued_logic() {
        let between = |operand, low, high, negated| {
            ok(&expr(ExprKind::Between {
                operand: Box::new(operand),
                low: Box::new(low),
                high: Box::new(high),
                negated,
            }))
        };
        assert_eq!(between(int(2), int(1), int(3), false), TRUE);
        assert_eq!(between(int(1), int(1), real(1.0), false), TRUE);
        assert_eq!(between(int(4), int(1), int(3), false), FALSE);
        assert_eq!(between(int(4), int(1), int(3), true), TRUE);
        assert_eq!(between(int(2), null(), int(3), false), Value::Null);
        assert_eq!(between(int(4), null(), int(3), false), FALSE);
        assert_eq!(between(int(0), null(), int(3), true), Value::Null);
        assert_eq!(between(text("b"), text("a"), text("c"), false), TRUE);
    }

    #[test]
    fn matches_searches_unanchored() {
        let m = |operand, pattern: &str| {
            run(&expr(ExprKind::Matches {
                operand: Box::new(operand),
                pattern: pattern.to_owned(),
                pattern_span: Span::default(),
            }))
        };
        let email = r"^[^@\s]+@[^@\s]+\.[^@\s]+$";
        assert_eq!(m(text("ada@example.com"), email), Ok(TRUE));
        assert_eq!(m(text("ada@example"), email), Ok(FALSE));
        assert_eq!(m(text("xxabcxx"), "abc"), Ok(TRUE));
        assert_eq!(m(null(), "abc"), Ok(Value::Null));
        assert_eq!(
            m(int(1), "1").map_err(|e| e.to_string()),
            Err("cannot apply `matches` to integer".to_owned())
        );
        assert!(m(text("a"), "(")
            .unwrap_err()
            .to_string()
            .starts_with("invalid regex `(`"));
    }

    #[test]
    fn regex_cache_stays_bounded() {
        for i in 0..(REGEX_CACHE_CAPACITY * 2 + 1) {
            assert_eq!(matches(&t(&format!("x{i}")), &format!("^x{i}$")), Ok(TRUE));
        }
        REGEX_CACHE.with(|cache| assert!(cache.borrow().len() <= REGEX_CACHE_CAPACITY));
    }

    #[test]
    fn lower_and_upper_map_full_unicode() {
        assert_eq!(call_ok(Function::Lower, &[t("ÀÉÎ")]), t("àéî"));
        assert_eq!(call_ok(Function::Upper, &[t("straße")]), t("STRASSE"));
        assert_eq!(
            call_ok(Function::Lower, &[t("ADA@Example.COM")]),
            t("ada@example.com")
        );
        assert_eq!(call_ok(Function::Upper, &[Value::Null]), Value::Null);
        assert_eq!(
            call(Function::Lower, &[Value::Integer(1)]).map_err(|e| e.to_string()),
            Err("argument 1 of `lower` must be text, got integer".to_owned())
        );
    }

    #[test]
    fn trim_removes_only_spaces() {
        assert_eq!(call_ok(Function::Trim, &[t("  a b  ")]), t("a b"));
        assert_eq!(call_ok(Function::Trim, &[t("\t a \n")]), t("\t a \n"));
        assert_eq!(call_ok(Function::Trim, &[t("   ")]), t(""));
        assert_eq!(call_ok(Function::Trim, &[Value::Null]), Value::Null);
    }

    #[test]
    fn length_counts_characters() {
        assert_eq!(call_ok(Function::Length, &[t("héllo")]), Value::Integer(5));
        assert_eq!(
            call_ok(Function::Length, &[Value::Integer(-120)]),
            Value::Integer(4)
        );
        assert_eq!(
            call_ok(Function::Length, &[Value::Real(1.5)]),
            Value::Integer(3)
        );
        assert_eq!(
            call_ok(Function::Length, &[Value::Blob(vec![1, 2])]),
            Value::Integer(2)
        );
        assert_eq!(call_ok(Function::Length, &[Value::Null]), Value::Null);
    }

    #[test]
    fn substr_follows_the_sql_standard() {
        let s = |start, len: Option<i64>| {
            let mut args = vec![t("héllo"), Value::Integer(start)];
            args.extend(len.map(Value::Integer));
            call(Function::Substr, &args)
        };
        assert_eq!(s(2, Some(3)), Ok(t("éll")));
        assert_eq!(s(2, None), Ok(t("éllo")));
        assert_eq!(s(0, Some(2)), Ok(t("h")));
        assert_eq!(s(-1, Some(3)), Ok(t("h")));
        assert_eq!(s(-5, None), Ok(t("héllo")));
        assert_eq!(s(4, Some(10)), Ok(t("lo")));
        assert_eq!(s(9, Some(1)), Ok(t("")));
        assert_eq!(s(1, Some(0)), Ok(t("")));
        assert_eq!(s(i64::MAX, Some(i64::MAX)), Ok(t("")));
        assert_eq!(s(i64::MIN, Some(i64::MAX)), Ok(t("")));
        assert_eq!(s(1, Some(-1)), Err(EvalError::NegativeLength));
        assert_eq!(
            call(Function::Substr, &[t("abc"), Value::Null]),
            Ok(Value::Null)
        );
        assert_eq!(
            call(Function::Substr, &[t("abc"), Value::Real(1.0)]).map_err(|e| e.to_string()),
            Err("argument 2 of `substr` must be an integer, got real".to_owned())
        );
    }

    #[test]
    fn replace_every_occurrence() {
        assert_eq!(
            call_ok(Function::Replace, &[t("a-b-c"), t("-"), t("+=")]),
            t("a+=b+=c")
        );
        assert_eq!(
            call_ok(Function::Replace, &[t("abc"), t(""), t("x")]),
            t("abc")
        );
        assert_eq!(
            call_ok(Function::Replace, &[t("abc"), Value::Null, t("x")]),
            Value::Null
        );
    }

    #[test]
    fn coalesce_nullif_concat_handle_null_themselves() {
        assert_eq!(
            call_ok(
                Function::Coalesce,
                &[Value::Null, Value::Integer(2), t("x")]
            ),
            Value::Integer(2)
        );
        assert_eq!(call_ok(Function::Coalesce, &[Value::Null]), Value::Null);
        assert_eq!(
            call_ok(Function::Nullif, &[Value::Integer(1), Value::Real(1.0)]),
            Value::Null
        );
        assert_eq!(call_ok(Function::Nullif, &[t("a"), t("b")]), t("a"));
        assert_eq!(call_ok(Function::Nullif, &[t("a"), Value::Null]), t("a"));
        assert_eq!(
            call_ok(Function::Nullif, &[Value::Null, t("a")]),
            Value::Null
        );
        assert_eq!(
            call_ok(
                Function::Concat,
                &[t("a"), Value::Null, Value::Integer(1), Value::Real(0.5)]
            ),
            t("a10.5")
        );
        assert_eq!(call_ok(Function::Concat, &[Value::Null]), t(""));
    }

    #[test]
    fn abs_is_checked() {
        assert_eq!(
            call_ok(Function::Abs, &[Value::Integer(-3)]),
            Value::Integer(3)
        );
        assert_eq!(
            call_ok(Function::Abs, &[Value::Real(-0.5)]),
            Value::Real(0.5)
        );
        assert_eq!(call_ok(Function::Abs, &[Value::Null]), Value::Null);
        assert_eq!(
            call(Function::Abs, &[Value::Integer(i64::MIN)]),
            Err(EvalError::IntegerOverflow("abs"))
        );
        assert!(call(Function::Abs, &[t("1")]).is_err());
    }

    #[test]
    fn round_halves_away_from_zero_on_the_printed_decimal() {
        let round = |x: Value, n: Option<i64>| {
            let mut args = vec![x];
            args.extend(n.map(Value::Integer));
            call(Function::Round, &args)
        };
        let r = Value::Real;
        assert_eq!(round(r(2.5), None), Ok(r(3.0)));
        assert_eq!(round(r(-2.5), None), Ok(r(-3.0)));
        assert_eq!(round(r(0.5), None), Ok(r(1.0)));
        assert_eq!(round(r(0.49), None), Ok(r(0.0)));
        assert_eq!(round(r(2.675), Some(2)), Ok(r(2.68)));
        assert_eq!(round(r(1.005), Some(2)), Ok(r(1.01)));
        assert_eq!(round(r(9.995), Some(2)), Ok(r(10.0)));
        assert_eq!(round(r(1234.5), Some(-2)), Ok(r(1200.0)));
        assert_eq!(round(r(0.004), Some(1)), Ok(r(0.0)));
        assert_eq!(round(r(1.5), Some(500)), Ok(r(1.5)));
        assert_eq!(round(r(1.5), Some(-500)), Ok(r(0.0)));
        let negative_zero = round(r(-0.4), None).unwrap();
        assert!(matches!(negative_zero, Value::Real(z) if z.to_bits() == 0.0_f64.to_bits()));
        assert_eq!(round(r(f64::INFINITY), None), Ok(r(f64::INFINITY)));
        assert_eq!(
            round(r(f64::MAX), Some(-308)),
            Err(EvalError::RealOutOfRange("round"))
        );
        assert_eq!(
            round(Value::Integer(1234), Some(2)),
            Ok(Value::Integer(1234))
        );
        assert_eq!(
            round(Value::Integer(1250), Some(-2)),
            Ok(Value::Integer(1300))
        );
        assert_eq!(
            round(Value::Integer(-1250), Some(-2)),
            Ok(Value::Integer(-1300))
        );
        assert_eq!(
            round(Value::Integer(i64::MAX), Some(-40)),
            Ok(Value::Integer(0))
        );
        assert_eq!(
            round(Value::Integer(i64::MAX), Some(-18)),
            Ok(Value::Integer(9_000_000_000_000_000_000))
        );
        assert_eq!(
            round(Value::Integer(i64::MAX), Some(-19)),
            Err(EvalError::IntegerOverflow("round"))
        );
        assert_eq!(round(Value::Null, Some(1)), Ok(Value::Null));
        assert_eq!(round(r(1.5), Some(i64::MIN)), Ok(r(0.0)));
    }

    #[test]
    fn calls_check_names_and_arity() {
        assert_eq!(ok(&func("LOWER", vec![text("A")])), t("a"));
        assert_eq!(
            err(&func("lenght", vec![text("A")])),
            "unknown function `lenght`"
        );
        assert_eq!(
            err(&func("lower", vec![text("A"), text("B")])),
            "`lower` takes 1 argument(s), got 2"
        );
        assert_eq!(
            err(&func("substr", vec![text("A")])),
            "`substr` takes 2 to 3 argument(s), got 1"
        );
        assert_eq!(
            err(&func("coalesce", vec![])),
            "`coalesce` takes at least 1 argument(s), got 0"
        );
    }
}
