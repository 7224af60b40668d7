//! mig: data migrations on live databases. See ARCHITECTURE.md for the map.

pub mod cli;
pub mod compile;
pub mod config;
pub mod demo;
pub mod diagnostic;
pub mod exec;
pub mod node;
pub mod plan;
pub mod store;
pub mod syntax;
pub mod value;
