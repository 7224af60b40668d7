//! Stage 3: a checked migration plus the live schema and the run's options become a `Plan`:
//! which key to walk, how big the batches are, what each batch runs, what is checked after.
//! `mig plan` prints it; the executor runs it.

use crate::compile::{Catalog, Migration, MigrationKind, Schema, Validation};
use crate::config::{show_size, Defaults};
use crate::store::{BatchStep, DatabaseNotes, ReplicaLag, RowCount, Store};
use crate::value::Fnv;
use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("no migration named `{name}`{}", known_list(.known))]
    NoSuchMigration { name: String, known: Vec<String> },
    #[error("table `{0}` does not exist in the database")]
    NoSuchTable(String),
    #[error("table `{table}` has {}: declare `table {table} key COLUMN` in a spec", key_problem(.primary_key))]
    NoUsableKey {
        table: String,
        primary_key: Vec<String>,
    },
    #[error("{field} must be at least 1")]
    ZeroOption { field: &'static str },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (the specs declare none)".to_string()
    } else {
        format!(" (known: {})", known.join(", "))
    }
}

fn key_problem(primary_key: &[String]) -> String {
    if primary_key.is_empty() {
        "no primary key".to_string()
    } else {
        format!(
            "a composite primary key ({}), which is not supported yet",
            primary_key.join(", ")
        )
    }
}

/// The plan's line for `max_replica_lag`: what a batch waits for, and the replicas now.
fn describe_replica_wait(max: u64, now: Option<&Result<ReplicaLag, String>>) -> String {
    let waits = format!(
        "  max_replica_lag {}: no batch starts while a replica streaming from this database has \
         more WAL than that left to replay (a rollback does not wait)",
        show_size(max)
    );
    match now {
        None => format!("{waits}; this database has no replicas"),
        Some(Ok(ReplicaLag::NoReplicas)) => format!("{waits}; no replica is connected now"),
        Some(Ok(ReplicaLag::Behind { replicas, bytes })) => format!(
            "{waits}; {} connected now, the furthest {} behind",
            count(*replicas, "replica", "replicas"),
            show_size(*bytes)
        ),
        Some(Err(why)) => format!("{waits}; a run stops before its first batch: {why}"),
    }
}

/// What a caller may change about a run without changing the migration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    pub batch: Option<u64>,
    /// Process at most this many rows, lowest keys first.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub migration: Migration,
    pub key: String,
    pub batch: u64,
    pub pause: Duration,
    /// How long a batch may take while another session is busy (`yield`).
    pub yield_after: Option<Duration>,
    pub lock_timeout: Duration,
    pub retries: u64,
    /// Bytes of WAL a replica may have left to replay before a batch waits (`mig.toml`).
    pub max_replica_lag: Option<u64>,
    pub limit: Option<u64>,
    pub checks: Vec<Validation>,
    pub spec_hash: String,
}

impl Plan {
    pub fn build(
        catalog: &Catalog,
        schema: &Schema,
        name: &str,
        defaults: &Defaults,
        options: &RunOptions,
    ) -> Result<Plan, PlanError> {
        let migration = catalog
            .migration(name)
            .ok_or_else(|| PlanError::NoSuchMigration {
                name: name.to_string(),
                known: catalog.migrations.iter().map(|m| m.name.clone()).collect(),
            })?;
        let key = resolve_key(catalog, schema, &migration.table)?;
        let batch = options.batch.or(migration.batch).unwrap_or(defaults.batch);
        if batch == 0 {
            return Err(PlanError::ZeroOption {
                field: "batch size",
            });
        }
        if options.limit == Some(0) {
            return Err(PlanError::ZeroOption { field: "row limit" });
        }
        let checks = migration
            .checks
            .iter()
            .filter_map(|c| catalog.validation(c).cloned())
            .collect();
        Ok(Plan {
            spec_hash: spec_hash(migration, &key),
            migration: migration.clone(),
            key,
            batch,
            pause: migration.pause.unwrap_or(defaults.pause),
            yield_after: migration.yield_after.or(defaults.yield_after),
            lock_timeout: migration.lock_timeout.unwrap_or(defaults.lock_timeout),
            retries: migration.retries.unwrap_or(defaults.retries),
            max_replica_lag: defaults.max_replica_lag,
            limit: options.limit,
            checks,
        })
    }

    pub fn name(&self) -> &str {
        &self.migration.name
    }

    pub fn table(&self) -> &str {
        &self.migration.table
    }

    pub fn step(&self) -> BatchStep {
        BatchStep {
            table: self.migration.table.clone(),
            key: self.key.clone(),
            sets: self
                .migration
                .sets
                .iter()
                .map(|a| (a.column.clone(), a.value.clone()))
                .collect(),
            filter: self.migration.filter.clone(),
            lock_timeout: self.lock_timeout,
        }
    }

    pub fn set_columns(&self) -> Vec<String> {
        self.migration
            .sets
            .iter()
            .map(|a| a.column.clone())
            .collect()
    }

    /// The plan as `mig plan` prints it, one line per entry. `size` is the table's size now;
    /// `resumed`, where the run resumes an unfinished one, what that run left to do;
    /// `notes`, what the database says that changes how the run goes.
    pub fn describe(
        &self,
        store: &dyn Store,
        size: RowCount,
        resumed: Option<&Resumed>,
        notes: &DatabaseNotes,
    ) -> Vec<String> {
        let m = &self.migration;
        let kind = match m.kind {
            MigrationKind::Backfill => "backfill",
            MigrationKind::Migrate => "migrate",
        };
        let mut lines = vec![
            format!("{kind} {} on table {}", m.name, m.table),
            format!(
                "  declared at {}:{}:{}",
                m.origin.path, m.origin.span.line, m.origin.span.col
            ),
            format!("  spec hash {}", self.spec_hash),
            format!(
                "walk {} by key {} in batches of {}, lowest keys first (keyset: each batch starts after the checkpoint)",
                m.table, self.key, self.batch
            ),
            self.describe_rows(size, resumed),
            format!(
                "  pause {} between batches; lock timeout {}; {} on lock timeout",
                show_duration(self.pause),
                show_duration(self.lock_timeout),
                count(self.retries, "retry", "retries")
            ),
            format!(
                "  lock timeout: {}",
                store.describe_lock_wait()
            ),
        ];
        if let Some(timeout) = &notes.statement_timeout {
            lines.push(self.describe_statement_timeout(timeout));
        }
        if let Some(setup) = store.describe_setup() {
            lines.push(format!("  {setup}"));
        }
        if let Some(after) = self.yield_after {
            lines.push(format!(
                "  yield {}: while another session is busy, batches are sized to take about {} each \
                 (at most {} rows); {}",
                show_duration(after),
                show_duration(after),
                self.batch,
                store.describe_busy()
            ));
            if let Some(unseen) = &notes.unseen_sessions {
                lines.push(format!("  yield: {unseen}"));
            }
        }
        if let Some(max) = self.max_replica_lag {
            lines.push(describe_replica_wait(max, notes.replicas.as_ref()));
        }
        if let Some(filter) = &m.filter {
            lines.push(format!("only rows where {filter}"));
        }
        for a in &m.sets {
            lines.push(format!("set {} = {}", a.column, a.value));
            lines.push(format!(
                "  {}: {}",
                a.idempotence.verdict(),
                a.idempotence.reason()
            ));
        }
        if !notes.update_triggers.is_empty() {
            lines.push(format!(
                "each row written fires the triggers of {} on UPDATE; what they change (another \
                 column, another table) is not in mig's backup, and a rollback fires them again:",
                m.table
            ));
            lines.extend(notes.update_triggers.iter().map(|t| format!("  {t}")));
        }
        lines.push(
            "each batch is one transaction; only rows whose new value differs are written, \
             their old values go to _mig_backup:"
                .to_string(),
        );
        lines.extend(
            store
                .describe_batch(&self.step())
                .into_iter()
                .map(|s| format!("  {s}")),
        );
        if self.checks.is_empty() {
            lines.push("after the last batch: no post-checks".to_string());
        } else {
            lines.push(
                "after the last batch, over every row up to the run's checkpoint, those the application \
                 inserted below it too (a failure restores the run's rows from _mig_backup):"
                    .to_string(),
            );
            for v in &self.checks {
                lines.push(format!("  check {} on {}", v.name, v.table));
            }
        }
        lines
    }

    /// What a statement timeout the database sets means for this run: the server cancels
    /// whatever outlasts it, a batch or a post-check's scan of the run's rows.
    fn describe_statement_timeout(&self, timeout: &str) -> String {
        let checks = if self.checks.is_empty() {
            ""
        } else {
            ", and each post-check reads every row up to the checkpoint in one statement, \
             which on a large table takes far longer than a batch"
        };
        format!(
            "  statement timeout: {timeout}, set for mig's session (by its role, its database or \
             its URL): a batch that takes longer fails and stops the run{checks} (README, \
             Statement timeouts)"
        )
    }

    /// The line with the table's size and how many rows and batches this run takes: the
    /// rows after the checkpoint where it resumes a run, whose limit counts the rows that
    /// run processed before.
    fn describe_rows(&self, size: RowCount, resumed: Option<&Resumed>) -> String {
        let estimate = match size {
            RowCount::Exact(_) => "",
            RowCount::About(_) => " (the database's estimate, not a count)",
        };
        let limit = self
            .limit
            .map_or(String::new(), |l| format!(" (limit {l})"));
        let (rest, to_process) = match resumed {
            Some(r) => (
                r.rest,
                self.limit.map_or(r.rest.rows(), |l| {
                    l.saturating_sub(r.processed).min(r.rest.rows())
                }),
            ),
            None => (size, self.limit.map_or(size.rows(), |l| l.min(size.rows()))),
        };
        let batches = count(to_process.div_ceil(self.batch), "batch", "batches");
        match resumed {
            None => format!(
                "  {} rows in the table now{estimate}; this run processes {}{limit} in about {batches}",
                size.show(size.rows()),
                size.show(to_process),
            ),
            Some(r) => format!(
                "  {} rows in the table now{estimate}, {} after the checkpoint of run {}, which \
                 processed {} before; this run processes {}{limit} in about {batches}",
                size.show(size.rows()),
                rest.show(rest.rows()),
                r.run_id,
                r.processed,
                rest.show(to_process),
            ),
        }
    }
}

/// What an unfinished run that `mig run` resumes has left, for its plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resumed {
    pub run_id: i64,
    /// Rows the run processed before it stopped.
    pub processed: u64,
    /// Rows with a key after its checkpoint now.
    pub rest: RowCount,
}

/// `n` with the noun that fits it: "1 batch", "2 batches".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn show_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) && !d.is_zero() {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The key a table is walked by: its `table T key K` override, else its one-column primary key.
pub fn resolve_key(catalog: &Catalog, schema: &Schema, table: &str) -> Result<String, PlanError> {
    if let Some(key) = catalog.key_override(table) {
        return Ok(key.to_string());
    }
    let t = schema
        .table(table)
        .ok_or_else(|| PlanError::NoSuchTable(table.to_string()))?;
    match t.primary_key.as_slice() {
        [key] => Ok(key.clone()),
        other => Err(PlanError::NoUsableKey {
            table: table.to_string(),
            primary_key: other.to_vec(),
        }),
    }
}

/// A hash of what decides which rows a run writes and what it writes there. Batch size,
/// pause and limits may change between resumptions; this may not.
pub fn spec_hash(migration: &Migration, key: &str) -> String {
    let mut hash = Fnv::default();
    hash.write(canonical_spec(migration, key).as_bytes());
    format!("{:016x}", hash.finish())
}

/// The spec `canonical_spec` wrote, as a spec file again: `table T key K` and a `migrate`
/// block named `name` holding the sets and the filter. None when the text is not one
/// `canonical_spec` wrote.
pub fn spec_from_canonical(canonical: &str, name: &str) -> Option<String> {
    let (table, key) = canonical_head(canonical)?;
    let body: Vec<&str> = canonical.lines().skip(1).collect();
    Some(format!(
        "table {table} key {key}\nmigrate {name} on {table} {{\n{}\n}}\n",
        body.join("\n")
    ))
}

/// The table a canonical spec names.
pub fn canonical_table(canonical: &str) -> Option<&str> {
    Some(canonical_head(canonical)?.0)
}

/// The table and key of a canonical spec's first line, `on TABLE key KEY`.
fn canonical_head(canonical: &str) -> Option<(&str, &str)> {
    canonical
        .lines()
        .next()?
        .strip_prefix("on ")?
        .split_once(" key ")
}

/// The canonical text the spec hash is taken over; stored with each run so a refused resume
/// can say what changed, and a run whose spec was removed be rolled back.
pub fn canonical_spec(migration: &Migration, key: &str) -> String {
    let mut text = format!("on {} key {}\n", migration.table, key);
    for a in &migration.sets {
        text.push_str(&format!("set {} = {}\n", a.column, a.value));
    }
    if let Some(filter) = &migration.filter {
        text.push_str(&format!("where {filter}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{canonical_spec, spec_from_canonical};
    use crate::compile::{compile, Migration, SourceFile};

    fn migration(text: &str, name: &str) -> Migration {
        let file = SourceFile {
            path: "a.mig".into(),
            text: text.into(),
        };
        let catalog = compile(&[file], None).expect("compiles");
        catalog.migration(name).expect("declared").clone()
    }

    #[test]
    fn a_recorded_spec_reads_back_as_the_spec_it_records() {
        let spec = "backfill b on t {\n    set b = lower(s) || 'x'\n    where a > 1 and s is not null\n}\n\
                    migrate m on t {\n    set a = a + 1\n    set s = null\n}\n";
        for name in ["t.b", "m"] {
            let canonical = canonical_spec(&migration(spec, name), "id");
            let again = spec_from_canonical(&canonical, "recorded").expect("readable");
            assert_eq!(
                canonical_spec(&migration(&again, "recorded"), "id"),
                canonical
            );
        }
        assert_eq!(spec_from_canonical("set b = 1\n", "recorded"), None);
    }
}
