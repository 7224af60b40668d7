//! Whether running `set column = value` twice leaves what running it once left.
//!
//! The verdict is conservative: `Proven` only for shapes whose second run provably writes
//! what the first wrote, `Not` for shapes that grow the value on every run, and `Unknown`
//! (with the reason) for the rest.

use super::catalog::Idempotence;
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Function, Literal};

/// The verdict for `set column = value` in a block that also sets `siblings`.
pub fn idempotence(column: &str, value: &Expr, siblings: &[&str]) -> Idempotence {
    // A value computed from a column this same block rewrites sees a different input on
    // the second run (`set a = b` next to `set b = a` swaps them back and forth).
    if let Some(sibling) = siblings.iter().find(|s| **s != column && value.reads(s)) {
        return Idempotence::Unknown(format!("reads `{sibling}`, which this block also sets"));
    }
    if !value.reads(column) {
        return Idempotence::Proven(format!("does not read `{column}`"));
    }
    if projection_of(column, value) {
        return Idempotence::Proven(format!(
            "normalises `{column}`: applying it again changes nothing"
        ));
    }
    if let Some(reason) = fills_nulls(column, value) {
        return Idempotence::Proven(reason);
    }
    if let Some(verdict) = arithmetic(column, value) {
        return verdict;
    }
    if let Some(reason) = grows_text(column, value) {
        return Idempotence::Not(reason);
    }
    Idempotence::Unknown(format!(
        "reads `{column}` in a shape mig cannot prove either way"
    ))
}

/// `column`, or a function from `lower upper trim abs round` applied to such a value: each
/// is a projection (f(f(x)) = f(x)), and nested they stay one where they commute: trim, abs
/// and round with each other and with a case mapping. `lower` and `upper` do not commute
/// (`lower(upper('ẞ'))` is 'ß', and run again 'ss'), so a value mixing them is not proven.
fn projection_of(column: &str, value: &Expr) -> bool {
    let mut cases = Vec::new();
    normalises(column, value, &mut cases) && cases.windows(2).all(|w| w[0] == w[1])
}

/// Whether `value` is `column` under projections only, noting its case mappings in `cases`.
fn normalises(column: &str, value: &Expr, cases: &mut Vec<Function>) -> bool {
    match &value.kind {
        ExprKind::Column(c) => c == column,
        ExprKind::Call { function, args } if args.len() == 1 => {
            match Function::lookup(&function.name) {
                Some(case @ (Function::Lower | Function::Upper)) => cases.push(case),
                Some(Function::Trim | Function::Abs | Function::Round) => {}
                _ => return false,
            }
            normalises(column, &args[0], cases)
        }
        _ => false,
    }
}

/// `coalesce(column, fallback...)` with fallbacks that do not read `column`: a second run
/// finds the column non-null (or the same fallback) and keeps it.
fn fills_nulls(column: &str, value: &Expr) -> Option<String> {
    let ExprKind::Call { function, args } = &value.kind else {
        return None;
    };
    let first_is_column =
        matches!(args.first(), Some(Expr { kind: ExprKind::Column(c), .. }) if c == column);
    let fallbacks_independent = args.iter().skip(1).all(|a| !a.reads(column));
    (Function::lookup(&function.name) == Some(Function::Coalesce)
        && first_is_column
        && fallbacks_independent)
        .then(|| format!("only fills `{column}` where it is null"))
}

/// `column + k`, `k + column`, `column - k`, `column * k` with a numeric literal `k`.
fn arithmetic(column: &str, value: &Expr) -> Option<Idempotence> {
    let ExprKind::Binary { op, left, right } = &value.kind else {
        return None;
    };
    let is_column = |e: &Expr| matches!(&e.kind, ExprKind::Column(c) if c == column);
    let constant = match (op, is_column(left), is_column(right)) {
        (BinaryOp::Add | BinaryOp::Mul, true, false) => number(right),
        (BinaryOp::Add | BinaryOp::Mul, false, true) => number(left),
        (BinaryOp::Sub, true, false) => number(right),
        _ => None,
    }?;
    let identity = if *op == BinaryOp::Mul { 1.0 } else { 0.0 };
    let verb = match op {
        BinaryOp::Add => "adds to",
        BinaryOp::Sub => "subtracts from",
        _ => "multiplies",
    };
    Some(if constant == identity {
        Idempotence::Proven(format!("leaves `{column}` as it is"))
    } else if *op == BinaryOp::Mul && constant == 0.0 {
        Idempotence::Proven(format!("sets `{column}` to zero or null"))
    } else {
        Idempotence::Not(format!("{verb} `{column}` on every run"))
    })
}

fn number(e: &Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Literal(Literal::Integer(i)) => Some(*i as f64),
        ExprKind::Literal(Literal::Real(r)) => Some(*r),
        _ => None,
    }
}

/// `column || x`, `x || column`, `concat(..., column, ...)`: text joined to the column's own
/// value grows on every run, unless every other part is the empty text.
fn grows_text(column: &str, value: &Expr) -> Option<String> {
    let mut parts = Vec::new();
    match &value.kind {
        ExprKind::Binary {
            op: BinaryOp::Concat,
            ..
        } => concat_parts(value, &mut parts),
        ExprKind::Call { function, args }
            if Function::lookup(&function.name) == Some(Function::Concat) =>
        {
            parts.extend(args)
        }
        _ => return None,
    }
    let is_column = |e: &Expr| matches!(&e.kind, ExprKind::Column(c) if c == column);
    let is_empty =
        |e: &Expr| matches!(&e.kind, ExprKind::Literal(Literal::Text(t)) if t.is_empty());
    let others: Vec<_> = parts.iter().filter(|p| !is_column(p)).collect();
    let column_once = parts.len() - others.len() == 1;
    (column_once && others.iter().all(|p| !p.reads(column)) && !others.iter().all(|p| is_empty(p)))
        .then(|| format!("joins text to `{column}` on every run"))
}

fn concat_parts<'e>(e: &'e Expr, parts: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::Concat,
            left,
            right,
        } => {
            concat_parts(left, parts);
            concat_parts(right, parts);
        }
        _ => parts.push(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::{Item, StatementKind};

    fn verdict_with(siblings: &[&str], column: &str, value: &str) -> Idempotence {
        let source = format!("migrate m on t {{ set {column} = {value} }}");
        let file = crate::syntax::parse(&source).expect("parses");
        let Some(Item::Block(block)) = file.items.into_iter().next() else {
            panic!("a block");
        };
        let StatementKind::Set { value, .. } = &block.statements[0].kind else {
            panic!("a set");
        };
        idempotence(column, value, siblings)
    }

    fn verdict(column: &str, value: &str) -> Idempotence {
        verdict_with(&[column], column, value)
    }

    #[test]
    fn a_value_not_reading_its_column_is_proven() {
        assert_eq!(
            verdict("full_name", "first_name || ' ' || last_name"),
            Idempotence::Proven("does not read `full_name`".into())
        );
        assert!(matches!(verdict("n", "42"), Idempotence::Proven(_)));
    }

    #[test]
    fn normalising_functions_and_their_nestings_are_proven() {
        for value in [
            "lower(e)",
            "upper(e)",
            "trim(e)",
            "lower(trim(e))",
            "upper(trim(upper(e)))",
            "abs(e)",
        ] {
            assert!(
                matches!(verdict("e", value), Idempotence::Proven(_)),
                "{value}"
            );
        }
    }

    /// `lower(upper(e))` on 'ẞ' writes 'ß', and run again 'ss': case mappings of both kinds
    /// in one value are not proven, whichever way round.
    #[test]
    fn lower_and_upper_together_are_not_proven() {
        for value in ["lower(upper(e))", "upper(trim(lower(e)))"] {
            assert!(
                matches!(verdict("e", value), Idempotence::Unknown(_)),
                "{value}"
            );
        }
        let once = "ẞ".to_uppercase().to_lowercase();
        assert_ne!(once.to_uppercase().to_lowercase(), once);
    }

    #[test]
    fn coalesce_with_an_independent_fallback_is_proven() {
        assert_eq!(
            verdict("c", "coalesce(c, 'none')"),
            Idempotence::Proven("only fills `c` where it is null".into())
        );
        assert!(matches!(
            verdict("c", "coalesce(c, c || 'x')"),
            Idempotence::Unknown(_)
        ));
    }

    #[test]
    fn counters_are_not_idempotent() {
        assert_eq!(
            verdict("n", "n + 1"),
            Idempotence::Not("adds to `n` on every run".into())
        );
        assert!(matches!(verdict("n", "1 + n"), Idempotence::Not(_)));
        assert!(matches!(verdict("n", "n - 2"), Idempotence::Not(_)));
        assert!(matches!(verdict("n", "n * 1.5"), Idempotence::Not(_)));
        assert!(matches!(verdict("n", "n * 1"), Idempotence::Proven(_)));
        assert!(matches!(verdict("n", "n + 0"), Idempotence::Proven(_)));
    }

    #[test]
    fn appending_text_is_not_idempotent() {
        assert!(matches!(verdict("s", "s || '!'"), Idempotence::Not(_)));
        assert!(matches!(verdict("s", "'>' || s"), Idempotence::Not(_)));
        assert!(matches!(
            verdict("s", "'<' || s || '>'"),
            Idempotence::Not(_)
        ));
        assert!(matches!(verdict("s", "concat(s, x)"), Idempotence::Not(_)));
        assert!(matches!(verdict("s", "s || ''"), Idempotence::Unknown(_)));
    }

    #[test]
    fn other_shapes_reading_the_column_are_unknown_with_a_reason() {
        let v = verdict("s", "replace(s, 'a', 'b')");
        assert_eq!(v.verdict(), "idempotence unknown");
        assert!(v.reason().contains("`s`"));
        assert!(matches!(verdict("n", "n + x"), Idempotence::Unknown(_)));
        assert!(matches!(
            verdict("s", "lower(s || 'x')"),
            Idempotence::Unknown(_)
        ));
    }

    #[test]
    fn reading_a_sibling_set_is_unknown() {
        assert_eq!(
            verdict_with(&["a", "b"], "a", "b"),
            Idempotence::Unknown("reads `b`, which this block also sets".into())
        );
    }
}
