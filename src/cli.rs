//! The command line: `mig check | plan | run | validate | status | rollback | node | demo`.
//! Exit codes: 0 done; 1 a validation or precondition failed (the run was rolled back, the
//! spec changed, ...); 2 bad input (a spec error, an unknown name, bad arguments);
//! 3 temporarily unavailable (lock timeouts after retries: try again); 4 database or
//! internal error.

use crate::compile::{self, Idempotence, SourceFile};
use crate::config::{show_size, Config};
use crate::diagnostic::FileDiagnostics;
use crate::exec::throttle::YieldReport;
use crate::exec::{self, Engine, ExecError, Progress, RollbackProgress, RunSummary};
use crate::node::{self, ErrorCode, Refusal};
use crate::plan::{count, RunOptions};
use crate::store::{RunRecord, RunStatus, StoreError};
use crate::value::Value;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "mig",
    version,
    about = "Data migrations on live databases, in small checkpointed batches"
)]
pub struct Cli {
    /// mig.toml to use (default: the nearest one above the working directory)
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check spec files, or the .mig files below a folder (default: every .mig in the specs
    /// folder), against the live schema
    Check {
        files: Vec<PathBuf>,
        /// Fail (exit 4) where the database cannot be opened, rather than check the specs
        /// without its schema: for a CI job that means to check against the live schema
        #[arg(long)]
        require_database: bool,
    },
    /// Show what a migration will do, batch by batch, without doing it
    Plan {
        name: String,
        #[arg(long)]
        batch: Option<u64>,
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Run a migration (a backfill is named TABLE.COLUMN), resuming its unfinished run
    Run {
        name: String,
        /// Rows per batch (overrides the spec and mig.toml)
        #[arg(long)]
        batch: Option<u64>,
        /// Process at most this many rows, lowest keys first
        #[arg(long)]
        limit: Option<u64>,
        /// Abandon an unfinished run (its backup is kept for rollback) and start a new one;
        /// needed to run again after the spec changed under a checkpoint
        #[arg(long)]
        restart: bool,
        /// Start a new run although a completed run of the migration changed the rows and a
        /// set is not proven idempotent (`set n = n + 1`): it applies the sets again
        #[arg(long)]
        again: bool,
        /// Share the run between N workers in this process, and with every other `mig run
        /// --workers` on the same migration (PostgreSQL)
        #[arg(long, conflicts_with_all = ["limit", "restart"])]
        workers: Option<u64>,
    },
    /// Run validations over whole tables (default: all of them)
    Validate { names: Vec<String> },
    /// Show every run recorded in the database
    Status,
    /// Restore the old values of a migration's most recent run, finishing an interrupted rollback first
    Rollback { name: String },
    /// Drop the backup of a migration's runs that are over: they can no longer be rolled back
    Prune { name: String },
    /// Answer JSON requests on stdin (Maelstrom framing)
    Node,
    /// Make a fresh demo database and run the demo flow on it
    Demo,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config = match Config::load(cli.config.as_deref(), &cwd) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let command = match cli.command {
        Some(c) => c,
        None if !std::io::stdin().is_terminal() => Command::Node,
        None => {
            eprintln!("error: no command given; see `mig --help`");
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        Command::Node => {
            node::serve(std::io::stdin().lock(), std::io::stdout(), config);
            Ok(())
        }
        Command::Check {
            files,
            require_database,
        } => check(config, &files, require_database),
        Command::Plan { name, batch, limit } => plan(config, &name, RunOptions { batch, limit }),
        Command::Run {
            name,
            batch,
            limit,
            restart,
            again,
            workers: None,
        } => run(config, &name, RunOptions { batch, limit }, restart, again),
        Command::Run {
            name,
            batch,
            again,
            workers: Some(workers),
            ..
        } => run_workers(
            config,
            &name,
            RunOptions { batch, limit: None },
            workers,
            again,
        ),
        Command::Validate { names } => validate(config, names),
        Command::Status => status(config),
        Command::Rollback { name } => rollback(config, &name),
        Command::Prune { name } => prune(config, &name),
        Command::Demo => demo(config),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.text.is_empty() {
                eprintln!("error: {}", failure.text);
            }
            ExitCode::from(failure.exit_code)
        }
    }
}

/// Why a command failed and the exit code that says so.
struct Failure {
    exit_code: u8,
    text: String,
}

impl From<ExecError> for Failure {
    fn from(e: ExecError) -> Failure {
        if let ExecError::Specs(diagnostics) = &e {
            eprint!("{}", compile::render_diagnostics(diagnostics));
            return Failure {
                exit_code: 2,
                text: String::new(),
            };
        }
        if let ExecError::UnreadableSpecs(_) = &e {
            return Failure {
                exit_code: 2,
                text: e.to_string(),
            };
        }
        if is_database_failure(&e) {
            return Failure {
                exit_code: 4,
                text: e.to_string(),
            };
        }
        if let ExecError::Stopped { signal, .. } | ExecError::RollbackStopped { signal, .. } = &e {
            return Failure {
                exit_code: signal.exit_code(),
                text: e.to_string(),
            };
        }
        Refusal::from(e).into()
    }
}

/// Whether `e` exits 4 whatever the node answers: the node tells a definite refusal (22) from
/// a failure of unknown outcome (13), but exit codes make no such difference, and a failed
/// batch, rollback, validation or post-check exits 4 as it always has.
fn is_database_failure(e: &ExecError) -> bool {
    match e {
        ExecError::PostCheckUnfinished { source, .. } | ExecError::RepeatFailed { source, .. } => {
            is_database_failure(source)
        }
        ExecError::BatchFailed { .. }
        | ExecError::SharedBatchFailed { .. }
        | ExecError::RollbackFailed { .. }
        | ExecError::ValidationUnevaluated { .. }
        | ExecError::SpecsFolder { .. }
        | ExecError::Unsupported(_) => true,
        _ => false,
    }
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Failure {
        let exit_code = match r.code {
            ErrorCode::PreconditionFailed => 1,
            ErrorCode::Malformed | ErrorCode::NotFound | ErrorCode::UnknownType => 2,
            ErrorCode::TemporarilyUnavailable => 3,
            ErrorCode::Internal => 4,
        };
        Failure {
            exit_code,
            text: r.text,
        }
    }
}

fn check(config: Config, files: &[PathBuf], require_database: bool) -> Result<(), Failure> {
    let CheckSources {
        sources,
        reported,
        outside,
    } = check_sources(&config, files)?;
    // Specs are checked on their own where the database cannot be opened; a database that
    // opens but whose schema cannot be read is an error, not a check without it, and one
    // locked past the lock timeout is "try again", as for every command.
    let schema = match exec::read_schema(&config) {
        Ok(schema) => Some(schema),
        Err(e @ ExecError::Store(StoreError::Open { .. } | StoreError::ConnectTimeout { .. }))
            if !require_database =>
        {
            println!(
                "note: the database is not reachable, so tables and columns are not checked: {e}"
            );
            None
        }
        Err(e @ ExecError::Store(StoreError::Contention { .. })) => return Err(e.into()),
        Err(e) => {
            return Err(Failure {
                exit_code: 4,
                text: format!("cannot read the database's schema to check the specs against: {e}"),
            })
        }
    };
    let catalog =
        compile::compile(&sources, schema.as_ref()).map_err(|all| refuse_specs(all, &reported))?;
    let is_reported = |path: &String| reported.contains(path);
    for m in catalog
        .migrations
        .iter()
        .filter(|m| is_reported(&m.origin.path))
    {
        println!("{} {} on {}", kind_word(m.kind), m.name, m.table);
        for a in &m.sets {
            let mark = match a.idempotence {
                Idempotence::Proven(_) => "idempotent",
                Idempotence::Not(_) => "NOT idempotent",
                Idempotence::Unknown(_) => "idempotence unknown",
            };
            println!(
                "  set {} = {}: {mark} ({})",
                a.column,
                a.value,
                a.idempotence.reason()
            );
        }
    }
    let validations: Vec<_> = catalog
        .validations
        .iter()
        .filter(|v| is_reported(&v.origin.path))
        .collect();
    for v in &validations {
        println!("validate {} on {}", v.name, v.table);
    }
    let migrations = catalog
        .migrations
        .iter()
        .filter(|m| is_reported(&m.origin.path))
        .count();
    println!(
        "ok: {}, {}, {}{}",
        count(reported.len() as u64, "file", "files"),
        count(migrations as u64, "migration", "migrations"),
        count(validations.len() as u64, "validation", "validations"),
        if schema.is_some() {
            ", checked against the live schema"
        } else {
            ""
        }
    );
    for path in outside {
        println!(
            "note: {path} is not in the specs folder {}: mig run, plan, validate and the node \
             do not read it until it is",
            config.specs.display()
        );
    }
    Ok(())
}

/// What `mig check` compiles and reports on.
struct CheckSources {
    sources: Vec<SourceFile>,
    /// The paths of the files reported on.
    reported: Vec<String>,
    /// Named files that are not in the specs folder: they check here, and a run does not
    /// see them.
    outside: Vec<String>,
}

/// The specs `mig check` compiles, and the paths of those it reports on. Files named on the
/// command line are checked in the context of the specs folder, as a run will see them: the
/// folder's other files come first, so a name declared twice is reported in the named file.
/// A file named twice, or named and in the folder, is read once.
fn check_sources(config: &Config, files: &[PathBuf]) -> Result<CheckSources, Failure> {
    let folder = match exec::read_specs(&config.specs) {
        Err(ExecError::SpecsFolder { .. }) if !files.is_empty() && !config.specs.exists() => {
            Vec::new()
        }
        folder => folder?,
    };
    if files.is_empty() {
        let reported = folder.iter().map(|f| f.path.clone()).collect();
        return Ok(CheckSources {
            sources: folder,
            reported,
            outside: Vec::new(),
        });
    }
    let mut named: Vec<(PathBuf, SourceFile)> = Vec::new();
    for path in &with_folders_walked(files)? {
        let cannot_read = |e: std::io::Error| Failure {
            exit_code: 2,
            text: format!("cannot read {}: {e}", path.display()),
        };
        let real = entry(path).map_err(cannot_read)?;
        if named.iter().any(|(seen, _)| *seen == real) {
            continue;
        }
        let text = std::fs::read_to_string(path).map_err(cannot_read)?;
        named.push((
            real,
            SourceFile::from_disk(path.display().to_string(), text),
        ));
    }
    let in_folder = |f: &SourceFile| entry(&exec::spec_file_path(&config.specs, &f.path)).ok();
    let folder_entries: Vec<PathBuf> = folder.iter().filter_map(in_folder).collect();
    let outside = named
        .iter()
        .filter(|(real, _)| !folder_entries.contains(real))
        .map(|(_, f)| f.path.clone())
        .collect();
    let mut sources: Vec<SourceFile> = folder
        .into_iter()
        .filter(|f| in_folder(f).is_none_or(|real| named.iter().all(|(n, _)| *n != real)))
        .collect();
    let reported = named.iter().map(|(_, f)| f.path.clone()).collect();
    sources.extend(named.into_iter().map(|(_, f)| f));
    Ok(CheckSources {
        sources,
        reported,
        outside,
    })
}

/// `files` with each folder among them replaced by the `.mig` files below it, as the specs
/// folder is walked; a folder with none is an error, since checking nothing would pass.
fn with_folders_walked(files: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut walked = Vec::new();
    for path in files {
        if !path.is_dir() {
            walked.push(path.clone());
            continue;
        }
        let below = exec::specs::spec_files_below(path)?;
        if below.is_empty() {
            return Err(Failure {
                exit_code: 2,
                text: format!("{} is a folder with no .mig file in it", path.display()),
            });
        }
        walked.extend(below);
    }
    Ok(walked)
}

/// Which entry of which folder `path` is, however its folder is spelled. The entry itself is
/// not followed: a symbolic link in the specs folder to a named file is a second file, as a
/// run reads it.
fn entry(path: &Path) -> std::io::Result<PathBuf> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.canonicalize()?,
        _ => std::env::current_dir()?,
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    Ok(folder.join(name))
}

/// Prints the diagnostics of the reported files. Errors only in other files of the specs
/// folder are named, not shown: they stop a run as surely, but `mig check FILE` is about FILE.
fn refuse_specs(all: Vec<FileDiagnostics>, reported: &[String]) -> Failure {
    let (mine, others): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|f| reported.contains(&f.path));
    eprint!("{}", compile::render_diagnostics(&mine));
    if mine.is_empty() {
        let paths: Vec<&str> = others.iter().map(|f| f.path.as_str()).collect();
        return Failure {
            exit_code: 2,
            text: format!(
                "the specs folder does not compile: other files have errors ({}); `mig check` shows them",
                paths.join(", ")
            ),
        };
    }
    Failure {
        exit_code: 2,
        text: String::new(),
    }
}

fn kind_word(kind: compile::MigrationKind) -> &'static str {
    match kind {
        compile::MigrationKind::Backfill => "backfill",
        compile::MigrationKind::Migrate => "migrate",
    }
}

fn plan(config: Config, name: &str, options: RunOptions) -> Result<(), Failure> {
    let mut engine = Engine::open(config)?;
    let plan = engine.plan(name, &options)?;
    for line in engine.describe(&plan)? {
        println!("{line}");
    }
    Ok(())
}

fn run(
    config: Config,
    name: &str,
    options: RunOptions,
    restart: bool,
    again: bool,
) -> Result<(), Failure> {
    let mut engine = Engine::open(config.clone())?;
    let plan = engine.plan(name, &options)?;
    if !again {
        refuse_applied_before(&mut engine, &plan)?;
    }
    exec::stop::catch_signals();
    let mut reporter = Reporter::new(name, "rows");
    let summary = engine.run(&plan, restart, &mut |p| reporter.show(p));
    reporter.finish();
    let summary = match summary {
        Err(e) if e.lost_connection() => return after_lost_connection(&config, plan.name(), e),
        summary => summary?,
    };
    print_summary(&summary);
    Ok(())
}

/// A run whose connection was lost: its last statement (a batch, or the update that marks
/// the run completed) may have committed or not, so the database is asked again where the
/// run stands. Told only "resume it", a probe's user ran a run that had completed a second
/// time; a completed run is now said to be done (exit 0).
fn after_lost_connection(config: &Config, name: &str, lost: ExecError) -> Result<(), Failure> {
    let latest =
        exec::read_runs(config).map(|runs| runs.into_iter().rev().find(|r| r.migration == name));
    let run = match latest {
        Ok(Some(run)) => run,
        Ok(None) | Err(_) => {
            return Err(Failure {
                exit_code: 4,
                text: format!(
                    "{lost}\nthe connection to the database was lost, and where the run stands \
                     cannot be read now: `mig status` says once the database answers"
                ),
            })
        }
    };
    let state = format!(
        "run {} of {name} is {} ({} rows processed, {} updated, checkpoint {})",
        run.id,
        run.status.as_str(),
        run.processed,
        run.updated,
        run.checkpoint
            .as_ref()
            .map_or("-".to_string(), |c| c.to_string())
    );
    if run.status == RunStatus::Completed {
        eprintln!("warning: {lost}");
        println!("{state}: the connection was lost as it finished, after its last batch");
        return Ok(());
    }
    let next = what_goes_on_with(&run).unwrap_or_else(|| "`mig status` shows it".to_string());
    Err(Failure {
        exit_code: 4,
        text: format!(
            "{lost}\nthe connection to the database was lost; read again, {state}: {next}"
        ),
    })
}

/// A new run that would apply a set not proven idempotent to rows a completed run already
/// changed is refused (exit 1) unless asked for with `--again`: rerun by habit, or on the
/// advice to resume after an error that came as the run completed, `set n = n + 1` added 2.
fn refuse_applied_before(engine: &mut Engine, plan: &crate::plan::Plan) -> Result<(), Failure> {
    match engine.applied_before(plan)? {
        Some(why) => Err(Failure {
            exit_code: 1,
            text: why,
        }),
        None => Ok(()),
    }
}

/// `workers` threads, each with its own connection, share one run; the summary is the run's
/// (all workers', in every process).
fn run_workers(
    config: Config,
    name: &str,
    options: RunOptions,
    workers: u64,
    again: bool,
) -> Result<(), Failure> {
    if workers == 0 {
        return Err(Failure {
            exit_code: 2,
            text: "--workers must be at least 1".into(),
        });
    }
    let (run_id, resumed) = {
        let mut engine = Engine::open(config.clone())?;
        let plan = engine.plan(name, &options)?;
        if !again {
            refuse_applied_before(&mut engine, &plan)?;
        }
        engine.open_shared_run(&plan, workers)?
    };
    exec::stop::catch_signals();
    let progress = Mutex::new(WorkersProgress {
        reporter: Reporter::new(name, "rows"),
        each: vec![None; workers as usize],
    });
    let joined: Vec<_> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers as usize)
            .map(|worker| {
                let (config, options, progress) = (config.clone(), options.clone(), &progress);
                scope.spawn(move || -> Result<Option<RunSummary>, ExecError> {
                    let mut engine = Engine::open(config)?;
                    let plan = engine.plan(name, &options)?;
                    engine.run_shared(&plan, run_id, &mut |p| {
                        if let Ok(mut shown) = progress.lock() {
                            shown.show(worker, p);
                        }
                    })
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join()).collect()
    });
    if let Ok(shown) = progress.lock() {
        shown.reporter.finish();
    }
    let mut summaries = Vec::new();
    for thread in joined {
        let summary = thread.map_err(|_| Failure {
            exit_code: 4,
            text: "a worker thread panicked".into(),
        })?;
        summaries.push(summary.map_err(|e| with_run_totals(&config, e))?);
    }
    match combined(summaries.into_iter().flatten().collect(), resumed) {
        Some(summary) => print_summary(&summary),
        None => println!(
            "{name}: run {run_id} was finished by other processes before this one's workers started"
        ),
    }
    Ok(())
}

/// A worker stopped by a signal knows only the rows it processed itself; the message speaks
/// of the run, so it takes the run's totals, read once every worker has ended, as a lone
/// run's message and `mig status` give them. Where they cannot be read, the worker's stand.
fn with_run_totals(config: &Config, mut error: ExecError) -> ExecError {
    if let ExecError::Stopped {
        run_id,
        processed,
        updated,
        ..
    } = &mut error
    {
        let runs = exec::read_runs(config).unwrap_or_default();
        if let Some(run) = runs.into_iter().find(|r| r.id == *run_id) {
            (*processed, *updated) = (run.processed, run.updated);
        }
    }
    error
}

/// One summary for the workers of this process. Each read the run's totals when it ended;
/// totals only grow, so the largest were read by the last to end, after every worker here
/// was done. The run took as long, and held a lock as long, as the slowest of them; each
/// sized its own batches for a busy database, so those add up. The post-checks ran in the
/// one that completed the run, if it was one of these.
fn combined(summaries: Vec<RunSummary>, resumed: bool) -> Option<RunSummary> {
    let duration = summaries.iter().map(|s| s.duration).max()?;
    let longest_batch = summaries.iter().map(|s| s.longest_batch).max()?;
    let yielded = summaries.iter().map(|s| s.yielded).sum();
    let replicas = summaries.iter().map(|s| s.replicas).sum();
    let processed_now = summaries.iter().map(|s| s.processed_now).sum();
    let checks = summaries.iter().find_map(|s| s.checks.clone());
    let last = summaries
        .into_iter()
        .max_by_key(|s| (s.processed, s.batches))?;
    Some(RunSummary {
        resumed,
        processed_now,
        duration,
        longest_batch,
        yielded,
        replicas,
        checks,
        ..last
    })
}

/// A summary's line on what `yield` did, counting `unit`s: a run's batches, or the
/// transactions a rollback restored its records in.
fn print_yield(y: &YieldReport, unit: (&str, &str)) {
    println!(
        "  yield: {} ran while another session was busy ({} rows, {} a {})",
        count(y.busy_batches, unit.0, unit.1),
        y.busy_rows,
        y.busy_rows.checked_div(y.busy_batches).unwrap_or(0),
        unit.0
    );
}

fn print_summary(s: &RunSummary) {
    let secs = s.duration.as_secs_f64();
    println!(
        "{}: run {}{}: {} rows processed, {} updated, {} in {:.2} s ({:.0} rows/s); longest batch transaction {:.1} ms",
        s.migration,
        s.run_id,
        if s.resumed { " (resumed)" } else { "" },
        s.processed,
        s.updated,
        count(s.batches as u64, "batch", "batches"),
        secs,
        s.processed_now as f64 / secs.max(1e-9),
        s.longest_batch.as_secs_f64() * 1000.0
    );
    if let Some(y) = s.yielded {
        print_yield(&y, ("batch", "batches"));
    }
    if let Some(r) = s.replicas {
        println!(
            "  replicas: batches waited {} for a replica to catch up, {:.1} s in all{}",
            count(r.waits, "time", "times"),
            r.waited.as_secs_f64(),
            match r.furthest {
                0 => String::new(),
                bytes => format!(" (the furthest behind: {})", show_size(bytes)),
            }
        );
    }
    match &s.checks {
        Some(checks) => {
            for c in checks {
                println!("  check {}: passed ({} failed rows)", c.name, c.failed_rows);
            }
        }
        None => println!(
            "  post-checks: not run here: another mig process completed the run and ran them, \
             or ended the run (`mig status` shows how)"
        ),
    }
}

fn validate(config: Config, names: Vec<String>) -> Result<(), Failure> {
    let mut engine = Engine::open(config)?;
    let names = if names.is_empty() {
        engine
            .catalog
            .validations
            .iter()
            .map(|v| v.name.clone())
            .collect()
    } else {
        names
    };
    // One that cannot be evaluated is reported, and the others still are.
    let (mut names, mut unevaluated) = (names, Vec::new());
    let results = loop {
        match engine.validate(None, &names) {
            Err(e @ ExecError::ValidationUnevaluated { .. }) => {
                if let ExecError::ValidationUnevaluated { name, .. } = &e {
                    names.retain(|n| n != name);
                }
                unevaluated.push(e.to_string());
            }
            other => break other?,
        }
    };
    for r in &results {
        let verdict = if r.passed { "passed" } else { "FAILED" };
        let first = r
            .first_failed_key
            .as_ref()
            .map_or(String::new(), |k| format!(", the first at key {k}"));
        println!(
            "{}: {verdict} ({}{first})",
            r.name,
            count(r.failed_rows, "failed row", "failed rows")
        );
    }
    if !unevaluated.is_empty() {
        return Err(Failure {
            exit_code: 4,
            text: unevaluated.join("\nerror: "),
        });
    }
    if results.iter().all(|r| r.passed) {
        Ok(())
    } else {
        Err(Failure {
            exit_code: 1,
            text: "some validations failed".into(),
        })
    }
}

/// The command that goes on with `run`, a run not over; None for one that is.
fn what_goes_on_with(run: &RunRecord) -> Option<String> {
    let name = &run.migration;
    let workers = if run.shared { " --workers N" } else { "" };
    match run.status {
        RunStatus::Running => Some(format!(
            "`mig run {name}{workers}` resumes it at its checkpoint"
        )),
        RunStatus::Checking => Some(format!("`mig run {name}` runs its post-checks again")),
        RunStatus::RollingBack => Some(format!("`mig rollback {name}` finishes its rollback")),
        RunStatus::Completed | RunStatus::Failed | RunStatus::RolledBack => None,
    }
}

/// `running`, `checking` or `rolling_back` where a process works on the run; where none
/// does, that it was interrupted and what goes on with it. The recorded state alone said
/// `running` for ever after a killed run.
fn state_shown(state: &exec::RunState) -> String {
    let recorded = state.record.status.as_str();
    match what_goes_on_with(&state.record) {
        Some(next) if !state.worked_on => {
            format!("interrupted (recorded {recorded}, but no process works on it: {next})")
        }
        _ => recorded.to_string(),
    }
}

fn status(config: Config) -> Result<(), Failure> {
    let runs = exec::read_run_states(&config)?;
    if runs.is_empty() {
        println!("no runs recorded");
    }
    for state in runs {
        let r = &state.record;
        let checkpoint = r
            .checkpoint
            .as_ref()
            .map_or("-".to_string(), |k| k.to_string());
        let backup = state
            .backup
            .map(|b| {
                format!(
                    ", backup {} in {}",
                    show_bytes(b.bytes),
                    count(b.records, "batch record", "batch records")
                )
            })
            .unwrap_or_default();
        let pruned = r
            .pruned_at
            .as_ref()
            .map(|at| format!(", backup pruned {at}"))
            .unwrap_or_default();
        println!(
            "run {} {} {}: {} processed, {} updated, {}, checkpoint {}, started {}, last change {}{backup}{pruned}{}",
            r.id,
            r.migration,
            state_shown(&state),
            r.processed,
            r.updated,
            count(r.batches as u64, "batch", "batches"),
            checkpoint,
            r.started_at,
            r.updated_at,
            r.message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
        );
    }
    Ok(())
}

/// `; waiting: a replica is 80MB behind` while the next batch waits for one.
fn replica_wait(p: &Progress) -> String {
    match p.waiting_for_replica {
        Some(bytes) => format!("; waiting: a replica is {} behind", show_size(bytes)),
        None => String::new(),
    }
}

/// How long `left` rows (or batches) take at `rate` a second, as `, about 3 min left`;
/// nothing where none are left (by a run's estimate, which PostgreSQL's may put low) or no
/// rate is known yet.
fn time_left(left: u64, rate: f64) -> String {
    if left == 0 || rate <= 0.0 {
        return String::new();
    }
    let seconds = (left as f64 / rate).ceil() as u64;
    let minutes = seconds.div_ceil(60);
    let shown = match (seconds, minutes / 60, minutes % 60) {
        (0..60, _, _) => format!("{seconds} s"),
        (_, 0, m) => format!("{m} min"),
        (_, h, 0) => format!("{h} h"),
        (_, h, m) => format!("{h} h {m} min"),
    };
    format!(", about {shown} left")
}

/// A size in bytes, in decimal units with three figures at most, as `du --si` shows one.
fn show_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return count(bytes, "byte", "bytes");
    }
    let mut size = bytes as f64 / 1000.0;
    let mut unit = 0;
    while size >= 999.5 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    if size < 99.95 {
        format!("{size:.1} {}", UNITS[unit])
    } else {
        format!("{size:.0} {}", UNITS[unit])
    }
}

fn prune(config: Config, name: &str) -> Result<(), Failure> {
    let summary = exec::prune::prune(&config, name)?;
    for p in &summary.pruned {
        println!(
            "{name}: run {}: dropped its backup of {} ({}); `mig rollback {name}` can no longer restore them",
            p.run_id,
            count(p.rows, "row", "rows"),
            count(p.records, "batch record", "batch records")
        );
    }
    if summary.pruned.is_empty() {
        println!("{name}: no backup of a run that is over is left to prune");
    }
    for run_id in &summary.kept {
        println!(
            "{name}: run {run_id} is not over (see `mig status`): its backup is kept, since \
             resuming, checking or rolling it back needs it"
        );
    }
    Ok(())
}

fn rollback(config: Config, name: &str) -> Result<(), Failure> {
    let (mut engine, left_out) = Engine::open_to_roll_back(config)?;
    for left in left_out {
        eprintln!("warning: {left}");
    }
    exec::stop::catch_signals();
    let mut reporter = Reporter::new(name, "batches");
    let summary = engine.rollback(name, &mut |p| reporter.show_rollback(p));
    reporter.finish();
    let summary = summary?;
    println!(
        "{name}: run {} rolled back: {}, {} in {:.2} s; longest batch transaction {:.1} ms",
        summary.run_id,
        count(summary.restored, "row restored", "rows restored"),
        count(summary.conflict_keys.len() as u64, "conflict", "conflicts"),
        summary.duration.as_secs_f64(),
        summary.longest_batch.as_secs_f64() * 1000.0
    );
    if let Some(y) = summary.yielded {
        print_yield(&y, ("transaction", "transactions"));
    }
    if !summary.conflict_keys.is_empty() {
        println!(
            "  left alone, changed since the run wrote them: {}",
            conflict_list(&summary.conflict_keys, summary.run_id)
        );
    }
    if summary.rewritten > 0 {
        println!(
            "  {} restored rows hold another value than their backup: a trigger of the table \
             rewrote the old values as they were written back",
            summary.rewritten
        );
    }
    Ok(())
}

/// The keys a rollback left alone, the first `CONFLICTS_SHOWN` of them: on a large table the
/// application may have changed many rows since, and `_mig_conflicts` keeps every one.
fn conflict_list(keys: &[Value], run_id: i64) -> String {
    let shown: Vec<String> = keys
        .iter()
        .take(CONFLICTS_SHOWN)
        .map(ToString::to_string)
        .collect();
    match keys.len().checked_sub(CONFLICTS_SHOWN) {
        Some(more) if more > 0 => format!(
            "{} and {more} more (every one in _mig_conflicts, run_id {run_id})",
            shown.join(", ")
        ),
        _ => shown.join(", "),
    }
}

const CONFLICTS_SHOWN: usize = 20;

/// The progress of this process's workers, as one: each reports the rows it processed.
struct WorkersProgress {
    reporter: Reporter,
    each: Vec<Option<Progress>>,
}

impl WorkersProgress {
    fn show(&mut self, worker: usize, progress: &Progress) {
        self.each[worker] = Some(progress.clone());
        self.reporter.show(&summed(&self.each, progress.expected));
    }
}

/// The workers' progress reports added up, out of `expected` rows; a worker that has not
/// reported yet counts nothing.
fn summed(each: &[Option<Progress>], expected: u64) -> Progress {
    each.iter().flatten().fold(
        Progress {
            processed: 0,
            updated: 0,
            batches: 0,
            expected,
            resumed_from: 0,
            waiting_for_replica: None,
            restoring: None,
        },
        |sum, p| Progress {
            processed: sum.processed + p.processed,
            updated: sum.updated + p.updated,
            batches: sum.batches + p.batches,
            waiting_for_replica: sum.waiting_for_replica.max(p.waiting_for_replica),
            // Only the worker that ran the post-checks restores.
            restoring: sum.restoring.or(p.restoring),
            ..sum
        },
    )
}

/// Shows the progress of a run (in rows) or a rollback (in batches), and of the rollback
/// that follows a run's failed post-check: a bar on a terminal, a plain line a second when
/// piped.
struct Reporter {
    bar: Option<ProgressBar>,
    name: String,
    /// What is counted: `rows` for a run, `batches` for a rollback.
    unit: &'static str,
    last_line: Instant,
    /// When counting in `unit` began: the pace is reckoned from then.
    started: Instant,
}

impl Reporter {
    fn new(name: &str, unit: &'static str) -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                // Not indicatif's `{eta}`: a resumed run's bar starts part way, and that first
                // jump would be taken for speed.
                ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar
        });
        Reporter {
            bar,
            name: name.to_string(),
            unit,
            last_line: Instant::now(),
            started: Instant::now(),
        }
    }

    fn show(&mut self, p: &Progress) {
        if let Some(restoring) = &p.restoring {
            return self.show_rollback(restoring);
        }
        self.counting("rows");
        let rate = self.rate(p);
        let tail = format!(
            "{rate:.0} rows/s{}{}",
            time_left(p.expected.saturating_sub(p.processed), rate),
            replica_wait(p)
        );
        self.report(
            (p.processed, p.expected),
            "processed",
            &format!("{} updated, {tail}", p.updated),
            &format!(
                "{} updated, {}, {tail}",
                p.updated,
                count(p.batches as u64, "batch", "batches")
            ),
        );
    }

    /// A rollback's progress, with the time its batches left take at its pace so far.
    fn show_rollback(&mut self, p: &RollbackProgress) {
        self.counting("batches");
        let rate = p.restored_batches as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let tail = format!(
            "{}, {}{}",
            count(p.restored, "row restored", "rows restored"),
            count(p.conflicts, "conflict", "conflicts"),
            time_left(p.batches.saturating_sub(p.restored_batches), rate)
        );
        self.report((p.restored_batches, p.batches), "restored", &tail, &tail);
    }

    /// Counts in `unit` from now on, and reckons the pace from now, if it did not already.
    fn counting(&mut self, unit: &'static str) {
        if self.unit != unit {
            self.unit = unit;
            self.started = Instant::now();
        }
    }

    /// `done` of `of` on the bar, with `message` beside it; piped, a line a second:
    /// `name: done/of unit verb, line`.
    fn report(&mut self, (done, of): (u64, u64), verb: &str, message: &str, line: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(of.max(done));
                bar.set_position(done);
                bar.set_message(format!("{}, {message}", self.unit));
            }
            None if self.last_line.elapsed() >= Duration::from_secs(1) => {
                self.last_line = Instant::now();
                eprintln!("{}: {done}/{of} {} {verb}, {line}", self.name, self.unit);
            }
            None => {}
        }
    }

    /// This process's rows a second: a resumed run's earlier rows took no time of its.
    fn rate(&self, p: &Progress) -> f64 {
        p.processed.saturating_sub(p.resumed_from) as f64
            / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The demo flow of DESIGN.md, through the same engine the node uses, told as it happens.
fn demo(config: Config) -> Result<(), Failure> {
    if !config.is_demo_database() {
        return Err(Failure {
            exit_code: 2,
            text: "mig demo runs only on the demo database (sqlite:.mig/demo.sqlite); this mig.toml or MIG_DATABASE_URL points elsewhere".into(),
        });
    }
    if let crate::config::Database::Sqlite(path) = &config.database {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        println!(
            "Making a fresh demo database at {} from specs/demo/",
            path.display()
        );
    }
    let mut engine = Engine::open(config)?;
    let rows = engine
        .store()
        .count_rows("users")
        .map_err(ExecError::from)?;
    println!("users has {rows} rows; 500 already have a full_name, 100 have upper-case letters in their email.\n");

    println!("1. Backfill users.full_name, 1000 rows a batch, at most 10000 rows. The plan:");
    let backfill = engine.plan(
        "users.full_name",
        &RunOptions {
            batch: Some(1000),
            limit: Some(10_000),
        },
    )?;
    for line in engine.describe(&backfill)? {
        println!("   {line}");
    }
    let summary = engine.run(&backfill, false, &mut |_| {})?;
    print!("   done: ");
    print_summary(&summary);

    println!("\n2. Validate no_nulls and email_format over the whole table:");
    for r in engine.validate(Some("users"), &["no_nulls".into(), "email_format".into()])? {
        println!(
            "   {}: {} ({} failed rows)",
            r.name,
            if r.passed { "passed" } else { "FAILED" },
            r.failed_rows
        );
    }

    println!("\n3. Migrate normalize_email three times, requiring idempotence:");
    let migrate = engine.plan(&engine.migrate_on_table("users")?, &RunOptions::default())?;
    let repeated = engine.run_repeatedly(&migrate, 3, true, false, &mut |_| {})?;
    for (i, run) in repeated.runs.iter().enumerate() {
        println!(
            "   run {}: {} rows processed, {} updated",
            i + 1,
            run.processed,
            run.updated
        );
    }
    println!(
        "   {} rows updated in all; final state {}",
        repeated.rows_updated,
        if repeated.unchanged {
            "unchanged after run 1: idempotent"
        } else {
            "changed"
        }
    );

    println!("\n4. The same backfill again: every row is processed, none needs writing.");
    let again = engine.run(&backfill, false, &mut |_| {})?;
    print!("   done: ");
    print_summary(&again);
    println!("\nSee every run with `mig status`; undo one with `mig rollback NAME`.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{
        conflict_list, show_bytes, summed, time_left, Progress, Reporter, RollbackProgress, Value,
    };
    use std::time::{Duration, Instant};

    /// A run resumed at 1,000 rows that has processed 500 more in the 10 s (or more) since
    /// this process began: 50 rows/s at most, not the 150 its whole count would give.
    #[test]
    fn a_resumed_runs_rate_counts_only_this_process_rows() {
        let mut reporter = Reporter::new("m", "rows");
        reporter.started = Instant::now() - Duration::from_secs(10);
        let resumed = Progress {
            processed: 1500,
            updated: 1500,
            batches: 15,
            expected: 2000,
            resumed_from: 1000,
            waiting_for_replica: None,
            restoring: None,
        };
        let rate = reporter.rate(&resumed);
        assert!(rate > 0.0 && rate <= 50.0, "{rate}");
    }

    /// A run's reporter that a failed post-check's rollback takes over counts batches from
    /// then: the run's 10 s do not slow the rollback's pace, nor lengthen its time left.
    #[test]
    fn a_post_check_rollback_is_paced_from_its_own_start() {
        let mut reporter = Reporter::new("m", "rows");
        reporter.started = Instant::now() - Duration::from_secs(10);
        let restoring = Progress {
            processed: 2000,
            updated: 2000,
            batches: 20,
            expected: 2000,
            resumed_from: 0,
            waiting_for_replica: None,
            restoring: Some(RollbackProgress {
                restored_batches: 0,
                batches: 20,
                restored: 0,
                conflicts: 0,
            }),
        };
        reporter.show(&restoring);
        assert_eq!(reporter.unit, "batches");
        assert!(reporter.started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_time_left_is_the_rows_left_at_the_rate_rounded_up() {
        let at = |processed: u64, expected: u64| expected.saturating_sub(processed);
        for (p, rate, shown) in [
            (at(0, 1000), 100.0, ", about 10 s left"),
            (at(990, 1000), 100.0, ", about 1 s left"),
            (at(0, 6000), 100.0, ", about 1 min left"),
            (at(0, 6001), 100.0, ", about 2 min left"),
            (at(0, 3_600_000), 1000.0, ", about 1 h left"),
            (at(0, 3_700_000), 1000.0, ", about 1 h 2 min left"),
            (at(0, 7_199_000), 1000.0, ", about 2 h left"),
            (at(0, 3_599_000), 1000.0, ", about 1 h left"),
            (at(1000, 1000), 100.0, ""),
            (at(1200, 1000), 100.0, ""),
            (at(0, 1000), 0.0, ""),
        ] {
            assert_eq!(time_left(p, rate), shown, "{p} left at {rate}");
        }
    }

    #[test]
    fn sizes_show_in_decimal_units_with_three_figures_at_most() {
        for (bytes, shown) in [
            (0, "0 bytes"),
            (1, "1 byte"),
            (999, "999 bytes"),
            (1000, "1.0 kB"),
            (25_300, "25.3 kB"),
            (99_949, "99.9 kB"),
            (99_950, "100 kB"),
            (999_499, "999 kB"),
            (999_500, "1.0 MB"),
            (999_950, "1.0 MB"),
            (4_700_000, "4.7 MB"),
            (313_000_000, "313 MB"),
            (2_500_000_000_000_000, "2500 TB"),
        ] {
            assert_eq!(show_bytes(bytes), shown, "{bytes}");
        }
    }

    #[test]
    fn workers_progress_is_the_sum_of_what_each_reported() {
        let report = |processed, updated, batches| Progress {
            processed,
            updated,
            batches,
            expected: 3000,
            resumed_from: 0,
            waiting_for_replica: None,
            restoring: None,
        };
        let each = [Some(report(40, 30, 2)), None, Some(report(20, 20, 1))];
        assert_eq!(summed(&each, 3000), report(60, 50, 3));
        assert_eq!(summed(&[None, None], 3000), report(0, 0, 0));
    }

    #[test]
    fn a_rollback_lists_twenty_conflicting_keys_and_counts_the_rest() {
        let keys: Vec<Value> = (1..=23).map(Value::Integer).collect();
        assert_eq!(
            conflict_list(&keys, 7),
            "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 \
             and 3 more (every one in _mig_conflicts, run_id 7)"
        );
        assert_eq!(conflict_list(&keys[..20], 7).matches(", ").count(), 19);
        assert_eq!(conflict_list(&[Value::Text("a".into())], 7), "'a'");
    }
}
