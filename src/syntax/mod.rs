//! Stage 1: `.mig` text to a syntax tree (grammar in `grammar/mig.pest`).
//!
//! A file holds items: `backfill COLUMN on TABLE { ... }`, `migrate NAME on TABLE { ... }`,
//! `validate NAME on TABLE { ... }` and `table TABLE key COLUMN`. Statements inside a block
//! are separated by whitespace only (newlines are ordinary whitespace); `--` starts a
//! comment. Keywords are case-insensitive; names are kept as written.
//!
//! Expression precedence, lowest first: `or`; `and`; `not`; comparisons, `is [not] null`,
//! `[not] in (...)`, `[not] between a and b`, `matches 'regex'` (none of these chain);
//! `||`; `+ -`; `* / %`; unary `-`; literals, columns, calls and parentheses. `||` binds
//! looser than `+`, as in PostgreSQL.
//!
//! Nothing here resolves a name: which statement a block may hold, which function exists,
//! which column a table has, is `compile`'s business.

pub mod ast;
#[cfg(test)]
pub mod build;
pub mod parser;
pub mod print;

pub use parser::{parse, parse_recovering};
