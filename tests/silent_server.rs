//! A PostgreSQL endpoint that takes the connection and never answers (a hung server, a
//! half-open connection, a pgbouncer holding its clients while its pool is exhausted). mig
//! waited for it without end: a command never returned, and the node, which answered
//! `status` on the thread that reads its requests, stopped reading: no `init_ok`, not even an
//! error for a malformed line. Connecting now gives up after the URL's `connect_timeout`
//! (10 s without one), and `status` waits off the reader.
mod common;

use common::{stderr, Project};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Long enough for mig to give up on a 1 s `connect_timeout` on a slow machine; a mig that
/// never gives up fails the test here instead of hanging it.
const GUARD: Duration = Duration::from_secs(30);

/// Accepts every connection and holds it open without writing a byte, for the test's life.
/// Answers the URL mig is to use, with a 1 s `connect_timeout`.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming() {
            held.extend(stream.ok());
        }
    });
    format!("postgres://mig@127.0.0.1:{port}/app?connect_timeout=1")
}

fn project() -> Project {
    Project::sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);",
        "validate filled on t {\n    not_null a\n}\n",
    )
}

/// A child process killed when the test ends, however it ends.
struct Killed(Option<Child>);

impl Killed {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// Its output once it ends, which must be within `GUARD`.
    fn output(mut self, what: &str) -> std::process::Output {
        let started = Instant::now();
        while self.child().try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < GUARD,
                "{what} still waits for the server after {GUARD:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_command_gives_up_on_a_server_that_never_answers() {
    let url = silent_server();
    let project = project();
    for args in [&["status"][..], &["run", "t.a"]] {
        let child = project
            .command(args)
            .env("MIG_DATABASE_URL", &url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Killed(Some(child)).output(&format!("mig {args:?}"));
        assert_eq!(out.status.code(), Some(4), "mig {args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("cannot open database {url}: no answer within 1s")),
            "mig {args:?}: {}",
            stderr(&out)
        );
    }
}

/// As where no server listens, `mig check` checks the specs without the schema, and says why.
#[test]
fn check_checks_the_specs_alone_beside_a_server_that_never_answers() {
    let url = silent_server();
    let project = project();
    let child = project
        .command(&["check"])
        .env("MIG_DATABASE_URL", &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Killed(Some(child)).output("mig check");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        common::stdout(&out).contains(&format!(
            "note: the database is not reachable, so tables and columns are not checked: \
             cannot open database {url}: no answer within 1s"
        )),
        "{}",
        common::stdout(&out)
    );
}

#[test]
fn the_node_reads_on_while_status_waits_for_a_silent_server() {
    let url = silent_server();
    let project = project();
    let mut node = Killed(Some(
        project
            .command(&["node"])
            .env("MIG_DATABASE_URL", &url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let stdout = BufReader::new(node.child().stdout.take().unwrap());
    let (lines, replies) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(serde_json::from_str(&line).unwrap());
        }
    });
    let mut stdin = node.child().stdin.take().unwrap();
    for line in [
        r#"{"type":"status","msg_id":1}"#,
        "not json",
        r#"{"type":"init","msg_id":2,"node_id":"n1","node_ids":["n1"]}"#,
    ] {
        writeln!(stdin, "{line}").unwrap();
    }
    stdin.flush().unwrap();
    let next = |what: &str| {
        replies
            .recv_timeout(GUARD)
            .unwrap_or_else(|_| panic!("no reply {what} within {GUARD:?}"))
    };

    let malformed = next("to the malformed line");
    assert_eq!(malformed["code"], 12, "{malformed}");
    let init = next("to init");
    assert_eq!(init["type"], "init_ok", "{init}");
    assert_eq!(init["in_reply_to"], 2, "{init}");
    let status = next("to status");
    assert_eq!(status["in_reply_to"], 1, "{status}");
    assert_eq!(status["code"], 13, "{status}");
    assert!(
        status["text"]
            .as_str()
            .unwrap()
            .contains(&format!("cannot open database {url}: no answer within 1s")),
        "{status}"
    );
}
