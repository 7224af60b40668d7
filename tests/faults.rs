//! Faults on SQLite: a read-only database, a full disk, a lock held past `lock_timeout`. Each
//! stops the run with a clear error; every batch is wholly applied (write, backup,
//! checkpoint) or not at all; a later run resumes and ends with the table an unfaulted run
//! leaves. (A connection killed mid-run is a PostgreSQL fault, tested with that store.)
mod common;

use common::state::logical_dump;
use common::{envelope, reply_to, stderr, stdout, Project, MIG};
use rusqlite::Connection;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};

const ROWS: i64 = 2_000;

/// 2,000 rows of 400 characters each, so a run writes a few MB (WAL, backup, table).
fn setup() -> String {
    format!(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
         INSERT INTO t SELECT i, printf('%.400c', char(65 + i % 26)) || i, NULL FROM n;"
    )
}

const SPEC: &str = "backfill b on t {\n    set b = a || '/' || a\n    batch 50\n}\n";

fn project() -> Project {
    Project::sqlite(&setup(), SPEC)
}

/// The table as a run without faults leaves it.
fn unfaulted_table() -> Vec<String> {
    let project = project();
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    project.dump("t")
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every committed batch is whole: the rows written, the backup rows and the runs' `updated`
/// totals agree, and the rows written are exactly those up to the checkpoint.
fn batches_are_whole(project: &Project) {
    let conn = project.db();
    let written = count(&conn, "SELECT count(*) FROM t WHERE b IS NOT NULL");
    let has_runs = count(
        &conn,
        "SELECT count(*) FROM sqlite_master WHERE name = '_mig_runs'",
    ) > 0;
    if !has_runs {
        assert_eq!(written, 0, "rows written without a run");
        return;
    }
    let backed_up = count(&conn, "SELECT coalesce(sum(row_count), 0) FROM _mig_backup");
    let updated = count(&conn, "SELECT coalesce(sum(updated), 0) FROM _mig_runs");
    assert_eq!(written, backed_up, "rows written vs rows backed up");
    assert_eq!(written, updated, "rows written vs the runs' updated totals");
    let checkpoint = count(&conn, "SELECT coalesce(max(checkpoint), 0) FROM _mig_runs");
    let below = count(
        &conn,
        &format!("SELECT count(*) FROM t WHERE id <= {checkpoint}"),
    );
    let written_below = count(
        &conn,
        &format!("SELECT count(*) FROM t WHERE id <= {checkpoint} AND b IS NOT NULL"),
    );
    assert_eq!(
        written_below, below,
        "every row up to the checkpoint is written"
    );
    assert_eq!(written, below, "no row past the checkpoint is written");
}

/// `mig run t.b` to the end, then the table must be the unfaulted one.
fn resumes_to(project: &Project, expected: &[String]) {
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    batches_are_whole(project);
    assert_eq!(project.dump("t"), expected);
}

/// Whether this process runs as root, where file modes do not stop writes.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

fn set_mode(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_read_only_database_stops_the_run_and_a_later_run_resumes() {
    let expected = unfaulted_table();
    let project = project();
    let partial = project.mig(&["run", "t.b", "--limit", "500"]);
    assert!(partial.status.success(), "{}", stderr(&partial));
    let before = logical_dump(&project.db_path());

    // Modes alone do not stop root, so as root the faulted run is `nobody`'s.
    set_mode(&project.db_path(), 0o444);
    set_mode(project.path(), 0o555);
    let mut command = project.command(&["run", "t.b"]);
    if running_as_root() {
        command.uid(65534).gid(65534);
    }
    let out = command.output().unwrap();
    set_mode(project.path(), 0o755);
    set_mode(&project.db_path(), 0o644);

    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("readonly") && err.contains("db.sqlite"),
        "{err}"
    );
    assert_eq!(logical_dump(&project.db_path()), before);
    batches_are_whole(&project);
    resumes_to(&project, &expected);
}

/// Runs `mig run t.b` unable to grow any file past `max_bytes`, as on a full disk.
/// SIGXFSZ is ignored so a write past the limit fails with EFBIG instead of killing `mig`.
fn run_on_a_full_disk(project: &Project, max_bytes: u64) -> Output {
    let script = format!(
        "trap '' XFSZ; ulimit -f {}; exec \"$0\" run t.b",
        max_bytes / 512
    );
    Command::new("sh")
        .args(["-c", &script, MIG])
        .current_dir(project.path())
        .env_remove("MIG_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_full_disk_stops_the_run_between_whole_batches_and_a_later_run_resumes() {
    let expected = unfaulted_table();
    let project = project();
    let size = std::fs::metadata(project.db_path()).unwrap().len();
    let out = run_on_a_full_disk(&project, size + 512 * 1024);

    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("disk is full") || err.contains("disk I/O error"),
        "{err}"
    );
    assert!(err.contains("resumes"), "{err}");
    let conn = project.db();
    let written = count(&conn, "SELECT count(*) FROM t WHERE b IS NOT NULL");
    assert!(
        written > 0 && written < ROWS,
        "the fault should strike mid-run; {written} rows were written"
    );
    drop(conn);
    batches_are_whole(&project);
    resumes_to(&project, &expected);
}

#[test]
fn a_lock_held_past_lock_timeout_is_unavailable_and_a_later_run_resumes() {
    let expected = unfaulted_table();
    let project = project();
    let partial = project.mig(&["run", "t.b", "--limit", "500"]);
    assert!(partial.status.success(), "{}", stderr(&partial));
    let before = logical_dump(&project.db_path());

    let holder = project.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = project.mig(&["run", "t.b"]);
    let (replies, _) = project.node(&[
        envelope(json!({"type": "backfill", "msg_id": 1, "table": "t", "column": "b"})),
        envelope(json!({"type": "status", "msg_id": 2})),
    ]);
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);

    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("lock"), "{}", stderr(&out));
    let refused = reply_to(&replies, 1);
    assert_eq!(refused["code"], 11, "{refused}");
    assert!(
        refused["text"].as_str().unwrap().contains("lock"),
        "{refused}"
    );
    assert_eq!(reply_to(&replies, 2)["type"], "status");
    let after: Vec<String> = logical_dump(&project.db_path())
        .into_iter()
        .filter(|l| !l.starts_with("_mig_runs|"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|l| !l.starts_with("_mig_runs|"))
        .collect();
    assert_eq!(after, before, "only run records may change");
    batches_are_whole(&project);
    resumes_to(&project, &expected);
}

/// In rollback-journal mode an application's `BEGIN EXCLUSIVE` keeps every other connection
/// out, readers too. Each command waits `lock_timeout` (200 ms here) and says "try again"
/// (exit 3), as in WAL mode; opening the database once answered exit 4, "cannot open
/// database", and `mig check` checked the specs without the schema.
#[test]
fn a_database_locked_in_rollback_journal_mode_is_unavailable_to_every_command() {
    let project = Project::sqlite(
        &setup(),
        &format!("{SPEC}validate filled on t {{\n    not_null b\n}}\n"),
    );
    let holder = project.db();
    assert_eq!(
        holder
            .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
            .unwrap(),
        "delete"
    );
    holder
        .execute_batch("BEGIN EXCLUSIVE; UPDATE t SET a = a WHERE id = 1")
        .unwrap();
    let commands: [&[&str]; 6] = [
        &["run", "t.b"],
        &["rollback", "t.b"],
        &["plan", "t.b"],
        &["validate"],
        &["status"],
        &["check"],
    ];
    for args in commands {
        let out = project.mig(args);
        assert_eq!(out.status.code(), Some(3), "mig {args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("another transaction holds a lock mig needs"),
            "mig {args:?}: {}",
            stderr(&out)
        );
    }
    holder.execute_batch("ROLLBACK").unwrap();
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_lock_timeout_beyond_sqlites_limit_is_not_a_crash() {
    let project = project();
    std::fs::write(
        project.path().join("mig.toml"),
        "specs = \"specs\"\n[database]\nurl = \"sqlite:db.sqlite\"\n[defaults]\nlock_timeout = \"40000m\"\n",
    )
    .unwrap();
    let (replies, stderr) = project.node(&[
        envelope(json!({"type": "status", "msg_id": 1})),
        envelope(json!({"type": "backfill", "msg_id": 2, "table": "t", "column": "b"})),
    ]);
    assert_eq!(reply_to(&replies, 1)["type"], "status", "{stderr}");
    assert_eq!(reply_to(&replies, 2)["total_updated"], ROWS, "{stderr}");
}

#[test]
fn a_lock_met_by_a_resumed_run_leaves_its_checkpoint_where_it_was() {
    let expected = unfaulted_table();
    let project = project();
    let size = std::fs::metadata(project.db_path()).unwrap().len();
    let stopped = run_on_a_full_disk(&project, size + 512 * 1024);
    assert_eq!(stopped.status.code(), Some(4), "{}", stderr(&stopped));
    let before = logical_dump(&project.db_path());
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("_mig_runs|") && l.contains("\"running\"")),
        "the full disk should leave a run to resume: {:?}",
        before
            .iter()
            .filter(|l| l.starts_with("_mig_runs|"))
            .collect::<Vec<_>>()
    );

    let holder = project.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = project.mig(&["run", "t.b"]);
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);

    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("lock timeout"), "{}", stderr(&out));
    assert_eq!(logical_dump(&project.db_path()), before);
    batches_are_whole(&project);
    resumes_to(&project, &expected);
}

/// A password in the database URL never appears in what mig prints: errors carry the URL to
/// say which database failed, and they end up in terminals, CI logs and the node's replies.
/// Port 1 refuses the connection, so no PostgreSQL is needed.
#[test]
fn a_database_password_is_never_printed() {
    let project = project();
    let url = "postgres://mig:s3cret-pw@127.0.0.1:1/app?password=s3cret-pw";
    let with_url = |args: &[&str], stdin: Option<&str>| {
        let mut command = project.command(args);
        command.env("MIG_DATABASE_URL", url);
        match stdin {
            None => command.output().unwrap(),
            Some(input) => {
                let mut child = command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
        }
    };
    let status_request = format!("{}\n", envelope(json!({"type": "status", "msg_id": 1})));
    for out in [
        with_url(&["status"], None),
        with_url(&["check"], None),
        with_url(&["run", "t.b"], None),
        with_url(&["node"], Some(&status_request)),
    ] {
        let printed = format!("{}{}", stdout(&out), stderr(&out));
        assert!(printed.contains("mig:***@127.0.0.1:1"), "{printed}");
        assert!(!printed.contains("s3cret"), "{printed}");
    }
}
