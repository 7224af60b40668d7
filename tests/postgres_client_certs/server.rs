//! A PostgreSQL server of the test's own: a cluster made by initdb in a temporary folder,
//! started on a free port with TLS and the pg_hba.conf the test gives, stopped when dropped.
//! A server asks clients for certificates only when told an authority (`ssl_ca_file`), and
//! checks them for a login only under a `cert` rule in pg_hba.conf; the shared test
//! server's settings are not the tests' to change.

use crate::certs::Authority;
use crate::common::cluster::{Cluster, Prepared};
use std::path::Path;

pub struct PrivateServer {
    cluster: Cluster,
    pub port: u16,
}

impl PrivateServer {
    /// A server with TLS whose certificate `authority` signed, for 127.0.0.1 and localhost,
    /// which asks clients for certificates and accepts those `authority` signed, under
    /// `hba`. None where the PostgreSQL half of the tests is skipped (see
    /// `common::postgres_url`) or, outside CI, where no PostgreSQL server binaries are found.
    pub fn start(authority: &Authority, hba: &str) -> Option<PrivateServer> {
        let prepared = Prepared::new()?;
        write_server_files(&prepared, authority, hba);
        let settings = settings(prepared.dir.path());
        let cluster = prepared.primary(&settings);
        let port = cluster.port;
        Some(PrivateServer { cluster, port })
    }

    /// A connection as the superuser `postgres`, in clear, to `database`.
    pub fn admin(&self, database: &str) -> postgres::Client {
        self.cluster.admin(database)
    }

    /// What the server has logged, for a failure's message.
    pub fn log(&self) -> String {
        self.cluster.log()
    }

    /// Returns once the server's log holds `line`, or fails after ten seconds.
    pub fn wait_for_log(&self, line: &str) {
        self.cluster.wait_for_log(line)
    }
}

/// The server's certificate and key, the authority it asks client certificates of, and
/// pg_hba.conf, in `dir`, which the server's user is given: initdb makes its data folder there.
fn write_server_files(prepared: &Prepared, authority: &Authority, hba: &str) {
    let dir = prepared.dir.path();
    let server = authority.server();
    server.write_cert(&dir.join("server.crt"));
    server.write_key(&dir.join("server.key"));
    std::fs::write(dir.join("ca.crt"), authority.cert().to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("pg_hba.conf"), hba).unwrap();
    // PostgreSQL reads a key only if its own user owns it (or root, with group access).
    prepared.give(&dir.join("server.key"));
}

fn settings(dir: &Path) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        format!("hba_file={}", file("pg_hba.conf")),
        "ssl=on".into(),
        format!("ssl_cert_file={}", file("server.crt")),
        format!("ssl_key_file={}", file("server.key")),
        format!("ssl_ca_file={}", file("ca.crt")),
    ]
}
