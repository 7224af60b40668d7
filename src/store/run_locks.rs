//! Which runs some process is working on, for a database in a file (SQLite): beside the
//! database, a lock file for each run being worked on, held with a shared lock by every
//! process working on that run. The operating system lets go of a killed process's locks, so
//! `mig status` can tell a `running` run some process is working on from one whose process
//! died, which the run's recorded state cannot: nothing was left to record it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct RunLocks {
    database: PathBuf,
    /// The lock files this process holds, with how many callers hold each.
    held: HashMap<i64, (File, usize)>,
}

impl RunLocks {
    pub fn new(database: &Path) -> RunLocks {
        RunLocks {
            database: database.to_path_buf(),
            held: HashMap::new(),
        }
    }

    /// `demo.sqlite.mig-run-7.lock` beside `demo.sqlite`.
    pub fn path(&self, run_id: i64) -> PathBuf {
        let mut name = self.database.file_name().unwrap_or_default().to_owned();
        name.push(format!(".mig-run-{run_id}.lock"));
        self.database.with_file_name(name)
    }

    pub fn hold(&mut self, run_id: i64) -> io::Result<()> {
        if let Some((_, holders)) = self.held.get_mut(&run_id) {
            *holders += 1;
            return Ok(());
        }
        let path = self.path(run_id);
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock_shared()?;
            // A process letting go removes the file once no one holds it; one that opened it
            // just before would hold a removed file, which no status sees: open it again.
            if is_at(&file, &path)? {
                self.held.insert(run_id, (file, 1));
                return Ok(());
            }
        }
    }

    /// Lets go of `run_id`, and removes its lock file when no other process holds it, so
    /// none is left behind a run that ends.
    pub fn let_go(&mut self, run_id: i64) {
        match self.held.get_mut(&run_id) {
            None => return,
            Some((_, holders)) if *holders > 1 => {
                *holders -= 1;
                return;
            }
            Some(_) => {}
        }
        // Dropping the file lets go of its lock.
        self.held.remove(&run_id);
        let path = self.path(run_id);
        // Taken alone first, so the file is never removed from under a process holding it.
        // Where that fails another process holds the run, and removes the file itself.
        if let Ok(file) = File::open(&path) {
            if file.try_lock().is_ok() && is_at(&file, &path).unwrap_or(false) {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// Whether some process (this one too) holds `run_id`.
    pub fn is_held(&self, run_id: i64) -> io::Result<bool> {
        let file = match File::open(self.path(run_id)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

/// Whether `file` is the one at `path` now, not one removed from there since it was opened.
fn is_at(file: &File, path: &Path) -> io::Result<bool> {
    let (open, there) = match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(there)) => (open, there),
        (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    Ok(open.dev() == there.dev() && open.ino() == there.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_held_while_some_holder_holds_it_and_leaves_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("db.sqlite");
        let (mut one, mut two) = (RunLocks::new(&database), RunLocks::new(&database));
        assert!(!one.is_held(7).unwrap());
        one.hold(7).unwrap();
        two.hold(7).unwrap();
        one.hold(7).unwrap();
        assert!(two.is_held(7).unwrap());
        assert!(!two.is_held(8).unwrap());
        one.let_go(7);
        one.let_go(7);
        assert!(one.is_held(7).unwrap(), "the other holder still holds it");
        assert!(dir.path().join("db.sqlite.mig-run-7.lock").exists());
        two.let_go(7);
        assert!(!one.is_held(7).unwrap());
        assert!(!dir.path().join("db.sqlite.mig-run-7.lock").exists());
    }
}
