//! Columns of the live schema that mig cannot use as a spec asks (generated and identity
//! columns as set targets, types it has no values for, keys it cannot walk) are refused by
//! `mig check` at the spec's line and column, and `mig run` refuses them before it opens a
//! run. They once passed `mig check` and failed the run's first batch, leaving a failed run
//! whose error said to resume it.
mod common;

use common::{backends, envelope, reply_to, stderr, Backend, Project, Setup};
use serde_json::json;

const SQLITE: &str = "CREATE TABLE gen (id INTEGER PRIMARY KEY, a INTEGER, \
     g INTEGER GENERATED ALWAYS AS (a * 2) STORED);\n\
     INSERT INTO gen (id, a) VALUES (1, 1), (2, 2);\n";

const POSTGRES: &str = "CREATE TABLE gen (id integer PRIMARY KEY, a integer, \
     g integer GENERATED ALWAYS AS (a * 2) STORED, \
     serial integer GENERATED ALWAYS AS IDENTITY);\n\
     INSERT INTO gen (id, a) VALUES (1, 1), (2, 2);\n\
     CREATE TABLE doc (id integer PRIMARY KEY, m jsonb, n integer);\n\
     INSERT INTO doc VALUES (1, '\"sad\"', 1);\n\
     CREATE TABLE stamped (id timestamptz PRIMARY KEY, v integer, w integer);\n\
     CREATE TABLE ts (id bigint PRIMARY KEY, amount numeric(10, 2));\n";

/// `mig ARGS` exits with 2 and says each `(error, location)` on stderr; no run was opened.
fn refused(project: &Project, backend: &Backend, args: &[&str], errors: &[(&str, &str)]) {
    let out = project.mig(args);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{}: {said}", backend.name());
    for (error, location) in errors {
        let at = format!("--> specs/test.mig:{location}\n");
        assert!(
            said.contains(error),
            "{}: no `{error}` in:\n{said}",
            backend.name()
        );
        assert!(
            said.contains(&at),
            "{}: no `{at}` in:\n{said}",
            backend.name()
        );
    }
    let state_tables = match backend {
        Backend::Sqlite => "SELECT count(*) FROM sqlite_master WHERE name = '_mig_runs'",
        Backend::Postgres(_) => "SELECT count(*) FROM pg_tables WHERE tablename = '_mig_runs'",
    };
    if project.query(state_tables) == ["1"] {
        assert_eq!(
            project.query("SELECT count(*) FROM _mig_runs"),
            ["0"],
            "a run was opened"
        );
    }
}

#[test]
fn a_generated_column_is_refused_as_a_set_target_before_any_run() {
    let setup = Setup {
        sqlite: SQLITE,
        postgres: POSTGRES,
    };
    let spec = "migrate set_g on gen {\n    set g = a\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let engine = match backend {
            Backend::Sqlite => "SQLite",
            Backend::Postgres(_) => "PostgreSQL",
        };
        let error =
            format!("column `g` of `gen` is a generated column: {engine} computes its values");
        refused(&project, &backend, &["check"], &[(&error, "2:9")]);
        refused(&project, &backend, &["plan", "set_g"], &[(&error, "2:9")]);
        refused(&project, &backend, &["run", "set_g"], &[(&error, "2:9")]);
        assert_eq!(project.query("SELECT g FROM gen ORDER BY id"), ["2", "4"]);
    }
}

#[test]
fn postgres_columns_mig_cannot_read_write_or_walk_are_refused_by_check() {
    let setup = Setup {
        sqlite: SQLITE,
        postgres: POSTGRES,
    };
    let spec = "migrate number on gen {\n    set serial = id\n}\n\
                migrate cheer on doc {\n    set n = n + 1\n    where m = 'sad'\n}\n\
                migrate bump on stamped {\n    set w = v + 1\n}\n\
                migrate double on ts {\n    set amount = amount * 2\n}\n";
    for backend in backends() {
        if let Backend::Sqlite = backend {
            continue;
        }
        let project = Project::on(&backend, &setup, spec);
        refused(
            &project,
            &backend,
            &["check"],
            &[
                (
                    "column `serial` of `gen` is an identity column GENERATED ALWAYS: \
                     PostgreSQL assigns its values",
                    "2:9",
                ),
                (
                    "column `m` of `doc` has type jsonb, which mig cannot read or write \
                     (supported: smallint, integer, bigint, real, double precision, \
                     numeric (read only), text, varchar, char, boolean, bytea, uuid, enums, \
                     and domains over them)",
                    "6:11",
                ),
                (
                    "table `stamped` cannot be walked by its primary key: column `id` has \
                     type timestamptz, which mig cannot read or write",
                    "8:17",
                ),
                (
                    "column `amount` of `ts` is numeric: mig reads numerics as reals and \
                     will not write one back, which could lose precision",
                    "12:9",
                ),
            ],
        );
    }
}

/// The tables of the key tests: `logs` keyed by nothing unique, `tags` by a column NOT NULL
/// and unique by an index of its own.
const LOGS: &str = "CREATE TABLE logs (line TEXT, grp INTEGER, n INTEGER);\n\
     INSERT INTO logs VALUES ('a', 1, NULL), ('b', 1, NULL), ('c', NULL, NULL);\n\
     CREATE TABLE tags (name TEXT NOT NULL UNIQUE, grp INTEGER, n INTEGER);\n\
     INSERT INTO tags VALUES ('a', 1, NULL), ('b', 2, NULL);\n\
     CREATE TABLE parts (line TEXT NOT NULL, grp INTEGER, n INTEGER);\n\
     CREATE UNIQUE INDEX parts_line ON parts (line) WHERE grp > 0;\n";

#[test]
fn a_declared_key_must_be_not_null_and_unique_by_the_schema() {
    let setup = Setup {
        sqlite: LOGS,
        postgres: LOGS,
    };
    // A walk by `grp` took the two rows of group 1 in one batch of 1 (processed 1, updated 2)
    // and never the row whose group is NULL, and called the run complete.
    let bad = "table logs key grp\nbackfill n on logs {\n    set n = 2\n    batch 1\n}\n";
    let good = "table tags key name\nbackfill n on tags {\n    set n = 2\n    batch 1\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, bad);
        let error = "column `grp` of `logs` is not both NOT NULL and unique by an index of its \
                     own: keyset batches over a column that repeats a value or holds NULL would \
                     skip or repeat rows; give it a unique index and NOT NULL, or name a column \
                     that has them";
        refused(&project, &backend, &["check"], &[(error, "1:16")]);
        refused(&project, &backend, &["run", "logs.n"], &[(error, "1:16")]);
        assert_eq!(
            project.query("SELECT count(*) FROM logs WHERE n IS NULL"),
            ["3"]
        );

        // A unique index over part of the table does not make the column a key.
        project.write_spec("table parts key line\nbackfill n on parts {\n    set n = 2\n}\n");
        let error = error.replace("`grp` of `logs`", "`line` of `parts`");
        refused(&project, &backend, &["check"], &[(&error, "1:17")]);

        project.write_spec(good);
        let out = project.mig(&["run", "tags.n"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert_eq!(
            project.query("SELECT count(*) FROM tags WHERE n = 2"),
            ["2"]
        );
    }
}

/// SQLite lets a primary key that is not INTEGER hold NULL unless declared NOT NULL; a walk
/// by it never reaches such rows, and a run once ended "complete" with them untouched.
#[test]
fn a_sqlite_primary_key_holding_null_is_refused_before_the_run_opens() {
    let project = Project::sqlite(
        "CREATE TABLE users (email TEXT PRIMARY KEY, n INTEGER);\n\
         INSERT INTO users VALUES ('a@example.com', NULL), (NULL, NULL), ('b@example.com', NULL);\n",
        "backfill n on users {\n    set n = 1\n}\n",
    );
    let out = project.mig(&["run", "users.n"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "table `users` has 1 rows whose key `email` is NULL, which SQLite allows in a \
             primary key that is not INTEGER or declared NOT NULL: a walk by the key never \
             reaches them"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM users WHERE n IS NULL"),
        ["3"]
    );
    assert_eq!(
        project.query("SELECT count(*) FROM sqlite_master WHERE name = '_mig_runs'"),
        ["0"],
        "a run was opened, or mig's tables made"
    );
    let (replies, _) = project.node(&[envelope(
        json!({"type": "backfill", "msg_id": 1, "table": "users", "column": "n"}),
    )]);
    let refusal = reply_to(&replies, 1);
    assert_eq!(refusal["code"], 22, "{refusal}");

    project.execute("DELETE FROM users WHERE email IS NULL");
    let out = project.mig(&["run", "users.n"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM users WHERE n = 1"),
        ["2"]
    );
}

/// A walk compares keys in the column's collation; a unique index in another collation does
/// not make the column's values unique in it. `accounts` held 'ann' and 'Ann' under a
/// BINARY primary key on a NOCASE column: a run in batches of 1 processed 2 rows and updated
/// 4, and its rollback wrote each row's old note into its case-variant.
#[test]
fn a_sqlite_key_unique_only_in_another_collation_is_refused() {
    let project = Project::sqlite(
        "CREATE TABLE accounts (handle TEXT NOT NULL COLLATE NOCASE, note TEXT, \
         PRIMARY KEY (handle COLLATE BINARY)) WITHOUT ROWID;\n\
         INSERT INTO accounts VALUES ('ann', 'n1'), ('Ann', 'n2'), ('bob', 'n3'), ('BOB', 'n4');\n\
         CREATE TABLE users (id INTEGER PRIMARY KEY, handle TEXT NOT NULL COLLATE NOCASE, \
         note TEXT);\n\
         CREATE UNIQUE INDEX users_handle ON users (handle COLLATE BINARY);\n\
         INSERT INTO users (handle, note) VALUES ('ann', 'n1'), ('Ann', 'n2');\n\
         CREATE TABLE agreed (handle TEXT NOT NULL COLLATE NOCASE PRIMARY KEY, note TEXT);\n\
         INSERT INTO agreed VALUES ('ann', 'n1'), ('Bob', 'n2'), ('cy', 'n3');\n\
         CREATE TABLE strict (k TEXT NOT NULL, note TEXT);\n\
         CREATE UNIQUE INDEX strict_k ON strict (k COLLATE NOCASE);\n\
         INSERT INTO strict VALUES ('ann', 'n1'), ('Bob', 'n2');\n",
        "migrate tag on accounts {\n    set note = 'migrated:' || handle\n    batch 1\n}\n",
    );
    let mismatch = "is compared in collation NOCASE, but the unique index that makes it a key \
                    compares in BINARY: values unique under BINARY can be equal under NOCASE";
    let error =
        format!("table `accounts` cannot be walked by its primary key: column `handle` {mismatch}");
    refused(&project, &Backend::Sqlite, &["check"], &[(&error, "1:16")]);
    refused(
        &project,
        &Backend::Sqlite,
        &["run", "tag"],
        &[(&error, "1:16")],
    );
    assert!(stderr(&project.mig(&["check"])).contains(
        "declare the column COLLATE BINARY, or make it unique under its own collation \
         (CREATE UNIQUE INDEX … (handle COLLATE NOCASE)), or name another key"
    ));
    assert_eq!(
        project
            .query("SELECT group_concat(note, ' ') FROM (SELECT note FROM accounts ORDER BY note)"),
        ["n1 n2 n3 n4"]
    );

    project.write_spec("table users key handle\nbackfill note on users {\n    set note = 'x'\n}\n");
    let error = format!("column `handle` of `users` {mismatch}");
    refused(&project, &Backend::Sqlite, &["check"], &[(&error, "1:17")]);

    // A key unique in its own collation walks and rolls back exactly.
    project.write_spec(
        "migrate tag on agreed {\n    set note = 'migrated:' || handle\n    batch 1\n}\n",
    );
    let before = project.dump("agreed");
    let out = project.mig(&["run", "tag"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM agreed WHERE note = 'migrated:' || handle"),
        ["3"]
    );
    let out = project.mig(&["rollback", "tag"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(project.dump("agreed"), before);

    // Values unique under NOCASE are distinct in bytes: a BINARY column keys a walk
    // whatever collation its unique index compares in.
    project.write_spec(
        "table strict key k
backfill note on strict {
    set note = k
}
",
    );
    let out = project.mig(&["run", "strict.note"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM strict WHERE note = k"),
        ["2"]
    );
}
