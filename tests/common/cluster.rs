//! A PostgreSQL cluster of the test's own, for what the shared test server's settings do not
//! allow: its own pg_hba.conf and TLS (client certificates), a standby streaming from it
//! (replica lag). Made by initdb (or pg_basebackup, for a standby) in a temporary folder,
//! run as `service::service_user`, started on a free port, stopped when dropped.

use super::service::{as_user, free_port, give_to, service_user, skip, ServiceUser};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Cluster {
    /// `postgres` itself, not a wrapper, so that the shutdown signal reaches it.
    process: Child,
    pub port: u16,
    /// Holds the data folder and the server's log and socket; the caller's files too.
    pub dir: tempfile::TempDir,
}

/// What a test needs before it makes a cluster: the binaries and the user to run them as.
pub struct Prepared {
    pub dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<ServiceUser>,
}

impl Prepared {
    /// A folder for the cluster, owned by its user, or None where the PostgreSQL half of the
    /// tests is skipped (see `postgres_url`) or, outside CI, no server binaries are found.
    pub fn new() -> Option<Prepared> {
        super::postgres_url()?;
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
        give_to(dir.path(), user);
        Some(Prepared { dir, bin, user })
    }

    /// Gives `path`, a file the caller wrote in `dir`, to the cluster's user.
    pub fn give(&self, path: &Path) {
        give_to(path, self.user);
    }

    /// initdb (trust for every local and 127.0.0.1 login, replication too), then the server
    /// started with `settings` (`name=value`) besides its port, address and socket folder.
    pub fn primary(self, settings: &[String]) -> Cluster {
        let data = self.dir.path().join("data");
        let initdb = as_user(Command::new(self.bin.join("initdb")), self.user)
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
        self.start(settings)
    }

    /// A standby of `primary`, copied by pg_basebackup and streaming from it (hot standby:
    /// it answers reads).
    pub fn standby_of(self, primary: &Cluster) -> Cluster {
        let backup = as_user(Command::new(self.bin.join("pg_basebackup")), self.user)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-R", "-X", "stream", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            backup.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&backup.stderr)
        );
        self.start(&[])
    }

    fn start(self, settings: &[String]) -> Cluster {
        let port = free_port();
        let folder = self.dir.path().display().to_string();
        let mut all = vec![
            format!("port={port}"),
            "listen_addresses=127.0.0.1".into(),
            format!("unix_socket_directories={folder}"),
            "shared_buffers=16MB".into(),
            "max_connections=20".into(),
            "fsync=off".into(),
        ];
        all.extend_from_slice(settings);
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let process = as_user(Command::new(self.bin.join("postgres")), self.user)
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(all.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut cluster = Cluster {
            process,
            port,
            dir: self.dir,
        };
        cluster.wait_until_ready();
        cluster
    }
}

impl Cluster {
    /// The URL of `database` as the superuser `postgres`, in clear.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn admin(&self, database: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(database), postgres::NoTls).unwrap()
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while postgres::Client::connect(&self.url("postgres"), postgres::NoTls).is_err() {
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

impl Drop for Cluster {
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

/// The folder holding `initdb`, `postgres` and `pg_basebackup`: on PATH, else Debian's
/// newest `/usr/lib/postgresql/VERSION/bin`, where they are kept off PATH (and where a folder
/// on PATH may hold links to some of them only).
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
        .find(|dir| {
            ["initdb", "postgres", "pg_basebackup"]
                .iter()
                .all(|program| dir.join(program).is_file())
        })
}
