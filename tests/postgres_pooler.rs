//! mig behind a connection pooler in transaction mode (pgbouncer's `pool_mode =
//! transaction`), which hands each transaction of one client connection whichever server
//! session is free. mig keeps state in its session (prepared statements, settings, the
//! advisory locks `mig status` reads), so such a pooler breaks it; what the server then says
//! ("prepared statement \"s0\" does not exist") named no cause. mig now names it, and has
//! written nothing.
mod common;

use common::service::{as_user, free_port, give_to, service_user, skip};
use common::{stderr, stdout, Project};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TABLE: &str = "CREATE TABLE t (id integer PRIMARY KEY, a integer, b integer);\n\
     INSERT INTO t SELECT g, g, NULL FROM generate_series(1, 3000) AS g;\n";

/// A pgbouncer of the test's own in front of one database, stopped when dropped.
struct Pooler {
    process: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Pooler {
    /// In transaction mode with two server sessions at most, handed out oldest-free first
    /// (`server_round_robin`), so that two idle ones take turns.
    fn in_transaction_mode(database_url: &str) -> Option<Pooler> {
        let Some(program) = pgbouncer() else {
            return skip("no pgbouncer on PATH or in /usr/sbin");
        };
        let user = match service_user() {
            Ok(user) => user,
            Err(reason) => return skip(&reason),
        };
        let server: postgres::Config = database_url.parse().unwrap();
        let database = server.get_dbname().unwrap().to_string();
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(dir.path().join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        std::fs::write(
            dir.path().join("pgbouncer.ini"),
            format!(
                "[databases]\n{database} = host=127.0.0.1 port={} dbname={database} user=postgres\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\nlogfile = {}\npool_mode = transaction\n\
                 default_pool_size = 2\nserver_round_robin = 1\n",
                server.get_ports().first().copied().unwrap_or(5432),
                path("users.txt"),
                path("pgbouncer.log"),
            ),
        )
        .unwrap();
        for file in ["", "users.txt", "pgbouncer.ini"] {
            give_to(&dir.path().join(file), user);
        }
        let process = as_user(Command::new(program), user)
            .arg(path("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pooler = Pooler {
            process,
            url: format!("postgres://postgres@127.0.0.1:{port}/{database}"),
            _dir: dir,
        };
        pooler.wait_until_ready();
        Some(pooler)
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while postgres::Client::connect(&self.url, postgres::NoTls).is_err() {
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Two clients in a transaction at once make the pool open both its server sessions,
    /// which then take turns at the transactions of one client.
    fn open_both_server_sessions(&self) {
        let mut first = self.client();
        let mut second = self.client();
        first.batch_execute("BEGIN; SELECT 1").unwrap();
        second.batch_execute("BEGIN; SELECT 1").unwrap();
        first.batch_execute("COMMIT").unwrap();
        second.batch_execute("COMMIT").unwrap();
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn pgbouncer() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|program| program.is_file())
}

#[test]
fn behind_a_pooler_in_transaction_mode_mig_names_the_cause_and_writes_nothing() {
    let Some(project) = Project::postgres(TABLE, "backfill b on t {\n    set b = a * 2\n}\n")
    else {
        return;
    };
    let database = project.postgres.as_ref().unwrap();
    let Some(pooler) = Pooler::in_transaction_mode(&database.url) else {
        return;
    };
    pooler.open_both_server_sessions();
    let out = project
        .command(&["run", "t.b"])
        .env("MIG_DATABASE_URL", &pooler.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "mig's connection did not keep one server session from one transaction to the \
             next, as behind a pooler in transaction mode (pgbouncer's pool_mode = \
             transaction)"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["0"]
    );

    // The node answers with the same words, as error 13.
    pooler.open_both_server_sessions();
    let mut node = project
        .command(&["node"])
        .env("MIG_DATABASE_URL", &pooler.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    node.stdin
        .take()
        .unwrap()
        .write_all(b"{\"type\":\"backfill\",\"msg_id\":1,\"table\":\"t\",\"column\":\"b\"}\n")
        .unwrap();
    let out = node.wait_with_output().unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["code"], 13, "{reply}");
    assert!(
        reply["text"]
            .as_str()
            .is_some_and(|t| t.contains("as behind a pooler in transaction mode")),
        "{reply}"
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["0"]
    );
}
