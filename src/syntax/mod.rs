//! Stage 1: `.mig` text to a syntax tree (grammar in `grammar/mig.pest`).

pub mod ast;
pub mod parser;

pub use parser::{parse, parse_recovering};
