//! Tables keyed by `uuid` on PostgreSQL: walked in the key's own order (bytes), resumed from a
//! checkpoint kept as text, shared by workers, rolled back; and uuid columns read and written
//! as the text PostgreSQL prints, so a value spelled otherwise is written once, not on every
//! run, and one that is no uuid is refused before anything is written.
mod common;

use common::{stderr, stdout, Project};

/// 300 rows keyed by uuids spread over the whole byte range (md5 of the row number), so the
/// key order is nothing like the insertion order; `legacy_owner` holds each row's owner as
/// text, a third of them in upper case and a third in braces without hyphens.
const TABLE: &str = "CREATE TABLE acct (id uuid PRIMARY KEY, owner uuid, legacy_owner text, \
         balance integer NOT NULL, cents integer);
     INSERT INTO acct (id, legacy_owner, balance)
     SELECT md5('key' || g)::uuid,
            CASE g % 3 WHEN 0 THEN upper(md5('owner' || g)::uuid::text)
                       WHEN 1 THEN '{' || md5('owner' || g) || '}'
                       ELSE md5('owner' || g)::uuid::text END,
            g
     FROM generate_series(1, 300) AS g;";

const SPEC: &str = "backfill cents on acct {\n    set cents = balance * 100\n    batch 7\n    pause 20ms\n}\n\n\
     migrate bump on acct {\n    set balance = balance + 1\n    batch 11\n}\n\n\
     migrate own on acct {\n    set owner = legacy_owner\n    batch 13\n}\n\n\
     migrate raise on acct {\n    set cents = cents + 1\n    where id >= '80000000-0000-0000-0000-000000000000'\n    batch 17\n    check whole_cents\n}\n\n\
     validate whole_cents on acct {\n    expect cents % 100 = 0\n}\n";

fn project() -> Option<Project> {
    Project::postgres(TABLE, SPEC)
}

#[test]
fn a_uuid_keyed_table_is_walked_in_key_order_resumed_and_rolled_back() {
    let Some(project) = project() else {
        return;
    };
    let mut child = project.spawn_mig(&["run", "acct.cents"]);
    project.wait_for_batches(&mut child, 5);
    child.kill().unwrap();
    child.wait().unwrap();
    // Batches of 7 in the key's order: the rows filled are exactly the lowest keys.
    let filled = project.query("SELECT count(*) FROM acct WHERE cents IS NOT NULL");
    let lowest = project.query(&format!(
        "SELECT count(*) FROM (SELECT id FROM acct ORDER BY id LIMIT {}) AS low \
         JOIN acct USING (id) WHERE cents IS NOT NULL",
        filled[0]
    ));
    assert_eq!(lowest, filled, "the walk follows the uuid order");
    assert_eq!(
        project.query(
            "SELECT checkpoint_text = (SELECT max(id::text COLLATE \"C\") FROM acct \
             WHERE cents IS NOT NULL) FROM _mig_runs"
        ),
        ["t"],
        "the checkpoint is the last filled key"
    );

    project.mig_ok(&["run", "acct.cents"]);
    assert_eq!(
        project.query(
            "SELECT count(*) FILTER (WHERE cents = balance * 100) || '/' || count(*) FROM acct"
        ),
        ["300/300"]
    );
    assert_eq!(
        project.query("SELECT processed || '/' || updated FROM _mig_runs"),
        ["300/300"],
        "the resumed run processed each row once"
    );

    let said = project.mig_ok(&["rollback", "acct.cents"]);
    assert!(said.contains("300 rows restored, 0 conflicts"), "{said}");
    assert_eq!(
        project.query("SELECT count(*) FROM acct WHERE cents IS NOT NULL"),
        ["0"]
    );
}

#[test]
fn workers_share_a_uuid_keyed_run_and_process_every_row_once() {
    let Some(project) = project() else {
        return;
    };
    let processes: Vec<_> = (0..3)
        .map(|_| project.spawn_mig(&["run", "bump", "--workers", "2"]))
        .collect();
    for mut process in processes {
        assert!(process.wait().unwrap().success());
    }
    assert_eq!(
        project.query(
            "SELECT sum(balance) - (SELECT sum(g) FROM generate_series(1, 300) AS g) FROM acct"
        ),
        ["300"],
        "each row bumped once"
    );
    assert_eq!(
        project.query("SELECT processed || '/' || updated FROM _mig_runs"),
        ["300/300"]
    );
}

#[test]
fn uuid_values_are_written_as_postgresql_prints_them_once_and_bad_ones_refused() {
    let Some(project) = project() else {
        return;
    };
    let plan = project.mig_ok(&["plan", "own"]);
    assert!(
        plan.contains("path: read-compute-write: `set owner` writes a uuid column"),
        "{plan}"
    );
    let said = project.mig_ok(&["run", "own"]);
    assert!(said.contains("300 rows processed, 300 updated"), "{said}");
    assert_eq!(
        project.query(
            "SELECT count(*) FROM acct WHERE owner = legacy_owner::uuid \
             AND owner::text = lower(owner::text)"
        ),
        ["300"]
    );
    // Compared as PostgreSQL prints them, the upper-case and braced spellings already match.
    let said = project.mig_ok(&["run", "own", "--again"]);
    assert!(said.contains("300 rows processed, 0 updated"), "{said}");

    project.execute(
        "UPDATE acct SET legacy_owner = 'not-a-uuid', owner = NULL \
         WHERE id = (SELECT id FROM acct ORDER BY id LIMIT 1 OFFSET 20)",
    );
    let before = project.dump("acct");
    let out = project.mig(&["run", "own", "--again"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write text 'not-a-uuid' into column `owner` (uuid)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.dump("acct"),
        before,
        "the refused batch wrote nothing"
    );
}

#[test]
fn a_post_check_names_the_lowest_failing_uuid_and_the_run_is_restored() {
    let Some(project) = project() else {
        return;
    };
    project.mig_ok(&["run", "acct.cents"]);
    let before = project.dump("acct");
    let out = project.mig(&["run", "raise"]);
    let said = stderr(&out);
    assert!(!out.status.success(), "{}", stdout(&out));
    let first = project.query(
        "SELECT min(id::text COLLATE \"C\") FROM acct \
         WHERE id >= '80000000-0000-0000-0000-000000000000'",
    );
    let failing = project
        .query("SELECT count(*) FROM acct WHERE id >= '80000000-0000-0000-0000-000000000000'");
    assert!(
        said.contains(&format!(
            "whole_cents failed on {} rows, the first at key '{}'",
            failing[0], first[0]
        )),
        "{said}"
    );
    assert_eq!(project.dump("acct"), before, "rolled back exactly");
}
