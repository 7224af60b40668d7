//! A `.mig` file of the specs folder that cannot be read as a spec is named, with what is
//! wrong with it, and every command that reads the folder exits 2 (bad input). It was once
//! "cannot read specs folder /…/specs: stream did not contain valid UTF-8" with exit 4,
//! naming no file.
mod common;

use common::{stderr, stdout};
use std::path::Path;
use std::process::{Command, Output};

/// A project whose specs folder holds one good spec, on a SQLite table it fits.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("db.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT); INSERT INTO t VALUES (1, NULL);",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("mig.toml"),
        "specs = \"specs\"\n[database]\nurl = \"sqlite:db.sqlite\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("specs")).unwrap();
    std::fs::write(
        dir.path().join("specs/good.mig"),
        "backfill x on t {\n    set x = 'a'\n}\n",
    )
    .unwrap();
    dir
}

fn mig(project: &Path, args: &[&str]) -> Output {
    Command::new(common::MIG)
        .args(args)
        .current_dir(project)
        .env_remove("MIG_DATABASE_URL")
        .output()
        .unwrap()
}

/// `mig check`, `mig plan` and `mig run` each refuse the folder with `want` and exit 2.
fn every_command_refuses(project: &Path, want: &str) {
    for args in [&["check"][..], &["plan", "t.x"], &["run", "t.x"]] {
        let out = mig(project, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), want, "{args:?}");
    }
}

#[test]
fn a_spec_that_is_not_utf8_is_named_at_its_first_bad_byte() {
    let project = project();
    std::fs::write(
        project.path().join("specs/latin1.mig"),
        b"backfill x on t {\n    set x = 'caf\xe9'\n}\n",
    )
    .unwrap();
    every_command_refuses(
        project.path(),
        "error: cannot read spec file specs/latin1.mig:2:17: byte 0xe9 is not UTF-8; \
         mig reads specs as UTF-8 text\n",
    );
}

#[test]
fn a_dangling_symbolic_link_is_named() {
    let project = project();
    std::os::unix::fs::symlink("gone.mig", project.path().join("specs/x.mig")).unwrap();
    every_command_refuses(
        project.path(),
        "error: cannot read spec file specs/x.mig: it is a symbolic link to a file that does \
         not exist\n",
    );
}

#[test]
fn every_unreadable_spec_is_named_at_once() {
    let project = project();
    std::fs::write(project.path().join("specs/a.mig"), b"\xff").unwrap();
    std::os::unix::fs::symlink("gone.mig", project.path().join("specs/b.mig")).unwrap();
    every_command_refuses(
        project.path(),
        "error: cannot read 2 spec files:\n  \
         specs/a.mig:1:1: byte 0xff is not UTF-8; mig reads specs as UTF-8 text\n  \
         specs/b.mig: it is a symbolic link to a file that does not exist\n",
    );
}

/// Only files are specs: a folder named `sub.mig` is walked like any other folder, never
/// read as a spec.
#[test]
fn a_folder_named_like_a_spec_is_no_spec() {
    let project = project();
    std::fs::create_dir(project.path().join("specs/sub.mig")).unwrap();
    let out = mig(project.path(), &["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out)
            .ends_with("ok: 1 file, 1 migration, 0 validations, checked against the live schema\n"),
        "{}",
        stdout(&out)
    );
    let out = mig(project.path(), &["run", "t.x"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
