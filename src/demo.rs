//! The demo: its database, made from `specs/demo/` when missing.

use rusqlite::Connection;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("loading the seed data failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Builds the demo database at `path` from `schema.sql` and `seed.sql` in `demo_dir`.
/// It is built beside `path` under a name of its own and linked into place only if `path`
/// is still missing: a failure leaves no half-made file, and two processes (or the node's
/// reader and worker) racing to create it never swap a file under an open connection.
pub fn create_database(demo_dir: &Path, path: &Path) -> Result<(), DemoError> {
    let read = |name: &str| {
        let p = demo_dir.join(name);
        std::fs::read_to_string(&p).map_err(|source| DemoError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let schema = read("schema.sql")?;
    let seed = read("seed.sql")?;
    let write_error = |source| DemoError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let partial = path.with_extension(format!(
        "partial-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let built = (|| {
        let conn = Connection::open(&partial)?;
        conn.execute_batch(&format!("BEGIN;\n{schema}\n{seed}\nCOMMIT;"))
    })();
    let linked =
        built
            .map_err(DemoError::from)
            .and_then(|()| match std::fs::hard_link(&partial, path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(write_error(e)),
                _ => Ok(()),
            });
    let _ = std::fs::remove_file(&partial);
    linked
}
