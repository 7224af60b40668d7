//! Stage 5: the databases a plan runs against.

pub mod sqlite_functions;
