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

/// Drops, one batch record at a time, the backup of every run of `name` that is over. Each
/// run is first marked pruned, which a rollback that has not begun yet then refuses, and
/// which one that has begun keeps from happening; a record goes in a statement of its own, so
/// the application's writers wait for no long delete.
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
    store.prepare_state()?;
    let mut summary = PruneSummary::default();
    for run in mine {
        if store.backed_up_batches(run.id)?.is_empty() {
            continue;
        }
        match prune_run(store.as_mut(), run.id)? {
            Some(dropped) => summary.pruned.push(dropped),
            None => summary.kept.push(run.id),
        }
    }
    Ok(summary)
}

/// Marks run `run_id` pruned and drops its backup records; `None`, dropping nothing, where
/// the run is not over: running, checking, or rolling back (a rollback may have begun since
/// `prune` read the run).
fn prune_run(store: &mut dyn Store, run_id: i64) -> Result<Option<Pruned>, ExecError> {
    if !store.mark_pruned(run_id)? {
        return Ok(None);
    }
    let mut dropped = Pruned {
        run_id,
        records: 0,
        rows: 0,
    };
    for batch in store.backed_up_batches(run_id)? {
        // `None`: another prune of the run took the record first.
        if let Some(rows) = store.drop_backup(run_id, batch)? {
            dropped.records += 1;
            dropped.rows += rows;
        }
    }
    Ok(Some(dropped))
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
        let run = store.start_run("m", "hash", "spec", None, None).unwrap();
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
    fn a_run_that_is_over_is_marked_and_loses_every_record_with_its_rows_counted() {
        let (_dir, mut store, run) = store_with_run(RunStatus::Completed);
        let dropped = prune_run(&mut store, run.id).unwrap().unwrap();
        assert_eq!((dropped.records, dropped.rows), (2, 7));
        assert!(store.backed_up_batches(run.id).unwrap().is_empty());
        assert!(store.runs().unwrap()[0].pruned_at.is_some());
    }

    /// `prune` read the run as completed; a rollback then began (the run is `rolling_back`
    /// in the database): the run is not marked, and every record is left to the rollback.
    #[test]
    fn a_rollback_begun_after_prune_read_the_run_keeps_every_record() {
        let (_dir, mut store, run) = store_with_run(RunStatus::RollingBack);
        assert_eq!(prune_run(&mut store, run.id).unwrap(), None);
        assert_eq!(store.backed_up_batches(run.id).unwrap(), [2, 1]);
        assert_eq!(store.runs().unwrap()[0].pruned_at, None);
    }

    /// The other order: once the run is marked, no rollback of it begins, however many
    /// records a prune stopped part way has left.
    #[test]
    fn a_run_marked_pruned_refuses_to_begin_a_rollback() {
        let (_dir, mut store, run) = store_with_run(RunStatus::Completed);
        assert!(store.mark_pruned(run.id).unwrap());
        assert!(!store.begin_rollback(run.id).unwrap());
        assert_eq!(store.runs().unwrap()[0].status, RunStatus::Completed);
        assert_eq!(store.backed_up_batches(run.id).unwrap(), [2, 1]);
    }

    /// A prune killed after its first record: the next one drops the rest.
    #[test]
    fn a_prune_stopped_part_way_is_finished_by_the_next() {
        let (_dir, mut store, run) = store_with_run(RunStatus::Completed);
        assert!(store.mark_pruned(run.id).unwrap());
        assert_eq!(store.drop_backup(run.id, 2).unwrap(), Some(4));
        let dropped = prune_run(&mut store, run.id).unwrap().unwrap();
        assert_eq!((dropped.records, dropped.rows), (1, 3));
        assert!(store.backed_up_batches(run.id).unwrap().is_empty());
    }
}
