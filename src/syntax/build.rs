//! Builders of syntax trees for unit tests, so tests can state expressions without parsing.

use super::ast::{BinaryOp, Expr, ExprKind, Ident, Literal, Span, UnaryOp};

pub fn expr(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

pub fn col(name: &str) -> Expr {
    expr(ExprKind::Column(name.to_owned()))
}

pub fn lit(literal: Literal) -> Expr {
    expr(ExprKind::Literal(literal))
}

pub fn int(i: i64) -> Expr {
    lit(Literal::Integer(i))
}

pub fn real(r: f64) -> Expr {
    lit(Literal::Real(r))
}

pub fn text(s: &str) -> Expr {
    lit(Literal::Text(s.to_owned()))
}

pub fn null() -> Expr {
    lit(Literal::Null)
}

pub fn bin(op: BinaryOp, left: Expr, right: Expr) -> Expr {
    expr(ExprKind::Binary {
        op,
        left: Box::new(left),
        right: Box::new(right),
    })
}

pub fn un(op: UnaryOp, operand: Expr) -> Expr {
    expr(ExprKind::Unary {
        op,
        operand: Box::new(operand),
    })
}

pub fn func(name: &str, args: Vec<Expr>) -> Expr {
    expr(ExprKind::Call {
        function: Ident {
            name: name.to_owned(),
            span: Span::default(),
        },
        args,
    })
}
