//! `mig node`: JSON requests on stdin, one per line, in Jepsen Maelstrom framing; replies on
//! stdout, logs on stderr. Requests that touch tables run one at a time, in order, on a
//! worker thread; `status` on a thread of its own, so a long run never hides its own
//! progress; `init` and bad lines are answered by the reader at once, however slow the
//! database. A bad line is answered with an error and the node reads on.

use crate::compile::MigrationKind;
use crate::config::Config;
use crate::exec::{Engine, ExecError};
use crate::plan::{canonical_table, PlanError, RunOptions};
use crate::store::{RunRecord, StoreError};
use serde_json::{json, Map, Value as Json};
use std::io::{BufRead, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Lines longer than this are refused unread (the rest of the line is skipped).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
const MAX_BATCH: u64 = 1_000_000;
const MAX_RUNS: u64 = 100;
/// Requests waiting for the worker (or `status` requests for theirs); more are refused with
/// error 11 rather than held, so a client cannot grow the node's memory without bound while
/// a long run holds the worker.
const MAX_QUEUED: usize = 64;
/// Each named validation is a column of one scan, and SQLite allows 2,000 columns.
const MAX_VALIDATIONS: usize = 256;

/// Maelstrom's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    TemporarilyUnavailable = 11,
    UnknownType = 10,
    Malformed = 12,
    Internal = 13,
    NotFound = 20,
    PreconditionFailed = 22,
}

/// A refused request: its code and a text naming the field or spec at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub text: String,
}

impl Refusal {
    fn malformed(text: impl Into<String>) -> Refusal {
        Refusal {
            code: ErrorCode::Malformed,
            text: text.into(),
        }
    }
}

/// `e` as the node answers a `backfill` or `migrate` with it: where the remedy is the CLI's
/// `--restart`, the text also says how a request asks for it.
fn restart_through_the_node(e: ExecError) -> Refusal {
    let mut refusal = Refusal::from(e);
    if refusal.text.contains("--restart") {
        refusal
            .text
            .push_str(" (through the node: the same request with \"restart\": true)");
    }
    refusal
}

impl From<ExecError> for Refusal {
    fn from(e: ExecError) -> Refusal {
        Refusal {
            code: code_of(&e),
            text: e.to_string(),
        }
    }
}

/// The protocol's code for `e`: an error that stopped a run's post-checks is coded by what
/// stopped them. Maelstrom's clients take 13 as indefinite (the request may or may not have
/// taken effect), so it is kept for what mig cannot vouch for: a lost connection, an error it
/// does not know. Specs that do not compile, and a batch, rollback batch or validation the
/// database refused for the rows' values or the table's rules, are definite: nothing of the
/// failed step was written, the run stands at its checkpoint, and the same request fails the
/// same way until the spec or the rows change, so they are 22.
fn code_of(e: &ExecError) -> ErrorCode {
    match e {
        ExecError::PostCheckUnfinished { source, .. } | ExecError::RepeatFailed { source, .. } => {
            code_of(source)
        }
        ExecError::Plan(PlanError::ZeroOption { .. })
        | ExecError::AmbiguousMigrate { .. }
        | ExecError::TooManyWorkers { .. }
        | ExecError::NotShareable(_) => ErrorCode::Malformed,
        ExecError::Plan(PlanError::NoSuchMigration { .. } | PlanError::NoSuchTable(_))
        | ExecError::NoSuchValidation { .. }
        | ExecError::NothingOnTable { .. }
        | ExecError::NoRunsToPrune { .. } => ErrorCode::NotFound,
        ExecError::Plan(PlanError::NoUsableKey { .. })
        | ExecError::PostCheckFailed { .. }
        | ExecError::NotIdempotent { .. }
        | ExecError::SpecChanged { .. }
        | ExecError::KeyChanged { .. }
        | ExecError::KeyOrderChanged { .. }
        | ExecError::LimitChanged { .. }
        | ExecError::RollbackUnfinished { .. }
        | ExecError::Store(StoreError::RunMoved { .. } | StoreError::SharedRun { .. })
        | ExecError::NothingToRollBack(_)
        | ExecError::BackupPruned { .. }
        | ExecError::NullKeys { .. }
        | ExecError::Specs(_)
        | ExecError::SpecsFolder { .. }
        | ExecError::UnreadableSpecs(_)
        | ExecError::Unsupported(_) => ErrorCode::PreconditionFailed,
        ExecError::BatchFailed { source, .. }
        | ExecError::SharedBatchFailed { source, .. }
        | ExecError::RollbackFailed { source, .. }
        | ExecError::ValidationUnevaluated { source, .. }
            if source.is_refusal() =>
        {
            ErrorCode::PreconditionFailed
        }
        ExecError::Contention { .. }
        | ExecError::Store(StoreError::Contention { .. })
        | ExecError::Stopped { .. }
        | ExecError::RollbackStopped { .. } => ErrorCode::TemporarilyUnavailable,
        ExecError::Demo(_)
        | ExecError::BatchFailed { .. }
        | ExecError::SharedBatchFailed { .. }
        | ExecError::RollbackFailed { .. }
        | ExecError::PostCheckUnrestored { .. }
        | ExecError::ValidationUnevaluated { .. }
        | ExecError::Store(_) => ErrorCode::Internal,
    }
}

/// A request that passed the field checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Init {
        node_id: String,
    },
    Status,
    Backfill {
        table: String,
        column: String,
        options: RunOptions,
        /// Abandon the migration's unfinished run and start anew, as `mig run --restart`.
        restart: bool,
    },
    Validate {
        table: String,
        names: Vec<String>,
    },
    Migrate {
        table: String,
        name: Option<String>,
        runs: u64,
        idempotent: bool,
        options: RunOptions,
        /// Abandon the migration's unfinished run before run 1, as `mig run --restart`.
        restart: bool,
    },
    Plan {
        target: Target,
        options: RunOptions,
    },
    Rollback {
        target: Target,
    },
}

/// What a `plan` or `rollback` request points at.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Backfill { table: String, column: String },
    Migrate { table: String, name: Option<String> },
}

impl Target {
    fn table(&self) -> &str {
        match self {
            Target::Backfill { table, .. } | Target::Migrate { table, .. } => table,
        }
    }
}

/// Where a reply goes: inside an envelope, or as a bare body.
#[derive(Debug, Clone, PartialEq)]
enum Frame {
    Envelope { src: String, dest: String },
    Bare,
}

struct Incoming {
    frame: Frame,
    msg_id: Option<Json>,
    body: Map<String, Json>,
}

/// A checked request waiting for the worker or the status thread, without the body it was
/// read from.
struct Job {
    frame: Frame,
    msg_id: Option<Json>,
    request: Request,
    /// The node's id when the request was read, the src of its reply: a `status` read before
    /// `init` is answered from the request's `dest`, however soon `init` follows it.
    node_id: Option<String>,
}

/// Reads requests from `input` until it ends and answers each on `output`.
pub fn serve(input: impl BufRead, output: impl Write + Send + 'static, config: Config) {
    serve_with(input, output, config, handle);
}

/// What the worker does with a request once the engine is open.
type Handler = fn(&mut Engine, &Request) -> Result<Json, Refusal>;

/// `serve` with the worker's request handler as a parameter, so a test can prove what a
/// panic in a handler does without a hook in the real one.
fn serve_with(
    input: impl BufRead,
    output: impl Write + Send + 'static,
    config: Config,
    handler: Handler,
) {
    let out = Arc::new(Mutex::new(Replies::new(output)));
    let (jobs, queue) = mpsc::sync_channel::<Job>(MAX_QUEUED);
    let worker_out = Arc::clone(&out);
    let worker_config = config.clone();
    let worker = std::thread::spawn(move || work(queue, worker_out, worker_config, handler));
    let (statuses, status_queue) = mpsc::sync_channel::<Job>(MAX_QUEUED);
    let status_out = Arc::clone(&out);
    let status_config = config.clone();
    let status_worker =
        std::thread::spawn(move || answer_statuses(status_queue, status_out, status_config));
    let mut input = input;
    loop {
        let line = match read_line(&mut input) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                eprintln!("mig node: reading stdin failed: {e}");
                break;
            }
        };
        let incoming = match line
            .map_err(BadLine::unframed)
            .and_then(|text| parse_line(&text))
        {
            Ok(Some(incoming)) => incoming,
            Ok(None) => {
                eprintln!("mig node: blank line skipped");
                continue;
            }
            Err(bad) => {
                eprintln!("mig node: bad line: {}", bad.refusal.text);
                lock(&out).error(&bad.frame, None, &bad.refusal);
                continue;
            }
        };
        match parse_request(&incoming.body) {
            Err(refusal) => lock(&out).error(&incoming.frame, incoming.msg_id.as_ref(), &refusal),
            Ok(Request::Init { node_id }) => {
                let mut replies = lock(&out);
                replies.node_id = Some(node_id);
                replies.send(
                    &incoming.frame,
                    incoming.msg_id.as_ref(),
                    json!({"type": "init_ok"}),
                );
            }
            Ok(request) => {
                let (queue, waiting_for) = match request {
                    Request::Status => (&statuses, "status requests are already waiting"),
                    _ => (&jobs, "requests are already waiting for the worker"),
                };
                let job = Job {
                    frame: incoming.frame,
                    msg_id: incoming.msg_id,
                    request,
                    node_id: lock(&out).node_id.clone(),
                };
                match queue.try_send(job) {
                    Ok(()) => {}
                    Err(mpsc::TrySendError::Full(job)) => {
                        let refusal = Refusal {
                            code: ErrorCode::TemporarilyUnavailable,
                            text: format!("{MAX_QUEUED} {waiting_for}; try again"),
                        };
                        lock(&out).error(&job.frame, job.msg_id.as_ref(), &refusal);
                    }
                    Err(mpsc::TrySendError::Disconnected(_)) => break,
                }
            }
        }
    }
    drop(jobs);
    drop(statuses);
    if worker.join().is_err() {
        eprintln!("mig node: the worker thread died");
    }
    if status_worker.join().is_err() {
        eprintln!("mig node: the status thread died");
    }
}

fn lock<W: Write>(out: &Arc<Mutex<Replies<W>>>) -> std::sync::MutexGuard<'_, Replies<W>> {
    out.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs queued requests in order, each on an engine opened for it, as a `mig` command would
/// be: it reads the specs and the schema as they are now, on a connection of its own. One
/// engine kept for the node's life answered from the specs and tables of its first request,
/// and once its PostgreSQL connection was lost (a server restart, `pg_terminate_backend`)
/// every later request failed with "connection closed". A panic answers error 13.
fn work<W: Write>(
    queue: mpsc::Receiver<Job>,
    out: Arc<Mutex<Replies<W>>>,
    config: Config,
    handler: Handler,
) {
    for job in queue {
        let reply = guarded(|| {
            let mut engine = match job.request {
                Request::Rollback { .. } => {
                    Engine::open_to_roll_back(config.clone()).map(|(engine, left_out)| {
                        for left in left_out {
                            eprintln!("mig node: warning: {left}");
                        }
                        engine
                    })
                }
                _ => Engine::open(config.clone()),
            }
            .map_err(Refusal::from)?;
            handler(&mut engine, &job.request)
        });
        lock(&out).answer(&job, reply);
    }
}

/// Answers `status` requests in order, each from a connection of its own. Not on the reader:
/// a database slow to open (a server that takes the connection and never answers, a pooler
/// holding its clients) held the reader as long, and the node answered nothing meanwhile,
/// not `init`, not a malformed line. Not on the worker either, which a long run holds.
fn answer_statuses<W: Write>(
    queue: mpsc::Receiver<Job>,
    out: Arc<Mutex<Replies<W>>>,
    config: Config,
) {
    for job in queue {
        let reply = guarded(|| status_reply(&config));
        lock(&out).answer(&job, reply);
    }
}

/// Runs `answer`, turning a panic into error 13 for this request alone.
fn guarded(answer: impl FnOnce() -> Result<Json, Refusal>) -> Result<Json, Refusal> {
    catch_unwind(AssertUnwindSafe(answer)).unwrap_or_else(|panic| Err(internal_error(panic)))
}

fn internal_error(panic: Box<dyn std::any::Any + Send>) -> Refusal {
    let what = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    eprintln!("mig node: panic while handling a request: {what}");
    Refusal {
        code: ErrorCode::Internal,
        text: format!("internal error while handling the request: {what}"),
    }
}

fn handle(engine: &mut Engine, request: &Request) -> Result<Json, Refusal> {
    let started = Instant::now();
    let mut quiet = |_: &crate::exec::Progress| {};
    match request {
        Request::Backfill {
            table,
            column,
            options,
            restart,
        } => {
            let name = resolve_backfill(engine, table, column)?;
            let plan = engine.plan(&name, options)?;
            let summary = engine
                .run(&plan, *restart, &mut quiet)
                .map_err(restart_through_the_node)?;
            Ok(json!({
                "type": "backfill_complete",
                "total_processed": summary.processed,
                "total_updated": summary.updated,
                "duration_seconds": started.elapsed().as_secs_f64(),
            }))
        }
        Request::Validate { table, names } => {
            check_table(engine, table)?;
            check_validations(engine, table, names)?;
            let results = engine.validate(Some(table), names)?;
            Ok(json!({"type": "validation_results", "results": results}))
        }
        Request::Migrate {
            table,
            name,
            runs,
            idempotent,
            options,
            restart,
        } => {
            let name = resolve_migrate(engine, table, name.as_deref())?;
            let plan = engine.plan(&name, options)?;
            let summary = engine
                .run_repeatedly(&plan, *runs, *idempotent, *restart, &mut quiet)
                .map_err(restart_through_the_node)?;
            Ok(json!({
                "type": "migration_complete",
                "rows_updated": summary.rows_updated,
                "final_state": if summary.unchanged { "unchanged" } else { "changed" },
            }))
        }
        Request::Plan { target, options } => {
            let name = resolve_target(engine, target)?;
            let plan = engine.plan(&name, options)?;
            let steps = engine.describe(&plan)?;
            Ok(json!({"type": "plan", "migration": name, "steps": steps}))
        }
        Request::Rollback { target } => {
            let name = resolve_rollback(engine, target)?;
            let summary = engine.rollback(&name, &mut |_| {})?;
            Ok(json!({
                "type": "rollback_complete",
                "run_id": summary.run_id,
                "rows_restored": summary.restored,
                "conflicts": summary.conflict_keys.len(),
                "conflict_keys": summary.conflict_keys.iter().map(|k| k.to_json()).collect::<Vec<_>>(),
            }))
        }
        Request::Init { .. } | Request::Status => Err(Refusal {
            code: ErrorCode::Internal,
            text: "init and status are not the worker's: the reader answers init, a thread of its own status".into(),
        }),
    }
}

fn check_table(engine: &Engine, table: &str) -> Result<(), Refusal> {
    if engine.schema.table(table).is_none() {
        return Err(Refusal {
            code: ErrorCode::NotFound,
            text: format!("field `table`: no table named {table:?} in the database"),
        });
    }
    Ok(())
}

/// Names on `table` of the catalog's migrations of `kind`, for error texts.
fn known_on(engine: &Engine, table: &str, kind: MigrationKind) -> String {
    listed(
        engine
            .catalog
            .migrations
            .iter()
            .filter(|m| m.table == table && m.kind == kind)
            .map(|m| m.name.as_str()),
    )
}

fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn not_found(text: String) -> Refusal {
    Refusal {
        code: ErrorCode::NotFound,
        text,
    }
}

/// The backfill of `table.column`, which a spec must declare: a column the table has but no
/// backfill writes is not a request `mig` can run.
fn resolve_backfill(engine: &Engine, table: &str, column: &str) -> Result<String, Refusal> {
    check_table(engine, table)?;
    let name = format!("{table}.{column}");
    match engine.catalog.migration(&name) {
        Some(m) if m.kind == MigrationKind::Backfill => Ok(name),
        _ => Err(not_found(format!(
            "field `column`: no backfill of {column:?} on table `{table}` (backfills on it: {})",
            known_on(engine, table, MigrationKind::Backfill)
        ))),
    }
}

/// The migrate block `name` on `table`, or the only one on it. A backfill is not one, so a
/// `migrate` request never runs what a spec declared as a backfill.
fn resolve_migrate(engine: &Engine, table: &str, name: Option<&str>) -> Result<String, Refusal> {
    check_table(engine, table)?;
    let Some(name) = name else {
        return Ok(engine.migrate_on_table(table)?);
    };
    match engine.catalog.migration(name) {
        Some(m) if m.table == table && m.kind == MigrationKind::Migrate => Ok(name.to_string()),
        Some(m) if m.kind == MigrationKind::Migrate => Err(not_found(format!(
            "field `name`: migration `{name}` is on table `{}`, not `{table}`",
            m.table
        ))),
        _ => Err(not_found(format!(
            "field `name`: no migrate block named {:?} on table `{table}` (migrate blocks on it: {})",
            truncate(name, 40),
            known_on(engine, table, MigrationKind::Migrate)
        ))),
    }
}

/// Every name in `names` must be a validation on `table`.
fn check_validations(engine: &Engine, table: &str, names: &[String]) -> Result<(), Refusal> {
    let on_table = |name: &str| {
        engine
            .catalog
            .validation(name)
            .is_some_and(|v| v.table == table)
    };
    match names.iter().find(|n| !on_table(n)) {
        None => Ok(()),
        Some(missing) => Err(not_found(format!(
            "field `validations`: no validation named {:?} on table `{table}` (known: {})",
            truncate(missing, 40),
            listed(
                engine
                    .catalog
                    .validations
                    .iter()
                    .filter(|v| v.table == table)
                    .map(|v| v.name.as_str())
            )
        ))),
    }
}

fn resolve_target(engine: &Engine, target: &Target) -> Result<String, Refusal> {
    match target {
        Target::Backfill { table, column } => resolve_backfill(engine, table, column),
        Target::Migrate { table, name } => resolve_migrate(engine, table, name.as_deref()),
    }
}

/// The migration a rollback request names: one the specs declare, or else one whose runs
/// recorded it on `table`, since a rollback needs only the run's record and its spec may
/// have been removed or no longer compile. A table's one migrate block is looked for among
/// the recorded runs only where the specs declare none on it.
fn resolve_rollback(engine: &mut Engine, target: &Target) -> Result<String, Refusal> {
    let declared = resolve_target(engine, target);
    let Err(refusal) = declared else {
        return declared;
    };
    if refusal.code != ErrorCode::NotFound {
        return Err(refusal);
    }
    check_table(engine, target.table())?;
    let runs = engine.status()?;
    let mut recorded: Vec<&str> = Vec::new();
    for run in &runs {
        let on_table = canonical_table(&run.spec) == Some(target.table());
        let named = match target {
            Target::Backfill { table, column } => run.migration == format!("{table}.{column}"),
            Target::Migrate {
                name: Some(name), ..
            } => run.migration == *name,
            // A backfill's name is `TABLE.COLUMN`; a migrate block's is one identifier.
            Target::Migrate { name: None, .. } => !run.migration.contains('.'),
        };
        if on_table && named && !recorded.contains(&run.migration.as_str()) {
            recorded.push(&run.migration);
        }
    }
    match recorded.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(refusal),
    }
}

/// Status from a connection of its own, so it answers while a run holds the worker.
fn status_reply(config: &Config) -> Result<Json, Refusal> {
    let runs = crate::exec::read_run_states(config)?;
    let runs: Vec<Json> = runs
        .iter()
        .map(|state| {
            let mut run = run_json(&state.record);
            run["active"] = json!(state.worked_on);
            run
        })
        .collect();
    Ok(json!({"type": "status", "runs": runs}))
}

pub fn run_json(run: &RunRecord) -> Json {
    json!({
        "id": run.id,
        "migration": run.migration,
        "state": run.status.as_str(),
        "processed": run.processed,
        "updated": run.updated,
        "batches": run.batches,
        "checkpoint": run.checkpoint.as_ref().map(|k| k.to_json()),
        "started_at": run.started_at,
        "updated_at": run.updated_at,
        "message": run.message,
    })
}

/// One line of stdin as text; a line over the limit or not UTF-8 is a refusal.
type Line = Result<String, Refusal>;

fn read_line(input: &mut impl BufRead) -> std::io::Result<Option<Line>> {
    let mut bytes = Vec::new();
    let mut too_long = false;
    loop {
        let buffer = input.fill_buf()?;
        if buffer.is_empty() {
            if bytes.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (chunk, found_end) = match buffer.iter().position(|&b| b == b'\n') {
            Some(i) => (&buffer[..i], true),
            None => (buffer, false),
        };
        if !too_long && bytes.len() + chunk.len() <= MAX_LINE_BYTES {
            bytes.extend_from_slice(chunk);
        } else {
            too_long = true;
            bytes.clear();
        }
        let used = chunk.len() + usize::from(found_end);
        input.consume(used);
        if found_end {
            break;
        }
    }
    if too_long {
        return Ok(Some(Err(Refusal::malformed(format!(
            "line longer than {MAX_LINE_BYTES} bytes; skipped"
        )))));
    }
    Ok(Some(String::from_utf8(bytes).map_err(|e| {
        Refusal::malformed(format!(
            "line is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })))
}

/// A line that cannot be read as a request, and where its error reply goes.
struct BadLine {
    frame: Frame,
    refusal: Refusal,
}

impl BadLine {
    /// No envelope could be read, so the reply is a bare body.
    fn unframed(refusal: Refusal) -> BadLine {
        BadLine {
            frame: Frame::Bare,
            refusal,
        }
    }
}

/// A line as an envelope or a bare body; `None` for a blank line.
fn parse_line(text: &str) -> Result<Option<Incoming>, BadLine> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let value: Json = serde_json::from_str(text).map_err(|e| {
        BadLine::unframed(Refusal::malformed(format!("line is not valid JSON: {e}")))
    })?;
    let Json::Object(mut object) = value else {
        return Err(BadLine::unframed(Refusal::malformed(
            "a request must be a JSON object",
        )));
    };
    let frame = if object.contains_key("body") {
        let field = |o: &Map<String, Json>, name: &str| match o.get(name) {
            Some(Json::String(s)) => Ok(s.clone()),
            _ => Err(BadLine::unframed(Refusal::malformed(format!(
                "envelope field `{name}` must be a string"
            )))),
        };
        let src = field(&object, "src")?;
        let dest = field(&object, "dest")?;
        let frame = Frame::Envelope { src, dest };
        object = match object.remove("body") {
            Some(Json::Object(body)) => body,
            _ => {
                return Err(BadLine {
                    frame,
                    refusal: Refusal::malformed("envelope field `body` must be an object"),
                })
            }
        };
        frame
    } else {
        Frame::Bare
    };
    let msg_id = object.get("msg_id").cloned();
    Ok(Some(Incoming {
        frame,
        msg_id,
        body: object,
    }))
}

/// Checks a body's fields for its type; unknown fields are refused, not ignored.
pub fn parse_request(body: &Map<String, Json>) -> Result<Request, Refusal> {
    let fields = Fields(body);
    // Without a usable msg_id the reply could not say what it answers.
    match body.get("msg_id") {
        Some(id) if id.is_u64() => {}
        Some(_) => {
            return Err(Refusal::malformed(
                "field `msg_id` must be a non-negative integer",
            ))
        }
        None => return Err(Refusal::malformed("missing field `msg_id`")),
    }
    let kind = match body.get("type") {
        Some(Json::String(t)) => t.as_str(),
        Some(_) => return Err(Refusal::malformed("field `type` must be a string")),
        None => return Err(Refusal::malformed("missing field `type`")),
    };
    match kind {
        "init" => {
            fields.only(&["node_id", "node_ids"])?;
            let node_id = fields.string("node_id")?;
            fields.strings("node_ids")?;
            Ok(Request::Init { node_id })
        }
        "status" => {
            fields.only(&[])?;
            Ok(Request::Status)
        }
        "backfill" => {
            fields.only(&["table", "column", "batch_size", "total_rows", "restart"])?;
            Ok(Request::Backfill {
                table: fields.name("table")?,
                column: fields.name("column")?,
                options: fields.run_options()?,
                restart: fields.boolean("restart")?.unwrap_or(false),
            })
        }
        "validate" => {
            fields.only(&["table", "validations"])?;
            let table = fields.name("table")?;
            let names = fields.names("validations")?;
            if names.is_empty() || names.len() > MAX_VALIDATIONS {
                return Err(Refusal::malformed(format!(
                    "field `validations` must name from 1 to {MAX_VALIDATIONS} validations, got {}",
                    names.len()
                )));
            }
            Ok(Request::Validate { table, names })
        }
        "migrate" => {
            fields.only(&["table", "name", "runs", "idempotent", "batch_size", "restart"])?;
            let runs = fields.count("runs", MAX_RUNS)?.unwrap_or(1);
            let idempotent = fields.boolean("idempotent")?.unwrap_or(false);
            // Idempotence is verified by comparing run 2 on with run 1: one run alone would
            // answer `unchanged` without having checked anything.
            if idempotent && runs < 2 {
                return Err(Refusal::malformed(format!(
                    "field `idempotent` asks to verify that runs 2 on change nothing, which needs \
                     field `runs` of at least 2, got {runs}"
                )));
            }
            Ok(Request::Migrate {
                table: fields.name("table")?,
                name: fields.optional_name("name")?,
                runs,
                idempotent,
                options: fields.run_options()?,
                restart: fields.boolean("restart")?.unwrap_or(false),
            })
        }
        "plan" => {
            fields.only(&["kind", "table", "column", "name", "batch_size", "total_rows", "runs", "idempotent", "restart"])?;
            let target = fields.target(fields.string("kind")?.as_str())?;
            // A plan shows one run, but the fields a `migrate` takes are still checked.
            fields.count("runs", MAX_RUNS)?;
            fields.boolean("idempotent")?;
            fields.boolean("restart")?;
            Ok(Request::Plan {
                target,
                options: fields.run_options()?,
            })
        }
        "rollback" => {
            fields.only(&["table", "column", "name"])?;
            let kind = if body.contains_key("column") { "backfill" } else { "migrate" };
            Ok(Request::Rollback {
                target: fields.target(kind)?,
            })
        }
        other => Err(Refusal {
            code: ErrorCode::UnknownType,
            text: format!("unknown request type {other:?}: expected init, backfill, validate, migrate, plan, status or rollback"),
        }),
    }
}

struct Fields<'a>(&'a Map<String, Json>);

impl Fields<'_> {
    fn only(&self, allowed: &[&str]) -> Result<(), Refusal> {
        match self
            .0
            .keys()
            .find(|k| !["type", "msg_id"].contains(&k.as_str()) && !allowed.contains(&k.as_str()))
        {
            Some(k) => Err(Refusal::malformed(format!("unknown field {k:?}"))),
            None => Ok(()),
        }
    }

    fn string(&self, name: &str) -> Result<String, Refusal> {
        match self.0.get(name) {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(other) => Err(Refusal::malformed(format!(
                "field `{name}` must be a string, got {}",
                type_name(other)
            ))),
            None => Err(Refusal::malformed(format!("missing field `{name}`"))),
        }
    }

    /// A table, column or migration name: a string shaped like an identifier. Whether it
    /// exists is decided later, against the specs and the live schema.
    fn name(&self, field: &str) -> Result<String, Refusal> {
        let s = self.string(field)?;
        if is_name(&s) {
            Ok(s)
        } else {
            Err(not_a_name(field, &s))
        }
    }

    /// An array of names, as `name` checks one.
    fn names(&self, field: &str) -> Result<Vec<String>, Refusal> {
        let names = self.strings(field)?;
        match names.iter().find(|n| !is_name(n)) {
            None => Ok(names),
            Some(bad) => Err(not_a_name(field, bad)),
        }
    }

    fn optional_name(&self, field: &str) -> Result<Option<String>, Refusal> {
        match self.0.get(field) {
            None | Some(Json::Null) => Ok(None),
            Some(_) => self.name(field).map(Some),
        }
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, Refusal> {
        let bad = || Refusal::malformed(format!("field `{name}` must be an array of strings"));
        match self.0.get(name) {
            Some(Json::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
                .collect(),
            Some(_) => Err(bad()),
            None => Err(Refusal::malformed(format!("missing field `{name}`"))),
        }
    }

    /// An optional whole number from 1 to `max`.
    fn count(&self, name: &str, max: u64) -> Result<Option<u64>, Refusal> {
        match self.0.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(Refusal::malformed(format!(
                    "field `{name}` must be a whole number from 1 to {max}, got {}",
                    truncate(&v.to_string(), 40)
                ))),
            },
        }
    }

    fn boolean(&self, name: &str) -> Result<Option<bool>, Refusal> {
        match self.0.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Refusal::malformed(format!(
                "field `{name}` must be true or false, got {}",
                type_name(other)
            ))),
        }
    }

    fn run_options(&self) -> Result<RunOptions, Refusal> {
        Ok(RunOptions {
            batch: self.count("batch_size", MAX_BATCH)?,
            limit: self.count("total_rows", i64::MAX as u64)?,
        })
    }

    /// A backfill is named by `table` and `column`, a migrate block by `table` and `name`;
    /// the other's field is refused rather than ignored.
    fn target(&self, kind: &str) -> Result<Target, Refusal> {
        let refuse = |field: &str| {
            if self.0.contains_key(field) {
                Err(Refusal::malformed(format!(
                    "field `{field}` does not go with a {kind}"
                )))
            } else {
                Ok(())
            }
        };
        match kind {
            "backfill" => {
                refuse("name")?;
                Ok(Target::Backfill {
                    table: self.name("table")?,
                    column: self.name("column")?,
                })
            }
            "migrate" => {
                refuse("column")?;
                Ok(Target::Migrate {
                    table: self.name("table")?,
                    name: self.optional_name("name")?,
                })
            }
            other => Err(Refusal::malformed(format!(
                "field `kind` must be \"backfill\" or \"migrate\", got {:?}",
                truncate(other, 40)
            ))),
        }
    }
}

/// Shaped like a table, column or migration name: ASCII letters, digits, `_` and `.`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// A string that cannot name anything in the database is, to the client, a name not found.
fn not_a_name(field: &str, s: &str) -> Refusal {
    not_found(format!(
        "field `{field}`: {:?} is not a name (ASCII letters, digits, _ and ., not starting with a digit or ., at most 128 characters)",
        truncate(s, 40)
    ))
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn error_body(refusal: &Refusal) -> Json {
    json!({"type": "error", "code": refusal.code as u8, "text": refusal.text})
}

/// Writes replies, one JSON line each, numbering them as Maelstrom expects.
struct Replies<W: Write> {
    output: W,
    node_id: Option<String>,
    next_msg_id: u64,
}

impl<W: Write> Replies<W> {
    fn new(output: W) -> Self {
        Replies {
            output,
            node_id: None,
            next_msg_id: 1,
        }
    }

    /// The reply to a queued request, from the node's id as it was when the request was read.
    fn answer(&mut self, job: &Job, reply: Result<Json, Refusal>) {
        let body = reply.unwrap_or_else(|refusal| error_body(&refusal));
        self.write(job.node_id.clone(), &job.frame, job.msg_id.as_ref(), body);
    }

    fn error(&mut self, frame: &Frame, msg_id: Option<&Json>, refusal: &Refusal) {
        self.send(frame, msg_id, error_body(refusal));
    }

    fn send(&mut self, frame: &Frame, msg_id: Option<&Json>, body: Json) {
        self.write(self.node_id.clone(), frame, msg_id, body);
    }

    fn write(
        &mut self,
        node_id: Option<String>,
        frame: &Frame,
        msg_id: Option<&Json>,
        mut body: Json,
    ) {
        if let Json::Object(fields) = &mut body {
            if let Some(id) = msg_id.filter(|id| id.is_u64()) {
                fields.insert("in_reply_to".into(), id.clone());
            }
            fields.insert("msg_id".into(), json!(self.next_msg_id));
        }
        self.next_msg_id += 1;
        let line = match frame {
            Frame::Bare => body,
            Frame::Envelope { src, dest } => json!({
                "src": node_id.unwrap_or_else(|| dest.clone()),
                "dest": src,
                "body": body,
            }),
        };
        let written = writeln!(self.output, "{line}").and_then(|()| self.output.flush());
        if let Err(e) = written {
            eprintln!("mig node: writing a reply failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch the database refused for its values is a definite failure (22); one that
    /// failed for a reason mig cannot vouch for (here the connection) stays indefinite (13).
    #[test]
    fn a_failed_batch_is_coded_by_what_failed_it() {
        let failed = |source: StoreError| ExecError::BatchFailed {
            migration: "t.c".into(),
            run_id: 1,
            batch: 2,
            source: Box::new(source),
        };
        let refused = failed(StoreError::Unwritable("not UTF-8".into()));
        assert_eq!(code_of(&refused), ErrorCode::PreconditionFailed);
        let lost = failed(StoreError::Open {
            path: "db".into(),
            message: "connection reset".into(),
        });
        assert_eq!(code_of(&lost), ErrorCode::Internal);
    }

    /// Stdout the test reads back once the node has finished.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The real handler, except that a request on table `boom` panics inside it.
    fn panics_on_boom(engine: &mut Engine, request: &Request) -> Result<Json, Refusal> {
        match request {
            Request::Validate { table, .. } if table == "boom" => panic!("boom went the handler"),
            _ => handle(engine, request),
        }
    }

    fn project() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        std::fs::write(
            dir.path().join("specs/t.mig"),
            "validate positive on t {\n    expect a > 0\n}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("mig.toml"),
            "specs = \"specs\"\n[database]\nurl = \"sqlite:db.sqlite\"\n",
        )
        .unwrap();
        rusqlite::Connection::open(dir.path().join("db.sqlite"))
            .unwrap()
            .execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER); INSERT INTO t VALUES (1, 1);",
            )
            .unwrap();
        let config = Config::load(None, dir.path()).unwrap();
        (dir, config)
    }

    #[test]
    fn a_panic_answers_error_13_and_the_next_request_is_served() {
        let (_dir, config) = project();
        let input = [
            json!({"type": "validate", "msg_id": 1, "table": "boom", "validations": ["positive"]}),
            json!({"type": "validate", "msg_id": 2, "table": "t", "validations": ["positive"]}),
        ]
        .iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>();
        let output = Captured::default();
        serve_with(input.as_bytes(), output.clone(), config, panics_on_boom);
        let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        let replies: Vec<Json> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(replies.len(), 2, "{text}");
        assert_eq!(replies[0]["in_reply_to"], 1);
        assert_eq!(replies[0]["type"], "error");
        assert_eq!(replies[0]["code"], 13);
        assert!(replies[0]["text"]
            .as_str()
            .unwrap()
            .contains("boom went the handler"));
        assert_eq!(replies[1]["in_reply_to"], 2);
        assert_eq!(replies[1]["type"], "validation_results", "{text}");
        assert_eq!(replies[1]["results"][0]["passed"], true, "{text}");
    }

    /// Held by a test to keep the worker inside its first request.
    static GATE: Mutex<()> = Mutex::new(());

    fn waits_at_the_gate(engine: &mut Engine, request: &Request) -> Result<Json, Refusal> {
        drop(GATE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        handle(engine, request)
    }

    fn replies(output: &Captured) -> Vec<Json> {
        let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn requests_beyond_the_queue_are_refused_with_11_and_the_rest_answered() {
        let (_dir, config) = project();
        let beyond = 10;
        let total = MAX_QUEUED + 1 + beyond;
        let input: String = (1..=total)
            .map(|id| {
                let request = json!({"type": "validate", "msg_id": id, "table": "t", "validations": ["positive"]});
                format!("{request}\n")
            })
            .collect();
        let output = Captured::default();
        let gate = GATE.lock().unwrap();
        let writer = output.clone();
        let node = std::thread::spawn(move || {
            serve_with(input.as_bytes(), writer, config, waits_at_the_gate)
        });
        while replies(&output).len() < beyond {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        drop(gate);
        node.join().unwrap();

        let all = replies(&output);
        assert_eq!(all.len(), total, "one reply per request");
        let mut answered: Vec<u64> = all
            .iter()
            .map(|r| r["in_reply_to"].as_u64().unwrap())
            .collect();
        answered.sort();
        assert_eq!(answered, (1..=total as u64).collect::<Vec<_>>());
        let refused = all.iter().filter(|r| r["code"] == 11).count();
        // The worker may or may not have taken the first request off the queue yet.
        assert!(
            (beyond..=beyond + 1).contains(&refused),
            "{refused} refused"
        );
        let served = all
            .iter()
            .filter(|r| r["type"] == "validation_results")
            .count();
        assert_eq!(served + refused, total);
    }

    #[test]
    fn a_panic_outside_the_worker_is_error_13_too() {
        let refusal = guarded(|| panic!("status broke")).unwrap_err();
        assert_eq!(refusal.code, ErrorCode::Internal);
        assert!(refusal.text.contains("status broke"));
    }
}
