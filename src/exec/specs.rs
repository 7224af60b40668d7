//! The specs folder: every `.mig` file directly in it, read as UTF-8 text.

use super::engine::ExecError;
use crate::compile::SourceFile;
use crate::diagnostic::FileDiagnostics;
use std::fmt;
use std::io::ErrorKind;
use std::path::Path;

/// A `.mig` file of the specs folder that cannot be read as a spec, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableSpec {
    /// The file as the user sees it, with `:line:col` where a place in it is at fault.
    pub place: String,
    pub reason: String,
}

impl fmt::Display for UnreadableSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.reason)
    }
}

/// What a rollback went on without: it needs only the run's record, so a spec file that
/// cannot be read or does not compile, or a specs folder that cannot be read, must not stop
/// the undo.
#[derive(Debug, Clone, PartialEq)]
pub enum LeftOut {
    Folder { path: String, message: String },
    Unreadable(UnreadableSpec),
    DoesNotCompile(FileDiagnostics),
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeftOut::Folder { path, message } => {
                write!(f, "cannot read specs folder {path}: {message}")?;
            }
            LeftOut::Unreadable(spec) => write!(f, "cannot read spec file {spec}")?,
            LeftOut::DoesNotCompile(file) => {
                write!(f, "{}", file.path)?;
                if let Some(first) = file.diagnostics.first() {
                    let at = first.span;
                    write!(f, ":{}:{}: {}", at.line, at.col, first.message)?;
                }
                match file.diagnostics.len().saturating_sub(1) {
                    0 => {}
                    1 => write!(f, " (and 1 more error)")?,
                    more => write!(f, " (and {more} more errors)")?,
                }
            }
        }
        write!(
            f,
            "; the rollback goes on without it, as it needs only the run's record"
        )
    }
}

pub fn describe_unreadable(specs: &[UnreadableSpec]) -> String {
    match specs {
        [one] => format!("cannot read spec file {one}"),
        many => {
            let lines: Vec<String> = many.iter().map(|s| format!("  {s}")).collect();
            format!(
                "cannot read {} spec files:\n{}",
                many.len(),
                lines.join("\n")
            )
        }
    }
}

/// Every `.mig` file directly in `dir`, in name order, with paths shown relative to the
/// project root's parent folder when possible. A folder named `x.mig` is no spec file and is
/// skipped, as every other folder is. Files that cannot be read are all named in one error,
/// so one bad file does not hide another.
pub fn read_specs(dir: &Path) -> Result<Vec<SourceFile>, ExecError> {
    let (files, unreadable) = read_specs_apart(dir)?;
    if unreadable.is_empty() {
        Ok(files)
    } else {
        Err(ExecError::UnreadableSpecs(unreadable))
    }
}

/// The files `read_specs` reads, and apart from them those it cannot read, for a command
/// that goes on without the latter.
pub fn read_specs_apart(dir: &Path) -> Result<(Vec<SourceFile>, Vec<UnreadableSpec>), ExecError> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| ExecError::SpecsFolder {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "mig") && !p.is_dir())
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    for path in paths {
        let shown = dir
            .file_name()
            .map(|d| Path::new(d).join(path.file_name().unwrap_or_default()))
            .unwrap_or_else(|| path.clone())
            .display()
            .to_string();
        match read_spec(&path, &shown) {
            Ok(text) => files.push(SourceFile::from_disk(shown, text)),
            Err(e) => unreadable.push(e),
        }
    }
    Ok((files, unreadable))
}

fn read_spec(path: &Path, shown: &str) -> Result<String, UnreadableSpec> {
    let unreadable = |place: String, reason: String| UnreadableSpec { place, reason };
    let bytes = std::fs::read(path).map_err(|e| {
        let reason = match e.kind() {
            ErrorKind::NotFound if path.is_symlink() => {
                "it is a symbolic link to a file that does not exist".to_string()
            }
            _ => e.to_string(),
        };
        unreadable(shown.to_string(), reason)
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = std::str::from_utf8(&bytes[..valid]).expect("valid up to here");
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        unreadable(
            format!("{shown}:{line}:{col}"),
            format!(
                "byte 0x{:02x} is not UTF-8; mig reads specs as UTF-8 text",
                bytes[valid]
            ),
        )
    })
}
