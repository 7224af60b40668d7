//! A batch the table refuses (a NOT NULL, CHECK or UNIQUE constraint) is rolled back whole,
//! and the error says that resuming alone would be refused again: fix the rows, or change
//! the spec and restart. It once said only that `mig run` resumes the run.
mod common;

use common::{backends, envelope, reply_to, stderr, stdout, Backend, Project, Setup};
use serde_json::json;

/// Row 5's `a` is NULL, and `b` is NOT NULL.
const TABLE: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER NOT NULL);\n\
     INSERT INTO t VALUES (1, 1, 0), (2, 2, 0), (3, 3, 0), (4, 4, 0), (5, NULL, 0), (6, 6, 0);\n";

#[test]
fn a_batch_the_table_refuses_stops_the_run_saying_it_will_be_refused_again() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    let spec = "migrate copy_a on t {\n    set b = a\n    batch 2\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["run", "copy_a"]);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{}: {said}", backend.name());
        assert!(
            said.contains(
                "batch 3 of run 1 failed and was rolled back; the run stopped at its checkpoint \
                 and the table refused a value the spec computed, as it will again: fix the rows \
                 it names and `mig run copy_a` resumes the run, or change the spec and start a \
                 new run with `mig run copy_a --restart`"
            ),
            "{}: {said}",
            backend.name()
        );
        assert_eq!(
            project.query("SELECT b FROM t ORDER BY id"),
            ["1", "2", "3", "4", "0", "0"],
            "{}: the refused batch was not rolled back whole",
            backend.name()
        );

        let (replies, _) = project.node(&[envelope(
            json!({"type": "migrate", "msg_id": 1, "table": "t", "name": "copy_a"}),
        )]);
        let refusal = reply_to(&replies, 1);
        assert_eq!(refusal["code"], 22, "{}: {refusal}", backend.name());
        assert!(
            refusal["text"]
                .as_str()
                .unwrap()
                .contains("the table refused a value the spec computed"),
            "{}: {refusal}",
            backend.name()
        );

        // Fixing the row lets the run resume where it stopped.
        project.execute("UPDATE t SET a = 5 WHERE id = 5");
        let out = project.mig(&["run", "copy_a"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert_eq!(
            project.query("SELECT b FROM t ORDER BY id"),
            ["1", "2", "3", "4", "5", "6"]
        );
    }
}

/// Six rows whose `b` a backfill fills in three batches of two.
const UNFILLED: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);\n\
     INSERT INTO t VALUES (1, 1, NULL), (2, 2, NULL), (3, 3, NULL), (4, 4, NULL), (5, 5, NULL), \
     (6, 6, NULL);\n";

/// A rollback whose old values the table refuses, by a constraint added after the run (here
/// on rows 3 and 4, the second batch), stops at that batch, keeps what it restored, says
/// why it will stop there again, and goes on once the constraint is gone.
#[test]
fn a_rollback_the_table_refuses_stops_at_that_batch_and_goes_on_later() {
    let setup = Setup {
        sqlite: UNFILLED,
        postgres: UNFILLED,
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 2\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["run", "t.b"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        let (refuse, allow) = match backend {
            Backend::Sqlite => (
                "CREATE TRIGGER keep_b BEFORE UPDATE OF b ON t \
                 WHEN NEW.b IS NULL AND NEW.id IN (3, 4) \
                 BEGIN SELECT RAISE(ABORT, 'b stays set on rows 3 and 4'); END;",
                "DROP TRIGGER keep_b;",
            ),
            Backend::Postgres(_) => (
                "ALTER TABLE t ADD CONSTRAINT keep_b CHECK (id NOT IN (3, 4) OR b IS NOT NULL);",
                "ALTER TABLE t DROP CONSTRAINT keep_b;",
            ),
        };
        project.execute(refuse);
        let out = project.mig(&["rollback", "t.b"]);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{}: {said}", backend.name());
        assert!(
            said.contains(
                "the rollback of run 1 stopped at batch 2, which it left as the run wrote it \
                 (the one later batch is restored: 2 rows); the table refuses the old values, \
                 as it will until the rows or its constraints change (one added since the run, \
                 such as NOT NULL after a backfill?), or until `mig run` with `--restart` gives \
                 the rollback up, keeping the run's values: "
            ) && said.contains("; `mig rollback t.b` goes on from there"),
            "{}: {said}",
            backend.name()
        );
        assert_eq!(
            project.query("SELECT coalesce(b, -1) FROM t ORDER BY id"),
            ["2", "4", "6", "8", "-1", "-1"],
            "{}",
            backend.name()
        );

        project.execute(allow);
        let out = project.mig(&["rollback", "t.b"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert_eq!(
            project.query("SELECT count(*) FROM t WHERE b IS NULL"),
            ["6"],
            "{}",
            backend.name()
        );
    }
}

/// A rollback the table refuses can be given up: `mig run NAME --restart` marks the run
/// `failed`, keeps the rows it had not restored as the run wrote them (and their backup),
/// and starts a new run. Before, the run stayed `rolling_back` and both `mig run` and
/// `mig run --restart` refused, until the constraint went or `_mig_runs` was edited.
#[test]
fn a_rollback_the_table_refuses_can_be_given_up_by_a_restart() {
    let setup = Setup {
        sqlite: UNFILLED,
        postgres: UNFILLED,
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 2\n}\n";
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["run", "t.b"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        project.execute(match backend {
            Backend::Sqlite => {
                "CREATE TRIGGER keep_b BEFORE UPDATE OF b ON t WHEN NEW.b IS NULL \
                 BEGIN SELECT RAISE(ABORT, 'b stays set'); END;"
            }
            Backend::Postgres(_) => "ALTER TABLE t ALTER COLUMN b SET NOT NULL;",
        });
        assert_eq!(
            project.mig(&["rollback", "t.b"]).status.code(),
            Some(4),
            "{name}"
        );

        let out = project.mig(&["run", "t.b"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("or give it up with `mig run t.b --restart`"),
            "{name}: {}",
            stderr(&out)
        );
        let out = project.mig(&["run", "t.b", "--restart"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("6 rows processed, 0 updated"),
            "{name}: {}",
            stdout(&out)
        );
        assert_eq!(
            project.query("SELECT id || ':' || status FROM _mig_runs ORDER BY id"),
            ["1:failed", "2:completed"],
            "{name}"
        );
        assert_eq!(
            project.query("SELECT count(*) FROM t WHERE b = a * 2"),
            ["6"],
            "{name}"
        );
    }
}

/// An expression that fails on a row's values (here `a` is 0 on row 2) fails as it will
/// again, and says so: on PostgreSQL by the server in a pushed-down batch and by mig's
/// interpreter in a read-compute-write one (`lower` takes that path), on SQLite by mig's
/// functions.
#[test]
fn an_expression_failing_on_a_row_says_it_will_fail_again() {
    let table = "CREATE TABLE t (id integer PRIMARY KEY, a integer, b integer, s text);\n\
                 INSERT INTO t VALUES (1, 1, NULL, 'x'), (2, 0, NULL, 'y');\n";
    let setup = Setup {
        sqlite: table,
        postgres: table,
    };
    let spec = "backfill b on t {\n    set b = 100 / a\n}\n\
                migrate measure on t {\n    set b = length(lower(s)) * (100 / a)\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        for migration in ["t.b", "measure"] {
            let out = project.mig(&["run", migration]);
            let said = stderr(&out);
            let which = format!("{} {migration}", backend.name());
            assert_eq!(out.status.code(), Some(4), "{which}: {said}");
            let advice = format!(
                "the spec's expression failed on a row of this batch, as it will again: fix the \
                 row and `mig run {migration}` resumes the run, or change the spec and start a \
                 new run with `mig run {migration} --restart`: "
            );
            assert!(said.contains(&advice), "{which}: {said}");
            assert!(said.contains("division by zero"), "{which}: {said}");
        }
        assert_eq!(
            project.query("SELECT count(*) FROM t WHERE b IS NULL"),
            ["2"]
        );
    }
}

/// A post-check fails, and the rollback it starts is refused: the error names both, so the
/// user learns why the run was being restored.
#[test]
fn a_failed_post_check_whose_rollback_is_refused_names_both() {
    let setup = Setup {
        sqlite: UNFILLED,
        postgres: UNFILLED,
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 2\n    check small\n}\n\
                validate small on t {\n    expect b < 10\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        project.execute(match backend {
            Backend::Sqlite => {
                "CREATE TRIGGER keep_b BEFORE UPDATE OF b ON t WHEN NEW.b IS NULL \
                 BEGIN SELECT RAISE(ABORT, 'b stays set'); END;"
            }
            Backend::Postgres(_) => {
                "ALTER TABLE t ADD CONSTRAINT keep_b CHECK (b IS NOT NULL) NOT VALID;"
            }
        });
        let out = project.mig(&["run", "t.b"]);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{}: {said}", backend.name());
        assert!(
            said.contains(
                "post-check failed for t.b: small failed on 2 rows, the first at key 5; restoring the run from the \
                 backup did not finish: the rollback of run 1 stopped at batch 3"
            ),
            "{}: {said}",
            backend.name()
        );
        let status = stdout(&project.mig(&["status"]));
        assert!(
            status.contains("rolling_back")
                && status
                    .contains("(post-check failed: small failed on 2 rows, the first at key 5)"),
            "{}: {status}",
            backend.name()
        );
    }
}

/// SQLite lets a table declare what a constraint violation does (`ON CONFLICT REPLACE`):
/// with it, a batch that lower-cased an e-mail into another row's deleted that row, and the
/// rollback restored the one it wrote but not the one deleted. mig's writes abort instead.
#[test]
fn a_sqlite_conflict_clause_of_the_table_never_deletes_a_row() {
    let table = "CREATE TABLE users (id INTEGER PRIMARY KEY, \
                 email TEXT UNIQUE ON CONFLICT REPLACE, \
                 name TEXT NOT NULL ON CONFLICT REPLACE DEFAULT 'anon');
                 INSERT INTO users VALUES (1, 'Ann@Example.com', 'Ann'), \
                 (2, 'ann@example.com', 'Bob'), (3, 'bob@example.com', 'Cy');";
    let setup = Setup {
        sqlite: table,
        postgres: "",
    };
    let spec = "migrate lower_email on users {\n    set email = lower(email)\n}\n\n\
                migrate drop_bob on users {\n    set name = nullif(name, 'Bob')\n}\n\n\
                migrate mark on users {\n    set email = email || '#'\n}\n";
    let project = Project::on(&Backend::Sqlite, &setup, spec);
    let everything = "SELECT id || ':' || email || ':' || name FROM users ORDER BY id";
    let before = project.query(everything);

    let out = project.mig(&["run", "lower_email"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("UNIQUE"), "{}", stderr(&out));
    assert_eq!(project.query(everything), before, "a row was deleted");

    let out = project.mig(&["run", "drop_bob"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("NOT NULL"), "{}", stderr(&out));
    assert_eq!(
        project.query(everything),
        before,
        "a NULL became the default"
    );

    // Restoring an old value another row took since would have deleted that row.
    let out = project.mig(&["run", "mark"]);
    assert!(out.status.success(), "{}", stderr(&out));
    project.execute("INSERT INTO users VALUES (4, 'bob@example.com', 'Dee')");
    let out = project.mig(&["rollback", "mark"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT name FROM users WHERE email = 'bob@example.com'"),
        ["Dee"],
        "the application's row was deleted"
    );
}

/// Failures that a resume meets again are told so, as the table's constraints are: a
/// trigger that raises for a row, and a value the column's type cannot hold. Both once said
/// only "`mig run NAME` resumes it". The value is text only on the rows where `s` is not
/// NULL: `set y = s` alone, text on every row, is refused by `mig check`
/// (`tests/type_refusals.rs`).
#[test]
fn a_trigger_that_raises_or_a_value_of_another_type_says_it_will_fail_again() {
    let spec = "migrate copy_a on t {\n    set y = a\n    batch 2\n}\n\n\
                migrate copy_s on t {\n    set y = coalesce(s, a)\n    batch 2\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, s text, y bigint);
                   INSERT INTO t SELECT i, i, 'v' || i, NULL FROM generate_series(1, 6) AS i;
                   CREATE FUNCTION no_four() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN IF NEW.id = 4 THEN RAISE EXCEPTION 'row 4 is frozen'; END IF; RETURN NEW; END $$;
                   CREATE TRIGGER frozen BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION no_four();",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["run", "copy_a"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains(
            "the table refused the batch (a trigger raised, a row-level security policy \
             refused a row, or mig's role lacks a privilege on the table: PostgreSQL's message \
             says which), as it will again"
        ) && said.contains("row 4 is frozen"),
        "{said}"
    );

    let out = project.mig(&["run", "copy_s"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains("the spec's expression failed on a row of this batch, as it will again")
            && said.contains("cannot write text 'v1' into column `y` (bigint)"),
        "{said}"
    );
}

/// `mig plan` tells what `mig run` will do with the migration's stopped run: resume it at
/// its checkpoint, counting only the rows after it, or, under a changed spec, refuse to. It
/// once described a fresh run over the whole table either way.
#[test]
fn plan_names_the_stopped_run_and_what_run_will_do_with_it() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    for backend in backends() {
        let project = Project::on(
            &backend,
            &setup,
            "migrate copy_a on t {\n    set b = a\n    batch 2\n}\n",
        );
        let out = project.mig(&["run", "copy_a"]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        let plan = stdout(&project.mig(&["plan", "copy_a"]));
        assert!(
            plan.contains(
                "run 1 is unfinished at checkpoint 4 (4 rows processed, 4 updated): `mig run` \
                 resumes it there"
            ),
            "{}: {plan}",
            backend.name()
        );
        // The rows and batches left after the checkpoint, not the whole table's.
        assert!(
            plan.contains(
                "6 rows in the table now, 2 after the checkpoint of run 1, which processed 4 \
                 before; this run processes 2 in about 1 batch\n"
            ),
            "{}: {plan}",
            backend.name()
        );
        if let Backend::Postgres(_) = backend {
            // Where PostgreSQL keeps an estimate, the rest is estimated too, not counted.
            project.execute("ANALYZE t");
            let plan = stdout(&project.mig(&["plan", "copy_a"]));
            assert!(
                plan.contains(
                    "about 6 rows in the table now (the database's estimate, not a count), \
                     about 2 after the checkpoint of run 1, which processed 4 before; this run \
                     processes about 2 in about 1 batch\n"
                ),
                "{plan}"
            );
        }
        project.write_spec("migrate copy_a on t {\n    set b = coalesce(a, 0)\n    batch 2\n}\n");
        let plan = stdout(&project.mig(&["plan", "copy_a"]));
        assert!(
            plan.contains(
                "run 1 stopped at checkpoint 4 under another spec: `mig run` refuses to resume \
                 it; `mig run copy_a --restart` abandons it"
            ),
            "{}: {plan}",
            backend.name()
        );
    }
}

/// A row holding text that is not UTF-8 (SQLite stores what it is given) fails its batch
/// again on every resume: the message says so, where it once said that `mig run` resumes it.
#[test]
fn text_that_is_not_utf8_says_it_will_fail_again() {
    let project = Project::sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, label TEXT);
         INSERT INTO t VALUES (1, 'a'), (2, CAST(x'ff41' AS TEXT)), (3, 'c');",
        "migrate mark on t {\n    set label = label || '!'\n}\n",
    );
    let out = project.mig(&["run", "mark"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains("the spec's expression failed on a row of this batch, as it will again")
            && said.contains("not valid UTF-8"),
        "{said}"
    );
}

/// A batch more than PostgreSQL takes at once (SQLSTATE 54000, as a backup record over
/// 1 GB gives) is resumed with fewer rows a batch, which the error says. The error comes
/// from a trigger here: a test cannot afford a gigabyte of backup.
#[test]
fn a_batch_too_large_for_postgresql_says_to_resume_with_smaller_batches() {
    let Some(project) = Project::postgres(
        "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, y bigint);
         INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 6) AS i;
         CREATE FUNCTION too_large() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'array size exceeds the maximum allowed' USING ERRCODE = '54000'; END $$;
         CREATE TRIGGER too_large BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION too_large();",
        "migrate copy_a on t {\n    set y = a\n}\n",
    ) else {
        return;
    };
    let out = project.mig(&["run", "copy_a"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{said}");
    assert!(
        said.contains(
            "the batch was more than PostgreSQL takes at once (a backup record over 1 GB, of \
             large values?), as it will be again: resume it with fewer rows a batch, `mig run \
             copy_a --batch N`"
        ),
        "{said}"
    );
}

/// A validation whose `expect` fails on a row's values (a division by zero) is a definite
/// failure, code 22 through the node on both stores: it reads only, and it fails the same way
/// until the rows change. On SQLite the error once came back as SQLite's own, taken for a
/// failure of unknown outcome (13).
#[test]
fn a_validation_failing_on_a_row_is_a_definite_failure() {
    let setup = Setup {
        sqlite: TABLE,
        postgres: TABLE,
    };
    let spec = "validate ratio on t {\n    expect 10 / b > 0\n}\n";
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &setup, spec);
        let (replies, log) = project.node(&[envelope(json!({
            "type": "validate", "msg_id": 1, "table": "t", "validations": ["ratio"]
        }))]);
        let reply = reply_to(&replies, 1);
        assert_eq!(reply["code"], 22, "{name}: {reply}\n{log}");
        assert!(
            reply["text"]
                .as_str()
                .unwrap_or("")
                .contains("division by zero"),
            "{name}: {reply}"
        );
    }
}
