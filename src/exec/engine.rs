//! The executor: one `Engine` per database, shared by the CLI and the node.

use super::specs::{describe_unreadable, read_specs, read_specs_apart, LeftOut, UnreadableSpec};
use super::throttle::{Pace, ReplicaWaits, Throttle, YieldReport};
use crate::compile::{self, Catalog, Schema, SourceFile};
use crate::config::{Config, Database};
use crate::diagnostic::FileDiagnostics;
use crate::plan::{canonical_spec, spec_from_canonical, Plan, PlanError, Resumed, RunOptions};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    BackupSize, BatchRequest, BatchStep, Contention, Failures, RollbackOutcome, RowCount,
    RunRecord, RunStatus, Store, StoreError,
};
use crate::value::Value;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("no validation named `{name}`{}{}", on_table(.table), known_names(.known))]
    NoSuchValidation {
        name: String,
        table: Option<String>,
        known: Vec<String>,
    },
    #[error("validation `{name}` ({at}) could not be evaluated: {source}")]
    ValidationUnevaluated {
        name: String,
        at: String,
        source: Box<StoreError>,
    },
    #[error("table `{table}` has no `migrate` block, which a request naming only `table` runs (a backfill is named by `table` and `column`){}", known_names(.known))]
    NothingOnTable { table: String, known: Vec<String> },
    #[error("table `{table}` has {count} migrate blocks ({}): name one", .names.join(", "))]
    AmbiguousMigrate {
        table: String,
        count: usize,
        names: Vec<String>,
    },
    #[error("the specs do not compile:\n{}", compile::render_diagnostics(.0))]
    Specs(Vec<FileDiagnostics>),
    #[error("cannot read specs folder {path}: {message}")]
    SpecsFolder { path: String, message: String },
    #[error("{}", describe_unreadable(.0))]
    UnreadableSpecs(Vec<UnreadableSpec>),
    #[error("cannot create the demo database: {0}")]
    Demo(String),
    #[error("{0}")]
    Unsupported(String),
    /// A run that workers cannot share, told before it opens.
    #[error("{0}")]
    NotShareable(String),
    #[error("--workers {workers} needs {workers} connections and the server takes {free} more now (max_connections, less the sessions open and those reserved for superusers)")]
    TooManyWorkers { workers: u64, free: u64 },
    #[error("post-check failed for {migration}: {}; the run's {restored} updated rows were restored from the backup ({conflicts} conflicts)", describe_failures(.failures))]
    PostCheckFailed {
        migration: String,
        failures: Vec<ValidationResult>,
        restored: u64,
        conflicts: u64,
    },
    #[error("post-check failed for {migration}: {}; restoring the run from the backup did not finish: {source}", describe_failures(.failures))]
    PostCheckUnrestored {
        migration: String,
        failures: Vec<ValidationResult>,
        source: Box<ExecError>,
    },
    #[error("run {run_id} of {migration} wrote all its batches but its post-checks did not run to the end: {source}; the run is `checking`: `mig run {migration}` runs the checks again (fix what stopped them first), `mig rollback {migration}` restores its rows")]
    PostCheckUnfinished {
        migration: String,
        run_id: i64,
        source: Box<ExecError>,
    },
    #[error("run {run_id} of {migration} stopped at its checkpoint with {}, and this run asks for {}; resume it with the limit it started with (`mig run {migration}{}`; the node's `total_rows`), or start a new run with `mig run {migration} --restart{}`", row_limit(*.was), row_limit(*.now), .was.map(|n| format!(" --limit {n}")).unwrap_or_default(), .now.map(|n| format!(" --limit {n}")).unwrap_or_default())]
    LimitChanged {
        migration: String,
        run_id: i64,
        was: Option<u64>,
        now: Option<u64>,
    },
    #[error("run {run} of {migration} failed: {}; the table was restored to its state before run 1 ({restored} rows restored, {conflicts} conflicts)", failure_only(source))]
    RepeatFailed {
        migration: String,
        run: u64,
        source: Box<ExecError>,
        restored: u64,
        conflicts: u64,
    },
    #[error("{migration} is not idempotent: run {run} changed the state again; the table was restored to its state before run 1 ({restored} rows restored, {conflicts} conflicts)")]
    NotIdempotent {
        migration: String,
        run: u64,
        restored: u64,
        conflicts: u64,
    },
    #[error("run {run_id} of {migration} stopped at its checkpoint under a different spec; resume refused. What changed (- at the checkpoint, + now):\n{}Start a new run deliberately with `mig run {migration} --restart`", line_diff(.was, .now))]
    SpecChanged {
        migration: String,
        run_id: i64,
        was: String,
        now: String,
    },
    #[error("run {run_id} of {migration} stopped at checkpoint {checkpoint}, taken in the order key `{key}` had then; the key has changed type since, so the checkpoint no longer tells which rows are done: resume refused. Start a new run with `mig run {migration} --restart` (the stopped run's backup is kept for rollback)")]
    KeyChanged {
        migration: String,
        run_id: i64,
        key: String,
        checkpoint: Value,
    },
    #[error("run {run_id} of {migration} stopped at checkpoint {checkpoint}, taken in the order of key `{key}` as {}; the key is {} now, whose order may differ, so the checkpoint no longer tells which rows are done: resume refused. Start a new run with `mig run {migration} --restart` (the stopped run's backup is kept for rollback)", .orders.0, .orders.1)]
    KeyOrderChanged {
        migration: String,
        run_id: i64,
        key: String,
        checkpoint: Value,
        /// The order then and now; boxed, as the rarest of errors, to keep every
        /// `Result` of the engine small.
        orders: Box<(String, String)>,
    },
    #[error("the rollback of run {run_id} of {migration} is unfinished; finish it with `mig rollback {migration}` before running it again, or give it up with `mig run {migration} --restart`, which leaves the rows it has not restored as the run wrote them")]
    RollbackUnfinished { migration: String, run_id: i64 },
    #[error("nothing to roll back for {0}: no run of it updated rows that are still backed up")]
    NothingToRollBack(String),
    #[error("no run of `{name}` is recorded, so it has no backup to prune{}", known_names(.known))]
    NoRunsToPrune { name: String, known: Vec<String> },
    #[error("run {run_id} of {migration} cannot be rolled back: `mig prune {migration}` gave up its backup at {pruned_at}, so the {updated} rows it changed keep the values it wrote")]
    BackupPruned {
        migration: String,
        run_id: i64,
        pruned_at: String,
        updated: u64,
    },
    #[error("table `{table}` has {rows} rows whose key `{key}` is NULL, which SQLite allows in a primary key that is not INTEGER or declared NOT NULL: a walk by the key never reaches them, and the run would end with them untouched; give them keys (or delete them), or walk the table by another column with `table {table} key COLUMN`")]
    NullKeys {
        table: String,
        key: String,
        rows: u64,
    },
    #[error("{} after {retries} retries; the run stopped at its checkpoint and resumes from there: {source}", kind.name())]
    Contention {
        kind: Contention,
        retries: u64,
        source: StoreError,
    },
    #[error("batch {batch} of run {run_id} failed and was rolled back; the run stopped at its checkpoint and {}: {source}", resume_advice(migration, &format!("mig run {migration}"), source))]
    BatchFailed {
        migration: String,
        run_id: i64,
        batch: i64,
        source: Box<StoreError>,
    },
    /// A worker's claimed batch: its claim stays undone, for a worker to take when the run resumes.
    #[error("a batch of run {run_id}, shared by workers, failed and was rolled back; its key range stays to do, for the workers that resume the run, and {}: {source}", resume_advice(migration, &format!("mig run {migration} --workers N"), source))]
    SharedBatchFailed {
        migration: String,
        run_id: i64,
        source: Box<StoreError>,
    },
    #[error("stopped by {signal} after the batch in flight: run {run_id} of {migration} stopped {at} ({processed} rows processed, {updated} updated); `{resume}` resumes it")]
    Stopped {
        signal: super::stop::Signal,
        migration: String,
        run_id: i64,
        at: String,
        processed: u64,
        updated: u64,
        resume: String,
    },
    #[error("stopped by {signal} after the batch in flight: the rollback of run {run_id} restored {restored} rows ({conflicts} conflicts) and has batches left; `mig rollback {migration}` goes on from there")]
    RollbackStopped {
        signal: super::stop::Signal,
        migration: String,
        run_id: i64,
        restored: u64,
        conflicts: usize,
    },
    #[error("the rollback of run {run_id} stopped at batch {batch}, which it left as the run wrote it{}{}: {source}; `mig rollback {migration}` goes on from there", restored_before(*later_batches, *restored), rollback_advice(source))]
    RollbackFailed {
        migration: String,
        run_id: i64,
        batch: i64,
        /// The batches after it, which the rollback restored first, and their rows.
        later_batches: usize,
        restored: u64,
        source: Box<StoreError>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `mig run` does with `run` of `plan`'s migration when it is unfinished, in words for
/// `mig plan`: the checkpoint it resumes from, or why it will not resume it. None when the
/// run is over.
fn unfinished_run(plan: &Plan, run: &RunRecord) -> Option<String> {
    let at = checkpoint_text(run.checkpoint.as_ref());
    let id = run.id;
    let name = plan.name();
    Some(match run.status {
        RunStatus::RollingBack => format!(
            "run {id} is being rolled back and its rollback is unfinished: `mig run` refuses to \
             start until `mig rollback {name}` finishes it (`mig run {name} --restart` gives it up)"
        ),
        RunStatus::Running | RunStatus::Checking if run.spec_hash != plan.spec_hash => format!(
            "run {id} stopped {at} under another spec: `mig run` refuses to resume it; `mig run \
             {name} --restart` abandons it (its backup is kept) and starts a new run"
        ),
        RunStatus::Running | RunStatus::Checking if run.row_limit != plan.limit => format!(
            "run {id} stopped {at} under another row limit: `mig run` refuses to resume it with \
             this one; `mig run {name} --restart` abandons it and starts a new run"
        ),
        RunStatus::Running if run.shared => format!(
            "run {id} is unfinished and shared by workers ({} rows processed, {} updated): `mig \
             run {name}` alone refuses it; `mig run {name} --workers N` resumes it, claiming the \
             key ranges not yet done",
            run.processed, run.updated
        ),
        RunStatus::Checking => format!(
            "run {id} walked its table and its post-checks did not finish: `mig run` resumes it \
             {at}, walking the rows written since, and runs the checks again"
        ),
        RunStatus::Running => format!(
            "run {id} is unfinished {at} ({} rows processed, {} updated): `mig run` resumes it \
             there",
            run.processed, run.updated
        ),
        _ => return None,
    })
}

/// Whether `mig run` resumes `run` alone, from its checkpoint: what `unfinished_run` says it
/// resumes, not what it refuses or leaves to workers.
fn resumed_alone(plan: &Plan, run: &RunRecord) -> bool {
    matches!(run.status, RunStatus::Running | RunStatus::Checking)
        && run.spec_hash == plan.spec_hash
        && run.row_limit == plan.limit
        && !(run.status == RunStatus::Running && run.shared)
}

impl ExecError {
    /// Whether the error is the loss of the database connection, however it was wrapped:
    /// then the run's state is what the database recorded, which this process cannot know.
    pub fn lost_connection(&self) -> bool {
        match self {
            ExecError::Store(e) => e.is_connection_lost(),
            ExecError::BatchFailed { source, .. } | ExecError::SharedBatchFailed { source, .. } => {
                source.is_connection_lost()
            }
            ExecError::PostCheckUnfinished { source, .. }
            | ExecError::RepeatFailed { source, .. } => source.lost_connection(),
            _ => false,
        }
    }
}

/// Where a run stopped, as `mig plan` and its errors say it.
fn checkpoint_text(checkpoint: Option<&Value>) -> String {
    checkpoint.map_or("before its first batch".to_string(), |c| {
        format!("at checkpoint {c}")
    })
}

/// The line that says a new run of `plan` would apply its sets a second time: `run`, of the
/// same migration, completed and not rolled back, and a set of the plan not proven
/// idempotent (`set n = n + 1`); None when a new run would change nothing that run changed.
fn applied_before(plan: &Plan, run: &RunRecord) -> Option<String> {
    if run.status != RunStatus::Completed {
        return None;
    }
    let unproven: Vec<String> = plan
        .migration
        .sets
        .iter()
        .filter(|a| !matches!(a.idempotence, compile::Idempotence::Proven(_)))
        .map(|a| {
            format!(
                "`set {} = {}` is {} ({})",
                a.column,
                a.value,
                a.idempotence.verdict(),
                a.idempotence.reason()
            )
        })
        .collect();
    if unproven.is_empty() {
        return None;
    }
    let name = plan.name();
    Some(format!(
        "run {} of {name} completed ({} rows updated), and {}: a new run would apply it to \
         those rows a second time. `mig rollback {name}` undoes run {}; `mig run {name} \
         --again` starts a new run all the same",
        run.id,
        run.updated,
        unproven.join(", "),
        run.id
    ))
}

/// How a run stopped by a failed batch goes on: a table that refused the values the batch
/// wrote refuses them again until the spec or the rows change.
fn resume_advice(migration: &str, resume: &str, source: &StoreError) -> String {
    if source.is_constraint_violation() {
        format!(
            "the table refused a value the spec computed, as it will again: fix the rows it \
             names and `{resume}` resumes the run, or change the spec and start a new run \
             with `mig run {migration} --restart`"
        )
    } else if source.is_data_error() {
        format!(
            "the spec's expression failed on a row of this batch, as it will again: fix the \
             row and `{resume}` resumes the run, or change the spec and start a new run with \
             `mig run {migration} --restart`"
        )
    } else if source.is_refused_by_table() {
        format!(
            "the table refused the batch (a trigger raised, a row-level security policy \
             refused a row, or mig's role lacks a privilege on the table: PostgreSQL's message says \
             which), as it will again: fix the rows, the table or the grants and `{resume}` \
             resumes the run, or change the spec and start a new run with `mig run \
             {migration} --restart`"
        )
    } else if source.is_too_large() {
        format!(
            "the batch was more than PostgreSQL takes at once (a backup record over 1 GB, of \
             large values?), as it will be again: resume it with fewer rows a batch, \
             `{resume} --batch N`"
        )
    } else {
        format!("`{resume}` resumes it")
    }
}

/// A batch's error as `failed` words it, unless another process moved the run on: then
/// nothing failed, and this process stops with that.
fn batch_error(e: ExecError, failed: impl FnOnce(Box<StoreError>) -> ExecError) -> ExecError {
    match e {
        ExecError::Store(source @ (StoreError::RunMoved { .. } | StoreError::SharedRun { .. })) => {
            ExecError::Store(source)
        }
        ExecError::Store(source) => failed(Box::new(source)),
        other => other,
    }
}

/// What a stopped rollback restored before the batch it stopped at (it goes newest first).
fn restored_before(later_batches: usize, restored: u64) -> String {
    match later_batches {
        0 => String::new(),
        1 => format!(" (the one later batch is restored: {restored} rows)"),
        n => format!(" (the {n} later batches are restored: {restored} rows)"),
    }
}

/// The error of a rollback of `run`, whose backup `mig prune` gave up.
fn backup_pruned(migration: &str, run: &RunRecord) -> ExecError {
    ExecError::BackupPruned {
        migration: migration.to_string(),
        run_id: run.id,
        pruned_at: run.pruned_at.clone().unwrap_or_default(),
        updated: run.updated,
    }
}

/// Why a rollback's batch may fail again: a constraint added since the run (a column made
/// NOT NULL after its backfill) refuses the old values until it is dropped.
fn rollback_advice(source: &StoreError) -> &'static str {
    if source.is_constraint_violation() {
        "; the table refuses the old values, as it will until the rows or its constraints \
         change (one added since the run, such as NOT NULL after a backfill?), or until \
         `mig run` with `--restart` gives the rollback up, keeping the run's values"
    } else {
        ""
    }
}

fn on_table(table: &Option<String>) -> String {
    table
        .as_ref()
        .map(|t| format!(" on table `{t}`"))
        .unwrap_or_default()
}

fn known_names(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (known: {})", names.join(", "))
    }
}

/// The lines of `now` that differ from `was`: `- ` removed, `+ ` added, in order, by a
/// longest common subsequence of whole lines (canonical specs are a few lines long).
fn line_diff(was: &str, now: &str) -> String {
    let a: Vec<&str> = was.lines().collect();
    let b: Vec<&str> = now.lines().collect();
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

/// `e`, from a run's post-checks, as an error that says the run is left `checking`, unless
/// the checks ran to their verdict: a failure and its rollback say so themselves.
fn unfinished_checks(plan: &Plan, run_id: i64, e: ExecError) -> ExecError {
    match e {
        ExecError::PostCheckFailed { .. } | ExecError::PostCheckUnrestored { .. } => e,
        source => ExecError::PostCheckUnfinished {
            migration: plan.name().to_string(),
            run_id,
            source: Box::new(source),
        },
    }
}

/// What went wrong in `e`, without the advice on resuming a run that has been undone since.
fn failure_only(e: &ExecError) -> String {
    match e {
        ExecError::BatchFailed { batch, source, .. } => format!("batch {batch}: {source}"),
        ExecError::Contention {
            kind,
            retries,
            source,
        } => format!("{} after {retries} retries: {source}", kind.name()),
        other => other.to_string(),
    }
}

fn row_limit(limit: Option<u64>) -> String {
    match limit {
        Some(n) => format!("a row limit of {n}"),
        None => "no row limit".to_string(),
    }
}

fn describe_failures(failures: &[ValidationResult]) -> String {
    failures
        .iter()
        .map(|f| format!("{} failed on {}", f.name, f.describe_failed_rows()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ValidationResult {
    pub name: String,
    pub passed: bool,
    pub failed_rows: u64,
    /// The lowest key of a failing row (text keys byte by byte), where a user starts to look;
    /// the node's reply keeps the fields the protocol names.
    #[serde(skip)]
    pub first_failed_key: Option<Value>,
}

impl ValidationResult {
    /// "3 rows, the first at key 17": how many rows failed, and where to look.
    pub fn describe_failed_rows(&self) -> String {
        let rows = crate::plan::count(self.failed_rows, "row", "rows");
        match &self.first_failed_key {
            Some(key) => format!("{rows}, the first at key {key}"),
            None => rows,
        }
    }
}

/// How far a run has got, for progress bars and lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub processed: u64,
    pub updated: u64,
    pub batches: i64,
    /// Rows this run will process at most, as estimated when it started.
    pub expected: u64,
    /// Of `processed`, the rows processed before this process took the run up (a resumed
    /// run's): a rate of this process's own leaves them out.
    pub resumed_from: u64,
    /// While the next batch waits for a replica (`max_replica_lag`): the bytes of WAL it has
    /// left to replay.
    pub waiting_for_replica: Option<u64>,
    /// Once a post-check has failed: how far the rollback that follows it has come.
    pub restoring: Option<RollbackProgress>,
}

impl Progress {
    /// `run`'s totals, out of `expected` rows, `resumed_from` of them done before.
    fn of(run: &RunRecord, expected: u64, resumed_from: u64) -> Progress {
        Progress {
            processed: run.processed,
            updated: run.updated,
            batches: run.batches,
            expected,
            resumed_from,
            waiting_for_replica: None,
            restoring: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run_id: i64,
    pub migration: String,
    pub processed: u64,
    pub updated: u64,
    pub batches: i64,
    pub resumed: bool,
    /// The rows this call processed, of `processed`: a resumed run's earlier ones are not.
    pub processed_now: u64,
    pub duration: Duration,
    /// The longest any of this call's batch transactions held its locks.
    pub longest_batch: Duration,
    /// What the spec's `yield` did in this call; `None` when the spec does not yield.
    pub yielded: Option<YieldReport>,
    /// How long this call's batches waited for replicas; `None` without `max_replica_lag`.
    pub replicas: Option<ReplicaWaits>,
    /// The post-checks' results; `None` when the plan has post-checks and another worker
    /// completed the run, and ran them there.
    pub checks: Option<Vec<ValidationResult>>,
}

/// How far a rollback has come: shown after each batch it restores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollbackProgress {
    /// The batch records restored so far, of `batches`: those the run had backed up when
    /// this call began (a rollback resumed after a kill has only the rest left).
    pub restored_batches: u64,
    pub batches: u64,
    pub restored: u64,
    pub conflicts: u64,
}

/// What one transaction of a rollback restores: `rows` of backup record `batch` of run
/// `run_id` (after those restored before), or all it has left.
struct RecordPart {
    run_id: i64,
    batch: i64,
    rows: Option<u64>,
}

/// What restoring a run's backup did.
struct Restoration {
    outcome: RollbackOutcome,
    /// The longest any attempt at a batch held its transaction.
    longest_batch: Duration,
    /// What `yield` did; `None` when the spec does not yield.
    yielded: Option<YieldReport>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RollbackSummary {
    pub run_id: i64,
    pub restored: u64,
    /// How long this call took to restore its batches.
    pub duration: Duration,
    /// The longest any of its batch transactions held its locks.
    pub longest_batch: Duration,
    /// What the spec's `yield` did; `None` when the spec does not yield.
    pub yielded: Option<YieldReport>,
    pub conflict_keys: Vec<Value>,
    /// Restored rows a trigger of the table rewrote as their old values were written back.
    pub rewritten: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RepeatedSummary {
    pub runs: Vec<RunSummary>,
    pub rows_updated: u64,
    /// Runs 2..N left the touched columns as run 1 left them.
    pub unchanged: bool,
}

pub struct Engine {
    pub config: Config,
    pub catalog: Catalog,
    pub schema: Schema,
    store: Box<dyn Store>,
}

impl Engine {
    /// Opens the configured database (creating the demo database if that is the one
    /// configured and it is missing), reads its schema and compiles the specs against it.
    /// It writes nothing there: mig's own tables, and SQLite's switch to WAL, wait until a
    /// run or a rollback is about to write (`Store::prepare_state`), so specs that do not
    /// compile, or a request or command refused, leave the database as they found it.
    pub fn open(config: Config) -> Result<Engine, ExecError> {
        let mut store = open_store(&config)?;
        let schema = store.schema()?;
        let files = read_specs(&config.specs)?;
        let catalog = compile::compile(&files, Some(&schema)).map_err(ExecError::Specs)?;
        Ok(Engine {
            config,
            catalog,
            schema,
            store,
        })
    }

    /// Opens the database as `open` does, for a rollback: the emergency undo needs only the
    /// run's record, so spec files that cannot be read or do not compile are left out, and
    /// returned, rather than stopping it. The catalog holds the files that compile without
    /// them, which still give the migration's pace (`pause`, `lock_timeout`, `retries`).
    pub fn open_to_roll_back(config: Config) -> Result<(Engine, Vec<LeftOut>), ExecError> {
        let mut store = open_store(&config)?;
        let schema = store.schema()?;
        let mut left_out = Vec::new();
        let mut files = match read_specs_apart(&config.specs) {
            Ok((files, unreadable)) => {
                left_out.extend(unreadable.into_iter().map(LeftOut::Unreadable));
                files
            }
            Err(ExecError::SpecsFolder { path, message }) => {
                left_out.push(LeftOut::Folder { path, message });
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        // Leaving a file out can break another (a `check` naming a validation it declared),
        // so this repeats until what is left compiles. Each round drops at least one file,
        // since every diagnostic names one of `files`, and no files compile.
        let catalog = loop {
            match compile::compile(&files, Some(&schema)) {
                Ok(catalog) => break catalog,
                Err(broken) => {
                    files.retain(|f| broken.iter().all(|b| b.path != f.path));
                    left_out.extend(broken.into_iter().map(LeftOut::DoesNotCompile));
                }
            }
        };
        let engine = Engine {
            config,
            catalog,
            schema,
            store,
        };
        Ok((engine, left_out))
    }

    pub fn store(&mut self) -> &mut dyn Store {
        self.store.as_mut()
    }

    pub fn plan(&self, name: &str, options: &RunOptions) -> Result<Plan, ExecError> {
        Ok(Plan::build(
            &self.catalog,
            &self.schema,
            name,
            &self.config.defaults,
            options,
        )?)
    }

    pub fn describe(&mut self, plan: &Plan) -> Result<Vec<String>, ExecError> {
        let rows = self.store.size(plan.table())?;
        let runs = self.store.runs()?;
        let latest_unfinished = runs
            .iter()
            .rev()
            .find(|r| r.migration == plan.name() && unfinished_run(plan, r).is_some());
        let resumed = match latest_unfinished {
            Some(run) if resumed_alone(plan, run) => Some(self.resumed(plan, run, rows)?),
            _ => None,
        };
        let notes = self.store.database_notes(plan.table());
        let mut lines = plan.describe(self.store.as_ref(), rows, resumed.as_ref(), &notes);
        let unfinished = latest_unfinished.and_then(|run| unfinished_run(plan, run));
        if let Some(line) = unfinished.or(self.applied_before(plan)?) {
            let at = lines.len().min(3);
            lines.insert(at, line);
        }
        Ok(lines)
    }

    /// What `run`, which `mig run` resumes, has left to walk of a table of `size` rows: the
    /// rows after its checkpoint, counted as `size` was, or estimated where `size` is (the
    /// estimate less the rows processed), since counting them would read the rest of a large
    /// table.
    fn resumed(
        &mut self,
        plan: &Plan,
        run: &RunRecord,
        size: RowCount,
    ) -> Result<Resumed, ExecError> {
        let rest = match (&run.checkpoint, size) {
            (None, _) => size,
            (Some(_), RowCount::About(rows)) => RowCount::About(rows.saturating_sub(run.processed)),
            (Some(checkpoint), RowCount::Exact(_)) => RowCount::Exact(
                self.store
                    .count_rows_after(plan.table(), &plan.key, checkpoint)?,
            ),
        };
        Ok(Resumed {
            run_id: run.id,
            processed: run.processed,
            rest,
        })
    }

    /// Why a new run of `plan` would apply its sets to rows a completed run of the migration
    /// already changed, as `mig run` refuses it without `--again`; None where it would not,
    /// or where the migration has an unfinished run, which `mig run` resumes instead. The
    /// most recent completed run counts even under later runs rolled back: rollback undoes
    /// only the latest run that has a backup.
    pub fn applied_before(&mut self, plan: &Plan) -> Result<Option<String>, ExecError> {
        let runs = self.store.runs()?;
        let mine: Vec<&RunRecord> = runs
            .iter()
            .rev()
            .filter(|r| r.migration == plan.name())
            .collect();
        if mine.iter().any(|r| !r.status.is_final()) {
            return Ok(None);
        }
        Ok(mine.into_iter().find_map(|run| applied_before(plan, run)))
    }

    /// The name of the one migrate block on `table`, for requests that name only the table.
    pub fn migrate_on_table(&self, table: &str) -> Result<String, ExecError> {
        let names: Vec<String> = self
            .catalog
            .migrations
            .iter()
            .filter(|m| m.table == table && m.kind == compile::MigrationKind::Migrate)
            .map(|m| m.name.clone())
            .collect();
        match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ExecError::NothingOnTable {
                table: table.to_string(),
                known: self
                    .catalog
                    .migrations
                    .iter()
                    .map(|m| m.name.clone())
                    .collect(),
            }),
            _ => Err(ExecError::AmbiguousMigrate {
                table: table.to_string(),
                count: names.len(),
                names,
            }),
        }
    }

    pub fn status(&mut self) -> Result<Vec<RunRecord>, ExecError> {
        Ok(self.store.runs()?)
    }

    /// Runs `plan` to the end: resumes its unfinished run if there is one (refusing if the
    /// spec changed, unless `restart`), then runs the post-checks.
    pub fn run(
        &mut self,
        plan: &Plan,
        restart: bool,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RunSummary, ExecError> {
        let started = Instant::now();
        let (run, resumed) = self.open_run(plan, restart)?;
        self.holding(run.id, |engine| {
            engine.run_opened(plan, run, resumed, started, progress)
        })
    }

    /// Fails before a run opens where `max_replica_lag` asks to watch replicas mig's session
    /// cannot see, rather than at its first batch.
    fn can_watch_replicas(&mut self, plan: &Plan) -> Result<(), ExecError> {
        if plan.max_replica_lag.is_some() {
            self.store.replica_lag()?;
        }
        Ok(())
    }

    /// Runs `work` while the store marks this process as working on run `run_id`, so
    /// `mig status` tells it from a run whose process died.
    fn holding<T>(
        &mut self,
        run_id: i64,
        work: impl FnOnce(&mut Engine) -> Result<T, ExecError>,
    ) -> Result<T, ExecError> {
        self.store.hold_run(run_id)?;
        let outcome = work(self);
        self.store.let_go_of_run(run_id);
        outcome
    }

    /// The batches and post-checks of `run`, which `run` opened.
    fn run_opened(
        &mut self,
        plan: &Plan,
        run: RunRecord,
        resumed: bool,
        started: Instant,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RunSummary, ExecError> {
        let rows = self.store.size(plan.table())?.rows();
        let limit = run.row_limit;
        let expected = limit.map_or(rows, |l| l.min(rows.max(run.processed)));
        let (run, pace) = self.run_batches(plan, run, expected, progress)?;
        self.finish_run(plan, &run, resumed, started, pace, progress)
    }

    /// Marks the run completed, or `checking` until its post-checks pass, unless another
    /// worker of a shared run did first, and sums it up. A run whose checks are cut short
    /// (killed, or a check that fails to evaluate) stays `checking`, and the next `mig run`
    /// runs them again: marked completed first, it was left changed with no check applied.
    fn finish_run(
        &mut self,
        plan: &Plan,
        run: &RunRecord,
        resumed: bool,
        started: Instant,
        pace: Pace,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RunSummary, ExecError> {
        let checks_pending = !plan.checks.is_empty() && run.checkpoint.is_some();
        let then = if checks_pending {
            RunStatus::Checking
        } else {
            RunStatus::Completed
        };
        let moved_here = self.with_retries(plan, |store| store.complete_run(run.id, then))?;
        let checks = if moved_here {
            let results = self
                .post_checks(plan, run, progress)
                .map_err(|e| unfinished_checks(plan, run.id, e))?;
            if checks_pending {
                self.with_retries(plan, |store| {
                    store.set_run_status(run.id, RunStatus::Completed, None)
                })?;
            }
            Some(results)
        } else {
            plan.checks.is_empty().then(Vec::new)
        };
        Ok(RunSummary {
            run_id: run.id,
            migration: plan.name().to_string(),
            processed: run.processed,
            updated: run.updated,
            batches: run.batches,
            resumed,
            processed_now: pace.rows,
            duration: started.elapsed(),
            longest_batch: pace.longest_batch,
            yielded: pace.yielded,
            replicas: pace.replicas,
            checks,
        })
    }

    /// Runs `plan` as one worker of a run shared by several (threads or processes, each
    /// calling this): the store hands out key ranges so every row is processed once. Returns
    /// when nothing is left to claim; the summary holds the totals of all workers.
    pub fn run_shared(
        &mut self,
        plan: &Plan,
        run_id: i64,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Option<RunSummary>, ExecError> {
        let started = Instant::now();
        let run = self.store.runs()?.into_iter().find(|r| r.id == run_id);
        let Some(run) = run.filter(|r| r.status == RunStatus::Running) else {
            // The other workers finished it (or it stopped) before this one started.
            return Ok(None);
        };
        self.holding(run.id, |engine| {
            engine.walk_shared(plan, run, started, progress)
        })
    }

    /// This worker's batches of the shared `run`, then its end if this worker is the one to
    /// finish it.
    fn walk_shared(
        &mut self,
        plan: &Plan,
        run: RunRecord,
        started: Instant,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Option<RunSummary>, ExecError> {
        let expected = self.store.size(plan.table())?.rows();
        let step = plan.step();
        let mut mine = Progress {
            processed: 0,
            updated: 0,
            batches: 0,
            expected,
            resumed_from: 0,
            waiting_for_replica: None,
            restoring: None,
        };
        let mut throttle = Throttle::new(plan.pause, plan.yield_after, plan.batch)
            .resting(self.store.locks_every_writer_out())
            .watching_replicas(plan.max_replica_lag);
        loop {
            throttle.wait_for_replicas(self.store.as_mut(), &mut |bytes| {
                progress(&Progress {
                    waiting_for_replica: Some(bytes),
                    ..mine.clone()
                })
            })?;
            if let Some(signal) = super::stop::requested() {
                return Err(ExecError::Stopped {
                    signal,
                    migration: plan.name().to_string(),
                    run_id: run.id,
                    at: "at the key ranges its workers have done".to_string(),
                    processed: mine.processed,
                    updated: mine.updated,
                    resume: format!("mig run {} --workers N", plan.name()),
                });
            }
            let request = BatchRequest {
                run_id: run.id,
                batch_no: 0,
                after: None,
                limit: throttle.next_size(self.store.as_mut())?,
                yielding: throttle.yielding(),
            };
            let outcome = self
                .with_retries(plan, |store| store.run_shared_batch(&step, &request))
                .map_err(|e| {
                    batch_error(e, |source| ExecError::SharedBatchFailed {
                        migration: plan.name().to_string(),
                        run_id: run.id,
                        source,
                    })
                })?;
            if outcome.processed == 0 {
                break;
            }
            mine.processed += outcome.processed;
            mine.updated += outcome.updated;
            mine.batches += 1;
            progress(&mine);
            throttle.after_batch(outcome.processed, outcome.held);
        }
        let run = self
            .store
            .runs()?
            .into_iter()
            .find(|r| r.id == run.id)
            .unwrap_or(run);
        // Whether the run existed before is the opener's to say (`open_shared_run`).
        self.finish_run(plan, &run, false, started, throttle.pace(), progress)
            .map(Some)
    }

    /// Opens the run workers will share before any of them starts: its id, which every
    /// worker of the process joins (a worker that opened a run of its own after the others
    /// had finished would start the migration over), and whether it existed.
    pub fn open_shared_run(&mut self, plan: &Plan, workers: u64) -> Result<(i64, bool), ExecError> {
        self.can_watch_replicas(plan)?;
        if plan.limit.is_some() {
            return Err(ExecError::NotShareable(
                "a row limit cannot be shared between workers; run without --limit".into(),
            ));
        }
        self.store.shareable(&plan.step()).map_err(|e| match e {
            StoreError::Unsupported(why) => ExecError::NotShareable(why),
            other => other.into(),
        })?;
        // Counted before the run opens: workers the server turns away would fail one by one
        // while the others run, and the run would end with a heap of connection errors.
        // This connection closes before the workers open theirs, so it counts as free.
        if let Some(free) = self.store.free_connections()? {
            if workers > free + 1 {
                return Err(ExecError::TooManyWorkers {
                    workers,
                    free: free + 1,
                });
            }
        }
        let (run, resumed) = self.open_run(plan, false)?;
        Ok((run.id, resumed))
    }

    /// The run to continue: the migration's unfinished run, or a new one.
    /// Refused while a rollback of the migration is unfinished: a new batch would write rows
    /// the rollback has yet to restore, and its backup would mix with the one being undone.
    /// Every refusal comes before the first write, so a refused run writes nothing.
    fn open_run(&mut self, plan: &Plan, restart: bool) -> Result<(RunRecord, bool), ExecError> {
        self.can_watch_replicas(plan)?;
        let rows = self.store.null_keys(plan.table(), &plan.key)?;
        if rows > 0 {
            return Err(ExecError::NullKeys {
                table: plan.table().to_string(),
                key: plan.key.clone(),
                rows,
            });
        }
        let runs = self.store.runs()?;
        let mine = || runs.iter().rev().filter(|r| r.migration == plan.name());
        let rolling_back = mine().find(|r| r.status == RunStatus::RollingBack);
        let unfinished = mine()
            .find(|r| matches!(r.status, RunStatus::Running | RunStatus::Checking))
            .cloned();
        if !restart {
            if let Some(run) = rolling_back {
                return Err(ExecError::RollbackUnfinished {
                    migration: plan.name().to_string(),
                    run_id: run.id,
                });
            }
            if let Some(run) = &unfinished {
                self.resumable(plan, run)?;
            }
        }
        self.store.prepare_state()?;
        if restart {
            if let Some(run) = rolling_back {
                // A rollback the table refuses (a constraint added since the run) cannot
                // finish until the table changes; without this, only an edit of `_mig_runs`
                // got past it.
                self.with_retries(plan, |store| {
                    store.set_run_status(
                        run.id,
                        RunStatus::Failed,
                        Some("rollback given up by --restart; the rows it had not restored keep the run's values, and their backup is kept"),
                    )
                })?;
            }
            if let Some(run) = &unfinished {
                self.with_retries(plan, |store| {
                    store.set_run_status(
                        run.id,
                        RunStatus::Failed,
                        Some("abandoned by --restart; its backup is kept for rollback"),
                    )
                })?;
            }
        } else if let Some(mut run) = unfinished {
            if run.status == RunStatus::Checking {
                // Back to running: rows written since its last batch are walked too, and the
                // post-checks run again at its end.
                self.with_retries(plan, |store| {
                    store.set_run_status(run.id, RunStatus::Running, None)
                })?;
                run.status = RunStatus::Running;
            }
            return Ok((run, true));
        }
        let spec = canonical_spec(&plan.migration, &plan.key);
        let order = self.store.key_order(plan.table(), &plan.key);
        let run = self.with_retries(plan, |store| {
            store.start_run(
                plan.name(),
                &plan.spec_hash,
                &spec,
                plan.limit,
                order.as_deref(),
            )
        })?;
        Ok((run, false))
    }

    /// Refuses to resume `run` under what would make its checkpoint a lie: another spec,
    /// another row limit, a key that changed type or collation since.
    fn resumable(&self, plan: &Plan, run: &RunRecord) -> Result<(), ExecError> {
        if run.spec_hash != plan.spec_hash {
            return Err(ExecError::SpecChanged {
                migration: plan.name().to_string(),
                run_id: run.id,
                was: run.spec.clone(),
                now: canonical_spec(&plan.migration, &plan.key),
            });
        }
        if run.row_limit != plan.limit {
            // A run's limit counts its rows from its start: resumed under another, or none,
            // it silently processed more or fewer rows than either asked for.
            return Err(ExecError::LimitChanged {
                migration: plan.name().to_string(),
                run_id: run.id,
                was: run.row_limit,
                now: plan.limit,
            });
        }
        if let Some(checkpoint) = &run.checkpoint {
            if !self
                .store
                .checkpoint_fits(plan.table(), &plan.key, checkpoint)
            {
                return Err(ExecError::KeyChanged {
                    migration: plan.name().to_string(),
                    run_id: run.id,
                    key: plan.key.clone(),
                    checkpoint: checkpoint.clone(),
                });
            }
            let now = self.store.key_order(plan.table(), &plan.key);
            if let (Some(was), Some(now)) = (&run.key_order, now) {
                if *was != now {
                    return Err(ExecError::KeyOrderChanged {
                        migration: plan.name().to_string(),
                        run_id: run.id,
                        key: plan.key.clone(),
                        checkpoint: checkpoint.clone(),
                        orders: Box::new((was.clone(), now)),
                    });
                }
            }
        }
        Ok(())
    }

    fn run_batches(
        &mut self,
        plan: &Plan,
        mut run: RunRecord,
        expected: u64,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(RunRecord, Pace), ExecError> {
        let step = plan.step();
        let resumed_from = run.processed;
        let mut throttle = Throttle::new(plan.pause, plan.yield_after, plan.batch)
            .resting(self.store.locks_every_writer_out())
            .watching_replicas(plan.max_replica_lag);
        loop {
            throttle.wait_for_replicas(self.store.as_mut(), &mut |bytes| {
                progress(&Progress {
                    waiting_for_replica: Some(bytes),
                    ..Progress::of(&run, expected, resumed_from)
                })
            })?;
            if let Some(signal) = super::stop::requested() {
                return Err(ExecError::Stopped {
                    signal,
                    migration: plan.name().to_string(),
                    run_id: run.id,
                    at: checkpoint_text(run.checkpoint.as_ref()),
                    processed: run.processed,
                    updated: run.updated,
                    resume: format!("mig run {}", plan.name()),
                });
            }
            let remaining = run
                .row_limit
                .map_or(u64::MAX, |l| l.saturating_sub(run.processed));
            let limit = throttle.next_size(self.store.as_mut())?.min(remaining);
            if limit == 0 {
                return Ok((run, throttle.pace()));
            }
            let request = BatchRequest {
                run_id: run.id,
                batch_no: run.batches + 1,
                after: run.checkpoint.as_ref(),
                limit,
                yielding: throttle.yielding(),
            };
            let outcome = self
                .with_retries(plan, |store| store.run_batch(&step, &request))
                .map_err(|e| {
                    batch_error(e, |source| ExecError::BatchFailed {
                        migration: plan.name().to_string(),
                        run_id: run.id,
                        batch: request.batch_no,
                        source,
                    })
                })?;
            if outcome.processed == 0 {
                return Ok((run, throttle.pace()));
            }
            run.processed += outcome.processed;
            run.updated += outcome.updated;
            run.batches += 1;
            run.checkpoint = outcome.last_key;
            progress(&Progress::of(&run, expected, resumed_from));
            // A short batch is not taken for the table's end: on PostgreSQL a row can leave a
            // batch's range while the batch waits for its lock. An empty batch ends it: the
            // store answers one only when no row is left after the checkpoint.
            throttle.after_batch(outcome.processed, outcome.held);
        }
    }

    /// Retries contention (lock timeouts, deadlocks, serialization failures) `plan.retries`
    /// times with a doubling backoff.
    fn with_retries<T>(
        &mut self,
        plan: &Plan,
        mut attempt: impl FnMut(&mut dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, ExecError> {
        let mut backoff = Duration::from_millis(50);
        let mut tries = 0;
        loop {
            match attempt(self.store.as_mut()) {
                Err(StoreError::Contention { .. }) if tries < plan.retries => {
                    tries += 1;
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(source @ StoreError::Contention { kind, .. }) => {
                    return Err(ExecError::Contention {
                        kind,
                        retries: plan.retries,
                        source,
                    })
                }
                other => return other.map_err(ExecError::from),
            }
        }
    }

    /// Runs the plan's checks over the rows the run processed; on failure restores the run,
    /// telling `progress` how far the rollback has come.
    fn post_checks(
        &mut self,
        plan: &Plan,
        run: &RunRecord,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Vec<ValidationResult>, ExecError> {
        if plan.checks.is_empty() || run.checkpoint.is_none() {
            return Ok(vec![]);
        }
        let checks: Vec<&compile::Validation> = plan.checks.iter().collect();
        let counts =
            self.store
                .validate(plan.table(), &plan.key, &checks, run.checkpoint.as_ref())?;
        let results = results_of(&checks, &counts);
        let failures: Vec<ValidationResult> =
            results.iter().filter(|r| !r.passed).cloned().collect();
        if failures.is_empty() {
            return Ok(results);
        }
        // Recorded before the rollback, so that `mig status` says why a run whose rollback
        // stopped is `rolling_back`.
        let message = format!("post-check failed: {}", describe_failures(&failures));
        self.with_retries(plan, |store| {
            store.set_run_status(run.id, RunStatus::RollingBack, Some(&message))
        })?;
        let done = Progress::of(run, run.processed, 0);
        let restoring = self.rollback_run(plan, run.id, &mut |r| {
            progress(&Progress {
                restoring: Some(*r),
                ..done.clone()
            })
        });
        let restored = match restoring {
            Ok(restored) => restored.outcome,
            Err(source) => {
                return Err(ExecError::PostCheckUnrestored {
                    migration: plan.name().to_string(),
                    failures,
                    source: Box::new(source),
                })
            }
        };
        self.with_retries(plan, |store| {
            store.set_run_status(run.id, RunStatus::Failed, Some(&message))
        })?;
        Err(ExecError::PostCheckFailed {
            migration: plan.name().to_string(),
            failures,
            restored: restored.restored,
            conflicts: restored.conflict_keys.len() as u64,
        })
    }

    /// Runs the named validations over whole tables, one scan per table. With `table`, every
    /// name must be a validation on that table.
    pub fn validate(
        &mut self,
        table: Option<&str>,
        names: &[String],
    ) -> Result<Vec<ValidationResult>, ExecError> {
        let mut chosen = Vec::new();
        for name in names {
            let v = self
                .catalog
                .validation(name)
                .filter(|v| table.is_none_or(|t| v.table == t))
                .ok_or_else(|| ExecError::NoSuchValidation {
                    name: name.clone(),
                    table: table.map(str::to_string),
                    known: self
                        .catalog
                        .validations
                        .iter()
                        .filter(|v| table.is_none_or(|t| v.table == t))
                        .map(|v| v.name.clone())
                        .collect(),
                })?;
            chosen.push(v.clone());
        }
        let mut results = vec![None; chosen.len()];
        let mut tables: Vec<&str> = chosen.iter().map(|v| v.table.as_str()).collect();
        tables.dedup();
        for t in tables {
            let key = crate::plan::resolve_key(&self.catalog, &self.schema, t)?;
            let indexes: Vec<usize> = (0..chosen.len())
                .filter(|&i| chosen[i].table == t)
                .collect();
            let group: Vec<&compile::Validation> = indexes.iter().map(|&i| &chosen[i]).collect();
            let counts = match self.store.validate(t, &key, &group, None) {
                Ok(counts) => counts,
                Err(e) => return Err(self.unevaluated(t, &key, &group, e)),
            };
            for (r, i) in results_of(&group, &counts).into_iter().zip(indexes) {
                results[i] = Some(r);
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// The error of validations of one table that failed to evaluate together (an `expect`
    /// dividing by zero on some row), naming the first that fails alone. A lock the table
    /// waited for is no fault of a validation: it is the error as it is (try again), and
    /// trying each alone would wait for it once more each.
    fn unevaluated(
        &mut self,
        table: &str,
        key: &str,
        group: &[&compile::Validation],
        together: StoreError,
    ) -> ExecError {
        if matches!(together, StoreError::Contention { .. }) {
            return together.into();
        }
        let named = |v: &compile::Validation, source| ExecError::ValidationUnevaluated {
            name: v.name.clone(),
            at: format!(
                "{}:{}:{}",
                v.origin.path, v.origin.span.line, v.origin.span.col
            ),
            source: Box::new(source),
        };
        if let [only] = group {
            return named(only, together);
        }
        for v in group {
            if let Err(alone) = self.store.validate(table, key, &[*v], None) {
                return named(v, alone);
            }
        }
        together.into()
    }

    /// Finishes the migration's interrupted rollback if there is one; otherwise restores the
    /// most recent run of `name` that still has backed-up rows.
    pub fn rollback(
        &mut self,
        name: &str,
        progress: &mut dyn FnMut(&RollbackProgress),
    ) -> Result<RollbackSummary, ExecError> {
        let mut candidates: Vec<RunRecord> = self
            .store
            .runs()?
            .into_iter()
            .rev()
            .filter(|r| r.migration == name && r.status != RunStatus::RolledBack)
            .collect();
        let current = match self.plan(name, &RunOptions::default()) {
            Err(ExecError::Plan(PlanError::NoSuchMigration { .. })) if !candidates.is_empty() => {
                None
            }
            plan => Some(plan?),
        };
        // A rollback killed after its last batch has no backup left but still must be
        // marked done, rather than passing on to an older run.
        candidates.sort_by_key(|r| r.status != RunStatus::RollingBack);
        for run in candidates {
            if run.pruned_at.is_some() {
                return Err(backup_pruned(name, &run));
            }
            if run.status != RunStatus::RollingBack
                && self.store.backed_up_batches(run.id)?.is_empty()
            {
                continue;
            }
            let plan = self.plan_of_run(name, &run, current.as_ref())?;
            let started = Instant::now();
            let restoration = self.rollback_run(&plan, run.id, progress)?;
            let outcome = restoration.outcome;
            return Ok(RollbackSummary {
                run_id: run.id,
                restored: outcome.restored,
                duration: started.elapsed(),
                longest_batch: restoration.longest_batch,
                yielded: restoration.yielded,
                conflict_keys: self.store.conflict_keys(run.id)?,
                rewritten: outcome.rewritten,
            });
        }
        Err(ExecError::NothingToRollBack(name.to_string()))
    }

    /// The plan that restores `run`: the current one where the run was made by the spec as
    /// it is now, else the one its recorded spec gives with the current spec's pace. A spec
    /// edited since (another key, another table) must not decide which rows a backup's
    /// values go back to: keyed by the new key, every row would get another row's value.
    fn plan_of_run(
        &self,
        name: &str,
        run: &RunRecord,
        current: Option<&Plan>,
    ) -> Result<Plan, ExecError> {
        if let Some(plan) = current.filter(|p| p.spec_hash == run.spec_hash) {
            return Ok(plan.clone());
        }
        let mut plan = self.recorded_plan(name, run)?;
        if let Some(current) = current {
            plan.pause = current.pause;
            plan.yield_after = current.yield_after;
            plan.lock_timeout = current.lock_timeout;
            plan.retries = current.retries;
        }
        Ok(plan)
    }

    /// The plan of a run from the spec it recorded (`_mig_runs.spec`: table, key, sets,
    /// filter), so a run whose spec was edited or removed since can still be rolled back;
    /// pause, lock timeout and retries are `mig.toml`'s.
    fn recorded_plan(&self, name: &str, run: &RunRecord) -> Result<Plan, ExecError> {
        let text = spec_from_canonical(&run.spec, "recorded").ok_or_else(|| {
            ExecError::Unsupported(format!(
                "run {} of {name} recorded a spec mig cannot read back: {}",
                run.id, run.spec
            ))
        })?;
        let source = SourceFile {
            path: format!("(the spec run {} of {name} recorded)", run.id),
            text,
        };
        let catalog = compile::compile_for_rollback(&[source], Some(&self.schema))
            .map_err(ExecError::Specs)?;
        let mut plan = Plan::build(
            &catalog,
            &self.schema,
            "recorded",
            &self.config.defaults,
            &RunOptions::default(),
        )?;
        plan.migration.name = name.to_string();
        Ok(plan)
    }

    /// Restores every backed-up batch of `run_id`, newest first, each in its own transaction
    /// and `pause` apart, as the run throttled its batches (while another session is busy,
    /// a spec with `yield` restores a batch in parts, each its own transaction), telling
    /// `progress` after each. Each transaction counts the rows it restored in their backup
    /// record (dropping the record with its last rows) as it commits, so a rollback killed
    /// mid-way resumes with the rows left.
    fn rollback_run(
        &mut self,
        plan: &Plan,
        run_id: i64,
        progress: &mut dyn FnMut(&RollbackProgress),
    ) -> Result<Restoration, ExecError> {
        self.holding(run_id, |engine| engine.restore_run(plan, run_id, progress))
    }

    /// `rollback_run`'s work, while this process holds the run.
    fn restore_run(
        &mut self,
        plan: &Plan,
        run_id: i64,
        progress: &mut dyn FnMut(&RollbackProgress),
    ) -> Result<Restoration, ExecError> {
        self.store.prepare_state()?;
        if !self.with_retries(plan, |store| store.begin_rollback(run_id))? {
            // `mig prune` marked the run after `rollback` read it.
            let runs = self.store.runs()?;
            let pruned = runs
                .iter()
                .find(|r| r.id == run_id && r.pruned_at.is_some());
            return Err(match pruned {
                Some(run) => backup_pruned(plan.name(), run),
                // Nothing else keeps it from starting but the run's row gone from `_mig_runs`.
                None => ExecError::Unsupported(format!(
                    "run {run_id} of {} is no longer recorded in _mig_runs, so it cannot be \
                     rolled back",
                    plan.name()
                )),
            });
        }
        let step = plan.step();
        let mut total = RollbackOutcome::default();
        let batches = self.store.backed_up_batches(run_id)?;
        let of = batches.len() as u64;
        let mut longest_batch = Duration::ZERO;
        // While another session is busy, a spec that yields restores each batch's record in
        // parts sized to take the `yield` time, as its run's batches were; alone, whole.
        let mut throttle = Throttle::new(plan.pause, plan.yield_after, plan.batch)
            .resting(self.store.locks_every_writer_out());
        // Before the first batch, so that a rollback's pace is reckoned from its start.
        progress(&RollbackProgress {
            restored_batches: 0,
            batches: of,
            restored: 0,
            conflicts: 0,
        });
        for (n, batch) in batches.into_iter().enumerate() {
            let mut left = true;
            while left {
                if let Some(signal) = super::stop::requested() {
                    return Err(ExecError::RollbackStopped {
                        signal,
                        migration: plan.name().to_string(),
                        run_id,
                        restored: total.restored,
                        conflicts: total.conflict_keys.len(),
                    });
                }
                let size = throttle.next_size(self.store.as_mut())?;
                let rows = throttle.yielding().then_some(size);
                let part = RecordPart {
                    run_id,
                    batch,
                    rows,
                };
                let (outcome, held) = self
                    .restore_part(plan, &step, &part, &mut longest_batch)
                    .map_err(|e| match e {
                        ExecError::Store(source) => ExecError::RollbackFailed {
                            migration: plan.name().to_string(),
                            run_id,
                            batch,
                            later_batches: n,
                            restored: total.restored,
                            source: Box::new(source),
                        },
                        other => other,
                    })?;
                left = outcome.left > 0;
                let rows_done = outcome.restored + outcome.conflict_keys.len() as u64;
                total.restored += outcome.restored;
                total.conflict_keys.extend(outcome.conflict_keys);
                total.rewritten += outcome.rewritten;
                progress(&RollbackProgress {
                    restored_batches: n as u64 + u64::from(!left),
                    batches: of,
                    restored: total.restored,
                    conflicts: total.conflict_keys.len() as u64,
                });
                throttle.after_batch(rows_done, held);
            }
        }
        self.with_retries(plan, |store| {
            store.set_run_status(run_id, RunStatus::RolledBack, None)
        })?;
        Ok(Restoration {
            outcome: total,
            longest_batch,
            yielded: throttle.pace().yielded,
        })
    }

    /// Restores `part`, retried as a batch is; returns what it did and how long its last
    /// attempt held its transaction, and keeps in `longest` the longest any attempt held one.
    fn restore_part(
        &mut self,
        plan: &Plan,
        step: &BatchStep,
        part: &RecordPart,
        longest: &mut Duration,
    ) -> Result<(RollbackOutcome, Duration), ExecError> {
        let mut held = Duration::ZERO;
        let outcome = self.with_retries(plan, |store| {
            let started = Instant::now();
            let restored = store.rollback_batch(step, part.run_id, part.batch, part.rows);
            held = started.elapsed();
            *longest = (*longest).max(held);
            restored
        })?;
        Ok((outcome, held))
    }

    /// Runs `plan` `runs` times, comparing a checksum of the touched columns after each run.
    /// With `idempotent`, a state that changes after run 1 is undone back to before run 1;
    /// with `restart`, run 1 abandons the migration's unfinished run, as `mig run --restart`.
    pub fn run_repeatedly(
        &mut self,
        plan: &Plan,
        runs: u64,
        idempotent: bool,
        restart: bool,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<RepeatedSummary, ExecError> {
        let columns = plan.set_columns();
        let mut summaries: Vec<RunSummary> = Vec::new();
        let mut first_checksum = None;
        let mut unchanged = true;
        for n in 1..=runs.max(1) {
            // Only run 1 can find an unfinished run to abandon.
            let summary = match self.run(plan, restart && n == 1, progress) {
                Ok(summary) => summary,
                // Verifying idempotence is one request: failed part way, it leaves the table
                // as it found it, not with run 1 applied and a part of run 2.
                Err(source) if idempotent && n > 1 => {
                    return Err(self.undo_failed_repeat(plan, &summaries, n, source));
                }
                Err(e) => return Err(e),
            };
            summaries.push(summary);
            let checksum = self.store.checksum(plan.table(), &plan.key, &columns)?;
            match first_checksum {
                None => first_checksum = Some(checksum),
                Some(first) if first != checksum => {
                    unchanged = false;
                    if idempotent {
                        return Err(self.undo_runs(plan, &summaries, n));
                    }
                }
                Some(_) => {}
            }
        }
        Ok(RepeatedSummary {
            rows_updated: summaries.iter().map(|s| s.updated).sum(),
            runs: summaries,
            unchanged,
        })
    }

    fn undo_runs(&mut self, plan: &Plan, summaries: &[RunSummary], run: u64) -> ExecError {
        let run_ids: Vec<i64> = summaries.iter().rev().map(|s| s.run_id).collect();
        match self.roll_back_runs(plan, &run_ids) {
            Ok((restored, conflicts)) => ExecError::NotIdempotent {
                migration: plan.name().to_string(),
                run,
                restored,
                conflicts,
            },
            Err(e) => e,
        }
    }

    /// Restores the runs of a repeated request after run `run` failed with `source`: the
    /// failed run's committed batches (a post-check failure has restored them already),
    /// then the completed runs, newest first.
    fn undo_failed_repeat(
        &mut self,
        plan: &Plan,
        summaries: &[RunSummary],
        run: u64,
        source: ExecError,
    ) -> ExecError {
        let last_done = summaries.last().map_or(0, |s| s.run_id);
        let failed: Vec<i64> = match self.store.runs() {
            Ok(runs) => runs
                .iter()
                .filter(|r| r.migration == plan.name() && r.id > last_done)
                .filter(|r| r.status != RunStatus::RolledBack)
                .map(|r| r.id)
                .collect(),
            Err(e) => return e.into(),
        };
        let run_ids: Vec<i64> = failed
            .into_iter()
            .rev()
            .chain(summaries.iter().rev().map(|s| s.run_id))
            .collect();
        match self.roll_back_runs(plan, &run_ids) {
            Ok((restored, conflicts)) => ExecError::RepeatFailed {
                migration: plan.name().to_string(),
                run,
                source: Box::new(source),
                restored,
                conflicts,
            },
            Err(e) => e,
        }
    }

    /// Rolls back `run_ids` in the order given; the rows restored and the conflicts.
    fn roll_back_runs(&mut self, plan: &Plan, run_ids: &[i64]) -> Result<(u64, u64), ExecError> {
        let mut restored = 0;
        let mut conflicts = 0;
        for &run_id in run_ids {
            let outcome = self.rollback_run(plan, run_id, &mut |_| {})?.outcome;
            restored += outcome.restored;
            conflicts += outcome.conflict_keys.len() as u64;
        }
        Ok((restored, conflicts))
    }
}

fn results_of(
    validations: &[&compile::Validation],
    failures: &[Failures],
) -> Vec<ValidationResult> {
    validations
        .iter()
        .zip(failures)
        .map(|(v, f)| ValidationResult {
            name: v.name.clone(),
            passed: f.rows == 0,
            failed_rows: f.rows,
            first_failed_key: f.first_key.clone(),
        })
        .collect()
}

pub(super) fn open_store(config: &Config) -> Result<Box<dyn Store>, ExecError> {
    match &config.database {
        Database::Sqlite(path) => {
            if config.is_demo_database() && !path.exists() {
                crate::demo::create_database(&config.specs.join("demo"), path)
                    .map_err(|e| ExecError::Demo(e.to_string()))?;
            }
            if !path.exists() {
                return Err(ExecError::Store(StoreError::Open {
                    path: path.display().to_string(),
                    message: "no such file (mig creates only the demo database)".into(),
                }));
            }
            Ok(Box::new(SqliteStore::open(
                path,
                config.defaults.lock_timeout,
            )?))
        }
        Database::Postgres(url) => Ok(Box::new(PostgresStore::connect(
            url,
            config.defaults.lock_timeout,
        )?)),
    }
}

/// The runs recorded in the configured database, read without compiling the specs, so it
/// works beside a running engine and with specs that do not compile.
pub fn read_runs(config: &Config) -> Result<Vec<RunRecord>, ExecError> {
    Ok(open_store(config)?.runs()?)
}

/// A run as `mig status` shows it.
pub struct RunState {
    pub record: RunRecord,
    /// Whether some process works on it now. A run not over that none works on was
    /// interrupted: its process was killed, or it stopped at an error.
    pub worked_on: bool,
    /// What it keeps in `_mig_backup`, until it is rolled back or pruned.
    pub backup: Option<BackupSize>,
}

/// Every run, oldest first, with whether some process works on it now and its backup.
pub fn read_run_states(config: &Config) -> Result<Vec<RunState>, ExecError> {
    let mut store = open_store(config)?;
    let runs = store.runs()?;
    if runs.is_empty() {
        return Ok(vec![]);
    }
    let open: Vec<i64> = runs
        .iter()
        .filter(|r| !r.status.is_final())
        .map(|r| r.id)
        .collect();
    let held = store.held_runs(&open)?;
    let backups = store.backup_sizes()?;
    Ok(runs
        .into_iter()
        .map(|record| RunState {
            worked_on: held.contains(&record.id),
            backup: backups.get(&record.id).copied(),
            record,
        })
        .collect())
}

/// The live schema of the configured database, for `mig check`.
pub fn read_schema(config: &Config) -> Result<Schema, ExecError> {
    Ok(open_store(config)?.schema()?)
}
