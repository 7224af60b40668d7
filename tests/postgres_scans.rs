//! A run on PostgreSQL reads only the rows of its batches: no batch, first or last, and no
//! count before the first, reads the whole table. On a table of tens of millions of rows one
//! such scan takes seconds, and a batch holds the rows it already wrote locked meanwhile.
mod common;

use common::{postgres_url, stderr, stdout, Backend, Project, Setup};

/// 20,000 rows, stored in no order of their keys (as updates leave a table), and analyzed: the
/// planner knows the table's size, as on any table autovacuum has seen. Without bitmap scans
/// (which, on a table this small, read only what an index bounds anyway) the planner picks a
/// sequential scan for any condition it cannot bound on both sides, as it does on tables of
/// millions of rows with bitmap scans.
const ROWS: i64 = 20_000;

const TABLE: Setup = Setup {
    sqlite: "",
    postgres: "CREATE TABLE t (id bigint PRIMARY KEY, a bigint NOT NULL, b bigint, n bigint NOT NULL);
               INSERT INTO t SELECT i, i, NULL, i FROM generate_series(1, 20000) AS i ORDER BY random();
               ANALYZE t;
               DO $$ BEGIN
                   EXECUTE format('ALTER DATABASE %I SET enable_bitmapscan = off', current_database());
               END $$;",
};

/// `t.b` takes the NULL-old statement; `bump` reads the column it sets, so it takes the
/// statement that locks its batch first.
const SPEC: &str = "
backfill b on t {
    set b = a * 2
    batch 100
}

migrate bump on t {
    set n = n + 1
    batch 100
}
";

/// Sequential scans of `t` so far, and index entries read. A backend's counts reach the
/// statistics when it ends, which is after its client has gone: read once no other session
/// of the database is left, or the setup's index build (a scan of the table) and a command's
/// reads were counted to the next command, on a busy machine.
fn reads(project: &Project) -> (i64, i64) {
    let others = "SELECT count(*) FROM pg_stat_activity \
                  WHERE datname = current_database() AND pid <> pg_backend_pid()";
    while project.query(others) != ["0"] {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let row = project.query(
        "SELECT seq_scan || ' ' || (SELECT coalesce(sum(idx_tup_read), 0) FROM pg_stat_user_indexes \
         WHERE relname = 't') FROM pg_stat_user_tables WHERE relname = 't'",
    );
    let (scans, index) = row[0].split_once(' ').expect("t has statistics");
    (scans.parse().unwrap(), index.parse().unwrap())
}

/// Each batch walks its keys in the index a few times (to bound the batch, to write it), and
/// reads the entries of the row versions earlier runs left dead until a vacuum (a second
/// `bump` run read 6 to 9 a row, as autovacuum came or not); a scan that runs on past its
/// batch reads the rest of the index every time, thousands of entries per row over a run.
const INDEX_READS_PER_ROW: i64 = 20;

fn assert_runs_without_a_table_scan(project: &Project, args: &[&str]) {
    let (scans, index) = reads(project);
    let out = project.mig(args);
    assert!(out.status.success(), "{}", stderr(&out));
    let (scans_after, index_after) = reads(project);
    let command = args.join(" ");
    assert_eq!(
        scans_after - scans,
        0,
        "`mig {command}` read the whole table"
    );
    eprintln!("mig {command}: {} index reads", index_after - index);
    assert!(
        index_after - index <= INDEX_READS_PER_ROW * ROWS,
        "`mig {command}` read {} index entries for {ROWS} rows",
        index_after - index
    );
}

#[test]
fn runs_plans_and_workers_never_read_the_whole_table() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    assert_runs_without_a_table_scan(&project, &["plan", "t.b"]);
    assert_runs_without_a_table_scan(&project, &["run", "t.b"]);
    assert_runs_without_a_table_scan(&project, &["run", "bump"]);
    assert_runs_without_a_table_scan(&project, &["run", "bump", "--restart", "--again"]);
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = 2 * a AND n = id + 2"),
        ["20000"],
        "every row written"
    );
}

#[test]
fn workers_never_read_the_whole_table() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    assert_runs_without_a_table_scan(&project, &["run", "t.b", "--workers", "3"]);
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = 2 * a"),
        ["20000"],
        "every row written"
    );
}

/// The size in a plan is PostgreSQL's estimate where it has one, and said to be; a table no
/// VACUUM or ANALYZE has seen (autovacuum kept off it here) is counted.
#[test]
fn a_plan_gives_the_estimate_of_an_analyzed_table_and_counts_one_never_analyzed() {
    let Some(url) = postgres_url() else {
        return;
    };
    let analyzed = Project::on(&Backend::Postgres(url.clone()), &TABLE, SPEC);
    let plan = stdout(&analyzed.mig(&["plan", "t.b"]));
    assert!(
        plan.contains("about 20000 rows in the table now (the database's estimate, not a count)"),
        "{plan}"
    );
    // The opening as a batch sends it: the lock timeout in force (mig.toml's 200 ms here),
    // and the lock on the run's row that keeps two processes from writing one run.
    assert!(
        plan.contains("BEGIN; SET LOCAL lock_timeout = '200ms'; ")
            && plan.contains("FROM _mig_runs WHERE id = <the run's id> FOR UPDATE"),
        "{plan}"
    );
    let never = Setup {
        sqlite: "",
        postgres:
            "CREATE TABLE t (id bigint PRIMARY KEY, a bigint NOT NULL, b bigint, n bigint NOT NULL)
                       WITH (autovacuum_enabled = false);
                   INSERT INTO t SELECT i, i, NULL, i FROM generate_series(1, 1234) AS i;",
    };
    let counted = Project::on(&Backend::Postgres(url), &never, SPEC);
    let plan = stdout(&counted.mig(&["plan", "t.b"]));
    assert!(plan.contains("  1234 rows in the table now; "), "{plan}");
}
