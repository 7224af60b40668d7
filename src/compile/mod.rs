//! Stage 2: syntax trees to a checked `Catalog`.

pub mod catalog;

pub use catalog::*;
