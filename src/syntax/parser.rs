//! `.mig` text to a `SpecFile`, one hand-written function per grammar rule.
//!
//! A file is split into top-level items (a line starting with `backfill`, `migrate`,
//! `validate` or `table` at column 1 starts one) and each item is parsed on its own, so a
//! syntax error in one block does not hide the errors in the others.

use super::ast::{
    BinaryOp, Block, BlockKind, Expr, ExprKind, Ident, Item, Literal, Span, SpecFile, Statement,
    StatementKind, UnaryOp,
};
use crate::diagnostic::Diagnostic;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::num::NonZeroUsize;
use std::sync::LazyLock;
use std::time::Duration;

#[derive(pest_derive::Parser)]
#[grammar = "grammar/mig.pest"]
struct MigParser;

/// Deepest expression accepted. Checked before pest sees the text (parentheses and prefix
/// operators make pest recurse) and again while folding operators (our own passes recurse
/// over the tree), so hostile input gets an error instead of a stack overflow. Real specs
/// nest a few levels; 64 still fits a 2 MiB thread stack in an unoptimised build.
pub const MAX_NESTING: usize = 64;

/// Rule calls pest may make for one item; ordinary items use a tiny fraction of it.
const CALL_LIMIT: usize = 5_000_000;

const ITEM_KEYWORDS: [&str; 4] = ["backfill", "migrate", "validate", "table"];

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::or_op, Assoc::Left))
        .op(Op::infix(Rule::and_op, Assoc::Left))
        .op(Op::prefix(Rule::not_op))
        .op(Op::infix(Rule::concat_op, Assoc::Left))
        .op(Op::infix(Rule::add_op, Assoc::Left))
        .op(Op::infix(Rule::mul_op, Assoc::Left))
        .op(Op::prefix(Rule::neg_op))
});

/// Parses a whole file, collecting the syntax errors of every item.
pub fn parse(source: &str) -> Result<SpecFile, Vec<Diagnostic>> {
    let (file, errors) = parse_recovering(source);
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

/// Parses a whole file, keeping the items that parsed alongside the syntax errors of the
/// others, so later checks can still see the declarations of a file with a typo in it.
pub fn parse_recovering(source: &str) -> (SpecFile, Vec<Diagnostic>) {
    pest::set_call_limit(NonZeroUsize::new(CALL_LIMIT));
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for region in split_items(source) {
        match region.parse(source) {
            Ok(mut parsed) => items.append(&mut parsed),
            Err(d) => errors.push(d),
        }
    }
    (SpecFile { items }, errors)
}

/// One top-level item's text: `source[start..end]`, whose first line is `first_line`.
#[derive(Debug, Clone, Copy)]
struct Region {
    start: usize,
    end: usize,
    first_line: usize,
}

fn split_items(source: &str) -> Vec<Region> {
    let mut starts = vec![(0, 1)];
    let mut offset = 0;
    for (index, line) in source.split_inclusive('\n').enumerate() {
        if offset > 0 && starts_item(line) {
            starts.push((offset, index + 1));
        }
        offset += line.len();
    }
    starts
        .iter()
        .enumerate()
        .map(|(i, &(start, first_line))| Region {
            start,
            end: starts.get(i + 1).map_or(source.len(), |&(next, _)| next),
            first_line,
        })
        .collect()
}

fn starts_item(line: &str) -> bool {
    let word: String = line.chars().take_while(|c| is_ident_char(*c)).collect();
    ITEM_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&word))
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Region {
    fn parse(self, source: &str) -> Result<Vec<Item>, Diagnostic> {
        let text = &source[self.start..self.end];
        if let Some(offset) = too_deep(text) {
            return Err(Diagnostic::new(
                span_at(source, self.start + offset, 1),
                format!("expression nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        let mut pairs =
            MigParser::parse(Rule::file, text).map_err(|e| syntax_error(source, self, text, &e))?;
        let file = pairs.next().expect("the file rule matched");
        file.into_inner()
            .filter(|p| p.as_rule() != Rule::EOI)
            .map(|p| self.item(p))
            .collect()
    }

    fn span(&self, pair: &Pair<Rule>) -> Span {
        let (line, col) = pair.line_col();
        let span = pair.as_span();
        Span {
            start: self.start + span.start(),
            end: self.start + span.end(),
            line: self.first_line + line - 1,
            col,
        }
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident {
            span: self.span(&pair),
            name: pair.as_str().to_string(),
        }
    }

    fn item(&self, pair: Pair<Rule>) -> Result<Item, Diagnostic> {
        match pair.as_rule() {
            Rule::block => self.block(pair).map(Item::Block),
            Rule::table_key => Ok(self.table_key(pair)),
            rule => unreachable!("file holds only items, got {rule:?}"),
        }
    }

    fn table_key(&self, pair: Pair<Rule>) -> Item {
        let span = self.span(&pair);
        let mut names = pair.into_inner().filter(|p| p.as_rule() == Rule::ident);
        let table = self.ident(names.next().expect("table_key names a table"));
        let key = self.ident(names.next().expect("table_key names a key"));
        Item::TableKey { table, key, span }
    }

    fn block(&self, pair: Pair<Rule>) -> Result<Block, Diagnostic> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let kind = match inner.next().expect("block starts with its kind").as_rule() {
            Rule::kw_backfill => BlockKind::Backfill,
            Rule::kw_migrate => BlockKind::Migrate,
            Rule::kw_validate => BlockKind::Validate,
            rule => unreachable!("not a block kind: {rule:?}"),
        };
        let name = self.ident(inner.next().expect("block has a name"));
        let table = self.ident(inner.nth(1).expect("block has a table after `on`"));
        let statements = inner
            .filter(|p| !matches!(p.as_rule(), Rule::lbrace | Rule::rbrace))
            .map(|p| self.statement(p))
            .collect::<Result<_, _>>()?;
        Ok(Block {
            kind,
            name,
            table,
            statements,
            span,
        })
    }

    fn statement(&self, pair: Pair<Rule>) -> Result<Statement, Diagnostic> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        // Every statement starts with its keyword; what follows is the statement's body.
        let mut body = pair.into_inner().skip(1);
        let mut next = || {
            body.next()
                .expect("statement body as the grammar shapes it")
        };
        let kind = match rule {
            Rule::set_stmt => {
                let column = self.ident(next());
                next();
                StatementKind::Set {
                    column,
                    value: self.expr(next())?.0,
                }
            }
            Rule::where_stmt => StatementKind::Where(self.expr(next())?.0),
            Rule::expect_stmt => StatementKind::Expect(self.expr(next())?.0),
            Rule::batch_stmt => StatementKind::Batch(self.count(next())?),
            Rule::retries_stmt => StatementKind::Retries(self.count(next())?),
            Rule::pause_stmt => StatementKind::Pause(self.duration(next())?),
            Rule::yield_stmt => StatementKind::Yield(self.duration(next())?),
            Rule::lock_timeout_stmt => StatementKind::LockTimeout(self.duration(next())?),
            Rule::check_stmt => StatementKind::Check(self.name_list(next())),
            Rule::not_null_stmt => StatementKind::NotNull(self.name_list(next())),
            Rule::unique_stmt => StatementKind::Unique(self.name_list(next())),
            rule => unreachable!("not a statement: {rule:?}"),
        };
        Ok(Statement { kind, span })
    }

    fn count(&self, pair: Pair<Rule>) -> Result<u64, Diagnostic> {
        pair.as_str().parse().map_err(|_| {
            Diagnostic::new(
                self.span(&pair),
                format!("number `{}` is too large", pair.as_str()),
            )
        })
    }

    fn duration(&self, pair: Pair<Rule>) -> Result<Duration, Diagnostic> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let amount = inner.next().expect("duration has an amount");
        let unit = inner.next().expect("duration has a unit");
        let too_long =
            || Diagnostic::new(span, format!("duration `{}` is too long", amount.as_str()));
        let amount: u64 = amount.as_str().parse().map_err(|_| too_long())?;
        let millis_per_unit = match unit.as_str().to_ascii_lowercase().as_str() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            unit => unreachable!("not a duration unit: {unit}"),
        };
        amount
            .checked_mul(millis_per_unit)
            .map(Duration::from_millis)
            .ok_or_else(too_long)
    }

    fn name_list(&self, pair: Pair<Rule>) -> Vec<Ident> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::ident)
            .map(|p| self.ident(p))
            .collect()
    }

    /// An `expr` (or, and, not) with the depth of the tree it builds.
    fn expr(&self, pair: Pair<Rule>) -> Result<(Expr, usize), Diagnostic> {
        self.fold(pair.into_inner(), |p| self.predicate(p))
    }

    /// An `operand` (`||`, `+ -`, `* / %`, unary minus).
    fn operand(&self, pair: Pair<Rule>) -> Result<(Expr, usize), Diagnostic> {
        let (pairs, minus_signs) = take_minus_of_big_integers(pair.into_inner());
        self.fold(pairs.into_iter(), |p| {
            match minus_signs
                .iter()
                .find(|(at, _)| *at == p.as_span().start())
            {
                Some((_, minus)) => self.negative_integer(minus, &p),
                None => self.primary(p),
            }
        })
    }

    /// A minus sign and digits that do not fit in 64 bits without it, read as one literal,
    /// as PostgreSQL does, so `-9223372036854775808` is `i64::MIN`.
    fn negative_integer(
        &self,
        minus: &Pair<Rule>,
        digits: &Pair<Rule>,
    ) -> Result<(Expr, usize), Diagnostic> {
        let span = Span {
            end: self.span(digits).end,
            ..self.span(minus)
        };
        let written = format!("-{}", digits.as_str());
        let value = written
            .parse()
            .map_err(|_| integer_too_big(span, &written))?;
        let kind = ExprKind::Literal(Literal::Integer(value));
        Ok((Expr { kind, span }, 1))
    }

    fn fold<'i>(
        &self,
        pairs: impl Iterator<Item = Pair<'i, Rule>>,
        primary: impl FnMut(Pair<Rule>) -> Result<(Expr, usize), Diagnostic>,
    ) -> Result<(Expr, usize), Diagnostic> {
        PRATT
            .map_primary(primary)
            .map_prefix(|op, operand| {
                let (operand, depth) = operand?;
                let op_span = self.span(&op);
                let op = match op.as_rule() {
                    Rule::not_op => UnaryOp::Not,
                    Rule::neg_op => UnaryOp::Neg,
                    rule => unreachable!("not a prefix operator: {rule:?}"),
                };
                let span = Span {
                    end: operand.span.end,
                    ..op_span
                };
                let kind = ExprKind::Unary {
                    op,
                    operand: Box::new(operand),
                };
                Ok((Expr { kind, span }, deeper(depth, span)?))
            })
            .map_infix(|left, op, right| {
                let (left, left_depth) = left?;
                let (right, right_depth) = right?;
                let op = binary_op(op.as_str());
                let span = Span {
                    end: right.span.end,
                    ..left.span
                };
                let kind = ExprKind::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                };
                let depth = deeper(left_depth.max(right_depth), span)?;
                Ok((Expr { kind, span }, depth))
            })
            .parse(pairs)
    }

    /// An operand, optionally followed by a comparison, `is null`, `in`, `between` or
    /// `matches`. These do not chain: `a = b = c` is a syntax error.
    fn predicate(&self, pair: Pair<Rule>) -> Result<(Expr, usize), Diagnostic> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let (operand, depth) = self.operand(inner.next().expect("predicate has an operand"))?;
        let Some(suffix) = inner.next() else {
            return Ok((operand, depth));
        };
        let suffix_rule = suffix.as_rule();
        let mut parts = suffix.into_inner().peekable();
        let negated = parts.next_if(|p| p.as_rule() == Rule::kw_not).is_some();
        let operand = Box::new(operand);
        let (kind, inner_depth) = match suffix_rule {
            Rule::compare => {
                let op = binary_op(parts.next().expect("comparison operator").as_str());
                let (right, right_depth) = self.operand(parts.next().expect("right side"))?;
                let kind = ExprKind::Binary {
                    op,
                    left: operand,
                    right: Box::new(right),
                };
                (kind, right_depth)
            }
            Rule::is_null => {
                let negated = parts.any(|p| p.as_rule() == Rule::kw_not);
                (ExprKind::IsNull { operand, negated }, 0)
            }
            Rule::in_list => {
                let mut list = Vec::new();
                let mut list_depth = 0;
                for item in parts.filter(|p| p.as_rule() == Rule::expr) {
                    let (item, item_depth) = self.expr(item)?;
                    list.push(item);
                    list_depth = list_depth.max(item_depth);
                }
                let kind = ExprKind::InList {
                    operand,
                    list,
                    negated,
                };
                (kind, list_depth)
            }
            Rule::between => {
                let mut bounds = parts.filter(|p| p.as_rule() == Rule::operand);
                let (low, low_depth) = self.operand(bounds.next().expect("low bound"))?;
                let (high, high_depth) = self.operand(bounds.next().expect("high bound"))?;
                let kind = ExprKind::Between {
                    operand,
                    low: Box::new(low),
                    high: Box::new(high),
                    negated,
                };
                (kind, low_depth.max(high_depth))
            }
            Rule::matches => {
                let text = parts.nth(1).expect("matches has a pattern");
                let kind = ExprKind::Matches {
                    operand,
                    pattern_span: self.span(&text),
                    pattern: self.text_value(&text)?,
                };
                (kind, 0)
            }
            rule => unreachable!("not a predicate suffix: {rule:?}"),
        };
        Ok((Expr { kind, span }, deeper(depth.max(inner_depth), span)?))
    }

    /// The value of a `'text'` literal: `''` stands for one quote, as in SQL. A NUL is
    /// refused here, where its place is known: PostgreSQL text cannot hold one, so a run
    /// would otherwise fail on the server with no word of where it came from.
    fn text_value(&self, pair: &Pair<Rule>) -> Result<String, Diagnostic> {
        let quoted = pair.as_str();
        if let Some(at) = quoted.find('\0') {
            return Err(Diagnostic::new(
                span_inside(self.span(pair), quoted, at),
                "text literals cannot hold NUL (U+0000): PostgreSQL text cannot store it",
            ));
        }
        Ok(quoted[1..quoted.len() - 1].replace("''", "'"))
    }

    fn primary(&self, pair: Pair<Rule>) -> Result<(Expr, usize), Diagnostic> {
        let span = self.span(&pair);
        let leaf = |kind| Ok((Expr { kind, span }, 1));
        match pair.as_rule() {
            Rule::paren => {
                let inner = pair.into_inner().nth(1).expect("parentheses hold an expr");
                let (expr, depth) = self.expr(inner)?;
                // The parenthesised node spans its parentheses, so `(a + b) * c` points at `(`.
                Ok((
                    Expr {
                        kind: expr.kind,
                        span,
                    },
                    deeper(depth, span)?,
                ))
            }
            Rule::call => {
                let mut inner = pair.into_inner();
                let function = self.ident(inner.next().expect("call names a function"));
                let mut args = Vec::new();
                let mut depth = 0;
                for arg in inner.filter(|p| p.as_rule() == Rule::expr) {
                    let (arg, arg_depth) = self.expr(arg)?;
                    args.push(arg);
                    depth = depth.max(arg_depth);
                }
                let kind = ExprKind::Call { function, args };
                Ok((Expr { kind, span }, deeper(depth, span)?))
            }
            Rule::column => leaf(ExprKind::Column(pair.as_str().to_string())),
            Rule::text => leaf(ExprKind::Literal(Literal::Text(self.text_value(&pair)?))),
            Rule::true_lit => leaf(ExprKind::Literal(Literal::Bool(true))),
            Rule::false_lit => leaf(ExprKind::Literal(Literal::Bool(false))),
            Rule::null_lit => leaf(ExprKind::Literal(Literal::Null)),
            Rule::integer => match pair.as_str().parse() {
                Ok(n) => leaf(ExprKind::Literal(Literal::Integer(n))),
                Err(_) => Err(integer_too_big(span, pair.as_str())),
            },
            Rule::real => match pair.as_str().parse::<f64>() {
                Ok(r) if r.is_finite() => leaf(ExprKind::Literal(Literal::Real(r))),
                _ => Err(Diagnostic::new(
                    span,
                    format!("number `{}` is out of range", pair.as_str()),
                )),
            },
            rule => unreachable!("not a primary: {rule:?}"),
        }
    }
}

/// Minus signs read as part of the integer literal after them, keyed by where its digits start.
type MinusSigns<'i> = Vec<(usize, Pair<'i, Rule>)>;

/// The pairs of an operand without each unary minus that stands right before digits too big
/// for a positive `i64`, and those minus signs.
fn take_minus_of_big_integers(pairs: Pairs<Rule>) -> (Vec<Pair<Rule>>, MinusSigns) {
    let mut kept: Vec<Pair<Rule>> = Vec::new();
    let mut minus_signs = Vec::new();
    for pair in pairs {
        let negated_big = pair.as_rule() == Rule::integer
            && pair.as_str().parse::<i64>().is_err()
            && kept.last().is_some_and(|p| p.as_rule() == Rule::neg_op);
        if negated_big {
            let minus = kept.pop().expect("a minus sign was just seen");
            minus_signs.push((pair.as_span().start(), minus));
        }
        kept.push(pair);
    }
    (kept, minus_signs)
}

fn integer_too_big(span: Span, written: &str) -> Diagnostic {
    Diagnostic::new(span, format!("integer `{written}` does not fit in 64 bits"))
        .with_help(format!("integers range from {} to {}", i64::MIN, i64::MAX))
}

fn deeper(depth: usize, span: Span) -> Result<usize, Diagnostic> {
    if depth >= MAX_NESTING {
        Err(Diagnostic::new(
            span,
            format!("expression nested too deeply (more than {MAX_NESTING} levels)"),
        ))
    } else {
        Ok(depth + 1)
    }
}

fn binary_op(symbol: &str) -> BinaryOp {
    match symbol.to_ascii_lowercase().as_str() {
        "or" => BinaryOp::Or,
        "and" => BinaryOp::And,
        "=" => BinaryOp::Eq,
        "<>" | "!=" => BinaryOp::Ne,
        "<" => BinaryOp::Lt,
        "<=" => BinaryOp::Le,
        ">" => BinaryOp::Gt,
        ">=" => BinaryOp::Ge,
        "||" => BinaryOp::Concat,
        "+" => BinaryOp::Add,
        "-" => BinaryOp::Sub,
        "*" => BinaryOp::Mul,
        "/" => BinaryOp::Div,
        "%" => BinaryOp::Mod,
        other => unreachable!("not a binary operator: {other}"),
    }
}

/// The byte offset of the first place where parentheses and prefix operators nest deeper than
/// `MAX_NESTING`, skipping comments and text literals.
fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut parens = 0usize;
    let mut prefixes = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let at = i;
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\'' => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\'' && bytes.get(i + 1) != Some(&b'\'') {
                        break;
                    }
                    i += if bytes[i] == b'\'' { 2 } else { 1 };
                }
                prefixes = 0;
            }
            b'(' => parens += 1,
            b')' => parens = parens.saturating_sub(1),
            b'-' => prefixes += 1,
            b if b.is_ascii_whitespace() => {}
            b if b.is_ascii_alphanumeric() || b == b'_' => {
                while i + 1 < bytes.len()
                    && (bytes[i + 1].is_ascii_alphanumeric() || bytes[i + 1] == b'_')
                {
                    i += 1;
                }
                if text[at..=i].eq_ignore_ascii_case("not") {
                    prefixes += 1;
                } else {
                    prefixes = 0;
                }
            }
            _ => prefixes = 0,
        }
        if parens + prefixes > MAX_NESTING {
            return Some(at);
        }
        i += 1;
    }
    None
}

/// What the parser expected at an error, in the words a spec author uses.
fn expected_words(positives: &[Rule]) -> Vec<&'static str> {
    let mut words: Vec<&'static str> = Vec::new();
    for rule in positives {
        let word = match rule {
            Rule::EOI => "end of file",
            Rule::ident | Rule::block_name | Rule::name_list => "a name",
            Rule::file
            | Rule::block
            | Rule::table_key
            | Rule::kw_backfill
            | Rule::kw_migrate
            | Rule::kw_validate
            | Rule::kw_table => "`backfill`, `migrate`, `validate` or `table`",
            Rule::kw_on => "`on`",
            Rule::kw_key => "`key`",
            Rule::lbrace => "`{`",
            Rule::rbrace => "`}`",
            Rule::lparen => "`(`",
            Rule::rparen => "`)`",
            Rule::assign => "`=`",
            Rule::comma => "`,`",
            Rule::kw_and => "`and`",
            Rule::kw_null => "`null`",
            Rule::kw_not => "`not`",
            Rule::kw_set
            | Rule::kw_where
            | Rule::kw_batch
            | Rule::kw_pause
            | Rule::kw_yield
            | Rule::kw_lock_timeout
            | Rule::kw_retries
            | Rule::kw_check
            | Rule::kw_not_null
            | Rule::kw_unique
            | Rule::kw_expect
            | Rule::set_stmt
            | Rule::where_stmt
            | Rule::batch_stmt
            | Rule::pause_stmt
            | Rule::yield_stmt
            | Rule::lock_timeout_stmt
            | Rule::retries_stmt
            | Rule::check_stmt
            | Rule::not_null_stmt
            | Rule::unique_stmt
            | Rule::expect_stmt => "a statement",
            Rule::count => "a whole number",
            Rule::duration | Rule::duration_amount => "a duration such as `50ms` or `2s`",
            Rule::duration_unit => "a unit: `ms`, `s` or `m`",
            Rule::text => "a text literal such as `'abc'`",
            Rule::or_op
            | Rule::and_op
            | Rule::compare_op
            | Rule::kw_is
            | Rule::compare
            | Rule::is_null
            | Rule::matches
            | Rule::in_list
            | Rule::between
            | Rule::kw_in
            | Rule::kw_between
            | Rule::kw_matches
            | Rule::concat_op
            | Rule::add_op
            | Rule::mul_op => "an operator",
            _ => "an expression",
        };
        if !words.contains(&word) {
            words.push(word);
        }
    }
    let drop_if = |words: &mut Vec<&str>, present: &str, dropped: &str| {
        if words.contains(&present) {
            words.retain(|w| *w != dropped);
        }
    };
    drop_if(
        &mut words,
        "an expression",
        "a text literal such as `'abc'`",
    );
    drop_if(&mut words, "an expression", "`(`");
    drop_if(&mut words, "an operator", "`not`");
    drop_if(&mut words, "an operator", "`(`");
    if words.len() > 1 {
        words.retain(|w| *w != "end of file");
    }
    words.sort_by_key(|w| WORD_ORDER.iter().position(|o| o == w));
    words
}

/// The order expected things are listed in: the most likely fix first, `}` last.
const WORD_ORDER: [&str; 21] = [
    "`backfill`, `migrate`, `validate` or `table`",
    "a name",
    "`on`",
    "`key`",
    "`{`",
    "`=`",
    "a whole number",
    "a duration such as `50ms` or `2s`",
    "a unit: `ms`, `s` or `m`",
    "a text literal such as `'abc'`",
    "an expression",
    "`not`",
    "`null`",
    "`and`",
    "an operator",
    "`(`",
    "`,`",
    "`)`",
    "a statement",
    "`}`",
    "end of file",
];

fn join_words(words: &[&str]) -> String {
    match words {
        [] => "something else".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn syntax_error(
    source: &str,
    region: Region,
    text: &str,
    error: &pest::error::Error<Rule>,
) -> Diagnostic {
    let offset = match error.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    };
    let at = region.start + offset;
    let found = found_token(&source[at..]);
    let span = span_at(source, at, found.len());
    match &error.variant {
        ErrorVariant::CustomError { .. } => Diagnostic::new(
            span,
            "this item is too complex to parse (pest's call limit was reached)",
        )
        .with_help("split the expression into simpler parts"),
        ErrorVariant::ParsingError { positives, .. } => {
            if found.starts_with('\'') && !found.ends_with('\'') || found == "'" {
                return Diagnostic::new(span_at(source, at, 1), "unterminated text literal")
                    .with_help("close it with `'`; write `''` for a quote inside the text");
            }
            let words = expected_words(positives);
            let found_words = match source[at..].chars().next() {
                None => "end of file".to_string(),
                Some('\n' | '\r') => "end of line".to_string(),
                Some('\u{feff}') => {
                    "a byte-order mark (U+FEFF), which only a file's start may hold".to_string()
                }
                Some(c) if c.is_whitespace() => "a space".to_string(),
                // Shown between backticks, a control character is invisible or garbles the line.
                Some(c) if c.is_control() => {
                    format!("the control character U+{:04X}", u32::from(c))
                }
                Some(_) => format!("`{found}`"),
            };
            let diagnostic = Diagnostic::new(
                span,
                format!("expected {}, found {found_words}", join_words(&words)),
            );
            let unclosed = offset == text.len() && positives.contains(&Rule::rbrace);
            if unclosed {
                diagnostic.with_help(format!(
                    "the block starting on line {} is missing its closing `}}`",
                    region.first_line
                ))
            } else if words.contains(&"an expression") && is_reserved(found) {
                diagnostic.with_help(format!(
                    "`{found}` is a keyword; it cannot name a column or function"
                ))
            } else if words.contains(&"a statement") && found.starts_with(is_ident_char) {
                diagnostic.with_help(
                    "statements: set, where, batch, pause, yield, lock_timeout, retries, \
                     check, not_null, unique, expect",
                )
            } else if let Some(help) = misplaced_comparison(&source[..at], &source[at..], &words) {
                diagnostic.with_help(help)
            } else {
                diagnostic
            }
        }
    }
}

/// Help for a comparison operator where the parser expected something else, by what came
/// before it: a whole comparison (they do not chain), `set` (its column is missing), another
/// `=` (`==`), or nothing that could be its left side.
fn misplaced_comparison(before: &str, rest: &str, words: &[&str]) -> Option<String> {
    let op = ["<=", ">=", "<>", "!=", "=", "<", ">"]
        .into_iter()
        .find(|op| rest.starts_with(op))?;
    let before = before.trim_end();
    let previous_word = &before[before.trim_end_matches(is_ident_char).len()..];
    if words.contains(&"an operator") {
        Some("comparisons do not chain: write `a < b and b < c`, or use parentheses".into())
    } else if words.contains(&"a name") && previous_word.eq_ignore_ascii_case("set") {
        Some("`set` names the column it writes before `=`: `set COLUMN = expression`".into())
    } else if !words.contains(&"an expression") {
        None
    } else if op == "=" && before.ends_with('=') {
        Some("write one `=`: it both assigns (`set a = 1`) and compares (`where a = 1`)".into())
    } else {
        Some(format!(
            "`{op}` compares two values and the one before it is missing, as in `a {op} 1`"
        ))
    }
}

fn is_reserved(word: &str) -> bool {
    [
        "and", "or", "not", "is", "null", "true", "false", "in", "between", "matches",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(word))
}

/// The token at the start of `rest`, as the author would name it: a word, a text literal
/// (to its closing quote, or to the end of the line if unterminated), or one character.
fn found_token(rest: &str) -> &str {
    let Some(first) = rest.chars().next() else {
        return "";
    };
    let end = if is_ident_char(first) {
        rest.find(|c| !is_ident_char(c)).unwrap_or(rest.len())
    } else if first == '\'' {
        let line_end = rest.find('\n').unwrap_or(rest.len());
        closing_quote(&rest[..line_end]).map_or(line_end, |close| close + 1)
    } else {
        first.len_utf8()
    };
    rest[..end].trim_end()
}

/// The byte offset of the quote closing the text literal that `quoted` starts with.
fn closing_quote(quoted: &str) -> Option<usize> {
    let bytes = quoted.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The one-character span at byte `at` of `text`, a token that `outer` spans.
fn span_inside(outer: Span, text: &str, at: usize) -> Span {
    let before = &text[..at];
    let (line, col) = match before.rfind('\n') {
        Some(newline) => (
            outer.line + before.matches('\n').count(),
            before[newline + 1..].chars().count() + 1,
        ),
        None => (outer.line, outer.col + before.chars().count()),
    };
    let start = outer.start + at;
    Span {
        start,
        end: start + text[at..].chars().next().map_or(1, char::len_utf8),
        line,
        col,
    }
}

/// A span of `len` bytes at byte `at` of `source`, with its line and character column.
fn span_at(source: &str, at: usize, len: usize) -> Span {
    let before = &source[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Span {
        start: at,
        end: at + len,
        line: before.matches('\n').count() + 1,
        col: before[line_start..].chars().count() + 1,
    }
}

/// The expression of `set x = SOURCE` in a one-line spec, for the tests of the stages that
/// take expressions.
#[cfg(test)]
pub(crate) fn set_expression(source: &str) -> crate::syntax::ast::Expr {
    use crate::syntax::ast::{Item, StatementKind};
    let spec = parse(&format!("backfill x on t {{\n    set x = {source}\n}}\n")).unwrap();
    let Some(Item::Block(block)) = spec.items.into_iter().next() else {
        panic!("one block")
    };
    match block.statements.into_iter().next().map(|s| s.kind) {
        Some(StatementKind::Set { value, .. }) => value,
        other => panic!("a set statement, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(source: &str) -> Vec<String> {
        parse(source)
            .expect_err("should not parse")
            .into_iter()
            .map(|d| format!("{}:{}: {}", d.span.line, d.span.col, d.message))
            .collect()
    }

    fn block(source: &str) -> Block {
        let file = parse(source).unwrap_or_else(|e| panic!("{source}: {e:?}"));
        match file.items.into_iter().next() {
            Some(Item::Block(b)) => b,
            other => panic!("not a block: {other:?}"),
        }
    }

    fn statements(body: &str) -> Vec<StatementKind> {
        block(&format!("migrate m on t {{\n{body}\n}}"))
            .statements
            .into_iter()
            .map(|s| s.kind)
            .collect()
    }

    fn expr(source: &str) -> Expr {
        match statements(&format!("where {source}")).remove(0) {
            StatementKind::Where(e) => e,
            other => panic!("not a where: {other:?}"),
        }
    }

    /// The expression fully parenthesised, to make precedence visible.
    fn shape(e: &Expr) -> String {
        let list = |items: &[Expr]| items.iter().map(shape).collect::<Vec<_>>().join(", ");
        let not = |negated: bool| if negated { "not " } else { "" };
        match &e.kind {
            ExprKind::Column(c) => c.clone(),
            ExprKind::Literal(Literal::Text(t)) => format!("{t:?}"),
            ExprKind::Literal(l) => format!("{l:?}"),
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => format!("(not {})", shape(operand)),
            ExprKind::Unary {
                op: UnaryOp::Neg,
                operand,
            } => format!("(-{})", shape(operand)),
            ExprKind::Binary { op, left, right } => {
                format!("({} {} {})", shape(left), op.symbol(), shape(right))
            }
            ExprKind::IsNull { operand, negated } => {
                format!("({} is {}null)", shape(operand), not(*negated))
            }
            ExprKind::InList {
                operand,
                list: items,
                negated,
            } => format!("({} {}in [{}])", shape(operand), not(*negated), list(items)),
            ExprKind::Between {
                operand,
                low,
                high,
                negated,
            } => format!(
                "({} {}between {} and {})",
                shape(operand),
                not(*negated),
                shape(low),
                shape(high)
            ),
            ExprKind::Matches {
                operand, pattern, ..
            } => format!("({} matches {pattern:?})", shape(operand)),
            ExprKind::Call { function, args } => format!("{}({})", function.name, list(args)),
        }
    }

    fn parses_as(source: &str, expected: &str) {
        assert_eq!(shape(&expr(source)), expected, "{source}");
    }

    #[test]
    fn the_demo_spec_parses_into_four_blocks() {
        let file = parse(include_str!("../../specs/users.mig")).expect("demo parses");
        let kinds: Vec<_> = file
            .items
            .iter()
            .map(|i| match i {
                Item::Block(b) => (b.kind, b.name.name.as_str(), b.table.name.as_str()),
                Item::TableKey { .. } => panic!("no table items in the demo"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (BlockKind::Backfill, "full_name", "users"),
                (BlockKind::Migrate, "normalize_email", "users"),
                (BlockKind::Validate, "no_nulls", "users"),
                (BlockKind::Validate, "email_format", "users"),
            ]
        );
    }

    #[test]
    fn every_statement_parses() {
        let got = statements(
            "set a = 1 where b > 2 batch 10 pause 50ms lock_timeout 2s retries 3\n\
             check x, y not_null a, b unique c expect d is null\n\
             pause 0ms pause 3m yield 2ms yield 1s",
        );
        let names =
            |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.to_string()).collect() };
        let ident_names =
            |idents: &[Ident]| -> Vec<String> { idents.iter().map(|i| i.name.clone()).collect() };
        assert!(matches!(&got[0], StatementKind::Set { column, .. } if column.name == "a"));
        assert!(matches!(&got[1], StatementKind::Where(_)));
        assert_eq!(got[2], StatementKind::Batch(10));
        assert_eq!(got[3], StatementKind::Pause(Duration::from_millis(50)));
        assert_eq!(got[4], StatementKind::LockTimeout(Duration::from_secs(2)));
        assert_eq!(got[5], StatementKind::Retries(3));
        assert!(matches!(&got[6], StatementKind::Check(v) if ident_names(v) == names(&["x", "y"])));
        assert!(
            matches!(&got[7], StatementKind::NotNull(v) if ident_names(v) == names(&["a", "b"]))
        );
        assert!(matches!(&got[8], StatementKind::Unique(v) if ident_names(v) == names(&["c"])));
        assert!(matches!(&got[9], StatementKind::Expect(_)));
        assert_eq!(got[10], StatementKind::Pause(Duration::ZERO));
        assert_eq!(got[11], StatementKind::Pause(Duration::from_secs(180)));
        assert_eq!(got[12], StatementKind::Yield(Duration::from_millis(2)));
        assert_eq!(got[13], StatementKind::Yield(Duration::from_secs(1)));
        assert_eq!(got.len(), 14);
    }

    #[test]
    fn table_key_item_parses() {
        let file = parse("table pairs key a\n").expect("parses");
        assert!(matches!(
            &file.items[0],
            Item::TableKey { table, key, .. } if table.name == "pairs" && key.name == "a"
        ));
    }

    #[test]
    fn every_operator_parses() {
        for (op, symbol) in [
            ("or", "or"),
            ("and", "and"),
            ("=", "="),
            ("<>", "<>"),
            ("!=", "<>"),
            ("<", "<"),
            ("<=", "<="),
            (">", ">"),
            (">=", ">="),
            ("||", "||"),
            ("+", "+"),
            ("-", "-"),
            ("*", "*"),
            ("/", "/"),
            ("%", "%"),
        ] {
            parses_as(&format!("a {op} b"), &format!("(a {symbol} b)"));
        }
        parses_as("-a", "(-a)");
        parses_as("not a", "(not a)");
        parses_as("a is null", "(a is null)");
        parses_as("a is not null", "(a is not null)");
        parses_as("a in (1, 'x')", "(a in [Integer(1), \"x\"])");
        parses_as("a not in (1)", "(a not in [Integer(1)])");
        parses_as("a between 1 and 2", "(a between Integer(1) and Integer(2))");
        parses_as(
            "a not between 1 and 2",
            "(a not between Integer(1) and Integer(2))",
        );
        parses_as("a matches '^x'", "(a matches \"^x\")");
        parses_as("lower(trim(a))", "lower(trim(a))");
        parses_as("coalesce(a, b, 1)", "coalesce(a, b, Integer(1))");
        parses_as("(a)", "a");
    }

    #[test]
    fn literals_parse() {
        parses_as("1.5", "Real(1.5)");
        parses_as("true", "Bool(true)");
        parses_as("FALSE", "Bool(false)");
        parses_as("null", "Null");
        parses_as("9223372036854775807", "Integer(9223372036854775807)");
        parses_as("'it''s'", "\"it's\"");
        parses_as("''", "\"\"");
    }

    #[test]
    fn precedence_follows_postgres() {
        parses_as("a or b and c", "(a or (b and c))");
        parses_as("not a = b and c", "((not (a = b)) and c)");
        parses_as("a = b || c", "(a = (b || c))");
        parses_as("a || b + c", "(a || (b + c))");
        parses_as("a + b * c", "(a + (b * c))");
        parses_as("-a * b", "((-a) * b)");
        parses_as("a - b - c", "((a - b) - c)");
        parses_as("a || ' ' || b", "((a || \" \") || b)");
        parses_as("(a + b) * c", "((a + b) * c)");
        parses_as(
            "a + 1 between 1 and 2 + 3",
            "((a + Integer(1)) between Integer(1) and (Integer(2) + Integer(3)))",
        );
        parses_as(
            "a between 1 and 2 and b",
            "((a between Integer(1) and Integer(2)) and b)",
        );
        parses_as("not a is null", "(not (a is null))");
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let b = block("BACKFILL x ON t {\n SET x = A AND NOT B IS NOT NULL\n Batch 5\n}");
        assert_eq!(b.kind, BlockKind::Backfill);
        assert_eq!(b.statements[1].kind, StatementKind::Batch(5));
        let StatementKind::Set { value, .. } = &b.statements[0].kind else {
            panic!("not a set");
        };
        assert_eq!(shape(value), "(A and (not (B is not null)))");
    }

    #[test]
    fn printed_reals_parse_back_to_themselves() {
        for r in [1e308, 1e-7, 5e-324, 0.1, 123.0, 1.5e16, f64::MAX] {
            let printed = Literal::Real(r).to_string();
            let got = statements(&format!("set a = {printed}"));
            let StatementKind::Set { value, .. } = &got[0] else {
                panic!("not a set");
            };
            assert_eq!(value.kind, ExprKind::Literal(Literal::Real(r)), "{printed}");
        }
    }

    #[test]
    fn comments_run_to_end_of_line() {
        let got = statements("-- leading\nbatch 1 -- trailing\n-- batch 2\nset a = b--c\n");
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[1], StatementKind::Set { value, .. } if shape(value) == "b"));
    }

    #[test]
    fn spans_point_into_the_whole_file() {
        let source = "-- é comment\nvalidate v on t {\n  expect é_col\n}\n\nbackfill c on t {\n  set c = 'ü' || x\n}\n";
        let file = parse(source).expect_err("é is not an identifier character");
        assert_eq!(file[0].span.line, 3);
        assert_eq!(file[0].span.col, 10);

        let source = "-- é\nbackfill c on t {\n  set c = 'ü' || x\n}\n";
        let file = parse(source).expect("parses");
        let Item::Block(b) = &file.items[0] else {
            panic!("a block")
        };
        let x_at = source.find("x\n").expect("x");
        let StatementKind::Set { column, value } = &b.statements[0].kind else {
            panic!("a set")
        };
        assert_eq!((column.span.line, column.span.col), (3, 7));
        let ExprKind::Binary { right, .. } = &value.kind else {
            panic!("a binary")
        };
        assert_eq!(right.span.start, x_at);
        assert_eq!(right.span.end, x_at + 1);
        assert_eq!((right.span.line, right.span.col), (3, 18));
        let block_at = source.find("backfill").expect("block");
        assert_eq!(
            &source[b.span.start..b.span.end],
            &source[block_at..source.len() - 1]
        );
    }

    #[test]
    fn errors_in_every_block_are_reported() {
        let source = "backfill a on t {\n  set a = \n}\n\nmigrate m t {\n}\n\nvalidate v on t {\n  batch x\n}\n";
        assert_eq!(
            errors(source),
            [
                "3:1: expected an expression, found `}`",
                "5:11: expected `on`, found `t`",
                "9:9: expected a whole number, found `x`",
            ]
        );
    }

    #[test]
    fn unclosed_block_is_reported_at_the_next_item() {
        let source = "backfill a on t {\n  set a = 1\n\nmigrate m on t {\n  set b = 2\n}\n";
        let d = parse(source).expect_err("unclosed");
        assert_eq!(
            d[0].message,
            "expected an operator, a statement or `}`, found `migrate`"
        );
        assert_eq!((d[0].span.line, d[0].span.col), (4, 1));
        assert!(d[0].help.as_deref().unwrap_or("").contains("line 1"));
    }

    #[test]
    fn messages_use_words_not_rule_names() {
        assert_eq!(
            errors("backfill a in t {}"),
            ["1:12: expected `on`, found `in`"]
        );
        assert_eq!(
            errors("migrate m on t { batch -1 }"),
            ["1:24: expected a whole number, found `-`"]
        );
        assert_eq!(
            errors("migrate m on t { pause 5 }"),
            ["1:25: expected a unit: `ms`, `s` or `m`, found a space"]
        );
        assert_eq!(
            errors("migrate m on t {\n  yield 60%\n}"),
            ["2:11: expected a unit: `ms`, `s` or `m`, found `%`"]
        );
        assert_eq!(
            errors("validate v on t { expect a matches b }"),
            ["1:36: expected a text literal such as `'abc'`, found `b`"]
        );
        assert_eq!(
            errors("validate v on t { expect a = 'x }"),
            ["1:30: unterminated text literal"]
        );
        assert_eq!(
            errors("x"),
            ["1:1: expected `backfill`, `migrate`, `validate` or `table`, found `x`"]
        );
    }

    #[test]
    fn a_byte_order_mark_inside_a_file_is_named() {
        assert_eq!(
            errors("backfill a on t { set a = 1 }\n\u{feff}backfill b on t { set b = 1 }"),
            [
                "2:1: expected `backfill`, `migrate`, `validate` or `table`, \
              found a byte-order mark (U+FEFF), which only a file's start may hold"
            ]
        );
    }

    #[test]
    fn a_nul_in_a_text_literal_is_refused_where_it_stands() {
        let nul = "text literals cannot hold NUL (U+0000): PostgreSQL text cannot store it";
        assert_eq!(
            errors("migrate m on t {\n  set x = s || 'a\0b'\n}"),
            [format!("2:18: {nul}")]
        );
        assert_eq!(
            errors("validate v on t {\n  expect s matches 'é\n\0'\n}"),
            [format!("3:1: {nul}")]
        );
        assert_eq!(
            errors("-- \0 in a comment\nmigrate m on t { set x = '\0' }"),
            [format!("2:27: {nul}")]
        );
    }

    #[test]
    fn a_control_character_is_named_by_its_code_point() {
        assert_eq!(
            errors("migrate m on t { set x = \0 }"),
            ["1:26: expected an expression, found the control character U+0000"]
        );
        assert_eq!(
            errors("migrate m on t { set x = a \u{7} }"),
            ["1:28: expected an operator, a statement or `}`, found the control character U+0007"]
        );
    }

    #[test]
    fn reserved_words_are_not_columns() {
        let d = parse("migrate m on t { set a = null + in }").expect_err("in is reserved");
        assert_eq!(d[0].message, "expected an expression, found `in`");
        assert!(d[0].help.as_deref().unwrap_or("").contains("keyword"));
        parses_as("android or notes", "(android or notes)");
    }

    #[test]
    fn comparisons_do_not_chain() {
        let d = parse("validate v on t { expect a < b < c }").expect_err("chained");
        assert_eq!((d[0].span.col, d[0].help.is_some()), (32, true));
    }

    #[test]
    fn a_misplaced_comparison_gets_help_that_fits_it() {
        let help = |body: &str| {
            let d = parse(&format!("migrate m on t {{\n    {body}\n}}")).expect_err(body);
            d[0].help.clone()
        };
        let chain = "comparisons do not chain: write `a < b and b < c`, or use parentheses";
        let one_equals =
            "write one `=`: it both assigns (`set a = 1`) and compares (`where a = 1`)";
        for (body, want) in [
            (
                "set = 1",
                Some("`set` names the column it writes before `=`: `set COLUMN = expression`"),
            ),
            (
                "SET\n = 1",
                Some("`set` names the column it writes before `=`: `set COLUMN = expression`"),
            ),
            (
                "where = 1",
                Some("`=` compares two values and the one before it is missing, as in `a = 1`"),
            ),
            (
                "where a and <= 1",
                Some("`<=` compares two values and the one before it is missing, as in `a <= 1`"),
            ),
            ("set y == 1", Some(one_equals)),
            ("where y = = 1", Some(one_equals)),
            ("where a < b < c", Some(chain)),
            ("set y = a = b = c", Some(chain)),
            ("batch = 5", None),
            ("check = v", None),
        ] {
            assert_eq!(help(body).as_deref(), want, "{body}");
        }
    }

    #[test]
    fn integer_overflow_is_an_error_with_a_span() {
        let d = parse("migrate m on t { set a = 9223372036854775808 }").expect_err("overflow");
        assert_eq!(
            d[0].message,
            "integer `9223372036854775808` does not fit in 64 bits"
        );
        assert_eq!((d[0].span.start, d[0].span.end), (25, 44));
        let d = parse("migrate m on t { batch 99999999999999999999 }").expect_err("overflow");
        assert_eq!(
            (d[0].span.col, d[0].message.as_str()),
            (24, "number `99999999999999999999` is too large")
        );
    }

    #[test]
    fn the_smallest_integer_is_its_digits_negated() {
        let min = "Integer(-9223372036854775808)";
        parses_as("-9223372036854775808", min);
        parses_as("- 9223372036854775808", min);
        parses_as("-09223372036854775808", min);
        parses_as("a - -9223372036854775808", &format!("(a - {min})"));
        parses_as("- -9223372036854775808", &format!("(-{min})"));
        let e = expr("x * -9223372036854775808");
        assert_eq!(e.to_string(), "x * (-9223372036854775808)");
        assert_eq!(shape(&expr(&e.to_string())), shape(&e));
        let e = expr("- -9223372036854775808");
        assert_eq!(e.to_string(), "-(-9223372036854775808)");
        assert_eq!(shape(&expr(&e.to_string())), shape(&e));
        let ExprKind::Binary { right, .. } = expr("a = - 9223372036854775808").kind else {
            panic!("a comparison");
        };
        assert_eq!(
            (right.span.col, right.span.end - right.span.start),
            (11, 21)
        );
        for (source, col, written) in [
            ("a - 9223372036854775808", 28, "9223372036854775808"),
            ("- 9223372036854775809", 24, "-9223372036854775809"),
            ("- -99999999999999999999", 26, "-99999999999999999999"),
            (
                "--9223372036854775808\n 9223372036854775808",
                2,
                "9223372036854775808",
            ),
        ] {
            let d = parse(&format!("migrate m on t {{ where {source} }}")).expect_err(source);
            assert_eq!(
                (d[0].span.col, d[0].message.as_str()),
                (
                    col,
                    format!("integer `{written}` does not fit in 64 bits").as_str()
                ),
                "{source}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!(
            "migrate m on t {{ set a = {}1{} }}",
            "(".repeat(100_000),
            ")".repeat(100_000)
        );
        let d = parse(&deep).expect_err("too deep");
        assert!(d[0].message.contains("nested too deeply"));
        let nots = format!("migrate m on t {{ where {} a }}", "not ".repeat(100_000));
        assert!(parse(&nots).is_err());
        let huge = format!("migrate m on t {{ set a = 1{} }}", " + 1".repeat(100_000));
        assert!(parse(&huge).is_err());
        let chain = format!("migrate m on t {{ set a = 1{} }}", " + 1".repeat(100));
        let d = parse(&chain).expect_err("too deep");
        assert!(d[0].message.contains("nested too deeply"), "{d:?}");
        let fine = format!(
            "migrate m on t {{ set a = {}1{} }}",
            "(".repeat(60),
            ")".repeat(60)
        );
        assert!(parse(&fine).is_ok());
    }
}
