//! Client certificates: `sslcert`, `sslkey`, `sslpassword` and libpq's defaults under
//! `~/.postgresql/`. Whether a certificate is presented and accepted is shown by a server of
//! the test's own (`server.rs`) that logs the role in only by a certificate its authority
//! signed (`cert` in pg_hba.conf) and reads the client's name into `pg_stat_ssl`. The files'
//! own errors need no server: they stop mig before it connects.
mod certs;
#[path = "../common/mod.rs"]
mod common;
mod server;

use certs::Authority;
use common::{stderr, Project};
use server::PrivateServer;
use std::io::Read;
use std::path::Path;

/// The role that logs in by certificate; `postgres` is trusted, for the test's own checks.
const ROLE: &str = "mig_cert_user";
const HBA: &str = "hostssl all mig_cert_user 127.0.0.1/32 cert\n\
                   host all postgres 127.0.0.1/32 trust\n";
const SETUP: &str = "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);
                     INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 40) AS i;";
/// Slow enough (four pauses) that a poll every few milliseconds sees the session.
const SPEC: &str = "backfill b on t {\n    set b = a * 2\n    batch 10\n    pause 100ms\n}\n";
/// Nothing listens there: a test that reaches the network has already failed.
const NO_SERVER: &str = "postgres://mig_cert_user:hunter2@127.0.0.1:1/app";

/// A private server under `HBA` with the role and its database `app` holding table `t`.
fn server_for_cert_logins(authority: &Authority) -> Option<PrivateServer> {
    let server = PrivateServer::start(authority, HBA)?;
    let mut admin = server.admin("postgres");
    admin
        .batch_execute(&format!("CREATE ROLE {ROLE} LOGIN SUPERUSER"))
        .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE app OWNER {ROLE}"))
        .unwrap();
    server.admin("app").batch_execute(SETUP).unwrap();
    Some(server)
}

fn url(server: &PrivateServer, params: &str) -> String {
    format!("postgres://{ROLE}@127.0.0.1:{}/app?{params}", server.port)
}

/// `mig ARGS` with `url` and `home` as its home directory.
fn mig(project: &Project, args: &[&str], url: &str, home: &Path) -> std::process::Command {
    let mut command = project.command(args);
    command.env("MIG_DATABASE_URL", url).env("HOME", home);
    command
}

/// Runs the backfill over `url` and returns the client certificate's name as the server saw
/// it in `pg_stat_ssl` while the run was paused (NULL where none was presented); checks
/// the run completed.
fn client_name_seen_in_a_run(server: &PrivateServer, url: &str, home: &Path) -> String {
    let project = Project::sqlite("", SPEC);
    let mut child = mig(&project, &["run", "t.b"], url, home)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = format!(
        "SELECT coalesce(s.client_dn, 'NULL') FROM pg_stat_ssl s JOIN pg_stat_activity a \
         USING (pid) WHERE a.usename = '{ROLE}' AND a.application_name = 'mig'"
    );
    let mut admin = server.admin("app");
    let name = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!(
                "mig ended ({status}) before its session was seen: {err}\nserver: {}",
                server.log()
            );
        }
        if let Some(row) = admin.query(&seen, &[]).unwrap().first() {
            break row.get::<_, String>(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let done = admin
        .query_one("SELECT count(*) FROM t WHERE b = a * 2", &[])
        .unwrap();
    assert_eq!(done.get::<_, i64>(0), 40);
    name
}

#[test]
fn a_client_certificate_named_in_the_url_is_presented_and_logs_the_role_in() {
    let authority = Authority::new("mig test authority");
    let Some(server) = server_for_cert_logins(&authority) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let path = |name: &str| files.path().join(name).display().to_string();
    std::fs::write(path("ca.crt"), authority.cert().to_pem().unwrap()).unwrap();
    let client = authority.client(ROLE);
    client.write_cert(&files.path().join("client.crt"));
    client.write_key(&files.path().join("client.key"));
    client.write_encrypted_key(&files.path().join("locked.key"), "open sesame");
    let empty_home = tempfile::tempdir().unwrap();

    let params = format!(
        "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        path("ca.crt"),
        path("client.crt"),
        path("client.key")
    );
    let name = client_name_seen_in_a_run(&server, &url(&server, &params), empty_home.path());
    assert_eq!(name, format!("/CN={ROLE}"));

    // An encrypted key opened by its passphrase logs in as well.
    let params = format!(
        "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}&sslpassword=open%20sesame",
        path("ca.crt"),
        path("client.crt"),
        path("locked.key")
    );
    let project = Project::sqlite("", "");
    let out = mig(
        &project,
        &["status"],
        &url(&server, &params),
        empty_home.path(),
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// libpq's defaults: `~/.postgresql/postgresql.crt` with `postgresql.key` is presented, and
/// `root.crt` is the authority `verify-full` checks the server against, none of them named.
#[test]
fn the_certificate_key_and_authority_default_to_home_postgresql() {
    let authority = Authority::new("mig test authority");
    let Some(server) = server_for_cert_logins(&authority) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let folder = home.path().join(".postgresql");
    std::fs::create_dir(&folder).unwrap();
    let client = authority.client(ROLE);
    client.write_cert(&folder.join("postgresql.crt"));
    client.write_key(&folder.join("postgresql.key"));
    std::fs::write(folder.join("root.crt"), authority.cert().to_pem().unwrap()).unwrap();
    let name =
        client_name_seen_in_a_run(&server, &url(&server, "sslmode=verify-full"), home.path());
    assert_eq!(name, format!("/CN={ROLE}"));
}

/// What makes the two tests above mean something: the server takes no login by this role
/// without a certificate, nor with one another authority signed.
#[test]
fn the_server_refuses_the_role_without_a_certificate_its_authority_signed() {
    let authority = Authority::new("mig test authority");
    let Some(server) = server_for_cert_logins(&authority) else {
        return;
    };
    let project = Project::sqlite("", "");
    let empty_home = tempfile::tempdir().unwrap();
    let out = mig(
        &project,
        &["status"],
        &url(&server, "sslmode=require"),
        empty_home.path(),
    )
    .output()
    .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("connection requires a valid client certificate"),
        "{err}"
    );

    let files = tempfile::tempdir().unwrap();
    let stranger = Authority::new("another authority").client(ROLE);
    stranger.write_cert(&files.path().join("client.crt"));
    stranger.write_key(&files.path().join("client.key"));
    let params = format!(
        "sslmode=require&sslcert={}&sslkey={}",
        files.path().join("client.crt").display(),
        files.path().join("client.key").display()
    );
    let out = mig(
        &project,
        &["status"],
        &url(&server, &params),
        empty_home.path(),
    )
    .output()
    .unwrap();
    assert!(!out.status.success(), "{}", stderr(&out));
    // mig reads the server's alert (unknown ca) or, where the server has hung up first, a
    // reset; the server's log says why.
    server.wait_for_log("could not accept SSL connection: certificate verify failed");
}

/// `mig status` over `NO_SERVER` with `params`: it must fail before connecting. Returns
/// its error, checked to hide the password.
fn refusal(params: &str, home: &Path) -> String {
    let project = Project::sqlite("", "");
    let out = mig(
        &project,
        &["status"],
        &format!("{NO_SERVER}?{params}"),
        home,
    )
    .output()
    .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{params}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        !err.contains("onnection refused"),
        "reached the network: {err}"
    );
    err
}

/// Unlike libpq, which goes on without a certificate it cannot find (and the server's
/// refusal then says nothing of the typo), a file the URL names must be there.
#[test]
fn a_named_certificate_or_key_that_is_missing_is_an_error_naming_it() {
    let home = tempfile::tempdir().unwrap();
    let err = refusal("sslmode=require&sslcert=/nowhere/client.crt", home.path());
    assert!(
        err.contains("cannot read sslcert /nowhere/client.crt: No such file"),
        "{err}"
    );

    let client = Authority::new("mig test authority").client(ROLE);
    let cert = home.path().join("client.crt");
    client.write_cert(&cert);
    let params = format!(
        "sslmode=require&sslcert={}&sslkey=/nowhere/client.key",
        cert.display()
    );
    let err = refusal(&params, home.path());
    assert!(
        err.contains("cannot read sslkey /nowhere/client.key: No such file"),
        "{err}"
    );
}

/// As libpq refuses it: a key group or others may read is not a secret any more.
#[test]
fn a_key_others_may_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let folder = home.path().join(".postgresql");
    std::fs::create_dir(&folder).unwrap();
    let client = Authority::new("mig test authority").client(ROLE);
    let (cert, key) = (folder.join("postgresql.crt"), folder.join("postgresql.key"));
    client.write_cert(&cert);
    client.write_key(&key);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let err = refusal("sslmode=require", home.path());
    assert!(
        err.contains(&format!(
            "{} (the default sslkey) is open to others than its owner (mode 0644)",
            key.display()
        )),
        "{err}"
    );
    assert!(err.contains("chmod 0600"), "{err}");
    let params = format!("sslcert={}&sslkey={}", cert.display(), key.display());
    let err = refusal(&params, home.path());
    assert!(
        err.contains(&format!("sslkey {} is open to others", key.display())),
        "{err}"
    );
}

#[test]
fn an_encrypted_key_needs_its_passphrase_and_the_passphrase_is_never_printed() {
    let files = tempfile::tempdir().unwrap();
    let client = Authority::new("mig test authority").client(ROLE);
    let (cert, key) = (files.path().join("c.crt"), files.path().join("c.key"));
    client.write_cert(&cert);
    client.write_encrypted_key(&key, "open sesame");
    let params = format!("sslcert={}&sslkey={}", cert.display(), key.display());

    let err = refusal(&params, files.path());
    assert!(
        err.contains(&format!(
            "sslkey {} is encrypted: give its passphrase as sslpassword",
            key.display()
        )),
        "{err}"
    );
    let err = refusal(&format!("{params}&sslpassword=swordfish"), files.path());
    assert!(
        err.contains(&format!(
            "cannot read the private key in sslkey {}",
            key.display()
        )),
        "{err}"
    );
    assert!(!err.contains("swordfish"), "{err}");
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let files = tempfile::tempdir().unwrap();
    let authority = Authority::new("mig test authority");
    let (cert, key) = (files.path().join("c.crt"), files.path().join("c.key"));
    authority.client(ROLE).write_cert(&cert);
    authority.client(ROLE).write_key(&key);
    let params = format!("sslcert={}&sslkey={}", cert.display(), key.display());
    let err = refusal(&params, files.path());
    assert!(
        err.contains(&format!(
            "sslkey {} is not the private key of the client certificate sslcert {}",
            key.display(),
            cert.display()
        )),
        "{err}"
    );
}
