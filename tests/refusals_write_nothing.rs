//! A request or command that is refused leaves the database as it found it: no `_mig_*`
//! tables, and on SQLite the journal mode the application chose. Opening the engine once made
//! mig's tables and switched SQLite to WAL before the request or the specs were checked, so
//! a typo in a table name changed the application's database for good, and on PostgreSQL a
//! role without CREATE saw "cannot create mig's state tables" instead of its own typo.
mod common;

use common::{backends, envelope, reply_to, stderr, Backend, Project, Setup};
use serde_json::json;

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, label TEXT);\n\
     INSERT INTO t VALUES (1, 'a', NULL), (2, 'b', NULL);\n";

const SPEC: &str = "backfill label on t {\n    set label = name || '!'\n}\n\
     migrate shout on t {\n    set name = upper(name)\n}\n";

fn project(backend: &Backend) -> Project {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    Project::on(backend, &setup, SPEC)
}

/// mig's own tables in the project's database, and SQLite's journal mode.
fn left_behind(project: &Project) -> (Vec<String>, String) {
    match project.postgres {
        Some(_) => (
            project.query(
                "SELECT schemaname || '.' || tablename FROM pg_tables \
                 WHERE tablename LIKE '\\_mig\\_%' ORDER BY 1",
            ),
            "delete".into(),
        ),
        None => (
            project.query(
                "SELECT name FROM sqlite_master WHERE name LIKE '\\_mig\\_%' ESCAPE '\\' ORDER BY 1",
            ),
            project.query("PRAGMA journal_mode").concat(),
        ),
    }
}

fn untouched(project: &Project, after: &str) {
    let nothing = (Vec::<String>::new(), "delete".to_string());
    assert_eq!(left_behind(project), nothing, "after {after}");
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE label IS NOT NULL"),
        ["0"],
        "after {after}"
    );
}

#[test]
fn refused_node_requests_leave_the_database_as_it_was() {
    for backend in backends() {
        let name = backend.name();
        let project = project(&backend);
        let refused = [
            (
                json!({"type": "backfill", "msg_id": 1, "table": "nope", "column": "label"}),
                20,
            ),
            (
                json!({"type": "backfill", "msg_id": 2, "table": "t", "column": "nope"}),
                20,
            ),
            (
                json!({"type": "migrate", "msg_id": 3, "table": "t", "name": "nope"}),
                20,
            ),
            (
                json!({"type": "rollback", "msg_id": 4, "table": "t", "column": "label"}),
                22,
            ),
            (json!({"type": "status", "msg_id": 5}), 0),
        ];
        let lines: Vec<String> = refused.iter().map(|(b, _)| envelope(b.clone())).collect();
        let (replies, log) = project.node(&lines);
        for (body, code) in &refused {
            let reply = reply_to(&replies, body["msg_id"].as_u64().unwrap());
            if *code == 0 {
                assert_eq!(reply["runs"], json!([]), "{name}: {reply}\n{log}");
            } else {
                assert_eq!(reply["code"], *code, "{name}: {body} → {reply}\n{log}");
            }
            untouched(&project, &format!("{name}: {body}"));
        }

        project.write_spec(&format!(
            "{SPEC}backfill label on nope {{\n    set label = 1\n}}\n"
        ));
        let (replies, log) = project.node(&[envelope(
            json!({"type": "rollback", "msg_id": 6, "table": "t", "column": "label"}),
        )]);
        let reply = reply_to(&replies, 6);
        // The rollback reads past the file that does not compile (a warning in the log),
        // and finds nothing to roll back: refused as such, still writing nothing.
        assert_eq!(reply["code"], 20, "{name}: {reply}\n{log}");
        assert!(
            log.contains("unknown table `nope`; the rollback goes on without it"),
            "{name}: {log}"
        );
        untouched(
            &project,
            &format!("{name}: a rollback under specs that do not compile"),
        );
    }
}

#[test]
fn refused_commands_leave_the_database_as_it_was() {
    for backend in backends() {
        let name = backend.name();
        let project = project(&backend);
        for (args, code) in [
            (&["rollback", "t.label"][..], 1),
            (&["run", "t.nope"], 2),
            (&["status"], 0),
        ] {
            let out = project.mig(args);
            assert_eq!(
                out.status.code(),
                Some(code),
                "{name}: mig {args:?}: {}",
                stderr(&out)
            );
            untouched(&project, &format!("{name}: mig {args:?}"));
        }
        for (spec, says) in [
            (
                "backfill label on t {\n    set label = nmae || '!'\n}\n",
                "nmae",
            ),
            ("backfill nope on t {\n    set nope = name\n}\n", "nope"),
            (
                "backfill label on nope {\n    set label = name\n}\n",
                "nope",
            ),
            (
                "backfill label on t {\n    set label = name ||\n}\n",
                "expected",
            ),
        ] {
            project.write_spec(spec);
            let out = project.mig(&["run", "t.label"]);
            assert_eq!(out.status.code(), Some(2), "{name}: {spec}{}", stderr(&out));
            assert!(
                stderr(&out).contains(says),
                "{name}: {spec}{}",
                stderr(&out)
            );
            untouched(&project, &format!("{name}: mig run under\n{spec}"));
        }
    }
}

/// The typo is what such a role is told, not that mig could not make its tables: refused
/// before anything is written, a run needs no CREATE.
#[test]
fn a_role_without_create_is_told_its_spec_error() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let project = project(&Backend::Postgres(url));
    let db = project.postgres.as_ref().unwrap();
    let role = db.role(
        "nocreate",
        &format!(
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC, {}_nocreate",
            db.name
        ),
    );
    project.write_spec("backfill label on t {\n    set label = nmae || '!'\n}\n");
    let out = project
        .command(&["run", "t.label"])
        .env("MIG_DATABASE_URL", &role.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nmae"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("state tables"), "{}", stderr(&out));
    untouched(&project, "a run by a role without CREATE");
}
