//! User tables named like the relations mig's own batch statements name. A WITH-clause name
//! hides a table of the same name from the rest of its statement, so a batch statement whose
//! CTE shared its name with the migrated table read the CTE instead of the table: the
//! migration failed (`column t.id does not exist`) or could read the wrong relation. Every
//! path runs here on tables named after each such name, on every store: the NULL-old and
//! the locking pushdown statements, read-compute-write, post-checks and `mig validate` (both
//! the SQL-only and the interpreted query), workers, and rollback with a conflict.
mod common;

use common::{backends, stderr, stdout, Backend, Project, Setup};

/// Every CTE name and derived-table alias mig's batch statements once used, and `t`, the
/// alias of the migrated table itself.
const NAMES: [&str; 17] = [
    "v",
    "old",
    "upd",
    "backup",
    "progress",
    "keys",
    "seen",
    "done",
    "whole",
    "b",
    "restored",
    "conflicts",
    "batch",
    "t",
    "s",
    "r",
    "run",
];

const ROWS: i64 = 10;

/// Batches of 4 over 10 rows: `b` is NULL in rows 1 to 4, so the first batch is NULL-old
/// only; the second mixes a NULL (7) with wrong (5, 8) and right (6) values. `f` is right in
/// even rows, NULL in odd ones, and `Name3` in row 3, which `lowered_*` fails.
fn row(i: i64) -> [String; 6] {
    let b = match i {
        1..=4 | 7 => None,
        _ if i % 3 == 0 => Some(2 * i),
        _ => Some(-i),
    };
    let f = match i {
        3 => Some("Name3".to_string()),
        _ if i % 2 == 0 => Some(format!("name{i}")),
        _ => None,
    };
    let text = |v: Option<String>| v.unwrap_or_else(|| "NULL".into());
    [
        i.to_string(),
        i.to_string(),
        text(b.map(|b| b.to_string())),
        (10 * i).to_string(),
        format!("Name{i}"),
        text(f),
    ]
}

/// The table's rows as `Project::dump` prints them, after `change` is applied to each.
fn rows(change: impl Fn(i64, &mut [String; 6])) -> Vec<String> {
    (1..=ROWS)
        .map(|i| {
            let mut r = row(i);
            change(i, &mut r);
            r.join("|")
        })
        .collect()
}

/// The same SQL makes the tables in both dialects.
fn tables() -> String {
    NAMES
        .iter()
        .map(|name| {
            let values: Vec<String> = (1..=ROWS)
                .map(|i| {
                    let [id, a, b, n, e, f] = row(i);
                    let quoted = |v: String| {
                        if v == "NULL" {
                            v
                        } else {
                            format!("'{v}'")
                        }
                    };
                    format!("({id}, {a}, {b}, {n}, '{e}', {})", quoted(f))
                })
                .collect();
            format!(
                "CREATE TABLE \"{name}\" (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, \
                 n INTEGER, e TEXT, f TEXT);\nINSERT INTO \"{name}\" VALUES {};\n",
                values.join(", ")
            )
        })
        .collect()
}

fn spec() -> String {
    NAMES
        .iter()
        .map(|name| {
            format!(
                "backfill b on {name} {{\n    set b = a * 2\n    batch 4\n    check doubled_{name}\n}}\n\
                 migrate bump_{name} on {name} {{\n    set n = n + 1\n    batch 4\n}}\n\
                 migrate negate_{name} on {name} {{\n    set n = 0 - n\n    batch 4\n    check positive_{name}\n}}\n\
                 migrate lower_{name} on {name} {{\n    set f = lower(e)\n    batch 4\n    check lowered_{name}\n}}\n\
                 validate doubled_{name} on {name} {{\n    not_null b\n    unique b\n    expect b > a\n}}\n\
                 validate positive_{name} on {name} {{\n    expect n > 0\n}}\n\
                 validate lowered_{name} on {name} {{\n    expect f matches '^name[0-9]+$'\n}}\n"
            )
        })
        .collect()
}

/// A project on `backend` holding every table of `NAMES`.
fn project(backend: &Backend) -> Project {
    let empty = Setup {
        sqlite: "",
        postgres: "",
    };
    let project = Project::on(backend, &empty, &spec());
    project.execute(&tables());
    project
}

/// Runs `check` for every name and fails once, listing every name it failed for.
fn for_every_name(backend: &Backend, check: impl Fn(&Project, &str) -> Result<(), String>) {
    let project = project(backend);
    let failed: Vec<String> = NAMES
        .iter()
        .filter_map(|name| {
            check(&project, name)
                .err()
                .map(|e| format!("table `{name}` on {}: {e}", backend.name()))
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// `mig ARGS`, which must exit with `code`; its stdout.
fn mig(project: &Project, args: &[&str], code: i32) -> Result<String, String> {
    let out = project.mig(args);
    if out.status.code() == Some(code) {
        Ok(stdout(&out))
    } else {
        Err(format!(
            "`mig {}` exited with {:?}, not {code}:\n{}{}",
            args.join(" "),
            out.status.code(),
            stdout(&out),
            stderr(&out)
        ))
    }
}

fn expect_contains(text: &str, needle: &str) -> Result<(), String> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("no `{needle}` in:\n{text}"))
    }
}

fn expect_table(project: &Project, name: &str, want: &[String], when: &str) -> Result<(), String> {
    let got = project.dump(name);
    if got == want {
        Ok(())
    } else {
        Err(format!("{when}: the table holds {got:#?}, not {want:#?}"))
    }
}

fn expect_plan(project: &Project, migration: &str, path: &str) -> Result<(), String> {
    expect_contains(&mig(project, &["plan", migration], 0)?, path)
}

/// The PostgreSQL plan of `NAME.b` writes NULL old values first, then takes the changing
/// statement; SQLite has one path.
fn expect_null_old_plan(project: &Project, backend: &Backend, name: &str) -> Result<(), String> {
    if let Backend::Postgres(_) = backend {
        expect_plan(
            project,
            &format!("{name}.b"),
            "only rows whose set columns are all NULL",
        )?;
    }
    Ok(())
}

/// The backfill's table: `b = 2a` everywhere.
fn doubled() -> Vec<String> {
    rows(|i, r| r[2] = (2 * i).to_string())
}

/// The rollback's conflict as `_mig_conflicts` records it: the key and the row's current
/// value, read from the migrated table.
fn conflicts(project: &Project, backend: &Backend, migration: &str) -> Vec<String> {
    let current = match backend {
        Backend::Sqlite => "c.current",
        Backend::Postgres(_) => "array_to_string(c.current, ',')",
    };
    project.query(&format!(
        "SELECT c.key || ':' || {current} FROM _mig_conflicts AS c \
         JOIN _mig_runs AS r ON r.id = c.run_id WHERE r.migration = '{migration}'"
    ))
}

#[test]
fn a_pushed_down_backfill_its_checks_and_its_rollback_read_the_table_of_any_name() {
    for backend in backends() {
        for_every_name(&backend, |project, name| {
            let validations: [&str; 4] = [
                "validate",
                &format!("doubled_{name}"),
                &format!("lowered_{name}"),
                &format!("positive_{name}"),
            ];
            // Not null fails in rows 1-4 and 7, `b > a` in 5, 8 and 10; row 3's `f`.
            let out = mig(project, &validations, 1)?;
            expect_contains(
                &out,
                &format!("doubled_{name}: FAILED (8 failed rows, the first at key 1)"),
            )?;
            expect_contains(
                &out,
                &format!("lowered_{name}: FAILED (1 failed row, the first at key 3)"),
            )?;
            expect_contains(&out, &format!("positive_{name}: passed (0 failed rows)"))?;

            expect_null_old_plan(project, &backend, name)?;
            let migration = format!("{name}.b");
            let out = mig(project, &["run", &migration], 0)?;
            expect_contains(&out, "10 rows processed, 8 updated, 3 batches")?;
            expect_contains(
                &out,
                &format!("check doubled_{name}: passed (0 failed rows)"),
            )?;
            expect_table(project, name, &doubled(), "after the run")?;
            let out = mig(project, &validations[..2], 0)?;
            expect_contains(&out, &format!("doubled_{name}: passed (0 failed rows)"))?;

            project.execute(&format!("UPDATE \"{name}\" SET b = 0 WHERE id = 5"));
            let out = mig(project, &["rollback", &migration], 0)?;
            expect_contains(&out, "7 rows restored, 1 conflict in ")?;
            expect_table(
                project,
                name,
                &rows(|i, r| {
                    if i == 5 {
                        r[2] = "0".into();
                    }
                }),
                "after the rollback",
            )?;
            let recorded = conflicts(project, &backend, &migration);
            if recorded != ["5:0"] {
                return Err(format!("the rollback recorded the conflicts {recorded:?}"));
            }
            Ok(())
        });
    }
}

#[test]
fn a_set_that_reads_its_own_column_and_a_failing_post_check_work_on_a_table_of_any_name() {
    for backend in backends() {
        for_every_name(&backend, |project, name| {
            let bump = format!("bump_{name}");
            if let Backend::Postgres(_) = backend {
                expect_plan(project, &bump, "path: pushdown")?;
            }
            let out = mig(project, &["run", &bump], 0)?;
            expect_contains(&out, "10 rows processed, 10 updated, 3 batches")?;
            let bumped = rows(|i, r| r[3] = (10 * i + 1).to_string());
            expect_table(project, name, &bumped, "after the run")?;
            let out = mig(project, &["rollback", &bump], 0)?;
            expect_contains(&out, "10 rows restored, 0 conflicts")?;
            expect_table(project, name, &rows(|_, _| {}), "after the rollback")?;

            // `positive_*` fails on every row the run negated, so the run restores them.
            mig(project, &["run", &format!("negate_{name}")], 1)?;
            expect_table(project, name, &rows(|_, _| {}), "after the failed check")
        });
    }
}

#[test]
fn read_compute_write_works_on_a_table_of_any_name() {
    for backend in backends() {
        for_every_name(&backend, |project, name| {
            let lower = format!("lower_{name}");
            if let Backend::Postgres(_) = backend {
                expect_plan(project, &lower, "path: read-compute-write")?;
            }
            let out = mig(project, &["run", &lower], 0)?;
            expect_contains(&out, "10 rows processed, 5 updated, 3 batches")?;
            expect_contains(
                &out,
                &format!("check lowered_{name}: passed (0 failed rows)"),
            )?;
            let lowered = rows(|i, r| r[5] = format!("name{i}"));
            expect_table(project, name, &lowered, "after the run")?;
            let out = mig(project, &["rollback", &lower], 0)?;
            expect_contains(&out, "5 rows restored, 0 conflicts")?;
            expect_table(project, name, &rows(|_, _| {}), "after the rollback")
        });
    }
}

/// Workers claim key ranges (`_mig_claims`) and run each as the pushed-down statements.
#[test]
fn workers_share_runs_on_a_table_of_any_name() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let backend = Backend::Postgres(url);
    for_every_name(&backend, |project, name| {
        expect_null_old_plan(project, &backend, name)?;
        let migration = format!("{name}.b");
        let out = mig(project, &["run", &migration, "--workers", "2"], 0)?;
        expect_contains(&out, "10 rows processed, 8 updated")?;
        expect_table(project, name, &doubled(), "after the run")?;
        let runs = project.query(&format!(
            "SELECT updated FROM _mig_runs WHERE migration = '{migration}'"
        ));
        if runs != ["8"] {
            return Err(format!("one run updating 8 rows expected, found {runs:?}"));
        }
        let out = mig(project, &["rollback", &migration], 0)?;
        expect_contains(&out, "8 rows restored, 0 conflicts")?;
        expect_table(project, name, &rows(|_, _| {}), "after the rollback")
    });
}
