//! The syntax tree of a `.mig` file, exactly as written: no name is resolved here.
//! Every node carries the span it came from, so later stages can point at it.

use std::time::Duration;

/// A region of one source file. `line` and `col` are 1-based and name `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SpecFile {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Block(Block),
    /// `table users key id`: walk `users` by `id` instead of its primary key.
    TableKey {
        table: Ident,
        key: Ident,
        span: Span,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Backfill,
    Migrate,
    Validate,
}

impl BlockKind {
    pub fn keyword(self) -> &'static str {
        match self {
            BlockKind::Backfill => "backfill",
            BlockKind::Migrate => "migrate",
            BlockKind::Validate => "validate",
        }
    }
}

/// `backfill COLUMN on TABLE { ... }`, `migrate NAME on TABLE { ... }`,
/// `validate NAME on TABLE { ... }`. For a backfill, `name` is the column.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub kind: BlockKind,
    pub name: Ident,
    pub table: Ident,
    pub statements: Vec<Statement>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub kind: StatementKind,
    pub span: Span,
}

/// Every statement the grammar knows. Which block may hold which is checked by `compile`.
#[derive(Debug, Clone, PartialEq)]
pub enum StatementKind {
    Set {
        column: Ident,
        value: Expr,
    },
    Where(Expr),
    Batch(u64),
    Pause(Duration),
    /// How long a batch may take while another session is busy on the database.
    Yield(Duration),
    LockTimeout(Duration),
    Retries(u64),
    Check(Vec<Ident>),
    NotNull(Vec<Ident>),
    Unique(Vec<Ident>),
    Expect(Expr),
}

impl StatementKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            StatementKind::Set { .. } => "set",
            StatementKind::Where(_) => "where",
            StatementKind::Batch(_) => "batch",
            StatementKind::Pause(_) => "pause",
            StatementKind::Yield(_) => "yield",
            StatementKind::LockTimeout(_) => "lock_timeout",
            StatementKind::Retries(_) => "retries",
            StatementKind::Check(_) => "check",
            StatementKind::NotNull(_) => "not_null",
            StatementKind::Unique(_) => "unique",
            StatementKind::Expect(_) => "expect",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Column(String),
    Literal(Literal),
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `x is null`, `x is not null`
    IsNull {
        operand: Box<Expr>,
        negated: bool,
    },
    /// `x in (a, b)`, `x not in (a, b)`
    InList {
        operand: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `x between a and b`, `x not between a and b`
    Between {
        operand: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    /// `x matches 'regex'`: the pattern is a text literal, compiled once by `compile`.
    Matches {
        operand: Box<Expr>,
        pattern: String,
        pattern_span: Span,
    },
    Call {
        function: Ident,
        args: Vec<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Integer(i64),
    Real(f64),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 14] = [
        BinaryOp::Or,
        BinaryOp::And,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::Concat,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Mod,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "=",
            BinaryOp::Ne => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Concat => "||",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
        }
    }
}

/// The functions an expression may call. Names are matched case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Lower,
    Upper,
    Trim,
    Length,
    Substr,
    Replace,
    Coalesce,
    Nullif,
    Abs,
    Round,
    Concat,
}

impl Function {
    pub const ALL: [Function; 11] = [
        Function::Lower,
        Function::Upper,
        Function::Trim,
        Function::Length,
        Function::Substr,
        Function::Replace,
        Function::Coalesce,
        Function::Nullif,
        Function::Abs,
        Function::Round,
        Function::Concat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Lower => "lower",
            Function::Upper => "upper",
            Function::Trim => "trim",
            Function::Length => "length",
            Function::Substr => "substr",
            Function::Replace => "replace",
            Function::Coalesce => "coalesce",
            Function::Nullif => "nullif",
            Function::Abs => "abs",
            Function::Round => "round",
            Function::Concat => "concat",
        }
    }

    pub fn lookup(name: &str) -> Option<Function> {
        Function::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The smallest and largest number of arguments; `None` as largest means any number.
    pub fn arity(self) -> (usize, Option<usize>) {
        match self {
            Function::Lower | Function::Upper | Function::Trim | Function::Length => (1, Some(1)),
            Function::Abs => (1, Some(1)),
            Function::Round => (1, Some(2)),
            Function::Substr => (2, Some(3)),
            Function::Replace => (3, Some(3)),
            Function::Nullif => (2, Some(2)),
            Function::Coalesce | Function::Concat => (1, None),
        }
    }
}

impl Expr {
    /// Calls `visit` on this expression and every expression inside it, parents first.
    pub fn walk<'e>(&'e self, visit: &mut impl FnMut(&'e Expr)) {
        visit(self);
        for child in self.children() {
            child.walk(visit);
        }
    }

    /// The operands, in source order.
    pub fn children(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Column(_) | ExprKind::Literal(_) => vec![],
            ExprKind::Unary { operand, .. }
            | ExprKind::IsNull { operand, .. }
            | ExprKind::Matches { operand, .. } => vec![operand],
            ExprKind::Binary { left, right, .. } => vec![left, right],
            ExprKind::InList { operand, list, .. } => {
                std::iter::once(&**operand).chain(list).collect()
            }
            ExprKind::Between {
                operand, low, high, ..
            } => vec![operand, low, high],
            ExprKind::Call { args, .. } => args.iter().collect(),
        }
    }

    /// Whether the expression reads the column `name` anywhere.
    pub fn reads(&self, name: &str) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(&e.kind, ExprKind::Column(c) if c == name));
        found
    }
}
