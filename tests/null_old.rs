//! Batches over a mix of NULL and non-NULL old values. On PostgreSQL a step whose sets read
//! no set column writes its NULL-old rows first without a locking read, and finishes the rest
//! of the batch's range with a second statement only when rows are left: the table, the
//! totals, the backup and the rollback must be those of any other path (SQLite's here).
mod common;

use common::{backends, postgres_url, stderr, stdout, Backend, Project, Setup};

/// 300 rows, batch 10: rows 1 to 50 all have a NULL `b` and `c`, so their batches are
/// NULL-old only; after that every batch mixes NULL old values with wrong ones, right ones,
/// and rows whose new value is NULL (`a` NULL), over NULL and over a value.
const MIXED: Setup = Setup {
    sqlite: "
CREATE TABLE m (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, c TEXT, d TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
INSERT INTO m SELECT i,
    CASE WHEN i > 50 AND i % 7 IN (3, 4) THEN NULL ELSE i END,
    CASE WHEN i <= 50 THEN NULL WHEN i % 7 = 1 THEN -i WHEN i % 7 = 2 THEN 2 * i
         WHEN i % 7 = 4 THEN 9 ELSE NULL END,
    CASE WHEN i > 50 AND i % 5 = 1 THEN 'old' || i END,
    CASE WHEN i > 50 AND i % 5 = 2 THEN 'n' || i END
FROM n;",
    postgres: "
CREATE TABLE m (id integer PRIMARY KEY, a integer, b integer, c text, d text);
INSERT INTO m SELECT i,
    CASE WHEN i > 50 AND i % 7 IN (3, 4) THEN NULL ELSE i END,
    CASE WHEN i <= 50 THEN NULL WHEN i % 7 = 1 THEN -i WHEN i % 7 = 2 THEN 2 * i
         WHEN i % 7 = 4 THEN 9 ELSE NULL END,
    CASE WHEN i > 50 AND i % 5 = 1 THEN 'old' || i END,
    CASE WHEN i > 50 AND i % 5 = 2 THEN 'n' || i END
FROM generate_series(1, 300) AS i;",
};

/// 300 rows, batch 10: rows 51 to 250 hold values (a third of them wrong), the others are
/// NULL: a run's NULL-old statement finds nothing to write for 20 batches, and batches are
/// left to the changing statement alone until it tries again and finds NULL old values.
const STRETCH: Setup = Setup {
    sqlite: "
CREATE TABLE m (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, c TEXT, d TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)
INSERT INTO m SELECT i, i,
    CASE WHEN i BETWEEN 51 AND 250 THEN CASE WHEN i % 3 = 0 THEN -i ELSE 2 * i END END,
    CASE WHEN i BETWEEN 51 AND 250 THEN 'c' || i END, NULL
FROM n;",
    postgres: "
CREATE TABLE m (id integer PRIMARY KEY, a integer, b integer, c text, d text);
INSERT INTO m SELECT i, i,
    CASE WHEN i BETWEEN 51 AND 250 THEN CASE WHEN i % 3 = 0 THEN -i ELSE 2 * i END END,
    CASE WHEN i BETWEEN 51 AND 250 THEN 'c' || i END, NULL
FROM generate_series(1, 300) AS i;",
};

const SPEC: &str = "
backfill b on m {
    set b = a * 2
    batch 10
}

migrate pair on m {
    set c = 'n' || a
    set d = 'n' || id
    where id % 3 <> 0
    batch 10
}
";

/// What a run and its rollback leave: the summary, the run's totals as `_mig_runs` keeps
/// them, the table after the run, the rollback's line, and whether the rollback restored the
/// table exactly.
#[derive(Debug, PartialEq)]
struct Outcome {
    summary: String,
    totals: Vec<String>,
    after: Vec<String>,
    rollback: String,
    restored: bool,
}

fn run_and_roll_back(project: &Project, name: &str, args: &[&str]) -> Outcome {
    let before = project.dump("m");
    let mut command = vec!["run", name];
    command.extend(args);
    let out = project.mig(&command);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let after = project.dump("m");
    let totals =
        project.query("SELECT processed || ' processed, ' || updated || ' updated' FROM _mig_runs");
    let rollback = project.mig(&["rollback", name]);
    assert!(rollback.status.success(), "{}", stderr(&rollback));
    let line = |text: String, needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {text}"))
            .to_string()
    };
    Outcome {
        // `NAME: run 1: 300 rows processed, 120 updated, 30 batches in …`
        summary: line(stdout(&out), "rows processed")
            .split(": ")
            .nth(2)
            .and_then(|totals| totals.split(" in ").next())
            .unwrap()
            .to_string(),
        totals,
        after,
        // `NAME: run 1 rolled back: 120 rows restored, 0 conflicts in …`
        rollback: line(stdout(&rollback), "rows restored")
            .split(" in ")
            .next()
            .unwrap()
            .to_string(),
        restored: project.dump("m") == before,
    }
}

#[test]
fn a_backfill_over_mixed_old_values_agrees_on_every_store() {
    let outcomes: Vec<Outcome> = backends()
        .iter()
        .map(|backend| {
            let project = Project::on(backend, &MIXED, SPEC);
            let outcome = run_and_roll_back(&project, "m.b", &[]);
            if let Backend::Postgres(_) = backend {
                let plan = stdout(&project.mig(&["plan", "m.b"]));
                assert!(
                    plan.contains("only rows whose set columns are all NULL"),
                    "{plan}"
                );
            }
            outcome
        })
        .collect();
    let expected_updated = (1..=300)
        .filter(|i| {
            let a = (*i <= 50 || !matches!(i % 7, 3 | 4)).then_some(*i);
            let b = match (i, i % 7) {
                (i, _) if *i <= 50 => None,
                (i, 1) => Some(-i),
                (i, 2) => Some(2 * i),
                (_, 4) => Some(9),
                _ => None,
            };
            a.map(|a| 2 * a) != b
        })
        .count();
    let first = &outcomes[0];
    assert!(
        first
            .summary
            .contains(&format!("300 rows processed, {expected_updated} updated")),
        "{first:?}"
    );
    assert!(first.after.iter().all(|row| {
        let f: Vec<&str> = row.split('|').collect();
        match f[1].parse::<i64>() {
            Ok(a) => f[2] == (2 * a).to_string(),
            Err(_) => f[2] == "NULL",
        }
    }));
    assert!(
        first
            .rollback
            .contains(&format!("{expected_updated} rows restored, 0 conflicts")),
        "{first:?}"
    );
    assert_eq!(
        first.totals,
        [format!("300 processed, {expected_updated} updated")]
    );
    assert!(first.restored, "the rollback restores the table exactly");
    for other in &outcomes[1..] {
        assert_eq!(other, first, "every store agrees");
    }
}

#[test]
fn several_sets_with_a_filter_over_mixed_old_values_agree_on_every_store() {
    let outcomes: Vec<Outcome> = backends()
        .iter()
        .map(|backend| run_and_roll_back(&Project::on(backend, &MIXED, SPEC), "pair", &[]))
        .collect();
    let first = &outcomes[0];
    assert!(first.restored, "{first:?}");
    for other in &outcomes[1..] {
        assert_eq!(other, first, "every store agrees");
    }
}

#[test]
fn a_stretch_of_values_between_null_old_values_agrees_on_every_store() {
    for name in ["m.b", "pair"] {
        let outcomes: Vec<Outcome> = backends()
            .iter()
            .map(|backend| run_and_roll_back(&Project::on(backend, &STRETCH, SPEC), name, &[]))
            .collect();
        let first = &outcomes[0];
        assert!(first.restored, "{name}: {first:?}");
        for other in &outcomes[1..] {
            assert_eq!(other, first, "{name}: every store agrees");
        }
    }
    let first = run_and_roll_back(&Project::on(&Backend::Sqlite, &STRETCH, SPEC), "m.b", &[]);
    assert_eq!(
        first.summary, "300 rows processed, 167 updated, 30 batches",
        "the 100 NULL rows and the 67 wrong ones"
    );
}

/// Workers run claimed ranges through the same two statements: the shared run ends where a
/// one-worker run does, and rolls back as exactly.
#[test]
fn workers_over_mixed_old_values_agree_with_one_worker() {
    let Some(url) = postgres_url() else {
        return;
    };
    let backend = Backend::Postgres(url);
    for (setup, name) in [(&MIXED, "m.b"), (&MIXED, "pair"), (&STRETCH, "m.b")] {
        let alone = run_and_roll_back(&Project::on(&backend, setup, SPEC), name, &[]);
        let shared = run_and_roll_back(
            &Project::on(&backend, setup, SPEC),
            name,
            &["--workers", "3"],
        );
        assert!(shared.restored, "{name}: {shared:?}");
        assert_eq!(
            (&shared.totals, &shared.after, &shared.rollback),
            (&alone.totals, &alone.after, &alone.rollback),
            "{name}"
        );
        // Workers count claims as batches.
        let rows = |o: &Outcome| o.summary.rsplit_once(", ").unwrap().0.to_string();
        assert_eq!(rows(&shared), rows(&alone), "{name}");
    }
}

/// A `varchar(3)` column cuts the trailing spaces of `'abc   '` when it stores it, so the
/// value it holds is not the value computed again: a row written over a NULL must not be
/// written (and backed up) a second time in its batch, or rollback could restore the second
/// record's old value, `abc`, instead of NULL.
#[test]
fn a_column_that_cuts_trailing_spaces_is_written_once_per_row_and_rolled_back_exactly() {
    let Some(url) = postgres_url() else {
        return;
    };
    let setup = Setup {
        sqlite: "",
        postgres: "CREATE TABLE v (id integer PRIMARY KEY, a text, c varchar(3));
                   INSERT INTO v SELECT i, 'ab', CASE WHEN i % 2 = 0 THEN 'zz' END
                   FROM generate_series(1, 30) AS i;",
    };
    let spec = "backfill c on v {\n    set c = a || 'c   '\n    batch 10\n}\n";
    let project = Project::on(&Backend::Postgres(url), &setup, spec);
    let before = project.dump("v");
    let out = project.mig(&["run", "v.c"]);
    assert!(
        stdout(&out).contains("30 rows processed, 30 updated"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM _mig_backup, unnest(keys) AS k"),
        ["30"]
    );
    let out = project.mig(&["rollback", "v.c"]);
    assert!(
        stdout(&out).contains("30 rows restored, 0 conflicts"),
        "{}",
        stdout(&out)
    );
    assert_eq!(project.dump("v"), before);
}
