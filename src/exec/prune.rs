//! `mig prune NAME`: drops the backup of a migration's runs that are over, which a user keeps
//! until they trust the run and then gives up, since `_mig_backup` holds the key, old and new
//! value of every row a run changed. It reads no spec: a migration whose spec has left the
//! specs folder is pruned by its recorded name, as it is rolled back.

use super::engine::{open_store, ExecError};
use crate::config::Config;
use crate::store::{RunRecord, Store};

/// The backup dropped of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pruned {
    pub run_id: i64,
    pub records: u64,
    pub rows: u64,
}

/// What `prune` dropped and kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PruneSummary {
    /// Runs whose backup was dropped, with how many batch records and rows each.
    pub pruned: Vec<Pruned>,
    /// Runs not over (running, checking, rolling back, or interrupted in one of those),
    /// whose backup is kept: resuming, checking or rolling them back needs it.
    pub kept: Vec<i64>,
}

/// Drops, one batch record at a time, the backup of every run of `name` that is over. A
/// record goes in a statement of its own, so the application's writers wait for no long
/// delete, and a rollback of the run that begins meanwhile stops the pruning.
pub fn prune(config: &Config, name: &str) -> Result<PruneSummary, ExecError> {
    let mut store = open_store(config)?;
    let runs = store.runs()?;
    let mine: Vec<&RunRecord> = runs.iter().filter(|r| r.migration == name).collect();
    if mine.is_empty() {
        let mut known: Vec<String> = runs.iter().map(|r| r.migration.clone()).collect();
        known.sort();
        known.dedup();
        return Err(ExecError::NoRunsToPrune {
            name: name.to_string(),
            known,
        });
    }
    let mut summary = PruneSummary::default();
    for run in mine {
        if run.status.is_final() {
            let dropped = prune_run(store.as_mut(), run, &summary)?;
            if dropped.records > 0 {
                summary.pruned.push(dropped);
            }
        } else if !store.backed_up_batches(run.id)?.is_empty() {
            summary.kept.push(run.id);
        }
    }
    Ok(summary)
}

/// Drops the backup records of `run`, which was over when `prune` read it.
fn prune_run(
    store: &mut dyn Store,
    run: &RunRecord,
    before: &PruneSummary,
) -> Result<Pruned, ExecError> {
    let mut dropped = Pruned {
        run_id: run.id,
        records: 0,
        rows: 0,
    };
    for batch in store.backed_up_batches(run.id)? {
        if let Some(rows) = store.drop_backup(run.id, batch)? {
            dropped.records += 1;
            dropped.rows += rows;
            continue;
        }
        // Nothing deleted: another prune took the record, or the run is over no more.
        let still_over = store
            .runs()?
            .iter()
            .any(|r| r.id == run.id && r.status.is_final());
        if !still_over {
            return Err(ExecError::PruneInterrupted {
                migration: run.migration.clone(),
                run_id: run.id,
                dropped: dropped.rows,
                earlier: before.pruned.iter().map(|p| p.rows).sum(),
            });
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::store::RunStatus;
    use std::time::Duration;

    /// A store holding one run of `m` with backup records for batches 1 and 2, its status
    /// `status` in the database.
    fn store_with_run(status: RunStatus) -> (tempfile::TempDir, SqliteStore, RunRecord) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .unwrap();
        let mut store = SqliteStore::open(&path, Duration::from_secs(2)).unwrap();
        store.prepare_state().unwrap();
        let run = store.start_run("m", "hash", "spec", None).unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(&format!(
                "INSERT INTO _mig_backup (run_id, batch, columns, row_count, rows) VALUES
                     ({0}, 1, 'b', 3, x''), ({0}, 2, 'b', 4, x'')",
                run.id
            ))
            .unwrap();
        store.set_run_status(run.id, status, None).unwrap();
        (dir, store, run)
    }

    #[test]
    fn a_run_that_is_over_loses_every_record_with_its_rows_counted() {
        let (_dir, mut store, run) = store_with_run(RunStatus::Completed);
        let over = RunRecord {
            status: RunStatus::Completed,
            ..run
        };
        let dropped = prune_run(&mut store, &over, &PruneSummary::default()).unwrap();
        assert_eq!((dropped.records, dropped.rows), (2, 7));
        assert!(store.backed_up_batches(over.id).unwrap().is_empty());
    }

    /// `prune` read the run as completed; a rollback then began (the run is `rolling_back`
    /// in the database): pruning stops at once and leaves every record to the rollback.
    #[test]
    fn a_rollback_begun_after_prune_read_the_run_stops_it_keeping_the_records() {
        let (_dir, mut store, run) = store_with_run(RunStatus::RollingBack);
        let as_read = RunRecord {
            status: RunStatus::Completed,
            ..run
        };
        let earlier = PruneSummary {
            pruned: vec![Pruned {
                run_id: 0,
                records: 1,
                rows: 5,
            }],
            kept: vec![],
        };
        match prune_run(&mut store, &as_read, &earlier) {
            Err(ExecError::PruneInterrupted {
                dropped, earlier, ..
            }) => assert_eq!((dropped, earlier), (0, 5)),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.backed_up_batches(as_read.id).unwrap(), [2, 1]);
    }
}
