//! Helpers for integration tests: scratch projects, the real `mig` binary, node sessions.
#![allow(dead_code)]

pub mod state;

use rusqlite::Connection;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const MIG: &str = env!("CARGO_BIN_EXE_mig");

/// A temporary project folder with a mig.toml, a specs folder and a database.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A copy of this repository's mig.toml and specs/: a fresh demo database on first use.
    pub fn demo() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(root.join("mig.toml"), dir.path().join("mig.toml")).unwrap();
        copy_dir(&root.join("specs"), &dir.path().join("specs"));
        Project { dir }
    }

    /// A project whose SQLite database `db.sqlite` is made by `setup_sql` and whose only spec
    /// file holds `spec`.
    pub fn sqlite(setup_sql: &str, spec: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("specs")).unwrap();
        std::fs::write(dir.path().join("specs/test.mig"), spec).unwrap();
        std::fs::write(
            dir.path().join("mig.toml"),
            "specs = \"specs\"\n[database]\nurl = \"sqlite:db.sqlite\"\n[defaults]\nlock_timeout = \"200ms\"\nretries = 1\n",
        )
        .unwrap();
        let conn = Connection::open(dir.path().join("db.sqlite")).unwrap();
        conn.execute_batch(setup_sql).unwrap();
        Project { dir }
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

    /// Runs `mig ARGS` in the project folder.
    pub fn mig(&self, args: &[&str]) -> Output {
        Command::new(MIG)
            .args(args)
            .current_dir(self.path())
            .env_remove("MIG_DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Sends `lines` to `mig node`, closes stdin, returns every stdout line as JSON.
    pub fn node(&self, lines: &[String]) -> (Vec<Value>, String) {
        let mut child = Command::new(MIG)
            .arg("node")
            .current_dir(self.path())
            .env_remove("MIG_DATABASE_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
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
        let conn = self.db();
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
            .unwrap();
        let columns = stmt.column_count();
        stmt.query_map([], |row| {
            let values: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap()))
                .collect();
            Ok(values.join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
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
