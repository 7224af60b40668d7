//! Running a server program of the test's own (a PostgreSQL cluster, a connection pooler):
//! as the user `postgres` where the tests run as root, which such servers refuse to run as,
//! on a free port, or skipped with a warning where it cannot run outside CI.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The user and group a server runs as where the tests run as root.
#[derive(Clone, Copy)]
pub struct ServiceUser {
    uid: u32,
    gid: u32,
}

/// None where the tests do not run as root: the server then runs as the tests' user.
pub fn service_user() -> Result<Option<ServiceUser>, String> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return Err(
            "the tests run as root and there is no user postgres to run a server as".into(),
        );
    }
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some(ServiceUser { uid, gid }))
}

pub fn as_user(mut command: Command, user: Option<ServiceUser>) -> Command {
    if let Some(user) = user {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

pub fn give_to(path: &Path, user: Option<ServiceUser>) {
    if let Some(user) = user {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).unwrap();
    }
}

/// Under CI a test that cannot run fails; elsewhere it is skipped with a warning.
pub fn skip<T>(reason: &str) -> Option<T> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(!in_ci, "CI=true but {reason}: the test cannot run");
    eprintln!("warning: {reason}; skipping this test");
    None
}

/// A port nothing listens on now; the server takes it a moment later.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
