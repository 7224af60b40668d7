//! On PostgreSQL, a run killed (SIGKILL) at random moments and started again at once ends
//! exactly where an uninterrupted run ends: same table, same totals, same backup; one
//! rollback undoes it all. A killed client's server session may still be finishing its
//! batch when the next `mig run` starts; that batch commits whole or not at all, and the
//! next run must neither write a row twice nor skip one. Kill points are seeded, so a
//! failure replays. (`crash_resume.rs` is the same law on SQLite.)
mod common;

use common::{stderr, stdout, Project, Rng};
use std::time::Duration;

const BATCH: u64 = 400;
const PAUSE_MS: u64 = 20;
const KILLS: usize = 25;
const SEED: u64 = 0x5eed_0004;

/// 60,000 rows; every tenth already holds its label, so batches mix rows to write with rows
/// to pass over.
const ITEMS: &str = "CREATE TABLE items (id bigint PRIMARY KEY, a text, b bigint, label text);
     INSERT INTO items
     SELECT i * 3, 'item' || (i % 97), i % 1000,
            CASE WHEN i % 10 = 0 THEN 'item' || (i % 97) || '#' || (i % 1000) END
     FROM generate_series(1, 60000) AS i;";

fn spec() -> String {
    format!(
        "backfill label on items {{\n    set label = a || '#' || b\n    batch {BATCH}\n    pause {PAUSE_MS}ms\n}}\n"
    )
}

/// (status, processed, updated, batches) of every run, in order.
fn runs(project: &Project) -> Vec<String> {
    project.query(
        "SELECT status || ',' || processed || ',' || updated || ',' || batches \
         FROM _mig_runs ORDER BY id",
    )
}

/// Every backed-up row: its record's batch, key, old and written value.
fn backup(project: &Project) -> Vec<String> {
    project.query(
        "SELECT batch || '|' || k || '|' || coalesce(o, 'NULL') || '|' || coalesce(n, 'NULL') \
         FROM _mig_backup, unnest(keys, old, new) AS u(k, o, n) ORDER BY batch, k::int8",
    )
}

/// The run's committed batches, 0 before its first.
fn batches(project: &Project) -> i64 {
    let tables = project.query("SELECT count(*) FROM pg_tables WHERE tablename = '_mig_runs'");
    if tables != ["1"] {
        return 0;
    }
    project
        .query("SELECT batches FROM _mig_runs ORDER BY id DESC LIMIT 1")
        .first()
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn killed_runs_resume_to_what_an_uninterrupted_run_does() {
    let Some(project) = Project::postgres(ITEMS, &spec()) else {
        return;
    };
    let reference = Project::postgres(ITEMS, &spec()).unwrap();
    let original = project.dump("items");
    let out = reference.mig(&["run", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let mut rng = Rng::new(SEED);
    let mut during_startup = 0;
    for kill in 0..KILLS {
        let mut child = project.spawn_mig(&["run", "items.label"]);
        if rng.range(0, 5) == 0 {
            // Somewhere in startup or the first batches: connecting, reading the schema,
            // making mig's tables, starting the run.
            std::thread::sleep(Duration::from_millis(rng.range(0, 60)));
            during_startup += 1;
        } else {
            // Some batches further on, then anywhere in the next pause or transaction.
            let target = batches(&project) + rng.range(1, 4) as i64;
            while batches(&project) < target {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!(
                        "start {kill} ended ({status}) before batch {target}; runs: {:?}",
                        runs(&project)
                    );
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.range(0, PAUSE_MS + 5)));
        }
        common::kill_while_running(&mut child, &format!("start {kill}"));
    }
    let at_last_kill = runs(&project);
    println!(
        "{KILLS} kills ({during_startup} early in startup); the run stood at {at_last_kill:?} after the last"
    );
    assert!(
        at_last_kill.len() == 1 && at_last_kill[0].starts_with("running,"),
        "every start resumed the same run: {at_last_kill:?}"
    );

    let out = project.mig(&["run", "items.label"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("(resumed)"), "{}", stdout(&out));
    assert_eq!(runs(&project), runs(&reference), "status totals");
    assert!(runs(&project)[0].starts_with("completed,60000,54000,"));
    assert!(
        project.dump("items") == reference.dump("items"),
        "tables differ"
    );
    assert!(backup(&project) == backup(&reference), "backups differ");

    let out = project.mig(&["rollback", "items.label"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        project.dump("items") == original,
        "one rollback undoes every resumption"
    );
}
