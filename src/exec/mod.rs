//! Stage 4: running plans. `engine` drives batches, post-checks, rollback and repeated runs
//! over a `Store`; the node and the CLI both call it. `eval` gives every expression its one
//! meaning.

pub mod engine;
pub mod eval;

pub use engine::*;
