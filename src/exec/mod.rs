//! Stage 4: running a plan. `eval` gives every expression its one meaning.

pub mod eval;
