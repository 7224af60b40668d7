//! Stage 4: running plans. `engine` drives batches, post-checks, rollback and repeated runs
//! over a `Store`; the node and the CLI both call it.

pub mod engine;

pub use engine::*;
