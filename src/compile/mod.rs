//! Stage 2: syntax trees to a checked `Catalog`.

pub mod catalog;
pub mod check;
pub mod idempotence;
pub mod types;

pub use catalog::*;
pub use check::{compile, compile_for_rollback, render_diagnostics, SourceFile, MAX_RETRIES};
pub use idempotence::idempotence;
