//! Stage 5: the database. Everything that differs between databases lives behind `Store`;
//! the executor above it does not know which one it talks to. Identifiers reaching a store
//! were checked against its live schema and are quoted here; values travel as parameters.

pub mod postgres;
pub mod postgres_sql;
mod postgres_tls;
mod postgres_uuid;
mod run_locks;
pub mod sqlite;
mod sqlite_checkpointer;
pub mod sqlite_functions;

use crate::compile::{Schema, Validation};
use crate::exec::eval::EvalError;
use crate::syntax::ast::Expr;
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// What the database says that changes how a run of a table goes, for `mig plan`: what
/// mig's session may do and see, and what else writing a row sets off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseNotes {
    /// The statement timeout the session runs under, as the server shows it, where one is
    /// set (for mig's role, its database, or in the URL): a batch's statements and each
    /// post-check's scan must end within it.
    pub statement_timeout: Option<String>,
    /// Why `others_busy` cannot see every other session's state, where it cannot: those
    /// count as busy.
    pub unseen_sessions: Option<String>,
    /// The table's triggers that fire on UPDATE, each as its definition reads without its
    /// `CREATE` (`TRIGGER note BEFORE UPDATE ON t FOR EACH ROW …`).
    pub update_triggers: Vec<String>,
    /// The replicas connected now and how far behind, or why mig cannot tell; none where
    /// the store has no replicas.
    pub replicas: Option<Result<ReplicaLag, String>>,
}

/// How far behind the server the replicas streaming from it are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaLag {
    NoReplicas,
    /// `replicas` are connected; the furthest behind has `bytes` of WAL left to replay.
    Behind {
        replicas: u64,
        bytes: u64,
    },
}

/// What another transaction did to a batch, each worth a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contention {
    /// A lock held past `lock_timeout` (on SQLite the database's write lock, past the busy
    /// timeout).
    LockTimeout,
    /// PostgreSQL's deadlock detector cancelled the batch.
    Deadlock,
    /// PostgreSQL could not serialize the batch with a concurrent transaction.
    SerializationFailure,
}

impl Contention {
    /// The contention in a few words, for "… after N retries".
    pub fn name(self) -> &'static str {
        match self {
            Contention::LockTimeout => "lock timeout",
            Contention::Deadlock => "deadlock",
            Contention::SerializationFailure => "serialization failure",
        }
    }

    fn explain(self, waited_ms: u128) -> String {
        match self {
            Contention::LockTimeout => format!(
                "another transaction holds a lock mig needs (a row, the table, or on SQLite \
                 the database; waited {waited_ms} ms)"
            ),
            Contention::Deadlock => format!(
                "this batch and another transaction each waited for a lock the other held (a \
                 deadlock), and PostgreSQL cancelled the batch after {waited_ms} ms"
            ),
            Contention::SerializationFailure => format!(
                "PostgreSQL could not serialize this batch with a concurrent transaction and \
                 cancelled it after {waited_ms} ms"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", postgres::postgres_message(.0))]
    Postgres(#[from] ::postgres::Error),
    /// An expression failed for a row of the batch (read-compute-write path).
    #[error("{0}")]
    Eval(#[from] EvalError),
    /// Contention worth a retry: the batch wrote nothing.
    #[error("{}", kind.explain(*waited_ms))]
    Contention { kind: Contention, waited_ms: u128 },
    #[error("cannot open database {path}: {message}")]
    Open { path: String, message: String },
    /// A PostgreSQL server that took the connection and did not finish its startup, or
    /// answer its first statement, within `waited`: a hung server, a pgbouncer whose pool is
    /// exhausted.
    #[error("cannot open database {url}: no answer within {waited:?} (the server, or a pooler in front of it, took the connection but did not complete its startup; the URL's connect_timeout, in seconds, sets this wait)")]
    ConnectTimeout { url: String, waited: Duration },
    /// PostgreSQL refused a value longer than a `varchar(n)` or `char(n)` column takes; its
    /// message names the type, `columns` the set columns it may be about.
    #[error("a value is too long for {columns}; PostgreSQL: {}", postgres::postgres_message(.source))]
    TooLong {
        columns: String,
        source: ::postgres::Error,
    },
    #[error("{0}")]
    Unsupported(String),
    /// A value the spec computed that the column's type cannot hold (a real into a bigint
    /// column, a double beyond `real`'s range).
    #[error("{0}")]
    Unwritable(String),
    /// The first run on a database could not make mig's own tables there.
    #[error(
        "cannot create mig's state tables (_mig_runs, _mig_backup, _mig_claims, \
         _mig_conflicts) in schema {schema}: {source}; mig keeps its runs and backups in the \
         database it migrates, so it needs a writable primary and, the first time, CREATE on \
         that schema"
    )]
    StateTables {
        schema: String,
        source: Box<StoreError>,
    },
    /// State tables an earlier `mig` made lack a column this one writes.
    #[error(
        "mig's state tables in schema {schema} were made by an earlier mig, and lack a \
         column this one writes: `_mig_runs.pruned_at` (when `mig prune` gave up a run's \
         backup), `_mig_runs.key_order` (the order a run's checkpoint is taken in) or \
         `_mig_backup.restored` (the rows of a batch's record a rollback has restored); adding \
         them failed: {source}; it takes the tables' owner: `ALTER TABLE _mig_runs ADD COLUMN \
         IF NOT EXISTS pruned_at text; ALTER TABLE _mig_runs ADD COLUMN IF NOT EXISTS \
         key_order text; ALTER TABLE _mig_backup ADD COLUMN IF NOT EXISTS restored integer NOT \
         NULL DEFAULT 0` as that role, or any mig command that writes, run by it once"
    )]
    StateTablesOutdated {
        schema: String,
        source: Box<StoreError>,
    },
    /// The lock file that shows `mig status` a run is being worked on (SQLite).
    #[error(
        "cannot lock {path}, which shows `mig status` that this process works on the run: {source}"
    )]
    RunLock {
        path: String,
        source: std::io::Error,
    },
    #[error("mig's own state is inconsistent, nothing was written: {0}")]
    Inconsistent(String),
    #[error("run {run_id} moved on without this process (it is {status} at checkpoint {checkpoint}): another mig process is running or rolling it back")]
    RunMoved {
        run_id: i64,
        status: String,
        checkpoint: Value,
    },
    #[error("run {run_id} is shared by workers (its key ranges are in _mig_claims), so one process alone does not walk it; this one stopped without writing: resume the run with --workers")]
    SharedRun { run_id: i64 },
}

/// What one batch transaction does: walk `table` by `key`, set `sets` where the new value
/// differs, on rows passing `filter`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStep {
    pub table: String,
    pub key: String,
    pub sets: Vec<(String, Expr)>,
    pub filter: Option<Expr>,
    /// How long one batch (or rollback batch) waits for a lock before it is a lock timeout.
    pub lock_timeout: std::time::Duration,
}

/// Where a batch starts and how big it may be.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRequest<'a> {
    pub run_id: i64,
    pub batch_no: i64,
    /// The run's checkpoint: the batch takes keys strictly above it (all keys when None).
    pub after: Option<&'a Value>,
    pub limit: u64,
    /// The batch is sized for a busy database (the spec's `yield`): a store may also write
    /// it more gently, at some cost to the run's speed.
    pub yielding: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    pub processed: u64,
    pub updated: u64,
    /// The highest key of the batch, the run's new checkpoint; None when the batch was empty.
    pub last_key: Option<Value>,
    /// How long the batch's transaction held its locks: what a writer waits at most.
    pub held: std::time::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    /// Every batch is done; the post-checks have yet to pass (or to fail and restore it).
    Checking,
    Completed,
    Failed,
    RollingBack,
    RolledBack,
}

/// The statuses of a run that is over, as `_mig_runs` spells them, for a statement that must
/// act only on such runs.
pub const FINAL_STATUSES_SQL: &str = "('completed', 'failed', 'rolled_back')";

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Checking => "checking",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::RollingBack => "rolling_back",
            RunStatus::RolledBack => "rolled_back",
        }
    }

    /// Whether a run in this state is over (its `finished_at` is set).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::RolledBack
        )
    }

    pub fn parse(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Checking,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::RollingBack,
            RunStatus::RolledBack,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One row of `_mig_runs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: i64,
    pub migration: String,
    pub spec_hash: String,
    /// The canonical text the hash was taken over.
    pub spec: String,
    pub status: RunStatus,
    pub checkpoint: Option<Value>,
    pub processed: u64,
    pub updated: u64,
    pub batches: i64,
    pub row_limit: Option<u64>,
    pub started_at: String,
    pub updated_at: String,
    pub message: Option<String>,
    /// Workers claim its key ranges (PostgreSQL): only `--workers` resume it.
    pub shared: bool,
    /// When `mig prune` gave up the run's backup: the run can be rolled back no more, even
    /// where a prune stopped part way left some of its records.
    pub pruned_at: Option<String>,
    /// How the key ordered its values when the run started (`Store::key_order`): the order
    /// its checkpoint is taken in. None for a run an earlier `mig` started.
    pub key_order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct RollbackOutcome {
    pub restored: u64,
    pub conflict_keys: Vec<Value>,
    /// Restored rows that hold another value than their backup's: a trigger of the table
    /// rewrote the old value as it was written back (PostgreSQL; 0 where not seen).
    pub rewritten: u64,
    /// The backed-up rows the batch's record still holds, for a later call: 0 once the
    /// record is restored whole and dropped.
    pub left: u64,
}

/// The backup one run keeps in `_mig_backup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSize {
    pub records: u64,
    /// The records' stored bytes (PostgreSQL: compressed where it compressed them).
    pub bytes: u64,
}

/// The rows one validation fails: how many, and where to start looking at them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Failures {
    pub rows: u64,
    /// The lowest key of a failing row, text keys compared byte by byte (as the interpreter
    /// compares them, whatever the column's collation); `None` when no row fails.
    pub first_key: Option<Value>,
}

impl Failures {
    /// Counts one more failing row, whose key is `key`.
    pub fn count(&mut self, key: &Value) {
        self.rows += 1;
        let lower = |first: &Value| {
            crate::exec::eval::compare("<", key, first) == Ok(Some(std::cmp::Ordering::Less))
        };
        if self.first_key.as_ref().is_none_or(lower) {
            self.first_key = Some(key.clone());
        }
    }
}

/// How many rows a table holds, counted or estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowCount {
    Exact(u64),
    About(u64),
}

impl RowCount {
    pub fn rows(self) -> u64 {
        match self {
            RowCount::Exact(n) | RowCount::About(n) => n,
        }
    }

    /// `n` qualified as this count is: "about n" for an estimate.
    pub fn show(self, n: u64) -> String {
        match self {
            RowCount::Exact(_) => n.to_string(),
            RowCount::About(_) => format!("about {n}"),
        }
    }
}

/// How often a run asks the store whether other sessions are busy (`Store::others_busy`).
/// The answer is a glance at the sessions' states; taken at most every 100 ms it costs a run
/// nothing measurable and still follows the application within a tenth of a second.
pub const BUSY_SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A database `mig` can migrate.
pub trait Store: Send {
    /// The live tables, without mig's own `_mig_*` tables.
    fn schema(&mut self) -> Result<Schema, StoreError>;
    /// Readies the database for a run's or a rollback's writes: creates `_mig_runs`,
    /// `_mig_backup` and `_mig_conflicts` where missing (and on SQLite switches to WAL). Only
    /// then: everything before it reads, so a request or command refused before its first
    /// write leaves the database as the application had it.
    fn prepare_state(&mut self) -> Result<(), StoreError>;
    fn count_rows(&mut self, table: &str) -> Result<u64, StoreError>;
    /// The rows whose `key` is NULL, which a walk by it never reaches. Only SQLite lets a
    /// primary key hold NULL (one not INTEGER and not declared NOT NULL); a declared key is
    /// NOT NULL by the check, and PostgreSQL's primary keys are.
    fn null_keys(&mut self, table: &str, key: &str) -> Result<u64, StoreError> {
        let _ = (table, key);
        Ok(0)
    }
    /// The size a run and its plan are told: a count, unless counting means reading a large
    /// table whole before the first batch and the database keeps an estimate.
    fn size(&mut self, table: &str) -> Result<RowCount, StoreError> {
        Ok(RowCount::Exact(self.count_rows(table)?))
    }

    /// The rows with a key after `checkpoint`: what a run resuming there has left.
    fn count_rows_after(
        &mut self,
        table: &str,
        key: &str,
        checkpoint: &Value,
    ) -> Result<u64, StoreError>;

    /// Every run, oldest first; none where `_mig_runs` does not exist yet.
    fn runs(&mut self) -> Result<Vec<RunRecord>, StoreError>;
    /// Marks this process as working on run `run_id` until as many `let_go_of_run` calls,
    /// or until it ends, however it ends: `held_runs` then tells a run some process works on
    /// from one whose process died, which the run's recorded state cannot.
    fn hold_run(&mut self, run_id: i64) -> Result<(), StoreError>;
    fn let_go_of_run(&mut self, run_id: i64);
    /// Of `run_ids`, those some process (this one too) works on now.
    fn held_runs(&mut self, run_ids: &[i64]) -> Result<BTreeSet<i64>, StoreError>;
    fn start_run(
        &mut self,
        migration: &str,
        spec_hash: &str,
        spec: &str,
        row_limit: Option<u64>,
        key_order: Option<&str>,
    ) -> Result<RunRecord, StoreError>;
    fn set_run_status(
        &mut self,
        run_id: i64,
        status: RunStatus,
        message: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Moves run `run_id` on from `running` to `then` (`completed`, or `checking` while its
    /// post-checks run) if it is still running; whether this call did. Workers sharing a
    /// run all reach its end, and only the one that moves it on may run the post-checks
    /// (and the rollback when one fails): two rollbacks of one run would each take the
    /// other's restored rows for the application's changes.
    fn complete_run(&mut self, run_id: i64, then: RunStatus) -> Result<bool, StoreError>;

    /// Runs one batch as one transaction: write the changed rows, back up their old values,
    /// advance the run's checkpoint and totals. All of it or none of it. Fails with
    /// `RunMoved`, writing nothing, unless the run is still `running` at `request.after` when
    /// the transaction starts: another process may have advanced or begun rolling it back.
    /// Processes no row only when no row is left after `request.after`: the run ends there.
    fn run_batch(
        &mut self,
        step: &BatchStep,
        request: &BatchRequest<'_>,
    ) -> Result<BatchOutcome, StoreError>;
    /// Whether workers can share `step`'s runs, asked before a shared run opens: refused
    /// only once its workers started, it was left open with nothing done.
    fn shareable(&self, step: &BatchStep) -> Result<(), StoreError> {
        let _ = step;
        Err(StoreError::Unsupported(
            "this database has one writer at a time: workers need PostgreSQL".into(),
        ))
    }
    /// Runs one batch of a run that several workers share (in one process or many): claims
    /// the next `request.limit` keys from the database, or takes over a claim whose worker
    /// died, so every row is processed once. `request.after` and `batch_no` are the store's
    /// to choose. Processed 0 means no claim is left and none is held by another worker.
    fn run_shared_batch(
        &mut self,
        step: &BatchStep,
        request: &BatchRequest<'_>,
    ) -> Result<BatchOutcome, StoreError> {
        let _ = (step, request);
        Err(StoreError::Unsupported(
            "this database has one writer at a time: workers need PostgreSQL".into(),
        ))
    }
    /// How many more connections the server takes now, leaving those it reserves for
    /// superusers; `None` where connections are not counted (an embedded database).
    fn free_connections(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// Whether `checkpoint`, taken by a run that stopped, is still a key of `table`'s `key`
    /// column's type: an integer checkpoint of a key made text since orders rows otherwise,
    /// and a resumed run would walk some twice and skip others. True where the store
    /// cannot tell (SQLite keys take any type).
    fn checkpoint_fits(&self, _table: &str, _key: &str, _checkpoint: &Value) -> bool {
        true
    }
    /// How `table`'s `key` orders its values, as a message shows it (`text COLLATE
    /// pg_catalog."C"`). A run records it as it starts: its checkpoint, taken in that
    /// order, tells which rows are done in no other. None where the store cannot say.
    fn key_order(&self, table: &str, key: &str) -> Option<String>;
    /// Whether a batch holds a lock every other writer of the whole database waits for
    /// (SQLite's one write lock), rather than locks on the rows it writes.
    fn locks_every_writer_out(&self) -> bool {
        false
    }
    /// Whether another session is working on the database now (not idle, or idle only a
    /// moment; not one of mig's own), which a run's `yield` gives way to; `None` where this
    /// store cannot see other sessions.
    fn others_busy(&mut self) -> Result<Option<bool>, StoreError>;
    /// How `others_busy` tells, and how a yielding batch runs, as `mig plan` prints them.
    fn describe_busy(&self) -> String;
    /// How far behind the replicas streaming from this database are (`max_replica_lag`);
    /// an error where mig's session cannot see that.
    fn replica_lag(&mut self) -> Result<ReplicaLag, StoreError>;
    /// What a batch holds while it waits for a lock (up to the spec's `lock_timeout`), and so
    /// what the application may wait on meanwhile, as `mig plan` prints it.
    fn describe_lock_wait(&self) -> &'static str;
    /// What the database says that changes how a run of `table` goes, for `mig plan`;
    /// nothing where it does not say (an engine that speaks PostgreSQL's protocol without
    /// its functions): the plan only leaves that out.
    fn database_notes(&mut self, table: &str) -> DatabaseNotes;
    /// What a run changes in the database besides rows and mig's own tables, as `mig plan`
    /// prints it; nothing by default.
    fn describe_setup(&self) -> Option<String> {
        None
    }
    /// The statements `run_batch` executes, as `mig plan` prints them.
    fn describe_batch(&self, step: &BatchStep) -> Vec<String>;

    /// The rows each validation fails, in order, in one scan of `table`; only rows with a
    /// key up to `up_to` when given.
    fn validate(
        &mut self,
        table: &str,
        key: &str,
        validations: &[&Validation],
        up_to: Option<&Value>,
    ) -> Result<Vec<Failures>, StoreError>;

    /// Batch numbers of `run_id` that still hold backed-up rows, highest first.
    fn backed_up_batches(&mut self, run_id: i64) -> Result<Vec<i64>, StoreError>;
    /// How much backup each run keeps, by run id; runs without a record are left out. Read
    /// from the records' sizes, not their contents.
    fn backup_sizes(&mut self) -> Result<BTreeMap<i64, BackupSize>, StoreError>;
    /// Marks the backup of `run_id` given up (`pruned_at`), if the run is over (completed,
    /// failed or rolled back) and still has backed-up rows; whether it did. One conditional
    /// write to the run's row, as `begin_rollback` is: of a prune and a rollback that meet,
    /// exactly one goes ahead.
    fn mark_pruned(&mut self, run_id: i64) -> Result<bool, StoreError>;
    /// Deletes the backup record of one batch of `run_id` in a statement of its own, only
    /// where the run is marked pruned. The rows the record held, or `None` where it deleted
    /// nothing.
    fn drop_backup(&mut self, run_id: i64, batch_no: i64) -> Result<Option<u64>, StoreError>;
    /// Sets run `run_id` `rolling_back`, unless `mig prune` marked its backup given up;
    /// whether it did.
    fn begin_rollback(&mut self, run_id: i64) -> Result<bool, StoreError>;
    /// Restores one batch in one transaction where rows still hold what the run wrote;
    /// other rows are conflicts, kept in `_mig_conflicts`. With `rows`, only that many of
    /// the batch's backed-up rows (at least one): the rest stay in its record, for the next
    /// call, and the outcome says how many are left.
    fn rollback_batch(
        &mut self,
        step: &BatchStep,
        run_id: i64,
        batch_no: i64,
        rows: Option<u64>,
    ) -> Result<RollbackOutcome, StoreError>;
    /// Keys of rows rollback of `run_id` left alone.
    fn conflict_keys(&mut self, run_id: i64) -> Result<Vec<Value>, StoreError>;

    /// A checksum over the key and `columns` of every row, in key order.
    fn checksum(&mut self, table: &str, key: &str, columns: &[String]) -> Result<u64, StoreError>;
}

/// A batch goes ahead only if its run is still running at the checkpoint this process knows,
/// as the store read them inside the batch's transaction: otherwise another process resumed
/// the run or a rollback began, and writing would overtake them.
pub fn ensure_run_position(
    request: &BatchRequest<'_>,
    status: String,
    checkpoint: Value,
) -> Result<(), StoreError> {
    if status != RunStatus::Running.as_str()
        || Some(&checkpoint).filter(|c| !c.is_null()) != request.after
    {
        return Err(StoreError::RunMoved {
            run_id: request.run_id,
            status,
            checkpoint,
        });
    }
    Ok(())
}

/// `-- ?1 = …, ?2 = …` for `mig plan`: what each placeholder of a statement holds, written
/// with the store's `marker` (`?` or `$`); `roles` name the leading placeholders, the rest
/// are the expressions' literals, shown as values.
pub fn legend(marker: char, roles: &[&str], params: &[Value]) -> String {
    let named = roles.iter().map(|r| r.to_string());
    let literals = params.iter().skip(roles.len()).map(|v| v.to_string());
    let all: Vec<String> = named
        .chain(literals)
        .enumerate()
        .map(|(i, what)| format!("{marker}{} = {what}", i + 1))
        .collect();
    format!("  -- {}", all.join(", "))
}

/// Double-quotes an identifier, doubling quotes inside it. Only names that were checked
/// against the live schema come here.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl StoreError {
    /// Whether the table refused the values written: a NOT NULL, CHECK, UNIQUE or foreign
    /// key constraint. Running the batch again refuses them again, until the spec or the
    /// rows change.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            StoreError::Postgres(e) => e.code().is_some_and(|code| code.code().starts_with("23")),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            _ => false,
        }
    }

    /// Whether the spec's expression failed on a row's values (division by zero, overflow,
    /// a value longer than its column takes): running the batch again fails again, until the
    /// spec or the row changes. On SQLite, mig's functions raise these, and its store hands
    /// them on as `Eval`.
    pub fn is_data_error(&self) -> bool {
        match self {
            StoreError::Postgres(e) => e.code().is_some_and(|code| code.code().starts_with("22")),
            StoreError::Eval(_) | StoreError::Unwritable(_) | StoreError::TooLong { .. } => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(_, Some(text))) => {
                text == sqlite::NOT_UTF8
            }
            StoreError::Sqlite(rusqlite::Error::Utf8Error(_)) => true,
            _ => false,
        }
    }

    /// Whether PostgreSQL refused the batch for what the table does with its rows, which it
    /// will do again: a trigger that raised, a row-level security policy.
    pub fn is_refused_by_table(&self) -> bool {
        self.sqlstate()
            .is_some_and(|code| code == "P0001" || code == "42501")
    }

    /// Whether the batch was more than PostgreSQL takes at once (an array or a value over
    /// 1 GB, as the backup record of a batch of large values can be).
    pub fn is_too_large(&self) -> bool {
        self.sqlstate().is_some_and(|code| code == "54000")
    }

    /// Whether the database refused what was asked of it for a reason it will give again
    /// (the table's constraints, triggers or policies, the rows' values, a size limit): the
    /// statement was rolled back, so the caller knows exactly what did and did not happen.
    pub fn is_refusal(&self) -> bool {
        self.is_constraint_violation()
            || self.is_data_error()
            || self.is_refused_by_table()
            || self.is_too_large()
    }

    /// Whether the connection to the database was lost (a server restart, an administrator's
    /// `pg_terminate_backend`, a network reset): the last statement may or may not have
    /// committed, so only the database can say where the run stands.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            StoreError::Postgres(e) => {
                e.is_closed()
                    || e.code().is_some_and(|code| {
                        let code = code.code();
                        code.starts_with("08") || code == "57P01" || code == "57P02"
                    })
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
            _ => false,
        }
    }

    fn sqlstate(&self) -> Option<&str> {
        match self {
            StoreError::Postgres(e) => e.code().map(|code| code.code()),
            _ => None,
        }
    }
}

/// Why a column that is not unique and NOT NULL by the schema cannot key a walk.
pub const NOT_A_KEY: &str = "is not both NOT NULL and unique by an index of its own: keyset \
     batches over a column that repeats a value or holds NULL would skip or repeat rows; give \
     it a unique index and NOT NULL, or name a column that has them";

/// The name of the `i`th uniqueness count a validation query adds beside a table's columns,
/// quoted: `_mig_unique_{i}`, with more leading underscores while the table has a column of
/// that name (compared without case, as SQLite does). A clash would not be harmless: in
/// PostgreSQL the check fails with an ambiguous column, and SQLite reads the table's own
/// column, so a failing `unique` check would pass.
pub fn unique_count_alias(i: usize, columns: &[String]) -> String {
    let mut alias = format!("_mig_unique_{i}");
    while columns.iter().any(|c| c.eq_ignore_ascii_case(&alias)) {
        alias.insert(0, '_');
    }
    quote_ident(&alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_count_alias_steps_around_the_tables_columns() {
        let columns = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            unique_count_alias(0, &columns(&["id"])),
            "\"_mig_unique_0\""
        );
        assert_eq!(
            unique_count_alias(1, &columns(&["_MIG_unique_1", "__mig_unique_1"])),
            "\"___mig_unique_1\""
        );
        assert_eq!(
            unique_count_alias(2, &columns(&["_mig_unique_1"])),
            "\"_mig_unique_2\""
        );
    }

    #[test]
    fn quoting_doubles_inner_quotes() {
        assert_eq!(quote_ident("users"), "\"users\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
