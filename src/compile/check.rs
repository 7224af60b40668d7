//! The semantic pass: every `.mig` file of the specs folder to one `Catalog`, or every error
//! found in them, each pointing at the token at fault.

use super::catalog::{
    Assignment, Catalog, Check, Migration, MigrationKind, Origin, Schema, TableSchema, Validation,
};
use super::idempotence::idempotence;
use super::types::{type_errors, Role};
use crate::diagnostic::{Diagnostic, FileDiagnostics};
use crate::exec::eval;
use crate::syntax::ast::{
    Block, BlockKind, Expr, ExprKind, Function, Ident, Item, Span, SpecFile, StatementKind,
};
use crate::syntax::parse_recovering;
use std::collections::HashMap;

/// Retries beyond this are a typo, not a policy.
pub const MAX_RETRIES: u64 = 100;

/// One `.mig` file: its path as the user should see it, and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

impl SourceFile {
    /// A spec file as read from disk. A leading byte-order mark, which editors on Windows
    /// write, is not part of the spec: it is dropped, so the first line's columns count from
    /// what the editor shows.
    pub fn from_disk(path: String, text: String) -> SourceFile {
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_string(),
            None => text,
        };
        SourceFile { path, text }
    }
}

/// Parses and checks every file. The catalog keeps declaration order (files in the order
/// given, items in file order). Errors are grouped per file, in input order, and within a
/// file in source order. Items that parse are checked even in a file with syntax errors.
pub fn compile(
    files: &[SourceFile],
    schema: Option<&Schema>,
) -> Result<Catalog, Vec<FileDiagnostics>> {
    compile_checking(files, schema, Evaluation::Checked)
}

/// As `compile`, for the spec a rollback restores by. A rollback writes back the values a
/// run saved and computes no expression, so what an expression would compute over the
/// schema as it is now (a type error, a constant failure) is no reason to refuse it.
pub fn compile_for_rollback(
    files: &[SourceFile],
    schema: Option<&Schema>,
) -> Result<Catalog, Vec<FileDiagnostics>> {
    compile_checking(files, schema, Evaluation::Unchecked)
}

/// Whether `compile` refuses an expression for what evaluating it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evaluation {
    Checked,
    Unchecked,
}

fn compile_checking(
    files: &[SourceFile],
    schema: Option<&Schema>,
    evaluation: Evaluation,
) -> Result<Catalog, Vec<FileDiagnostics>> {
    let parsed: Vec<(SpecFile, Vec<Diagnostic>)> =
        files.iter().map(|f| parse_recovering(&f.text)).collect();
    let mut checker = Checker::new(files, &parsed, schema);
    checker.evaluation = evaluation;
    for (file, (spec, _)) in parsed.iter().enumerate() {
        checker.file = file;
        for item in &spec.items {
            checker.item(item);
        }
    }
    let mut all = Vec::new();
    for ((source, (_, syntax)), mut semantic) in files.iter().zip(&parsed).zip(checker.errors) {
        let mut diagnostics = syntax.clone();
        diagnostics.append(&mut semantic);
        diagnostics.sort_by_key(|d| d.span.start);
        if !diagnostics.is_empty() {
            all.push(FileDiagnostics {
                path: source.path.clone(),
                source: source.text.clone(),
                diagnostics,
            });
        }
    }
    if all.is_empty() {
        Ok(checker.catalog)
    } else {
        Err(all)
    }
}

/// Every file's diagnostics, then a summary line. Empty when there is nothing to report.
pub fn render_diagnostics(all: &[FileDiagnostics]) -> String {
    let errors: usize = all.iter().map(|f| f.diagnostics.len()).sum();
    if errors == 0 {
        return String::new();
    }
    let mut out: String = all.iter().map(FileDiagnostics::render).collect();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    out.push_str(&format!(
        "error: could not compile: {} in {}\n",
        plural(errors, "error"),
        plural(all.len(), "file")
    ));
    out
}

/// A declared name and where, for duplicate and cross-reference checks.
struct Declared {
    file: usize,
    span: Span,
    table: String,
}

struct Checker<'a> {
    files: &'a [SourceFile],
    schema: Option<&'a Schema>,
    /// Validations of every file by name, known before any `check` is resolved, so a
    /// migration may check a validation declared later or in another file.
    validations: HashMap<&'a str, Declared>,
    names: HashMap<String, Declared>,
    /// Each table's declared key: where it is declared first, and the column.
    key_overrides: HashMap<&'a str, (usize, Span, &'a str)>,
    /// The file being checked.
    file: usize,
    evaluation: Evaluation,
    errors: Vec<Vec<Diagnostic>>,
    catalog: Catalog,
}

impl<'a> Checker<'a> {
    fn new(
        files: &'a [SourceFile],
        parsed: &'a [(SpecFile, Vec<Diagnostic>)],
        schema: Option<&'a Schema>,
    ) -> Self {
        let mut validations = HashMap::new();
        let mut key_overrides = HashMap::new();
        for (file, (spec, _)) in parsed.iter().enumerate() {
            for item in &spec.items {
                match item {
                    Item::Block(b) if b.kind == BlockKind::Validate => {
                        validations.entry(b.name.name.as_str()).or_insert(Declared {
                            file,
                            span: b.name.span,
                            table: b.table.name.clone(),
                        });
                    }
                    Item::TableKey { table, key, .. } => {
                        key_overrides.entry(table.name.as_str()).or_insert((
                            file,
                            table.span,
                            key.name.as_str(),
                        ));
                    }
                    Item::Block(_) => {}
                }
            }
        }
        Checker {
            files,
            schema,
            validations,
            names: HashMap::new(),
            key_overrides,
            file: 0,
            evaluation: Evaluation::Checked,
            errors: vec![Vec::new(); files.len()],
            catalog: Catalog::default(),
        }
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.errors[self.file].push(diagnostic);
    }

    fn origin(&self, span: Span) -> Origin {
        Origin {
            path: self.files[self.file].path.clone(),
            span,
        }
    }

    fn location(&self, file: usize, span: Span) -> String {
        format!("{}:{}:{}", self.files[file].path, span.line, span.col)
    }

    /// The part of a one-value statement after its keyword, for carets under the value.
    fn value_span(&self, statement: Span, keyword: Span) -> Span {
        let text = &self.files[self.file].text;
        let gap = &text[keyword.end..statement.end];
        let start = keyword.end + (gap.len() - gap.trim_start().len());
        let before = &text[..start];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Span {
            start,
            end: statement.end,
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
        }
    }

    fn item(&mut self, item: &'a Item) {
        match item {
            Item::Block(block) => self.block(block),
            Item::TableKey { table, key, .. } => self.table_key(table, key),
        }
    }

    fn table_key(&mut self, table: &Ident, key: &Ident) {
        if let Some(&(file, span, _)) = self.key_overrides.get(table.name.as_str()) {
            if (file, span) != (self.file, table.span) {
                let first = self.location(file, span);
                self.error(
                    Diagnostic::new(
                        table.span,
                        format!("table `{}` has its key declared twice", table.name),
                    )
                    .with_help(format!("first declared at {first}")),
                );
                return;
            }
        }
        if let Some(schema) = self.known_table(table) {
            self.column_exists(schema, key);
            self.column_limit(schema, &key.name, key.span, schema.unwalkable(&key.name));
        }
        self.catalog
            .key_overrides
            .push((table.name.clone(), key.name.clone()));
    }

    fn block(&mut self, block: &'a Block) {
        let name = match block.kind {
            BlockKind::Backfill => format!("{}.{}", block.table.name, block.name.name),
            BlockKind::Migrate | BlockKind::Validate => block.name.name.clone(),
        };
        self.unique_name(&name, block);
        let table = self.known_table(&block.table);
        if block.kind != BlockKind::Validate {
            if let Some(table) = table {
                self.walkable(table, &block.table);
            }
        }
        self.statements_allowed(block);
        let expressions = block.statements.iter().filter_map(|s| match &s.kind {
            StatementKind::Set { column, value } => Some((value, Role::Set(&column.name))),
            StatementKind::Where(e) => Some((e, Role::Condition("where"))),
            StatementKind::Expect(e) => Some((e, Role::Condition("expect"))),
            _ => None,
        });
        for (expr, role) in expressions {
            self.expression(expr, role, table);
        }
        match block.kind {
            BlockKind::Validate => self.validation(name, block, table),
            BlockKind::Backfill | BlockKind::Migrate => self.migration(name, block, table),
        }
    }

    fn unique_name(&mut self, name: &str, block: &Block) {
        if let Some(first) = self.names.get(name) {
            let first = self.location(first.file, first.span);
            self.error(
                Diagnostic::new(block.name.span, format!("`{name}` is declared twice")).with_help(
                    format!("first declared at {first}; names are unique across all spec files"),
                ),
            );
        } else {
            self.names.insert(
                name.to_string(),
                Declared {
                    file: self.file,
                    span: block.name.span,
                    table: block.table.name.clone(),
                },
            );
        }
    }

    /// The table's schema, or an error when a schema is given and lacks the table.
    fn known_table(&mut self, table: &Ident) -> Option<&'a TableSchema> {
        let schema = self.schema?;
        let found = schema.table(&table.name);
        if found.is_none() {
            let mut known: Vec<_> = schema
                .tables
                .iter()
                .map(|t| format!("`{}`", t.name))
                .collect();
            known.sort();
            self.error(
                Diagnostic::new(table.span, format!("unknown table `{}`", table.name))
                    .with_help(format!("known tables: {}", known.join(", "))),
            );
        }
        found
    }

    fn column_exists(&mut self, table: &TableSchema, column: &Ident) {
        self.column_named(table, &column.name, column.span);
    }

    fn column_named(&mut self, table: &TableSchema, column: &str, span: Span) {
        if !table.has_column(column) {
            let known: Vec<_> = table.columns.iter().map(|c| format!("`{c}`")).collect();
            self.error(
                Diagnostic::new(
                    span,
                    format!("unknown column `{column}` in table `{}`", table.name),
                )
                .with_help(format!(
                    "columns of `{}`: {}",
                    table.name,
                    known.join(", ")
                )),
            );
        }
    }

    /// An error at `span` when `why` says mig cannot use `column` so.
    fn column_limit(&mut self, table: &TableSchema, column: &str, span: Span, why: Option<&str>) {
        if let Some(why) = why {
            self.error(Diagnostic::new(
                span,
                format!("column `{column}` of `{}` {why}", table.name),
            ));
        }
    }

    /// A migration walks its table by one key column: its primary key or a declared override.
    fn walkable(&mut self, table: &TableSchema, at: &Ident) {
        if self.hidden_by_row_security(table, at.span) {
            return;
        }
        if !table.inherited_by.is_empty() {
            let children: Vec<String> = table
                .inherited_by
                .iter()
                .map(|c| format!("`{c}`"))
                .collect();
            self.error(
                Diagnostic::new(
                    at.span,
                    format!(
                        "table `{}` has tables that inherit from it ({}): every statement on it \
                         reaches their rows too, whose keys its own key does not cover",
                        table.name,
                        children.join(", ")
                    ),
                )
                .with_help("migrate each inheriting table by a spec of its own; mig does not migrate a table other tables inherit from"),
            );
            return;
        }
        if self.key_overrides.contains_key(table.name.as_str()) {
            return;
        }
        let fix = format!("declare `table {} key COLUMN`", table.name);
        match table.primary_key.len() {
            1 => {
                let key = &table.primary_key[0];
                if let Some(why) = table.unwalkable(key) {
                    self.error(
                        Diagnostic::new(
                            at.span,
                            format!(
                                "table `{}` cannot be walked by its primary key: column `{key}` {why}",
                                table.name
                            ),
                        )
                        .with_help(format!("{fix} naming a unique, non-null column mig walks")),
                    );
                }
            }
            0 => self.error(
                Diagnostic::new(at.span, format!("table `{}` has no primary key to walk it by", table.name))
                    .with_help(format!("{fix} naming a unique, non-null column")),
            ),
            _ => self.error(
                Diagnostic::new(
                    at.span,
                    format!(
                        "table `{}` has a composite primary key ({}); composite primary keys are not supported yet",
                        table.name,
                        table.primary_key.join(", ")
                    ),
                )
                .with_help(fix),
            ),
        }
    }

    fn statements_allowed(&mut self, block: &Block) {
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        for statement in &block.statements {
            let keyword = statement.kind.keyword();
            let allowed = match block.kind {
                BlockKind::Validate => matches!(
                    statement.kind,
                    StatementKind::NotNull(_) | StatementKind::Unique(_) | StatementKind::Expect(_)
                ),
                BlockKind::Backfill | BlockKind::Migrate => !matches!(
                    statement.kind,
                    StatementKind::NotNull(_) | StatementKind::Unique(_) | StatementKind::Expect(_)
                ),
            };
            let keyword_span = keyword_span(statement.span, keyword);
            if !allowed {
                let help = match block.kind {
                    BlockKind::Validate => {
                        "a `validate` block holds `not_null`, `unique` and `expect`"
                    }
                    _ => "checks belong in a `validate` block, named by this block's `check`",
                };
                self.error(
                    Diagnostic::new(
                        keyword_span,
                        format!(
                            "`{keyword}` is not allowed in a `{}` block",
                            block.kind.keyword()
                        ),
                    )
                    .with_help(help),
                );
                continue;
            }
            let single = matches!(
                statement.kind,
                StatementKind::Where(_)
                    | StatementKind::Batch(_)
                    | StatementKind::Pause(_)
                    | StatementKind::Yield(_)
                    | StatementKind::LockTimeout(_)
                    | StatementKind::Retries(_)
            );
            if single {
                if let Some(first) = seen.get(keyword) {
                    let help = format!("first given on line {}; keep one", first.line);
                    self.error(
                        Diagnostic::new(
                            keyword_span,
                            format!("`{keyword}` is given twice in this block"),
                        )
                        .with_help(help),
                    );
                    continue;
                }
                seen.insert(keyword, keyword_span);
            }
            match statement.kind {
                StatementKind::Batch(0) => {
                    let at = self.value_span(statement.span, keyword_span);
                    self.error(Diagnostic::new(at, "batch size must be at least 1"));
                }
                StatementKind::Retries(n) if n > MAX_RETRIES => {
                    let at = self.value_span(statement.span, keyword_span);
                    self.error(Diagnostic::new(
                        at,
                        format!("`retries {n}` is more than the limit of {MAX_RETRIES}"),
                    ));
                }
                _ => {}
            }
        }
    }

    fn expression(&mut self, expr: &Expr, role: Role, table: Option<&TableSchema>) {
        expr.walk(&mut |e| match &e.kind {
            ExprKind::Column(name) => {
                if let Some(table) = table {
                    self.column_named(table, name, e.span);
                    self.column_limit(table, name, e.span, table.unreadable(name));
                }
            }
            ExprKind::Call { function, args } => self.call(function, args.len()),
            ExprKind::Matches {
                pattern,
                pattern_span,
                ..
            } => {
                if let Err(error) = regex::Regex::new(pattern) {
                    let reason = error.to_string();
                    let last = reason.lines().last().unwrap_or("").trim();
                    let last = last.strip_prefix("error: ").unwrap_or(last).to_string();
                    self.error(
                        Diagnostic::new(*pattern_span, "invalid regular expression")
                            .with_help(last),
                    );
                }
            }
            _ => {}
        });
        if self.evaluation == Evaluation::Checked {
            self.constant_failures(expr);
            for error in type_errors(expr, role, table) {
                self.error(error);
            }
        }
    }

    /// A part that reads no column computes the same value for every row: where that fails
    /// (`1 / 0`, an overflow, text added to a number), every batch would fail on its first
    /// row. Parts already reported (an unknown function, a wrong argument count, a bad
    /// pattern) are left alone.
    fn constant_failures(&mut self, expr: &Expr) {
        let (mut reads_a_column, mut well_formed) = (false, true);
        expr.walk(&mut |e| match &e.kind {
            ExprKind::Column(_) => reads_a_column = true,
            ExprKind::Call { function, args } => {
                well_formed &= Function::lookup(&function.name).is_some_and(|f| {
                    let (min, max) = f.arity();
                    args.len() >= min && max.is_none_or(|max| args.len() <= max)
                });
            }
            ExprKind::Matches { pattern, .. } => well_formed &= regex::Regex::new(pattern).is_ok(),
            _ => {}
        });
        if reads_a_column {
            for child in expr.children() {
                self.constant_failures(child);
            }
        } else if let (true, Err(e)) = (well_formed, eval::eval(expr, &Vec::new())) {
            self.error(
                Diagnostic::new(expr.span, format!("this part fails for every row: {e}"))
                    .with_help("it reads no column, so it computes the same failure for every row and a run would stop at its first batch"),
            );
        }
    }

    fn call(&mut self, function: &Ident, got: usize) {
        let Some(known) = Function::lookup(&function.name) else {
            let names: Vec<_> = Function::ALL.iter().map(|f| f.name()).collect();
            self.error(
                Diagnostic::new(
                    function.span,
                    format!("unknown function `{}`", function.name),
                )
                .with_help(format!("functions: {}", names.join(", "))),
            );
            return;
        };
        let (min, max) = known.arity();
        if got >= min && max.is_none_or(|max| got <= max) {
            return;
        }
        let expected = match max {
            Some(max) if max == min => arguments(min),
            Some(max) => format!("{min} to {max} arguments"),
            None => format!("at least {}", arguments(min)),
        };
        self.error(Diagnostic::new(
            function.span,
            format!("`{}` takes {expected}, got {got}", known.name()),
        ));
    }

    /// An error at `at` where PostgreSQL row-level security applies to mig's role on
    /// `table`: batches would pass over the rows a policy keeps from them, and checks would
    /// count only the rows it shows.
    fn hidden_by_row_security(&mut self, table: &TableSchema, at: Span) -> bool {
        if table.row_security {
            self.error(
                Diagnostic::new(
                    at,
                    format!(
                        "table `{}` has row-level security that applies to mig's role: its \
                         batches would pass over the rows a policy keeps from them, and its \
                         checks would not see them",
                        table.name
                    ),
                )
                .with_help("run mig as the table's owner (without FORCE ROW LEVEL SECURITY) or as a role with BYPASSRLS"),
            );
        }
        table.row_security
    }

    fn validation(&mut self, name: String, block: &Block, table: Option<&TableSchema>) {
        if let Some(table) = table {
            self.hidden_by_row_security(table, block.table.span);
        }
        let mut checks = Vec::new();
        for statement in &block.statements {
            let columns = |list: &[Ident]| list.iter().map(|c| c.name.clone()).collect();
            match &statement.kind {
                StatementKind::NotNull(list) => {
                    self.columns_exist(table, list);
                    checks.push(Check::NotNull(columns(list)));
                }
                StatementKind::Unique(list) => {
                    self.columns_exist(table, list);
                    checks.push(Check::Unique(columns(list)));
                }
                StatementKind::Expect(e) => checks.push(Check::Expect(e.clone())),
                _ => {}
            }
        }
        let origin = self.origin(block.span);
        self.catalog.validations.push(Validation {
            name,
            table: block.table.name.clone(),
            checks,
            origin,
        });
    }

    fn columns_exist(&mut self, table: Option<&TableSchema>, list: &[Ident]) {
        if let Some(table) = table {
            for column in list {
                self.column_exists(table, column);
            }
        }
    }

    fn migration(&mut self, name: String, block: &Block, table: Option<&TableSchema>) {
        let sets: Vec<(&Ident, &Expr)> = block
            .statements
            .iter()
            .filter_map(|s| match &s.kind {
                StatementKind::Set { column, value } => Some((column, value)),
                _ => None,
            })
            .collect();
        self.sets_fit_the_block(block, &sets, table);
        let written: Vec<&str> = sets.iter().map(|(c, _)| c.name.as_str()).collect();
        let mut migration = Migration {
            name,
            kind: match block.kind {
                BlockKind::Backfill => MigrationKind::Backfill,
                _ => MigrationKind::Migrate,
            },
            table: block.table.name.clone(),
            sets: sets
                .iter()
                .map(|(column, value)| Assignment {
                    column: column.name.clone(),
                    value: (*value).clone(),
                    idempotence: idempotence(&column.name, value, &written),
                })
                .collect(),
            filter: None,
            batch: None,
            pause: None,
            yield_after: None,
            lock_timeout: None,
            retries: None,
            checks: Vec::new(),
            origin: self.origin(block.span),
        };
        for statement in &block.statements {
            match &statement.kind {
                StatementKind::Where(e) => migration.filter = Some(e.clone()),
                StatementKind::Batch(n) => migration.batch = Some(*n),
                StatementKind::Pause(d) => migration.pause = Some(*d),
                StatementKind::Yield(d) => migration.yield_after = Some(*d),
                StatementKind::LockTimeout(d) => migration.lock_timeout = Some(*d),
                StatementKind::Retries(n) => migration.retries = Some(*n),
                StatementKind::Check(names) => {
                    for validation in names {
                        self.check_names(validation, &block.table);
                        migration.checks.push(validation.name.clone());
                    }
                }
                _ => {}
            }
        }
        self.catalog.migrations.push(migration);
    }

    fn sets_fit_the_block(
        &mut self,
        block: &Block,
        sets: &[(&Ident, &Expr)],
        table: Option<&TableSchema>,
    ) {
        if sets.is_empty() {
            let example = match block.kind {
                BlockKind::Backfill => format!("add `set {} = ...`", block.name.name),
                _ => "add `set COLUMN = ...`".to_string(),
            };
            self.error(
                Diagnostic::new(
                    block.name.span,
                    format!(
                        "`{} {}` has no `set`",
                        block.kind.keyword(),
                        block.name.name
                    ),
                )
                .with_help(example),
            );
        }
        let mut written: HashMap<&str, Span> = HashMap::new();
        for (index, (column, _)) in sets.iter().enumerate() {
            if let Some(first) = written.get(column.name.as_str()) {
                let help = format!("first set on line {}", first.line);
                self.error(
                    Diagnostic::new(
                        column.span,
                        format!("column `{}` is set twice in this block", column.name),
                    )
                    .with_help(help),
                );
                continue;
            }
            written.insert(&column.name, column.span);
            if block.kind == BlockKind::Backfill {
                if column.name != block.name.name {
                    self.error(
                        Diagnostic::new(
                            column.span,
                            format!(
                                "a backfill of `{}` can only set `{}`",
                                block.name.name, block.name.name
                            ),
                        )
                        .with_help("use a `migrate` block to set other columns"),
                    );
                    continue;
                }
                if index > 0 {
                    self.error(Diagnostic::new(
                        column.span,
                        "a backfill has exactly one `set`",
                    ));
                    continue;
                }
            }
            if let Some(table) = table {
                self.column_exists(table, column);
                let why = table.unwritable(&column.name);
                if why.is_some() {
                    self.column_limit(table, &column.name, column.span, why);
                    continue;
                }
            }
            if self.walk_key(&block.table.name, table) == Some(column.name.as_str()) {
                self.error(
                    Diagnostic::new(
                        column.span,
                        format!(
                            "column `{}` is the key mig walks `{}` by, so it cannot be set",
                            column.name, block.table.name
                        ),
                    )
                    .with_help(format!(
                        "a row whose key changes moves behind or ahead of the run's checkpoint, \
                         and is then missed or written again; declare `table {} key COLUMN` \
                         naming another unique, non-null column to walk by",
                        block.table.name
                    )),
                );
            }
        }
    }

    /// The column a migration on `table` walks by: its declared key, else a single-column
    /// primary key of the live schema.
    fn walk_key(&self, table: &str, schema: Option<&'a TableSchema>) -> Option<&'a str> {
        if let Some(&(_, _, key)) = self.key_overrides.get(table) {
            return Some(key);
        }
        match schema?.primary_key.as_slice() {
            [key] => Some(key.as_str()),
            _ => None,
        }
    }

    fn check_names(&mut self, validation: &Ident, table: &Ident) {
        match self.validations.get(validation.name.as_str()) {
            None => {
                let mut known: Vec<_> = self.validations.keys().map(|n| format!("`{n}`")).collect();
                known.sort();
                let help = if known.is_empty() {
                    "no validations are declared; add a `validate` block".to_string()
                } else {
                    format!("known validations: {}", known.join(", "))
                };
                self.error(
                    Diagnostic::new(
                        validation.span,
                        format!("unknown validation `{}`", validation.name),
                    )
                    .with_help(help),
                );
            }
            Some(found) if found.table != table.name => {
                let at = self.location(found.file, found.span);
                self.error(
                    Diagnostic::new(
                        validation.span,
                        format!(
                            "validation `{}` checks table `{}`, not `{}`",
                            validation.name, found.table, table.name
                        ),
                    )
                    .with_help(format!("declared at {at}")),
                );
            }
            Some(_) => {}
        }
    }
}

fn arguments(n: usize) -> String {
    format!("{n} argument{}", if n == 1 { "" } else { "s" })
}

/// The statement's leading keyword, which the statement's span starts with.
fn keyword_span(statement: Span, keyword: &str) -> Span {
    Span {
        end: statement.start + keyword.len(),
        ..statement
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.to_string(),
            text: text.to_string(),
        }
    }

    fn messages(files: &[SourceFile], schema: Option<&Schema>) -> Vec<String> {
        compile(files, schema)
            .expect_err("should not compile")
            .iter()
            .flat_map(|f| {
                f.diagnostics
                    .iter()
                    .map(move |d| format!("{}: {}", f.path, d.message))
            })
            .collect()
    }

    #[test]
    fn a_table_without_primary_key_needs_a_key_override() {
        let schema = Schema {
            tables: vec![TableSchema {
                name: "log".into(),
                columns: vec!["id".into(), "line".into()],
                ..TableSchema::default()
            }],
        };
        let spec = "migrate tidy on log {\n  set line = trim(line)\n}\n";
        assert_eq!(
            messages(&[file("a.mig", spec)], Some(&schema)),
            ["a.mig: table `log` has no primary key to walk it by"]
        );
        let fixed = format!("table log key id\n{spec}");
        assert!(compile(&[file("a.mig", &fixed)], Some(&schema)).is_ok());
    }

    #[test]
    fn the_walk_key_cannot_be_set_whether_primary_or_declared() {
        let schema = Schema {
            tables: vec![TableSchema {
                name: "codes".into(),
                columns: vec!["code".into(), "serial".into(), "n".into()],
                primary_key: vec!["code".into()],
                ..TableSchema::default()
            }],
        };
        let spec = "migrate lowkey on codes {\n  set code = lower(code)\n}\n";
        let refused = "a.mig: column `code` is the key mig walks `codes` by, so it cannot be set";
        assert_eq!(messages(&[file("a.mig", spec)], Some(&schema)), [refused]);
        // Without a schema the primary key is unknown; the run compiles against the live one.
        assert!(compile(&[file("a.mig", spec)], None).is_ok());
        let walked_by_serial = format!("table codes key serial\n{spec}");
        assert!(compile(&[file("a.mig", &walked_by_serial)], Some(&schema)).is_ok());
        let declared =
            "table codes key serial\nmigrate bump on codes {\n  set serial = serial + 1\n}\n";
        let refused = "a.mig: column `serial` is the key mig walks `codes` by, so it cannot be set";
        assert_eq!(
            messages(&[file("a.mig", declared)], Some(&schema)),
            [refused]
        );
        assert_eq!(messages(&[file("a.mig", declared)], None), [refused]);
    }

    #[test]
    fn names_are_unique_across_files_and_checks_resolve_across_files() {
        let a = file("a.mig", "migrate m on t {\n  set x = 1\n  check v\n}\n");
        let b = file(
            "b.mig",
            "validate v on t {\n  not_null x\n}\nvalidate m on t {\n  unique x\n}\n",
        );
        assert_eq!(
            messages(&[a.clone(), b], None),
            ["b.mig: `m` is declared twice"]
        );
        let b = file("b.mig", "validate v on t {\n  not_null x\n}\n");
        let catalog = compile(&[a, b], None).expect("compiles");
        assert_eq!(catalog.migrations[0].checks, ["v"]);
    }

    #[test]
    fn a_file_with_a_syntax_error_still_declares_its_good_items() {
        let a = file(
            "a.mig",
            "migrate m on t {\n  set x = \n}\nvalidate v on t {\n  not_null x\n}\n",
        );
        let b = file("b.mig", "backfill y on t {\n  set y = 2\n  check v\n}\n");
        assert_eq!(
            messages(&[a, b], None),
            ["a.mig: expected an expression, found `}`"]
        );
    }

    #[test]
    fn a_rollback_compiles_what_an_evaluation_would_refuse() {
        let spec = file(
            "a.mig",
            "migrate m on t {\n  set x = 'a' + x\n  where 1 / 0\n}\n",
        );
        assert_eq!(
            messages(std::slice::from_ref(&spec), None),
            [
                "a.mig: `+` needs numbers; `'a'` is text",
                "a.mig: this part fails for every row: division by zero"
            ]
        );
        assert!(compile_for_rollback(&[spec], None).is_ok());
        let unknown = file("b.mig", "migrate m on t {\n  set x = nope(x)\n}\n");
        assert!(compile_for_rollback(&[unknown], None).is_err());
    }

    #[test]
    fn summary_counts_errors_and_files() {
        let all =
            compile(&[file("a.mig", "migrate m on t {\n  batch 0\n}\n")], None).expect_err("bad");
        assert!(
            render_diagnostics(&all).ends_with("error: could not compile: 2 errors in 1 file\n")
        );
        assert_eq!(render_diagnostics(&[]), "");
    }
}
