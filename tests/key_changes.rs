//! A run stopped at its checkpoint, then the table's key changed type (`ALTER COLUMN id
//! TYPE text`): the checkpoint, an integer, no longer tells which rows are done in the key's
//! new order. Resumed, a run once walked keys after '30' in text order, wrote a batch and
//! stopped, and each further resume applied a non-idempotent set again to the same rows.
mod common;

use common::{stderr, Project};

#[test]
fn a_run_whose_key_changed_type_since_it_stopped_is_not_resumed() {
    let spec = "migrate bang on t {\n    set v = v || '!'\n    batch 10\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id integer PRIMARY KEY, v text CHECK (length(v) < 6));
                   INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 100) AS i;
                   UPDATE t SET v = 'xxxxx' WHERE id = 35;",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["run", "bang"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let done = "SELECT count(*) FROM t WHERE v LIKE '%!'";
    assert_eq!(project.query(done), ["30"]);

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
