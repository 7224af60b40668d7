//! Prints a syntax tree back as `.mig` text. `mig plan` shows expressions this way, and the
//! spec hash is taken over this form, so it is canonical: fully parenthesised where an
//! operator nests inside another, keywords lower-case, text literals with `''` escapes.

use super::ast::{Expr, ExprKind, Literal, UnaryOp};
use std::fmt;

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Integer(i) => write!(f, "{i}"),
            Literal::Real(r) => f.write_str(&real(*r)),
            Literal::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// `r` as the grammar reads a real back: Rust spells 1e308 and 1e-7 without a point, which
/// the grammar requires, so one goes before the exponent.
fn real(r: f64) -> String {
    let spelled = format!("{r:?}");
    match spelled.split_once('e') {
        Some((mantissa, exponent)) if !mantissa.contains('.') => {
            format!("{mantissa}.0e{exponent}")
        }
        _ => spelled,
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Column(name) => f.write_str(name),
            ExprKind::Literal(lit) => write!(f, "{lit}"),
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Not => write!(f, "not {}", Nested(operand)),
                UnaryOp::Neg => write!(f, "-{}", Nested(operand)),
            },
            ExprKind::Binary { op, left, right } => {
                write!(f, "{} {} {}", Nested(left), op.symbol(), Nested(right))
            }
            ExprKind::IsNull { operand, negated } => {
                let not = if *negated { "not " } else { "" };
                write!(f, "{} is {not}null", Nested(operand))
            }
            ExprKind::InList {
                operand,
                list,
                negated,
            } => {
                let not = if *negated { "not " } else { "" };
                write!(f, "{} {not}in (", Nested(operand))?;
                write_list(f, list)?;
                f.write_str(")")
            }
            ExprKind::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let not = if *negated { "not " } else { "" };
                write!(
                    f,
                    "{} {not}between {} and {}",
                    Nested(operand),
                    Nested(low),
                    Nested(high)
                )
            }
            ExprKind::Matches {
                operand, pattern, ..
            } => write!(
                f,
                "{} matches {}",
                Nested(operand),
                Literal::Text(pattern.clone())
            ),
            ExprKind::Call { function, args } => {
                write!(f, "{}(", function.name.to_ascii_lowercase())?;
                write_list(f, args)?;
                f.write_str(")")
            }
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// An operand inside an operator: parenthesised unless it is atomic, so the printed text
/// never depends on precedence rules. A negative literal is not atomic: after a unary minus
/// its sign would start a `--` comment.
struct Nested<'a>(&'a Expr);

impl fmt::Display for Nested<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.kind {
            ExprKind::Literal(Literal::Integer(i)) if *i < 0 => write!(f, "({})", self.0),
            ExprKind::Column(_) | ExprKind::Literal(_) | ExprKind::Call { .. } => {
                write!(f, "{}", self.0)
            }
            _ => write!(f, "({})", self.0),
        }
    }
}
