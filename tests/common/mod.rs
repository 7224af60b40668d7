//! Helpers for integration tests: scratch projects, the real `mig` binary, node sessions.
//!
//! Tests that hold for every store loop over `backends()`: SQLite always, and PostgreSQL
//! where `MIG_TEST_POSTGRES` holds a URL. Each PostgreSQL project gets a database of its own,
//! dropped when the project is.
#![allow(dead_code)]

pub mod cluster;
pub mod service;
pub mod state;

use rusqlite::Connection;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

pub const MIG: &str = env!("CARGO_BIN_EXE_mig");

/// A database kind a test runs against.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    Sqlite,
    /// The URL of a database the tests may create databases from.
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// SQLite, plus PostgreSQL when `MIG_TEST_POSTGRES` is set and reachable. Under `CI=true`
/// a missing or unreachable PostgreSQL fails the test; elsewhere it is skipped with a warning.
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if let Some(url) = postgres_url() {
        all.push(Backend::Postgres(url));
    }
    all
}

/// The PostgreSQL URL to test against, checked reachable; see `backends`.
pub fn postgres_url() -> Option<String> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let url = std::env::var("MIG_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty());
    let Some(url) = url else {
        assert!(
            !in_ci,
            "CI=true but MIG_TEST_POSTGRES is not set: the PostgreSQL half of the tests cannot run"
        );
        eprintln!(
            "warning: MIG_TEST_POSTGRES is not set; skipping the PostgreSQL half of this test"
        );
        return None;
    };
    match postgres::Client::connect(&url, postgres::NoTls) {
        Ok(_) => Some(url),
        Err(e) if in_ci => panic!("CI=true and PostgreSQL at {url} is unreachable: {e:?}"),
        Err(e) => {
            eprintln!("warning: PostgreSQL at {url} is unreachable ({e}); skipping the PostgreSQL half of this test");
            None
        }
    }
}

/// A scratch PostgreSQL database, dropped with the project.
pub struct ScratchDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl ScratchDatabase {
    pub fn create(admin_url: &str) -> ScratchDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "mig_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(admin_url, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("MIG_TEST_POSTGRES must end in /DATABASE: {admin_url}"),
        };
        ScratchDatabase {
            admin_url: admin_url.to_string(),
            name,
            url,
        }
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    /// Locks row `id` of table `t` (`FOR UPDATE`) from a connection of its own, in a
    /// transaction left open until the lock is released or dropped.
    pub fn lock_row(&self, id: i64) -> HeldLock {
        let mut client = self.client();
        client
            .batch_execute(&format!(
                "BEGIN; SELECT 1 FROM t WHERE id = {id} FOR UPDATE"
            ))
            .unwrap();
        HeldLock(client)
    }

    /// Locks `table` whole (ACCESS EXCLUSIVE, as `ALTER TABLE` does) from a connection of its
    /// own, in a transaction left open until the lock is released or dropped, or for 15 s at
    /// most: the server then ends the session, so a mig that waits for the lock still ends.
    pub fn lock_table(&self, table: &str) -> HeldLock {
        let mut client = self.client();
        client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = '15s'; \
                 BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
            ))
            .unwrap();
        HeldLock(client)
    }

    /// Returns once some session of this database waits for a lock: a batch is blocked
    /// on a row the test holds.
    pub fn wait_for_a_lock_wait(&self) {
        self.wait_for_lock_waits(1);
    }

    /// Returns once `sessions` sessions of this database wait for a lock.
    pub fn wait_for_lock_waits(&self, sessions: i64) {
        let mut watch = self.client();
        let waiting = "SELECT count(*) FROM pg_stat_activity \
                       WHERE datname = current_database() AND wait_event_type = 'Lock'";
        while watch.query_one(waiting, &[]).unwrap().get::<_, i64>(0) < sessions {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// A login role for a test that runs mig as someone other than the admin. Dropped with what
/// it was granted in its database when the test ends, however the test ends.
pub struct TestRole {
    admin_url: String,
    database_url: String,
    name: String,
    /// The database's URL as this role.
    pub url: String,
}

impl ScratchDatabase {
    /// A login role named after this database and `suffix`, granted the public schema and
    /// every table in it; `extra` then runs as the admin in this database.
    pub fn role(&self, suffix: &str, extra: &str) -> TestRole {
        let name = format!("{}_{suffix}", self.name);
        self.client()
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN; GRANT ALL ON SCHEMA public TO {name}; \
                 GRANT ALL ON ALL TABLES IN SCHEMA public TO {name}; {extra}"
            ))
            .unwrap();
        let url = self
            .url
            .replacen("postgres://postgres@", &format!("postgres://{name}@"), 1);
        assert_ne!(url, self.url, "the test URL names its user: {}", self.url);
        TestRole {
            admin_url: self.admin_url.clone(),
            database_url: self.url.clone(),
            name,
            url,
        }
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        // Its grants go first, where the database is still there; then the role.
        if let Ok(mut db) = postgres::Client::connect(&self.database_url, postgres::NoTls) {
            let _ = db.batch_execute(&format!("DROP OWNED BY {}", self.name));
        }
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name));
        }
    }
}

/// A lock `ScratchDatabase::lock_row` or `lock_table` holds; closing its connection releases
/// it too.
pub struct HeldLock(postgres::Client);

impl HeldLock {
    pub fn release(mut self) {
        self.0.batch_execute("ROLLBACK").unwrap();
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A temporary project folder with a mig.toml, a specs folder and a database.
pub struct Project {
    pub dir: tempfile::TempDir,
    /// Where the project's database lives when it is PostgreSQL.
    pub postgres: Option<ScratchDatabase>,
}

const TEST_DEFAULTS: &str = "[defaults]\nlock_timeout = \"200ms\"\nretries = 1\n";

impl Project {
    /// The demo project on `backend`: on PostgreSQL a fresh database loaded from
    /// specs/demo/schema.sql and seed.sql, the same rows the SQLite demo database holds.
    pub fn demo_on(backend: &Backend) -> Project {
        let Backend::Postgres(admin_url) = backend else {
            return Project::demo();
        };
        let project = Project::demo();
        let db = ScratchDatabase::create(admin_url);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut client = db.client();
        for file in ["schema.sql", "seed.sql"] {
            let sql = std::fs::read_to_string(root.join("specs/demo").join(file)).unwrap();
            client.batch_execute(&sql).unwrap();
        }
        std::fs::write(
            project.path().join("mig.toml"),
            format!("specs = \"specs\"\n[database]\nurl = \"{}\"\n", db.url),
        )
        .unwrap();
        Project {
            dir: project.dir,
            postgres: Some(db),
        }
    }

    /// A project on `backend` whose database is made by `setup` and whose only spec file
    /// holds `spec`.
    pub fn on(backend: &Backend, setup: &Setup, spec: &str) -> Project {
        let Backend::Postgres(admin_url) = backend else {
            return Project::sqlite(setup.sqlite, spec);
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        std::fs::write(dir.path().join("specs/test.mig"), spec).unwrap();
        let db = ScratchDatabase::create(admin_url);
        db.client().batch_execute(setup.postgres).unwrap();
        std::fs::write(
            dir.path().join("mig.toml"),
            format!(
                "specs = \"specs\"\n[database]\nurl = \"{}\"\n{TEST_DEFAULTS}",
                db.url
            ),
        )
        .unwrap();
        Project {
            dir,
            postgres: Some(db),
        }
    }

    /// A copy of this repository's mig.toml and specs/: a fresh demo database on first use.
    pub fn demo() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(root.join("mig.toml"), dir.path().join("mig.toml")).unwrap();
        copy_dir(&root.join("specs"), &dir.path().join("specs"));
        Project {
            dir,
            postgres: None,
        }
    }

    /// A project whose SQLite database `db.sqlite` is made by `setup_sql` and whose only spec
    /// file holds `spec`.
    pub fn sqlite(setup_sql: &str, spec: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        std::fs::write(dir.path().join("specs/test.mig"), spec).unwrap();
        std::fs::write(
            dir.path().join("mig.toml"),
            format!("specs = \"specs\"\n[database]\nurl = \"sqlite:db.sqlite\"\n{TEST_DEFAULTS}"),
        )
        .unwrap();
        let conn = Connection::open(dir.path().join("db.sqlite")).unwrap();
        conn.execute_batch(setup_sql).unwrap();
        Project {
            dir,
            postgres: None,
        }
    }

    /// A project on a scratch PostgreSQL database made by `setup_sql`, whose only spec file
    /// holds `spec`; None where the PostgreSQL half of the tests is skipped.
    pub fn postgres(setup_sql: &'static str, spec: &str) -> Option<Project> {
        let setup = Setup {
            sqlite: "",
            postgres: setup_sql,
        };
        Some(Project::on(
            &Backend::Postgres(postgres_url()?),
            &setup,
            spec,
        ))
    }

    /// Sets `setting` for every later session of the project's PostgreSQL database, as a
    /// DBA sets it for an application's database (`ALTER DATABASE … SET`).
    pub fn set_database_default(&self, setting: &str, value: &str) {
        let db = self.postgres.as_ref().expect("a project on PostgreSQL");
        db.client()
            .batch_execute(&format!(
                "ALTER DATABASE {} SET {setting} = {value}",
                db.name
            ))
            .unwrap();
    }

    /// Runs `sql` (no results) on the project's database, whichever it is.
    pub fn execute(&self, sql: &str) {
        match &self.postgres {
            Some(db) => db.client().batch_execute(sql).unwrap(),
            None => self.db().execute_batch(sql).unwrap(),
        }
    }

    /// The first column of every row of `sql`, as text (NULL as "NULL").
    pub fn query(&self, sql: &str) -> Vec<String> {
        self.rows(sql)
            .into_iter()
            .map(|r| r.into_iter().next().unwrap_or_default())
            .collect()
    }

    /// Every row of `sql` with every column as text (NULL as "NULL").
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        match &self.postgres {
            Some(db) => db
                .client()
                .simple_query(sql)
                .unwrap()
                .into_iter()
                .filter_map(|m| match m {
                    postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).unwrap_or("NULL").to_string())
                            .collect(),
                    ),
                    _ => None,
                })
                .collect(),
            None => {
                let conn = self.db();
                let mut stmt = conn.prepare(sql).unwrap();
                let columns = stmt.column_count();
                stmt.query_map([], |row| {
                    Ok((0..columns)
                        .map(|i| match row.get::<_, rusqlite::types::Value>(i).unwrap() {
                            rusqlite::types::Value::Null => "NULL".to_string(),
                            rusqlite::types::Value::Integer(i) => i.to_string(),
                            rusqlite::types::Value::Real(r) => r.to_string(),
                            rusqlite::types::Value::Text(t) => t,
                            rusqlite::types::Value::Blob(b) => format!("{b:?}"),
                        })
                        .collect())
                })
                .unwrap()
                .map(Result::unwrap)
                .collect()
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        let demo = self.path().join(".mig/demo.sqlite");
        if demo.exists() {
            demo
        } else {
            self.path().join("db.sqlite")
        }
    }

    pub fn db(&self) -> Connection {
        Connection::open(self.db_path()).unwrap()
    }

    pub fn write_spec(&self, spec: &str) {
        std::fs::write(self.path().join("specs/test.mig"), spec).unwrap();
    }

    /// `mig ARGS` in the project folder, reading its own `mig.toml` (never the caller's
    /// `MIG_DATABASE_URL`), with no stdin; callers set the rest. The project folder is its
    /// home too: mig reads libpq's certificates under `~/.postgresql/`, and the caller's
    /// are none of a test's business.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(MIG);
        command
            .args(args)
            .current_dir(self.path())
            .env_remove("MIG_DATABASE_URL")
            .env("HOME", self.path())
            .stdin(Stdio::null());
        command
    }

    /// Runs `mig ARGS` in the project folder.
    pub fn mig(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `mig ARGS`, which must succeed; answers its stdout.
    pub fn mig_ok(&self, args: &[&str]) -> String {
        let out = self.mig(args);
        assert!(
            out.status.success(),
            "mig {args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// `mig node` in the project folder, its stdin, stdout and stderr piped to the caller.
    pub fn spawn_node(&self) -> std::process::Child {
        self.command(&["node"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Sends `lines` to `mig node`, closes stdin, returns every stdout line as JSON.
    pub fn node(&self, lines: &[String]) -> (Vec<Value>, String) {
        let mut child = self.spawn_node();
        {
            let mut stdin = child.stdin.take().unwrap();
            for line in lines {
                stdin.write_all(line.as_bytes()).unwrap();
                stdin.write_all(b"\n").unwrap();
            }
        }
        let output = child.wait_with_output().unwrap();
        let replies = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
            })
            .collect();
        (
            replies,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Every row of `table` in key order, as text, for comparing whole tables.
    pub fn dump(&self, table: &str) -> Vec<String> {
        self.rows(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
            .into_iter()
            .map(|r| r.join("|"))
            .collect()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A request inside a Maelstrom envelope.
pub fn envelope(body: Value) -> String {
    json!({"src": "admin", "dest": "migrations", "body": body}).to_string()
}

/// The body of the reply to `msg_id`.
pub fn reply_to(replies: &[Value], msg_id: u64) -> Value {
    replies
        .iter()
        .map(|r| r.get("body").unwrap_or(r))
        .find(|b| b["in_reply_to"] == json!(msg_id))
        .cloned()
        .unwrap_or_else(|| panic!("no reply to {msg_id} in {replies:?}"))
}

/// `body` without the fields that vary run to run (our own msg_id, measured durations).
pub fn stable(mut body: Value) -> Value {
    if let Some(o) = body.as_object_mut() {
        o.remove("msg_id");
        o.remove("duration_seconds");
    }
    body
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A small seeded generator (xorshift64*), so random kill points are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `low..high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

impl Project {
    /// Starts `mig ARGS` in the project folder without waiting for it.
    pub fn spawn_mig(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// One integer from the database, or None while the query finds nothing (or the table
    /// does not exist yet).
    pub fn query_i64(&self, sql: &str) -> Option<i64> {
        self.db()
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .ok()
            .flatten()
    }

    /// Kills (SIGKILL) `child` as soon as `sql` answers a true integer, polling the database;
    /// panics if the child ends first. Nothing here is timed: the child is expected to be
    /// slowed by a `pause` long enough that it cannot finish between two polls.
    pub fn kill_when(&self, mut child: std::process::Child, sql: &str) {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("mig ended ({status}) before `{sql}` held");
            }
            if self.query_i64(sql).unwrap_or(0) != 0 {
                child.kill().unwrap();
                child.wait().unwrap();
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Returns once the PostgreSQL run of `child` has committed `batches` batches; panics if
    /// the child ends first (its `pause` must outlast a poll).
    pub fn wait_for_batches(&self, child: &mut std::process::Child, batches: i64) {
        let committed = format!("SELECT count(*) FROM _mig_runs WHERE batches >= {batches}");
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("mig ended ({status}) before {batches} batches");
            }
            let tables = self.query("SELECT count(*) FROM pg_tables WHERE tablename = '_mig_runs'");
            if tables == ["1"] && self.query(&committed) == ["1"] {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Every backup record without its run id, for comparing backups of two runs.
    pub fn backup(&self) -> Vec<String> {
        state::query_rows(
            &self.db(),
            "SELECT batch, columns, row_count, hex(rows) FROM _mig_backup ORDER BY batch",
        )
    }

    /// Every backed-up row of every record: its key, then the old and written value of each
    /// set column, decoded as mig decodes them for rollback.
    pub fn backed_up_rows(
        &self,
    ) -> Vec<(
        mig::value::Value,
        Vec<(mig::value::Value, mig::value::Value)>,
    )> {
        let conn = self.db();
        let mut stmt = conn
            .prepare("SELECT columns, rows FROM _mig_backup ORDER BY run_id, batch")
            .unwrap();
        let records: Vec<(String, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut out = Vec::new();
        for (columns, bytes) in records {
            let width = serde_json::from_str::<Vec<String>>(&columns).unwrap().len();
            let mut decoder = mig::value::Decoder::new(&bytes);
            while !decoder.is_done() {
                let key = decoder.value().unwrap();
                let values = (0..width)
                    .map(|_| (decoder.value().unwrap(), decoder.value().unwrap()))
                    .collect();
                out.push((key, values));
            }
        }
        out
    }

    /// (status, processed, updated, batches) of every run, in order.
    pub fn runs(&self) -> Vec<(String, i64, i64, i64)> {
        let conn = self.db();
        let mut stmt = conn
            .prepare("SELECT status, processed, updated, batches FROM _mig_runs ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// A second project with a copy of this one's mig.toml, specs and database.
    pub fn copy(&self) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(self.path().join("mig.toml"), dir.path().join("mig.toml")).unwrap();
        copy_dir(&self.path().join("specs"), &dir.path().join("specs"));
        self.db()
            .execute(
                "VACUUM INTO ?1",
                [dir.path().join("db.sqlite").to_str().unwrap()],
            )
            .unwrap();
        Project {
            dir,
            postgres: None,
        }
    }
}

/// The SQL that makes a test's tables, once per dialect.
pub struct Setup {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// A `mig node` whose stdin and stdout the test holds, to send a line, read the reply and
/// act on the database in between.
pub struct LiveNode {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl LiveNode {
    pub fn start(project: &Project) -> LiveNode {
        let mut child = project.spawn_node();
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        LiveNode {
            child,
            stdin,
            stdout,
        }
    }

    pub fn send(&mut self, line: &[u8]) {
        self.stdin.write_all(line).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next reply line. The node answers garbage at once on its reader thread and
    /// statuses in order on a thread of their own, so a test that reads each reply before
    /// it sends the next line reads them in the order it sent the lines.
    pub fn reply(&mut self) -> Value {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut self.stdout, &mut line).unwrap() > 0,
            "the node closed stdout"
        );
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {line}"))
    }

    /// Peak resident memory of the node process so far, in kB.
    pub fn peak_memory_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmHWM in {status}"))
    }

    /// Closes stdin and waits: the node must exit cleanly. Returns stderr.
    pub fn finish(self) -> String {
        drop(self.stdin);
        let output = self.child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "node exited with {}",
            output.status
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

/// SQLite: table `t (id, a, b)` holding rows 1 to `n`, each `a` its id and `b` NULL, the table
/// many tests of progress and pacing start from.
pub fn numbered_t(n: u32) -> String {
    format!(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
         INSERT INTO t SELECT i, i, NULL FROM n;"
    )
}

/// The live-writer tests' backfill, on either store: `c` filled from `a` on `accounts`,
/// 500 rows a batch, 5 ms apart, so a writer beside it meets many batches.
pub const LIVE_WRITER_SPEC: &str = "backfill c on accounts {
    set c = a * 2
    batch 500
    pause 5ms
}
";

/// SIGKILLs `child`, which must still be running (`what` names the kill in the failure).
pub fn kill_while_running(child: &mut std::process::Child, what: &str) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "{what}: the run must still be going when it is killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
