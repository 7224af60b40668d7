//! The embedded default store. WAL mode so readers (`status`, validations) never wait for a
//! batch; each batch is one `BEGIN IMMEDIATE` transaction, so no other writer can change the
//! batch's rows between the read that computes new values and the write.

use super::sqlite_functions;
use super::{
    quote_ident, BatchOutcome, BatchRequest, BatchStep, RollbackOutcome, RunRecord, RunStatus,
    Store, StoreError,
};
use crate::compile::{Check, Schema, TableSchema, Validation};
use crate::syntax::ast::{Expr, ExprKind, Span, UnaryOp};
use crate::value::{Fnv, Value};
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension};
use std::path::Path;
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
    message TEXT
);
CREATE TABLE IF NOT EXISTS _mig_backup (
    run_id INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    key NOT NULL,
    col TEXT NOT NULL,
    old,
    new,
    PRIMARY KEY (run_id, batch, key, col)
) WITHOUT ROWID;
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

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    pub fn open(path: &Path, lock_timeout: Duration) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::with_connection(conn, lock_timeout)
    }

    pub fn with_connection(
        conn: Connection,
        lock_timeout: Duration,
    ) -> Result<SqliteStore, StoreError> {
        // NORMAL is durable against a killed process in WAL mode; only an OS crash or power
        // loss may drop the last commits, and then the checkpoint is dropped with them.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(lock_timeout)?;
        sqlite_functions::register(&conn)?;
        Ok(SqliteStore { conn })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs `work` inside `BEGIN IMMEDIATE … COMMIT`, rolling back on any error.
    fn transaction<T>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| lock_error(e, started))?;
        match work(&self.conn) {
            Ok(value) => match self.conn.execute_batch("COMMIT") {
                Ok(()) => Ok(value),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(lock_error(e, started))
                }
            },
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn table_schema(&self, name: &str) -> Result<TableSchema, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, pk FROM pragma_table_info(?1) ORDER BY cid")?;
        let rows = stmt.query_map([name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut columns = Vec::new();
        let mut key: Vec<(i64, String)> = Vec::new();
        for row in rows {
            let (column, pk) = row?;
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            columns.push(column);
        }
        key.sort();
        Ok(TableSchema {
            name: name.to_string(),
            columns,
            primary_key: key.into_iter().map(|(_, c)| c).collect(),
        })
    }
}

/// A busy database after the busy timeout is a lock timeout; anything else stays itself.
fn lock_error(e: rusqlite::Error, started: Instant) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            StoreError::LockTimeout {
                waited_ms: started.elapsed().as_millis(),
            }
        }
        _ => StoreError::Sqlite(e),
    }
}

/// The SQL of one batch, with the parameters the expressions' literals need. The first
/// parameters of each statement are the batch's own, listed beside each statement.
struct BatchSql {
    /// ?1 limit — count, first and last key of the batch's first keys.
    bound_first: String,
    /// ?1 after, ?2 limit.
    bound_next: String,
    /// ?1 low key, ?2 high key, ?3 run id, ?4 batch number, then literals; one per column.
    backups: Vec<(String, Vec<Value>)>,
    /// ?1 low key, ?2 high key, then literals.
    update: (String, Vec<Value>),
}

fn quote_col(name: &str) -> String {
    quote_ident(name)
}

/// `(filter) AND (e1 IS NOT c1 OR e2 IS NOT c2 ...)` with parameters appended to `params`.
fn changed_predicate(step: &BatchStep, params: &mut Vec<Value>) -> String {
    let differs: Vec<String> = step
        .sets
        .iter()
        .map(|(column, value)| {
            format!(
                "({}) IS NOT {}",
                sqlite_functions::render(value, &quote_col, params),
                quote_ident(column)
            )
        })
        .collect();
    let differs = differs.join(" OR ");
    match &step.filter {
        Some(filter) => format!(
            "({}) AND ({differs})",
            sqlite_functions::render_predicate(filter, &quote_col, params)
        ),
        None => format!("({differs})"),
    }
}

fn placeholders(n: usize) -> Vec<Value> {
    vec![Value::Null; n]
}

fn batch_sql(step: &BatchStep) -> BatchSql {
    let table = quote_ident(&step.table);
    let key = quote_ident(&step.key);
    let bound_first = format!(
        "SELECT count(*), min(k), max(k) FROM (SELECT {key} AS k FROM {table} ORDER BY {key} LIMIT ?1)"
    );
    let bound_next = format!(
        "SELECT count(*), min(k), max(k) FROM (SELECT {key} AS k FROM {table} WHERE {key} > ?1 ORDER BY {key} LIMIT ?2)"
    );
    let range = format!("{key} >= ?1 AND {key} <= ?2");
    let backups = step
        .sets
        .iter()
        .map(|(column, value)| {
            let mut params = placeholders(4);
            let new = sqlite_functions::render(value, &quote_col, &mut params);
            params.push(Value::Text(column.clone()));
            let col_param = params.len();
            let changed = changed_predicate(step, &mut params);
            let sql = format!(
                "INSERT INTO _mig_backup (run_id, batch, key, col, old, new) \
                 SELECT ?3, ?4, {key}, ?{col_param}, {}, {new} FROM {table} WHERE {range} AND {changed}",
                quote_ident(column)
            );
            (sql, params)
        })
        .collect();
    let mut params = placeholders(2);
    let assignments: Vec<String> = step
        .sets
        .iter()
        .map(|(column, value)| {
            format!(
                "{} = {}",
                quote_ident(column),
                sqlite_functions::render(value, &quote_col, &mut params)
            )
        })
        .collect();
    let changed = changed_predicate(step, &mut params);
    let update = format!(
        "UPDATE {table} SET {} WHERE {range} AND {changed}",
        assignments.join(", ")
    );
    BatchSql {
        bound_first,
        bound_next,
        backups,
        update: (update, params),
    }
}

/// `-- ?1 = …, ?2 = …`: what each placeholder of a statement holds; `roles` name the leading
/// ones, the rest are the expressions' literals, shown as values.
fn legend(roles: &[&str], params: &[Value]) -> String {
    let named = roles.iter().map(|r| r.to_string());
    let literals = params.iter().skip(roles.len()).map(|v| v.to_string());
    let all: Vec<String> = named
        .chain(literals)
        .enumerate()
        .map(|(i, what)| format!("?{} = {what}", i + 1))
        .collect();
    format!("  -- {}", all.join(", "))
}

/// Binds the batch's own values over the leading placeholders.
fn bind(mut params: Vec<Value>, leading: &[Value]) -> Vec<Value> {
    params[..leading.len()].clone_from_slice(leading);
    params
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
    })
}

/// A validation failure term per check, as SQL over the row (and the unique counts).
fn failure_terms(
    validation: &Validation,
    unique_columns: &mut Vec<Vec<String>>,
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
                unique_columns.push(columns.clone());
                let alias = format!("\"_mig_unique_{}\"", unique_columns.len() - 1);
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
        let names: Vec<String> = {
            let mut stmt = self.conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_mig\\_%' ESCAPE '\\' ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let tables = names
            .iter()
            .map(|n| self.table_schema(n))
            .collect::<Result<_, _>>()?;
        Ok(Schema { tables })
    }

    fn prepare_state(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch(STATE_TABLES)?;
        Ok(())
    }

    fn count_rows(&mut self, table: &str) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM {}", quote_ident(table));
        let n: i64 = self.conn.query_row(&sql, [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn runs(&mut self) -> Result<Vec<RunRecord>, StoreError> {
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
    }

    fn start_run(
        &mut self,
        migration: &str,
        spec_hash: &str,
        spec: &str,
        row_limit: Option<u64>,
    ) -> Result<RunRecord, StoreError> {
        let limit = row_limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let sql = format!(
            "INSERT INTO _mig_runs (migration, spec_hash, spec, status, row_limit, started_at, updated_at) \
             VALUES (?1, ?2, ?3, 'running', ?4, {NOW}, {NOW}) RETURNING *"
        );
        let run =
            self.conn
                .query_row(&sql, params![migration, spec_hash, spec, limit], read_run)?;
        Ok(run)
    }

    fn set_run_status(
        &mut self,
        run_id: i64,
        status: RunStatus,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        let finished = matches!(
            status,
            RunStatus::Completed | RunStatus::Failed | RunStatus::RolledBack
        );
        let sql = format!(
            "UPDATE _mig_runs SET status = ?1, message = coalesce(?2, message), updated_at = {NOW}, \
             finished_at = CASE WHEN ?3 THEN {NOW} END WHERE id = ?4"
        );
        self.conn
            .execute(&sql, params![status.as_str(), message, finished, run_id])?;
        Ok(())
    }

    fn run_batch(
        &mut self,
        step: &BatchStep,
        request: &BatchRequest<'_>,
    ) -> Result<BatchOutcome, StoreError> {
        let sql = batch_sql(step);
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        // The step's own lock timeout, which may differ from the one the store opened with.
        self.conn.busy_timeout(request.lock_timeout)?;
        self.transaction(|conn| {
            let (count, low, high): (i64, Value, Value) = match request.after {
                None => conn
                    .prepare_cached(&sql.bound_first)?
                    .query_row([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?,
                Some(after) => conn
                    .prepare_cached(&sql.bound_next)?
                    .query_row(params![after, limit], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?,
            };
            if count == 0 {
                return Ok(BatchOutcome {
                    processed: 0,
                    updated: 0,
                    last_key: None,
                });
            }
            let leading = [
                low.clone(),
                high.clone(),
                Value::Integer(request.run_id),
                Value::Integer(request.batch_no),
            ];
            for (backup, params) in sql.backups {
                conn.prepare_cached(&backup)?
                    .execute(params_from_iter(bind(params, &leading)))?;
            }
            let (update, params) = sql.update;
            let updated = conn
                .prepare_cached(&update)?
                .execute(params_from_iter(bind(params, &leading[..2])))?;
            conn.prepare_cached(CHECKPOINT_SQL)?.execute(params![
                &high,
                count,
                updated as i64,
                request.run_id
            ])?;
            Ok(BatchOutcome {
                processed: count as u64,
                updated: updated as u64,
                last_key: Some(high),
            })
        })
    }

    fn describe_batch(&self, step: &BatchStep) -> Vec<String> {
        let sql = batch_sql(step);
        let mut out = vec!["BEGIN IMMEDIATE".to_string()];
        out.push(sql.bound_next);
        out.push(legend(
            &[
                "the checkpoint (the first batch has no lower bound)",
                "the batch size",
            ],
            &[],
        ));
        for (backup, params) in sql.backups {
            out.push(backup);
            out.push(legend(
                &[
                    "the batch's first key",
                    "its last key",
                    "the run id",
                    "the batch number",
                ],
                &params,
            ));
        }
        out.push(sql.update.0);
        out.push(legend(
            &["the batch's first key", "its last key"],
            &sql.update.1,
        ));
        out.push(CHECKPOINT_SQL.to_string());
        out.push(legend(
            &[
                "the batch's last key",
                "rows processed",
                "rows updated",
                "the run id",
            ],
            &[],
        ));
        out.push("COMMIT".to_string());
        out
    }

    fn validate(
        &mut self,
        table: &str,
        key: &str,
        validations: &[&Validation],
        up_to: Option<&Value>,
    ) -> Result<Vec<u64>, StoreError> {
        if validations.is_empty() {
            return Ok(vec![]);
        }
        let mut params = vec![up_to.cloned().unwrap_or(Value::Null)];
        let mut unique_columns = Vec::new();
        let sums: Vec<String> = validations
            .iter()
            .map(|v| {
                let terms = failure_terms(v, &mut unique_columns, &mut params);
                format!("coalesce(sum(CASE WHEN {terms} THEN 1 ELSE 0 END), 0)")
            })
            .collect();
        let windows: Vec<String> = unique_columns
            .iter()
            .enumerate()
            .map(|(i, columns)| {
                let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
                format!(
                    ", count(*) OVER (PARTITION BY {}) AS \"_mig_unique_{i}\"",
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
            sums.join(", "),
            windows.concat(),
            quote_ident(table)
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let counts = stmt.query_row(params_from_iter(&params), |row| {
            (0..validations.len())
                .map(|i| row.get::<_, i64>(i).map(|n| n as u64))
                .collect::<rusqlite::Result<Vec<u64>>>()
        })?;
        Ok(counts)
    }

    fn backed_up_batches(&mut self, run_id: i64) -> Result<Vec<i64>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT batch FROM _mig_backup WHERE run_id = ?1 ORDER BY batch DESC",
        )?;
        let batches = stmt
            .query_map([run_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(batches)
    }

    fn rollback_batch(
        &mut self,
        step: &BatchStep,
        run_id: i64,
        batch_no: i64,
    ) -> Result<RollbackOutcome, StoreError> {
        let table = quote_ident(&step.table);
        let key = quote_ident(&step.key);
        self.transaction(|conn| {
            let rows = backed_up_rows(conn, run_id, batch_no)?;
            let mut outcome = RollbackOutcome::default();
            for (row_key, columns) in rows {
                let names: Vec<String> = columns.iter().map(|(c, _, _)| quote_ident(c)).collect();
                let select = format!("SELECT {} FROM {table} WHERE {key} = ?1", names.join(", "));
                let current: Option<Vec<Value>> = conn
                    .prepare_cached(&select)?
                    .query_row([&row_key], |r| (0..names.len()).map(|i| r.get(i)).collect())
                    .optional()?;
                let untouched = current.as_ref().is_some_and(|values| {
                    values
                        .iter()
                        .zip(&columns)
                        .all(|(now, (_, _, new))| now == new)
                });
                if untouched {
                    let sets: Vec<String> = names
                        .iter()
                        .enumerate()
                        .map(|(i, n)| format!("{n} = ?{}", i + 2))
                        .collect();
                    let update = format!("UPDATE {table} SET {} WHERE {key} = ?1", sets.join(", "));
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
            conn.prepare_cached("DELETE FROM _mig_backup WHERE run_id = ?1 AND batch = ?2")?
                .execute(params![run_id, batch_no])?;
            Ok(outcome)
        })
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
    }
}

/// (column, old, new) per column of one backed-up row.
type BackedUpColumns = Vec<(String, Value, Value)>;

/// The batch's backed-up rows, grouped by key in key order.
fn backed_up_rows(
    conn: &Connection,
    run_id: i64,
    batch_no: i64,
) -> Result<Vec<(Value, BackedUpColumns)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, col, old, new FROM _mig_backup WHERE run_id = ?1 AND batch = ?2 ORDER BY key, col",
    )?;
    let mut rows = stmt.query(params![run_id, batch_no])?;
    let mut grouped: Vec<(Value, BackedUpColumns)> = Vec::new();
    while let Some(row) = rows.next()? {
        let key: Value = row.get(0)?;
        let entry = (row.get::<_, String>(1)?, row.get(2)?, row.get(3)?);
        match grouped.last_mut() {
            Some((last, columns)) if *last == key => columns.push(entry),
            _ => grouped.push((key, vec![entry])),
        }
    }
    Ok(grouped)
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
