//! The embedded default store. A run (or rollback) switches the database to WAL as it is
//! about to write, so readers (the
//! application's, `status`, validations) never wait for a batch; each batch is one
//! `BEGIN IMMEDIATE` transaction, so no other writer can change the batch's rows while it
//! computes their new values, writes them and backs them up.

use super::run_locks::RunLocks;
use super::sqlite_checkpointer::Checkpointer;
use super::sqlite_functions::{self, Concat};
use super::{
    ensure_run_position, legend, quote_ident, unique_count_alias, BackupSize, BatchOutcome,
    BatchRequest, BatchStep, Contention, DatabaseNotes, Failures, ReplicaLag, RollbackOutcome,
    RunRecord, RunStatus, Store, StoreError, FINAL_STATUSES_SQL, NOT_A_KEY,
};
use crate::compile::{
    Check, ColumnLimits, ColumnValues, Schema, TableSchema, Validation, ValueKinds,
};
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, Function, Literal, Span, UnaryOp};
use crate::value::{self, Fnv, Value, ValueView};
use rusqlite::{
    ffi, params, params_from_iter, Connection, ErrorCode, OptionalExtension, ParamsFromIter,
};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STATE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS _mig_runs (
    id INTEGER PRIMARY KEY,
    migration TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    checkpoint,
    processed INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    batches INTEGER NOT NULL DEFAULT 0,
    row_limit INTEGER,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    message TEXT,
    pruned_at TEXT,
    key_order TEXT
);
CREATE TABLE IF NOT EXISTS _mig_backup (
    run_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    columns TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    rows BLOB NOT NULL,
    restored INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, batch)
);
CREATE TABLE IF NOT EXISTS _mig_conflicts (
    run_id INTEGER NOT NULL,
    key,
    col TEXT NOT NULL,
    old,
    written,
    current
);
";

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// SQLite takes its busy timeout as a C int of milliseconds (about 24.8 days) and rusqlite
/// panics beyond it; a longer `lock_timeout` waits this long instead.
const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

pub struct SqliteStore {
    conn: Connection,
    /// The database file, as errors name it.
    path: String,
    /// How long a lock held by another connection is waited for.
    patience: Duration,
    /// What `mig_capture` recorded during the running batch's UPDATE.
    captured: Arc<Mutex<Captured>>,
    /// The SQL of the step the last batch ran, kept for the run's next batch: rendering it
    /// reads the table's column types.
    batch_sql: Option<(BatchStep, Arc<BatchSql>)>,
    /// Copies the WAL into the database file off the batch's path; `None` where SQLite
    /// does it itself (no file, not in WAL mode).
    checkpointer: Option<Checkpointer>,
    /// Whether the connection keeps temporary files in memory (`temp_store`): see
    /// `keep_temporary_files`.
    temp_in_memory: bool,
    /// The runs this process works on, in lock files beside the database.
    run_locks: RunLocks,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some(checkpointer) = self.checkpointer.take() {
            checkpointer.stop(&self.conn);
        }
    }
}

/// The set columns of the rows the running batch's UPDATE changed, encoded as they were
/// captured (`value::encode`'s bytes), so recording a row allocates nothing of its own.
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    entries: Vec<CapturedColumn>,
    /// Set by `mig_unguarded()` when the batch's UPDATE met a row that SQLite's own `||`
    /// would not turn into the interpreter's value: that row is left to `rest_write`.
    unguarded: bool,
}

/// One set column of one updated row: where its key and its old and new values lie in
/// `Captured::bytes`.
struct CapturedColumn {
    column: i64,
    key: std::ops::Range<usize>,
    values: std::ops::Range<usize>,
}

impl SqliteStore {
    /// The triggers of `table` that fire on UPDATE, each as its `CREATE TRIGGER` reads up
    /// to its body, without `CREATE`.
    fn update_triggers(&self, table: &str) -> rusqlite::Result<Vec<String>> {
        let mut statement = self.conn.prepare(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' \
             AND tbl_name = ?1 COLLATE NOCASE ORDER BY name",
        )?;
        let definitions = statement
            .query_map([table], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(definitions
            .iter()
            .filter_map(|sql| update_trigger_header(sql))
            .collect())
    }

    /// Opens `path` to read it: the journal mode and mig's tables wait for `prepare_state`.
    /// Another connection's lock that outlasts `lock_timeout` is a lock timeout, as it is for
    /// a batch: the database is there, only busy.
    pub fn open(path: &Path, lock_timeout: Duration) -> Result<SqliteStore, StoreError> {
        let named = path.display().to_string();
        let cannot_open = |e: rusqlite::Error| StoreError::Open {
            path: named.clone(),
            message: e.to_string(),
        };
        let started = Instant::now();
        let conn = Connection::open(path).map_err(cannot_open)?;
        Self::with_connection(conn, named.clone(), lock_timeout).map_err(|e| match e {
            StoreError::Sqlite(e) if is_busy(&e) => lock_error(e, started),
            StoreError::Sqlite(e) => cannot_open(e),
            other => other,
        })
    }

    fn with_connection(
        conn: Connection,
        path: String,
        lock_timeout: Duration,
    ) -> Result<SqliteStore, StoreError> {
        let patience = lock_timeout.min(MAX_BUSY_TIMEOUT);
        conn.busy_timeout(patience)?;
        // NORMAL is durable against a killed process in WAL mode; only an OS crash or power
        // loss may drop the last commits, and then the checkpoint is dropped with them.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        sqlite_functions::register(&conn)?;
        let captured = Arc::new(Mutex::new(Captured::default()));
        register_capture(&conn, Arc::clone(&captured))?;
        register_unguarded(&conn, Arc::clone(&captured))?;
        let run_locks = RunLocks::new(Path::new(&path));
        Ok(SqliteStore {
            conn,
            path,
            patience,
            captured,
            batch_sql: None,
            checkpointer: None,
            temp_in_memory: false,
            run_locks,
        })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs `work` inside `BEGIN IMMEDIATE … COMMIT`, rolling back on any error. Also
    /// answers how long the write lock was held, from `BEGIN` through `COMMIT`.
    fn transaction<T>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<(T, Duration), StoreError> {
        self.keep_temporary_files(true)?;
        let started = Instant::now();
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| lock_error(e, started))?;
        let locked = Instant::now();
        sqlite_functions::take_raised();
        match work(&self.conn) {
            Ok(value) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok((value, locked.elapsed())),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(lock_error(e, started))
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(raised(e))
            }
        }
    }

    /// Where SQLite keeps the connection's temporary files: in memory for write transactions,
    /// on disk for validations.
    ///
    /// Every batch UPDATE calls functions, so SQLite keeps a statement journal for it (the
    /// original of each page it changes, to undo the statement alone). Past 64 KiB it spills
    /// that journal to a temporary file, which a batch of 1,000 rows did every time: about
    /// 5 % of a backfill's time (BENCHMARKS.md). In memory the journal never spills, however
    /// large the batch (raising the spill threshold instead made SQLite write the journal in
    /// one call larger than its unix VFS writes, and every batch past 4 MiB failed with
    /// "database or disk is full"). A batch's journal holds at most the pages the batch
    /// changes; a validation's sort (the window of a `unique` check) holds the whole table,
    /// so validations keep their temporary files on disk. SQLite reads the setting when a
    /// transaction begins, and changes it only outside one.
    fn keep_temporary_files(&mut self, in_memory: bool) -> Result<(), StoreError> {
        if self.temp_in_memory != in_memory {
            let mode = if in_memory { "MEMORY" } else { "FILE" };
            self.conn.pragma_update(None, "temp_store", mode)?;
            self.temp_in_memory = in_memory;
        }
        Ok(())
    }

    /// The SQL of `step`'s batches, rendered once per run rather than once per batch.
    fn batch_sql(&mut self, step: &BatchStep) -> Result<Arc<BatchSql>, StoreError> {
        if let Some((cached, sql)) = &self.batch_sql {
            if cached == step {
                return Ok(Arc::clone(sql));
            }
        }
        let sql = Arc::new(batch_sql(step, &self.affinities(&step.table)?));
        self.batch_sql = Some((step.clone(), Arc::clone(&sql)));
        Ok(sql)
    }

    /// The type affinity of each column of `table`.
    fn affinities(&self, table: &str) -> Result<Affinities, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, type FROM pragma_table_info(?1)")?;
        let columns = stmt.query_map([table], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Affinity::of_declared(&r.get::<_, String>(1)?),
            ))
        })?;
        Ok(Affinities(columns.collect::<Result<_, _>>()?))
    }

    fn table_schema(&self, name: &str) -> Result<TableSchema, StoreError> {
        // `table_xinfo`, not `table_info`: only it lists generated columns (hidden 2 and 3),
        // which would otherwise be "unknown" to `mig check` instead of refused as set targets.
        let mut stmt = self.conn.prepare_cached(
            "SELECT name, pk, hidden, \"notnull\", type FROM pragma_table_xinfo(?1) \
             WHERE hidden <> 1 ORDER BY cid",
        )?;
        let rows = stmt.query_map([name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let rows: Vec<(String, i64, i64, bool, String)> = rows.collect::<Result<_, _>>()?;
        let unique = self.unique_index_collations(name)?;
        let storage = self.table_storage(name)?;
        let mut schema = TableSchema {
            name: name.to_string(),
            ..TableSchema::default()
        };
        let key_width = rows.iter().filter(|(_, pk, ..)| *pk > 0).count();
        let mut key: Vec<(i64, String)> = Vec::new();
        for (column, pk, hidden, not_null, declared) in rows {
            let stored = if pk > 0 && key_width == 1 && storage.rowid_alias {
                ColumnStorage::Rowid
            } else if storage.strict && hidden == 0 {
                ColumnStorage::Strict
            } else {
                ColumnStorage::Affinity
            };
            if let Some(values) = column_values(&declared, stored) {
                schema.values.insert(column.clone(), values);
            }
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            // A primary key walks as it always has: SQLite lets a non-integer one hold NULL,
            // but a table keyed so is its own choice, not a column a spec picked. One column
            // of a composite key is no key: its values repeat.
            let keys = (pk > 0 && key_width == 1) || (not_null && unique.contains_key(&column));
            let unwalkable = if keys {
                self.collation_mismatch(name, &column, unique.get(&column))?
            } else {
                Some(NOT_A_KEY.into())
            };
            let limits = ColumnLimits {
                unwritable: (hidden > 0)
                    .then(|| "is a generated column: SQLite computes its values".into()),
                unwalkable,
                ..ColumnLimits::default()
            };
            if limits != ColumnLimits::default() {
                schema.limits.insert(column.clone(), limits);
            }
            schema.columns.push(column);
        }
        key.sort();
        schema.primary_key = key.into_iter().map(|(_, c)| c).collect();
        Ok(schema)
    }

    /// The columns of `table` that a unique index covers alone, whole (not partial) and by
    /// name (not an expression), each with the collations of those indexes (a primary key's
    /// own index among them, except for an INTEGER PRIMARY KEY, which has none).
    /// Whether `table` is STRICT, and whether its one-column primary key is its rowid: a
    /// rowid table's primary key has an index of its own (origin `pk`) unless it is the rowid,
    /// which is how SQLite tells `INTEGER PRIMARY KEY` from the `INTEGER PRIMARY KEY DESC`
    /// that is not.
    fn table_storage(&self, table: &str) -> Result<TableStorage, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT l.strict, NOT l.wr AND NOT EXISTS \
             (SELECT 1 FROM pragma_index_list(?1) WHERE origin = 'pk') \
             FROM pragma_table_list(?1) AS l WHERE l.schema = 'main'",
        )?;
        let storage = stmt
            .query_row([table], |r| {
                Ok(TableStorage {
                    strict: r.get(0)?,
                    rowid_alias: r.get(1)?,
                })
            })
            .optional()?;
        Ok(storage.unwrap_or_default())
    }

    fn unique_index_collations(
        &self,
        table: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT min(i.name), min(i.coll) FROM pragma_index_list(?1) AS l, \
             pragma_index_xinfo(l.name) AS i \
             WHERE l.\"unique\" AND NOT l.partial AND i.key GROUP BY l.name \
             HAVING count(*) = 1 AND min(i.cid) >= 0",
        )?;
        let rows = stmt.query_map([table], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut collations: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            let (column, collation) = row?;
            collations.entry(column).or_default().push(collation);
        }
        Ok(collations)
    }

    /// Why `column` cannot key a walk although an index makes it unique: every comparison of
    /// a walk (`key > ?`, `ORDER BY key`, a rollback's `key = ?`) uses the column's collation,
    /// but the index promises unique values only under its own. A NOCASE column whose values
    /// are unique under BINARY holds 'ann' and 'Ann', which a walk takes for one key: a batch
    /// skipped one of them and a rollback restored each one's old value into the other.
    /// `indexes` is None for an INTEGER PRIMARY KEY, which holds integers only.
    fn collation_mismatch(
        &self,
        table: &str,
        column: &str,
        indexes: Option<&Vec<String>>,
    ) -> Result<Option<String>, StoreError> {
        let Some(indexes) = indexes else {
            return Ok(None);
        };
        let compared = column_collation(&self.conn, table, column)?;
        // Values unique under any collation are distinct in bytes, so a BINARY column is a
        // key whatever collation its unique index compares in.
        if compared.eq_ignore_ascii_case("BINARY")
            || indexes.iter().any(|c| c.eq_ignore_ascii_case(&compared))
        {
            return Ok(None);
        }
        let index = indexes.join(" or ");
        Ok(Some(format!(
            "is compared in collation {compared}, but the unique index that makes it a key \
             compares in {index}: values unique under {index} can be equal under {compared} \
             ({compared} takes some values that differ under {index} for one, as NOCASE takes \
             'ann' and 'Ann'), so keyset batches would skip rows \
             and a rollback would restore one row's old values into another; declare the \
             column COLLATE {index}, or make it unique under its own collation \
             (CREATE UNIQUE INDEX … ({column} COLLATE {compared})), or name another key"
        )))
    }
}

/// The collation SQLite compares `column` of `table` in (BINARY unless declared), as SQLite
/// itself resolves it: no pragma reports a column's collation.
fn column_collation(conn: &Connection, table: &str, column: &str) -> Result<String, StoreError> {
    let name = |s: &str| {
        std::ffi::CString::new(s)
            .map_err(|_| StoreError::Unsupported(format!("the name {s:?} holds a NUL character")))
    };
    let (c_table, c_column) = (name(table)?, name(column)?);
    let mut collation: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: `conn.handle()` is a live connection; the names are NUL-terminated and outlive
    // the call; the outputs SQLite does not set stay null, which it allows. The collation's
    // text is SQLite's and lives until the next call on the connection, so it is copied
    // before any.
    let (code, found) = unsafe {
        let code = ffi::sqlite3_table_column_metadata(
            conn.handle(),
            c"main".as_ptr(),
            c_table.as_ptr(),
            c_column.as_ptr(),
            std::ptr::null_mut(),
            &mut collation,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        let found = (!collation.is_null()).then(|| {
            std::ffi::CStr::from_ptr(collation)
                .to_string_lossy()
                .into_owned()
        });
        (code, found)
    };
    if code != ffi::SQLITE_OK {
        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            ffi::Error::new(code),
            Some(format!(
                "cannot read the collation of column {column} of {table}"
            )),
        )));
    }
    Ok(found.unwrap_or_else(|| "BINARY".into()))
}

/// `mig_capture(column, key, old, new)` records one set column of a row the batch's UPDATE is
/// changing and returns `new`. The UPDATE calls it in its SET, which SQLite evaluates only for
/// rows its WHERE lets through: the backup is taken in the same pass as the write, with no
/// separate read of the batch. Not deterministic, so SQLite never folds or skips a call.
///
/// It is registered through SQLite's C interface rather than rusqlite's closure wrapper: it
/// runs once per changed row, and handing `new` back with `sqlite3_result_value` copies it
/// once, where the wrapper converted it to an owned Rust value and copied it again (about
/// 700 of a backfill's instructions per row, measured with callgrind).
fn register_capture(conn: &Connection, captured: Arc<Mutex<Captured>>) -> rusqlite::Result<()> {
    let data = Arc::into_raw(captured) as *mut c_void;
    // SAFETY: `conn.handle()` is the live connection this store owns. SQLite keeps `data` as
    // the function's user data and calls `release_captured` exactly once when the function
    // is replaced or the connection closes, which gives back the reference taken here.
    let code = unsafe {
        ffi::sqlite3_create_function_v2(
            conn.handle(),
            c"mig_capture".as_ptr(),
            4,
            ffi::SQLITE_UTF8,
            data,
            Some(capture),
            None,
            None,
            Some(release_captured),
        )
    };
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None))
    }
}

/// `mig_unguarded()` notes that the batch's UPDATE met a row for its registered-function
/// UPDATE and answers false, so the fast UPDATE passes over the row. Rare, so rusqlite's
/// wrapper is cheap enough; not deterministic, so SQLite calls it for every such row.
fn register_unguarded(conn: &Connection, captured: Arc<Mutex<Captured>>) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "mig_unguarded",
        0,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8,
        move |_| {
            captured.lock().unwrap_or_else(|p| p.into_inner()).unguarded = true;
            Ok(false)
        },
    )
}

/// The body of `mig_capture`. Never unwinds: a value it cannot record (text that is not UTF-8)
/// becomes an SQL error, which fails the batch's UPDATE.
unsafe extern "C" fn capture(
    ctx: *mut ffi::sqlite3_context,
    argc: c_int,
    argv: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: SQLite calls this with the user data given at registration, a live `Arc`'s
    // pointer, and with `argc` (registered as 4) argument values that outlive the call.
    let (captured, args) = unsafe {
        (
            &*(ffi::sqlite3_user_data(ctx) as *const Mutex<Captured>),
            std::slice::from_raw_parts(argv, usize::try_from(argc).unwrap_or(0)),
        )
    };
    let [column, key, old, new] = args else {
        return;
    };
    let mut captured = captured.lock().unwrap_or_else(|p| p.into_inner());
    let Captured { bytes, entries, .. } = &mut *captured;
    let start = bytes.len();
    // SAFETY: each is one of this call's argument values.
    let recorded = unsafe {
        raw_view(*key)
            .map(|v| value::encode_view(v, bytes))
            .map(|()| bytes.len())
            .and_then(|key_end| {
                raw_view(*old).map(|v| value::encode_view(v, bytes))?;
                raw_view(*new).map(|v| value::encode_view(v, bytes))?;
                Ok(key_end)
            })
    };
    match recorded {
        Ok(key_end) => {
            entries.push(CapturedColumn {
                // SAFETY: an argument value of this call.
                column: unsafe { ffi::sqlite3_value_int64(*column) },
                key: start..key_end,
                values: key_end..bytes.len(),
            });
            // SAFETY: `ctx` and `new` are this call's; SQLite copies the value.
            unsafe { ffi::sqlite3_result_value(ctx, *new) };
        }
        Err(message) => {
            bytes.truncate(start);
            // SAFETY: `ctx` is this call's; SQLite copies the message (length given).
            unsafe {
                ffi::sqlite3_result_error(ctx, message.as_ptr().cast(), message.len() as c_int)
            };
        }
    }
}

/// Gives back the reference `register_capture` handed to SQLite.
unsafe extern "C" fn release_captured(data: *mut c_void) {
    // SAFETY: `data` came from `Arc::into_raw` in `register_capture`, released once.
    drop(unsafe { Arc::from_raw(data as *const Mutex<Captured>) });
}

/// What `mig_capture` raises for a row holding text that is not UTF-8: the row's fault, so a
/// resumed batch meets it again (`StoreError::is_data_error`).
pub const NOT_UTF8: &str = "mig_capture: a key, old or new value is text that is not valid UTF-8";

/// An SQLite value as mig's borrowed value; text that is not UTF-8 is refused, as `Value`
/// refuses it.
///
/// # Safety
/// `value` must be a live `sqlite3_value`, and the view must not outlive it.
unsafe fn raw_view<'a>(value: *mut ffi::sqlite3_value) -> Result<ValueView<'a>, &'static str> {
    // SAFETY: the caller's promise; each pointer/length pair is SQLite's own buffer.
    unsafe {
        Ok(match ffi::sqlite3_value_type(value) {
            ffi::SQLITE_INTEGER => ValueView::Integer(ffi::sqlite3_value_int64(value)),
            ffi::SQLITE_FLOAT => ValueView::Real(ffi::sqlite3_value_double(value)),
            ffi::SQLITE_TEXT => {
                let text = ffi::sqlite3_value_text(value);
                let bytes = raw_bytes(text, ffi::sqlite3_value_bytes(value));
                ValueView::Text(std::str::from_utf8(bytes).map_err(|_| NOT_UTF8)?)
            }
            ffi::SQLITE_BLOB => {
                let blob = ffi::sqlite3_value_blob(value);
                ValueView::Blob(raw_bytes(blob.cast(), ffi::sqlite3_value_bytes(value)))
            }
            _ => ValueView::Null,
        })
    }
}

/// # Safety
/// `data` must point to `len` readable bytes, or `len` must be 0.
unsafe fn raw_bytes<'a>(data: *const u8, len: c_int) -> &'a [u8] {
    match usize::try_from(len) {
        // SAFETY: the caller's promise.
        Ok(len) if len > 0 && !data.is_null() => unsafe { std::slice::from_raw_parts(data, len) },
        _ => &[],
    }
}

/// Switches the database to WAL, trying again for up to `patience` while another connection
/// is busy with it. Two connections opening a database at once (the node opens one per
/// request thread) may both find it in rollback mode; the switch needs the whole file, and
/// SQLite answers a connection that would deadlock waiting for it "busy" at once, without
/// waiting: the one that tries again finds the other's switch done.
fn use_wal(conn: &Connection, patience: Duration) -> rusqlite::Result<()> {
    let started = Instant::now();
    loop {
        let result: rusqlite::Result<String> =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0));
        match result {
            Err(e) if is_busy(&e) && started.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other.map(|_| ()),
        }
    }
}

/// Whether SQLite refused for another connection's lock.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A busy database after the busy timeout is a lock timeout; anything else stays itself.
/// Every write outside a batch maps its errors here too, so a lock held by another
/// transaction is "try again" wherever it strikes, not an internal error.
fn lock_error(e: rusqlite::Error, started: Instant) -> StoreError {
    if is_busy(&e) {
        return StoreError::Contention {
            kind: Contention::LockTimeout,
            waited_ms: started.elapsed().as_millis(),
        };
    }
    StoreError::Sqlite(e)
}

/// `e` as the error one of mig's functions raised, where it is that error: SQLite's own holds
/// only its text, and the raised error says that the rows' values failed the expression, as
/// they will again.
fn raised(e: StoreError) -> StoreError {
    match (e, sqlite_functions::take_raised()) {
        (StoreError::Sqlite(rusqlite::Error::SqliteFailure(_, Some(text))), Some(raised))
            if text == raised.to_string() =>
        {
            StoreError::Eval(raised)
        }
        (e, _) => e,
    }
}

/// Runs `read`, taking a database that stayed busy for the busy timeout as a lock timeout:
/// in rollback-journal mode a writer's lock keeps readers out too, and reads outside a batch
/// (the schema, `mig status`, validations) waited for it as a batch does but then failed as
/// internal errors, where a batch says "try again".
fn reading<T>(read: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    let started = Instant::now();
    read().map_err(|e| match e {
        StoreError::Sqlite(e) => lock_error(e, started),
        other => other,
    })
}

/// The SQL of one batch, in two forms: `first` for a run's first batch (no checkpoint yet)
/// and `next` for the batches after a checkpoint.
struct BatchSql {
    first: BatchWalk,
    next: BatchWalk,
    /// The parameters of `BatchWalk::write`: ?1 and ?2 are filled per batch, the expressions'
    /// literals follow.
    write_params: Vec<Value>,
    /// The parameters of `BatchWalk::rest_write`, filled the same way.
    rest_write_params: Vec<Value>,
}

/// How one batch finds its keys and writes them.
struct BatchWalk {
    /// The batch's last key when a whole batch remains: the key `batch size` places after the
    /// checkpoint (?1 the batch size, ?2 the checkpoint). Stepping over keys costs a fraction
    /// of reading them into an aggregate, and the walk starts at the checkpoint, not the
    /// table's first key, so a batch costs the same anywhere in the table.
    last_key: String,
    /// When fewer keys than a batch remain: how many, and the last (?1 the checkpoint).
    rest: String,
    /// The UPDATE of the changed rows after the checkpoint (?1) up to the last key (?2).
    write: String,
    /// When `write` runs `||` natively: the UPDATE of the rows it left to the registered
    /// functions, run only when it met one (see `Captured::unguarded`).
    rest_write: Option<String>,
}

fn quote_col(name: &str) -> String {
    quote_ident(name)
}

/// How a column converts the values it is given (SQLite's "type affinity").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Affinity {
    Integer,
    Text,
    Blob,
    Real,
    Numeric,
}

impl Affinity {
    /// SQLite's rules, the first that applies: a declared type naming INT, then CHAR, CLOB or
    /// TEXT, then BLOB or none, then REAL, FLOA or DOUB; NUMERIC otherwise. (A STRICT table's
    /// `ANY` keeps values as given, as BLOB does, but comes out NUMERIC here: mig treats only
    /// TEXT and REAL apart.)
    fn of_declared(declared: &str) -> Affinity {
        let declared = declared.to_ascii_uppercase();
        let names = |parts: &[&str]| parts.iter().any(|part| declared.contains(part));
        if names(&["INT"]) {
            Affinity::Integer
        } else if names(&["CHAR", "CLOB", "TEXT"]) {
            Affinity::Text
        } else if declared.is_empty() || names(&["BLOB"]) {
            Affinity::Blob
        } else if names(&["REAL", "FLOA", "DOUB"]) {
            Affinity::Real
        } else {
            Affinity::Numeric
        }
    }
}

/// What `table_storage` finds of a table.
#[derive(Debug, Default)]
struct TableStorage {
    strict: bool,
    rowid_alias: bool,
}

/// How SQLite holds a column's values to its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnStorage {
    /// By type affinity: a column converts what it can and keeps the rest as given.
    Affinity,
    /// A STRICT table's (not generated) column: SQLite refuses a value it cannot convert
    /// losslessly to the declared type, so the column holds that type only.
    Strict,
    /// The INTEGER PRIMARY KEY of a rowid table, the rowid itself: integers only.
    Rowid,
}

/// What a column declared `declared` can hold, where SQLite is certain of it. A column of
/// TEXT affinity turns every number it is given into text, so it holds text or blobs (a
/// generated one too, which SQLite does not check even in a STRICT table). Any other column
/// of affinity keeps text it cannot read as its kind of number as text, so it may hold
/// anything. A STRICT table's column holds its type (`ANY` anything), a rowid integers.
pub fn column_values(declared: &str, stored: ColumnStorage) -> Option<ColumnValues> {
    let (kinds, described, because) = match stored {
        ColumnStorage::Rowid => (
            ValueKinds::INTEGER,
            "an integer column",
            "is the table's INTEGER PRIMARY KEY, its rowid in SQLite: it holds only integers"
                .to_string(),
        ),
        ColumnStorage::Strict => {
            let (kinds, described, held) = match declared.to_ascii_uppercase().as_str() {
                "INT" | "INTEGER" => (ValueKinds::INTEGER, "an integer column", "integers"),
                "REAL" => (ValueKinds::REAL, "a real column", "reals"),
                "TEXT" => (ValueKinds::TEXT, "a text column", "text"),
                "BLOB" => (ValueKinds::BLOB, "a blob column", "blobs"),
                _ => return None,
            };
            (
                kinds,
                described,
                format!("is declared `{declared}` in a STRICT table: it holds only {held}"),
            )
        }
        ColumnStorage::Affinity => {
            if Affinity::of_declared(declared) != Affinity::Text {
                return None;
            }
            (
                ValueKinds::TEXT | ValueKinds::BLOB,
                "a text column",
                format!(
                    "is declared `{declared}`, which gives it TEXT affinity in SQLite: it holds \
                     only text or blobs"
                ),
            )
        }
    };
    // SQLite converts what it can on the way in (text of digits into an INTEGER column), so
    // whether a write is taken depends on the value: none is refused before the run.
    Some(ColumnValues {
        kinds,
        accepts: ValueKinds::ANY,
        described: described.into(),
        because,
    })
}

/// The affinity of each column of a table, by name.
#[derive(Default)]
struct Affinities(BTreeMap<String, Affinity>);

impl Affinities {
    fn is(&self, column: &str, affinity: Affinity) -> bool {
        self.0.get(column) == Some(&affinity)
    }
}

fn batch_sql(step: &BatchStep, affinities: &Affinities) -> BatchSql {
    let table = quote_ident(&step.table);
    let key = quote_ident(&step.key);
    let mut needs_text = BTreeSet::new();
    let fast = write_sql(step, affinities, Concat::Unguarded(&mut needs_text));
    let (write, rest_write) = if needs_text.is_empty() {
        (fast, None)
    } else {
        let holds_text = holds_text(&needs_text, affinities);
        let rest = write_sql(step, affinities, Concat::Registered);
        (
            UpdateSql {
                condition: format!("({holds_text} OR mig_unguarded()) AND {}", fast.condition),
                ..fast
            },
            Some(UpdateSql {
                condition: format!("NOT ({holds_text}) AND {}", rest.condition),
                ..rest
            }),
        )
    };
    let update = |sql: &UpdateSql, after: &str| {
        format!(
            "UPDATE OR ABORT {table} SET {} WHERE {after} AND {key} <= ?2 AND {}",
            sql.assignments, sql.condition
        )
    };
    let walk = |after: String| BatchWalk {
        last_key: format!(
            "SELECT {key} FROM {table} WHERE {} ORDER BY {key} LIMIT 1 OFFSET ?1 - 1",
            after.replace("?1", "?2")
        ),
        rest: format!("SELECT count(*), max({key}) FROM {table} WHERE {after}"),
        write: update(&write, &after),
        rest_write: rest_write.as_ref().map(|rest| update(rest, &after)),
    };
    BatchSql {
        // `?1 IS NULL` keeps the parameter numbering of `next`; the key's own range test stays
        // a plain comparison, which SQLite turns into a seek.
        first: walk(format!("{key} IS NOT NULL AND ?1 IS NULL")),
        next: walk(format!("{key} > ?1")),
        write_params: write.params,
        rest_write_params: rest_write.map(|rest| rest.params).unwrap_or_default(),
    }
}

/// True, never NULL, for a row whose `columns` each hold NULL, text or an integer: the values
/// SQLite's `||` turns into the interpreter's text. Once per row, in the UPDATE's WHERE. A
/// column of TEXT affinity holds only NULL, text or blobs, and SQLite orders every blob after
/// every text, so one comparison with the empty blob tells them apart; that costs about half
/// of `typeof`, which any other column needs. Written as `c < x'' OR c IS NULL` rather than
/// `(c < x'') IS NOT 0` so SQLite codes it as jumps, not as a value it then tests.
fn holds_text(columns: &BTreeSet<String>, affinities: &Affinities) -> String {
    let tests: Vec<String> = columns
        .iter()
        .map(|column| {
            let quoted = quote_ident(column);
            if affinities.is(column, Affinity::Text) {
                format!("({quoted} < x'' OR {quoted} IS NULL)")
            } else {
                format!("typeof({quoted}) IN ('null', 'text', 'integer')")
            }
        })
        .collect();
    format!("({})", tests.join(" AND "))
}

/// One UPDATE of a batch's changed rows: its SET assignments, its condition beside the key
/// range, and their parameters (?1 and ?2 left for the range).
struct UpdateSql {
    assignments: String,
    condition: String,
    params: Vec<Value>,
}

/// Over the batch's key range the UPDATE is a sequential pass that rewrites the changed rows
/// in place. `IS NOT … COLLATE BINARY` compares with the column's affinity, as the stored
/// value will be, and by bytes whatever the column's collation, so a case-only change is a
/// change. A value that may be a real goes into a column of TEXT affinity through
/// `mig_text_real`, so the column stores the interpreter's text form of it, not SQLite's.
/// Every value goes into a column of REAL affinity through `mig_real_affinity`, so the real
/// the column stores is what is compared and backed up (the comparison's own affinity
/// would keep an integer an integer).
fn write_sql(step: &BatchStep, affinities: &Affinities, mut concat: Concat<'_>) -> UpdateSql {
    let key = quote_ident(&step.key);
    let mut params = vec![Value::Null; 2];
    let mut assignments = Vec::new();
    let mut differs = Vec::new();
    for (i, (name, value)) in step.sets.iter().enumerate() {
        let column = quote_ident(name);
        let mut new =
            sqlite_functions::render_with(value, &quote_col, &mut params, concat.reborrow());
        if affinities.is(name, Affinity::Text) && may_be_real(value, affinities) {
            new = format!("mig_text_real({new})");
        } else if affinities.is(name, Affinity::Real) {
            new = format!("mig_real_affinity({new})");
        }
        differs.push(differs_from_old(value, &column, &new));
        assignments.push(format!(
            "{column} = mig_capture({i}, {key}, {column}, {new})"
        ));
    }
    let mut condition = format!("({})", differs.join(" OR "));
    if let Some(filter) = &step.filter {
        let filter = sqlite_functions::render_predicate_with(
            filter,
            &quote_col,
            &mut params,
            concat.reborrow(),
        );
        condition = format!("{filter} AND {condition}");
    }
    UpdateSql {
        assignments: assignments.join(", "),
        condition,
        params,
    }
}

/// Whether `value` may compute a real, reading reals only from literals and from columns
/// that lack TEXT affinity (which stores a real as text). The rest are left unwrapped: a
/// function call per row would cost a backfill's `||` chain, the common set, for nothing.
fn may_be_real(value: &Expr, affinities: &Affinities) -> bool {
    let real = |e: &Expr| may_be_real(e, affinities);
    match &value.kind {
        ExprKind::Column(column) => !affinities.is(column, Affinity::Text),
        ExprKind::Literal(literal) => matches!(literal, Literal::Real(_)),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => real(operand),
        ExprKind::Binary { op, left, right } => {
            matches!(
                op,
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod
            ) && (real(left) || real(right))
        }
        ExprKind::Call { function, args } => match Function::lookup(&function.name) {
            Some(Function::Coalesce) => args.iter().any(real),
            Some(Function::Nullif | Function::Abs | Function::Round) => {
                args.first().is_some_and(real)
            }
            Some(_) => false,
            None => true,
        },
        // Truth values and `not`: integers or NULL.
        ExprKind::Unary { .. }
        | ExprKind::IsNull { .. }
        | ExprKind::InList { .. }
        | ExprKind::Between { .. }
        | ExprKind::Matches { .. } => false,
    }
}

/// SQL that is true where the set's new value `new` is not the column's old value. Where
/// the old value is NULL and `new` is NULL only through a NULL column, whether it differs
/// needs only those columns' NULL tests, not `new`'s value: backfilling a new column, every
/// row is such a row, and the UPDATE then computes `new` once per row (in its SET), not twice.
fn differs_from_old(value: &Expr, column: &str, new: &str) -> String {
    let compared = format!("({new}) IS NOT {column} COLLATE BINARY");
    match sqlite_functions::null_only_through(value) {
        Some(columns) => {
            let inputs: String = columns
                .iter()
                .map(|c| format!(" AND {} IS NOT NULL", quote_col(c)))
                .collect();
            format!("(({column} IS NULL{inputs}) OR {compared})")
        }
        None => compared,
    }
}

const BACKUP_SQL: &str =
    "INSERT INTO _mig_backup (run_id, batch, columns, row_count, rows) VALUES (?1, ?2, ?3, ?4, ?5)";

/// An UPDATE's parameters: the batch's range as ?1 and ?2, then the expressions' literals,
/// which follow the two places `write_sql` left for the range.
fn with_range<'a>(
    after: &'a Value,
    last: &'a Value,
    params: &'a [Value],
) -> ParamsFromIter<impl Iterator<Item = &'a Value>> {
    params_from_iter([after, last].into_iter().chain(&params[2..]))
}

/// How many keys the batch after `after` holds (at most `limit`), and its last key.
fn batch_range(
    conn: &Connection,
    walk: &BatchWalk,
    limit: i64,
    after: &Value,
) -> Result<(i64, Value), StoreError> {
    if limit <= 0 {
        return Ok((0, Value::Null));
    }
    let last: Option<Value> = conn
        .prepare_cached(&walk.last_key)?
        .query_row(params![limit, after], |r| r.get(0))
        .optional()?;
    Ok(match last {
        Some(last) => (limit, last),
        None => conn
            .prepare_cached(&walk.rest)?
            .query_row([after], |r| Ok((r.get(0)?, r.get(1)?)))?,
    })
}

const RUN_POSITION_SQL: &str = "SELECT status, checkpoint FROM _mig_runs WHERE id = ?1";

/// A batch goes ahead only if its run is still running at the checkpoint this process
/// knows: otherwise another process resumed it or a rollback started, and writing would
/// overtake them.
fn check_run_position(conn: &Connection, request: &BatchRequest<'_>) -> Result<(), StoreError> {
    let (status, checkpoint): (String, Value) = conn
        .prepare_cached(RUN_POSITION_SQL)?
        .query_row([request.run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    ensure_run_position(request, status, checkpoint)
}

/// Packs what the UPDATE captured into one backup record: per row its key, then the old and
/// new value of each set column in order. A record per batch, not a row per updated row:
/// writing one row per updated row doubled a backfill's cost.
fn pack(captured: &Captured, columns: usize, batch_no: i64) -> Result<(u64, Vec<u8>), StoreError> {
    let inconsistent = || {
        StoreError::Inconsistent(format!(
            "batch {batch_no}: the UPDATE's captured values do not form whole rows"
        ))
    };
    let rows = captured.entries.len() / columns.max(1);
    if columns == 1 {
        // One set column: the captured bytes are already key, old, new for each row.
        if captured.entries.iter().any(|c| c.column != 0) {
            return Err(inconsistent());
        }
        return Ok((rows as u64, captured.bytes.clone()));
    }
    let bytes = &captured.bytes;
    let mut record = Vec::with_capacity(bytes.len());
    for row in captured.entries.chunks(columns) {
        let mut ordered: Vec<&CapturedColumn> = row.iter().collect();
        ordered.sort_by_key(|c| c.column);
        let key = &bytes[row[0].key.clone()];
        let whole = ordered.len() == columns
            && ordered
                .iter()
                .enumerate()
                .all(|(i, c)| c.column == i as i64 && bytes[c.key.clone()] == *key);
        if !whole {
            return Err(inconsistent());
        }
        record.extend_from_slice(key);
        for c in ordered {
            record.extend_from_slice(&bytes[c.values.clone()]);
        }
    }
    Ok((rows as u64, record))
}

const CHECKPOINT_SQL: &str = "UPDATE _mig_runs SET checkpoint = ?1, processed = processed + ?2, \
     updated = updated + ?3, batches = batches + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?4";

fn read_run(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get("status")?;
    Ok(RunRecord {
        id: row.get("id")?,
        migration: row.get("migration")?,
        spec_hash: row.get("spec_hash")?,
        spec: row.get("spec")?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        checkpoint: match row.get("checkpoint")? {
            Value::Null => None,
            v => Some(v),
        },
        processed: row.get::<_, i64>("processed")? as u64,
        updated: row.get::<_, i64>("updated")? as u64,
        batches: row.get("batches")?,
        row_limit: row.get::<_, Option<i64>>("row_limit")?.map(|n| n as u64),
        started_at: row.get("started_at")?,
        updated_at: row.get("updated_at")?,
        message: row.get("message")?,
        shared: false,
        pruned_at: match row.get("pruned_at") {
            Err(rusqlite::Error::InvalidColumnName(_)) => None,
            read => read?,
        },
        key_order: match row.get("key_order") {
            Err(rusqlite::Error::InvalidColumnName(_)) => None,
            read => read?,
        },
    })
}

/// Adds `_mig_runs.pruned_at` and `key_order` and `_mig_backup.restored` to a database whose
/// state tables an earlier `mig` made; until then `read_run` takes its runs as never pruned,
/// which they were not by a prune that marks, and no record was partly restored, and their
/// key's order as unknown.
fn add_later_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (table, column, definition) in [
        ("_mig_runs", "pruned_at", "TEXT"),
        ("_mig_runs", "key_order", "TEXT"),
        ("_mig_backup", "restored", "INTEGER NOT NULL DEFAULT 0"),
    ] {
        let present: bool = conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    Ok(())
}

/// A validation failure term per check, as SQL over the row (and the unique counts).
fn failure_terms(
    validation: &Validation,
    table_columns: &[String],
    unique_counts: &mut Vec<(Vec<String>, String)>,
    params: &mut Vec<Value>,
) -> String {
    let terms: Vec<String> = validation
        .checks
        .iter()
        .map(|check| match check {
            Check::NotNull(columns) => columns
                .iter()
                .map(|c| format!("{} IS NULL", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" OR "),
            Check::Unique(columns) => {
                let alias = unique_count_alias(unique_counts.len(), table_columns);
                unique_counts.push((columns.clone(), alias.clone()));
                let present: Vec<String> = columns
                    .iter()
                    .map(|c| format!("{} IS NOT NULL", quote_ident(c)))
                    .collect();
                format!("({} AND {alias} > 1)", present.join(" AND "))
            }
            Check::Expect(predicate) => {
                let negated = Expr {
                    kind: ExprKind::Unary {
                        op: UnaryOp::Not,
                        operand: Box::new(predicate.clone()),
                    },
                    span: Span::default(),
                };
                format!(
                    "coalesce({}, 0)",
                    sqlite_functions::render_predicate(&negated, &quote_col, params)
                )
            }
        })
        .map(|t| format!("({t})"))
        .collect();
    terms.join(" OR ")
}

impl Store for SqliteStore {
    fn schema(&mut self) -> Result<Schema, StoreError> {
        reading(|| {
            let names: Vec<String> = {
                // Virtual tables are left out: mig cannot walk them, and reading the columns of
                // one whose module (an extension: sqlite-vec, spatialite) this process lacks
                // fails, which once failed every command on every table of the database.
                let mut stmt = self.conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_mig\\_%' ESCAPE '\\' \
                 AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name",
            )?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect::<Result<_, _>>()?
            };
            let tables = names
                .iter()
                .map(|n| self.table_schema(n))
                .collect::<Result<_, _>>()?;
            Ok(Schema { tables })
        })
    }

    /// WAL only for writing: the switch outlives mig (the journal mode is the database's, not
    /// the connection's), and a command that only reads, or is refused before it writes, has
    /// no writes to keep the application's readers from waiting for. A file mig cannot write
    /// (read-only, or on a read-only mount) fails here, naming the file, since switching to
    /// WAL is a write.
    fn prepare_state(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        use_wal(&self.conn, self.patience).map_err(|e| match lock_error(e, started) {
            StoreError::Sqlite(e) => StoreError::Open {
                path: self.path.clone(),
                message: e.to_string(),
            },
            busy => busy,
        })?;
        self.conn
            .execute_batch(STATE_TABLES)
            .map_err(|e| lock_error(e, started))?;
        add_later_columns(&self.conn).map_err(|e| lock_error(e, started))?;
        if self.checkpointer.is_none() {
            self.checkpointer = Checkpointer::start(&self.conn);
        }
        Ok(())
    }

    fn count_rows(&mut self, table: &str) -> Result<u64, StoreError> {
        reading(|| {
            let sql = format!("SELECT count(*) FROM {}", quote_ident(table));
            let n: i64 = self.conn.query_row(&sql, [], |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    /// Read through the key's index, where NULLs sort first: no scan of the table.
    fn null_keys(&mut self, table: &str, key: &str) -> Result<u64, StoreError> {
        reading(|| {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {} IS NULL",
                quote_ident(table),
                quote_ident(key)
            );
            let n: i64 = self.conn.query_row(&sql, [], |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    /// Through the key's index, from the checkpoint on.
    fn count_rows_after(
        &mut self,
        table: &str,
        key: &str,
        checkpoint: &Value,
    ) -> Result<u64, StoreError> {
        reading(|| {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {} > ?1",
                quote_ident(table),
                quote_ident(key)
            );
            let n: i64 = self.conn.query_row(&sql, [checkpoint], |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    fn hold_run(&mut self, run_id: i64) -> Result<(), StoreError> {
        self.run_locks
            .hold(run_id)
            .map_err(|source| StoreError::RunLock {
                path: self.run_locks.path(run_id).display().to_string(),
                source,
            })
    }

    fn let_go_of_run(&mut self, run_id: i64) {
        self.run_locks.let_go(run_id);
    }

    fn held_runs(&mut self, run_ids: &[i64]) -> Result<BTreeSet<i64>, StoreError> {
        let mut held = BTreeSet::new();
        for &run_id in run_ids {
            let is_held = self
                .run_locks
                .is_held(run_id)
                .map_err(|source| StoreError::RunLock {
                    path: self.run_locks.path(run_id).display().to_string(),
                    source,
                })?;
            if is_held {
                held.insert(run_id);
            }
        }
        Ok(held)
    }

    fn runs(&mut self) -> Result<Vec<RunRecord>, StoreError> {
        reading(|| {
            let has_runs: bool = self.conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_mig_runs'",
            [],
            |r| r.get(0),
        )?;
            if !has_runs {
                return Ok(vec![]);
            }
            let mut stmt = self
                .conn
                .prepare_cached("SELECT * FROM _mig_runs ORDER BY id")?;
            let runs = stmt.query_map([], read_run)?.collect::<Result<_, _>>()?;
            Ok(runs)
        })
    }

    fn start_run(
        &mut self,
        migration: &str,
        spec_hash: &str,
        spec: &str,
        row_limit: Option<u64>,
        key_order: Option<&str>,
    ) -> Result<RunRecord, StoreError> {
        let limit = row_limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let sql = format!(
            "INSERT INTO _mig_runs (migration, spec_hash, spec, status, row_limit, key_order, \
             started_at, updated_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5, {NOW}, {NOW}) RETURNING *"
        );
        let started = Instant::now();
        self.conn
            .query_row(
                &sql,
                params![migration, spec_hash, spec, limit, key_order],
                read_run,
            )
            .map_err(|e| lock_error(e, started))
    }

    /// A key takes values of any type, which SQLite orders by type first; text then
    /// compares in the column's collation, which a rebuilt table may have changed.
    fn key_order(&self, table: &str, key: &str) -> Option<String> {
        column_collation(&self.conn, table, key)
            .ok()
            .map(|collation| format!("COLLATE {collation}"))
    }

    fn set_run_status(
        &mut self,
        run_id: i64,
        status: RunStatus,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        let finished = status.is_final();
        let sql = format!(
            "UPDATE _mig_runs SET status = ?1, message = coalesce(?2, message), updated_at = {NOW}, \
             finished_at = CASE WHEN ?3 THEN {NOW} END WHERE id = ?4"
        );
        let started = Instant::now();
        self.conn
            .execute(&sql, params![status.as_str(), message, finished, run_id])
            .map_err(|e| lock_error(e, started))?;
        Ok(())
    }

    fn complete_run(&mut self, run_id: i64, then: RunStatus) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE _mig_runs SET status = ?2, updated_at = {NOW}, \
             finished_at = CASE WHEN ?3 THEN {NOW} END \
             WHERE id = ?1 AND status = 'running'"
        );
        let started = Instant::now();
        let changed = self
            .conn
            .execute(&sql, params![run_id, then.as_str(), then.is_final()])
            .map_err(|e| lock_error(e, started))?;
        Ok(changed == 1)
    }

    fn run_batch(
        &mut self,
        step: &BatchStep,
        request: &BatchRequest<'_>,
    ) -> Result<BatchOutcome, StoreError> {
        let sql = self.batch_sql(step)?;
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        let after = request.after.cloned().unwrap_or(Value::Null);
        let walk = match request.after {
            None => &sql.first,
            Some(_) => &sql.next,
        };
        self.conn
            .busy_timeout(step.lock_timeout.min(MAX_BUSY_TIMEOUT))?;
        let captured = Arc::clone(&self.captured);
        let (outcome, held) = self.transaction(|conn| {
            check_run_position(conn, request)?;
            let (count, last) = batch_range(conn, walk, limit, &after)?;
            if count == 0 {
                return Ok(BatchOutcome {
                    processed: 0,
                    updated: 0,
                    last_key: None,
                    held: Duration::ZERO,
                });
            }
            // A batch that failed earlier may have left captures of its rolled-back UPDATE.
            {
                // Cleared, not replaced: the buffer keeps its capacity from batch to batch.
                let mut captured = captured.lock().unwrap_or_else(|p| p.into_inner());
                captured.bytes.clear();
                captured.entries.clear();
                captured.unguarded = false;
            }
            let mut written = conn.prepare_cached(&walk.write)?.execute(with_range(
                &after,
                &last,
                &sql.write_params,
            ))? as u64;
            let unguarded = captured.lock().unwrap_or_else(|p| p.into_inner()).unguarded;
            if let (true, Some(rest_write)) = (unguarded, &walk.rest_write) {
                written += conn.prepare_cached(rest_write)?.execute(with_range(
                    &after,
                    &last,
                    &sql.rest_write_params,
                ))? as u64;
            }
            let (rows, record) = pack(
                &captured.lock().unwrap_or_else(|p| p.into_inner()),
                step.sets.len(),
                request.batch_no,
            )?;
            if rows != written {
                return Err(StoreError::Inconsistent(format!(
                    "batch {} wrote {written} rows but captured {rows}",
                    request.batch_no
                )));
            }
            if written > 0 {
                let columns: Vec<&str> = step.sets.iter().map(|(c, _)| c.as_str()).collect();
                let columns = serde_json::to_string(&columns).unwrap_or_default();
                conn.prepare_cached(BACKUP_SQL)?.execute(params![
                    request.run_id,
                    request.batch_no,
                    columns,
                    written as i64,
                    record
                ])?;
            }
            conn.prepare_cached(CHECKPOINT_SQL)?.execute(params![
                &last,
                count,
                written as i64,
                request.run_id
            ])?;
            Ok(BatchOutcome {
                processed: count as u64,
                updated: written,
                last_key: Some(last),
                held: Duration::ZERO,
            })
        })?;
        Ok(BatchOutcome { held, ..outcome })
    }

    fn others_busy(&mut self) -> Result<Option<bool>, StoreError> {
        Ok(None)
    }

    fn replica_lag(&mut self) -> Result<ReplicaLag, StoreError> {
        Ok(ReplicaLag::NoReplicas)
    }

    fn locks_every_writer_out(&self) -> bool {
        true
    }

    fn describe_busy(&self) -> String {
        "SQLite shows mig no other connection: every batch counts as beside a busy one".into()
    }

    fn describe_lock_wait(&self) -> &'static str {
        "a batch waits only to begin, for the database's write lock while another \
         connection's write transaction holds it, and holds nothing meanwhile"
    }

    fn database_notes(&mut self, table: &str) -> DatabaseNotes {
        DatabaseNotes {
            update_triggers: self.update_triggers(table).unwrap_or_default(),
            ..DatabaseNotes::default()
        }
    }

    fn describe_setup(&self) -> Option<String> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        (!mode.eq_ignore_ascii_case("wal")).then(|| {
            format!(
                "journal mode: the run switches the database from {mode} to WAL, and it stays \
                 WAL after the run, so the application's readers do not wait for mig's writes"
            )
        })
    }

    fn describe_batch(&self, step: &BatchStep) -> Vec<String> {
        let sql = batch_sql(step, &self.affinities(&step.table).unwrap_or_default());
        let mut lines = vec![
            "BEGIN IMMEDIATE".to_string(),
            RUN_POSITION_SQL.to_string(),
            "  -- ?1 = the run id; the batch stops unless the run is still running at the checkpoint this process knows".to_string(),
            sql.next.last_key,
            legend('?', &["the batch size", "the checkpoint (the first batch has no lower bound)"], &[]),
            "  -- the batch's last key: it steps over keys from the checkpoint on, never from the table's start".to_string(),
            sql.next.rest,
            legend('?', &["the checkpoint"], &[]),
            "  -- only when less than a batch remains: how many keys, and the last".to_string(),
            sql.next.write,
            legend('?', &["the checkpoint", "the batch's last key"], &sql.write_params),
            "  -- mig_capture(column, key, old, new) records each changed row as the UPDATE writes it, and returns new".to_string(),
        ];
        if let Some(rest_write) = sql.next.rest_write {
            lines.extend([
                "  -- `||` runs as SQLite's own operator for rows whose columns hold NULL, text or integers; mig_unguarded() passes over any other row and notes it".to_string(),
                rest_write,
                legend('?', &["the checkpoint", "the batch's last key"], &sql.rest_write_params),
                "  -- only when the UPDATE above passed over a row: those rows, through the interpreter's registered functions".to_string(),
            ]);
        }
        lines.extend([
            BACKUP_SQL.to_string(),
            legend(
                '?',
                &[
                    "the run id",
                    "the batch number",
                    "the set columns",
                    "how many rows changed",
                    "their keys, old and new values, packed",
                ],
                &[],
            ),
            CHECKPOINT_SQL.to_string(),
            legend(
                '?',
                &[
                    "the batch's last key",
                    "rows processed",
                    "rows updated",
                    "the run id",
                ],
                &[],
            ),
            "COMMIT".to_string(),
        ]);
        lines
    }

    fn validate(
        &mut self,
        table: &str,
        key: &str,
        validations: &[&Validation],
        up_to: Option<&Value>,
    ) -> Result<Vec<Failures>, StoreError> {
        reading(|| {
            if validations.is_empty() {
                return Ok(vec![]);
            }
            self.keep_temporary_files(false)?;
            let mut params = vec![up_to.cloned().unwrap_or(Value::Null)];
            let table_columns = self.table_schema(table)?.columns;
            let mut unique_counts = Vec::new();
            let quoted_key = quote_ident(key);
            let aggregates: Vec<String> = validations
                .iter()
                .map(|v| {
                    let terms = failure_terms(v, &table_columns, &mut unique_counts, &mut params);
                    format!(
                        "coalesce(sum(CASE WHEN {terms} THEN 1 ELSE 0 END), 0), \
                         min((CASE WHEN {terms} THEN {quoted_key} END) COLLATE BINARY)"
                    )
                })
                .collect();
            let windows: Vec<String> = unique_counts
                .iter()
                .map(|(columns, alias)| {
                    // Duplicates in bytes, as `=` in an `expect` compares: under a column's
                    // NOCASE collation 'Abc' and 'aBC' were one value.
                    let cols: Vec<String> = columns
                        .iter()
                        .map(|c| format!("{} COLLATE BINARY", quote_ident(c)))
                        .collect();
                    format!(
                        ", count(*) OVER (PARTITION BY {}) AS {alias}",
                        cols.join(", ")
                    )
                })
                .collect();
            let range = match up_to {
                Some(_) => format!(" WHERE {} <= ?1", quote_ident(key)),
                None => " WHERE ?1 IS NULL".to_string(),
            };
            let sql = format!(
                "SELECT {} FROM (SELECT *{} FROM {}){range}",
                aggregates.join(", "),
                windows.concat(),
                quote_ident(table)
            );
            let mut stmt = self.conn.prepare(&sql)?;
            sqlite_functions::take_raised();
            let failures = stmt
                .query_row(params_from_iter(&params), |row| {
                    (0..validations.len())
                        .map(|i| {
                            Ok(Failures {
                                rows: row.get::<_, i64>(2 * i)? as u64,
                                first_key: match row.get::<_, Value>(2 * i + 1)? {
                                    Value::Null => None,
                                    key => Some(key),
                                },
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Failures>>>()
                })
                .map_err(|e| raised(e.into()))?;
            Ok(failures)
        })
    }

    fn backed_up_batches(&mut self, run_id: i64) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT batch FROM _mig_backup WHERE run_id = ?1 ORDER BY batch DESC",
        )?;
        let batches = stmt
            .query_map([run_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(batches)
    }

    /// `length` of a blob reads its size from the record's header, not the blob's pages.
    fn backup_sizes(&mut self) -> Result<BTreeMap<i64, BackupSize>, StoreError> {
        reading(|| {
            let mut stmt = self.conn.prepare_cached(
                "SELECT run_id, count(*), sum(length(rows) + length(columns)) \
                 FROM _mig_backup GROUP BY run_id",
            )?;
            let sizes = stmt
                .query_map([], |r| {
                    let size = BackupSize {
                        records: r.get::<_, i64>(1)? as u64,
                        bytes: r.get::<_, i64>(2)? as u64,
                    };
                    Ok((r.get(0)?, size))
                })?
                .collect::<Result<_, _>>()?;
            Ok(sizes)
        })
    }

    fn rollback_batch(
        &mut self,
        step: &BatchStep,
        run_id: i64,
        batch_no: i64,
        rows: Option<u64>,
    ) -> Result<RollbackOutcome, StoreError> {
        let table = quote_ident(&step.table);
        let key = quote_ident(&step.key);
        self.conn
            .busy_timeout(step.lock_timeout.min(MAX_BUSY_TIMEOUT))?;
        self.transaction(|conn| {
            let Some((now, left)) = rows_to_restore(conn, run_id, batch_no, rows)? else {
                return Ok(RollbackOutcome::default());
            };
            let take = now.len();
            let mut outcome = RollbackOutcome {
                left,
                ..RollbackOutcome::default()
            };
            for (row_key, columns) in now {
                let names: Vec<String> = columns.iter().map(|(c, _, _)| quote_ident(c)).collect();
                let (untouched, current) =
                    current_row(conn, &table, &key, &names, &row_key, &columns)?;
                if untouched {
                    let sets: Vec<String> = names
                        .iter()
                        .enumerate()
                        .map(|(i, n)| format!("{n} = ?{}", i + 2))
                        .collect();
                    let update = format!(
                        "UPDATE OR ABORT {table} SET {} WHERE {key} = ?1",
                        sets.join(", ")
                    );
                    let mut values = vec![&row_key];
                    values.extend(columns.iter().map(|(_, old, _)| old));
                    conn.prepare_cached(&update)?
                        .execute(params_from_iter(values))?;
                    outcome.restored += 1;
                } else {
                    record_conflict(conn, run_id, &row_key, &columns, current.as_deref())?;
                    outcome.conflict_keys.push(row_key);
                }
            }
            // The rows left stay in the record as the run wrote them; only the count of
            // those restored moves.
            if left == 0 {
                conn.prepare_cached("DELETE FROM _mig_backup WHERE run_id = ?1 AND batch = ?2")?
                    .execute(params![run_id, batch_no])?;
            } else {
                conn.prepare_cached(
                    "UPDATE _mig_backup SET restored = restored + ?3 WHERE run_id = ?1 AND batch = ?2",
                )?
                .execute(params![run_id, batch_no, take as i64])?;
            }
            Ok(outcome)
        })
        .map(|(outcome, _)| outcome)
    }

    fn mark_pruned(&mut self, run_id: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE _mig_runs SET pruned_at = coalesce(pruned_at, {NOW}) \
             WHERE id = ?1 AND status IN {FINAL_STATUSES_SQL} \
             AND EXISTS (SELECT 1 FROM _mig_backup WHERE run_id = ?1)"
        );
        let started = Instant::now();
        let marked = self
            .conn
            .execute(&sql, [run_id])
            .map_err(|e| lock_error(e, started))?;
        Ok(marked == 1)
    }

    fn drop_backup(&mut self, run_id: i64, batch_no: i64) -> Result<Option<u64>, StoreError> {
        let sql = "DELETE FROM _mig_backup WHERE run_id = ?1 AND batch = ?2 AND EXISTS \
                   (SELECT 1 FROM _mig_runs WHERE id = ?1 AND pruned_at IS NOT NULL) \
                   RETURNING row_count - restored";
        let started = Instant::now();
        let rows: Option<i64> = self
            .conn
            .prepare_cached(sql)?
            .query_row(params![run_id, batch_no], |r| r.get(0))
            .optional()
            .map_err(|e| lock_error(e, started))?;
        Ok(rows.map(|n| n as u64))
    }

    fn begin_rollback(&mut self, run_id: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE _mig_runs SET status = 'rolling_back', updated_at = {NOW}, finished_at = NULL \
             WHERE id = ?1 AND pruned_at IS NULL"
        );
        let started = Instant::now();
        let begun = self
            .conn
            .execute(&sql, [run_id])
            .map_err(|e| lock_error(e, started))?;
        Ok(begun == 1)
    }

    fn conflict_keys(&mut self, run_id: i64) -> Result<Vec<Value>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT key FROM _mig_conflicts WHERE run_id = ?1 ORDER BY key",
        )?;
        let keys = stmt
            .query_map([run_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(keys)
    }

    fn checksum(&mut self, table: &str, key: &str, columns: &[String]) -> Result<u64, StoreError> {
        reading(|| {
            let mut names = vec![quote_ident(key)];
            names.extend(columns.iter().map(|c| quote_ident(c)));
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {}",
                names.join(", "),
                quote_ident(table),
                quote_ident(key)
            );
            let mut stmt = self.conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            let mut hash = Fnv::default();
            while let Some(row) = rows.next()? {
                for i in 0..names.len() {
                    hash.write_value(&row.get(i)?);
                }
            }
            Ok(hash.finish())
        })
    }
}

/// Whether the row still holds what the run wrote, and its current values (None if it is
/// gone). Compared in SQL, `col IS ?written`, so the column's affinity applies to the
/// written value as it did when the run stored it (an integer written into a TEXT column is
/// stored as text), the same comparison that decided the row changed.
fn current_row(
    conn: &Connection,
    table: &str,
    key: &str,
    names: &[String],
    row_key: &Value,
    columns: &BackedUpColumns,
) -> Result<(bool, Option<Vec<Value>>), StoreError> {
    let same: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n} IS ?{} COLLATE BINARY", i + 2))
        .collect();
    let select = format!(
        "SELECT {}, {} FROM {table} WHERE {key} = ?1",
        same.join(" AND "),
        names.join(", ")
    );
    let mut values = vec![row_key];
    values.extend(columns.iter().map(|(_, _, new)| new));
    let found = conn
        .prepare_cached(&select)?
        .query_row(params_from_iter(values), |r| {
            let untouched: bool = r.get(0)?;
            let current = (0..names.len())
                .map(|i| r.get(i + 1))
                .collect::<rusqlite::Result<Vec<Value>>>()?;
            Ok((untouched, current))
        })
        .optional()?;
    Ok(match found {
        Some((untouched, current)) => (untouched, Some(current)),
        None => (false, None),
    })
}

/// (column, old, new) per column of one backed-up row.
type BackedUpColumns = Vec<(String, Value, Value)>;

/// A backed-up row: its key and its columns' values.
type BackedUpRow = (Value, BackedUpColumns);

/// The next `rows` (or all) of the rows of a batch's backup record a rollback has not
/// restored yet, in key order: each key with its (column, old, new) values, and how many
/// rows the record holds after them; None where the record is gone (another rollback
/// restored it). The rows after them are not decoded.
fn rows_to_restore(
    conn: &Connection,
    run_id: i64,
    batch_no: i64,
    rows: Option<u64>,
) -> Result<Option<(Vec<BackedUpRow>, u64)>, StoreError> {
    type Record = (String, Vec<u8>, i64, i64);
    let Some((columns, record, restored, row_count)): Option<Record> = conn
        .prepare_cached(
            "SELECT columns, rows, restored, row_count FROM _mig_backup \
             WHERE run_id = ?1 AND batch = ?2",
        )?
        .query_row(params![run_id, batch_no], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
    else {
        return Ok(None);
    };
    let (restored, row_count) = (restored.max(0) as u64, row_count.max(0) as u64);
    let take = rows.map_or(u64::MAX, |n| n.max(1));
    let columns: Vec<String> = serde_json::from_str(&columns)
        .map_err(|e| StoreError::Inconsistent(format!("backup of batch {batch_no}: {e}")))?;
    let damaged = |e: value::DecodeError| {
        StoreError::Inconsistent(format!("backup of batch {batch_no}: {e}"))
    };
    let mut decoder = value::Decoder::new(&record);
    let mut part = Vec::new();
    let mut seen = 0;
    while !decoder.is_done() && (part.len() as u64) < take {
        let key = decoder.value().map_err(damaged)?;
        let mut values = Vec::with_capacity(columns.len());
        for column in &columns {
            let old = decoder.value().map_err(damaged)?;
            let new = decoder.value().map_err(damaged)?;
            values.push((column.clone(), old, new));
        }
        seen += 1;
        if seen > restored {
            part.push((key, values));
        }
    }
    let left = row_count.saturating_sub(restored + part.len() as u64);
    Ok(Some((part, left)))
}

fn record_conflict(
    conn: &Connection,
    run_id: i64,
    key: &Value,
    columns: &BackedUpColumns,
    current: Option<&[Value]>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO _mig_conflicts (run_id, key, col, old, written, current) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (i, (column, old, new)) in columns.iter().enumerate() {
        let now = current.map_or(&Value::Null, |c| &c[i]);
        stmt.execute(params![run_id, key, column, old, new, now])?;
    }
    Ok(())
}

/// A trigger's `CREATE TRIGGER` up to its body, on one line and without `CREATE`, where it
/// fires on UPDATE. SQLite keeps only a trigger's text: its event is the word before `ON`,
/// or before `OF` and the columns (`AFTER UPDATE OF b ON t`).
fn update_trigger_header(sql: &str) -> Option<String> {
    let words: Vec<&str> = sql
        .split_whitespace()
        .take_while(|word| !word.eq_ignore_ascii_case("BEGIN"))
        .collect();
    let fires_on_update = words.windows(2).any(|pair| {
        pair[0].eq_ignore_ascii_case("UPDATE")
            && (pair[1].eq_ignore_ascii_case("ON") || pair[1].eq_ignore_ascii_case("OF"))
    });
    let shown = match words.split_first() {
        Some((create, rest)) if create.eq_ignore_ascii_case("CREATE") => rest,
        _ => &words[..],
    };
    fires_on_update.then(|| shown.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn a_trigger_counts_as_an_update_trigger_by_its_event_not_its_name_or_body() {
        let cases = [
            (
                "CREATE TRIGGER note AFTER UPDATE ON t BEGIN INSERT INTO log VALUES (1); END",
                Some("TRIGGER note AFTER UPDATE ON t"),
            ),
            (
                "create trigger x before update of b, c\n  on t for each row begin select 1; end",
                Some("trigger x before update of b, c on t for each row"),
            ),
            ("CREATE TRIGGER update_log AFTER INSERT ON t BEGIN SELECT 1; END", None),
            (
                "CREATE TRIGGER gone AFTER DELETE ON t BEGIN UPDATE u SET n = 1 WHERE id = OLD.id; END",
                None,
            ),
        ];
        for (sql, header) in cases {
            assert_eq!(update_trigger_header(sql).as_deref(), header, "{sql}");
        }
    }

    #[test]
    fn a_declared_type_has_the_affinity_sqlite_gives_it() {
        for (declared, affinity) in [
            ("INTEGER", Affinity::Integer),
            ("unsigned big int", Affinity::Integer),
            ("FLOATING POINT", Affinity::Integer),
            ("VARCHAR(20)", Affinity::Text),
            ("nchar(55)", Affinity::Text),
            ("CLOB", Affinity::Text),
            ("CHARBLOB", Affinity::Text),
            ("", Affinity::Blob),
            ("BLOB", Affinity::Blob),
            ("BLOBREAL", Affinity::Blob),
            ("REAL", Affinity::Real),
            ("double precision", Affinity::Real),
            ("Float", Affinity::Real),
            ("NUMERIC", Affinity::Numeric),
            ("DECIMAL(10,5)", Affinity::Numeric),
            ("STRING", Affinity::Numeric),
        ] {
            assert_eq!(Affinity::of_declared(declared), affinity, "{declared:?}");
        }
    }

    /// A store over a fresh database made by `schema`, and the folder that holds it.
    fn store_over(schema: &str) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(schema)
            .unwrap();
        let store = SqliteStore::open(&path, Duration::from_secs(2)).unwrap();
        (dir, store)
    }

    /// State tables an earlier `mig` made, without `_mig_runs.pruned_at`: their runs read as
    /// never pruned, and preparing the state adds the column, keeping the runs.
    #[test]
    fn state_tables_of_an_earlier_mig_gain_their_later_columns() {
        let earlier = STATE_TABLES.replace(",\n    pruned_at TEXT,\n    key_order TEXT", "");
        assert_ne!(earlier, STATE_TABLES);
        let (_dir, mut store) = store_over(&format!(
            "{earlier} INSERT INTO _mig_runs (migration, spec_hash, spec, status, started_at, \
             updated_at) VALUES ('m', 'h', 's', 'completed', 't', 't');"
        ));
        assert_eq!(store.runs().unwrap()[0].pruned_at, None);
        store.prepare_state().unwrap();
        store.prepare_state().unwrap();
        let runs = store.runs().unwrap();
        assert_eq!((runs.len(), runs[0].pruned_at.clone()), (1, None));
        assert!(
            !store.mark_pruned(runs[0].id).unwrap(),
            "no backup to give up"
        );
        assert_eq!(runs[0].key_order, None, "an earlier run's order is unknown");
        let later = store
            .start_run("m", "h2", "s", None, Some("COLLATE NOCASE"))
            .unwrap();
        assert_eq!(later.key_order.as_deref(), Some("COLLATE NOCASE"));
    }

    /// Only a rowid table's one-column INTEGER PRIMARY KEY is its rowid: not one declared
    /// DESC, not a WITHOUT ROWID table's, not an INT one; and only a STRICT table's columns
    /// hold their declared type, but for ANY and generated ones.
    #[test]
    fn a_column_is_typed_where_sqlite_holds_it_to_its_type() {
        let (_dir, store) = store_over(
            "CREATE TABLE alias (id INTEGER PRIMARY KEY, v);
             CREATE TABLE descending (id INTEGER PRIMARY KEY DESC, v);
             CREATE TABLE clustered (id INTEGER PRIMARY KEY, v) WITHOUT ROWID;
             CREATE TABLE int_key (id INT PRIMARY KEY, v);
             CREATE TABLE pair (id INTEGER, v INTEGER, PRIMARY KEY (id, v));
             CREATE TABLE strict (id TEXT PRIMARY KEY, r REAL, b BLOB, x ANY,
                                  g INTEGER AS (x)) STRICT;",
        );
        let kinds = |table: &str, column: &str| {
            let schema = store.table_schema(table).unwrap();
            schema.values.get(column).map(|v| v.kinds)
        };
        assert_eq!(kinds("alias", "id"), Some(ValueKinds::INTEGER));
        for table in ["descending", "clustered", "int_key", "pair"] {
            assert_eq!(kinds(table, "id"), None, "{table}");
        }
        assert_eq!(kinds("strict", "id"), Some(ValueKinds::TEXT));
        assert_eq!(kinds("strict", "r"), Some(ValueKinds::REAL));
        assert_eq!(kinds("strict", "b"), Some(ValueKinds::BLOB));
        assert_eq!(kinds("strict", "x"), None);
        assert_eq!(kinds("strict", "g"), None);
    }

    /// A run is marked pruned only while it is over, and a backup record goes only of a
    /// marked run: a rollback that began after `mig prune` read the run keeps every record.
    #[test]
    fn a_backup_record_is_dropped_only_of_a_run_marked_while_over() {
        let (_dir, mut store) = store_over("CREATE TABLE t (id INTEGER PRIMARY KEY)");
        store.prepare_state().unwrap();
        let run = store.start_run("m", "hash", "spec", None, None).unwrap();
        store
            .conn
            .execute(
                "INSERT INTO _mig_backup (run_id, batch, columns, row_count, rows) \
                 VALUES (?1, 1, 'b', 7, x'')",
                [run.id],
            )
            .unwrap();
        for status in [
            RunStatus::Running,
            RunStatus::Checking,
            RunStatus::RollingBack,
        ] {
            store.set_run_status(run.id, status, None).unwrap();
            assert!(!store.mark_pruned(run.id).unwrap(), "{status:?}");
            assert_eq!(store.drop_backup(run.id, 1).unwrap(), None, "{status:?}");
        }
        store
            .set_run_status(run.id, RunStatus::Completed, None)
            .unwrap();
        assert_eq!(store.drop_backup(run.id, 1).unwrap(), None, "not marked");
        assert!(store.mark_pruned(run.id).unwrap());
        assert_eq!(store.drop_backup(run.id, 1).unwrap(), Some(7));
        assert_eq!(store.drop_backup(run.id, 1).unwrap(), None);
    }

    /// The node opens a store per request thread: a `status` arriving with the first
    /// `backfill` opens the database while the backfill's store switches it to WAL and
    /// starts writing; and two `mig run`s may switch it at once.
    #[test]
    fn stores_opened_at_the_same_moment_wait_for_each_other() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db.sqlite");
            Connection::open(&path)
                .unwrap()
                .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")
                .unwrap();
            let start = Arc::new(Barrier::new(4));
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    let (path, start) = (path.clone(), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        let mut store = SqliteStore::open(&path, Duration::from_secs(2))?;
                        store.prepare_state()?;
                        // Then writes, as a run does, while the others may still be opening.
                        for _ in 0..20 {
                            store.conn.execute_batch(
                                "BEGIN IMMEDIATE; INSERT INTO t DEFAULT VALUES; COMMIT",
                            )?;
                        }
                        Ok::<(), StoreError>(())
                    })
                })
                .collect();
            for opener in openers {
                if let Err(e) = opener.join().unwrap() {
                    panic!("{e}");
                }
            }
        }
    }
}
