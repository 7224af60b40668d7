//! What a batch transaction on PostgreSQL runs under, seen from inside it, and what the
//! session settings of a database cannot change about a run.
mod common;

use common::{postgres_url, stderr, Backend, Project, Setup};

/// A trigger on the migrated table records the settings its UPDATE ran under: no statement
/// of a batch is compiled (`jit`), whatever the database's default. A foreign key cascading
/// into a table without an index otherwise paid a compilation for every row (README).
#[test]
fn a_batch_compiles_no_statement_whatever_the_database_sets() {
    let Some(url) = postgres_url() else {
        return;
    };
    let setup = Setup {
        sqlite: "",
        postgres: "CREATE TABLE t (id bigint PRIMARY KEY, a bigint, b bigint);
                   INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 50) AS i;
                   CREATE TABLE seen (jit text);
                   CREATE FUNCTION note_settings() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN INSERT INTO seen VALUES (current_setting('jit')); RETURN NEW; END $$;
                   CREATE TRIGGER note BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION note_settings();
                   DO $$ BEGIN
                       EXECUTE format('ALTER DATABASE %I SET jit = on', current_database());
                   END $$;",
    };
    let spec = "backfill b on t {\n    set b = a * 2\n    batch 10\n}\n";
    let project = Project::on(&Backend::Postgres(url), &setup, spec);
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT jit || ' ' || count(*) FROM seen GROUP BY jit"),
        ["off 50"]
    );
}

/// Backups keep old values as text. A database whose sessions print floats with fewer
/// digits (`extra_float_digits = 0`) had every real and double restored rounded
/// (`0.43333334` came back as `0.433333`).
#[test]
fn floats_are_restored_exactly_whatever_digits_the_database_prints() {
    let Some(url) = postgres_url() else {
        return;
    };
    let setup = Setup {
        sqlite: "",
        postgres: "CREATE TABLE f (id bigint PRIMARY KEY, x double precision, y real,
                       x0 double precision, y0 real);
                   INSERT INTO f SELECT i, i / 3.0, i / 7.0, i / 3.0, i / 7.0
                   FROM generate_series(1, 200) AS i;
                   DO $$ BEGIN
                       EXECUTE format('ALTER DATABASE %I SET extra_float_digits = 0', current_database());
                   END $$;",
    };
    let spec = "migrate halve on f {\n    set x = x / 2\n    set y = y / 2\n    batch 50\n}\n";
    let project = Project::on(&Backend::Postgres(url), &setup, spec);
    let out = project.mig(&["run", "halve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = project.mig(&["rollback", "halve"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project
            .query("SELECT count(*) FROM f WHERE x IS DISTINCT FROM x0 OR y IS DISTINCT FROM y0"),
        ["0"]
    );
}
