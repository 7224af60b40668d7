//! `mig prune NAME` drops the backup of a migration's runs that are over, and keeps the backup
//! of a run that is not: resuming or rolling it back needs it. `_mig_backup` holds every
//! changed row's key, old and new value, and nothing let a user give it up but SQL by hand.
mod common;

use common::{backends, stderr, stdout, Project, Setup};

const TABLES: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);\n\
     INSERT INTO t VALUES (1, 1, NULL), (2, 2, NULL), (3, 3, NULL), (4, 4, NULL), (5, 5, NULL), (6, 6, NULL);\n\
     CREATE TABLE u (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER NOT NULL);\n\
     INSERT INTO u VALUES (1, 1, 0), (2, 2, 0), (3, 3, 0), (4, 4, 0), (5, NULL, 0), (6, 6, 0);\n";

const SPEC: &str = "migrate double on t {\n    set b = a * 2\n    batch 2\n}\n\n\
                    migrate copy on u {\n    set b = a\n    batch 2\n}\n";

#[test]
fn prune_drops_the_backup_of_runs_that_are_over_and_keeps_the_rest() {
    let setup = Setup {
        sqlite: TABLES,
        postgres: TABLES,
    };
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &setup, SPEC);
        let out = project.mig(&["run", "double"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
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
            stderr(&out).contains("nothing to roll back for double"),
            "{name}: {}",
            stderr(&out)
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
