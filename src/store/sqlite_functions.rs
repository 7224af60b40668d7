//! Temporary stand-in, replaced by the real interpreter-backed functions on merge.
use crate::syntax::ast::Expr;
use crate::value::Value;

pub fn register(_conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    Ok(())
}

pub fn render(
    _expr: &Expr,
    _quote_column: &dyn Fn(&str) -> String,
    _params: &mut Vec<Value>,
) -> String {
    "NULL".into()
}

pub fn render_predicate(
    expr: &Expr,
    quote_column: &dyn Fn(&str) -> String,
    params: &mut Vec<Value>,
) -> String {
    render(expr, quote_column, params)
}
