//! `mig prune NAME` drops the backup of a migration's runs that are over, and keeps the backup
//! of a run that is not: resuming or rolling it back needs it. `_mig_backup` holds every
//! changed row's key, old and new value, and nothing let a user give it up but SQL by hand.
mod common;

use common::{backends, postgres_url, stderr, stdout, Backend, Project, Setup};

const TABLES: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);\n\
     INSERT INTO t VALUES (1, 1, NULL), (2, 2, NULL), (3, 3, NULL), (4, 4, NULL), (5, 5, NULL), (6, 6, NULL);\n\
     CREATE TABLE u (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER NOT NULL);\n\
     INSERT INTO u VALUES (1, 1, 0), (2, 2, 0), (3, 3, 0), (4, 4, 0), (5, NULL, 0), (6, 6, 0);\n";

const SPEC: &str = "migrate double on t {\n    set b = a * 2\n    batch 2\n}\n\n\
                    migrate copy on u {\n    set b = a\n    batch 2\n}\n";

/// A project on `backend` whose migration `double` has run to its end, as run 1.
fn with_double_run(backend: &Backend) -> Project {
    let setup = Setup {
        sqlite: TABLES,
        postgres: TABLES,
    };
    let project = Project::on(backend, &setup, SPEC);
    let out = project.mig(&["run", "double"]);
    assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
    project
}

#[test]
fn prune_drops_the_backup_of_runs_that_are_over_and_keeps_the_rest() {
    for backend in backends() {
        let name = backend.name();
        let project = with_double_run(&backend);
        // Stops at batch 3, where a NULL goes into a NOT NULL column: unfinished.
        let out = project.mig(&["run", "copy"]);
        assert_eq!(out.status.code(), Some(4), "{name}: {}", stderr(&out));
        let backed_up = |run: i64| {
            project.query(&format!(
                "SELECT count(*) FROM _mig_backup WHERE run_id = {run}"
            ))
        };
        assert_eq!(backed_up(1), ["3"], "{name}");
        assert_eq!(backed_up(2), ["2"], "{name}");
        let status = stdout(&project.mig(&["status"]));
        let run_1 = status.lines().next().unwrap_or_default();
        assert!(
            run_1.starts_with("run 1 double completed") && run_1.contains(" in 3 batch records"),
            "{name}: {status}"
        );

        let out = project.mig(&["prune", "double"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "double: run 1: dropped its backup of 6 rows (3 batch records); `mig rollback \
             double` can no longer restore them\n",
            "{name}"
        );
        assert_eq!(backed_up(1), ["0"], "{name}");
        assert_eq!(
            project.query("SELECT b FROM t ORDER BY id"),
            ["2", "4", "6", "8", "10", "12"],
            "{name}: pruning leaves the rows as the run wrote them"
        );
        let out = project.mig(&["rollback", "double"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(
                "run 1 of double cannot be rolled back: `mig prune double` gave up its backup at"
            ),
            "{name}: {}",
            stderr(&out)
        );
        let status = stdout(&project.mig(&["status"]));
        let run_1 = status.lines().next().unwrap_or_default();
        assert!(
            run_1.contains(", backup pruned ") && !run_1.contains("batch records"),
            "{name}: {status}"
        );
        let out = project.mig(&["prune", "double"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "double: no backup of a run that is over is left to prune\n",
            "{name}"
        );

        let out = project.mig(&["prune", "copy"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("copy: run 2 is not over (see `mig status`): its backup is kept"),
            "{name}: {}",
            stdout(&out)
        );
        assert_eq!(backed_up(2), ["2"], "{name}");
        let out = project.mig(&["rollback", "copy"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("copy: run 2 rolled back: 4 rows restored, 0 conflicts"),
            "{name}: {}",
            stdout(&out)
        );

        let out = project.mig(&["prune", "dubble"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stdout(&out));
        assert_eq!(
            stderr(&out),
            "error: no run of `dubble` is recorded, so it has no backup to prune (known: copy, \
             double)\n",
            "{name}"
        );
    }
}

/// A prune killed part way (here: the run marked, one record of three dropped, as such a
/// prune leaves them) leaves a run that no rollback restores in part: before the mark, a
/// rollback restored the records left and reported the run rolled back, while the rows of
/// the dropped record kept the run's values. The next prune drops the rest.
#[test]
fn a_run_whose_prune_stopped_part_way_is_not_rolled_back_in_part() {
    for backend in backends() {
        let name = backend.name();
        let project = with_double_run(&backend);
        project.execute(
            "UPDATE _mig_runs SET pruned_at = '2026-11-27T03:00:00.000Z' WHERE id = 1;\n\
             DELETE FROM _mig_backup WHERE run_id = 1 AND batch = 3;",
        );

        let out = project.mig(&["rollback", "double"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert_eq!(
            stderr(&out),
            "error: run 1 of double cannot be rolled back: `mig prune double` gave up its backup \
             at 2026-11-27T03:00:00.000Z, so the 6 rows it changed keep the values it wrote\n",
            "{name}"
        );
        assert_eq!(
            project.query("SELECT b FROM t ORDER BY id"),
            ["2", "4", "6", "8", "10", "12"],
            "{name}: no row restored"
        );

        let out = project.mig(&["prune", "double"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "double: run 1: dropped its backup of 4 rows (2 batch records); `mig rollback \
             double` can no longer restore them\n",
            "{name}"
        );
        assert_eq!(
            project.query("SELECT count(*) FROM _mig_backup"),
            ["0"],
            "{name}"
        );
    }
}

/// On PostgreSQL a prune's mark and a rollback's start are one conditional write each to the
/// run's row: a rollback that reaches the row while a prune's mark holds it waits, then finds
/// the run marked and restores nothing.
#[test]
fn a_rollback_waiting_on_a_prunes_mark_restores_nothing() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = with_double_run(&Backend::Postgres(url));
    let database = project.postgres.as_ref().unwrap();
    let mut prune = database.client();
    prune
        .batch_execute(
            "BEGIN; UPDATE _mig_runs SET pruned_at = '2026-11-27T03:00:00.000Z' WHERE id = 1",
        )
        .unwrap();
    let rollback = project
        .command(&["rollback", "double"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    database.wait_for_a_lock_wait();
    prune.batch_execute("COMMIT").unwrap();
    let out = rollback.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("run 1 of double cannot be rolled back"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT b FROM t ORDER BY id"),
        ["2", "4", "6", "8", "10", "12"]
    );
    assert_eq!(project.query("SELECT status FROM _mig_runs"), ["completed"]);
    assert_eq!(project.query("SELECT count(*) FROM _mig_backup"), ["3"]);
}

/// State tables an earlier `mig` made on PostgreSQL, without `_mig_runs.pruned_at` and
/// `_mig_backup.restored`: `mig status` reads them; a role that does not own them is told how
/// to add the columns, and drops nothing; run by the owner, `mig prune` adds them and marks
/// the run.
#[test]
fn postgres_state_tables_of_an_earlier_mig_gain_their_later_columns() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = with_double_run(&Backend::Postgres(url));
    project.execute("ALTER TABLE _mig_runs DROP COLUMN pruned_at, DROP COLUMN key_order");
    project.execute("ALTER TABLE _mig_backup DROP COLUMN restored");
    let role = project.postgres.as_ref().unwrap().role(
        "migrator",
        "GRANT USAGE ON SEQUENCE _mig_runs_id_seq TO PUBLIC",
    );
    let as_role = |args: &[&str]| {
        project
            .command(args)
            .env("MIG_DATABASE_URL", &role.url)
            .output()
            .unwrap()
    };
    let out = as_role(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("run 1 double completed"),
        "{}",
        stdout(&out)
    );
    let out = as_role(&["prune", "double"]);
    assert_eq!(out.status.code(), Some(4), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "mig's state tables in schema public were made by an earlier mig, and lack a \
             column this one writes: `_mig_runs.pruned_at`"
        ) && stderr(&out).contains("must be owner of table _mig_runs"),
        "{}",
        stderr(&out)
    );
    assert_eq!(project.query("SELECT count(*) FROM _mig_backup"), ["3"]);
    let out = project.mig(&["prune", "double"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM _mig_runs WHERE pruned_at IS NOT NULL"),
        ["1"]
    );
    assert_eq!(
        project.query("SELECT count(restored) FROM _mig_backup"),
        ["0"],
        "the owner's command added _mig_backup.restored too"
    );
    assert_eq!(
        project.query("SELECT count(key_order) FROM _mig_runs"),
        ["0"],
        "and _mig_runs.key_order, unknown for the earlier run"
    );
}
