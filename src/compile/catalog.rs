//! What `compile` hands to the later stages: every migration and validation of the specs
//! folder, names resolved and checked, each remembering where it was declared.

use crate::syntax::ast::{Expr, Span};
use crate::value::Value;
use std::collections::BTreeMap;
use std::ops::{BitAnd, BitOr};
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
    /// What the columns can hold, where the store is certain of it; a column not here may
    /// hold a value of any kind.
    pub values: BTreeMap<String, ColumnValues>,
    /// The only text an enum column takes: its labels, in the enum's order.
    pub labels: BTreeMap<String, Vec<String>>,
}

/// The kinds of value a column can hold besides NULL, as its store guarantees them, so
/// `mig check` can refuse an operator its values always fail, or a value it cannot take.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnValues {
    pub kinds: ValueKinds,
    /// The kinds of value a write into it takes (some values of them, at least): one of any
    /// other kind is refused.
    pub accepts: ValueKinds,
    /// The column's kind of value with its article, for messages: "a text column".
    pub described: String,
    /// How the store makes it hold only those, as the end of a sentence that starts with the
    /// column: "has PostgreSQL type text, which holds only text".
    pub because: String,
}

/// A set of kinds of non-NULL value: those a column can hold, or an expression give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValueKinds(u8);

impl ValueKinds {
    pub const NONE: ValueKinds = ValueKinds(0);
    pub const INTEGER: ValueKinds = ValueKinds(1);
    pub const REAL: ValueKinds = ValueKinds(2);
    pub const TEXT: ValueKinds = ValueKinds(4);
    pub const BLOB: ValueKinds = ValueKinds(8);
    pub const NUMBER: ValueKinds = ValueKinds::INTEGER.union(ValueKinds::REAL);
    pub const ANY: ValueKinds = ValueKinds::NUMBER
        .union(ValueKinds::TEXT)
        .union(ValueKinds::BLOB);

    /// Every kind of either set; `|` for constants.
    pub const fn union(self, other: ValueKinds) -> ValueKinds {
        ValueKinds(self.0 | other.0)
    }

    /// The kind of `value`; NULL is none.
    pub fn of(value: &Value) -> ValueKinds {
        match value {
            Value::Null => ValueKinds::NONE,
            Value::Integer(_) => ValueKinds::INTEGER,
            Value::Real(_) => ValueKinds::REAL,
            Value::Text(_) => ValueKinds::TEXT,
            Value::Blob(_) => ValueKinds::BLOB,
        }
    }

    pub fn is_empty(self) -> bool {
        self == ValueKinds::NONE
    }

    /// Whether some kind is in both sets.
    pub fn meets(self, other: ValueKinds) -> bool {
        !(self & other).is_empty()
    }
}

impl BitOr for ValueKinds {
    type Output = ValueKinds;

    fn bitor(self, other: ValueKinds) -> ValueKinds {
        self.union(other)
    }
}

impl BitAnd for ValueKinds {
    type Output = ValueKinds;

    fn bitand(self, other: ValueKinds) -> ValueKinds {
        ValueKinds(self.0 & other.0)
    }
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

    /// What `column` can hold, where the store is certain of it.
    pub fn values(&self, column: &str) -> Option<&ColumnValues> {
        self.values.get(column)
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
