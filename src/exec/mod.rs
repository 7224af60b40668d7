//! Stage 4: running plans. `engine` drives batches, post-checks, rollback and repeated runs
//! over a `Store`; the node and the CLI both call it. `eval` gives every expression its one
//! meaning; `throttle` spaces batches out (`pause`, `yield`); `specs` reads the specs folder;
//! `stop` stops a run between batches on Ctrl-C or SIGTERM; `prune` drops the backup of runs
//! that are over.

pub mod engine;
pub mod eval;
pub mod prune;
pub mod specs;
pub mod stop;
pub mod throttle;

pub use engine::*;
pub use specs::{read_specs, spec_file_path, LeftOut};
