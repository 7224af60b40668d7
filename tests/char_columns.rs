//! A `char(n)` column on PostgreSQL reads back padded with blanks to its length. Re-running a
//! migration that writes one must change nothing, as on every other column: the values it
//! computes are compared as PostgreSQL compares them, trailing blanks ignored.
mod common;

use common::{backends, postgres_url, stderr, stdout, Backend, Project, Setup};

const NO_TABLES: Setup = Setup {
    sqlite: "",
    postgres: "",
};

/// 30 rows, batch 10; `upper(name)` only the interpreter computes, and every value is
/// shorter than the column, so PostgreSQL pads what mig writes. The first run writes every
/// row; the second finds each row holding its value already and writes none, backs up none.
#[test]
fn a_second_run_into_a_char_column_writes_nothing() {
    let Some(url) = postgres_url() else {
        return;
    };
    let spec = "migrate codes on labels {\n    set code = upper(name)\n    batch 10\n}\n";
    let project = Project::on(&Backend::Postgres(url), &NO_TABLES, spec);
    project.execute(
        "CREATE TABLE labels (id integer PRIMARY KEY, name text, code char(5));
         INSERT INTO labels SELECT i, CASE i % 3 WHEN 0 THEN 'ab' WHEN 1 THEN ' lea' ELSE 'xyz ' END,
                                   NULL
         FROM generate_series(1, 30) AS i;",
    );
    let plan = stdout(&project.mig(&["plan", "codes"]));
    assert!(plan.contains("path: read-compute-write"), "{plan}");

    let first = project.mig(&["run", "codes"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("30 rows processed, 30 updated"),
        "{}",
        stdout(&first)
    );
    let written = project.dump("labels");

    let second = project.mig(&["run", "codes"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("run 2: 30 rows processed, 0 updated"),
        "{}",
        stdout(&second)
    );
    assert_eq!(project.dump("labels"), written);
    assert_eq!(
        project.query("SELECT DISTINCT run_id FROM _mig_backup"),
        ["1"],
        "the second run backed up nothing"
    );
    assert_eq!(
        project.query(
            "SELECT concat_ws(' ', count(*) FILTER (WHERE code = ' LEA'), \
             count(*) FILTER (WHERE code = 'LEA'), count(*) FILTER (WHERE code = 'XYZ')) FROM labels"
        ),
        ["10 0 10"],
        "a leading blank is part of the value: ` LEA` is not `LEA`"
    );
}

const STATUSES: Setup = Setup {
    sqlite: "CREATE TABLE t (id integer PRIMARY KEY, status char(3), code varchar(10), note text);
             INSERT INTO t VALUES (1, 'A', 'x', NULL), (2, 'AB', 'y', NULL), (3, 'ABC', 'z', NULL);",
    postgres: "CREATE TABLE t (id integer PRIMARY KEY, status char(3), code varchar(10), note text);
               INSERT INTO t VALUES (1, 'A', 'x', NULL), (2, 'AB', 'y', NULL), (3, 'ABC', 'z', NULL);",
};

/// A `char(3)` holding `'A'` is `'A  '` on PostgreSQL, which compares, measures and casts it
/// without the blanks. Read padded, a `where status = 'A'` matched no row, `set code = status`
/// copied the blanks, `length` counted them, and a validation failed on every short value;
/// the same spec on SQLite (which stores `'A'`) did otherwise. Both stores now agree.
#[test]
fn a_char_column_reads_as_its_value_without_the_padding() {
    let spec = "migrate flag_a on t {\n    set note = 'status A'\n    where status = 'A'\n}\n\
                migrate copy_status on t {\n    set code = status\n    set note = status || '|' || length(status)\n}\n\
                validate status_known on t {\n    expect status in ('A', 'AB', 'ABC')\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &STATUSES, spec);
        let flagged = project.mig(&["run", "flag_a"]);
        assert!(
            flagged.status.success(),
            "{backend:?}: {}",
            stderr(&flagged)
        );
        assert!(
            stdout(&flagged).contains("3 rows processed, 1 updated"),
            "{backend:?}: {}",
            stdout(&flagged)
        );
        let copied = project.mig(&["run", "copy_status"]);
        assert!(copied.status.success(), "{backend:?}: {}", stderr(&copied));
        assert_eq!(
            project.query("SELECT code || ' ' || note FROM t ORDER BY id"),
            ["A A|1", "AB AB|2", "ABC ABC|3"],
            "{backend:?}"
        );
        let validated = project.mig(&["validate", "status_known"]);
        assert!(
            validated.status.success(),
            "{backend:?}: {}",
            stdout(&validated)
        );
        let rolled_back = project.mig(&["rollback", "copy_status"]);
        assert!(
            rolled_back.status.success(),
            "{backend:?}: {}",
            stderr(&rolled_back)
        );
        assert_eq!(
            project.query("SELECT concat_ws(',', code, note) FROM t ORDER BY id"),
            ["x,status A", "y", "z"],
            "{backend:?}"
        );
    }
}
