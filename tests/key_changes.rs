//! A run stopped at its checkpoint, then the table's key changed type (`ALTER COLUMN id
//! TYPE text`): the checkpoint, an integer, no longer tells which rows are done in the key's
//! new order. Resumed, a run once walked keys after '30' in text order, wrote a batch and
//! stopped, and each further resume applied a non-idempotent set again to the same rows.
//! A text key whose collation changed (`ALTER COLUMN id TYPE text COLLATE "C"`, or a SQLite
//! table rebuilt with the key `COLLATE NOCASE`) orders its rows otherwise just the same.
mod common;

use common::{envelope, reply_to, stderr, Project};
use serde_json::json;

#[test]
fn a_run_whose_key_changed_type_since_it_stopped_is_not_resumed() {
    let Some(project) = Project::postgres(INTEGER_KEYS, BANG) else {
        return;
    };
    stop_at_the_35th_row(&project);
    let done = "SELECT count(*) FROM t WHERE v LIKE '%!'";

    project.execute("UPDATE t SET v = 'x' WHERE id = 35; ALTER TABLE t ALTER COLUMN id TYPE text;");
    let out = project.mig(&["run", "bang"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("run 1 of bang stopped at checkpoint 30, taken in the order key `id` had then; the key has changed type since")
            && said.contains("`mig run bang --restart`"),
        "{said}"
    );
    assert_eq!(project.query(done), ["30"], "nothing written");
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE v LIKE '%!!'"),
        ["0"]
    );
}

/// A text key orders as its collation does. Stopped at 'a30' under "en-x-icu" (a01 … a50,
/// then B01 … B50) and resumed under "C" (every 'B' before every 'a'), a run would walk on
/// from 'a30' in bytes and never reach the fifty rows from B01 on.
#[test]
fn a_run_whose_key_changed_collation_since_it_stopped_is_not_resumed() {
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id text COLLATE \"en-x-icu\" PRIMARY KEY, v text CHECK (length(v) < 6));
         INSERT INTO t SELECT c || lpad(i::text, 2, '0'), 'v' || i
         FROM generate_series(1, 50) AS i, unnest(ARRAY['a', 'B']) AS c;
         UPDATE t SET v = 'xxxxx' WHERE id = 'a35';",
        BANG,
    ) else {
        return;
    };
    stop_at_the_35th_row(&project);
    project.execute(
        "UPDATE t SET v = 'x' WHERE id = 'a35'; ALTER TABLE t ALTER COLUMN id TYPE text COLLATE \"C\";",
    );
    refused_to_resume(
        &project,
        "as text COLLATE pg_catalog.\"en-x-icu\"; the key is text COLLATE pg_catalog.\"C\" now",
    );
}

/// The same on SQLite, whose table rebuilt with the key `COLLATE NOCASE` puts every 'a'
/// before every 'B', which `BINARY` put after them.
#[test]
fn a_sqlite_run_whose_key_changed_collation_since_it_stopped_is_not_resumed() {
    let project = Project::sqlite(
        "CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT CHECK (length(v) < 6));
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
         INSERT INTO t SELECT c.c || printf('%02d', n.i), 'v' || n.i
         FROM n, (SELECT 'a' AS c UNION ALL SELECT 'B') AS c;
         UPDATE t SET v = 'xxxxx' WHERE id = 'B35';",
        BANG,
    );
    stop_at_the_35th_row(&project);
    project.execute(
        "UPDATE t SET v = 'x' WHERE id = 'B35';
         CREATE TABLE t2 (id TEXT PRIMARY KEY COLLATE NOCASE, v TEXT CHECK (length(v) < 6));
         INSERT INTO t2 SELECT id, v FROM t; DROP TABLE t; ALTER TABLE t2 RENAME TO t;",
    );
    refused_to_resume(&project, "as COLLATE BINARY; the key is COLLATE NOCASE now");
}

/// Integers of any width order alike: a key widened to bigint under a stopped run is no
/// change to its order, and the run resumes where it stopped.
#[test]
fn a_run_whose_key_was_widened_since_it_stopped_resumes() {
    let Some(project) = Project::postgres(INTEGER_KEYS, BANG) else {
        return;
    };
    stop_at_the_35th_row(&project);
    project
        .execute("UPDATE t SET v = 'x' WHERE id = 35; ALTER TABLE t ALTER COLUMN id TYPE bigint;");
    resumed_to_the_end(&project);
}

/// `varchar` and `text` of one collation order alike too.
#[test]
fn a_run_whose_key_went_from_varchar_to_text_since_it_stopped_resumes() {
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id varchar(10) PRIMARY KEY, v text CHECK (length(v) < 6));
         INSERT INTO t SELECT 'k' || lpad(i::text, 3, '0'), 'v' || i
         FROM generate_series(1, 100) AS i;
         UPDATE t SET v = 'xxxxx' WHERE id = 'k035';",
        BANG,
    ) else {
        return;
    };
    stop_at_the_35th_row(&project);
    project.execute(
        "UPDATE t SET v = 'x' WHERE id = 'k035'; ALTER TABLE t ALTER COLUMN id TYPE text;",
    );
    resumed_to_the_end(&project);
}

/// Keys 1 to 100; the 35th row's value is one `bang` makes too long.
const INTEGER_KEYS: &str = "CREATE TABLE t (id integer PRIMARY KEY, v text CHECK (length(v) < 6));
    INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 100) AS i;
    UPDATE t SET v = 'xxxxx' WHERE id = 35;";

const BANG: &str = "migrate bang on t {\n    set v = v || '!'\n    batch 10\n}\n";

/// Runs `bang`, which stops at the table's 35th row in key order, too long for its CHECK
/// once written: thirty rows done.
fn stop_at_the_35th_row(project: &Project) {
    let out = project.mig(&["run", "bang"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE v LIKE '%!'"),
        ["30"]
    );
}

/// `bang` resumed: every row written once, none twice.
fn resumed_to_the_end(project: &Project) {
    let said = project.mig_ok(&["run", "bang"]);
    assert!(
        said.contains("run 1 (resumed): 100 rows processed, 100 updated"),
        "{said}"
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE v LIKE '%!'"),
        ["100"]
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE v LIKE '%!!'"),
        ["0"]
    );
}

/// `bang` resumed: refused, naming the key's order then and now, and nothing written.
fn refused_to_resume(project: &Project, orders: &str) {
    let out = project.mig(&["run", "bang"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("taken in the order of key `id` ") && said.contains(orders),
        "{said}"
    );
    assert!(said.contains("`mig run bang --restart`"), "{said}");
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE v LIKE '%!'"),
        ["30"]
    );
    let (replies, _) = project.node(&[envelope(json!({
        "type": "migrate", "msg_id": 1, "table": "t", "name": "bang"
    }))]);
    let refusal = reply_to(&replies, 1);
    assert_eq!(refusal["code"], 22, "{refusal}");
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE v LIKE '%!'"),
        ["30"]
    );
}
