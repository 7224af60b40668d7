//! A PostgreSQL server of the test's own: a cluster made by initdb in a temporary folder,
//! started on a free port with TLS and the pg_hba.conf the test gives, stopped when dropped.
//! A server asks clients for certificates only when told an authority (`ssl_ca_file`), and
//! checks them for a login only under a `cert` rule in pg_hba.conf; the shared test
//! server's settings are not the tests' to change.

use crate::certs::Authority;
use crate::common;
use crate::common::service::{as_user, free_port, give_to, service_user, skip, ServiceUser};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateServer {
    /// `postgres` itself, not a wrapper, so that the shutdown signal reaches it.
    process: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl PrivateServer {
    /// A server with TLS whose certificate `authority` signed, for 127.0.0.1 and localhost,
    /// which asks clients for certificates and accepts those `authority` signed, under
    /// `hba`. None where the PostgreSQL half of the tests is skipped (see
    /// `common::postgres_url`) or, outside CI, where no PostgreSQL server binaries are found.
    pub fn start(authority: &Authority, hba: &str) -> Option<PrivateServer> {
        common::postgres_url()?;
        let Some(bin) = server_binaries() else {
            return skip(
                "no PostgreSQL server binaries (initdb) on PATH or in /usr/lib/postgresql",
            );
        };
        let user = match service_user() {
            Ok(user) => user,
            Err(reason) => return skip(&reason),
        };
        let dir = tempfile::tempdir().unwrap();
        write_server_files(dir.path(), authority, hba, user);
        let data = dir.path().join("data");
        let initdb = as_user(Command::new(bin.join("initdb")), user)
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let process = as_user(Command::new(bin.join("postgres")), user)
            .arg("-D")
            .arg(&data)
            .args(
                settings(dir.path(), port)
                    .iter()
                    .flat_map(|s| ["-c", s.as_str()]),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = PrivateServer { process, port, dir };
        server.wait_until_ready();
        Some(server)
    }

    /// A connection as the superuser `postgres`, in clear, to `database`.
    pub fn admin(&self, database: &str) -> postgres::Client {
        let url = format!("postgres://postgres@127.0.0.1:{}/{database}", self.port);
        postgres::Client::connect(&url, postgres::NoTls).unwrap()
    }

    /// What the server has logged, for a failure's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Returns once the server's log holds `line`, or fails after ten seconds: a backend
    /// may log what it did a moment after the client saw the connection end.
    pub fn wait_for_log(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(line) {
            assert!(
                Instant::now() < deadline,
                "the server's log does not say `{line}`: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_until_ready(&mut self) {
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let deadline = Instant::now() + Duration::from_secs(60);
        while postgres::Client::connect(&url, postgres::NoTls).is_err() {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("the private server ended ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the private server did not answer within a minute: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: it ends the sessions rather than wait for them.
        unsafe { libc::kill(self.process.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The folder holding `initdb` and `postgres`: on PATH, else Debian's newest
/// `/usr/lib/postgresql/VERSION/bin`, where they are kept off PATH.
fn server_binaries() -> Option<PathBuf> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    debian.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    on_path
        .into_iter()
        .chain(debian.into_iter().map(|(_, dir)| dir))
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

/// The server's certificate and key, the authority it asks client certificates of, and
/// pg_hba.conf, in `dir`, which the server's user is given: initdb makes its data folder there.
fn write_server_files(dir: &Path, authority: &Authority, hba: &str, user: Option<ServiceUser>) {
    let server = authority.server();
    server.write_cert(&dir.join("server.crt"));
    server.write_key(&dir.join("server.key"));
    std::fs::write(dir.join("ca.crt"), authority.cert().to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("pg_hba.conf"), hba).unwrap();
    give_to(dir, user);
    // PostgreSQL reads a key only if its own user owns it (or root, with group access).
    give_to(&dir.join("server.key"), user);
}

fn settings(dir: &Path, port: u16) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        format!("port={port}"),
        "listen_addresses=127.0.0.1".into(),
        format!("unix_socket_directories={}", dir.display()),
        format!("hba_file={}", file("pg_hba.conf")),
        "ssl=on".into(),
        format!("ssl_cert_file={}", file("server.crt")),
        format!("ssl_key_file={}", file("server.key")),
        format!("ssl_ca_file={}", file("ca.crt")),
        "shared_buffers=16MB".into(),
        "max_connections=20".into(),
        "fsync=off".into(),
    ]
}
