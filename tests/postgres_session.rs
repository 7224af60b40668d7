//! What a batch transaction on PostgreSQL runs under, seen from inside it, and what the
//! session settings of a database cannot change about a run.
mod common;

use common::{stderr, stdout, Project};

/// A trigger on the migrated table records the settings its UPDATE ran under: no statement
/// of a batch is compiled (`jit`), whatever the database's default. A foreign key cascading
/// into a table without an index otherwise paid a compilation for every row (README).
#[test]
fn a_batch_compiles_no_statement_whatever_the_database_sets() {
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 10\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);
                   INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 50) AS i;
                   CREATE TABLE seen (jit text);
                   CREATE FUNCTION note_settings() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN INSERT INTO seen VALUES (current_setting('jit')); RETURN NEW; END $$;
                   CREATE TRIGGER note BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION note_settings();",
        spec,
    ) else {
        return;
    };
    project.set_database_default("jit", "on");
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT jit || ' ' || count(*) FROM seen GROUP BY jit"),
        ["off 50"]
    );
}

/// Backups keep old values as text. A database whose sessions print floats with fewer
/// digits (`extra_float_digits = 0`) had every real and double restored rounded
/// (`0.43333334` came back as `0.433333`).
#[test]
fn floats_are_restored_exactly_whatever_digits_the_database_prints() {
    let spec = "migrate halve on f {\n    set x = x / 2\n    set y = y / 2\n    batch 50\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE f (id bigint PRIMARY KEY, x double precision, y real,
                       x0 double precision, y0 real);
                   INSERT INTO f SELECT i, i / 3.0, i / 7.0, i / 3.0, i / 7.0
                   FROM generate_series(1, 200) AS i;",
        spec,
    ) else {
        return;
    };
    project.set_database_default("extra_float_digits", "0");
    let out = project.mig(&["run", "halve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = project.mig(&["rollback", "halve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project
            .query("SELECT count(*) FROM f WHERE x IS DISTINCT FROM x0 OR y IS DISTINCT FROM y0"),
        ["0"]
    );
}

/// A bytea's text form follows `bytea_output`. Changed between a run and its rollback (here
/// by the database's default), every restored row looked changed by the application: "0
/// rows restored, 5 conflicts", and the backup gone.
#[test]
fn bytea_is_restored_whatever_output_the_database_chooses_between_run_and_rollback() {
    let spec = "backfill v on b {\n    set v = src\n    batch 2\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE b (id bigint PRIMARY KEY, v bytea, src bytea, v0 bytea);
                   INSERT INTO b SELECT i, NULL, decode(lpad(to_hex(i), 4, '0') || 'ff00', 'hex'), NULL
                   FROM generate_series(1, 5) AS i;",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["run", "b.v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    project.set_database_default("bytea_output", "escape");
    let out = project.mig(&["rollback", "b.v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("5 rows restored, 0 conflicts"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM b WHERE v IS NOT NULL"),
        ["0"]
    );
}

/// A column in a case-insensitive collation: PostgreSQL's `=` holds 'ABC' equal to 'abc',
/// mig compares bytes as its interpreter does. The run skipped a change of case alone, and
/// the rollback took an application's change of case for the run's value and overwrote it.
#[test]
fn a_case_insensitive_column_is_compared_by_bytes_in_run_and_rollback() {
    let spec = "migrate copy on t {\n    set code = src\n}\n";
    let Some(project) = Project::postgres(
        "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
                   CREATE TABLE t (id bigint PRIMARY KEY, code text COLLATE ci, src text);
                   INSERT INTO t VALUES (1, 'abc', 'ABC'), (2, 'old', 'New');",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["run", "copy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT code FROM t ORDER BY id"),
        ["ABC", "New"]
    );
    project.execute("UPDATE t SET code = 'NEW' WHERE id = 2");
    let out = project.mig(&["rollback", "copy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 row restored, 1 conflict in "),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        project.query("SELECT code FROM t ORDER BY id"),
        ["abc", "NEW"]
    );
}

/// `replace` searches bytes, as the interpreter does: on a column in a nondeterministic
/// collation PostgreSQL refused the pushed-down search ("nondeterministic collations are not
/// supported for substring searches") and every batch failed.
#[test]
fn replace_on_a_case_insensitive_column_searches_bytes() {
    let spec = "backfill out on t {\n    set out = replace(code, 'a', 'z')\n}\n";
    let Some(project) = Project::postgres(
        "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
                   CREATE TABLE t (id bigint PRIMARY KEY, code text COLLATE ci, out text);
                   INSERT INTO t VALUES (1, 'aAa', NULL), (2, 'bab', NULL);",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["plan", "t.out"]);
    assert!(stdout(&out).contains("path: pushdown"), "{}", stdout(&out));
    let out = project.mig(&["run", "t.out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT out FROM t ORDER BY id"),
        ["zAz", "bzb"]
    );
}

/// A BEFORE UPDATE trigger that rewrites the set column rewrites the old values too as a
/// rollback writes them back: the rollback says how many restored rows hold another value
/// than their backup, where it once counted them restored and said nothing.
#[test]
fn a_rollback_says_when_a_trigger_rewrote_the_values_it_restored() {
    let spec = "migrate tidy on t {\n    set code = trim(code)\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id bigint PRIMARY KEY, code text);
                   INSERT INTO t SELECT i, ' Code' || i || ' ' FROM generate_series(1, 5) AS i;
                   CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN NEW.code := upper(NEW.code); RETURN NEW; END $$;
                   CREATE TRIGGER shout BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION shout();",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["run", "tidy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = project.mig(&["rollback", "tidy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("5 rows restored, 0 conflicts in ")
            && stdout(&out).contains(
                "\n  5 restored rows hold another value than their backup: a trigger of the table \
             rewrote the old values as they were written back"
            ),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        project.query("SELECT code FROM t WHERE id = 1"),
        [" CODE1 "]
    );
}

/// Production roles often run under a `statement_timeout`, which reaches mig's statements.
/// A batch that outlasts it (here a trigger sleeps on one row) is rolled back whole, and
/// the error says where the timeout comes from and what to change, on the command line and
/// from the node; a longer timeout in the URL's options lets the run resume and finish.
#[test]
fn a_batch_cut_short_by_statement_timeout_writes_nothing_and_says_what_to_change() {
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 10\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);
                   INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 50) AS i;
                   CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN IF NEW.id = 25 THEN PERFORM pg_sleep(0.5); END IF; RETURN NEW; END $$;
                   CREATE TRIGGER slow BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION slow_row();",
        spec,
    ) else {
        return;
    };
    project.set_database_default("statement_timeout", "200");
    let said = "the statement_timeout of mig's session ran out";
    let out = project.mig(&["run", "t.b"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("canceling statement due to statement timeout")
            && stderr(&out).contains(said)
            && stderr(&out).contains("options=-c%20statement_timeout%3D1h"),
        "{}",
        stderr(&out)
    );
    let written = "SELECT count(*) FILTER (WHERE b IS NOT NULL) || '|' || \
                   (SELECT coalesce(max(checkpoint_int), 0) FROM _mig_runs) FROM t";
    assert_eq!(project.query(written), ["20|20"]);

    let (replies, _) = project.node(&[common::envelope(serde_json::json!({
        "type": "backfill", "msg_id": 1, "table": "t", "column": "b"
    }))]);
    let reply = &replies[0]["body"];
    assert_eq!(reply["code"], 13, "{reply}");
    assert!(
        reply["text"].as_str().is_some_and(|t| t.contains(said)),
        "{reply}"
    );
    assert_eq!(project.query(written), ["20|20"]);

    let url = project.postgres.as_ref().unwrap().url.clone();
    let toml = std::fs::read_to_string(project.path().join("mig.toml")).unwrap();
    let longer = format!("{url}?options=-c%20statement_timeout%3D1h");
    std::fs::write(
        project.path().join("mig.toml"),
        toml.replace(&format!("\"{url}\""), &format!("\"{longer}\"")),
    )
    .unwrap();
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("50 rows processed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(project.query(written), ["50|50"]);
}

/// A database whose transactions default to SERIALIZABLE (or REPEATABLE READ) ran mig's
/// batches under it, and each failed on any row the application had updated since it began:
/// beside a busy application a run gave up after its retries. A trigger records the
/// isolation each UPDATE of a run and of its rollback ran under: READ COMMITTED, which the
/// batch statements are written for.
#[test]
fn batches_and_rollback_run_read_committed_whatever_the_database_defaults_to() {
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 10\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);
                   INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 50) AS i;
                   CREATE TABLE seen (isolation text);
                   CREATE FUNCTION note_isolation() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN INSERT INTO seen VALUES (current_setting('transaction_isolation')); RETURN NEW; END $$;
                   CREATE TRIGGER note BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION note_isolation();",
        spec,
    ) else {
        return;
    };
    project.set_database_default("default_transaction_isolation", "serializable");
    let seen = "SELECT isolation || ' ' || count(*) FROM seen GROUP BY isolation";
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(project.query(seen), ["read committed 50"]);
    let out = project.mig(&["rollback", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(project.query(seen), ["read committed 100"]);
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["0"]
    );
}

/// mig leaves its own `_mig_*` tables out of the schema it checks specs against. Its test of
/// the name was a LIKE pattern with backslash escapes, which a database running with
/// `standard_conforming_strings = off` reads as `_mig_%`, any character then `mig`: a table
/// named `amigos` was unknown to every spec.
#[test]
fn a_table_whose_name_holds_mig_is_known_whatever_the_database_does_with_backslashes() {
    let spec = "backfill b on amigos {\n    set b = a * 2\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE amigos (id bigint PRIMARY KEY, a bigint, b bigint);
                   INSERT INTO amigos SELECT i, i, NULL FROM generate_series(1, 20) AS i;",
        spec,
    ) else {
        return;
    };
    project.set_database_default("standard_conforming_strings", "off");
    let out = project.mig(&["run", "amigos.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM amigos WHERE b = a * 2"),
        ["20"]
    );
}

/// An application deploying an `ALTER TABLE … TYPE` of the migrated table's key while a
/// run pauses between batches: the statements mig prepared for the table can no longer run, and
/// PostgreSQL's own words ("cached plan must not change result type") named neither cause
/// nor remedy. The batch writes nothing, the error says what happened, and `mig run`
/// resumes the run on the altered table, as the node's next request does.
#[test]
fn a_column_type_altered_under_a_run_stops_it_cleanly_and_says_so() {
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 10\n    pause 500ms\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id integer PRIMARY KEY, a integer, b integer);
                   INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 50) AS i;",
        spec,
    ) else {
        return;
    };
    let mut run = project
        .command(&["run", "t.b"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // After the second batch: the first ran a statement of its own (no lower bound), the
    // second prepared the one every later batch runs.
    project.wait_for_batches(&mut run, 2);
    project.execute("ALTER TABLE t ALTER COLUMN id TYPE bigint");
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("an ALTER TABLE changed the type of a column mig reads or writes"),
        "{}",
        stderr(&out)
    );
    let written = "SELECT count(*) FILTER (WHERE b = a * 2) || '|' || count(*) FILTER (WHERE b IS NULL) || '|' || \
                   (SELECT processed FROM _mig_runs) FROM t";
    let stopped = project.query(written);
    let [filled, _, processed] = stopped[0].split('|').collect::<Vec<_>>()[..] else {
        panic!("{stopped:?}");
    };
    assert_eq!(filled, processed, "{stopped:?}");
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(project.query(written), ["50|0|50"]);

    // The node prepares its statements for each request anew: one that runs after an
    // ALTER of the key, on the node that ran the request before it, is not refused.
    let mut node = common::LiveNode::start(&project);
    let backfill = |msg_id: u64| {
        common::envelope(serde_json::json!({
            "type": "backfill", "msg_id": msg_id, "table": "t", "column": "b", "batch_size": 10
        }))
    };
    node.send(backfill(1).as_bytes());
    assert_eq!(node.reply()["body"]["type"], "backfill_complete");
    project.execute("ALTER TABLE t ALTER COLUMN id TYPE integer");
    node.send(backfill(2).as_bytes());
    let reply = node.reply();
    assert_eq!(reply["body"]["type"], "backfill_complete", "{reply}");
    node.finish();
}

/// `mig plan` names a statement timeout the database sets for mig's session, since it
/// cancels a batch or a post-check that outlasts it; where none is set it says nothing.
#[test]
fn the_plan_names_the_statement_timeout_the_database_sets() {
    let spec = "backfill b on t {\n    set b = a * 2\n    check filled\n}\n\
                validate filled on t {\n    not_null b\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["plan", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("statement timeout"),
        "{}",
        stdout(&out)
    );
    project.set_database_default("statement_timeout", "'45s'");
    let out = project.mig(&["plan", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "  statement timeout: 45s, set for mig's session (by its role, its database or its \
             URL): a batch that takes longer fails and stops the run, and each post-check reads \
             every row up to the checkpoint in one statement"
        ),
        "{}",
        stdout(&out)
    );
}

/// A role outside pg_read_all_stats sees no state of other roles' sessions, which `yield`
/// then counts as busy whatever they do: `mig plan` says so where the spec yields, and
/// only for such a role.
#[test]
fn the_plan_of_a_yielding_run_says_when_mig_cannot_see_other_roles_sessions() {
    let spec = "backfill b on t {\n    set b = a * 2\n    yield 2ms\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);",
        spec,
    ) else {
        return;
    };
    let unseen = "yield: mig's role is neither a superuser nor a member of pg_read_all_stats";
    let out = project.mig(&["plan", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains(unseen), "{}", stdout(&out));
    let role = project.postgres.as_ref().unwrap().role("plain", "");
    let out = project
        .command(&["plan", "t.b"])
        .env("MIG_DATABASE_URL", &role.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(unseen), "{}", stdout(&out));
}
