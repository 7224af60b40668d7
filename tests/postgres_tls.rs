//! TLS to PostgreSQL, with libpq's `sslmode` meanings. The local test server offers TLS with
//! a self-signed certificate (Debian's snakeoil, `ssl = on`); whether mig's session is
//! encrypted is read from a second connection, in `pg_stat_ssl`, while a run is paused
//! between batches.
mod common;

use common::{postgres_url, stderr, Project};
use std::io::{Read, Write};
use std::net::TcpListener;

const SETUP: &str = "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);
                     INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 40) AS i;";
/// Slow enough (four pauses) that a poll every few milliseconds sees the session.
const SPEC: &str = "backfill b on t {\n    set b = a * 2\n    batch 10\n    pause 100ms\n}\n";

/// The URL of the project's scratch database with `params` appended.
fn url_with(project: &Project, params: &str) -> String {
    format!("{}?{params}", project.postgres.as_ref().unwrap().url)
}

/// Runs the backfill over `url` and returns whether mig's session was encrypted, as
/// `pg_stat_ssl` showed it while the run was paused; checks the run completed.
fn run_is_encrypted(project: &Project, url: &str) -> bool {
    let mut child = project
        .command(&["run", "t.b"])
        .env("MIG_DATABASE_URL", url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let db = &project.postgres.as_ref().unwrap().name;
    let seen = format!(
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = '{db}' AND a.application_name = 'mig'"
    );
    let encrypted = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("mig ended ({status}) before its session was seen: {err}");
        }
        if let Some(ssl) = project.query(&seen).first() {
            break ssl == "t";
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["40"]
    );
    encrypted
}

#[test]
fn a_run_under_sslmode_require_is_encrypted() {
    let Some(project) = Project::postgres(SETUP, SPEC) else {
        return;
    };
    assert!(run_is_encrypted(
        &project,
        &url_with(&project, "sslmode=require")
    ));
}

/// libpq's default, `prefer`, encrypts where the server offers TLS; `disable` does not ask.
#[test]
fn sslmode_disable_turns_off_the_tls_the_default_uses() {
    let Some(project) = Project::postgres(SETUP, SPEC) else {
        return;
    };
    let url = project.postgres.as_ref().unwrap().url.clone();
    assert!(run_is_encrypted(&project, &url), "default (prefer)");
    let Some(project) = Project::postgres(SETUP, SPEC) else {
        return;
    };
    assert!(!run_is_encrypted(
        &project,
        &url_with(&project, "sslmode=disable")
    ));
}

/// The server's certificate file, as its settings name it.
fn server_certificate(project: &Project) -> String {
    let file = project.query("SHOW ssl_cert_file").remove(0);
    if file.starts_with('/') {
        return file;
    }
    format!("{}/{file}", project.query("SHOW data_directory")[0])
}

/// The test server's certificate is self-signed, so it is its own authority: `verify-ca`
/// accepts it. `verify-full` also checks the name, and a self-signed snakeoil certificate
/// names a host (`localhost`, or the machine's name), never the address 127.0.0.1.
#[test]
fn verify_ca_accepts_the_authority_and_verify_full_also_checks_the_host_name() {
    let Some(project) = Project::postgres(SETUP, SPEC) else {
        return;
    };
    let cert = server_certificate(&project);
    let url = url_with(&project, &format!("sslmode=verify-ca&sslrootcert={cert}"));
    assert!(run_is_encrypted(&project, &url));

    let url = url_with(&project, &format!("sslmode=verify-full&sslrootcert={cert}"))
        .replace("postgres@", "postgres:hunter2@");
    let out = project
        .command(&["status"])
        .env("MIG_DATABASE_URL", &url)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("certificate verify failed"), "{err}");
    assert!(err.contains("mismatch"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// A server certificate that the named authority did not sign is refused, password unsaid;
/// under `require` too, which verifies the authority when given one, as libpq does.
#[test]
fn a_certificate_another_authority_signed_is_refused() {
    let Some(project) = Project::postgres(SETUP, SPEC) else {
        return;
    };
    let other = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls/other_ca.pem");
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = url_with(&project, &format!("sslmode={mode}&sslrootcert={other}"))
            .replace("postgres@", "postgres:hunter2@");
        let out = project
            .command(&["status"])
            .env("MIG_DATABASE_URL", &url)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{mode}");
        assert!(err.contains("certificate verify failed"), "{mode}: {err}");
        assert!(err.contains("postgres:***@"), "{mode}: {err}");
        assert!(!err.contains("hunter2"), "{mode}: {err}");
    }
}

/// Verifying needs an authority to verify against: the named one, else libpq's default
/// `~/.postgresql/root.crt` (mig's home is the project folder: see `Project::command`).
#[test]
fn verify_full_without_an_authority_says_where_it_looked() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::sqlite("", "");
    let out = project
        .command(&["status"])
        .env("MIG_DATABASE_URL", format!("{url}?sslmode=verify-full"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    let default = project.path().join(".postgresql/root.crt");
    assert!(
        err.contains(&format!(
            "sslmode=verify-full needs the certificate of the authority that signed the \
             server's, and its default file {} does not exist",
            default.display()
        )),
        "{err}"
    );
    assert!(err.contains("sslrootcert=PATH"), "{err}");
}

/// `~/.postgresql/root.crt`, where it exists, is the authority `verify-ca` checks against,
/// and `require` too, as libpq has it for compatibility with its older versions.
#[test]
fn the_authority_defaults_to_home_postgresql_root_crt() {
    let Some(project) = Project::postgres(SETUP, SPEC) else {
        return;
    };
    let folder = project.path().join(".postgresql");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(server_certificate(&project), folder.join("root.crt")).unwrap();
    assert!(run_is_encrypted(
        &project,
        &url_with(&project, "sslmode=verify-ca")
    ));

    let other = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls/other_ca.pem");
    std::fs::copy(other, folder.join("root.crt")).unwrap();
    let out = project
        .command(&["status"])
        .env("MIG_DATABASE_URL", url_with(&project, "sslmode=require"))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("certificate verify failed"), "{err}");
}

/// As libpq 16 has it: the system's authorities sign certificates for anyone's host
/// names, so `sslrootcert=system` means `verify-full` and takes no weaker mode.
#[test]
fn sslrootcert_system_takes_no_mode_weaker_than_verify_full() {
    let project = Project::sqlite("", "");
    for mode in ["verify-ca", "require"] {
        let out = project
            .command(&["status"])
            .env(
                "MIG_DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:1/test?sslmode={mode}&sslrootcert=system"),
            )
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{mode}");
        assert!(
            err.contains(&format!(
                "sslmode={mode} cannot be used with sslrootcert=system"
            )),
            "{err}"
        );
    }
}

/// A server that answers the TLS request with `N` (no TLS), as one with `ssl = off` does:
/// `verify-full`, which reaches the postgres crate as `require`, refuses to go on in clear.
#[test]
fn verify_full_refuses_a_server_without_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Not joined: should mig never connect, the test fails on its output, not hangs.
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut ssl_request = [0u8; 8];
        socket.read_exact(&mut ssl_request).unwrap();
        socket.write_all(b"N").unwrap();
        // Held open until mig hangs up, so its error is about TLS, not a closed socket.
        let _ = socket.read(&mut [0u8; 64]);
    });
    let project = Project::sqlite("", "");
    let out = project
        .command(&["status"])
        .env(
            "MIG_DATABASE_URL",
            format!(
                "postgres://postgres@127.0.0.1:{port}/test?sslmode=verify-full&sslrootcert={}",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls/other_ca.pem")
            ),
        )
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("server does not support TLS"), "{err}");
}
