//! The production store. Each batch is one transaction under `SET LOCAL lock_timeout` that
//! locks the rows it writes (`SELECT … FOR NO KEY UPDATE`, the lock its UPDATE takes anyway,
//! so foreign keys pointing at the rows are not blocked; or the UPDATE's own lock, whose WHERE
//! PostgreSQL re-checks on the locked version), so no value is ever computed from a row the
//! application changes before it is written. A batch takes one of two paths:
//!
//! - **pushdown**, where every operator has an exact PostgreSQL spelling
//!   (`postgres_sql`): one statement locks the batch, updates the rows that change, backs
//!   up their old values and advances the checkpoint. Where no set reads a set column, a
//!   first statement writes the rows whose set columns are all NULL without a locking read
//!   (their old values are known), and a second finishes the range only if rows are left;
//! - **read-compute-write** otherwise: one round trip reads the locked batch, `exec::eval`
//!   computes the new values, one round trip writes them (`UPDATE … FROM unnest(…)`) with
//!   the backup and the checkpoint.
//!
//! The schema comes from the catalog (the current schema only); every identifier is quoted,
//! every value is a bind parameter. Backed-up values are kept as PostgreSQL's text forms,
//! which read back exactly for every type mig writes, so rollback compares and restores in
//! SQL.
//!
//! The relations a statement names itself (WITH queries, derived tables) are named `_mig_…`:
//! a WITH query hides any table of its name from the rest of the statement, and the catalog
//! leaves `_mig_*` tables out, so no migrated table has such a name; none is named like one
//! of mig's own tables (`_mig_backed_up`, not `_mig_backup`), which the statements also
//! read. The migrated table's alias `t` hides no table: an alias names only its own FROM
//! item, for the `t.` references in its scope.

use super::postgres_sql::{ColumnType, NotPushed, Renderer};
use super::postgres_tls::ClientTls;
use super::postgres_uuid;
use super::{
    ensure_run_position, legend, quote_ident, unique_count_alias, BackupSize, BatchOutcome,
    BatchRequest, BatchStep, Contention, DatabaseNotes, Failures, ReplicaLag, RollbackOutcome,
    RowCount, RunRecord, RunStatus, Store, StoreError, BUSY_SAMPLE_EVERY, FINAL_STATUSES_SQL,
    NOT_A_KEY,
};
use crate::compile::{
    Check, ColumnLimits, ColumnValues, Schema, TableSchema, Validation, ValueKinds,
};
use crate::exec::eval::{self, ColumnSource};
use crate::syntax::ast::{Expr, ExprKind};
use crate::value::{Fnv, Value};
use bytes::BytesMut;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use postgres::{Client, Row, SimpleQueryMessage, Statement};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::error::Error;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const STATE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS _mig_runs (
    id bigserial PRIMARY KEY,
    migration text NOT NULL,
    spec_hash text NOT NULL,
    spec text NOT NULL,
    status text NOT NULL,
    checkpoint_int bigint,
    checkpoint_text text,
    claimed text,
    claims bigint NOT NULL DEFAULT 0,
    processed bigint NOT NULL DEFAULT 0,
    updated bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    row_limit bigint,
    started_at text NOT NULL,
    updated_at text NOT NULL,
    finished_at text,
    message text,
    pruned_at text,
    key_order text
);
CREATE TABLE IF NOT EXISTS _mig_backup (
    run_id bigint NOT NULL,
    batch bigint NOT NULL,
    cols text[] NOT NULL,
    keys text[] NOT NULL,
    old text[] NOT NULL,
    new text[] NOT NULL,
    restored integer NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, batch)
);
CREATE TABLE IF NOT EXISTS _mig_claims (
    run_id bigint NOT NULL,
    batch bigint NOT NULL,
    lo text,
    hi text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, batch)
);
CREATE TABLE IF NOT EXISTS _mig_conflicts (
    run_id bigint NOT NULL,
    key text NOT NULL,
    key_int bigint,
    cols text[] NOT NULL,
    old text[],
    written text[],
    current text[]
);
";

/// The namespace of the connection's current schema (`search_path`'s first). By name, not
/// `current_schema()::regnamespace`, which reads the name back as SQL and folds `"Sales"`
/// to `sales`.
const CURRENT_SCHEMA: &str = "(SELECT oid FROM pg_namespace WHERE nspname = current_schema())";

/// The time now as the SQLite store writes it, so `status` reads the same on both.
const NOW: &str =
    "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

/// How long connecting may take, startup and first statement included, where the URL sets
/// no `connect_timeout` (libpq's parameter, in seconds, which sets it otherwise).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Backups keep values as text, so the text forms are pinned against what a database or
/// role may set: with fewer digits (`extra_float_digits` below 1) a real or double came
/// back rounded; a bytea's follows `bytea_output`, and one written under `hex` and compared
/// under `escape` looked changed by the application.
///
/// Every transaction runs READ COMMITTED, which the batch statements are written for: an
/// UPDATE waits for a row the application holds and re-checks its WHERE on the version it
/// then finds. Under a database's SERIALIZABLE or REPEATABLE READ default, a batch instead
/// failed whenever the application had updated one of its rows since the batch began, and
/// beside a busy application a run gave up after its retries, at 12,000 and 38,000 rows of
/// 400,000 (BENCHMARKS.md, "Isolation").
const SESSION_SETTINGS: &str = "SET extra_float_digits = 3; SET bytea_output = hex; \
     SET default_transaction_isolation = 'read committed'";

/// Taken while creating the state tables, so concurrent `mig` processes do not race.
const STATE_LOCK: i64 = 0x6d69_675f_7374_6174;

/// One column as the catalog describes it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// `format_type`'s spelling, for casts: `integer`, `character varying(20)`.
    sql_type: String,
    /// The same without a length: `character varying`, `bpchar`. Values mig writes are cast
    /// to it, so the column's own length applies as in any assignment, which refuses a longer
    /// value; an explicit cast to `character varying(20)` would cut it short without a word.
    base_type: String,
    /// The domain the column is declared with, whose base type the two above spell.
    domain: Option<String>,
    /// None when mig cannot map the type; `typname` names it in the error.
    ty: Option<ColumnType>,
    typname: String,
    /// Why the server refuses values for it (generated, or an identity GENERATED ALWAYS).
    computed: Option<&'static str>,
    /// NOT NULL, and a unique index covers it alone, whole and by name: a walk by it takes
    /// every row once.
    unique_not_null: bool,
    /// ` COLLATE "schema"."name"` when the column's collation is not the database's
    /// default, else empty: a value compared outside the column (a key in `_mig_runs`) must
    /// be ordered as the column orders it.
    collate: String,
}

/// Whether another session of this database is working: active or inside a transaction, or
/// idle for less than a second. An application between two requests is idle most of the
/// time, so a glance at the states alone would miss one that sends a request every few
/// milliseconds, and the batches sized for nobody would be in the way of its next one.
/// mig's own connections share its application name. A session of another role shows its
/// state and type only to a member of that role or of `pg_read_all_stats`; without them it
/// counts as busy, so a run that cannot tell yields rather than crowds the application.
const OTHERS_BUSY: &str = "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
     WHERE datname = current_database() AND pid <> pg_backend_pid() \
       AND coalesce(backend_type, 'client backend') = 'client backend' \
       AND (state IS DISTINCT FROM 'idle' \
            OR state_change > clock_timestamp() - interval '1 second') \
       AND application_name IS DISTINCT FROM current_setting('application_name'))";

/// Every domain's base type, through domains over domains, and its length (typmod; a domain
/// over a domain takes the inner one's): the rows with `last` reach a type that is not a
/// domain.
const DOMAIN_BASES: &str = "WITH RECURSIVE _mig_domains (domain, base, typmod, last) AS ( \
     SELECT d.oid, d.typbasetype, d.typtypmod, b.typtype <> 'd' FROM pg_type d \
     JOIN pg_type b ON b.oid = d.typbasetype WHERE d.typtype = 'd' \
     UNION ALL \
     SELECT r.domain, b.typbasetype, CASE WHEN r.typmod = -1 THEN b.typtypmod ELSE r.typmod END, \
            bb.typtype <> 'd' \
     FROM _mig_domains r JOIN pg_type b ON b.oid = r.base \
     JOIN pg_type bb ON bb.oid = b.typbasetype WHERE NOT r.last)";

/// A backup record's set columns.
const RECORD_COLUMNS: &str = "SELECT cols FROM _mig_backup WHERE run_id = $1 AND batch = $2";

/// The replicas streaming from this server (physical standbys, and logical subscribers while
/// connected): how many, how many of them mig's session cannot see the positions of, and how
/// many bytes of WAL the furthest behind has yet to replay (flush, for a receiver that
/// replays nothing, such as pg_receivewal). A replica shows its positions only to a
/// superuser or a member of pg_read_all_stats.
const REPLICA_LAG: &str = "SELECT count(*) FILTER (WHERE state IS NULL), count(*), \
     max(pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(replay_lsn, flush_lsn)))::int8 \
     FROM pg_stat_replication";

const REPLICAS_UNSEEN: &str = "max_replica_lag is set, but mig's role cannot see how far \
     the replicas are behind (pg_stat_replication shows their positions only to a superuser \
     or a member of pg_read_all_stats): grant it pg_read_all_stats, or leave max_replica_lag \
     out of mig.toml";

/// How a batch transaction's statements are planned. Every scan of the migrated table in a
/// batch is bounded by its keys, so an index on the key serves it; a sequential scan (or a
/// bitmap scan of every key past the checkpoint) would read the whole table while the batch
/// holds rows locked, and the planner, guessing at a bound it cannot see, sometimes picks one.
/// With an index there, these settings leave it none. Then the plan depends on no value of a
/// batch, so each prepared statement is planned once per connection, not at every batch
/// (a tenth of a backfill's time on `pgbench_accounts`, BENCHMARKS.md). No statement is
/// compiled (`jit`): where one must scan a table all the same (a foreign key cascading into
/// a table with no index on its referencing column), the disabled scan's cost passes
/// `jit_above_cost`, and each cascaded row paid a compilation with the batch's rows locked
/// (a batch of 100 such rows 5 s instead of 0.3 s, README).
const BATCH_PLANS: &str = "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
     SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL jit = off";

/// How a yielding batch writes: the data pages it dirties go to the disk every 256 kB rather
/// than piling up in the kernel's cache. Piled up, they go out in bursts, and an application
/// commit waiting for its WAL flush behind such a burst waited 100 to 300 ms; with this
/// setting the application's longest transaction beside a yielding backfill took 40 to 90 ms
/// in four runs of five (BENCHMARKS.md). A run alone goes without it: it made one 10 to
/// 25 % slower.
const YIELDING_WRITES: &str = "SET LOCAL backend_flush_after = '256kB'";

impl Column {
    /// A `varchar(n)` or `char(n)`: it refuses a value longer than n, unless only spaces
    /// are past n, which it cuts.
    fn has_length(&self) -> bool {
        self.ty.is_some_and(ColumnType::is_text) && self.sql_type != self.base_type
    }

    /// The column's type as its table declares it, for messages: `posint, a domain over
    /// integer`.
    fn shown_type(&self) -> String {
        self.declared_as(&self.sql_type)
    }

    /// `type_name`, or the column's domain over it.
    fn declared_as(&self, type_name: &str) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}, a domain over {type_name}"),
            None => type_name.to_string(),
        }
    }

    /// A `varchar(n)`'s n, read from its catalog spelling (`character varying(4)`).
    fn varchar_length(&self) -> Option<usize> {
        if self.ty != Some(ColumnType::Varchar) || !self.has_length() {
            return None;
        }
        let inner = self.sql_type.rsplit_once('(')?.1.strip_suffix(')')?;
        inner.parse().ok()
    }

    /// What the column holds as mig reads it, a column's type admitting values of one kind,
    /// and what `coerce` lets mig write into it. None for a type mig cannot read.
    fn values(&self) -> Option<ColumnValues> {
        let integers = ValueKinds::INTEGER;
        let (kinds, accepts, described, holds) = match self.ty? {
            ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8 => (
                integers,
                integers,
                "an integer column",
                "which holds only integers",
            ),
            ColumnType::Bool => (
                integers,
                integers,
                "a boolean column",
                "which mig reads and writes as the integers 1 and 0",
            ),
            ColumnType::Float4 | ColumnType::Float8 => (
                ValueKinds::REAL,
                ValueKinds::NUMBER,
                "a real column",
                "which holds only reals",
            ),
            ColumnType::Numeric => (
                ValueKinds::REAL,
                ValueKinds::NONE,
                "a numeric column",
                "which mig reads as reals",
            ),
            ColumnType::Text | ColumnType::Varchar | ColumnType::Bpchar => (
                ValueKinds::TEXT,
                ValueKinds::TEXT | ValueKinds::NUMBER,
                "a text column",
                "which holds only text",
            ),
            ColumnType::Bytea => (
                ValueKinds::BLOB,
                ValueKinds::BLOB,
                "a bytea column",
                "which holds only blobs",
            ),
            ColumnType::Uuid => (
                ValueKinds::TEXT,
                ValueKinds::TEXT,
                "a uuid column",
                "which mig reads and writes as text, as PostgreSQL prints a uuid",
            ),
            ColumnType::Enum => (
                ValueKinds::TEXT,
                ValueKinds::TEXT,
                "an enum column",
                "which mig reads and writes as the text of its labels",
            ),
        };
        Some(ColumnValues {
            kinds,
            accepts,
            described: described.into(),
            because: format!("has PostgreSQL type {}, {holds}", self.shown_type()),
        })
    }

    /// What mig cannot do with the column, for `mig check` and the run's own refusals.
    fn limits(&self) -> ColumnLimits {
        let Some(ty) = self.ty else {
            return ColumnLimits {
                unreadable: Some(unreadable(&self.declared_as(&self.typname))),
                ..ColumnLimits::default()
            };
        };
        let unwritable = match (self.computed, ty) {
            (Some(why), _) => Some(why.to_string()),
            (None, ColumnType::Numeric) => Some(
                "is numeric: mig reads numerics as reals and will not write one back, \
                 which could lose precision"
                    .to_string(),
            ),
            _ => None,
        };
        let walkable = ty.is_integer()
            || matches!(
                ty,
                ColumnType::Text | ColumnType::Varchar | ColumnType::Uuid
            );
        let unwalkable = if !walkable {
            Some(format!(
                "is {}: mig walks integer, text or uuid keys only",
                self.shown_type()
            ))
        } else if !self.unique_not_null {
            Some(NOT_A_KEY.to_string())
        } else {
            None
        };
        ColumnLimits {
            unreadable: None,
            unwritable,
            unwalkable,
        }
    }
}

/// Why mig cannot read a column of catalog type `typname`.
fn unreadable(typname: &str) -> String {
    format!(
        "has type {typname}, which mig cannot read or write (supported: smallint, integer, \
         bigint, real, double precision, numeric (read only), text, varchar, char, boolean, \
         bytea, uuid, enums, and domains over them)"
    )
}

/// The error for a column mig cannot use as a step asks, `why` being its limit.
fn limited(table: &str, column: &str, why: &str) -> StoreError {
    StoreError::Unsupported(format!("column `{table}`.`{column}` {why}"))
}

/// Why the server computes a column's values itself, from `pg_attribute`'s `attgenerated`
/// and `attidentity`; an identity `BY DEFAULT` takes values, so it is not one.
fn computed(generated: &str, identity: &str) -> Option<&'static str> {
    if generated == "s" {
        Some("is a generated column: PostgreSQL computes its values")
    } else if identity == "a" {
        Some("is an identity column GENERATED ALWAYS: PostgreSQL assigns its values")
    } else {
        None
    }
}

/// The first key of the advisory lock each process working on a run holds shared, for
/// `mig status`: one per schema, as each schema keeps runs of its own, in the two-key space
/// mig's other advisory locks (one bigint key) do not share.
const RUN_LOCK_SPACE: &str = "hashtext('mig run ' || current_schema())";

/// The second key of run `run_id`'s lock: its low 32 bits, as pg_locks shows them.
fn run_lock_id(run_id: i64) -> i32 {
    run_id as u32 as i32
}

pub struct PostgresStore {
    client: Client,
    lock_timeout: Duration,
    tables: HashMap<String, Vec<Column>>,
    /// Batch statements prepared once per connection: a batch then costs no parse or plan
    /// round trip.
    prepared: HashMap<String, Statement>,
    /// Per run and NULL-old statement (its text), how that statement fares.
    null_old_misses: HashMap<(i64, String), NullOldMisses>,
    /// What every batch transaction sets after its lock timeout: `synchronous_commit = off`
    /// (see `transaction`), `BATCH_PLANS`, and `default_toast_compression = lz4` where the
    /// server has lz4 (PostgreSQL 14 and later, built with it): a batch's backup record is
    /// then compressed several times faster than with the default pglz, for about a quarter
    /// more space (2.9 MB against 2.3 MB for 500,000 rows, BENCHMARKS.md).
    batch_settings: String,
}

/// Connects with `config` and sets the session up, giving up after `wait` (None): a server
/// that takes the connection and never answers, or a pgbouncer holding its clients while its
/// pool is exhausted (it completes the startup itself and then holds the first statement),
/// otherwise held mig without end, and the node's `status` with it. The attempt goes on, on
/// its own thread, until the server answers or the connection closes; its client is then
/// dropped unused.
fn connect_within(
    config: postgres::Config,
    tls: postgres_openssl::MakeTlsConnector,
    wait: Duration,
) -> Result<Client, Option<postgres::Error>> {
    let (connected, answer) = mpsc::channel();
    let attempt = std::thread::spawn(move || {
        let client = config.connect(tls).and_then(|mut client| {
            client.batch_execute(SESSION_SETTINGS)?;
            Ok(client)
        });
        let _ = connected.send(client);
    });
    match answer.recv_timeout(wait) {
        Ok(client) => client.map_err(Some),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(None),
        // Only a panic ends the attempt without an answer: it is this call's, as it was when
        // the attempt ran here.
        Err(mpsc::RecvTimeoutError::Disconnected) => match attempt.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the attempt sends its answer before it ends"),
        },
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and reads the catalog. The session
    /// is application `mig` unless the URL names one: `others_busy` leaves out the sessions
    /// of this one's name, so workers do not yield to one another.
    pub fn connect(url: &str, lock_timeout: Duration) -> Result<PostgresStore, StoreError> {
        let open_error = |message: String| StoreError::Open {
            path: crate::config::without_password(url),
            message,
        };
        let tls = ClientTls::from_url(url).map_err(|e| open_error(e.to_string()))?;
        let mut config: postgres::Config = tls
            .url
            .parse()
            .map_err(|e| open_error(postgres_message(&e)))?;
        if config.get_application_name().is_none() {
            config.application_name("mig");
        }
        let wait = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        // The crate bounds only the socket's connect by this; set, it ends a connection
        // attempt that `connect_within` gave up on where no server took it.
        config.connect_timeout(wait);
        let client = connect_within(config, tls.connector, wait).map_err(|e| match e {
            Some(e) => open_error(postgres_message(&e)),
            None => StoreError::ConnectTimeout {
                url: crate::config::without_password(url),
                waited: wait,
            },
        })?;
        let mut store = PostgresStore {
            client,
            lock_timeout,
            tables: HashMap::new(),
            prepared: HashMap::new(),
            null_old_misses: HashMap::new(),
            batch_settings: format!("SET LOCAL synchronous_commit = off; {BATCH_PLANS}"),
        };
        let lz4: bool = store
            .client
            .query_one(
                "SELECT coalesce(bool_or('lz4' = ANY(enumvals)), false) FROM pg_settings \
                 WHERE name = 'default_toast_compression'",
                &[],
            )?
            .get(0);
        if lz4 {
            store
                .batch_settings
                .push_str("; SET LOCAL default_toast_compression = lz4");
        }
        store.load_catalog()?;
        Ok(store)
    }

    fn load_catalog(&mut self) -> Result<Schema, StoreError> {
        // The base type is spelled for typmod -1, not NULL: without one, `format_type` spells
        // `bpchar` as `character`, which a cast reads as `character(1)`. A column of a domain
        // is described by the type under the domain (through domains over domains) with the
        // domain's length: mig reads, writes and casts it as that type, and the server checks
        // the domain's own constraints on every value written, as for any assignment.
        let rows = self.client.query(
            &format!("{DOMAIN_BASES} \
             SELECT c.relname::text, a.attname::text, format_type(coalesce(d.base, a.atttypid), coalesce(d.typmod, a.atttypmod)), \
                    format_type(coalesce(d.base, a.atttypid), -1), t.typname::text, coalesce(array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1, 0)::int4, \
                    a.attgenerated::text, a.attidentity::text, \
                    coalesce(' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname), ''), \
                    a.attnotnull AND EXISTS (SELECT 1 FROM pg_index u WHERE u.indrelid = c.oid \
                        AND u.indisunique AND u.indisvalid AND u.indnkeyatts = 1 AND u.indkey[0] = a.attnum \
                        AND u.indpred IS NULL AND u.indexprs IS NULL AND u.indcollation[0] = a.attcollation), \
                    c.relkind = 'r' AND c.relhassubclass, row_security_active(c.oid), \
                    CASE WHEN d.domain IS NOT NULL THEN format_type(a.atttypid, -1) END, \
                    t.typtype = 'e', \
                    (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e \
                     WHERE e.enumtypid = t.oid) \
             FROM pg_class c \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
             LEFT JOIN _mig_domains d ON d.domain = a.atttypid AND d.last \
             JOIN pg_type t ON t.oid = coalesce(d.base, a.atttypid) \
             LEFT JOIN pg_collation co ON co.oid = a.attcollation AND co.oid <> 100 \
             LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace \
             LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
             WHERE c.relnamespace = {CURRENT_SCHEMA} AND c.relkind IN ('r', 'p') \
               AND left(c.relname::text, 5) <> '_mig_' \
             ORDER BY c.relname, a.attnum"),
            &[],
        )?;
        let mut tables: Vec<TableSchema> = Vec::new();
        let mut keys: Vec<Vec<(i32, String)>> = Vec::new();
        let mut any_inherited = false;
        self.tables.clear();
        for row in rows {
            any_inherited |= row.get::<_, bool>(10);
            let (table, column): (String, String) = (row.get(0), row.get(1));
            let typname: String = row.get(4);
            let position: i32 = row.get(5);
            if tables.last().is_none_or(|t| t.name != table) {
                tables.push(TableSchema {
                    name: table.clone(),
                    row_security: row.get(11),
                    ..TableSchema::default()
                });
                keys.push(vec![]);
            }
            // A uuid has no collation; its printed form sorts as the uuid does in bytes.
            let collate = match typname.as_str() {
                "uuid" => " COLLATE \"C\"".to_string(),
                _ => row.get(8),
            };
            let described = Column {
                name: column.clone(),
                sql_type: row.get(2),
                base_type: row.get(3),
                domain: row.get(12),
                ty: match row.get::<_, bool>(13) {
                    true => Some(ColumnType::Enum),
                    false => ColumnType::from_catalog(&typname),
                },
                typname,
                computed: computed(row.get(6), row.get(7)),
                collate,
                unique_not_null: row.get(9),
            };
            let (schema, key) = (tables.last_mut(), keys.last_mut());
            if let (Some(schema), Some(key)) = (schema, key) {
                schema.columns.push(column.clone());
                if position > 0 {
                    key.push((position, column.clone()));
                }
                if let Some(values) = described.values() {
                    schema.values.insert(column.clone(), values);
                }
                if let Some(labels) = row.get::<_, Option<Vec<String>>>(14) {
                    schema.labels.insert(column.clone(), labels);
                }
                let limits = described.limits();
                if limits != ColumnLimits::default() {
                    schema.limits.insert(column, limits);
                }
            }
            self.tables.entry(table).or_default().push(described);
        }
        for (table, mut key) in tables.iter_mut().zip(keys) {
            key.sort();
            table.primary_key = key.into_iter().map(|(_, c)| c).collect();
        }
        // Partitions are not inheriting tables here: a partitioned table's key covers them.
        // `relhassubclass` spares reading `pg_inherits`, which hardened databases may revoke,
        // where no plain table has ever had a child.
        if !any_inherited {
            return Ok(Schema { tables });
        }
        let inheriting = self.client.query(
            &format!(
                "SELECT p.relname::text, ch.relname::text FROM pg_inherits i \
                 JOIN pg_class p ON p.oid = i.inhparent JOIN pg_class ch ON ch.oid = i.inhrelid \
                 WHERE p.relkind = 'r' AND p.relnamespace = {CURRENT_SCHEMA} ORDER BY 1, 2"
            ),
            &[],
        )?;
        for row in inheriting {
            let parent: String = row.get(0);
            if let Some(table) = tables.iter_mut().find(|t| t.name == parent) {
                table.inherited_by.push(row.get(1));
            }
        }
        Ok(Schema { tables })
    }

    fn column(&self, table: &str, name: &str) -> Result<&Column, StoreError> {
        self.tables
            .get(table)
            .and_then(|columns| columns.iter().find(|c| c.name == name))
            .ok_or_else(|| {
                StoreError::Unsupported(format!("no column `{name}` in table `{table}`"))
            })
    }

    /// The column's type, or a clear error naming the type mig cannot handle. `mig check`
    /// refuses such columns first; this holds for a schema changed since.
    fn column_type(&self, table: &str, name: &str) -> Result<(ColumnType, String), StoreError> {
        let column = self.column(table, name)?;
        match column.ty {
            Some(ty) => Ok((ty, column.sql_type.clone())),
            None => Err(limited(table, name, &unreadable(&column.typname))),
        }
    }

    fn key_type(&self, table: &str, key: &str) -> Result<(ColumnType, String), StoreError> {
        let (ty, sql_type) = self.column_type(table, key)?;
        match self.column(table, key)?.limits().unwalkable {
            None => Ok((ty, sql_type)),
            Some(why) => Err(limited(table, key, &why)),
        }
    }

    /// The statement that restores the next part of a backup record whose set columns are
    /// `cols`: of record $2 of run $1, the $3 rows after those restored. It writes the old
    /// value back where the row still holds what the run wrote, keeps the other rows in
    /// `_mig_conflicts`, counts the part restored in the record (or drops the record with its
    /// last part), and returns the rows restored, the conflicts' keys, how many restored
    /// rows a trigger rewrote and how many rows the record has left (NULL where the record
    /// is gone: another rollback restored it). The record's arrays never leave the server.
    /// The record is locked first: a second rollback of the run waits there, then finds the
    /// record gone or this part counted restored, instead of taking the rows this one
    /// restores for rows the application changed since.
    fn restore_sql(
        &self,
        step: &BatchStep,
        cols: &[String],
        (key_type, key_sql_type): (ColumnType, &str),
    ) -> Result<String, StoreError> {
        let table = quote_ident(&step.table);
        let key = quote_ident(&step.key);
        // Per column its old and new values, the part's rows of the record's arrays (1-D for
        // one column; else 2-D, a row per backed-up row, whose column i a slice keeps).
        let column_of = |array: &str, i: usize| match cols.len() {
            1 => format!("(SELECT {array}[first:last] FROM _mig_part)"),
            _ => format!(
                "(SELECT {array}[first:last][{n}:{n}] FROM _mig_part)",
                n = i + 1
            ),
        };
        let mut arrays = vec!["(SELECT keys[first:last] FROM _mig_part)".to_string()];
        let mut names = vec!["key".to_string()];
        let mut sets = Vec::new();
        let mut unchanged = Vec::new();
        let mut restored_as_backed_up = Vec::new();
        let mut current = Vec::new();
        for (i, column) in cols.iter().enumerate() {
            // The base type, so an old value longer than the column allows now is refused,
            // not restored cut short.
            let base_type = self
                .column(&step.table, column)
                .map(|c| c.base_type.clone())
                .map_err(|_| {
                    StoreError::Unsupported(format!(
                        "backed-up column `{column}` is no longer in table `{}`",
                        step.table
                    ))
                })?;
            let quoted = quote_ident(column);
            arrays.push(column_of("old", i));
            arrays.push(column_of("new", i));
            names.push(format!("o{i}"));
            names.push(format!("n{i}"));
            sets.push(format!("{quoted} = _mig_record.o{i}::{base_type}"));
            // In bytes: in the column's collation an application's change of case alone
            // would pass for the value the run wrote, and be overwritten.
            unchanged.push(format!(
                "(t.{quoted}::text COLLATE \"C\") IS NOT DISTINCT FROM _mig_record.n{i}"
            ));
            restored_as_backed_up.push(format!(
                "(t.{quoted}::text COLLATE \"C\") IS NOT DISTINCT FROM _mig_record.o{i}"
            ));
            current.push(format!("t.{quoted}::text"));
        }
        let olds: Vec<String> = (0..cols.len())
            .map(|i| format!("_mig_record.o{i}"))
            .collect();
        let news: Vec<String> = (0..cols.len())
            .map(|i| format!("_mig_record.n{i}"))
            .collect();
        let key_int = if key_type.is_integer() {
            "_mig_record.key::int8"
        } else {
            "NULL::int8"
        };
        Ok(format!(
            "WITH _mig_part AS MATERIALIZED (SELECT keys, old, new, cols, restored + 1 AS first, \
             restored + least($3, cardinality(keys) - restored) AS last, cardinality(keys) AS rows \
             FROM _mig_backup WHERE run_id = $1 AND batch = $2 FOR UPDATE), \
             _mig_record AS (SELECT * FROM unnest({}) AS _mig_record({})), \
             _mig_restored AS (UPDATE {table} AS t SET {} FROM _mig_record \
             WHERE t.{key} = _mig_record.key::{key_sql_type} AND {} \
             RETURNING _mig_record.key, ({}) AS as_backed_up), \
             _mig_conflicted AS (INSERT INTO _mig_conflicts (run_id, key, key_int, cols, old, written, current) \
             SELECT $1, _mig_record.key, {key_int}, (SELECT cols FROM _mig_part), ARRAY[{}]::text[], ARRAY[{}]::text[], \
             (SELECT ARRAY[{}]::text[] FROM {table} AS t WHERE t.{key} = _mig_record.key::{key_sql_type}) \
             FROM _mig_record WHERE _mig_record.key NOT IN (SELECT key FROM _mig_restored) \
             RETURNING key, key_int), \
             _mig_counted AS (UPDATE _mig_backup SET restored = _mig_part.last FROM _mig_part \
             WHERE run_id = $1 AND batch = $2 AND _mig_part.last < _mig_part.rows), \
             _mig_dropped AS (DELETE FROM _mig_backup USING _mig_part \
             WHERE run_id = $1 AND batch = $2 AND _mig_part.last >= _mig_part.rows) \
             SELECT (SELECT count(*) FROM _mig_restored), \
             ARRAY(SELECT key FROM _mig_conflicted ORDER BY key_int, key), \
             (SELECT count(*) FROM _mig_restored WHERE NOT as_backed_up), \
             (SELECT rows - last FROM _mig_part)",
            arrays.join(", "),
            names.join(", "),
            sets.join(", "),
            unchanged.join(" AND "),
            restored_as_backed_up.join(" AND "),
            olds.join(", "),
            news.join(", "),
            current.join(", ")
        ))
    }

    /// `e` naming the step's set columns with a length when it is PostgreSQL's "value too
    /// long for type character varying(3)", which says neither table nor column.
    fn name_too_long(&self, step: &BatchStep, e: StoreError) -> StoreError {
        let StoreError::Postgres(source) = e else {
            return e;
        };
        let columns: Vec<&Column> = step
            .sets
            .iter()
            .filter_map(|(column, _)| self.column(&step.table, column).ok())
            .collect();
        match with_length(&step.table, &columns) {
            Some(columns) if source.code() == Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION) => {
                StoreError::TooLong { columns, source }
            }
            _ => StoreError::Postgres(source),
        }
    }

    /// Runs `work` in one transaction with the lock timeout set; contention becomes
    /// `Contention`, which the engine retries.
    ///
    /// The commit does not wait for the WAL flush (`synchronous_commit = off`): a server crash
    /// may lose the last few batches, but each together with its checkpoint and backup, so
    /// the resumed run redoes exactly those. It saves a disk flush per batch. See
    /// `BATCH_PLANS` for how its statements are planned.
    fn transaction<T>(
        &mut self,
        lock_timeout: Duration,
        position: Option<&BatchRequest<'_>>,
        yielding: bool,
        work: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let begin = opening(
            lock_timeout,
            &self.batch_settings,
            yielding,
            position.map(|request| request.run_id),
        );
        let result = (|| {
            let opened = self.client.simple_query(&begin)?;
            if let Some(request) = position {
                check_run_position(&opened, request)?;
            }
            let value = work(&mut self.client)?;
            self.client.batch_execute("COMMIT")?;
            Ok(value)
        })();
        if result.is_err() {
            // The connection may be gone too; then there is nothing left to roll back.
            let _ = self.client.batch_execute("ROLLBACK");
        }
        result.map_err(|e| contention(e, started))
    }

    fn create_state_tables(&mut self) -> Result<(), StoreError> {
        let created = (|| {
            let mut tx = self.client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&STATE_LOCK])?;
            tx.batch_execute(STATE_TABLES)?;
            tx.commit()
        })();
        created.map_err(|e| StoreError::StateTables {
            schema: self.current_schema(),
            source: Box::new(e.into()),
        })
    }

    /// `_mig_runs.pruned_at` and `key_order` and `_mig_backup.restored`, into state tables an
    /// earlier `mig` made. A nullable column, or one whose default is a constant, goes into
    /// the catalog alone, no row is rewritten; the tables' locks for them are waited for no
    /// longer than any other.
    fn add_later_columns(&mut self) -> Result<(), StoreError> {
        let added = self.waiting_at_most_lock_timeout(|client| {
            let mut tx = client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&STATE_LOCK])?;
            tx.batch_execute(
                "ALTER TABLE _mig_runs ADD COLUMN IF NOT EXISTS pruned_at text; \
                 ALTER TABLE _mig_runs ADD COLUMN IF NOT EXISTS key_order text; \
                 ALTER TABLE _mig_backup ADD COLUMN IF NOT EXISTS restored integer NOT NULL DEFAULT 0",
            )?;
            tx.commit()
        });
        added.map_err(|e| match e {
            StoreError::Postgres(source) => StoreError::StateTablesOutdated {
                schema: self.current_schema(),
                source: Box::new(StoreError::Postgres(source)),
            },
            other => other,
        })
    }

    /// The triggers of `table` that fire on UPDATE (`tgtype`'s UPDATE bit, 16) in mig's
    /// session: mig's writes set them off. Which are enabled depends on the session's
    /// `session_replication_role`: `ALWAYS` ones in any, `REPLICA` ones only under
    /// `replica`, the others only outside it.
    fn update_triggers(&mut self, table: &str) -> Result<Vec<String>, StoreError> {
        let rows = self.client.query(
            &format!(
                "SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 WHERE c.relname = $1 AND c.relnamespace = {CURRENT_SCHEMA} AND NOT t.tgisinternal \
                 AND t.tgtype & 16 <> 0 AND CASE t.tgenabled WHEN 'A' THEN true \
                 WHEN 'R' THEN current_setting('session_replication_role') = 'replica' \
                 WHEN 'O' THEN current_setting('session_replication_role') <> 'replica' \
                 ELSE false END ORDER BY t.tgname"
            ),
            &[&table],
        )?;
        Ok(rows
            .iter()
            .map(|row| {
                let definition: String = row.get(0);
                definition
                    .strip_prefix("CREATE ")
                    .unwrap_or(&definition)
                    .to_string()
            })
            .collect())
    }

    fn current_schema(&mut self) -> String {
        self.client
            .query_one("SELECT current_schema()::text", &[])
            .ok()
            .and_then(|row| row.get::<_, Option<String>>(0))
            .unwrap_or_else(|| "(none: the search_path names no schema)".to_string())
    }

    /// Runs `work` outside a batch transaction with the session's lock waits bounded by
    /// `mig.toml`'s lock timeout, as a batch's are by its own: preparing a statement or
    /// counting a table takes a lock on it, and behind an `ALTER TABLE` (or any session
    /// holding the table's ACCESS EXCLUSIVE lock) it waited as long as that session did,
    /// however short the spec's `lock_timeout`. A wait cut short is contention, which the
    /// engine retries.
    fn waiting_at_most_lock_timeout<T>(
        &mut self,
        work: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        self.client.batch_execute(&format!(
            "SET lock_timeout = '{}ms'",
            self.lock_timeout.as_millis().max(1)
        ))?;
        let result = work(&mut self.client);
        let reset = self.client.batch_execute("RESET lock_timeout");
        let value = result.map_err(|e| contention(e.into(), started))?;
        reset?;
        Ok(value)
    }

    /// Runs `read`, a scan of a whole table (a validation, a checksum), in a transaction of
    /// its own whose lock waits are bounded by `mig.toml`'s lock timeout. The scan takes as
    /// long as it takes; only its wait for the table's lock is bounded: behind a session
    /// holding the table's ACCESS EXCLUSIVE lock (an `ALTER TABLE`), `mig validate` and the
    /// node's queue behind it waited as long as that session did.
    fn reading<T>(
        &mut self,
        read: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let bounded = |e: StoreError| contention(e, started);
        let mut tx = self.client.transaction().map_err(|e| bounded(e.into()))?;
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '{}ms'",
            self.lock_timeout.as_millis().max(1)
        ))
        .map_err(|e| bounded(e.into()))?;
        let value = read(&mut tx).map_err(bounded)?;
        tx.commit().map_err(|e| bounded(e.into()))?;
        Ok(value)
    }

    fn step_plan(&self, step: &BatchStep) -> Result<BatchPlan, StoreError> {
        let (key_type, key_sql_type) = self.key_type(&step.table, &step.key)?;
        let mut set_types = Vec::new();
        let mut set_lengths = Vec::new();
        for (column, _) in &step.sets {
            let (ty, _) = self.column_type(&step.table, column)?;
            let described = self.column(&step.table, column)?;
            if let Some(why) = described.limits().unwritable {
                return Err(limited(&step.table, column, &why));
            }
            set_types.push((ty, described.base_type.clone()));
            set_lengths.push(described.varchar_length());
        }
        let mut needed: Vec<String> = Vec::new();
        let exprs = step.sets.iter().map(|(_, e)| e).chain(&step.filter);
        for expr in exprs {
            expr.walk(&mut |e| {
                if let ExprKind::Column(name) = &e.kind {
                    if !needed.contains(name) {
                        needed.push(name.clone());
                    }
                }
            });
        }
        for (column, _) in &step.sets {
            if !needed.contains(column) {
                needed.push(column.clone());
            }
        }
        let mut read_types = Vec::new();
        for name in &needed {
            read_types.push(self.column_type(&step.table, name)?.0);
        }
        let shape = BatchShape {
            table: quote_ident(&step.table),
            key: quote_ident(&step.key),
            key_type,
            key_sql_type,
            key_collate: self.column(&step.table, &step.key)?.collate.clone(),
            set_columns: step.sets.iter().map(|(c, _)| c.clone()).collect(),
            set_types,
            set_lengths,
            needed,
            read_types,
        };
        let path = match self.pushdown(step, &shape) {
            Ok(sql) => Path::Pushdown(sql),
            Err(reason) => Path::ReadComputeWrite(reason),
        };
        Ok(BatchPlan { shape, path })
    }

    /// The statements of a pushed-down batch, or why there are none.
    fn pushdown(&self, step: &BatchStep, shape: &BatchShape) -> Result<Pushdown, NotPushed> {
        let columns = self.tables.get(&step.table);
        let lookup = |name: &str| {
            columns
                .and_then(|cs| cs.iter().find(|c| c.name == name))
                .and_then(|c| c.ty.map(|ty| (format!("t.{}", quote_ident(name)), ty)))
        };
        let mut params = vec![Value::Null; 6];
        let mut renderer = Renderer {
            column: &lookup,
            params: &mut params,
        };
        let mut assignments = Vec::new();
        let mut differs = Vec::new();
        let mut present = Vec::new();
        let mut old_nulls = Vec::new();
        let sets = step
            .sets
            .iter()
            .zip(&shape.set_types)
            .zip(&shape.set_lengths);
        for (((column, value), (ty, base_type)), length) in sets {
            let pushed = renderer.value(value)?;
            let fits = match pushed.ty {
                super::postgres_sql::SqlType::Int => ty.is_integer(),
                super::postgres_sql::SqlType::Text => {
                    matches!(
                        ty,
                        ColumnType::Text | ColumnType::Varchar | ColumnType::Enum
                    )
                }
                super::postgres_sql::SqlType::Null => true,
                super::postgres_sql::SqlType::Bool => false,
            };
            if *ty == ColumnType::Uuid {
                return Err(NotPushed(format!(
                    "`set {column}` writes a uuid column, which takes text only as a uuid \
                     the interpreter has checked"
                )));
            }
            if !fits {
                return Err(NotPushed(format!(
                    "`set {column}` writes a value of another type than the column's"
                )));
            }
            let column = quote_ident(column);
            // An enum takes its label as text, cast: the cast refuses a label it lacks, for
            // the rows written only, as the interpreter's write does. It is compared as text.
            let (written, stored) = match ty {
                ColumnType::Enum => (
                    format!("({})::{base_type}", pushed.sql),
                    format!("t.{column}::text"),
                ),
                _ => (pushed.sql.clone(), format!("t.{column}")),
            };
            assignments.push(format!("{column} = {written}"));
            // Bytes, as eval compares: in a case-insensitive collation 'ABC' would not
            // differ from 'abc', and the row would keep its old value.
            let bytes = if ty.is_text() || *ty == ColumnType::Enum {
                " COLLATE \"C\""
            } else {
                ""
            };
            differs.push(format!(
                "(({}){bytes}) IS DISTINCT FROM {stored}",
                as_stored(&pushed.sql, *length)
            ));
            present.push(format!("({}) IS NOT NULL", pushed.sql));
            old_nulls.push(format!("t.{column} IS NULL"));
        }
        let filter = match &step.filter {
            Some(filter) => Some(renderer.predicate(filter)?.sql),
            None => None,
        };
        // CASE keeps the order eval keeps: no new value is computed for a filtered-out row.
        let filtered = |changed: &[String]| {
            let changed = format!("({})", changed.join(" OR "));
            match &filter {
                Some(filter) => format!("CASE WHEN {filter} THEN {changed} ELSE false END"),
                None => changed,
            }
        };
        let condition = filtered(&differs);
        let BatchShape {
            table,
            key,
            key_sql_type,
            ..
        } = shape;
        let checkpoint = shape.checkpoint_column();
        let last = shape.as_checkpoint("_mig_seen.last");
        let old = shape.text_values("");
        let new = shape.text_values("t.");
        // A batch's keys: after the checkpoint ($3; the first batch has none), up to an end
        // ($6: a worker's claim, or the rest of a batch's range) if the statement is `ended`,
        // read through `q` (`t.` or nothing). Each bound is its own statement, not a
        // `coalesce`: a generic plan could not turn that into an index bound, and a claim's
        // scan, which has no LIMIT, would read the index to its end.
        let range = |after: bool, ended: bool, q: &str| {
            let lower = if after {
                format!("{q}{key} > $3::{key_sql_type}")
            } else {
                format!("$3::{key_sql_type} IS NULL")
            };
            let upper = if ended {
                format!("{q}{key} <= $6::{key_sql_type}")
            } else {
                format!("$6::{key_sql_type} IS NULL")
            };
            format!("{lower} AND {upper}")
        };
        // The batch's first and last keys bound every later scan of the table on both sides.
        // With one bound (a first batch has no checkpoint) the planner guesses a third of the
        // table and scans all of it, holding the rows it already wrote locked meanwhile.
        let within_seen = format!(
            "t.{key} BETWEEN (SELECT first FROM _mig_seen) AND (SELECT last FROM _mig_seen)"
        );
        let spell = |sql: &dyn Fn(bool, bool) -> String| Spelled {
            first: sql(false, false),
            next: sql(true, false),
            first_ended: sql(false, true),
            next_ended: sql(true, true),
        };
        // The changing statement passes over the rows the NULL-old one wrote only if they no
        // longer change: no set may read a set column, and each column must store exactly
        // the value assigned to it. A `varchar(n)` column cuts trailing spaces past n, so the
        // value it holds would differ from the value computed again, and the row would be
        // written and backed up a second time in one batch.
        let stores_exactly = |column: &str| {
            self.column(&step.table, column)
                .is_ok_and(|c| !c.has_length())
        };
        let null_old_first = step.sets.iter().all(|(column, _)| {
            stores_exactly(column)
                && *column != step.key
                && step.sets.iter().all(|(_, value)| !value.reads(column))
        });
        // Both statements that lock their rows first (`_mig_batch`) write them alike: the
        // locked rows that still change, with their old values kept for the backup.
        let assignments = assignments.join(", ");
        let write_locked = |after: bool, ended: bool| {
            format!(
                "_mig_updated AS (UPDATE {table} AS t SET {assignments} FROM _mig_batch \
                 WHERE t.{key} = _mig_batch.\"_mig_key\" AND {} AND {within_seen} \
                 AND {condition} \
                 RETURNING t.{key} AS k, {new} AS new, _mig_batch.\"_mig_old\" AS old), \
                 _mig_done AS (SELECT count(*) AS n FROM _mig_updated)",
                range(after, ended, "t."),
            )
        };
        // ... and end alike: the whole range processed, the checkpoint at its last key.
        let whole_batch_progress = format!(
            "_mig_progress AS (UPDATE _mig_runs SET {checkpoint} = greatest({checkpoint}, {last}), \
             processed = processed + _mig_seen.n, updated = updated + _mig_done.n, batches = batches + 1, \
             updated_at = {NOW} FROM _mig_seen, _mig_done WHERE id = $1 AND _mig_seen.n > 0) \
             SELECT _mig_seen.n, _mig_done.n, _mig_seen.last FROM _mig_seen, _mig_done"
        );
        let statements = if null_old_first {
            // Over NULL old values "differs" is "is not NULL": the same rows, a cheaper test.
            let fills = filtered(&present);
            let nulls = match shape.set_columns.len() {
                1 => "array_fill(NULL::text, ARRAY[count(*)::int4])".to_string(),
                width => format!("array_fill(NULL::text, ARRAY[count(*)::int4, {width}])"),
            };
            // The batch's keys, read in the statement's snapshot without locking them.
            let keys = |after: bool, ended: bool| {
                format!(
                    "_mig_keys AS (SELECT {key} FROM {table} WHERE {} ORDER BY {key} LIMIT $4), \
                     _mig_seen AS (SELECT count(*) AS n, {} AS first, {} AS last FROM _mig_keys)",
                    range(after, ended, ""),
                    shape.key_extreme("min", key),
                    shape.key_extreme("max", key),
                )
            };
            // The UPDATE takes only rows whose set columns are all NULL. READ COMMITTED
            // re-checks its WHERE on the row version it locks and overwrites (one the
            // application changed meanwhile is re-read at its committed version, and passed
            // over unless it is still NULL and in range), so every row it writes held NULL
            // there: the backup's old values are known without a locking read or a join.
            // The batch is done only when it wrote every row of the range; otherwise it counts
            // just the rows it wrote and the changing statement finishes the batch.
            let null_old = spell(&|after, ended| {
                format!(
                    "WITH {}, \
                     _mig_updated AS (UPDATE {table} AS t SET {assignments} \
                     WHERE {} AND {within_seen} AND {} AND {fills} \
                     RETURNING t.{key} AS k, {new} AS new), \
                     _mig_done AS (SELECT count(*) AS n FROM _mig_updated), \
                     _mig_backed_up AS (INSERT INTO _mig_backup (run_id, batch, cols, keys, old, new) \
                     SELECT $1, $2, $5::text[], array_agg(k::text), {nulls}, array_agg(new) \
                     FROM _mig_updated HAVING count(*) > 0), \
                     _mig_whole AS (SELECT _mig_seen.n = _mig_done.n AS written FROM _mig_seen, _mig_done), \
                     _mig_progress AS (UPDATE _mig_runs SET \
                     {checkpoint} = CASE WHEN _mig_whole.written THEN greatest({checkpoint}, {last}) ELSE {checkpoint} END, \
                     processed = processed + CASE WHEN _mig_whole.written THEN _mig_seen.n ELSE 0 END, \
                     updated = updated + _mig_done.n, batches = batches + _mig_whole.written::int4, \
                     updated_at = {NOW} FROM _mig_seen, _mig_done, _mig_whole WHERE id = $1 AND _mig_done.n > 0) \
                     SELECT _mig_seen.n, _mig_done.n, _mig_seen.last FROM _mig_seen, _mig_done",
                    keys(after, ended),
                    range(after, ended, "t."),
                    old_nulls.join(" AND "),
                )
            });
            // Locks and writes only the rows that change, from their locked version; a row
            // it leaves unlocked is one mig writes nothing to. After the NULL-old statement
            // ($4 no limit, $6 that statement's last key), as a later command of the same
            // transaction, it sees those writes, which change no more (no set reads a set
            // column), and its own snapshot counts the range's rows: a row the first statement
            // lost to a delete or to a key moved ahead is not processed here, one inserted
            // since is. Its backup joins the batch's record.
            let changing = spell(&|after, ended| {
                format!(
                    "WITH {}, \
                     _mig_batch AS MATERIALIZED (SELECT {key} AS \"_mig_key\", {old} AS \"_mig_old\" \
                     FROM {table} AS t WHERE {} AND {within_seen} \
                     AND {condition} FOR NO KEY UPDATE), {}, \
                     _mig_backed_up AS (INSERT INTO _mig_backup (run_id, batch, cols, keys, old, new) \
                     SELECT $1, $2, $5::text[], array_agg(k::text), array_agg(old), array_agg(new) \
                     FROM _mig_updated HAVING count(*) > 0 \
                     ON CONFLICT (run_id, batch) DO UPDATE SET keys = _mig_backup.keys || excluded.keys, \
                     old = _mig_backup.old || excluded.old, new = _mig_backup.new || excluded.new), \
                     {whole_batch_progress}",
                    keys(after, ended),
                    range(after, ended, "t."),
                    write_locked(after, ended),
                )
            });
            Statements::NullOldFirst { null_old, changing }
        } else {
            // The batch CTE locks the rows and keeps only their keys and old values. The
            // UPDATE reads the rows again by the same key range, up to the batch's last key (a
            // scalar subquery, so an index bound), which the planner joins to the batch with a
            // hash instead of one primary-key probe per row; the join still confines it to the
            // locked rows. Its SET and its IS DISTINCT FROM read `t`, the locked version.
            // The three array_agg walk the same rows in the same order, which is all rollback
            // needs to pair keys with values: sorting them cost more than the rest of the backup.
            Statements::Locking(spell(&|after, ended| {
                format!(
                    "WITH _mig_batch AS MATERIALIZED (\
                     SELECT {key} AS \"_mig_key\", {old} AS \"_mig_old\" FROM {table} \
                     WHERE {} AND {} ORDER BY {key} LIMIT $4 FOR NO KEY UPDATE), \
                     _mig_seen AS (SELECT count(*) AS n, {} AS first, {} AS last FROM _mig_batch), \
                     {}, \
                     _mig_backed_up AS (INSERT INTO _mig_backup (run_id, batch, cols, keys, old, new) \
                     SELECT $1, $2, $5::text[], array_agg(k::text), array_agg(old), array_agg(new) \
                     FROM _mig_updated HAVING count(*) > 0), \
                     {whole_batch_progress}",
                    range(after, ended, ""),
                    snapshot_bound(table, key, &range(after, ended, ""), "$4"),
                    shape.key_extreme("min", "\"_mig_key\""),
                    shape.key_extreme("max", "\"_mig_key\""),
                    write_locked(after, ended),
                )
            }))
        };
        Ok(Pushdown { statements, params })
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.waiting_at_most_lock_timeout(|client| client.prepare(sql))?;
        self.prepared.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn prepare_pushdown(
        &mut self,
        sql: &Pushdown,
        request: &BatchRequest<'_>,
        ended: bool,
    ) -> Result<PreparedPushdown, StoreError> {
        let after = request.after;
        Ok(match &sql.statements {
            Statements::Locking(whole) => {
                PreparedPushdown::Locking(self.prepare(whole.pick(after, ended))?)
            }
            Statements::NullOldFirst { null_old, changing } => {
                let misses = (request.run_id, null_old.next.clone());
                let skips = self
                    .null_old_misses
                    .entry(misses.clone())
                    .or_default()
                    .skips();
                PreparedPushdown::NullOldFirst {
                    null_old: if skips {
                        None
                    } else {
                        Some(self.prepare(null_old.pick(after, ended))?)
                    },
                    changing: self.prepare(changing.pick(after, ended))?,
                    rest: self.prepare(changing.pick(after, true))?,
                    misses,
                }
            }
        })
    }

    /// Counts a batch of a NULL-old step: `wrote` is whether its NULL-old statement wrote a
    /// row, None when it did not run or its range was empty.
    fn count_null_old(&mut self, statements: &PreparedPushdown, wrote: Option<bool>) {
        if let (PreparedPushdown::NullOldFirst { misses, .. }, Some(wrote)) = (statements, wrote) {
            if let Some(misses) = self.null_old_misses.get_mut(misses) {
                misses.record(wrote);
            }
        }
    }

    /// One pushed-down batch: the keys after `request.after`, up to `upper` when given.
    /// Only a run no worker shares comes here: its checkpoint is this process's to advance.
    fn run_pushdown(
        &mut self,
        sql: &Pushdown,
        columns: Vec<String>,
        request: &BatchRequest<'_>,
        upper: Option<&Value>,
        lock_timeout: Duration,
    ) -> Result<BatchOutcome, StoreError> {
        let mut params = sql.params.clone();
        params[0] = Value::Integer(request.run_id);
        params[1] = Value::Integer(request.batch_no);
        params[2] = request.after.cloned().unwrap_or(Value::Null);
        params[3] = Value::Integer(i64::try_from(request.limit).unwrap_or(i64::MAX));
        params[5] = upper.cloned().unwrap_or(Value::Null);
        let statements = self.prepare_pushdown(sql, request, upper.is_some())?;
        let (outcome, wrote) =
            self.transaction(lock_timeout, Some(request), request.yielding, |tx| {
                execute_pushdown(tx, &statements, params, &columns)
            })?;
        self.count_null_old(&statements, wrote);
        Ok(outcome)
    }

    /// One batch computed by the interpreter: the keys after `request.after`, up to `upper`.
    fn run_interpreted(
        &mut self,
        step: &BatchStep,
        shape: &BatchShape,
        request: &BatchRequest<'_>,
        upper: Option<&Value>,
    ) -> Result<BatchOutcome, StoreError> {
        let (read_first, read_next) = shape.read_sql();
        let read = self.prepare(if request.after.is_some() {
            &read_next
        } else {
            &read_first
        })?;
        let write = self.prepare(&shape.write_sql())?;
        let after = request.after.cloned().unwrap_or(Value::Null);
        let upper = upper.cloned().unwrap_or(Value::Null);
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        let columns: Vec<String> = step.sets.iter().map(|(c, _)| c.clone()).collect();
        self.transaction(step.lock_timeout, Some(request), request.yielding, |tx| {
            let rows = tx.query(&read, &[&after, &limit, &upper])?;
            let mut keys = Vec::new();
            let mut new_values: Vec<Vec<Value>> = vec![Vec::new(); step.sets.len()];
            for row in &rows {
                let values = BatchRow::read(row, &shape.needed)?;
                if let Some(filter) = &step.filter {
                    if !eval::eval_predicate(filter, &values)? {
                        continue;
                    }
                }
                let mut computed = Vec::with_capacity(step.sets.len());
                let sets = step
                    .sets
                    .iter()
                    .zip(&shape.set_types)
                    .zip(&shape.set_lengths);
                for (((column, expr), (ty, _)), length) in sets {
                    let value = eval::eval(expr, &values)?;
                    computed.push(cut_trailing_spaces(coerce(value, *ty, column)?, *length));
                }
                let differs = step.sets.iter().zip(&computed).zip(&shape.set_types).any(
                    |(((column, _), new), (ty, _))| !stores_alike(*ty, values.column(column), new),
                );
                if differs {
                    keys.push(values.key.clone());
                    for (slot, value) in new_values.iter_mut().zip(computed) {
                        slot.push(value);
                    }
                }
            }
            let Some(last) = rows.last() else {
                return Ok(BatchOutcome {
                    processed: 0,
                    updated: 0,
                    last_key: None,
                    held: Duration::ZERO,
                });
            };
            let last_key: Value = last.get(0);
            let processed = rows.len() as i64;
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &request.run_id,
                &request.batch_no,
                &last_key,
                &columns,
                &processed,
                &keys,
            ];
            params.extend(new_values.iter().map(|v| v as &(dyn ToSql + Sync)));
            let updated: i64 = tx.query_one(&write, &params)?.get(0);
            Ok(BatchOutcome {
                processed: processed as u64,
                updated: updated as u64,
                last_key: Some(last_key),
                held: Duration::ZERO,
            })
        })
    }

    fn run_range(
        &mut self,
        step: &BatchStep,
        request: &BatchRequest<'_>,
        upper: Option<&Value>,
    ) -> Result<BatchOutcome, StoreError> {
        let plan = self.step_plan(step)?;
        match &plan.path {
            Path::Pushdown(sql) => {
                let columns = step.sets.iter().map(|(c, _)| c.clone()).collect();
                self.run_pushdown(sql, columns, request, upper, step.lock_timeout)
            }
            Path::ReadComputeWrite(_) => self.run_interpreted(step, &plan.shape, request, upper),
        }
    }

    /// Whether `step`'s table holds a row after key `after` (any row, without one).
    fn has_keys_after(
        &mut self,
        step: &BatchStep,
        after: Option<&Value>,
    ) -> Result<bool, StoreError> {
        let (_, key_sql_type) = self.key_type(&step.table, &step.key)?;
        let table = quote_ident(&step.table);
        let key = quote_ident(&step.key);
        let row = match after {
            None => self
                .client
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])?,
            Some(after) => self.client.query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE {key} > $1::{key_sql_type})"),
                &[after],
            )?,
        };
        Ok(row.get(0))
    }

    /// Claims the next `limit` keys after the run's claimed cursor, in a short transaction of
    /// its own; false when the table is claimed to its end. `bounds` find the claim's last
    /// key from the start and after the cursor.
    fn claim_range(
        &mut self,
        run_id: i64,
        limit: i64,
        bounds: &(String, String),
    ) -> Result<bool, StoreError> {
        let lock_timeout = self.lock_timeout;
        let first = self.prepare(&bounds.0)?;
        let next = self.prepare(&bounds.1)?;
        self.transaction(lock_timeout, None, false, |tx| {
            // A run one process walked alone before workers joined it is claimed on from its
            // checkpoint, and its claims are numbered after its batches, whose backups they
            // would otherwise meet.
            // A run another worker completed has nothing left to claim, even where the
            // application has inserted rows after its end since. (A run rolled back under
            // the workers is claimed on, and the claim's batch then finds it moved on.)
            let run = tx.query_one(
                "SELECT status IN ('checking', 'completed'), \
                 coalesce(claimed, checkpoint_int::text, checkpoint_text) \
                 FROM _mig_runs WHERE id = $1 FOR UPDATE",
                &[&run_id],
            )?;
            if run.get::<_, bool>(0) {
                return Ok(false);
            }
            let claimed: Option<String> = run.get(1);
            let bound = if claimed.is_some() { &next } else { &first };
            let hi: Option<String> = tx.query_one(bound, &[&claimed, &limit])?.get(0);
            let Some(hi) = hi else {
                return Ok(false);
            };
            tx.execute(
                "WITH _mig_run AS (UPDATE _mig_runs SET claimed = $2, claims = greatest(claims, \
                 batches, (SELECT coalesce(max(batch), 0) FROM _mig_backup WHERE run_id = $1)) + 1 \
                 WHERE id = $1 RETURNING claims) \
                 INSERT INTO _mig_claims (run_id, batch, lo, hi) SELECT $1, claims, $3, $2 FROM _mig_run",
                &[&run_id, &hi, &claimed],
            )?;
            Ok(true)
        })
    }

    /// Runs the claimed range (`request.after`, `upper`] as one pushed-down batch and marks
    /// the claim done, in one transaction; None when another worker holds the claim.
    fn run_claim(
        &mut self,
        sql: &Pushdown,
        step: &BatchStep,
        request: &BatchRequest<'_>,
        upper: &Value,
    ) -> Result<Option<BatchOutcome>, StoreError> {
        let columns: Vec<String> = step.sets.iter().map(|(c, _)| c.clone()).collect();
        let mut params = sql.params.clone();
        params[0] = Value::Integer(request.run_id);
        params[1] = Value::Integer(request.batch_no);
        params[2] = request.after.cloned().unwrap_or(Value::Null);
        params[3] = Value::Integer(i64::MAX);
        params[5] = upper.clone();
        let statements = self.prepare_pushdown(sql, request, true)?;
        let take = self.prepare(
            "SELECT 1 FROM _mig_claims WHERE run_id = $1 AND batch = $2 AND NOT done \
             FOR UPDATE SKIP LOCKED",
        )?;
        // The claim is marked done only while its run is still running, and under the run's
        // row lock: a rollback marks the run first, under the same lock, then lists the
        // batches to restore, so a claim either commits before that list is made or not at
        // all. Without it, workers went on writing after a rollback had finished.
        let finish = self.prepare(
            "UPDATE _mig_claims SET done = true WHERE run_id = $1 AND batch = $2 \
             AND EXISTS (SELECT 1 FROM _mig_runs WHERE id = $1 AND status = 'running' \
             FOR NO KEY UPDATE)",
        )?;
        let done = self.transaction(step.lock_timeout, None, request.yielding, |tx| {
            let claim = tx.query_opt(&take, &[&request.run_id, &request.batch_no])?;
            if claim.is_none() {
                return Ok(None);
            }
            let done = execute_pushdown(tx, &statements, params, &columns)?;
            if tx.execute(&finish, &[&request.run_id, &request.batch_no])? == 0 {
                return Err(run_moved(tx, request.run_id));
            }
            Ok(Some(done))
        })?;
        Ok(done.map(|(outcome, wrote)| {
            self.count_null_old(&statements, wrote);
            outcome
        }))
    }

    /// SQL failure terms per validation for the checks PostgreSQL can decide exactly, and the
    /// `expect` predicates left to the interpreter.
    fn validation_terms<'v>(
        &self,
        table: &str,
        validations: &[&'v Validation],
        params: &mut Vec<Value>,
        windows: &mut Vec<String>,
    ) -> (Vec<String>, Vec<Vec<&'v Expr>>) {
        let columns = self.tables.get(table);
        let lookup = |name: &str| {
            columns
                .and_then(|cs| cs.iter().find(|c| c.name == name))
                .and_then(|c| c.ty.map(|ty| (quote_ident(name), ty)))
        };
        let names: Vec<String> = columns
            .map(|cs| cs.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default();
        let mut terms = Vec::new();
        let mut interpreted = Vec::new();
        for validation in validations {
            let mut sql = Vec::new();
            let mut left = Vec::new();
            for check in &validation.checks {
                match check {
                    Check::NotNull(columns) => sql.extend(
                        columns
                            .iter()
                            .map(|c| format!("{} IS NULL", quote_ident(c))),
                    ),
                    Check::Unique(columns) => {
                        let alias = unique_count_alias(windows.len(), &names);
                        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
                        // Duplicates in bytes, as `=` in an `expect` compares: in a
                        // case-insensitive collation 'Abc' and 'aBC' were one value.
                        let by: Vec<String> = columns
                            .iter()
                            .map(|c| match lookup(c) {
                                Some((quoted, ty)) if ty.is_text() => {
                                    format!("{quoted} COLLATE \"C\"")
                                }
                                _ => quote_ident(c),
                            })
                            .collect();
                        windows.push(format!(
                            ", count(*) OVER (PARTITION BY {}) AS {alias}",
                            by.join(", ")
                        ));
                        let present: Vec<String> =
                            cols.iter().map(|c| format!("{c} IS NOT NULL")).collect();
                        sql.push(format!("({} AND {alias} > 1)", present.join(" AND ")));
                    }
                    Check::Expect(predicate) => {
                        let mut scratch = params.clone();
                        let mut renderer = Renderer {
                            column: &lookup,
                            params: &mut scratch,
                        };
                        match renderer.predicate(predicate) {
                            Ok(p) if p.total => {
                                *params = scratch;
                                sql.push(format!("coalesce(NOT {}, false)", p.sql));
                            }
                            _ => left.push(predicate),
                        }
                    }
                }
            }
            terms.push(if sql.is_empty() {
                "false".to_string()
            } else {
                sql.into_iter()
                    .map(|t| format!("({t})"))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            });
            interpreted.push(left);
        }
        (terms, interpreted)
    }
}

/// What a batch needs to know about its table.
struct BatchShape {
    table: String,
    key: String,
    key_type: ColumnType,
    key_sql_type: String,
    /// The key column's `COLLATE` clause, or empty; see `Column::collate`.
    key_collate: String,
    set_columns: Vec<String>,
    /// Per `set`, its column's type and its base type, to which new values are cast.
    set_types: Vec<(ColumnType, String)>,
    /// Per `set`, n where its column is a `varchar(n)`.
    set_lengths: Vec<Option<usize>>,
    /// The columns the expressions read, then the set columns.
    needed: Vec<String>,
    read_types: Vec<ColumnType>,
}

impl BatchShape {
    fn checkpoint_column(&self) -> &'static str {
        if self.key_type.is_integer() {
            "checkpoint_int"
        } else {
            "checkpoint_text"
        }
    }

    /// `key` (an expression of the key's type) as the checkpoint column holds it, ordered
    /// as the key is.
    fn as_checkpoint(&self, key: &str) -> String {
        let checkpoint_type = if self.key_type.is_integer() {
            "int8"
        } else {
            "text"
        };
        format!("{key}::{checkpoint_type}{}", self.key_collate)
    }

    /// The aggregate `min` or `max` of the keys `key`, of the key's type. PostgreSQL has
    /// neither for uuid; its printed form sorts as it does (`postgres_uuid`).
    fn key_extreme(&self, aggregate: &str, key: &str) -> String {
        match self.key_type {
            ColumnType::Uuid => format!("{aggregate}({key}::text COLLATE \"C\")::uuid"),
            _ => format!("{aggregate}({key})"),
        }
    }

    /// A row's backed-up values, each set column prefixed by `qualifier`: `c::text` for one
    /// column, else `ARRAY[c1::text, …]`. A batch's record aggregates them into a 1-D or a
    /// 2-D array; rollback flattens both row by row. One column, the usual case, needs no
    /// array per row: 5 % of a pushed-down batch's time.
    fn text_values(&self, qualifier: &str) -> String {
        let items: Vec<String> = self
            .set_columns
            .iter()
            .map(|c| format!("{qualifier}{}::text", quote_ident(c)))
            .collect();
        match items.as_slice() {
            [one] => one.clone(),
            _ => format!("ARRAY[{}]::text[]", items.join(", ")),
        }
    }

    fn read_sql(&self) -> (String, String) {
        let columns: Vec<String> = self
            .needed
            .iter()
            .zip(&self.read_types)
            .map(|(c, ty)| ty.read(&quote_ident(c)))
            .collect();
        let BatchShape {
            table,
            key,
            key_sql_type,
            ..
        } = self;
        let sql = |range: String| {
            format!(
                "SELECT {key}, {} FROM {table} WHERE {range} AND {} ORDER BY {key} LIMIT $2 \
                 FOR NO KEY UPDATE",
                columns.join(", "),
                snapshot_bound(table, key, &range, "$2"),
            )
        };
        (
            sql(format!(
                "$1::{key_sql_type} IS NULL AND {key} <= coalesce($3::{key_sql_type}, {key})"
            )),
            sql(format!(
                "{key} > $1::{key_sql_type} AND {key} <= coalesce($3::{key_sql_type}, {key})"
            )),
        )
    }

    /// Params: $1 run id, $2 batch number, $3 last key, $4 set columns, $5 rows processed,
    /// $6 keys of the changed rows, then one array of new values per set.
    fn write_sql(&self) -> String {
        let BatchShape {
            table,
            key,
            key_sql_type,
            ..
        } = self;
        let mut arrays = vec![format!("$6::{key_sql_type}[]")];
        let mut names = vec!["\"_mig_key\"".to_string()];
        let mut assignments = Vec::new();
        for (i, (column, (ty, base_type))) in
            self.set_columns.iter().zip(&self.set_types).enumerate()
        {
            // To the base type: the assignment then checks the column's length and refuses a
            // value the interpreter computed too long, as a pushed-down `UPDATE` does. An enum's
            // labels go as text, which the cast checks against the enum's.
            arrays.push(match ty {
                ColumnType::Enum => format!("${}::text[]::{base_type}[]", i + 7),
                _ => format!("${}::{base_type}[]", i + 7),
            });
            names.push(format!("n{i}"));
            assignments.push(format!("{} = _mig_new.n{i}", quote_ident(column)));
        }
        let values = self.text_values("t.");
        let (old, new) = (&values, &values);
        let checkpoint = self.checkpoint_column();
        let last = self.as_checkpoint(&format!("$3::{key_sql_type}"));
        format!(
            "WITH _mig_new AS (SELECT * FROM unnest({}) AS _mig_new({})), \
             _mig_old AS (SELECT t.{key} AS k, {old} AS vals FROM {table} AS t \
             JOIN _mig_new ON t.{key} = _mig_new.\"_mig_key\"), \
             _mig_updated AS (UPDATE {table} AS t SET {} FROM _mig_new \
             WHERE t.{key} = _mig_new.\"_mig_key\" RETURNING t.{key} AS k, {new} AS vals), \
             _mig_backed_up AS (INSERT INTO _mig_backup (run_id, batch, cols, keys, old, new) \
             SELECT $1, $2, $4::text[], array_agg(_mig_updated.k::text ORDER BY _mig_updated.k), \
             array_agg(_mig_old.vals ORDER BY _mig_updated.k), array_agg(_mig_updated.vals ORDER BY _mig_updated.k) \
             FROM _mig_updated JOIN _mig_old USING (k) HAVING count(*) > 0), \
             _mig_progress AS (UPDATE _mig_runs SET {checkpoint} = greatest({checkpoint}, {last}), \
             processed = processed + $5::int8, updated = updated + (SELECT count(*) FROM _mig_updated), \
             batches = batches + 1, updated_at = {NOW} WHERE id = $1) \
             SELECT count(*) FROM _mig_updated",
            arrays.join(", "),
            names.join(", "),
            assignments.join(", ")
        )
    }
}

/// A pushed-down batch: $1 run id, $2 batch number, $3 checkpoint, $4 batch size, $5 set
/// columns, $6 the end of a range claimed by a worker, then the expressions' literals.
struct Pushdown {
    statements: Statements,
    params: Vec<Value>,
}

enum Statements {
    /// One statement locks the batch's rows, writes those that change, backs them up and
    /// advances the checkpoint.
    Locking(Spelled),
    /// Where no set reads a column the step sets or its key: `null_old` writes the rows
    /// whose set columns are all NULL without a locking read; when it leaves rows of its
    /// range, `changing` ($4 no limit, $6 its last key) finishes the batch. `changing` alone
    /// does the batches `NullOldMisses` skips `null_old` in.
    NullOldFirst {
        null_old: Spelled,
        changing: Spelled,
    },
}

/// A statement for the first batch of a run (no checkpoint) and for the next ones; each
/// bounded by the batch size or, `ended`, by a last key.
struct Spelled {
    first: String,
    next: String,
    first_ended: String,
    next_ended: String,
}

impl Spelled {
    fn pick(&self, after: Option<&Value>, ended: bool) -> &str {
        match (after, ended) {
            (Some(_), false) => &self.next,
            (None, false) => &self.first,
            (Some(_), true) => &self.next_ended,
            (None, true) => &self.first_ended,
        }
    }
}

enum PreparedPushdown {
    Locking(Statement),
    NullOldFirst {
        /// None in a batch that skips it.
        null_old: Option<Statement>,
        changing: Statement,
        /// `changing` ended by $6, for the rest of a range `null_old` left.
        rest: Statement,
        /// The key of the step's `NullOldMisses`.
        misses: (i64, String),
    },
}

/// How a step's NULL-old statement fares in this run. Over a stretch of old values that are
/// not NULL it writes nothing and costs a scan of the range (and its batch a statement), so
/// after a batch where it wrote nothing the next batches skip it: 1, then 2, 4, … up to 64
/// between tries, and every batch again once it writes a row.
#[derive(Default)]
struct NullOldMisses {
    skip: u32,
    interval: u32,
}

impl NullOldMisses {
    /// Whether this batch skips the NULL-old statement.
    fn skips(&mut self) -> bool {
        let skips = self.skip > 0;
        self.skip = self.skip.saturating_sub(1);
        skips
    }

    fn record(&mut self, wrote: bool) {
        if wrote {
            *self = NullOldMisses::default();
        } else {
            self.interval = (self.interval * 2).clamp(1, 64);
            self.skip = self.interval;
        }
    }
}

/// Runs a pushed-down batch in the caller's transaction: `params` as `Pushdown` holds them,
/// with the batch's own filled in; `columns` goes to $5. Also whether the NULL-old statement
/// wrote a row, when it ran over rows.
fn execute_pushdown(
    tx: &mut Client,
    statements: &PreparedPushdown,
    mut params: Vec<Value>,
    columns: &Vec<String>,
) -> Result<(BatchOutcome, Option<bool>), StoreError> {
    let query = |tx: &mut Client, statement: &Statement, params: &[Value]| {
        let mut bound: Vec<&(dyn ToSql + Sync)> = params.iter().map(as_param).collect();
        bound[4] = columns;
        let row = tx.query_one(statement, &bound)?;
        Ok::<_, StoreError>((
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, Value>(2),
        ))
    };
    let ((processed, updated, last), wrote) = match statements {
        PreparedPushdown::Locking(whole) => (query(tx, whole, &params)?, None),
        PreparedPushdown::NullOldFirst {
            null_old: None,
            changing,
            ..
        } => (query(tx, changing, &params)?, None),
        PreparedPushdown::NullOldFirst {
            null_old: Some(null_old),
            rest,
            ..
        } => {
            let (processed, written, last) = query(tx, null_old, &params)?;
            let wrote = (processed > 0).then_some(written > 0);
            if written == processed {
                ((processed, written, last), wrote)
            } else {
                params[3] = Value::Integer(i64::MAX);
                params[5] = last;
                let (processed, updated, last) = query(tx, rest, &params)?;
                ((processed, written + updated, last), wrote)
            }
        }
    };
    let outcome = BatchOutcome {
        processed: processed as u64,
        updated: updated as u64,
        last_key: (!last.is_null()).then_some(last),
        held: Duration::ZERO,
    };
    Ok((outcome, wrote))
}

enum Path {
    Pushdown(Pushdown),
    ReadComputeWrite(NotPushed),
}

struct BatchPlan {
    shape: BatchShape,
    path: Path,
}

/// A row read by the interpreter path: the key, then the needed columns.
struct BatchRow {
    key: Value,
    columns: Vec<(String, Value)>,
}

impl BatchRow {
    fn read(row: &Row, names: &[String]) -> Result<BatchRow, StoreError> {
        let key = row.try_get(0)?;
        let columns = names
            .iter()
            .enumerate()
            .map(|(i, n)| Ok((n.clone(), row.try_get(i + 1)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(BatchRow { key, columns })
    }
}

impl ColumnSource for BatchRow {
    fn column(&self, name: &str) -> Option<&Value> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

fn as_param(value: &Value) -> &(dyn ToSql + Sync) {
    value
}

/// `value` as the column stores it, so comparing it with what was read tells whether the
/// row changes; a value the column cannot hold is an error, never a silent conversion.
fn coerce(value: Value, ty: ColumnType, column: &str) -> Result<Value, StoreError> {
    let refused = |value: &Value| {
        // A real's shortest form: 1e300 is not written out in 301 digits.
        let shown = match value {
            Value::Real(r) => format!("{r:?}"),
            other => other.to_string(),
        };
        StoreError::Unwritable(format!(
            "cannot write {} {shown} into column `{column}` ({})",
            eval::type_name(value),
            ty.sql_name()
        ))
    };
    Ok(match (ty, value) {
        (_, Value::Null) => Value::Null,
        (ColumnType::Int2, Value::Integer(i)) if i16::try_from(i).is_ok() => Value::Integer(i),
        (ColumnType::Int4, Value::Integer(i)) if i32::try_from(i).is_ok() => Value::Integer(i),
        (ColumnType::Int8, Value::Integer(i)) => Value::Integer(i),
        // A real with no fraction is that integer (`round(amount * 100)`), as SQLite's
        // integer affinity takes it; one with a fraction, or out of range, is refused.
        (ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8, Value::Real(r))
            if r.fract() == 0.0 && (i64::MIN as f64..-(i64::MIN as f64)).contains(&r) =>
        {
            return coerce(Value::Integer(r as i64), ty, column)
                .map_err(|_| refused(&Value::Real(r)));
        }
        (ColumnType::Bool, Value::Integer(i)) if i == 0 || i == 1 => Value::Integer(i),
        (ColumnType::Float8, Value::Integer(i)) => Value::Real(i as f64),
        (ColumnType::Float8, Value::Real(r)) => Value::Real(r),
        (ColumnType::Float4, Value::Integer(i)) => Value::Real(f64::from(i as f32)),
        // Out of `real`'s range either way is refused, as PostgreSQL's own cast refuses it:
        // too large for it, or so small it would be written as 0.
        (ColumnType::Float4, Value::Real(r))
            if ((r as f32).is_finite() || !r.is_finite()) && ((r as f32) != 0.0 || r == 0.0) =>
        {
            Value::Real(f64::from(r as f32))
        }
        (ColumnType::Text | ColumnType::Varchar | ColumnType::Bpchar, v @ Value::Text(_)) => v,
        (
            ColumnType::Text | ColumnType::Varchar | ColumnType::Bpchar,
            v @ (Value::Integer(_) | Value::Real(_)),
        ) => match eval::text_form("set", &v) {
            Ok(Some(text)) => Value::Text(text.into_owned()),
            _ => return Err(refused(&v)),
        },
        (ColumnType::Bytea, v @ Value::Blob(_)) => v,
        // Whether it is one of the enum's labels, the server's cast tells.
        (ColumnType::Enum, v @ Value::Text(_)) => v,
        // As PostgreSQL prints it, so the value read back compares equal to it.
        (ColumnType::Uuid, Value::Text(text)) => match postgres_uuid::canonical(&text) {
            Some(printed) => Value::Text(printed),
            None => return Err(refused(&Value::Text(text))),
        },
        (_, v) => return Err(refused(&v)),
    })
}

/// A new value as a `varchar(n)` stores it, for the test of whether it changes: PostgreSQL
/// cuts spaces past n as it writes (and refuses anything else past n, here as there);
/// compared uncut, such a value was written and backed up again on every run.
fn as_stored(sql: &str, length: Option<usize>) -> String {
    match length {
        Some(n) => format!("pg_catalog.varchar(({sql})::varchar, {}, false)", n + 4),
        None => sql.to_string(),
    }
}

/// `value` as a `varchar(length)` stores it: spaces past `length` cut, as PostgreSQL cuts
/// them; a longer value of other characters is left for PostgreSQL to refuse.
fn cut_trailing_spaces(value: Value, length: Option<usize>) -> Value {
    match (value, length) {
        (Value::Text(text), Some(n)) => {
            let cut = text.char_indices().nth(n).map_or(text.len(), |(i, _)| i);
            if text[cut..].chars().all(|c| c == ' ') {
                Value::Text(text[..cut].to_string())
            } else {
                Value::Text(text)
            }
        }
        (value, _) => value,
    }
}

/// Whether writing `new` over `old` leaves the column as it is. A `char(n)` reads back
/// padded with blanks to its length, which PostgreSQL ignores when it compares; mig must
/// too, or a re-run would rewrite (and back up) every row whose value it already holds.
fn stores_alike(ty: ColumnType, old: Option<&Value>, new: &Value) -> bool {
    match (ty, old, new) {
        (ColumnType::Bpchar, Some(Value::Text(old)), Value::Text(new)) => {
            old.trim_end_matches(' ') == new.trim_end_matches(' ')
        }
        // PostgreSQL holds NaN equal to NaN (`IS DISTINCT FROM` is false), as the pushdown
        // path's test does; `f64` equality is not, and a NaN was written on every run.
        (_, Some(Value::Real(old)), Value::Real(new)) if old.is_nan() && new.is_nan() => true,
        _ => old == Some(new),
    }
}

/// The columns that have a length, as an error names them: `` `t`.`c` (character
/// varying(3)) ``, joined by "or"; None when none has one.
fn with_length(table: &str, columns: &[&Column]) -> Option<String> {
    let named: Vec<String> = columns
        .iter()
        .filter(|c| c.has_length())
        .map(|c| format!("`{table}`.`{}` ({})", c.name, c.shown_type()))
        .collect();
    (!named.is_empty()).then(|| named.join(" or "))
}

fn not_shareable() -> StoreError {
    StoreError::Unsupported(
        "workers share pushed-down steps only; this step takes the read-compute-write path \
         (`mig plan` says why): run it without --workers"
            .into(),
    )
}

/// Lock timeout, deadlock and serialization failure: contention the engine retries.
fn contention(e: StoreError, started: Instant) -> StoreError {
    let StoreError::Postgres(pg) = &e else {
        return e;
    };
    let kind = match pg.code() {
        Some(&SqlState::LOCK_NOT_AVAILABLE) => Contention::LockTimeout,
        Some(&SqlState::T_R_DEADLOCK_DETECTED) => Contention::Deadlock,
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) => Contention::SerializationFailure,
        _ => return e,
    };
    StoreError::Contention {
        kind,
        waited_ms: started.elapsed().as_millis(),
    }
}

/// The server's own message where there is one (the driver's Display says only "db error").
pub fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) if lost_session(db.code()) => format!("{}{SESSION_LOST}", db.message()),
        Some(db) if *db.code() == SqlState::QUERY_CANCELED => {
            format!("{}{CANCELLED}", db.message())
        }
        Some(db) if replanned_to_new_columns(db) => format!("{}{TABLE_ALTERED}", db.message()),
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => match e.source() {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// What the server says when a statement mig prepared on its connection is missing, or one
/// of the same name is already there: mig prepares by protocol, never by SQL, so its
/// connection reached another server session than the one it prepared on.
fn lost_session(code: &SqlState) -> bool {
    *code == SqlState::INVALID_SQL_STATEMENT_NAME || *code == SqlState::DUPLICATE_PSTATEMENT
}

const SESSION_LOST: &str = ": mig's connection did not keep one server session from one \
     transaction to the next, as behind a pooler in transaction mode (pgbouncer's pool_mode = \
     transaction); a run needs a session of its own for its prepared statements, settings and \
     the advisory locks `mig status` reads, so connect mig to PostgreSQL directly or through a \
     pool in session mode";

/// The server refusing a statement prepared before an `ALTER TABLE` changed the type of a
/// column it reads or returns: its plan may change, its result's columns may not. Told by
/// the server's routine, since the message comes in the server's language.
fn replanned_to_new_columns(db: &postgres::error::DbError) -> bool {
    *db.code() == SqlState::FEATURE_NOT_SUPPORTED && db.routine() == Some("RevalidateCachedQuery")
}

const TABLE_ALTERED: &str = ": an ALTER TABLE changed the type of a column mig reads or writes \
     after this connection prepared its statements for the table; they cannot run again, so \
     the batch wrote nothing and the run stopped, and `mig run` (or the node's next request) \
     prepares them anew for the table as it is now";

/// Said with a cancelled statement. Production roles often run under a `statement_timeout`,
/// which mig's statements inherit, and the server's words name neither where it was set nor
/// what to change: resuming a batch that outlasts it fails again, and a post-check that
/// read most of a large table before it ran out leaves its run `checking`. The code alone
/// does not tell a timeout from a `pg_cancel_backend` (the words come in the server's
/// language), so both are named.
const CANCELLED: &str = ": the statement_timeout of mig's session ran out (set for its role, its \
     database or the server, or in the URL's options), or another session cancelled the \
     statement; mig's statements run under it: a batch that takes longer fails again when the \
     run resumes (a smaller `batch` keeps under it), and a check or validation reads every row \
     it covers in one statement, so set a longer one for mig alone, among its URL's parameters: \
     `options=-c%20statement_timeout%3D1h`";

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Integer(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (Value::Integer(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT8) => r.to_sql(ty, out),
            (Value::Real(r), &Type::FLOAT4) => (*r as f32).to_sql(ty, out),
            (Value::Integer(i), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR) => {
                i.to_string().to_sql(ty, out)
            }
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR) => s.to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            (Value::Text(s), &Type::UUID) => match postgres_uuid::parse(s) {
                Some(bytes) => {
                    out.extend_from_slice(&bytes);
                    Ok(IsNull::No)
                }
                None => Err(format!("cannot send text {s:?} as a uuid: it is not one").into()),
            },
            (value, ty) => Err(format!(
                "cannot send {} {value} as PostgreSQL type {ty}",
                eval::type_name(value)
            )
            .into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::BOOL,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::BYTEA,
            Type::UUID,
        ]
        .contains(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value, Box<dyn Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::BOOL => Value::from_bool(bool::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
            Type::UUID => Value::Text(postgres_uuid::format(raw.try_into()?)),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value, Box<dyn Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(ty: &Type) -> bool {
        <Value as ToSql>::accepts(ty) || <String as FromSql>::accepts(ty)
    }
}

fn read_run(row: &Row) -> Result<RunRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let checkpoint = match (
        row.try_get::<_, Option<i64>>("checkpoint_int")?,
        row.try_get::<_, Option<String>>("checkpoint_text")?,
    ) {
        (Some(i), _) => Some(Value::Integer(i)),
        (None, Some(t)) => Some(Value::Text(t)),
        (None, None) => None,
    };
    Ok(RunRecord {
        id: row.try_get("id")?,
        migration: row.try_get("migration")?,
        spec_hash: row.try_get("spec_hash")?,
        spec: row.try_get("spec")?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
        checkpoint,
        processed: row.try_get::<_, i64>("processed")? as u64,
        updated: row.try_get::<_, i64>("updated")? as u64,
        batches: row.try_get("batches")?,
        row_limit: row
            .try_get::<_, Option<i64>>("row_limit")?
            .map(|n| n as u64),
        started_at: row.try_get("started_at")?,
        updated_at: row.try_get("updated_at")?,
        message: row.try_get("message")?,
        shared: row.try_get::<_, Option<String>>("claimed")?.is_some(),
        // Absent from state tables an earlier `mig` made, until `prepare_state` adds it.
        pruned_at: match row.columns().iter().any(|c| c.name() == "pruned_at") {
            true => row.try_get("pruned_at")?,
            false => None,
        },
        key_order: match row.columns().iter().any(|c| c.name() == "key_order") {
            true => row.try_get("key_order")?,
            false => None,
        },
    })
}

impl Store for PostgresStore {
    fn schema(&mut self) -> Result<Schema, StoreError> {
        self.load_catalog()
    }

    fn prepare_state(&mut self) -> Result<(), StoreError> {
        // Checked first because CREATE … IF NOT EXISTS needs the CREATE privilege even when
        // the table exists, and a role that only migrates rows may not have it.
        let row = self.client.query_one(
            "SELECT to_regclass('_mig_runs') IS NOT NULL AND to_regclass('_mig_backup') IS NOT NULL \
             AND to_regclass('_mig_conflicts') IS NOT NULL AND to_regclass('_mig_claims') IS NOT NULL, \
             EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('_mig_runs') \
             AND attname = 'pruned_at' AND NOT attisdropped) \
             AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('_mig_backup') \
             AND attname = 'restored' AND NOT attisdropped) \
             AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('_mig_runs') \
             AND attname = 'key_order' AND NOT attisdropped)",
            &[],
        )?;
        let (made, current): (bool, bool) = (row.get(0), row.get(1));
        match (made, current) {
            (true, true) => Ok(()),
            (true, false) => self.add_later_columns(),
            (false, _) => self.create_state_tables(),
        }
    }

    fn count_rows(&mut self, table: &str) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM {}", quote_ident(table));
        let n: i64 = self
            .waiting_at_most_lock_timeout(|client| client.query_one(sql.as_str(), &[]))?
            .get(0);
        Ok(n as u64)
    }

    /// `reltuples`, as the last VACUUM or ANALYZE left it: counting would read the whole table
    /// before the first batch (seconds on tens of millions of rows). A table never vacuumed
    /// or analyzed has none (-1; 0 before PostgreSQL 14), nor a 0-row estimate worth trusting,
    /// and is counted.
    fn size(&mut self, table: &str) -> Result<RowCount, StoreError> {
        let estimate: Option<f32> = self
            .client
            .query_opt(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)",
                &[&quote_ident(table)],
            )?
            .map(|row| row.get(0));
        match estimate {
            Some(rows) if rows > 0.0 => Ok(RowCount::About(rows.round() as u64)),
            _ => Ok(RowCount::Exact(self.count_rows(table)?)),
        }
    }

    fn count_rows_after(
        &mut self,
        table: &str,
        key: &str,
        checkpoint: &Value,
    ) -> Result<u64, StoreError> {
        let (_, key_sql_type) = self.key_type(table, key)?;
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {} > $1::{key_sql_type}",
            quote_ident(table),
            quote_ident(key)
        );
        let n: i64 = self
            .waiting_at_most_lock_timeout(|client| client.query_one(sql.as_str(), &[checkpoint]))?
            .get(0);
        Ok(n as u64)
    }

    fn hold_run(&mut self, run_id: i64) -> Result<(), StoreError> {
        self.client.execute(
            &format!("SELECT pg_advisory_lock_shared({RUN_LOCK_SPACE}, $1)"),
            &[&run_lock_id(run_id)],
        )?;
        Ok(())
    }

    fn let_go_of_run(&mut self, run_id: i64) {
        // A connection that fails here is gone, and its session's locks with it.
        let _ = self.client.execute(
            &format!("SELECT pg_advisory_unlock_shared({RUN_LOCK_SPACE}, $1)"),
            &[&run_lock_id(run_id)],
        );
    }

    fn held_runs(&mut self, run_ids: &[i64]) -> Result<BTreeSet<i64>, StoreError> {
        let rows = self.client.query(
            &format!(
                "SELECT DISTINCT objid::int8 FROM pg_locks WHERE locktype = 'advisory' \
                 AND objsubid = 2 AND granted AND classid = ({RUN_LOCK_SPACE})::oid \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            &[],
        )?;
        let held: BTreeSet<i64> = rows.iter().map(|r| r.get(0)).collect();
        Ok(run_ids
            .iter()
            .copied()
            .filter(|&id| held.contains(&i64::from(run_lock_id(id) as u32)))
            .collect())
    }

    fn runs(&mut self) -> Result<Vec<RunRecord>, StoreError> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('_mig_runs') IS NOT NULL", &[])?
            .get(0);
        if !exists {
            return Ok(vec![]);
        }
        // Bounded like a batch's waits: a session holding `_mig_runs` locked would otherwise
        // hold the node's `status`, and every `status` after it, as long as it held the lock.
        self.waiting_at_most_lock_timeout(|client| {
            client.query("SELECT * FROM _mig_runs ORDER BY id", &[])
        })?
        .iter()
        .map(read_run)
        .collect()
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
        let mut tx = self.client.transaction()?;
        // Workers starting together must share one run: the first starts it, the others,
        // waiting on this lock, find it running with the same spec and join it.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&migration])?;
        if let Some(running) = tx.query_opt(
            "SELECT * FROM _mig_runs WHERE migration = $1 AND spec_hash = $2 AND status = 'running' \
             ORDER BY id DESC LIMIT 1",
            &[&migration, &spec_hash],
        )? {
            let run = read_run(&running)?;
            tx.commit()?;
            return Ok(run);
        }
        let sql = format!(
            "INSERT INTO _mig_runs (migration, spec_hash, spec, status, row_limit, key_order, \
             started_at, updated_at) VALUES ($1, $2, $3, 'running', $4, $5, {NOW}, {NOW}) RETURNING *"
        );
        let row = tx.query_one(
            sql.as_str(),
            &[&migration, &spec_hash, &spec, &limit, &key_order],
        )?;
        tx.commit()?;
        read_run(&row)
    }

    fn set_run_status(
        &mut self,
        run_id: i64,
        status: RunStatus,
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        let finished = status.is_final();
        let sql = format!(
            "UPDATE _mig_runs SET status = $1, message = coalesce($2, message), updated_at = {NOW}, \
             finished_at = CASE WHEN $3 THEN {NOW} END WHERE id = $4"
        );
        self.client.execute(
            sql.as_str(),
            &[&status.as_str(), &message, &finished, &run_id],
        )?;
        Ok(())
    }

    /// A run workers share is not over while one of them holds a claim: a row the
    /// application inserted after one worker found nothing left to claim may be claimed by
    /// another before the first gets here, and that claim would then find the run completed
    /// under it. Claims are made under the run's row lock, so the lock is taken first and
    /// the claims read in a statement after it: the UPDATE's own re-check of a row it waited
    /// for would read them in its older snapshot, and miss a claim committed meanwhile.
    fn complete_run(&mut self, run_id: i64, then: RunStatus) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE _mig_runs SET status = $2, updated_at = {NOW}, \
             finished_at = CASE WHEN $3 THEN {NOW} END \
             WHERE id = $1 AND status = 'running' \
             AND NOT EXISTS (SELECT 1 FROM _mig_claims WHERE run_id = $1 AND NOT done)"
        );
        let mut tx = self.client.transaction()?;
        tx.execute(
            "SELECT 1 FROM _mig_runs WHERE id = $1 FOR UPDATE",
            &[&run_id],
        )?;
        let changed = tx.execute(sql.as_str(), &[&run_id, &then.as_str(), &then.is_final()])?;
        tx.commit()?;
        Ok(changed == 1)
    }

    fn run_batch(
        &mut self,
        step: &BatchStep,
        request: &BatchRequest<'_>,
    ) -> Result<BatchOutcome, StoreError> {
        loop {
            let started = Instant::now();
            let outcome = self
                .run_range(step, request, None)
                .map_err(|e| self.name_too_long(step, e))?;
            // A batch that locks its rows as it reads them finds none when the application
            // deleted them all while it waited; the rows after them are still to do, and an
            // empty batch would end the run. The next try reads past the deleted rows.
            if outcome.processed > 0 || !self.has_keys_after(step, request.after)? {
                return Ok(BatchOutcome {
                    held: started.elapsed(),
                    ..outcome
                });
            }
        }
    }

    fn checkpoint_fits(&self, table: &str, key: &str, checkpoint: &Value) -> bool {
        match (self.column_type(table, key), checkpoint) {
            (Ok((ty, _)), Value::Integer(_)) => ty.is_integer(),
            (Ok((ty, _)), Value::Text(_)) => !ty.is_integer(),
            _ => true,
        }
    }

    /// Integers of any width order alike, and so do text types of one collation (`varchar`
    /// and `text`); a uuid orders by its bytes.
    fn key_order(&self, table: &str, key: &str) -> Option<String> {
        let column = self.column(table, key).ok()?;
        Some(match column.ty {
            Some(ty) if ty.is_integer() => "an integer".to_string(),
            Some(ColumnType::Uuid) => "a uuid".to_string(),
            Some(ty) if ty.is_text() => format!("text{}", column.collate),
            _ => column.sql_type.clone(),
        })
    }

    fn shareable(&self, step: &BatchStep) -> Result<(), StoreError> {
        match self.step_plan(step)?.path {
            Path::Pushdown(_) => Ok(()),
            _ => Err(not_shareable()),
        }
    }

    fn run_shared_batch(
        &mut self,
        step: &BatchStep,
        request: &BatchRequest<'_>,
    ) -> Result<BatchOutcome, StoreError> {
        let (key_type, key_sql_type) = self.key_type(&step.table, &step.key)?;
        let plan = self.step_plan(step)?;
        let Path::Pushdown(sql) = plan.path else {
            return Err(not_shareable());
        };
        let key = quote_ident(&step.key);
        let table = quote_ident(&step.table);
        let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
        let last = plan.shape.key_extreme("max", "k");
        let bound = |range: &str| {
            format!(
                "SELECT {last}::text FROM (SELECT {key} AS k FROM {table} {range} ORDER BY {key} LIMIT $2) AS _mig_claim"
            )
        };
        let bounds = (
            bound("WHERE $1::text IS NULL"),
            bound(&format!("WHERE {key} > $1::text::{key_sql_type}")),
        );
        // Whether the last try found no keys left to claim. The open claims are read after
        // it: another worker may have claimed the last keys in between, and the run is not
        // over until that claim is done too. Claims are made under the run's row lock, which
        // `claim_range` takes, so that read sees every claim there will be.
        let mut nothing_left = false;
        loop {
            let undone = self.client.query(
                "SELECT batch, lo, hi FROM _mig_claims WHERE run_id = $1 AND NOT done ORDER BY batch",
                &[&request.run_id],
            )?;
            if undone.is_empty() && nothing_left {
                return Ok(BatchOutcome {
                    processed: 0,
                    updated: 0,
                    last_key: None,
                    held: Duration::ZERO,
                });
            }
            for claim in &undone {
                let lo: Option<String> = claim.get(1);
                let lo = lo.map(|k| key_value(k, key_type));
                let range = BatchRequest {
                    run_id: request.run_id,
                    batch_no: claim.get(0),
                    after: lo.as_ref(),
                    limit: request.limit,
                    yielding: request.yielding,
                };
                let hi = key_value(claim.get(2), key_type);
                // A claim whose rows were all deleted since is done and empty: go on.
                let started = Instant::now();
                let claimed = self
                    .run_claim(&sql, step, &range, &hi)
                    .map_err(|e| self.name_too_long(step, e))?;
                match claimed {
                    Some(outcome) if outcome.processed > 0 => {
                        return Ok(BatchOutcome {
                            held: started.elapsed(),
                            ..outcome
                        })
                    }
                    _ => {}
                }
            }
            // Every open claim is held by a live worker: wait for them, or claim fresh keys.
            if nothing_left {
                std::thread::sleep(Duration::from_millis(20));
            }
            nothing_left = !self.claim_range(request.run_id, limit, &bounds)?;
        }
    }

    fn free_connections(&mut self) -> Result<Option<u64>, StoreError> {
        let free: i64 = self
            .client
            .query_one(
                "SELECT current_setting('max_connections')::int8 \
                 - current_setting('superuser_reserved_connections')::int8 \
                 - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
                &[],
            )?
            .get(0);
        Ok(Some(free.max(0) as u64))
    }

    fn others_busy(&mut self) -> Result<Option<bool>, StoreError> {
        let statement = self.prepare(OTHERS_BUSY)?;
        Ok(Some(self.client.query_one(&statement, &[])?.get(0)))
    }

    fn replica_lag(&mut self) -> Result<ReplicaLag, StoreError> {
        let statement = self.prepare(REPLICA_LAG)?;
        let row = self.client.query_one(&statement, &[])?;
        let (unseen, replicas, bytes): (i64, i64, Option<i64>) =
            (row.get(0), row.get(1), row.get(2));
        if unseen > 0 {
            return Err(StoreError::Unsupported(REPLICAS_UNSEEN.to_string()));
        }
        Ok(match replicas {
            0 => ReplicaLag::NoReplicas,
            n => ReplicaLag::Behind {
                replicas: n as u64,
                bytes: bytes.unwrap_or(0).max(0) as u64,
            },
        })
    }

    fn database_notes(&mut self, table: &str) -> DatabaseNotes {
        let session = self.client.query_one(
            "SELECT current_setting('statement_timeout'), pg_has_role('pg_read_all_stats', 'MEMBER')",
            &[],
        );
        let (timeout, sees_all): (String, bool) = match session {
            Ok(row) => (row.get(0), row.get(1)),
            Err(_) => ("0".to_string(), true),
        };
        DatabaseNotes {
            update_triggers: self.update_triggers(table).unwrap_or_default(),
            replicas: Some(self.replica_lag().map_err(|e| e.to_string())),
            statement_timeout: (timeout != "0").then_some(timeout),
            unseen_sessions: (!sees_all).then(|| {
                "mig's role is neither a superuser nor a member of pg_read_all_stats, so the \
                 sessions of other roles show it no state and count as busy whatever they do: \
                 while one is connected to this database, every batch keeps to the yield's size"
                    .to_string()
            }),
        }
    }

    fn describe_lock_wait(&self) -> &'static str {
        "a batch waits for a row another transaction holds locked while keeping the rows it has \
         locked already, so the application's writes to those rows may wait that long too: keep \
         it short and let the retries do the waiting"
    }

    fn describe_busy(&self) -> String {
        format!(
            "busy: a session of this database in pg_stat_activity that is not idle, or went \
             idle less than a second ago, and is not mig's (another application_name), read at \
             most every {} ms; a batch beside one also runs {YIELDING_WRITES}",
            BUSY_SAMPLE_EVERY.as_millis()
        )
    }

    fn describe_batch(&self, step: &BatchStep) -> Vec<String> {
        let plan = match self.step_plan(step) {
            Ok(plan) => plan,
            Err(e) => return vec![format!("cannot run on PostgreSQL: {e}")],
        };
        let mut out = vec![format!(
            "{}; {} -- the run's row, locked: the batch writes only while the run is still \
             running at the checkpoint this process knows",
            opening(step.lock_timeout, &self.batch_settings, false, None),
            run_position("<the run's id>")
        )];
        match plan.path {
            Path::Pushdown(sql) => {
                out.push(
                    "-- path: pushdown: every operator has an exact PostgreSQL equivalent".into(),
                );
                let roles = [
                    "the run id",
                    "the batch number",
                    "the checkpoint (the first batch has none)",
                    "the batch size",
                    "the set columns",
                    "none: the batch ends at its size (a worker's claimed range takes the same \
                     statement ended by `<= $6`, its last key, in place of `$6 IS NULL`)",
                ];
                match sql.statements {
                    Statements::Locking(whole) => {
                        out.push(whole.next);
                        out.push(legend('$', &roles, &sql.params));
                    }
                    Statements::NullOldFirst { null_old, changing } => {
                        out.push(null_old.next);
                        out.push(legend('$', &roles, &sql.params));
                        out.push(
                            "  -- the batch's keys unlocked, then only rows whose set columns are all NULL: \
                             the UPDATE re-checks that on the row version it locks and writes, so their old \
                             values are NULL; the batch is done if it wrote every row of the range"
                                .into(),
                        );
                        out.push(changing.next_ended);
                        out.push(legend(
                            '$',
                            &[
                                roles[0],
                                roles[1],
                                roles[2],
                                "the batch size (after the statement above: no limit)",
                                roles[4],
                                "the last key of the statement above (in a worker's claim: the claim's last \
                                 key; alone: none, the statement then has `$6 IS NULL` in place of `<= $6`)",
                            ],
                            &sql.params,
                        ));
                        out.push(
                            "  -- locks and writes only the rows that change. After the statement above when \
                             it wrote fewer rows than its range holds (an old value not NULL, a new value \
                             NULL, a row filtered out, or one the application changed meanwhile): the rest \
                             of that range, its backup joining the batch's record. Alone, in place of the \
                             statement above, in the batches after one where that wrote nothing: 1, then 2, \
                             4, … up to 64 between tries"
                                .into(),
                        );
                    }
                }
            }

            Path::ReadComputeWrite(reason) => {
                out.push(format!(
                    "-- path: read-compute-write: {}; mig's interpreter computes the new values",
                    reason.0
                ));
                out.push(plan.shape.read_sql().1);
                out.push(legend(
                    '$',
                    &[
                        "the checkpoint (the first batch has none)",
                        "the batch size",
                        "the end of a range claimed by a worker, else none",
                    ],
                    &[],
                ));
                out.push(plan.shape.write_sql());
                let mut roles = vec![
                    "the run id".to_string(),
                    "the batch number".into(),
                    "the batch's last key".into(),
                    "the set columns".into(),
                    "rows processed".into(),
                    "the changed rows' keys".into(),
                ];
                roles.extend(
                    step.sets
                        .iter()
                        .map(|(c, _)| format!("their new {c} values")),
                );
                let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
                out.push(legend('$', &roles, &[]));
            }
        }
        out.push("COMMIT".to_string());
        out
    }

    fn validate(
        &mut self,
        table: &str,
        key: &str,
        validations: &[&Validation],
        up_to: Option<&Value>,
    ) -> Result<Vec<Failures>, StoreError> {
        if validations.is_empty() {
            return Ok(vec![]);
        }
        let (key_type, key_sql_type) = self.key_type(table, key)?;
        let mut params = vec![up_to.cloned().unwrap_or(Value::Null)];
        let mut windows = Vec::new();
        let (terms, interpreted) =
            self.validation_terms(table, validations, &mut params, &mut windows);
        let range = match up_to {
            Some(_) => format!("{} <= $1::{key_sql_type}", quote_ident(key)),
            None => format!("$1::{key_sql_type} IS NULL"),
        };
        let source = format!(
            "(SELECT *{} FROM {}) AS _mig_rows WHERE {range}",
            windows.concat(),
            quote_ident(table)
        );
        let bound: Vec<&(dyn ToSql + Sync)> = params.iter().map(as_param).collect();
        // The key as text: `min` then orders text keys by bytes, as the interpreter does;
        // integers keep their own order.
        let key_text = if key_type.is_integer() {
            format!("{}::text", quote_ident(key))
        } else {
            format!("{}::text COLLATE \"C\"", quote_ident(key))
        };
        if interpreted.iter().all(Vec::is_empty) {
            let aggregates: Vec<String> = terms
                .iter()
                .map(|t| {
                    let lowest = if key_type.is_integer() {
                        quote_ident(key)
                    } else {
                        key_text.clone()
                    };
                    format!("count(*) FILTER (WHERE {t}), (min({lowest}) FILTER (WHERE {t}))::text")
                })
                .collect();
            let sql = format!("SELECT {} FROM {source}", aggregates.join(", "));
            let row = self.reading(|tx| Ok(tx.query_one(sql.as_str(), &bound)?))?;
            return Ok((0..validations.len())
                .map(|i| Failures {
                    rows: row.get::<_, i64>(2 * i) as u64,
                    first_key: row
                        .get::<_, Option<String>>(2 * i + 1)
                        .map(|k| key_value(k, key_type)),
                })
                .collect());
        }
        // One scan still: SQL decides its terms per row, the interpreter the rest.
        let mut needed: Vec<String> = Vec::new();
        for predicate in interpreted.iter().flatten() {
            predicate.walk(&mut |e| {
                if let ExprKind::Column(name) = &e.kind {
                    if !needed.contains(name) {
                        needed.push(name.clone());
                    }
                }
            });
        }
        let mut reads = Vec::new();
        for name in &needed {
            let (ty, _) = self.column_type(table, name)?;
            reads.push(ty.read(&quote_ident(name)));
        }
        let flags: Vec<String> = terms.iter().map(|t| format!("({t})")).collect();
        let mut select = vec![key_text];
        select.extend(flags);
        select.extend(reads);
        let sql = format!("SELECT {} FROM {source}", select.join(", "));
        self.reading(|tx| {
            let mut failures = vec![Failures::default(); validations.len()];
            let mut rows = tx.query_raw(sql.as_str(), bound)?;
            while let Some(row) = rows.next()? {
                let columns: Vec<(String, Value)> = needed
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Ok((n.clone(), row.try_get(1 + validations.len() + i)?)))
                    .collect::<Result<_, StoreError>>()?;
                let row_key = key_value(row.try_get(0)?, key_type);
                for (i, predicates) in interpreted.iter().enumerate() {
                    let mut failed: bool = row.try_get(1 + i)?;
                    for predicate in predicates {
                        failed |= eval::is_true(&eval::eval(predicate, &columns)?)? == Some(false);
                    }
                    if failed {
                        failures[i].count(&row_key);
                    }
                }
            }
            Ok(failures)
        })
    }

    fn backed_up_batches(&mut self, run_id: i64) -> Result<Vec<i64>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT batch FROM _mig_backup WHERE run_id = $1 ORDER BY batch DESC",
                &[&run_id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    /// `pg_column_size` of a value stored out of line reads its size from the pointer to it.
    fn backup_sizes(&mut self) -> Result<BTreeMap<i64, BackupSize>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT run_id, count(*), sum(pg_column_size(cols) + pg_column_size(keys) \
                 + pg_column_size(old) + pg_column_size(new))::int8 FROM _mig_backup GROUP BY run_id",
                &[],
            )?
            .iter()
            .map(|r| {
                let size = BackupSize {
                    records: r.get::<_, i64>(1) as u64,
                    bytes: r.get::<_, i64>(2) as u64,
                };
                (r.get(0), size)
            })
            .collect())
    }

    /// Of a rollback's `begin_rollback` and this, whichever writes the run's row second waits
    /// for the first to commit and then finds its condition false on the row as the first
    /// left it (READ COMMITTED re-checks an UPDATE's WHERE on the row it waited for).
    fn mark_pruned(&mut self, run_id: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE _mig_runs SET pruned_at = coalesce(pruned_at, {NOW}) \
             WHERE id = $1 AND status IN {FINAL_STATUSES_SQL} \
             AND EXISTS (SELECT 1 FROM _mig_backup WHERE run_id = $1)"
        );
        let marked =
            self.waiting_at_most_lock_timeout(|client| client.execute(sql.as_str(), &[&run_id]))?;
        Ok(marked == 1)
    }

    fn drop_backup(&mut self, run_id: i64, batch_no: i64) -> Result<Option<u64>, StoreError> {
        let sql = "DELETE FROM _mig_backup WHERE run_id = $1 AND batch = $2 AND EXISTS \
                   (SELECT 1 FROM _mig_runs WHERE id = $1 AND pruned_at IS NOT NULL) \
                   RETURNING coalesce(array_length(keys, 1), 0) - restored";
        let row = self
            .waiting_at_most_lock_timeout(|client| client.query_opt(sql, &[&run_id, &batch_no]))?;
        Ok(row.map(|r| r.get::<_, i32>(0) as u64))
    }

    fn begin_rollback(&mut self, run_id: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE _mig_runs SET status = 'rolling_back', updated_at = {NOW}, finished_at = NULL \
             WHERE id = $1 AND pruned_at IS NULL"
        );
        let begun = self.client.execute(sql.as_str(), &[&run_id])?;
        Ok(begun == 1)
    }

    fn rollback_batch(
        &mut self,
        step: &BatchStep,
        run_id: i64,
        batch_no: i64,
        rows: Option<u64>,
    ) -> Result<RollbackOutcome, StoreError> {
        let (key_type, key_sql_type) = self.key_type(&step.table, &step.key)?;
        // A record's columns never change, so its restoring statement is prepared (once per
        // connection) before the transaction: a part of a few rows would otherwise spend
        // more on planning than on its rows.
        let read_columns = self.prepare(RECORD_COLUMNS)?;
        let Some(cols) = self
            .client
            .query_opt(&read_columns, &[&run_id, &batch_no])?
            .map(|row| row.get::<_, Vec<String>>(0))
        else {
            return Ok(RollbackOutcome::default());
        };
        let restore = self.restore_sql(step, &cols, (key_type, &key_sql_type))?;
        let restore = self.prepare(&restore)?;
        let take = rows.map_or(i32::MAX, |n| n.clamp(1, i32::MAX as u64) as i32);
        // A part sized for a busy database writes as gently as a yielding run's batch.
        self.transaction(step.lock_timeout, None, rows.is_some(), |tx| {
            let row = tx.query_one(&restore, &[&run_id, &batch_no, &take])?;
            let Some(left) = row.get::<_, Option<i32>>(3) else {
                return Ok(RollbackOutcome::default());
            };
            let conflicts: Vec<String> = row.get(1);
            Ok(RollbackOutcome {
                left: left as u64,
                restored: row.get::<_, i64>(0) as u64,
                conflict_keys: conflicts
                    .into_iter()
                    .map(|k| key_value(k, key_type))
                    .collect(),
                rewritten: row.get::<_, i64>(2) as u64,
            })
        })
        .map_err(|e| self.name_too_long(step, e))
    }

    fn conflict_keys(&mut self, run_id: i64) -> Result<Vec<Value>, StoreError> {
        Ok(self
            .client
            .query(
                "SELECT DISTINCT key_int, key FROM _mig_conflicts WHERE run_id = $1 ORDER BY key_int, key",
                &[&run_id],
            )?
            .iter()
            .map(|r| match r.get::<_, Option<i64>>(0) {
                Some(i) => Value::Integer(i),
                None => Value::Text(r.get(1)),
            })
            .collect())
    }

    fn checksum(&mut self, table: &str, key: &str, columns: &[String]) -> Result<u64, StoreError> {
        let mut names = vec![key.to_string()];
        names.extend(columns.iter().cloned());
        let mut reads = Vec::new();
        for name in &names {
            let (ty, _) = self.column_type(table, name)?;
            reads.push(ty.read(&quote_ident(name)));
        }
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            reads.join(", "),
            quote_ident(table),
            quote_ident(key)
        );
        self.reading(|tx| {
            let mut hash = Fnv::default();
            let mut rows = tx.query_raw(sql.as_str(), std::iter::empty::<&(dyn ToSql + Sync)>())?;
            while let Some(row) = rows.next()? {
                for i in 0..names.len() {
                    hash.write_value(&row.try_get(i)?);
                }
            }
            Ok(hash.finish())
        })
    }
}

/// The condition that keeps a locking batch read (`… WHERE range ORDER BY key LIMIT limit
/// FOR NO KEY UPDATE`) within its last key in the statement's snapshot, found before any lock
/// is taken. A row whose key the application moves ahead while the batch waits for its lock
/// then fails this bound when PostgreSQL re-reads it, and is left for the batch that reaches
/// its new key, instead of becoming the batch's last key and moving the checkpoint over
/// every row in between. Fewer rows than `limit` left: no bound.
fn snapshot_bound(table: &str, key: &str, range: &str, limit: &str) -> String {
    format!(
        "{key} <= coalesce((SELECT {key} FROM {table} WHERE {range} ORDER BY {key} \
         OFFSET {limit}::int8 - 1 LIMIT 1), {key})"
    )
}

/// A key kept as text in `_mig_backup`, as the key's own type.
fn key_value(text: String, key_type: ColumnType) -> Value {
    match text.parse::<i64>() {
        Ok(i) if key_type.is_integer() => Value::Integer(i),
        _ => Value::Text(text),
    }
}

/// The one round trip that opens a batch's transaction and sets its limits and, for a batch
/// that walks run `run_id`, locks and reads the run's position. The only values in it are
/// numbers formatted here.
fn opening(lock_timeout: Duration, settings: &str, yielding: bool, run_id: Option<i64>) -> String {
    let mut begin = format!(
        "BEGIN; SET LOCAL lock_timeout = '{}ms'; {settings}",
        lock_timeout.as_millis().max(1)
    );
    if yielding {
        begin.push_str(&format!("; {YIELDING_WRITES}"));
    }
    if let Some(run_id) = run_id {
        begin.push_str(&format!("; {}", run_position(run_id)));
    }
    begin
}

/// Why a batch of run `run_id` may not commit: the run is no longer running.
fn run_moved(client: &mut Client, run_id: i64) -> StoreError {
    let run = match client.query_opt("SELECT * FROM _mig_runs WHERE id = $1", &[&run_id]) {
        Ok(Some(row)) => read_run(&row),
        Ok(None) => return StoreError::Inconsistent(format!("run {run_id} is not in _mig_runs")),
        Err(e) => return e.into(),
    };
    match run {
        Ok(run) => StoreError::RunMoved {
            run_id,
            status: run.status.as_str().to_string(),
            checkpoint: run.checkpoint.unwrap_or(Value::Null),
        },
        Err(e) => e,
    }
}

/// Reads run `run_id`'s position, and whether workers claimed from it, and locks its row
/// until the batch commits: workers claim under the same lock, so a batch either commits
/// before their first claim or finds the run shared.
fn run_position(run_id: impl std::fmt::Display) -> String {
    format!(
        "SELECT status, checkpoint_int, checkpoint_text, claimed IS NOT NULL \
         FROM _mig_runs WHERE id = {run_id} FOR UPDATE"
    )
}

/// A batch goes ahead only if its run is still running at the checkpoint this process knows:
/// otherwise another process resumed it or a rollback began, and writing would overtake
/// them. `opened` is what the transaction's opening round trip returned, the run's row last.
fn check_run_position(
    opened: &[SimpleQueryMessage],
    request: &BatchRequest<'_>,
) -> Result<(), StoreError> {
    let Some(row) = opened.iter().rev().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    }) else {
        return Err(StoreError::Inconsistent(format!(
            "run {} is not in _mig_runs",
            request.run_id
        )));
    };
    if row.get(3) == Some("t") {
        // A shared run's checkpoint is its highest finished key, not a line below which
        // every claim is done: walking on from it alone could skip a claim, or write one
        // a worker holds.
        return Err(StoreError::SharedRun {
            run_id: request.run_id,
        });
    }
    let status = row.get(0).unwrap_or_default().to_string();
    let checkpoint = match (row.get(1), row.get(2)) {
        (Some(i), _) => Value::Integer(i.parse().map_err(|_| {
            StoreError::Inconsistent(format!(
                "run {}'s checkpoint {i:?} is not an integer",
                request.run_id
            ))
        })?),
        (None, Some(t)) => Value::Text(t.to_string()),
        (None, None) => Value::Null,
    };
    ensure_run_position(request, status, checkpoint)
}

#[cfg(test)]
mod tests {
    use super::{coerce, opening, stores_alike, with_length, Column, ColumnType, NullOldMisses};
    use crate::value::Value;
    use std::time::Duration;

    /// A column as the catalog describes it: `format_type` with its typmod and with -1.
    fn column(name: &str, sql_type: &str, base_type: &str, typname: &str) -> Column {
        Column {
            name: name.into(),
            sql_type: sql_type.into(),
            base_type: base_type.into(),
            domain: None,
            ty: ColumnType::from_catalog(typname),
            typname: typname.into(),
            computed: None,
            collate: String::new(),
            unique_not_null: true,
        }
    }

    /// A double beyond `real`'s range is refused both ways, as PostgreSQL's cast refuses
    /// it; 1e-50 was written as 0 (and -1e-50 as -0). The message names the SQL type and
    /// the value in its short form.
    #[test]
    fn a_real_column_refuses_what_it_cannot_hold_either_way() {
        for (value, written) in [(0.5, 0.5), (-0.0, -0.0), (1e-40, f64::from(1e-40_f32))] {
            match coerce(Value::Real(value), ColumnType::Float4, "r4") {
                Ok(Value::Real(r)) => assert_eq!(r.to_bits(), written.to_bits(), "{value}"),
                other => panic!("{value}: {other:?}"),
            }
        }
        for value in [1e-50, -1e-50, 1e300] {
            let refused = coerce(Value::Real(value), ColumnType::Float4, "r4")
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains(&format!("real {value:?} into column `r4` (real)")),
                "{refused}"
            );
        }
    }

    /// A whole real goes into an integer column as that integer; a fraction, a value out of
    /// the column's range, NaN or infinity is refused, naming the real.
    #[test]
    fn an_integer_column_takes_a_real_only_when_it_is_a_whole_number_in_range() {
        for (ty, value, written) in [
            (ColumnType::Int8, 1250.0, 1250),
            (ColumnType::Int8, -0.0, 0),
            (ColumnType::Int8, i64::MIN as f64, i64::MIN),
            (ColumnType::Int2, 32767.0, 32767),
        ] {
            assert_eq!(
                coerce(Value::Real(value), ty, "n").ok(),
                Some(Value::Integer(written)),
                "{value}"
            );
        }
        for (ty, value) in [
            (ColumnType::Int8, 12.5),
            (ColumnType::Int8, -(i64::MIN as f64)),
            (ColumnType::Int8, f64::NAN),
            (ColumnType::Int8, f64::INFINITY),
            (ColumnType::Int4, 3e9),
            (ColumnType::Int2, 32768.0),
        ] {
            let refused = coerce(Value::Real(value), ty, "n").unwrap_err().to_string();
            assert!(
                refused.contains(&format!("cannot write real {value:?} into column `n`")),
                "{refused}"
            );
        }
    }

    #[test]
    fn only_a_yielding_batch_hands_its_writes_to_the_disk_as_it_goes() {
        let settings = "SET LOCAL synchronous_commit = off";
        let alone = opening(Duration::from_millis(1500), settings, false, Some(7));
        assert_eq!(
            alone,
            "BEGIN; SET LOCAL lock_timeout = '1500ms'; SET LOCAL synchronous_commit = off; \
             SELECT status, checkpoint_int, checkpoint_text, claimed IS NOT NULL \
             FROM _mig_runs WHERE id = 7 FOR UPDATE"
        );
        let yielding = opening(Duration::from_millis(1500), settings, true, None);
        assert_eq!(
            yielding,
            "BEGIN; SET LOCAL lock_timeout = '1500ms'; SET LOCAL synchronous_commit = off; \
             SET LOCAL backend_flush_after = '256kB'"
        );
    }

    #[test]
    fn a_value_too_long_is_said_to_be_for_the_columns_with_a_length_only() {
        let columns = [
            column("id", "integer", "integer", "int4"),
            column("a", "text", "text", "text"),
            column("b", "character varying(3)", "character varying", "varchar"),
            column("c", "character varying", "character varying", "varchar"),
            column("d", "character(2)", "bpchar", "bpchar"),
            column("e", "bpchar", "bpchar", "bpchar"),
        ];
        let all: Vec<&Column> = columns.iter().collect();
        assert_eq!(
            with_length("t", &all).as_deref(),
            Some("`t`.`b` (character varying(3)) or `t`.`d` (character(2))")
        );
        assert_eq!(with_length("t", &[&columns[1], &columns[3]]), None);
    }

    /// Which of the next `n` batches run the NULL-old statement.
    #[test]
    fn a_char_column_holds_a_value_whatever_blanks_pad_it_and_other_columns_compare_exactly() {
        let text = |s: &str| Value::Text(s.to_string());
        assert!(stores_alike(
            ColumnType::Bpchar,
            Some(&text("AB   ")),
            &text("AB")
        ));
        assert!(stores_alike(
            ColumnType::Bpchar,
            Some(&text("AB")),
            &text("AB ")
        ));
        assert!(!stores_alike(
            ColumnType::Bpchar,
            Some(&text(" AB  ")),
            &text("AB")
        ));
        assert!(!stores_alike(ColumnType::Bpchar, None, &text("AB")));
        assert!(!stores_alike(
            ColumnType::Bpchar,
            Some(&Value::Null),
            &text("")
        ));
        assert!(!stores_alike(
            ColumnType::Text,
            Some(&text("AB   ")),
            &text("AB")
        ));
        assert!(stores_alike(
            ColumnType::Int4,
            Some(&Value::Integer(3)),
            &Value::Integer(3)
        ));
    }

    fn tries(misses: &mut NullOldMisses, n: usize) -> Vec<bool> {
        (0..n).map(|_| !misses.skips()).collect()
    }

    #[test]
    fn a_null_old_statement_that_writes_nothing_is_tried_again_ever_more_rarely_up_to_every_65th_batch(
    ) {
        let mut misses = NullOldMisses::default();
        assert_eq!(tries(&mut misses, 2), [true, true]);
        for skipped in [1, 2, 4, 8, 16, 32, 64, 64] {
            misses.record(false);
            let mut expected = vec![false; skipped];
            expected.push(true);
            assert_eq!(tries(&mut misses, skipped + 1), expected);
        }
        misses.record(true);
        assert_eq!(
            tries(&mut misses, 3),
            [true; 3],
            "a write brings it back to every batch"
        );
    }
}
