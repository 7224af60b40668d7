//! Nothing runs that a spec did not declare: hostile names, values and shapes sent through the
//! real node are refused with the right Maelstrom code and a text naming the field, and the
//! database is left exactly as it was. Hostile spec files are refused by `mig check` and
//! `mig run` before anything is written.
mod common;

use common::state::logical_dump;
use common::{envelope, reply_to, stderr, Project};
use serde_json::{json, Value};

const NOT_FOUND: u64 = 20;
const MALFORMED: u64 = 12;
const UNKNOWN_TYPE: u64 = 10;

/// A hostile request body (without `msg_id`), the code it must get, and a word its error
/// text must hold (the field at fault).
struct Case {
    body: Value,
    code: u64,
    names: &'static str,
}

fn case(body: Value, code: u64, names: &'static str) -> Case {
    Case { body, code, names }
}

fn backfill(table: Value, column: Value) -> Value {
    json!({"type": "backfill", "table": table, "column": column})
}

fn backfill_with(field: &str, value: Value) -> Value {
    let mut body = backfill(json!("users"), json!("full_name"));
    body[field] = value;
    body
}

fn validate(table: Value, validations: Value) -> Value {
    json!({"type": "validate", "table": table, "validations": validations})
}

fn migrate_with(field: &str, value: Value) -> Value {
    let mut body = json!({"type": "migrate", "table": "users"});
    body[field] = value;
    body
}

fn plan_kind(kind: Value) -> Value {
    json!({"type": "plan", "kind": kind, "table": "users", "column": "full_name"})
}

fn hostile_names() -> Vec<Case> {
    let long = "u".repeat(10 * 1024);
    vec![
        case(
            backfill(json!("users; DROP TABLE users"), json!("full_name")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!("users\" --"), json!("full_name")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!("users'"), json!("full_name")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!("us\u{0}ers"), json!("full_name")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!("u\u{0455}ers"), json!("full_name")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!(long), json!("full_name")),
            NOT_FOUND,
            "table",
        ),
        case(backfill(json!(""), json!("full_name")), NOT_FOUND, "table"),
        case(
            backfill(json!("users\n"), json!("full_name")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!("sqlite_master"), json!("sql")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!("_mig_runs"), json!("status")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!("main.users"), json!("full_name")),
            NOT_FOUND,
            "table",
        ),
        case(
            backfill(json!("users"), json!("full_name; DELETE FROM users")),
            NOT_FOUND,
            "column",
        ),
        case(
            backfill(json!("users"), json!("full_name\" = 'x' --")),
            NOT_FOUND,
            "column",
        ),
        case(
            backfill(json!("users"), json!("\u{FF26}ULL_NAME")),
            NOT_FOUND,
            "column",
        ),
        case(
            backfill(json!("users"), json!("FULL_NAME")),
            NOT_FOUND,
            "column",
        ),
        case(
            backfill(json!("users"), json!("email")),
            NOT_FOUND,
            "column",
        ),
        case(backfill(json!("users"), json!("*")), NOT_FOUND, "column"),
        case(backfill(json!("users"), json!(long)), NOT_FOUND, "column"),
        case(
            validate(json!("users--"), json!(["no_nulls"])),
            NOT_FOUND,
            "table",
        ),
        case(
            validate(json!("orders"), json!(["no_nulls"])),
            NOT_FOUND,
            "table",
        ),
        case(
            validate(json!("users"), json!(["no_nulls; DROP TABLE users"])),
            NOT_FOUND,
            "validations",
        ),
        case(
            validate(json!("users"), json!(["email_format\" --"])),
            NOT_FOUND,
            "validations",
        ),
        case(
            validate(json!("users"), json!(["n\u{043E}_nulls"])),
            NOT_FOUND,
            "validations",
        ),
        case(
            validate(json!("users"), json!(["no_nulls", "1=1"])),
            NOT_FOUND,
            "validations",
        ),
        case(
            validate(json!("users"), json!([long])),
            NOT_FOUND,
            "validations",
        ),
        case(
            migrate_with("name", json!("normalize_email; DROP TABLE users")),
            NOT_FOUND,
            "name",
        ),
        case(
            migrate_with("name", json!("normalize_email'")),
            NOT_FOUND,
            "name",
        ),
        case(
            migrate_with("name", json!("users.full_name")),
            NOT_FOUND,
            "name",
        ),
        case(migrate_with("name", json!("no_nulls")), NOT_FOUND, "name"),
        case(
            migrate_with("table", json!("users; DROP TABLE users")),
            NOT_FOUND,
            "table",
        ),
        case(
            json!({"type": "rollback", "table": "users; DROP TABLE users", "column": "full_name"}),
            NOT_FOUND,
            "table",
        ),
        case(
            json!({"type": "rollback", "table": "users", "name": "x\" OR 1=1 --"}),
            NOT_FOUND,
            "name",
        ),
        case(
            json!({"type": "plan", "kind": "migrate", "table": "users", "name": "DROP TABLE users"}),
            NOT_FOUND,
            "name",
        ),
    ]
}

fn hostile_numbers() -> Vec<Case> {
    let mut cases = Vec::new();
    for field in ["batch_size", "total_rows"] {
        for value in [
            json!("1000"),
            json!(-1),
            json!(0),
            json!(9_223_372_036_854_775_808u64),
            json!(18_446_744_073_709_551_615u64),
            serde_json::from_str::<Value>("18446744073709551616").unwrap(),
            serde_json::from_str::<Value>("1e3").unwrap(),
            json!(1.5),
            json!(true),
            json!([1000]),
            json!({"$gt": 0}),
        ] {
            cases.push(case(backfill_with(field, value), MALFORMED, field));
        }
    }
    for value in [json!(0), json!(101), json!("3"), json!(-3), json!(2.0)] {
        cases.push(case(migrate_with("runs", value), MALFORMED, "runs"));
    }
    cases
}

fn hostile_shapes() -> Vec<Case> {
    vec![
        case(backfill(json!(123), json!("full_name")), MALFORMED, "table"),
        case(
            backfill(json!(["users"]), json!("full_name")),
            MALFORMED,
            "table",
        ),
        case(
            backfill(json!({"name": "users"}), json!("full_name")),
            MALFORMED,
            "table",
        ),
        case(
            backfill(json!(null), json!("full_name")),
            MALFORMED,
            "table",
        ),
        case(
            backfill(json!(true), json!("full_name")),
            MALFORMED,
            "table",
        ),
        case(
            backfill(json!("users"), json!(["full_name"])),
            MALFORMED,
            "column",
        ),
        case(backfill(json!("users"), json!(7)), MALFORMED, "column"),
        case(
            json!({"type": "backfill", "table": "users"}),
            MALFORMED,
            "column",
        ),
        case(
            json!({"type": "backfill", "column": "full_name"}),
            MALFORMED,
            "table",
        ),
        case(
            backfill_with("sql", json!("DROP TABLE users")),
            MALFORMED,
            "sql",
        ),
        case(backfill_with("where", json!("1=1")), MALFORMED, "where"),
        case(backfill_with("Table", json!("users")), MALFORMED, "Table"),
        case(
            validate(json!("users"), json!("no_nulls")),
            MALFORMED,
            "validations",
        ),
        case(
            validate(json!("users"), json!([1])),
            MALFORMED,
            "validations",
        ),
        case(
            validate(json!("users"), json!([])),
            MALFORMED,
            "validations",
        ),
        case(
            validate(json!("users"), json!([["no_nulls"]])),
            MALFORMED,
            "validations",
        ),
        case(
            validate(json!("users"), json!(null)),
            MALFORMED,
            "validations",
        ),
        case(
            validate(json!(["users"]), json!(["no_nulls"])),
            MALFORMED,
            "table",
        ),
        case(
            json!({"type": "validate", "table": "users"}),
            MALFORMED,
            "validations",
        ),
        case(migrate_with("name", json!(42)), MALFORMED, "name"),
        case(
            migrate_with("name", json!(["normalize_email"])),
            MALFORMED,
            "name",
        ),
        case(
            migrate_with("idempotent", json!("true")),
            MALFORMED,
            "idempotent",
        ),
        case(
            migrate_with("idempotent", json!(1)),
            MALFORMED,
            "idempotent",
        ),
        // Nothing to compare run 1 with: `unchanged` would vouch for what was never checked.
        case(
            migrate_with("idempotent", json!(true)),
            MALFORMED,
            "`runs` of at least 2, got 1",
        ),
        case(
            json!({"type": "migrate", "table": "users", "runs": 1, "idempotent": true}),
            MALFORMED,
            "`runs` of at least 2, got 1",
        ),
        case(migrate_with("column", json!("email")), MALFORMED, "column"),
        case(plan_kind(json!("drop")), MALFORMED, "kind"),
        case(
            plan_kind(json!("backfill; DROP TABLE users")),
            MALFORMED,
            "kind",
        ),
        case(plan_kind(json!("Backfill")), MALFORMED, "kind"),
        case(plan_kind(json!(1)), MALFORMED, "kind"),
        case(plan_kind(json!(["backfill"])), MALFORMED, "kind"),
        case(
            json!({"type": "plan", "table": "users", "column": "full_name"}),
            MALFORMED,
            "kind",
        ),
        case(
            json!({"type": "plan", "kind": "migrate", "table": "users", "runs": "lots"}),
            MALFORMED,
            "runs",
        ),
        case(
            json!({"type": "plan", "kind": "migrate", "table": "users", "idempotent": "yes"}),
            MALFORMED,
            "idempotent",
        ),
        case(
            json!({"type": "plan", "kind": "backfill", "table": "users", "column": "full_name", "name": "x"}),
            MALFORMED,
            "name",
        ),
        case(
            json!({"type": "plan", "kind": "migrate", "table": "users", "column": "email"}),
            MALFORMED,
            "column",
        ),
        case(
            json!({"type": "rollback", "table": "users", "column": "full_name", "name": 5}),
            MALFORMED,
            "name",
        ),
        case(
            json!({"type": "rollback", "table": "users", "column": "full_name", "name": "normalize_email"}),
            MALFORMED,
            "name",
        ),
        case(
            json!({"type": "rollback", "table": "users", "column": 5}),
            MALFORMED,
            "column",
        ),
        case(
            json!({"type": "status", "table": "users"}),
            MALFORMED,
            "table",
        ),
        case(
            json!({"type": "init", "node_id": 5, "node_ids": []}),
            MALFORMED,
            "node_id",
        ),
        case(
            json!({"type": "init", "node_id": "n1", "node_ids": "n1"}),
            MALFORMED,
            "node_ids",
        ),
        case(
            json!({"table": "users", "column": "full_name"}),
            MALFORMED,
            "type",
        ),
        case(json!({"type": 5}), MALFORMED, "type"),
        case(json!({"type": ["backfill"]}), MALFORMED, "type"),
        case(json!({"type": null}), MALFORMED, "type"),
        case(json!({"type": "DROP TABLE users"}), UNKNOWN_TYPE, "type"),
        case(json!({"type": "backfill "}), UNKNOWN_TYPE, "type"),
        case(
            json!({"type": "BACKFILL", "table": "users", "column": "full_name"}),
            UNKNOWN_TYPE,
            "type",
        ),
        case(
            json!({"type": "sql", "query": "DELETE FROM users"}),
            UNKNOWN_TYPE,
            "type",
        ),
    ]
}

#[test]
fn hostile_requests_are_refused_and_change_nothing() {
    let project = Project::demo();
    // A request that may write makes mig's tables first, even one that finds nothing to do.
    let (opened, _) = project.node(&[envelope(
        json!({"type": "rollback", "msg_id": 1, "table": "users", "column": "full_name"}),
    )]);
    assert_eq!(reply_to(&opened, 1)["code"], 22);
    let before = logical_dump(&project.db_path());

    let cases: Vec<Case> = [hostile_names(), hostile_numbers(), hostile_shapes()]
        .into_iter()
        .flatten()
        .collect();
    assert!(cases.len() >= 50, "only {} hostile requests", cases.len());
    let mut lines: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut body = c.body.clone();
            body["msg_id"] = json!(i as u64 + 1);
            envelope(body)
        })
        .collect();
    let last = cases.len() as u64 + 1;
    lines.push(envelope(
        json!({"type": "validate", "msg_id": last, "table": "users", "validations": ["no_nulls"]}),
    ));
    let (replies, _) = project.node(&lines);

    let mut wrong = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let reply = reply_to(&replies, i as u64 + 1);
        let text = reply["text"].as_str().unwrap_or("");
        if reply["type"] != "error" || reply["code"] != c.code || !text.contains(c.names) {
            wrong.push(format!(
                "{}\n  wanted code {} naming `{}`, got {}",
                truncated(&c.body),
                c.code,
                c.names,
                truncated(&reply)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong replies:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(reply_to(&replies, last)["type"], "validation_results");
    assert_eq!(
        logical_dump(&project.db_path()),
        before,
        "a refused request changed the database"
    );
}

fn truncated(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(300) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);
     INSERT INTO t VALUES (1, 1, NULL), (2, 2, NULL), (3, 3, NULL);";

/// Runs `mig check` and `mig run NAME` on `spec`: both must refuse with exit code 2 and a
/// diagnostic holding `expected`, and leave the database as it was.
fn refused_spec(spec: &str, name: &str, expected: &str) {
    let project = Project::sqlite(TABLE, spec);
    let before = logical_dump(&project.db_path());
    for args in [vec!["check"], vec!["run", name]] {
        let out = project.mig(&args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "mig {args:?} on {spec:?}: {err}"
        );
        assert!(err.contains(expected), "mig {args:?} on {spec:?}: {err}");
    }
    let after = logical_dump(&project.db_path());
    let user_rows = |dump: &[String]| -> Vec<String> {
        dump.iter()
            .filter(|l| !l.contains("_mig_"))
            .cloned()
            .collect()
    };
    assert_eq!(
        user_rows(&after),
        user_rows(&before),
        "{spec:?} wrote to the table"
    );
    assert!(
        after.iter().all(|l| !l.starts_with("_mig_runs|")),
        "{spec:?} started a run: {after:?}"
    );
}

#[test]
fn a_column_not_in_the_table_is_refused_before_anything_runs() {
    refused_spec("backfill c on t {\n    set c = a * 2\n}\n", "t.c", "`c`");
    refused_spec(
        "backfill b on t {\n    set b = nope * 2\n}\n",
        "t.b",
        "`nope`",
    );
    refused_spec("backfill b on t2 {\n    set b = a\n}\n", "t2.b", "`t2`");
}

#[test]
fn names_with_quotes_or_sql_are_not_identifiers() {
    refused_spec("backfill \"b\" on t {\n    set b = a\n}\n", "t.b", "error");
    refused_spec("backfill b on t {\n    set \"b\" = a\n}\n", "t.b", "error");
    refused_spec(
        "backfill b on t; DROP TABLE t {\n    set b = a\n}\n",
        "t.b",
        "error",
    );
    refused_spec(
        "backfill b on t {\n    set b = a; DROP TABLE t\n}\n",
        "t.b",
        "error",
    );
    refused_spec(
        "backfill b on t {\n    set b = a -- '\n    where a = 1'; DROP TABLE t; --\n}\n",
        "t.b",
        "error",
    );
    refused_spec(
        "backfill b on \u{0442} {\n    set b = a\n}\n",
        "t.b",
        "error",
    );
}

#[test]
fn text_that_looks_like_sql_is_only_ever_a_value() {
    let project = Project::sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);
         INSERT INTO t VALUES (1, 'x', NULL);",
        "backfill b on t {\n    set b = a || '''); DROP TABLE t; --'\n}\n",
    );
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(project.dump("t"), vec!["1|x|x'); DROP TABLE t; --"]);
}

#[test]
fn hostile_names_and_numbers_on_the_command_line_are_refused() {
    let project = Project::sqlite(
        TABLE,
        "backfill b on t {\n    set b = a * 2\n}\n\nvalidate v on t {\n    not_null a\n}\n",
    );
    // A command that may write makes mig's tables first, even one that finds nothing to do.
    let opened = project.mig(&["rollback", "t.b"]);
    assert_eq!(opened.status.code(), Some(1), "{}", stderr(&opened));
    let before = logical_dump(&project.db_path());
    let long = "t.".to_string() + &"b".repeat(10 * 1024);
    let attempts: Vec<Vec<&str>> = vec![
        vec!["run", "t.b; DROP TABLE t"],
        vec!["run", "t.b\" --"],
        vec!["run", "t.b'"],
        vec!["run", "t.a"],
        vec!["run", "t"],
        vec!["run", ""],
        vec!["run", "t.\u{0431}"],
        vec!["run", &long],
        vec!["run", "t.b", "--batch", "0"],
        vec!["run", "t.b", "--batch", "-1"],
        vec!["run", "t.b", "--batch", "1e3"],
        vec!["run", "t.b", "--batch", "1.5"],
        vec!["run", "t.b", "--limit", "18446744073709551616"],
        vec!["run", "t.b", "--limit", "0"],
        vec!["plan", "sqlite_master.sql"],
        vec!["rollback", "t.b' OR 1=1 --"],
        vec!["validate", "v; DROP TABLE t"],
    ];
    for args in &attempts {
        let out = project.mig(args);
        assert_eq!(out.status.code(), Some(2), "mig {args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "mig {args:?} says why");
    }
    assert_eq!(logical_dump(&project.db_path()), before);
}

/// A `migrate`, `plan` or `rollback` naming only a table runs the table's one `migrate`
/// block; where the table has only a backfill, the answer says so and how a backfill is
/// named (it once said "no backfill or migrate on table", of a table with a backfill).
#[test]
fn a_request_naming_only_a_table_that_has_only_a_backfill_is_told_how_to_name_it() {
    let project = Project::sqlite(
        "CREATE TABLE w (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);",
        "backfill b on w {\n    set b = a\n}\n",
    );
    let (replies, _) = project.node(&[
        envelope(json!({"type": "migrate", "msg_id": 1, "table": "w"})),
        envelope(json!({"type": "rollback", "msg_id": 2, "table": "w"})),
    ]);
    for msg_id in [1, 2] {
        let reply = reply_to(&replies, msg_id);
        assert_eq!(reply["code"], NOT_FOUND, "{reply}");
        assert_eq!(
            reply["text"],
            "table `w` has no `migrate` block, which a request naming only `table` runs \
             (a backfill is named by `table` and `column`) (known: w.b)",
            "{reply}"
        );
    }
}
