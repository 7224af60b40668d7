//! Stage 2: syntax trees to a checked `Catalog`.

pub mod catalog;

pub use catalog::*;

use crate::diagnostic::FileDiagnostics;

/// Temporary stand-in, replaced by the real semantic pass on merge.
pub struct SourceFile {
    pub path: String,
    pub text: String,
}

pub fn compile(
    _files: &[SourceFile],
    _schema: Option<&Schema>,
) -> Result<Catalog, Vec<FileDiagnostics>> {
    Ok(Catalog::default())
}

pub fn render_diagnostics(all: &[FileDiagnostics]) -> String {
    all.iter().map(FileDiagnostics::render).collect()
}
