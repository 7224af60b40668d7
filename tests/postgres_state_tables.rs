//! The first run on a database makes mig's own tables there. Where it cannot (a read-only
//! database, as a hot standby is, or a role without CREATE on the schema), mig says what it
//! was doing and what it needs, not only PostgreSQL's bare refusal, and writes no row.
mod common;

use common::{stderr, Backend, Project, Setup};

const TABLE: &str = "CREATE TABLE t (id integer PRIMARY KEY, a integer, b integer);\n\
     INSERT INTO t SELECT g, g, NULL FROM generate_series(1, 10) AS g;\n";

#[test]
fn a_read_only_database_is_refused_naming_the_state_tables_and_what_mig_needs() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let setup = Setup {
        sqlite: "",
        postgres: TABLE,
    };
    let project = Project::on(
        &Backend::Postgres(url),
        &setup,
        "backfill b on t {\n    set b = a * 2\n}\n",
    );
    let db = project.postgres.as_ref().unwrap();
    db.client()
        .batch_execute(&format!(
            "ALTER DATABASE {} SET default_transaction_read_only = on",
            db.name
        ))
        .unwrap();
    let out = project.mig(&["run", "t.b"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "cannot create mig's state tables (_mig_runs, _mig_backup, _mig_claims, \
             _mig_conflicts) in schema public: PostgreSQL: cannot execute CREATE TABLE in a \
             read-only transaction; mig keeps its runs and backups in the database it \
             migrates, so it needs a writable primary and, the first time, CREATE on that schema"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b IS NOT NULL"),
        ["0"]
    );
}
