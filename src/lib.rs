//! mig: data migrations on live databases. See ARCHITECTURE.md for the map.

pub mod compile;
pub mod diagnostic;
pub mod exec;
pub mod store;
pub mod syntax;
pub mod value;
