//! On a PostgreSQL server with lz4, a batch's backup record is compressed with it (several
//! times faster than pglz), and rollback reads it back exactly.
mod common;

use common::{postgres_url, stderr, Backend, Project, Setup};

const TABLE: Setup = Setup {
    sqlite: "",
    postgres: "CREATE TABLE t (id bigint PRIMARY KEY, a bigint NOT NULL, b bigint);
               INSERT INTO t SELECT i, i, CASE WHEN i % 3 = 0 THEN -i END
               FROM generate_series(1, 5000) AS i;",
};

/// Batches of 1,000 rows: their keys and values are far past the size PostgreSQL compresses.
const SPEC: &str = "backfill b on t {\n    set b = a * 2\n    batch 1000\n}\n";

#[test]
fn backup_records_are_compressed_with_lz4_and_roll_back_exactly() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(&Backend::Postgres(url), &TABLE, SPEC);
    let lz4 = project.query(
        "SELECT coalesce(bool_or('lz4' = ANY(enumvals)), false) FROM pg_settings \
         WHERE name = 'default_toast_compression'",
    );
    let before = project.dump("t");
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = if lz4 == ["t"] { "lz4" } else { "pglz" };
    assert_eq!(
        project.query(
            "SELECT DISTINCT pg_column_compression(keys) || ' ' || pg_column_compression(new) \
             FROM _mig_backup"
        ),
        [format!("{expected} {expected}")],
        "every batch's keys and new values compressed"
    );
    let back = project.mig(&["rollback", "t.b"]);
    assert!(back.status.success(), "{}", stderr(&back));
    assert_eq!(project.dump("t"), before, "rollback restores every row");
}
