//! Running migrations through the CLI on tables other than the demo's, on every store.
mod common;

use common::{backends, stderr, stdout, Backend, Project, Setup};

const ACCOUNTS: Setup = Setup {
    sqlite: "
CREATE TABLE accounts (code TEXT PRIMARY KEY, name TEXT, email TEXT, tier TEXT, score INTEGER);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
INSERT INTO accounts
SELECT printf('acct-%04d', i), 'Name ' || i, '  User' || i || '@Mail.example ',
       CASE WHEN i % 5 = 0 THEN 'gold' ELSE NULL END, i
FROM n;",
    postgres: "
CREATE TABLE accounts (code TEXT PRIMARY KEY, name TEXT, email TEXT, tier TEXT, score INTEGER);
INSERT INTO accounts
SELECT format('acct-%s', lpad(i::text, 4, '0')), 'Name ' || i, '  User' || i || '@Mail.example ',
       CASE WHEN i % 5 = 0 THEN 'gold' ELSE NULL END, i
FROM generate_series(1, 250) AS i;",
};

/// Runs `test` on every store, naming the store when it fails.
fn on_every_store(test: impl Fn(&Backend)) {
    for backend in backends() {
        eprintln!("store: {}", backend.name());
        test(&backend);
    }
}

const SPEC: &str = "
migrate tidy_accounts on accounts {
    set email = lower(trim(email))
    set tier = coalesce(tier, 'basic')
    where score > 10
    batch 40
    check tiers_set
}

validate tiers_set on accounts {
    expect tier in ('gold', 'basic')
}

validate emails_lower on accounts {
    expect email = lower(email)
    unique email
}
";

#[test]
fn text_keys_filters_and_several_sets() {
    on_every_store(text_keys_filters_and_several_sets_on);
}

fn text_keys_filters_and_several_sets_on(backend: &Backend) {
    let project = Project::on(backend, &ACCOUNTS, SPEC);
    let out = project.mig(&["run", "tidy_accounts"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("250 rows processed, 240 updated, 7 batches"),
        "{}",
        stdout(&out)
    );
    let untouched = project.query("SELECT count(*) FROM accounts WHERE email LIKE '  User%'");
    assert_eq!(untouched, ["10"], "rows with score <= 10 stay as they were");
    let basic = project.query("SELECT count(*) FROM accounts WHERE tier = 'basic'");
    assert_eq!(basic, ["192"]);
    let again = project.mig(&["run", "tidy_accounts"]);
    assert!(
        stdout(&again).contains("250 rows processed, 0 updated"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn limit_takes_the_lowest_keys_first() {
    on_every_store(limit_takes_the_lowest_keys_first_on);
}

fn limit_takes_the_lowest_keys_first_on(backend: &Backend) {
    let project = Project::on(backend, &ACCOUNTS, SPEC);
    let out = project.mig(&["run", "tidy_accounts", "--limit", "100", "--batch", "30"]);
    assert!(
        stdout(&out).contains("100 rows processed"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let highest_done = project.query("SELECT max(code) FROM accounts WHERE tier = 'basic'");
    assert_eq!(
        highest_done,
        ["acct-0099"],
        "batches of 30, 30, 30, 10 end at the 100th key"
    );
}

#[test]
fn failed_post_check_restores_the_rows_and_exits_1() {
    on_every_store(failed_post_check_restores_the_rows_and_exits_1_on);
}

fn failed_post_check_restores_the_rows_and_exits_1_on(backend: &Backend) {
    let spec = SPEC.replace("coalesce(tier, 'basic')", "coalesce(tier, 'bronze')");
    let project = Project::on(backend, &ACCOUNTS, &spec);
    let before = project.dump("accounts");
    let out = project.mig(&["run", "tidy_accounts"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tiers_set failed on 192 rows"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.dump("accounts"),
        before,
        "rollback restores exactly"
    );
    let status = project.mig(&["status"]);
    assert!(stdout(&status).contains("failed"), "{}", stdout(&status));
}

#[test]
fn rollback_leaves_rows_the_application_changed_since() {
    on_every_store(rollback_leaves_rows_the_application_changed_since_on);
}

fn rollback_leaves_rows_the_application_changed_since_on(backend: &Backend) {
    let project = Project::on(backend, &ACCOUNTS, SPEC);
    let before = project.dump("accounts");
    assert!(project.mig(&["run", "tidy_accounts"]).status.success());
    project.execute(
        "UPDATE accounts SET email = 'changed@app.example' WHERE code IN ('acct-0050', 'acct-0200')",
    );
    let out = project.mig(&["rollback", "tidy_accounts"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("238 rows restored, 2 conflicts"), "{text}");
    assert!(text.contains("'acct-0050', 'acct-0200'"), "{text}");
    let after = project.dump("accounts");
    let changed: Vec<_> = before.iter().zip(&after).filter(|(b, a)| b != a).collect();
    assert_eq!(
        changed.len(),
        2,
        "only the two rows the application changed differ"
    );
    assert!(after.iter().any(|r| r.contains("changed@app.example")));
}

#[test]
fn rollback_restores_several_pushed_down_sets_exactly() {
    on_every_store(rollback_restores_several_pushed_down_sets_exactly_on);
}

fn rollback_restores_several_pushed_down_sets_exactly_on(backend: &Backend) {
    let spec =
        "migrate bump on accounts {\n    set score = score + 1\n    set tier = tier || '+'\n    \
                where score > 10\n    batch 40\n}\n";
    let project = Project::on(backend, &ACCOUNTS, spec);
    let before = project.dump("accounts");
    let out = project.mig(&["run", "bump"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("250 rows processed, 240 updated"),
        "{}",
        stdout(&out)
    );
    if matches!(backend, Backend::Postgres(_)) {
        let plan = project.mig(&["plan", "bump"]);
        assert!(
            stdout(&plan).contains("path: pushdown"),
            "{}",
            stdout(&plan)
        );
    }
    let out = project.mig(&["rollback", "bump"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("240 rows restored, 0 conflicts"),
        "{}",
        stdout(&out)
    );
    assert!(project.dump("accounts") == before, "tables differ");
}

#[test]
fn validate_counts_failed_rows_per_validation() {
    on_every_store(validate_counts_failed_rows_per_validation_on);
}

fn validate_counts_failed_rows_per_validation_on(backend: &Backend) {
    let project = Project::on(backend, &ACCOUNTS, SPEC);
    let out = project.mig(&["validate", "emails_lower", "tiers_set"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("emails_lower: FAILED (250 failed rows, the first at key 'acct-0001')"),
        "{text}"
    );
    assert!(
        text.contains("tiers_set: passed (0 failed rows)"),
        "a null tier is unknown, and expect passes unknown as an SQL CHECK does: {text}"
    );
}

/// A validation name mistyped is answered, as a migration's is, with the names known; the
/// error named only the typo.
#[test]
fn unknown_validation_lists_the_known_ones() {
    let project = Project::sqlite(ACCOUNTS.sqlite, SPEC);
    let out = project.mig(&["validate", "emails_lowr"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: no validation named `emails_lowr` (known: tiers_set, emails_lower)\n"
    );
}

#[test]
fn unknown_migration_is_bad_input() {
    on_every_store(unknown_migration_is_bad_input_on);
}

fn unknown_migration_is_bad_input_on(backend: &Backend) {
    let project = Project::on(backend, &ACCOUNTS, SPEC);
    let out = project.mig(&["run", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no migration named `nope` (known: tidy_accounts)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_case_only_change_is_written_even_under_a_nocase_column() {
    let project = Project::sqlite(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT COLLATE NOCASE);
         INSERT INTO people VALUES (1, 'Ada@Example.COM'), (2, 'bob@example.com'), (3, NULL);",
        "migrate lower_email on people {\n    set email = lower(email)\n}\n",
    );
    let before = project.dump("people");
    let out = project.mig(&["run", "lower_email"]);
    assert!(
        stdout(&out).contains("3 rows processed, 1 updated"),
        "a NOCASE comparison would call 'ada@example.com' unchanged: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let rollback = project.mig(&["rollback", "lower_email"]);
    assert!(
        stdout(&rollback).contains("1 row restored, 0 conflicts"),
        "{}",
        stdout(&rollback)
    );
    assert_eq!(project.dump("people"), before);
}

/// `unique` finds duplicates in bytes, as `=` in an `expect` compares, whatever the column's
/// collation: under NOCASE (SQLite) or a case-insensitive ICU collation (PostgreSQL) 'Abc'
/// and 'aBC' counted as one value, and a run's post-check failed and restored the run.
#[test]
fn unique_counts_values_by_bytes_under_a_case_insensitive_collation() {
    let setup = Setup {
        sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT COLLATE NOCASE);
                 INSERT INTO t VALUES (1, 'Abc'), (2, 'aBC'), (3, 'x'), (4, 'x');",
        postgres: "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
                   CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT COLLATE ci);
                   INSERT INTO t VALUES (1, 'Abc'), (2, 'aBC'), (3, 'x'), (4, 'x');",
    };
    let spec = "validate u on t {\n    unique s\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["validate", "u"]);
        assert!(
            stdout(&out).contains("u: FAILED (2 failed rows, the first at key 3)"),
            "{}: only the two 'x' repeat: {}{}",
            backend.name(),
            stdout(&out),
            stderr(&out)
        );
    }
}

/// A failed validation names the lowest key among its failing rows, text keys compared by
/// bytes ('B' before 'a'), whether the database evaluates the check or, for a `matches` on
/// PostgreSQL, the interpreter does; the rows lie in the table out of key order, so the first
/// failing row a scan meets is not the answer.
#[test]
fn a_failed_validation_names_its_lowest_failing_key() {
    let setup = Setup {
        sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);
                 CREATE TABLE k (code TEXT PRIMARY KEY NOT NULL, s TEXT);
                 INSERT INTO t VALUES (9, 'x9'), (3, 'x3'), (1, 'a1'), (7, 'x7');
                 INSERT INTO k VALUES ('b', 'xb'), ('B', 'xB'), ('a', 'xa'), ('c', 'ac');",
        postgres: "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);
                   CREATE TABLE k (code TEXT COLLATE \"und-x-icu\" PRIMARY KEY, s TEXT);
                   INSERT INTO t VALUES (9, 'x9'), (3, 'x3'), (1, 'a1'), (7, 'x7');
                   INSERT INTO k VALUES ('b', 'xb'), ('B', 'xB'), ('a', 'xa'), ('c', 'ac');",
    };
    let spec = "validate pushed on t {\n    expect s < 'b'\n}\n\n\
                validate interpreted on t {\n    expect s matches '^a'\n}\n\n\
                validate pushed_text on k {\n    expect s < 'b'\n}\n\n\
                validate interpreted_text on k {\n    expect s matches '^a'\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        // Apart: where one check of a table is interpreted, its scan decides all of them.
        for (names, lines) in [
            (
                ["pushed", "pushed_text"],
                [
                    "pushed: FAILED (3 failed rows, the first at key 3)",
                    "pushed_text: FAILED (3 failed rows, the first at key 'B')",
                ],
            ),
            (
                ["interpreted", "interpreted_text"],
                [
                    "interpreted: FAILED (3 failed rows, the first at key 3)",
                    "interpreted_text: FAILED (3 failed rows, the first at key 'B')",
                ],
            ),
        ] {
            let out = project.mig(&["validate", names[0], names[1]]);
            let text = stdout(&out);
            for line in lines {
                assert!(
                    text.contains(line),
                    "{}: no `{line}` in:\n{text}{}",
                    backend.name(),
                    stderr(&out)
                );
            }
        }
    }
}

#[test]
fn a_spec_lock_timeout_wins_over_the_config_default() {
    let project = Project::sqlite(
        &common::numbered_t(50),
        "backfill b on t {\n    set b = a + 1\n    batch 10\n    pause 300ms\n    lock_timeout 100ms\n    retries 0\n}\n",
    );
    std::fs::write(
        project.path().join("mig.toml"),
        "specs = \"specs\"\n[database]\nurl = \"sqlite:db.sqlite\"\n[defaults]\nlock_timeout = \"30s\"\n",
    )
    .unwrap();
    let run = project.spawn_mig(&["run", "t.b"]);
    while project.query_i64("SELECT batches >= 1 FROM _mig_runs") != Some(1) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let holder = project.db();
    holder
        .busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Released after 3 s whatever the run does: a run waiting with mig.toml's 30 s would
    // then get the lock and finish, exit 0.
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        holder.execute_batch("COMMIT").unwrap();
    });
    let status = run.wait_with_output().unwrap().status;
    release.join().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "with the spec's 100 ms the run gives up while the lock is held"
    );
    let resumed = project.mig(&["run", "t.b"]);
    assert!(
        stdout(&resumed).contains("(resumed): 50 rows processed"),
        "{}",
        stdout(&resumed)
    );
}

const EVENTS: Setup = Setup {
    sqlite: "",
    postgres: "CREATE TABLE events (id integer PRIMARY KEY, kind text, at timestamptz, score double precision, label text);
               INSERT INTO events SELECT i, 'k' || i, now(), i / 2.0, NULL FROM generate_series(1, 30) AS i;",
};

#[test]
fn postgres_plan_names_each_steps_path_and_why() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let project = Project::demo_on(&Backend::Postgres(url));
    let backfill = stdout(&project.mig(&["plan", "users.full_name"]));
    assert!(
        backfill.contains("path: pushdown: every operator has an exact PostgreSQL equivalent"),
        "{backfill}"
    );
    let normalize = stdout(&project.mig(&["plan", "normalize_email"]));
    assert!(
        normalize.contains("path: read-compute-write: `lower` depends on the database's ctype"),
        "{normalize}"
    );
}

#[test]
fn postgres_reals_take_the_interpreter_and_unsupported_types_are_named() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let spec = "backfill label on events {\n    set label = kind || ':' || score\n    batch 7\n}\n";
    let project = Project::on(&Backend::Postgres(url), &EVENTS, spec);
    let plan = stdout(&project.mig(&["plan", "events.label"]));
    assert!(
        plan.contains("path: read-compute-write: `score` is a real"),
        "{plan}"
    );
    let out = project.mig(&["run", "events.label"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        project.query("SELECT label FROM events WHERE id IN (3, 4) ORDER BY id"),
        ["k3:1.5", "k4:2"],
        "reals print as the interpreter prints them"
    );
    project.write_spec("backfill at on events {\n    set at = null\n}\n");
    let out = project.mig(&["run", "events.at"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("has type timestamptz, which mig cannot read or write"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_piped_run_and_its_rollback_print_plain_progress_lines() {
    let project = Project::sqlite(
        &common::numbered_t(400),
        "backfill b on t {\n    set b = a * 2\n    batch 10\n    pause 50ms\n}\n",
    );
    // 40 batches with 50 ms between them last over 2 s: the once-a-second line must show.
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let progress = err
        .lines()
        .filter(|l| l.starts_with("t.b: ") && l.contains("/400 rows processed"))
        .count();
    assert!(progress > 0, "no progress line on piped stderr: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "no terminal escape codes when piped"
    );

    // The rollback restores the 40 batches as far apart: its line counts batches.
    let out = project.mig(&["rollback", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_restored_in_lines(&stderr(&out), 40);
    assert!(
        stdout(&out).contains("run 1 rolled back: 400 rows restored, 0 conflicts in ")
            && stdout(&out).contains(" s; longest batch transaction "),
        "{}",
        stdout(&out)
    );
}

/// `err` holds at least one plain progress line of a rollback of `batches` batches of
/// migration `t.b`, each with its rows restored and no conflict.
fn assert_restored_in_lines(err: &str, batches: u64) {
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("t.b: ") && l.contains(&format!("/{batches} batches restored, ")))
        .collect();
    assert!(!lines.is_empty(), "no rollback progress line: {err}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" rows restored, 0 conflicts")),
        "{lines:?}"
    );
}

/// A run whose post-check fails is restored at once; piped, its progress lines go on
/// through that rollback, counted in batches, so a long restore is not a silent wait.
#[test]
fn a_piped_run_whose_post_check_fails_shows_the_rollback_that_follows() {
    let project = Project::sqlite(
        &common::numbered_t(300),
        "backfill b on t {\n    set b = a * 2\n    batch 10\n    pause 80ms\n    check small\n}\n\
         validate small on t {\n    expect b < 10\n}\n",
    );
    // 30 batches 80 ms apart, and their rollback as far apart: over 2 s each.
    let out = project.mig(&["run", "t.b"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("post-check failed for t.b: small failed on "),
        "{err}"
    );
    assert_restored_in_lines(&err, 30);
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NULL"),
        ["300"]
    );
}

#[test]
fn text_that_is_not_utf8_stops_the_run_at_its_batch_with_nothing_half_written() {
    let project = Project::sqlite(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
         INSERT INTO notes VALUES (1, 'a'), (2, CAST(x'ff' AS TEXT)), (3, 'c');",
        "backfill body on notes {\n    set body = 'tidy'\n    batch 1\n}\n",
    );
    let out = project.mig(&["run", "notes.body"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("not valid UTF-8"),
        "the error names the cause: {}",
        stderr(&out)
    );
    let rows = project.query("SELECT id || '|' || hex(body) FROM notes ORDER BY id");
    assert_eq!(
        rows,
        ["1|74696479", "2|FF", "3|63"],
        "batch 1 whole, batch 2 not begun"
    );
}

/// A validation whose `expect` fails to evaluate on some row is named, with where it is
/// declared, and the others are still reported; it once stopped `mig validate` with the
/// bare database error and no result at all.
#[test]
fn a_validation_that_cannot_be_evaluated_is_named_and_the_others_reported() {
    let table = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER);
                 INSERT INTO t VALUES (1, 1), (2, 0), (3, NULL);";
    let setup = Setup {
        sqlite: table,
        postgres: table,
    };
    let spec = "validate bad on t {\n    expect 1 / a > 0\n}\n\n\
                validate ok1 on t {\n    not_null a\n}\n\n\
                validate ok2 on t {\n    expect id > 0\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["validate"]);
        assert_eq!(out.status.code(), Some(4), "{}", backend.name());
        assert!(
            stdout(&out).contains("ok1: FAILED (1 failed row, the first at key 3)")
                && stdout(&out).contains("ok2: passed (0 failed rows)"),
            "{}: {}",
            backend.name(),
            stdout(&out)
        );
        assert!(
            stderr(&out).contains("validation `bad` (specs/")
                && stderr(&out).contains("could not be evaluated: ")
                && stderr(&out).contains("division by zero"),
            "{}: {}",
            backend.name(),
            stderr(&out)
        );
    }
}

/// `mig plan` says what a batch holds while it waits for a lock, which differs by store: on
/// PostgreSQL the rows it already locked, which the application then waits on as long.
#[test]
fn plan_says_what_a_batch_holds_while_it_waits_for_a_lock() {
    for backend in backends() {
        let project = Project::on(
            &backend,
            &ACCOUNTS,
            "backfill name on accounts {\n    set name = 'Account ' || code\n    lock_timeout 30s\n}\n",
        );
        let out = project.mig(&["plan", "accounts.name"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let plan = stdout(&out);
        assert!(
            plan.contains("lock timeout 30s; 1 retry on lock timeout\n  lock timeout: "),
            "{plan}"
        );
        let held = match backend {
            Backend::Sqlite => "a batch waits only to begin, for the database's write lock",
            Backend::Postgres(_) => {
                "while keeping the rows it has locked already, so the application's writes to \
                 those rows may wait that long too"
            }
        };
        assert!(plan.contains(held), "{}: {plan}", backend.name());
    }
}

/// `mig plan` lists the table's triggers that each row it writes fires (an `updated_at`
/// stamp, an audit log), since what they change is not in the backup; triggers on other
/// events, or of other tables, are left out.
#[test]
fn the_plan_lists_the_triggers_each_written_row_fires() {
    let setup = Setup {
        sqlite: "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, stamped TEXT);
                 CREATE TABLE u (id INTEGER PRIMARY KEY, b INTEGER);
                 CREATE TRIGGER stamp AFTER UPDATE OF b ON t
                 BEGIN UPDATE t SET stamped = 'now' WHERE id = NEW.id; END;
                 CREATE TRIGGER update_log AFTER INSERT ON t BEGIN SELECT 1; END;
                 CREATE TRIGGER elsewhere AFTER UPDATE ON u BEGIN SELECT 1; END;",
        postgres: "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, stamped TEXT);
                   CREATE TABLE u (id INTEGER PRIMARY KEY, b INTEGER);
                   CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN NEW.stamped := 'now'; RETURN NEW; END $$;
                   CREATE TRIGGER stamp BEFORE UPDATE OF b ON t FOR EACH ROW EXECUTE FUNCTION stamp();
                   CREATE TRIGGER update_log AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION stamp();
                   CREATE TRIGGER elsewhere BEFORE UPDATE ON u FOR EACH ROW EXECUTE FUNCTION stamp();
                   CREATE TRIGGER off BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION stamp();
                   ALTER TABLE t DISABLE TRIGGER off;
                   CREATE TRIGGER on_replicas BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION stamp();
                   ALTER TABLE t ENABLE REPLICA TRIGGER on_replicas;",
    };
    let spec = "backfill b on t {\n    set b = a * 2\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &setup, spec);
        let out = project.mig(&["plan", "t.b"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let plan = stdout(&out);
        let fired = match backend {
            Backend::Sqlite => "  TRIGGER stamp AFTER UPDATE OF b ON t\n",
            Backend::Postgres(_) => {
                "  TRIGGER stamp BEFORE UPDATE OF b ON public.t FOR EACH ROW EXECUTE FUNCTION stamp()\n"
            }
        };
        let listed = format!(
            "each row written fires the triggers of t on UPDATE; what they change (another \
             column, another table) is not in mig's backup, and a rollback fires them again:\n{fired}"
        );
        assert!(plan.contains(&listed), "{}: {plan}", backend.name());
        for left_out in ["update_log", "elsewhere", "TRIGGER off", "on_replicas"] {
            assert!(!plan.contains(left_out), "{}: {plan}", backend.name());
        }
        // A session in replica mode fires the replica trigger and not the ordinary one.
        if project.postgres.is_some() {
            project.set_database_default("session_replication_role", "replica");
            let plan = stdout(&project.mig(&["plan", "t.b"]));
            assert!(
                plan.contains("  TRIGGER on_replicas BEFORE UPDATE"),
                "{plan}"
            );
            assert!(!plan.contains("TRIGGER stamp"), "{plan}");
        }
    }
}
