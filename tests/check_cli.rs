//! `mig check` through the real binary: the golden diagnostics of tests/data/diagnostics/
//! are what a user sees, exit code 2, and a good spec is summarised with its verdicts.
mod common;

use common::{stderr, stdout};
use std::path::Path;
use std::process::Command;

/// A database holding the tables the golden diagnostics were written against, and a
/// mig.toml pointing at it.
fn schema_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("schema.sqlite")).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, full_name TEXT);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL, status TEXT);
         CREATE TABLE pairs (a INTEGER, b INTEGER, PRIMARY KEY (a, b));
         CREATE TABLE accounts (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, balance INTEGER);
         CREATE TABLE readings (id REAL PRIMARY KEY, serial INTEGER, mood TEXT, doubled INTEGER,
             amount NUMERIC, level INTEGER);",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("mig.toml"),
        "specs = \"specs\"\n[database]\nurl = \"sqlite:schema.sqlite\"\n",
    )
    .unwrap();
    dir
}

fn mig_check(project: &Path, file: &str) -> std::process::Output {
    mig_check_files(project, &[file])
}

fn mig_check_files(project: &Path, files: &[&str]) -> std::process::Output {
    let config = project.join("mig.toml").display().to_string();
    Command::new(common::MIG)
        .args(["--config", &config, "check"])
        .args(files)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MIG_DATABASE_URL")
        .output()
        .unwrap()
}

/// Goldens written against column limits only a PostgreSQL catalog has (enum, uuid and
/// numeric columns), which this SQLite schema cannot hold; `tests/column_limits.rs` runs the
/// binary on such a PostgreSQL table instead.
const POSTGRES_LIMITS: [&str; 2] = ["column_limits.mig", "column_limits_key.mig"];

#[test]
fn every_golden_diagnostic_is_what_the_binary_prints() {
    let project = schema_project();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diagnostics");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "mig") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if POSTGRES_LIMITS.contains(&name.as_str()) {
            continue;
        }
        let file = format!("tests/data/diagnostics/{name}");
        let out = mig_check(project.path(), &file);
        let want = std::fs::read_to_string(path.with_extension("out")).unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}");
        assert_eq!(stderr(&out), want, "{file}");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} golden files");
}

/// The spec named is the repository's, outside the project's specs folder: it checks, and the
/// summary says a run will not see it, where `mig run` of a migration it declares once
/// answered "no migration named" after `mig check` said ok.
#[test]
fn a_good_spec_is_summarised_with_its_idempotence_verdicts() {
    let project = schema_project();
    let out = mig_check(project.path(), "specs/users.mig");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "backfill users.full_name on users\n  \
             set full_name = (first_name || ' ') || last_name: idempotent (does not read `full_name`)\n\
             migrate normalize_email on users\n  \
             set email = lower(trim(email)): idempotent (normalises `email`: applying it again changes nothing)\n\
             validate no_nulls on users\nvalidate email_format on users\n\
             ok: 1 file, 2 migrations, 2 validations, checked against the live schema\n\
             note: specs/users.mig is not in the specs folder {}: mig run, plan, validate and \
             the node do not read it until it is\n",
            project.path().join("specs").display()
        )
    );
}

#[test]
fn without_a_reachable_database_tables_are_not_checked_and_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mig.toml"),
        "[database]\nurl = \"sqlite:missing.sqlite\"\n",
    )
    .unwrap();
    let out = mig_check(dir.path(), "tests/data/diagnostics/schema_unknown.mig");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("note: the database is not reachable"),
        "{}",
        stdout(&out)
    );

    // A CI job that means to check against the live schema asks for it, and fails without.
    let config = dir.path().join("mig.toml").display().to_string();
    let out = Command::new(common::MIG)
        .args(["--config", &config, "check", "--require-database"])
        .arg("tests/data/diagnostics/schema_unknown.mig")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MIG_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with(
            "error: cannot read the database's schema to check the specs against: cannot open \
             database "
        ) && stderr(&out).contains("missing.sqlite: no such file"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("ok:"), "{}", stdout(&out));
}

/// Editors on Windows start a UTF-8 file with a byte-order mark. It is no part of the spec:
/// such a file checks as it would without it, and columns on its first line count from the
/// first character the editor shows. It was once the error "expected `backfill`, ...,
/// found `\u{feff}`", naming a character nobody sees.
#[test]
fn a_spec_starting_with_a_byte_order_mark_is_read_without_it() {
    let project = schema_project();
    let good = project.path().join("bom.mig");
    let users =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/users.mig"))
            .unwrap();
    std::fs::write(&good, format!("\u{feff}{users}")).unwrap();
    let out = mig_check(project.path(), &good.display().to_string());
    assert!(out.status.success(), "{}", stderr(&out));

    let bad = project.path().join("bad.mig");
    std::fs::write(
        &bad,
        "\u{feff}backfill full_name users { set full_name = email }\n",
    )
    .unwrap();
    let out = mig_check(project.path(), &bad.display().to_string());
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: expected `on`, found `users`\n --> {}:1:20\n  |\n\
             1 | backfill full_name users {{ set full_name = email }}\n  |                    ^^^^^\n\n\
             error: could not compile: 1 error in 1 file\n",
            bad.display()
        )
    );
}

/// A tab in the echoed line is shown as spaces, and the caret is placed by the same count,
/// so it sits under the token at fault; the caret once counted a tab as one column while the
/// terminal showed it as several, which put it left of the token. The column in `-->` still
/// counts a tab as one character.
#[test]
fn the_caret_sits_under_the_token_in_a_tab_indented_spec() {
    let project = schema_project();
    let spec = project.path().join("tabs.mig");
    std::fs::write(
        &spec,
        "backfill full_name on users {\n\tset full_name =\temal\n}\n",
    )
    .unwrap();
    let out = mig_check(project.path(), &spec.display().to_string());
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let rendered = stderr(&out);
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(
        lines[1],
        format!(" --> {}:2:18", spec.display()),
        "{rendered}"
    );
    assert_eq!(lines[3], "2 |     set full_name =    emal", "{rendered}");
    assert_eq!(lines[4], "  |                        ^^^^", "{rendered}");
}

/// `mig check FILE` checks FILE as a run will see it, beside the other files of the specs
/// folder, and reports on FILE alone. It once checked FILE on its own: a `check` naming a
/// validation of another file was "unknown validation", and a file named twice was "declared
/// twice" with itself.
#[test]
fn a_named_file_is_checked_in_the_context_of_the_specs_folder() {
    let project = schema_project();
    let specs = project.path().join("specs");
    std::fs::create_dir(&specs).unwrap();
    let a = specs.join("a.mig");
    std::fs::write(
        &a,
        "backfill full_name on users {\n    set full_name = email\n    check v\n}\n",
    )
    .unwrap();
    std::fs::write(
        specs.join("b.mig"),
        "validate v on users {\n    not_null email\n}\n",
    )
    .unwrap();
    let a = a.display().to_string();
    let also_a = specs.join(".").join("a.mig").display().to_string();
    let only_a = "backfill users.full_name on users\n  \
                  set full_name = email: idempotent (does not read `full_name`)\n\
                  ok: 1 file, 1 migration, 0 validations, checked against the live schema\n";
    for files in [&[a.as_str()][..], &[&a, &a, &also_a]] {
        let out = mig_check_files(project.path(), files);
        assert!(out.status.success(), "{files:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), only_a, "{files:?}");
    }

    let outside = project.path().join("v.mig");
    std::fs::write(&outside, "validate v on users {\n    unique email\n}\n").unwrap();
    let out = mig_check(project.path(), &outside.display().to_string());
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).starts_with("error: `v` is declared twice"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        specs.join("c.mig"),
        "validate w on users {\n    not_null emal\n}\n",
    )
    .unwrap();
    let out = mig_check(project.path(), &a);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        "error: the specs folder does not compile: other files have errors (specs/c.mig); \
         `mig check` shows them\n"
    );
    std::fs::remove_file(specs.join("c.mig")).unwrap();

    // A symbolic link in the folder to the named file is a second file, as a run reads it.
    std::os::unix::fs::symlink("a.mig", specs.join("link.mig")).unwrap();
    let out = mig_check(project.path(), &a);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("is declared twice"),
        "{}",
        stderr(&out)
    );
}

/// A folder named to `mig check` stands for the `.mig` files below it. `mig check specs`
/// once failed with "Is a directory".
#[test]
fn a_named_folder_is_checked_as_the_spec_files_below_it() {
    let project = schema_project();
    let specs = project.path().join("specs");
    std::fs::create_dir_all(specs.join("billing")).unwrap();
    std::fs::create_dir(project.path().join("empty")).unwrap();
    std::fs::write(
        specs.join("a.mig"),
        "validate v on users {\n    not_null email\n}\n",
    )
    .unwrap();
    std::fs::write(
        specs.join("billing/b.mig"),
        "backfill full_name on users {\n    set full_name = email\n    check v\n}\n",
    )
    .unwrap();
    let billing = specs.join("billing").display().to_string();
    let out = mig_check(project.path(), &billing);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "backfill users.full_name on users\n  \
         set full_name = email: idempotent (does not read `full_name`)\n\
         ok: 1 file, 1 migration, 0 validations, checked against the live schema\n"
    );

    let whole = mig_check_files(project.path(), &[]);
    let named = mig_check(project.path(), &specs.display().to_string());
    assert!(named.status.success(), "{}", stderr(&named));
    assert_eq!(stdout(&named), stdout(&whole));
    assert!(
        stdout(&named).contains("ok: 2 files, 1 migration, 1 validation"),
        "{}",
        stdout(&named)
    );

    let empty = project.path().join("empty");
    let out = mig_check(project.path(), &empty.display().to_string());
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {} is a folder with no .mig file in it\n",
            empty.display()
        )
    );
}

/// One column of a composite primary key repeats its values, so it is no key to walk by:
/// keyset batches over it skip or repeat the rows that share a value across a batch's end.
/// SQLite marks every column of such a key as part of the primary key, which once passed
/// for a key of its own.
#[test]
fn a_column_of_a_composite_primary_key_is_not_a_declared_key() {
    let project = schema_project();
    let spec = project.path().join("pairs.mig");
    std::fs::write(
        &spec,
        "table pairs key a\nmigrate bump on pairs {\n    set b = b + 1\n}\n",
    )
    .unwrap();
    let out = mig_check(project.path(), &spec.display().to_string());
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "column `a` of `pairs` is not both NOT NULL and unique by an index of its own"
        ),
        "{}",
        stderr(&out)
    );
}

/// Output into a pipe nobody reads any more (`mig check | head -1` once head is done) ends
/// the process quietly, as SIGPIPE ends any command-line tool; it once panicked with a
/// backtrace ("failed printing to stdout: Broken pipe").
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // Its number on Linux, where mig runs.
    const SIGPIPE: i32 = 13;
    let project = schema_project();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(common::MIG)
        .args([
            "--config",
            &project.path().join("mig.toml").display().to_string(),
            "check",
            "specs/users.mig",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MIG_DATABASE_URL")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(SIGPIPE),
        "{:?}: {}",
        out.status,
        stderr(&out)
    );
    assert_eq!(stderr(&out), "");
}
