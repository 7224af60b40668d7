//! Operators and functions that fail on every row. Where an operand's type is known before
//! the run (a column's from the live schema, a literal's from the spec) and the interpreter
//! (`exec::eval`) refuses every non-NULL value of it, the spec fails on every row where the
//! operand is not NULL, and no fix to a row but emptying it helps: `mig check` says so, rather
//! than the first batch advising to fix the row. A `set` whose value can only be of a kind
//! its column's store refuses to write is the same, as is a text that is none of an enum
//! column's labels, set into it or compared with it for (in)equality.
//!
//! Only certainty counts. Each expression is given the kinds of non-NULL value it can give
//! without failing: all of them, or more, never fewer; a column its store guarantees nothing
//! about can give any kind. An application is refused only where every kind an operand can
//! have is one the interpreter rejects there, and where the operands the failure waits for
//! can be non-NULL at all (`s + null` is NULL, whatever `s` holds).

use super::catalog::{TableSchema, ValueKinds};
use crate::diagnostic::Diagnostic;
use crate::exec::eval;
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Function, Literal, Span, UnaryOp};

/// What a statement makes of its expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role<'a> {
    /// `set COLUMN`: the value, written into the column.
    Set(&'a str),
    /// `where` or `expect`, named by its keyword: the value's truth.
    Condition(&'static str),
}

/// An error for each application in `expr` that fails on every row where its operands are
/// not NULL; for a condition (`role`) that can only be of a kind with no truth; and for a
/// value that can only be of a kind the column it is set into refuses.
pub fn type_errors(expr: &Expr, role: Role, table: Option<&TableSchema>) -> Vec<Diagnostic> {
    let mut typer = Typer {
        table,
        errors: Vec::new(),
    };
    let whole = typer.infer(expr);
    match role {
        Role::Condition(keyword) => {
            typer.alone(expr.span, Subject::Operator(keyword), TRUTH, &whole);
        }
        Role::Set(column) => typer.written(column, &whole),
    }
    typer.errors
}

/// The kinds of value an operator takes for an operand, and how a message names them.
#[derive(Debug, Clone, Copy)]
struct Need {
    accepts: ValueKinds,
    noun: &'static str,
}

const NUMBERS: Need = Need {
    accepts: ValueKinds::NUMBER,
    noun: "numbers",
};
const A_NUMBER: Need = Need {
    accepts: ValueKinds::NUMBER,
    noun: "a number",
};
const AN_INTEGER: Need = Need {
    accepts: ValueKinds::INTEGER,
    noun: "an integer",
};
const TEXT: Need = Need {
    accepts: ValueKinds::TEXT,
    noun: "text",
};
/// `||` and `concat` take a value's text form, which every kind but a blob has.
const TEXT_FORM: Need = Need {
    accepts: ValueKinds::NUMBER.union(ValueKinds::TEXT),
    noun: "text or numbers",
};
/// `and`, `or`, `not`, `where`, `expect`: 0 is false, other numbers true.
const TRUTH: Need = Need {
    accepts: ValueKinds::NUMBER,
    noun: "a condition or a number",
};

/// The kinds that compare with one another: numbers with numbers, text with text, blobs with
/// blobs.
const COMPARABLE: [ValueKinds; 3] = [ValueKinds::NUMBER, ValueKinds::TEXT, ValueKinds::BLOB];

/// What a message says is refused.
#[derive(Debug, Clone, Copy)]
enum Subject<'s> {
    /// An operator, or a statement (`where`, `set n`).
    Operator(&'s str),
    /// An argument of a function, counted from 1.
    Argument(Function, usize),
}

impl Subject<'_> {
    fn name(self) -> String {
        match self {
            Subject::Operator(op) => format!("`{op}`"),
            Subject::Argument(function, _) => format!("`{}`", function.name()),
        }
    }

    fn needs(self, need: Need) -> String {
        match self {
            Subject::Operator(op) => format!("`{op}` needs {}", need.noun),
            Subject::Argument(function, position) => format!(
                "argument {position} of `{}` must be {}",
                function.name(),
                need.noun
            ),
        }
    }
}

/// An expression with the kinds of non-NULL value it can give without failing.
struct Operand<'e> {
    kinds: ValueKinds,
    expr: &'e Expr,
}

struct Typer<'a> {
    table: Option<&'a TableSchema>,
    errors: Vec<Diagnostic>,
}

impl Typer<'_> {
    /// `expr` with the kinds it can give, reporting every refused application inside it.
    fn infer<'e>(&mut self, expr: &'e Expr) -> Operand<'e> {
        let kinds = if reads_a_column(expr) {
            self.kinds(expr)
        } else {
            // A part that reads no column gives one value for every row; one that fails is
            // `constant_failures`' to report.
            eval::eval(expr, &Vec::new()).map_or(ValueKinds::NONE, |v| ValueKinds::of(&v))
        };
        Operand { kinds, expr }
    }

    fn kinds(&mut self, expr: &Expr) -> ValueKinds {
        match &expr.kind {
            ExprKind::Column(name) => self
                .table
                .and_then(|t| t.values(name))
                .map_or(ValueKinds::ANY, |v| v.kinds),
            ExprKind::Literal(literal) => ValueKinds::of(&eval::literal_value(literal)),
            ExprKind::Unary { op, operand } => {
                let operand = self.infer(operand);
                match op {
                    UnaryOp::Not => {
                        let ok = self.alone(expr.span, Subject::Operator("not"), TRUTH, &operand);
                        integer_if(ok && !operand.kinds.is_empty())
                    }
                    UnaryOp::Neg => {
                        self.alone(expr.span, Subject::Operator("-"), A_NUMBER, &operand);
                        operand.kinds & ValueKinds::NUMBER
                    }
                }
            }
            ExprKind::Binary { op, left, right } => {
                let (left, right) = (self.infer(left), self.infer(right));
                self.binary(expr.span, *op, &left, &right)
            }
            ExprKind::IsNull { operand, .. } => {
                self.infer(operand);
                ValueKinds::INTEGER
            }
            ExprKind::InList { operand, list, .. } => {
                let operand = self.infer(operand);
                let items: Vec<Operand> = list.iter().map(|i| self.infer(i)).collect();
                let subject = Subject::Operator("in");
                for item in &items {
                    self.labels_compared(subject, &operand, item);
                }
                let ok = self.all_comparable(expr.span, subject, &operand, &items);
                integer_if(ok && !operand.kinds.is_empty())
            }
            ExprKind::Between {
                operand, low, high, ..
            } => {
                let operand = self.infer(operand);
                let bounds = [self.infer(low), self.infer(high)];
                let subject = Subject::Operator("between");
                let ok = self.all_comparable(expr.span, subject, &operand, &bounds);
                integer_if(ok && !operand.kinds.is_empty())
            }
            ExprKind::Matches { operand, .. } => {
                let operand = self.infer(operand);
                let ok = self.alone(expr.span, Subject::Operator("matches"), TEXT, &operand);
                integer_if(ok && !operand.kinds.is_empty())
            }
            ExprKind::Call { function, args } => {
                let args: Vec<Operand> = args.iter().map(|a| self.infer(a)).collect();
                match Function::lookup(&function.name) {
                    Some(known) if takes(known, args.len()) => self.call(expr.span, known, &args),
                    // Already an error of its own: its value is no one's concern.
                    _ => ValueKinds::NONE,
                }
            }
        }
    }

    fn binary(&mut self, at: Span, op: BinaryOp, left: &Operand, right: &Operand) -> ValueKinds {
        let subject = Subject::Operator(op.symbol());
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let left_ok = self.alone(at, subject, TRUTH, left);
                let right_ok = self.alone(at, subject, TRUTH, right);
                // `null and 0` is 0: one operand that is not NULL can decide.
                integer_if(
                    left_ok && right_ok && (!left.kinds.is_empty() || !right.kinds.is_empty()),
                )
            }
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => {
                if matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
                    self.labels_compared(subject, left, right);
                    self.labels_compared(subject, right, left);
                }
                integer_if(self.comparable(at, subject, left, right))
            }
            BinaryOp::Concat => {
                let left_ok = self.alone(at, subject, TEXT_FORM, left);
                let right_ok = self.alone(at, subject, TEXT_FORM, right);
                text_if(left_ok && right_ok && !left.kinds.is_empty() && !right.kinds.is_empty())
            }
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                if self.together(at, subject, &[(NUMBERS, left), (NUMBERS, right)]) {
                    arithmetic(left.kinds, right.kinds)
                } else {
                    ValueKinds::NONE
                }
            }
        }
    }

    fn call(&mut self, at: Span, function: Function, args: &[Operand]) -> ValueKinds {
        let arg = |position: usize| Subject::Argument(function, position);
        let needs = |needs: &[Need]| -> Vec<(Subject, Need)> {
            needs
                .iter()
                .enumerate()
                .map(|(i, need)| (arg(i + 1), *need))
                .collect()
        };
        match function {
            Function::Coalesce => args.iter().fold(ValueKinds::NONE, |all, a| all | a.kinds),
            Function::Nullif => {
                if self.comparable(at, Subject::Operator("nullif"), &args[0], &args[1]) {
                    args[0].kinds
                } else {
                    ValueKinds::NONE
                }
            }
            Function::Concat => {
                for (position, operand) in args.iter().enumerate() {
                    self.alone(at, arg(position + 1), TEXT_FORM, operand);
                }
                ValueKinds::TEXT
            }
            Function::Lower | Function::Upper | Function::Trim => {
                text_if(self.arguments(at, &needs(&[TEXT]), args))
            }
            Function::Length => integer_if(self.arguments(at, &[], args)),
            Function::Substr => {
                text_if(self.arguments(at, &needs(&[TEXT, AN_INTEGER, AN_INTEGER]), args))
            }
            Function::Replace => text_if(self.arguments(at, &needs(&[TEXT, TEXT, TEXT]), args)),
            Function::Abs | Function::Round => {
                if self.arguments(at, &needs(&[A_NUMBER, AN_INTEGER]), args) {
                    args[0].kinds & ValueKinds::NUMBER
                } else {
                    ValueKinds::NONE
                }
            }
        }
    }

    /// A function that gives NULL when any argument is NULL, and otherwise fails at its
    /// first argument of a kind it does not take. True when it can give a value.
    fn arguments(&mut self, at: Span, needs: &[(Subject, Need)], args: &[Operand]) -> bool {
        if args.iter().any(|a| a.kinds.is_empty()) {
            return false;
        }
        let refused = needs
            .iter()
            .zip(args)
            .find(|((_, need), arg)| !arg.kinds.meets(need.accepts));
        match refused {
            Some(((subject, need), arg)) => {
                let message = format!("{}; {}", subject.needs(*need), self.describe(arg));
                let help = self.help(&[arg], *subject, " where its arguments are not NULL");
                self.report(at, message, help);
                false
            }
            None => true,
        }
    }

    /// An operator that gives NULL when an operand is NULL, and otherwise fails where any
    /// operand is of a kind it does not take. True when it can give a value.
    fn together(&mut self, at: Span, subject: Subject, operands: &[(Need, &Operand)]) -> bool {
        if operands.iter().any(|(_, o)| o.kinds.is_empty()) {
            return false;
        }
        let refused: Vec<(Need, &Operand)> = operands
            .iter()
            .filter(|(need, o)| !o.kinds.meets(need.accepts))
            .copied()
            .collect();
        let Some((need, _)) = refused.first() else {
            return true;
        };
        let culprits: Vec<&Operand> = refused.iter().map(|(_, o)| *o).collect();
        let described: Vec<String> = culprits.iter().map(|o| self.describe(o)).collect();
        let message = format!("{}; {}", subject.needs(*need), described.join(" and "));
        let help = self.help(&culprits, subject, " where its operands are not NULL");
        self.report(at, message, help);
        false
    }

    /// An operator that fails wherever this one operand is not NULL and of a kind it does
    /// not take, whatever the other operands hold. True when the operand can be of a kind it
    /// takes, or is NULL on every row.
    fn alone(&mut self, at: Span, subject: Subject, need: Need, operand: &Operand) -> bool {
        if operand.kinds.is_empty() || operand.kinds.meets(need.accepts) {
            return true;
        }
        let message = format!("{}; {}", subject.needs(need), self.describe(operand));
        let help = self.help(&[operand], subject, &where_not_null(operand));
        self.report(at, message, help);
        false
    }

    /// Comparisons, `in`, `between` and `nullif` compare two values of one kind, and fail
    /// where neither is NULL and the kinds differ. True when the two can compare.
    fn comparable(&mut self, at: Span, subject: Subject, left: &Operand, right: &Operand) -> bool {
        if left.kinds.is_empty() || right.kinds.is_empty() {
            return false;
        }
        let alike = alike(left, right);
        if !alike {
            let message = format!(
                "{} compares numbers with numbers, text with text and blobs with blobs; {} and {}",
                subject.name(),
                self.describe(left),
                self.describe(right)
            );
            let help = self.help(&[left, right], subject, " where its operands are not NULL");
            self.report(at, message, help);
        }
        alike
    }

    /// `set column = value`, where every value of the kinds the value can be is one the
    /// column's store refuses to write. A column mig cannot write is an error of its own.
    fn written(&mut self, column: &str, value: &Operand) {
        let Some(table) = self.table else {
            return;
        };
        let Some(target) = table.values(column) else {
            return;
        };
        if let Some((text, help)) = self.no_such_label(column, value) {
            self.report(
                value.expr.span,
                format!("`set {column}` writes '{text}', which is not a label of `{column}`"),
                help,
            );
            return;
        }
        if table.unwritable(column).is_some()
            || value.kinds.is_empty()
            || value.kinds.meets(target.accepts)
            || (target.accepts.meets(ValueKinds::INTEGER) && whole_valued(value.expr))
        {
            return;
        }
        let message = format!(
            "`set {column}` needs {}; {}",
            kinds_named(target.accepts),
            self.describe(value)
        );
        let statement = format!("set {column}");
        let mut reasons = vec![format!("`{column}` {}", target.because)];
        reasons.extend(self.reasons(&[value]));
        let help = fails_on(
            reasons,
            Subject::Operator(&statement),
            &where_not_null(value),
        );
        self.report(value.expr.span, message, help);
    }

    /// `=`, `<>` and `in` comparing an enum column with a text literal that is none of its
    /// labels: the column never holds it, so the comparison is settled before a row is read,
    /// and the literal is most likely misspelt. PostgreSQL refuses such a literal too.
    fn labels_compared(&mut self, subject: Subject, column: &Operand, literal: &Operand) {
        let ExprKind::Column(name) = &column.expr.kind else {
            return;
        };
        if let Some((text, help)) = self.no_such_label(name, literal) {
            self.report(
                literal.expr.span,
                format!(
                    "{} compares `{name}` with '{text}', which is not a label of `{name}`",
                    subject.name()
                ),
                help,
            );
        }
    }

    /// The text of `value`, a literal, and the help naming `column`'s labels, where
    /// `column` is an enum's and the text is none of them.
    fn no_such_label<'v>(&self, column: &str, value: &'v Operand) -> Option<(&'v str, String)> {
        let table = self.table?;
        let labels = table.labels.get(column)?;
        let ExprKind::Literal(Literal::Text(text)) = &value.expr.kind else {
            return None;
        };
        if labels.contains(text) {
            return None;
        }
        let shown: Vec<String> = labels.iter().map(|l| format!("'{l}'")).collect();
        let because = &table.values(column)?.because;
        Some((
            text,
            format!(
                "`{column}` {because}: {}; the server refuses any other",
                shown.join(", ")
            ),
        ))
    }

    fn report(&mut self, at: Span, message: String, help: String) {
        self.errors
            .push(Diagnostic::new(at, message).with_help(help));
    }

    /// `in` and `between` compare `operand` with each of `others` and stop at the first
    /// that fails, as a message about it does. True when none is sure to fail.
    fn all_comparable(
        &mut self,
        at: Span,
        subject: Subject,
        operand: &Operand,
        others: &[Operand],
    ) -> bool {
        let fails = |other: &&Operand| {
            !operand.kinds.is_empty() && !other.kinds.is_empty() && !alike(operand, other)
        };
        match others.iter().find(fails) {
            Some(other) => self.comparable(at, subject, operand, other),
            None => true,
        }
    }

    /// An operand and its type, with where the type comes from: "`s` is a text column",
    /// "`'abc'` is text", "`lower(s)` gives text".
    fn describe(&self, operand: &Operand) -> String {
        let expr = operand.expr;
        if let ExprKind::Column(name) = &expr.kind {
            if let Some(values) = self.table.and_then(|t| t.values(name)) {
                return format!("`{name}` is {}", values.described);
            }
        }
        let verb = if reads_a_column(expr) { "gives" } else { "is" };
        format!("`{expr}` {verb} {}", kinds_named(operand.kinds))
    }

    /// Why the columns among `culprits` hold what they hold, and on which rows `subject`
    /// fails.
    fn help(&self, culprits: &[&Operand], subject: Subject, rows: &str) -> String {
        fails_on(self.reasons(culprits), subject, rows)
    }

    /// Why each column among `culprits` holds what it holds.
    fn reasons(&self, culprits: &[&Operand]) -> Vec<String> {
        culprits
            .iter()
            .filter_map(|o| match &o.expr.kind {
                ExprKind::Column(name) => {
                    let values = self.table?.values(name)?;
                    Some(format!("`{name}` {}", values.because))
                }
                _ => None,
            })
            .collect()
    }
}

/// `reasons`, then that `subject` fails on every row, or every row where `rows` says.
fn fails_on(reasons: Vec<String>, subject: Subject, rows: &str) -> String {
    let fails = format!("{} fails on every row{rows}", subject.name());
    if reasons.is_empty() {
        fails
    } else {
        format!("{}, so {fails}", reasons.join(", and "))
    }
}

/// The rows where a failure that waits for `operand` alone happens: all rows, for an
/// operand that reads no column and so has one value, never NULL, where it can fail.
fn where_not_null(operand: &Operand) -> String {
    if reads_a_column(operand.expr) {
        format!(" where `{}` is not NULL", operand.expr)
    } else {
        String::new()
    }
}

/// Whether some value of `left` compares with some value of `right`.
fn alike(left: &Operand, right: &Operand) -> bool {
    COMPARABLE
        .iter()
        .any(|&kind| left.kinds.meets(kind) && right.kinds.meets(kind))
}

fn reads_a_column(expr: &Expr) -> bool {
    let mut found = false;
    expr.walk(&mut |e| found |= matches!(e.kind, ExprKind::Column(_)));
    found
}

fn takes(function: Function, count: usize) -> bool {
    let (min, max) = function.arity();
    count >= min && max.is_none_or(|max| count <= max)
}

fn integer_if(can_give_a_value: bool) -> ValueKinds {
    if can_give_a_value {
        ValueKinds::INTEGER
    } else {
        ValueKinds::NONE
    }
}

fn text_if(can_give_a_value: bool) -> ValueKinds {
    if can_give_a_value {
        ValueKinds::TEXT
    } else {
        ValueKinds::NONE
    }
}

/// What `+ - * / %` give: an integer from two integers, a real where either is a real.
fn arithmetic(left: ValueKinds, right: ValueKinds) -> ValueKinds {
    let (left, right) = (left & ValueKinds::NUMBER, right & ValueKinds::NUMBER);
    let mut kinds = ValueKinds::NONE;
    if left.meets(ValueKinds::INTEGER) && right.meets(ValueKinds::INTEGER) {
        kinds = kinds | ValueKinds::INTEGER;
    }
    let real = (left.meets(ValueKinds::REAL) && !right.is_empty())
        || (right.meets(ValueKinds::REAL) && !left.is_empty());
    if real {
        kinds = kinds | ValueKinds::REAL;
    }
    kinds
}

/// Kinds as a message names them: "an integer", "text", "a number or a blob".
fn kinds_named(kinds: ValueKinds) -> String {
    let numbers = match kinds & ValueKinds::NUMBER {
        ValueKinds::INTEGER => Some("an integer"),
        ValueKinds::REAL => Some("a real"),
        ValueKinds::NUMBER => Some("a number"),
        _ => None,
    };
    let text = kinds.meets(ValueKinds::TEXT).then_some("text");
    let blob = kinds.meets(ValueKinds::BLOB).then_some("a blob");
    let names: Vec<&str> = [numbers, text, blob].into_iter().flatten().collect();
    names.join(" or ")
}

/// Whether `expr` is `round(x)` or `round(x, n)` with a literal `n` of 0 or less: a real it
/// gives has no fraction, and an integer column takes it as that integer (SQLite by its
/// affinity, mig's PostgreSQL store by converting it exactly), so `set cents =
/// round(amount * 100)` may write a `bigint`. One too large for the column still fails.
fn whole_valued(expr: &Expr) -> bool {
    let ExprKind::Call { function, args } = &expr.kind else {
        return false;
    };
    Function::lookup(&function.name) == Some(Function::Round)
        && match args.as_slice() {
            [_] => true,
            [_, places] => match &places.kind {
                ExprKind::Literal(Literal::Integer(n)) => *n == 0,
                ExprKind::Unary {
                    op: UnaryOp::Neg,
                    operand,
                } => matches!(operand.kind, ExprKind::Literal(Literal::Integer(_))),
                _ => false,
            },
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::ColumnValues;
    use crate::syntax::parser::set_expression as expr;

    fn values(kinds: ValueKinds, accepts: ValueKinds, declared: &str) -> ColumnValues {
        let article = if declared.starts_with('i') { "an" } else { "a" };
        ColumnValues {
            kinds,
            accepts,
            described: format!("{article} {declared} column"),
            because: format!("has type {declared}"),
        }
    }

    /// `s`, `t` text (as PostgreSQL's text), `n` integer, `f` real, `y` a blob, `w` text or
    /// blobs (SQLite's TEXT affinity); `u` of no certain type (SQLite's INTEGER affinity).
    fn table() -> TableSchema {
        let text = ValueKinds::TEXT;
        let texts = values(text, text | ValueKinds::NUMBER, "text");
        TableSchema {
            name: "t".into(),
            columns: ["s", "t", "n", "f", "y", "w", "u"]
                .map(String::from)
                .to_vec(),
            values: [
                ("s", texts.clone()),
                ("t", texts),
                (
                    "n",
                    values(ValueKinds::INTEGER, ValueKinds::INTEGER, "integer"),
                ),
                ("f", values(ValueKinds::REAL, ValueKinds::NUMBER, "real")),
                ("y", values(ValueKinds::BLOB, ValueKinds::BLOB, "blob")),
                (
                    "w",
                    values(text | ValueKinds::BLOB, ValueKinds::ANY, "TEXT"),
                ),
            ]
            .into_iter()
            .map(|(c, v)| (c.to_string(), v))
            .collect(),
            ..TableSchema::default()
        }
    }

    fn errors_as(source: &str, role: Role, table: Option<&TableSchema>) -> Vec<String> {
        type_errors(&expr(source), role, table)
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    /// The errors of `set u = SOURCE`: `u` takes any value.
    fn errors(source: &str) -> Vec<String> {
        errors_as(source, Role::Set("u"), Some(&table()))
    }

    #[test]
    fn arithmetic_on_a_text_column_is_refused_naming_the_column_and_its_type() {
        let refused = type_errors(&expr("s + 1"), Role::Set("u"), Some(&table()));
        assert_eq!(refused.len(), 1);
        assert_eq!(
            refused[0].message,
            "`+` needs numbers; `s` is a text column"
        );
        assert_eq!(
            refused[0].help.as_deref(),
            Some("`s` has type text, so `+` fails on every row where its operands are not NULL")
        );
        assert_eq!((refused[0].span.line, refused[0].span.col), (2, 13));
        assert_eq!(
            errors("-w * y"),
            ["`-` needs a number; `w` is a TEXT column"],
            "`*` is not reported again: `-w` never gets as far as a value"
        );
    }

    #[test]
    fn what_some_value_of_its_types_can_compute_is_accepted() {
        for source in [
            "n + 1",
            "f * n - 1.5",
            "s || n",
            "concat(s, n, f, null)",
            "length(y)",
            "lower(s)",
            "s = t",
            "y = y",
            "s in ('a', null, t)",
            "n between 1 and f",
            "nullif(s, 'a')",
            "coalesce(s, 0) + 1",
            "s is null and n > 0",
            "substr(s, n, 2)",
            "replace(w, 'a', s)",
            "round(f, n)",
            "abs(n)",
            "w matches 'a'",
            "not n",
        ] {
            assert_eq!(errors(source), Vec::<String>::new(), "{source}");
        }
    }

    #[test]
    fn a_column_of_no_certain_type_is_never_refused() {
        for source in ["u + 1", "lower(u)", "u = 'a'", "u || 'a'", "not u"] {
            assert_eq!(errors(source), Vec::<String>::new(), "{source}");
        }
        assert_eq!(
            errors_as("s + 1", Role::Set("u"), None),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_operand_that_is_null_on_every_row_never_fails() {
        for source in ["s + null", "lower(n + null)", "null = s", "substr(s, null)"] {
            assert_eq!(errors(source), Vec::<String>::new(), "{source}");
        }
    }

    #[test]
    fn literals_are_typed_without_a_schema() {
        assert_eq!(
            errors_as("'abc' + u", Role::Set("u"), None),
            ["`+` needs numbers; `'abc'` is text"]
        );
        assert_eq!(
            errors_as("lower(u + 1)", Role::Set("u"), None),
            ["argument 1 of `lower` must be text; `u + 1` gives a number"]
        );
        let refused = type_errors(&expr("'x' and u"), Role::Set("u"), None);
        assert_eq!(refused[0].help.as_deref(), Some("`and` fails on every row"));
    }

    #[test]
    fn comparisons_name_both_operands() {
        assert_eq!(
            errors("s = 1"),
            ["`=` compares numbers with numbers, text with text and blobs with blobs; `s` is a text column and `1` is an integer"]
        );
        assert_eq!(
            errors("n in (1, s, 'a')"),
            ["`in` compares numbers with numbers, text with text and blobs with blobs; `n` is an integer column and `s` is a text column"],
            "the first item that cannot compare, as the interpreter stops there"
        );
        assert_eq!(errors("w between y and 'z'").len(), 0, "w may hold a blob");
        assert_eq!(
            errors("nullif(n, s)"),
            ["`nullif` compares numbers with numbers, text with text and blobs with blobs; `n` is an integer column and `s` is a text column"]
        );
    }

    #[test]
    fn functions_name_the_argument_they_refuse() {
        assert_eq!(
            errors("lower(n)"),
            ["argument 1 of `lower` must be text; `n` is an integer column"]
        );
        assert_eq!(
            errors("substr(s, t)"),
            ["argument 2 of `substr` must be an integer; `t` is a text column"]
        );
        assert_eq!(
            errors("round(f, 1.5 + n)"),
            ["argument 2 of `round` must be an integer; `1.5 + n` gives a real"]
        );
        assert_eq!(
            errors("concat(s, y)"),
            ["argument 2 of `concat` must be text or numbers; `y` is a blob column"]
        );
        assert_eq!(
            errors("y || 'a'"),
            ["`||` needs text or numbers; `y` is a blob column"]
        );
        assert_eq!(
            errors("f matches 'a'"),
            ["`matches` needs text; `f` is a real column"]
        );
    }

    #[test]
    fn a_refused_part_is_reported_once_not_again_by_what_contains_it() {
        assert_eq!(
            errors("(s + 1) * 2 || lower(s - 1)"),
            [
                "`+` needs numbers; `s` is a text column",
                "`-` needs numbers; `s` is a text column"
            ]
        );
    }

    #[test]
    fn a_condition_must_have_a_truth() {
        assert_eq!(
            errors_as("s", Role::Condition("where"), Some(&table())),
            ["`where` needs a condition or a number; `s` is a text column"]
        );
        assert_eq!(
            errors_as("lower(s)", Role::Condition("expect"), Some(&table())),
            ["`expect` needs a condition or a number; `lower(s)` gives text"]
        );
        assert_eq!(
            errors_as("n", Role::Condition("where"), Some(&table())),
            Vec::<String>::new()
        );
        assert_eq!(
            errors("s or n > 1"),
            ["`or` needs a condition or a number; `s` is a text column"]
        );
    }

    #[test]
    fn a_set_of_a_kind_its_column_never_takes_is_refused() {
        let table = table();
        let set = |column, source| errors_as(source, Role::Set(column), Some(&table));
        assert_eq!(
            set("n", "s"),
            ["`set n` needs an integer; `s` is a text column"]
        );
        assert_eq!(
            set("y", "s || n"),
            ["`set y` needs a blob; `s || n` gives text"]
        );
        assert_eq!(set("s", "n + f"), Vec::<String>::new());
        assert_eq!(set("f", "n"), Vec::<String>::new());
        assert_eq!(set("n", "coalesce(s, n)"), Vec::<String>::new());
        assert_eq!(set("n", "null"), Vec::<String>::new());
        // A real `round` leaves no fraction in goes in as that integer.
        assert_eq!(set("n", "round(f * 100)"), Vec::<String>::new());
        assert_eq!(set("n", "round(f, 0)"), Vec::<String>::new());
        assert_eq!(set("n", "round(f, -2)"), Vec::<String>::new());
        for kept in ["round(f, 1)", "round(f, n)", "abs(f)", "f"] {
            assert_eq!(set("n", kept).len(), 1, "{kept}");
        }
        let refused = type_errors(&expr("'abc'"), Role::Set("n"), Some(&table));
        assert_eq!(
            refused[0].help.as_deref(),
            Some("`n` has type integer, so `set n` fails on every row")
        );
    }

    #[test]
    fn an_enum_column_set_to_or_compared_with_no_label_of_its_is_refused() {
        let mut table = table();
        table
            .labels
            .insert("s".into(), vec!["paid".into(), "shipped".into()]);
        let condition = |source| errors_as(source, Role::Condition("where"), Some(&table));
        assert_eq!(
            errors_as("'lost'", Role::Set("s"), Some(&table)),
            ["`set s` writes 'lost', which is not a label of `s`"]
        );
        assert_eq!(
            condition("s = 'shiped'"),
            ["`=` compares `s` with 'shiped', which is not a label of `s`"]
        );
        assert_eq!(
            condition("'lost' <> s or s in ('paid', 'payed')"),
            [
                "`<>` compares `s` with 'lost', which is not a label of `s`",
                "`in` compares `s` with 'payed', which is not a label of `s`"
            ]
        );
        // Labels compare as text, so an order against any text is a question with an answer.
        for accepted in [
            "s = 'paid'",
            "s > 'q'",
            "s between 'a' and 'z'",
            "t = 'lost'",
        ] {
            assert_eq!(condition(accepted), Vec::<String>::new(), "{accepted}");
        }
        let refused = type_errors(&expr("s = 'x'"), Role::Condition("where"), Some(&table));
        assert_eq!(
            refused[0].help.as_deref(),
            Some("`s` has type text: 'paid', 'shipped'; the server refuses any other")
        );
        assert_eq!((refused[0].span.line, refused[0].span.col), (2, 17));
    }
}
