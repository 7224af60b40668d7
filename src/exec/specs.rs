//! The specs folder: every `.mig` file in it and in the folders below it, read as UTF-8 text.

use super::engine::ExecError;
use crate::compile::SourceFile;
use crate::diagnostic::FileDiagnostics;
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// A `.mig` file of the specs folder that cannot be read as a spec, or a folder below the
/// specs folder that cannot be listed (it may hold specs), and why.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableSpec {
    /// The file or folder as the user sees it, with `:line:col` where a place in a file is
    /// at fault.
    pub place: String,
    pub reason: String,
    pub what: SpecEntry,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpecEntry {
    File,
    Folder,
}

impl UnreadableSpec {
    fn noun(&self) -> &'static str {
        match self.what {
            SpecEntry::File => "spec file",
            SpecEntry::Folder => "folder",
        }
    }
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
            LeftOut::Unreadable(spec) => write!(f, "cannot read {} {spec}", spec.noun())?,
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
        [one] => format!("cannot read {} {one}", one.noun()),
        many => {
            let lines: Vec<String> = many.iter().map(|s| format!("  {s}")).collect();
            format!("cannot read {}:\n{}", count_entries(many), lines.join("\n"))
        }
    }
}

/// `2 spec files`, `1 spec file and 1 folder`, `3 folders`.
fn count_entries(specs: &[UnreadableSpec]) -> String {
    let folders = specs.iter().filter(|s| s.what == SpecEntry::Folder).count();
    let files = specs.len() - folders;
    let count = |n: usize, noun: &str| format!("{n} {noun}{}", if n == 1 { "" } else { "s" });
    match (files, folders) {
        (_, 0) => count(files, "spec file"),
        (0, _) => count(folders, "folder"),
        _ => format!(
            "{} and {}",
            count(files, "spec file"),
            count(folders, "folder")
        ),
    }
}

/// Every `.mig` file in `dir` and in the folders below it, in path order, each shown as the
/// specs folder's own name followed by its path inside it (`specs/billing/fix.mig`). What
/// the walk skips is described at `SpecWalk`. Files and folders that cannot be read are all
/// named in one error, so one bad file does not hide another.
pub fn read_specs(dir: &Path) -> Result<Vec<SourceFile>, ExecError> {
    let (files, unreadable) = read_specs_apart(dir)?;
    if unreadable.is_empty() {
        Ok(files)
    } else {
        Err(ExecError::UnreadableSpecs(unreadable))
    }
}

/// The `.mig` files below `dir`, found as the specs folder's are, for `mig check DIR`; an
/// entry that cannot be read is an error, as it is for the specs folder.
pub fn spec_files_below(dir: &Path) -> Result<Vec<PathBuf>, ExecError> {
    let walk = SpecWalk::of(dir)?;
    if walk.unreadable.is_empty() {
        Ok(walk.specs)
    } else {
        Err(ExecError::UnreadableSpecs(walk.unreadable))
    }
}

/// The files `read_specs` reads, and apart from them the files and folders it cannot read,
/// for a command that goes on without the latter.
pub fn read_specs_apart(dir: &Path) -> Result<(Vec<SourceFile>, Vec<UnreadableSpec>), ExecError> {
    let walk = SpecWalk::of(dir)?;
    let mut files = Vec::new();
    let mut unreadable = walk.unreadable;
    for path in walk.specs {
        let shown = shown_path(dir, &path);
        match read_spec(&path, &shown) {
            Ok(text) => files.push(SourceFile::from_disk(shown, text)),
            Err(e) => unreadable.push(e),
        }
    }
    unreadable.sort_by(|a, b| a.place.cmp(&b.place));
    Ok((files, unreadable))
}

/// The file on disk that `read_specs` showed as `shown`, for a command that must tell it
/// apart from a file named on its command line.
pub fn spec_file_path(dir: &Path, shown: &str) -> PathBuf {
    match Path::new(shown).strip_prefix(shown_root(dir)) {
        Ok(inside) => dir.join(inside),
        Err(_) => PathBuf::from(shown),
    }
}

/// A spec file as diagnostics show it: `specs/users.mig`, `specs/billing/fix.mig`.
fn shown_path(dir: &Path, path: &Path) -> String {
    let inside = path.strip_prefix(dir).unwrap_or(path);
    shown_root(dir).join(inside).display().to_string()
}

/// The specs folder's own name, or the whole path where it has none (`..`).
fn shown_root(dir: &Path) -> &Path {
    dir.file_name().map_or(dir, Path::new)
}

/// The `.mig` files in a specs folder and the folders below it, and the folders below it
/// that cannot be listed. The walk
/// - skips hidden folders (`.git`, `.cache`): tools keep their own files there, not specs;
/// - follows a symbolic link to a folder, as a symbolic link to a spec file is read, except
///   one to a folder the walk is already inside: every file there is being read already, and
///   following it would go round forever;
/// - takes a folder named `x.mig` for a folder, not a spec file.
struct SpecWalk<'a> {
    root: &'a Path,
    specs: Vec<PathBuf>,
    unreadable: Vec<UnreadableSpec>,
}

impl<'a> SpecWalk<'a> {
    /// Walks `root`, giving its `.mig` files in path order. A specs folder that cannot be
    /// listed is an error of its own: no spec can be found.
    fn of(root: &'a Path) -> Result<SpecWalk<'a>, ExecError> {
        let folder_error = |e: std::io::Error| ExecError::SpecsFolder {
            path: root.display().to_string(),
            message: e.to_string(),
        };
        let entries = folder_entries(root).map_err(folder_error)?;
        let mut inside = vec![root.canonicalize().map_err(folder_error)?];
        let mut walk = SpecWalk {
            root,
            specs: Vec::new(),
            unreadable: Vec::new(),
        };
        walk.entries(entries, &mut inside);
        walk.specs.sort();
        Ok(walk)
    }

    /// Takes in the entries of a folder; `inside` holds the real paths of the folders the
    /// walk is in, that folder's last.
    fn entries(&mut self, entries: Vec<PathBuf>, inside: &mut Vec<PathBuf>) {
        for path in entries {
            // Through a symbolic link, as a spec file is read through one.
            let is_folder = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
            if !is_folder {
                if path.extension().is_some_and(|x| x == "mig") {
                    self.specs.push(path);
                }
            } else if !is_hidden(&path) {
                self.folder(&path, inside);
            }
        }
    }

    fn folder(&mut self, path: &Path, inside: &mut Vec<PathBuf>) {
        let real = match path.canonicalize() {
            Ok(real) if inside.contains(&real) => return,
            Ok(real) => real,
            Err(e) => return self.cannot_list(path, e),
        };
        match folder_entries(path) {
            Ok(entries) => {
                inside.push(real);
                self.entries(entries, inside);
                inside.pop();
            }
            Err(e) => self.cannot_list(path, e),
        }
    }

    fn cannot_list(&mut self, path: &Path, e: std::io::Error) {
        self.unreadable.push(UnreadableSpec {
            place: shown_path(self.root, path),
            reason: e.to_string(),
            what: SpecEntry::Folder,
        });
    }
}

/// The paths of a folder's entries. An entry that cannot be read fails the whole folder,
/// rather than leaving out what may be a spec.
fn folder_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect()
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.as_encoded_bytes().starts_with(b"."))
}

fn read_spec(path: &Path, shown: &str) -> Result<String, UnreadableSpec> {
    let unreadable = |place: String, reason: String| UnreadableSpec {
        place,
        reason,
        what: SpecEntry::File,
    };
    // Opening a FIFO waits for a writer, which held every command reading the specs.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(unreadable(
            shown.to_string(),
            "it is not a regular file but a FIFO, socket or device; mig reads specs from files"
                .to_string(),
        ));
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    const SPEC: &str = "validate v on t {\n    not_null x\n}\n";

    /// A project folder holding `specs/` with each of `files` (paths inside it) as a spec.
    fn project(files: &[&str]) -> tempfile::TempDir {
        let project = tempfile::tempdir().unwrap();
        for file in files {
            let path = project.path().join("specs").join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, SPEC).unwrap();
        }
        fs::create_dir_all(project.path().join("specs")).unwrap();
        project
    }

    fn shown(project: &tempfile::TempDir) -> Vec<String> {
        let (files, unreadable) = read_specs_apart(&project.path().join("specs")).unwrap();
        assert_eq!(unreadable, []);
        files.into_iter().map(|f| f.path).collect()
    }

    #[test]
    fn specs_in_folders_below_are_read_in_path_order() {
        let project = project(&["users.mig", "billing/2026_fix.mig", "a/b/c.mig", "a.mig"]);
        assert_eq!(
            shown(&project),
            [
                "specs/a/b/c.mig",
                "specs/a.mig",
                "specs/billing/2026_fix.mig",
                "specs/users.mig"
            ]
        );
    }

    #[test]
    fn hidden_folders_are_skipped_and_hidden_files_are_not() {
        let project = project(&[".git/x.mig", "a/.cache/y.mig", ".draft.mig", "z.mig"]);
        assert_eq!(shown(&project), ["specs/.draft.mig", "specs/z.mig"]);
    }

    #[test]
    fn a_folder_named_like_a_spec_is_walked_as_a_folder() {
        let project = project(&["old.mig/inner.mig"]);
        assert_eq!(shown(&project), ["specs/old.mig/inner.mig"]);
    }

    #[test]
    fn a_link_to_a_folder_the_walk_is_inside_is_not_followed() {
        let project = project(&["a/x.mig"]);
        let specs = project.path().join("specs");
        symlink("..", specs.join("a/up")).unwrap();
        symlink(".", specs.join("a/here")).unwrap();
        symlink(&specs, specs.join("a/root")).unwrap();
        assert_eq!(shown(&project), ["specs/a/x.mig"]);
    }

    #[test]
    fn a_link_to_a_folder_elsewhere_is_followed() {
        let project = project(&[]);
        let shared = project.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::write(shared.join("s.mig"), SPEC).unwrap();
        // A link back from the linked folder into the specs folder is a loop too.
        symlink(project.path().join("specs"), shared.join("back")).unwrap();
        symlink(&shared, project.path().join("specs/shared")).unwrap();
        assert_eq!(shown(&project), ["specs/shared/s.mig"]);
    }

    /// A folder gone between its parent's listing and its own is named, not dropped.
    #[test]
    fn a_folder_that_cannot_be_listed_is_named() {
        let project = project(&["a.mig"]);
        let specs = project.path().join("specs");
        let mut walk = SpecWalk::of(&specs).unwrap();
        walk.folder(&specs.join("gone"), &mut Vec::new());
        let [gone] = &walk.unreadable[..] else {
            panic!("{:?}", walk.unreadable)
        };
        assert_eq!(gone.place, "specs/gone");
        assert_eq!(gone.what, SpecEntry::Folder);
        assert_eq!(
            describe_unreadable(&walk.unreadable),
            format!("cannot read folder specs/gone: {}", gone.reason)
        );
    }

    #[test]
    fn a_fifo_named_like_a_spec_is_named_not_waited_on() {
        let project = project(&["a.mig"]);
        let fifo = project.path().join("specs/b.mig");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (files, unreadable) = read_specs_apart(&project.path().join("specs")).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(
            describe_unreadable(&unreadable),
            "cannot read spec file specs/b.mig: it is not a regular file but a FIFO, socket or \
             device; mig reads specs from files"
        );
    }

    #[test]
    fn unreadable_files_and_folders_are_counted_apart() {
        let entry = |place: &str, what| UnreadableSpec {
            place: place.to_string(),
            reason: "no".to_string(),
            what,
        };
        let both = [
            entry("specs/a", SpecEntry::Folder),
            entry("specs/b.mig", SpecEntry::File),
        ];
        assert_eq!(
            describe_unreadable(&both),
            "cannot read 1 spec file and 1 folder:\n  specs/a: no\n  specs/b.mig: no"
        );
        let folders = [
            entry("specs/a", SpecEntry::Folder),
            entry("specs/c", SpecEntry::Folder),
        ];
        assert!(describe_unreadable(&folders).starts_with("cannot read 2 folders:\n"));
    }

    #[test]
    fn a_shown_path_leads_back_to_its_file() {
        let dir = Path::new("/project/specs");
        let file = dir.join("billing/fix.mig");
        let shown = shown_path(dir, &file);
        assert_eq!(shown, "specs/billing/fix.mig");
        assert_eq!(spec_file_path(dir, &shown), file);
    }
}
