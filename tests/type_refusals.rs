//! An operator whose operand's type the live schema tells, and which the interpreter refuses
//! for every value of that type, is an error of `mig check` (exit 2) at its place in the
//! spec; `mig plan`, `mig run` and the node refuse the spec as well, before anything is
//! written, on both stores. `set n = s + 1` over a text column once passed check, and its
//! run failed the first batch with advice to fix the row, though no row was at fault.
mod common;

use common::{backends, envelope, reply_to, stderr, stdout, Backend, Project, Setup};
use serde_json::json;

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT, n INTEGER);\n\
     INSERT INTO t VALUES (1, '5', NULL), (2, 'abc', NULL), (3, NULL, NULL);\n";

fn project(backend: &Backend, spec: &str) -> Project {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    Project::on(backend, &setup, spec)
}

/// Why the store holds only text in `s`, as the help says.
fn text_column_reason(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "`s` is declared `TEXT`, which gives it TEXT affinity in SQLite: it holds only text \
             or blobs"
        }
        Backend::Postgres(_) => "`s` has PostgreSQL type text, which holds only text",
    }
}

#[test]
fn arithmetic_on_a_text_column_is_refused_where_it_stands_by_every_door() {
    let refused = "backfill n on t {\n    set n = s + 1\n}\n";
    for backend in backends() {
        let name = backend.name();
        let project = project(&backend, refused);

        let out = project.mig(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "error: `+` needs numbers; `s` is a text column\n \
                 --> specs/test.mig:2:13\n  |\n2 |     set n = s + 1\n  |             ^^^^^\n  \
                 = help: {}, so `+` fails on every row where its operands are not NULL\n\n\
                 error: could not compile: 1 error in 1 file\n",
                text_column_reason(&backend)
            ),
            "{name}"
        );

        let headline = "`+` needs numbers; `s` is a text column";
        for args in [&["plan", "t.n"][..], &["run", "t.n"]] {
            let out = project.mig(args);
            assert_eq!(out.status.code(), Some(2), "{name}: mig {args:?}");
            assert!(stderr(&out).contains(headline), "{name}: {}", stderr(&out));
            assert!(!stderr(&out).contains("fix the row"), "{name}");
        }
        let (replies, log) = project.node(&[envelope(
            json!({"type": "backfill", "msg_id": 1, "table": "t", "column": "n"}),
        )]);
        let reply = reply_to(&replies, 1);
        assert_eq!(reply["code"], 22, "{name}: {reply}\n{log}");
        assert!(
            reply["text"].as_str().unwrap_or("").contains(headline),
            "{name}: {reply}"
        );
        assert_eq!(
            project.query("SELECT count(*) FROM t WHERE n IS NOT NULL"),
            ["0"],
            "{name}: nothing written"
        );
    }
}

/// What some value of its operands' types computes stays accepted, text functions of the
/// text column and arithmetic on the lengths they give among it.
#[test]
fn a_valid_spec_beside_it_checks_and_runs() {
    let valid = "backfill n on t {
    set n = length(s) + 1
    where s matches '^[0-9a-z]+$'
}
validate short on t {
    expect n < 10 and s || n <> ''
}
";
    for backend in backends() {
        let name = backend.name();
        let project = project(&backend, valid);
        let out = project.mig(&["check"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("ok: 1 file, 1 migration, 1 validation"),
            "{name}: {}",
            stdout(&out)
        );
        let out = project.mig(&["run", "t.n"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(
            project.query("SELECT coalesce(n, -1) FROM t ORDER BY id"),
            ["2", "4", "-1"],
            "{name}"
        );
        let out = project.mig(&["validate", "short"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
}

/// PostgreSQL's integer column takes no text, so `set n = s` fails on every row where `s`
/// is not NULL; SQLite's keeps text it is given, so there the same spec runs.
#[test]
fn a_set_its_column_never_takes_is_refused_where_the_store_refuses_it() {
    let spec = "backfill n on t {\n    set n = s\n}\n";
    for backend in backends() {
        let name = backend.name();
        let project = project(&backend, spec);
        let out = project.mig(&["check"]);
        match backend {
            Backend::Sqlite => {
                assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
                let out = project.mig(&["run", "t.n"]);
                assert!(out.status.success(), "{name}: {}", stderr(&out));
            }
            Backend::Postgres(_) => {
                assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
                assert!(
                    stderr(&out).starts_with(
                        "error: `set n` needs an integer; `s` is a text column\n \
                         --> specs/test.mig:2:13\n"
                    ),
                    "{name}: {}",
                    stderr(&out)
                );
            }
        }
    }
}

/// A SQLite column of INTEGER affinity keeps text it cannot read as a number, so whether
/// `v + 1` fails depends on the row: `mig check` does not refuse it, and a run stops at the
/// row that holds text, which is the row to fix.
#[test]
fn a_column_of_no_certain_type_is_left_to_the_run() {
    let project = Project::sqlite(
        "CREATE TABLE u (id INTEGER PRIMARY KEY, v INTEGER, n INTEGER);\n\
         INSERT INTO u VALUES (1, 5, NULL), (2, 'abc', NULL);\n",
        "backfill n on u {\n    set n = v + 1\n}\n",
    );
    let out = project.mig(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = project.mig(&["run", "u.n"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("fix the row"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot apply `+` to text and integer"),
        "{}",
        stderr(&out)
    );
}

/// A STRICT table's column holds only its declared type and a rowid only integers, so there
/// SQLite is as certain as PostgreSQL: a text function of such an integer is refused. An
/// `ANY` column, a generated column (SQLite checks none, even in a STRICT table) and an
/// `INTEGER PRIMARY KEY DESC` (not the rowid) may hold anything, and are left to the run.
#[test]
fn a_strict_column_and_a_rowid_hold_their_declared_type() {
    let setup = "CREATE TABLE k (id INTEGER PRIMARY KEY, n INT, x ANY, s TEXT, \
                 g INT AS (s)) STRICT;\n\
                 INSERT INTO k (id, n, x) VALUES (1, 2, 'a');\n\
                 CREATE TABLE d (id INTEGER PRIMARY KEY DESC, s TEXT);\n\
                 INSERT INTO d VALUES (1, NULL);\n";
    let refused = [
        (
            "k",
            "lower(n)",
            "argument 1 of `lower` must be text; `n` is an integer column",
            "`n` is declared `INT` in a STRICT table: it holds only integers",
        ),
        (
            "k",
            "upper(id)",
            "argument 1 of `upper` must be text; `id` is an integer column",
            "`id` is the table's INTEGER PRIMARY KEY, its rowid in SQLite: it holds only integers",
        ),
    ];
    for (table, value, headline, reason) in refused {
        let project = Project::sqlite(
            setup,
            &format!("backfill s on {table} {{\n    set s = {value}\n}}\n"),
        );
        let out = project.mig(&["check"]);
        assert_eq!(out.status.code(), Some(2), "{value}: {}", stderr(&out));
        let said = stderr(&out);
        assert!(
            said.starts_with(&format!("error: {headline}\n")),
            "{value}: {said}"
        );
        assert!(
            said.contains(&format!("help: {reason}, so ")),
            "{value}: {said}"
        );
    }
    for (table, value) in [("k", "lower(x) || lower(g)"), ("d", "lower(id)")] {
        let project = Project::sqlite(
            setup,
            &format!("backfill s on {table} {{\n    set s = {value}\n}}\n"),
        );
        let out = project.mig(&["check"]);
        assert_eq!(out.status.code(), Some(0), "{value}: {}", stderr(&out));
    }
}
