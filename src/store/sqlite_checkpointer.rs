//! Copies a SQLite database's write-ahead log back into the database file on a thread of
//! its own, so that a batch's commit seldom waits for that copy.
//!
//! By default SQLite runs this copy (a checkpoint) inside whichever commit lets the log pass
//! 1,000 pages, with its two fsyncs: in a backfill, about every fortieth batch paid for it,
//! which came to a sixth of the run's time (BENCHMARKS.md). Here a commit past
//! `WAKE_PAGES` only wakes the checkpointer's thread, which runs a PASSIVE checkpoint on a
//! connection of its own while the next batches run: PASSIVE never waits for, and never
//! blocks, a reader or a writer, mig's or the application's.
//!
//! The log file starts over from its beginning when a writer begins a transaction with every
//! page of it copied, and that writer then fsyncs the log's new header: an fsync on the
//! batch's path each time. Waking the checkpointer only past 4,000 pages, not SQLite's 1,000,
//! makes that happen a quarter as often (fsyncs on mig's own thread in a 1,000,000-row
//! backfill: 23, 61 ms in all, against 11). Nor may the copy trail each commit for ever, or
//! the log would never start over and would grow without end: once it passes
//! `CATCH_UP_PAGES`, the committing thread (mig's, after its transaction has ended, so it
//! holds no lock) waits for one round of copying that includes its commit.

use rusqlite::{ffi, Connection, OpenFlags};
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The log size, in pages (16 MiB of 4 KiB pages), past which a commit wakes the checkpointer.
const WAKE_PAGES: c_int = 4000;

/// The log size, in pages, past which a commit waits until the checkpointer has copied it.
const CATCH_UP_PAGES: c_int = 8000;

pub struct Checkpointer {
    /// Also the WAL hook's argument: its address stays put while the store moves.
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    rounds: Mutex<Rounds>,
    changed: Condvar,
}

/// Rounds of copying asked for by commits and done by the thread, counted so that a commit
/// can wait for a round that began after it.
#[derive(Default)]
struct Rounds {
    asked: u64,
    done: u64,
    stopping: bool,
}

impl Shared {
    fn rounds(&self) -> MutexGuard<'_, Rounds> {
        // The lock guards counters only: a panic while holding it leaves them usable.
        self.rounds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Checkpointer {
    /// Takes over `conn`'s checkpoints. Answers `None`, leaving SQLite's own in place, for a
    /// connection not in WAL mode, one without a file (in memory), or when the second
    /// connection or its thread cannot be had.
    pub fn start(conn: &Connection) -> Option<Checkpointer> {
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .ok()?;
        let path = conn.path().filter(|path| !path.is_empty())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        let own = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .ok()?;
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("mig-checkpoint".to_string())
                .spawn(move || copy_when_asked(&own, &shared))
                .ok()?
        };
        // SAFETY: `conn.handle()` is a live connection; the hook's argument points into
        // `shared`, which this Checkpointer keeps alive until `stop` has unregistered the hook.
        unsafe {
            ffi::sqlite3_wal_hook(
                conn.handle(),
                Some(after_commit),
                Arc::as_ptr(&shared) as *mut c_void,
            );
        }
        Some(Checkpointer { shared, thread })
    }

    /// Hands checkpoints back to SQLite (which runs one when `conn` closes) and ends the
    /// thread once its running round, if any, is done. `conn` must be the connection `start`
    /// was given.
    pub fn stop(self, conn: &Connection) {
        // SAFETY: unregistering first means SQLite holds no pointer into `shared` once it is
        // dropped below.
        unsafe {
            ffi::sqlite3_wal_hook(conn.handle(), None, std::ptr::null_mut());
        }
        self.shared.rounds().stopping = true;
        self.shared.changed.notify_all();
        // The thread's only failure would be a panic, and it has nothing left to clean up.
        let _ = self.thread.join();
    }
}

/// SQLite calls this after each of the connection's commits, with the log's size in pages.
unsafe extern "C" fn after_commit(
    shared: *mut c_void,
    _db: *mut ffi::sqlite3,
    _schema: *const c_char,
    pages: c_int,
) -> c_int {
    if pages >= WAKE_PAGES {
        // SAFETY: `shared` is the pointer `start` registered, alive until `stop` unregisters
        // this hook.
        let shared = unsafe { &*(shared as *const Shared) };
        let mut rounds = shared.rounds();
        rounds.asked += 1;
        let mine = rounds.asked;
        shared.changed.notify_all();
        if pages >= CATCH_UP_PAGES {
            while rounds.done < mine && !rounds.stopping {
                rounds = shared
                    .changed
                    .wait(rounds)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
    }
    ffi::SQLITE_OK
}

fn copy_when_asked(conn: &Connection, shared: &Shared) {
    loop {
        let round = {
            let mut rounds = shared.rounds();
            while rounds.done == rounds.asked && !rounds.stopping {
                rounds = shared
                    .changed
                    .wait(rounds)
                    .unwrap_or_else(|p| p.into_inner());
            }
            if rounds.stopping {
                return;
            }
            rounds.asked
        };
        // A failure (another connection's checkpoint running, the file gone) leaves the pages
        // in the log for the next round, or for SQLite's checkpoint at close.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        shared.rounds().done = round;
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::{Duration, Instant};

    const PAGE: u64 = 4096;

    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
            .unwrap();
        conn
    }

    /// One transaction of about `pages` pages of new rows.
    fn commit_pages(conn: &Connection, pages: u64) {
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO t (b) SELECT randomblob(3900) FROM n",
            [pages],
        )
        .unwrap();
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    fn wal(path: &Path) -> std::path::PathBuf {
        path.with_extension("sqlite-wal")
    }

    #[test]
    fn a_commit_past_the_catch_up_mark_returns_copied_and_the_next_starts_the_log_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let conn = open(&path);
        let checkpointer = Checkpointer::start(&conn).expect("a file in WAL mode");
        let before = size(&path);
        let pages = CATCH_UP_PAGES as u64 + 100;
        commit_pages(&conn, pages);
        assert!(
            size(&path) >= before + pages * PAGE,
            "the commit returned before its pages were copied: the database file holds {} bytes",
            size(&path)
        );
        commit_pages(&conn, 1);
        let observer = Connection::open(&path).unwrap();
        let log: i64 = observer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
            .unwrap();
        assert!(log < 10, "the log still holds {log} pages");
        checkpointer.stop(&conn);
    }

    #[test]
    fn pages_reach_the_database_file_without_the_committer_copying_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let conn = open(&path);
        let checkpointer = Checkpointer::start(&conn).expect("a file in WAL mode");
        let before = size(&path);
        // Past the wake-up mark, short of the one where a commit would wait.
        let pages = WAKE_PAGES as u64 + 1000;
        assert!(pages < CATCH_UP_PAGES as u64);
        for _ in 0..pages / 25 {
            commit_pages(&conn, 25);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while size(&path) < before + pages * PAGE && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            size(&path) >= before + pages * PAGE,
            "the database file holds {} bytes",
            size(&path)
        );
        checkpointer.stop(&conn);
    }

    #[test]
    fn stopping_closes_its_connection_so_the_last_close_removes_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let conn = open(&path);
        let checkpointer = Checkpointer::start(&conn).expect("a file in WAL mode");
        commit_pages(&conn, 1100);
        checkpointer.stop(&conn);
        drop(conn);
        assert!(!wal(&path).exists(), "the log outlived every connection");
    }

    #[test]
    fn a_database_in_memory_keeps_sqlites_own_checkpoints() {
        let conn = Connection::open_in_memory().unwrap();
        assert!(Checkpointer::start(&conn).is_none());
    }
}
