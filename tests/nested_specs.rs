//! Specs kept in folders below the specs folder (`specs/billing/2026_fix.mig`) are specs like
//! any other, for every command and the node. Only the folder's top level was once read,
//! silently: `mig check` said ok over fewer files and `mig run` found no such migration.
mod common;

use common::{envelope, reply_to, stderr, stdout, Project};
use serde_json::json;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, y TEXT);\n\
     INSERT INTO t VALUES (1, NULL, 'A'), (2, NULL, 'B'), (3, NULL, 'c');\n";

/// A validation at the top, a backfill in `billing/` that checks it, a migrate in `users/`.
fn project() -> Project {
    let project = Project::sqlite(TABLE, "validate has_x on t {\n    not_null x\n}\n");
    write(
        &project,
        "billing/2026_fix.mig",
        "backfill x on t {\n    set x = 'a'\n    check has_x\n}\n",
    );
    write(
        &project,
        "users/normalize.mig",
        "migrate normalize_y on t {\n    set y = lower(y)\n}\n",
    );
    project
}

/// Writes `text` to `file`, a path inside the specs folder.
fn write(project: &Project, file: &str, text: &str) {
    let path = project.path().join("specs").join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const ALL_THREE: &str =
    "ok: 3 files, 2 migrations, 1 validation, checked against the live schema\n";

fn checks_all_three(project: &Project) {
    let out = within_a_minute(project.command(&["check"]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).ends_with(ALL_THREE), "{}", stdout(&out));
}

/// Runs `command`, failing the test if it has not ended within a minute.
fn within_a_minute(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("still running after a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn check_reads_the_specs_in_every_folder() {
    let project = project();
    let out = project.mig(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "backfill t.x on t\n  set x = 'a': idempotent (does not read `x`)\n\
             migrate normalize_y on t\n  \
             set y = lower(y): idempotent (normalises `y`: applying it again changes nothing)\n\
             validate has_x on t\n{ALL_THREE}"
        )
    );
}

#[test]
fn a_migration_in_a_folder_plans_runs_validates_and_rolls_back_by_name() {
    let project = project();
    let out = project.mig(&["plan", "t.x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = project.mig(&["run", "t.x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 rows processed, 3 updated"),
        "{}",
        stdout(&out)
    );
    let out = project.mig(&["validate", "has_x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = project.mig(&["rollback", "t.x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(project.query("SELECT count(x) FROM t"), ["0"]);
}

#[test]
fn the_node_finds_a_migration_in_a_folder() {
    let project = project();
    let request = json!({"type": "migrate", "msg_id": 1, "table": "t", "name": "normalize_y"});
    let (replies, log) = project.node(&[envelope(request)]);
    let reply = reply_to(&replies, 1);
    assert_eq!(reply["type"], "migration_complete", "{reply}\n{log}");
    assert_eq!(reply["rows_updated"], 2, "{reply}");
}

/// Named files are checked beside the rest of the specs folder, their own copy in it
/// replaced: the backfill's `check` finds a validation of another folder, and the file is
/// not declared twice with itself.
#[test]
fn a_named_file_in_a_folder_is_checked_beside_the_others() {
    let project = project();
    write(
        &project,
        "checks/x_is_set.mig",
        "validate x_is_set on t {\n    not_null x\n}\n",
    );
    write(
        &project,
        "billing/2026_fix.mig",
        "backfill x on t {\n    set x = 'a'\n    check x_is_set\n}\n",
    );
    let only_the_backfill = "backfill t.x on t\n  set x = 'a': idempotent (does not read `x`)\n\
         ok: 1 file, 1 migration, 0 validations, checked against the live schema\n";
    let absolute = project.path().join("specs/billing/2026_fix.mig");
    for file in ["specs/billing/2026_fix.mig", absolute.to_str().unwrap()] {
        let out = project.mig(&["check", file]);
        assert!(out.status.success(), "{file}: {}", stderr(&out));
        assert_eq!(stdout(&out), only_the_backfill, "{file}");
    }
    let mut from_the_folder = project.command(&["check", "2026_fix.mig"]);
    from_the_folder.current_dir(project.path().join("specs/billing"));
    let out = from_the_folder.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), only_the_backfill);
}

#[test]
fn a_name_declared_in_two_folders_is_an_error_naming_both_files() {
    let project = project();
    write(
        &project,
        "users/2026_fix.mig",
        "backfill x on t {\n    set x = 'b'\n}\n",
    );
    for args in [&["check"][..], &["run", "t.x"]] {
        let out = project.mig(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("`t.x` is declared twice"), "{args:?}: {err}");
        assert!(
            err.contains(" --> specs/users/2026_fix.mig:1:10\n"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("first declared at specs/billing/2026_fix.mig:1:10"),
            "{args:?}: {err}"
        );
    }
}

/// A link to a folder the walk is already inside is not followed: every spec there is read
/// already, and following it would never end.
#[test]
fn a_symbolic_link_loop_ends_and_reads_each_spec_once() {
    let project = project();
    let specs = project.path().join("specs");
    symlink("..", specs.join("billing/up")).unwrap();
    symlink(".", specs.join("users/here")).unwrap();
    symlink(&specs, specs.join("users/root")).unwrap();
    checks_all_three(&project);
}

/// A linked folder from elsewhere is read like one in place.
#[test]
fn a_symbolic_link_to_a_folder_elsewhere_is_followed() {
    let project = project();
    let shared = project.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::rename(
        project.path().join("specs/users/normalize.mig"),
        shared.join("normalize.mig"),
    )
    .unwrap();
    symlink(&shared, project.path().join("specs/shared")).unwrap();
    checks_all_three(&project);
    let out = project.mig(&["run", "normalize_y"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Tools keep their own files in hidden folders; a `.mig` there is nobody's spec.
#[test]
fn hidden_folders_are_skipped() {
    let project = project();
    write(&project, ".git/not_a_spec.mig", "this does not parse\n");
    write(
        &project,
        "billing/.backup/2026_fix.mig",
        "backfill x on t {\n    set x = 'old'\n}\n",
    );
    checks_all_three(&project);
}

/// Whether this process runs as root, whom file modes do not stop reading.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `project`'s command `args`, as `nobody` where this process is root, whom file modes do not
/// stop.
fn as_nobody(project: &Project, args: &[&str]) -> Output {
    let mut command = project.command(args);
    if running_as_root() {
        command.uid(65534).gid(65534);
    }
    command.output().unwrap()
}

/// A folder that cannot be listed may hold specs: it is named, as a file that cannot be
/// read is, rather than left out. A rollback, which needs only the run's record, names it in
/// a warning and goes on.
#[test]
fn a_folder_that_cannot_be_read_is_named() {
    let project = project();
    let out = project.mig(&["run", "t.x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let locked = project.path().join("specs/locked");
    std::fs::create_dir(&locked).unwrap();
    set_mode(&locked, 0o000);
    // The rollback writes the database, and SQLite its journal files beside it.
    set_mode(project.path(), 0o777);
    for entry in std::fs::read_dir(project.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("db.sqlite") {
            set_mode(&path, 0o666);
        }
    }
    let refused: Vec<Output> = [&["check"][..], &["plan", "t.x"], &["run", "t.x"]]
        .iter()
        .map(|args| as_nobody(&project, args))
        .collect();
    let rollback = as_nobody(&project, &["rollback", "t.x"]);
    set_mode(&locked, 0o755);
    set_mode(project.path(), 0o755);

    let cannot_read = "cannot read folder specs/locked: Permission denied (os error 13)";
    for out in refused {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(stderr(&out), format!("error: {cannot_read}\n"));
    }
    assert!(rollback.status.success(), "{}", stderr(&rollback));
    assert!(
        stderr(&rollback).contains(&format!("warning: {cannot_read}; the rollback goes on")),
        "{}",
        stderr(&rollback)
    );
    assert_eq!(project.query("SELECT count(x) FROM t"), ["0"]);
}
