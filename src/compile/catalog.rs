//! What `compile` hands to the later stages: every migration and validation of the specs
//! folder, names resolved and checked, each remembering where it was declared.

use crate::syntax::ast::{Expr, Span};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub path: String,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationKind {
    Backfill,
    Migrate,
}

/// A `backfill` or `migrate` block. A backfill's name is `TABLE.COLUMN`.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    pub name: String,
    pub kind: MigrationKind,
    pub table: String,
    pub sets: Vec<Assignment>,
    pub filter: Option<Expr>,
    pub batch: Option<u64>,
    pub pause: Option<Duration>,
    /// How long a batch may take while another session is busy (`yield`).
    pub yield_after: Option<Duration>,
    pub lock_timeout: Option<Duration>,
    pub retries: Option<u64>,
    /// Names of validations to run after the last batch.
    pub checks: Vec<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub column: String,
    pub value: Expr,
    pub idempotence: Idempotence,
}

/// Whether running `set column = value` twice leaves what running it once left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotence {
    Proven(String),
    Not(String),
    Unknown(String),
}

impl Idempotence {
    pub fn verdict(&self) -> &'static str {
        match self {
            Idempotence::Proven(_) => "idempotent",
            Idempotence::Not(_) => "not idempotent",
            Idempotence::Unknown(_) => "idempotence unknown",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Idempotence::Proven(r) | Idempotence::Not(r) | Idempotence::Unknown(r) => r,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Validation {
    pub name: String,
    pub table: String,
    pub checks: Vec<Check>,
    pub origin: Origin,
}

/// A row fails a validation when it fails any one of its checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Fails where any listed column is null.
    NotNull(Vec<String>),
    /// Fails where the listed columns' combined value (all non-null) occurs on another row.
    Unique(Vec<String>),
    /// Fails where the predicate is false (null passes, as in an SQL CHECK constraint).
    Expect(Expr),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    pub migrations: Vec<Migration>,
    pub validations: Vec<Validation>,
    /// `table T key K` overrides, as (table, key column).
    pub key_overrides: Vec<(String, String)>,
}

impl Catalog {
    pub fn migration(&self, name: &str) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.name == name)
    }

    pub fn validation(&self, name: &str) -> Option<&Validation> {
        self.validations.iter().find(|v| v.name == name)
    }

    pub fn key_override(&self, table: &str) -> Option<&str> {
        self.key_overrides
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, k)| k.as_str())
    }
}

/// The live database's tables, as the store reads them. Names are as the database spells them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub tables: Vec<TableSchema>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TableSchema {
    pub name: String,
    pub columns: Vec<String>,
    /// The primary key's columns in order; more than one is a composite key.
    pub primary_key: Vec<String>,
    /// What mig cannot do with some of the columns; a column not here has no limits.
    pub limits: BTreeMap<String, ColumnLimits>,
    /// Tables that inherit from this one (PostgreSQL's table inheritance, not partitions):
    /// a statement on this table reaches their rows too.
    pub inherited_by: Vec<String>,
    /// PostgreSQL row-level security applies to mig's role here: its batches would not see
    /// the rows a policy keeps from it, and would skip them.
    pub row_security: bool,
}

/// What mig cannot do with a column, each with its reason as the end of a sentence that
/// starts with the column ("column `m` of `en` has type mood, which …"), so `mig check`
/// refuses a spec that would fail only once its run had started.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ColumnLimits {
    /// Why mig can neither read nor write it: a type it has no values for.
    pub unreadable: Option<String>,
    /// Why mig may read it but not set it: the database computes it, or mig's reading of
    /// it is not exact.
    pub unwritable: Option<String>,
    /// Why a table cannot be walked by it in key order.
    pub unwalkable: Option<String>,
}

impl Schema {
    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.iter().find(|t| t.name == name)
    }
}

impl TableSchema {
    pub fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }

    /// Why mig cannot read `column`, if it cannot.
    pub fn unreadable(&self, column: &str) -> Option<&str> {
        self.limits.get(column)?.unreadable.as_deref()
    }

    /// Why mig cannot set `column`, if it cannot.
    pub fn unwritable(&self, column: &str) -> Option<&str> {
        let limits = self.limits.get(column)?;
        limits
            .unreadable
            .as_deref()
            .or(limits.unwritable.as_deref())
    }

    /// Why mig cannot walk the table by `column`, if it cannot.
    pub fn unwalkable(&self, column: &str) -> Option<&str> {
        let limits = self.limits.get(column)?;
        limits
            .unreadable
            .as_deref()
            .or(limits.unwalkable.as_deref())
    }
}
