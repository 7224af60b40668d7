//! `set cents = round(amount * 100)` fills an integer column from a real one. `round` gives a
//! real, and on PostgreSQL `mig check` refused it for a column that holds only integers
//! (`bigint`), though no other function turns a real into an integer. A whole real now goes
//! in as that integer, as SQLite's integer columns take it; one with a fraction or beyond the
//! column's range is still refused.
mod common;

use common::{backends, postgres_url, stderr, stdout, Backend, Project, Setup};

const TABLES: Setup = Setup {
    sqlite: "CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, cents INTEGER) STRICT;
             INSERT INTO orders VALUES (1, 1.25, NULL), (2, 2.675, NULL), (3, NULL, NULL), (4, -0.004, NULL);
             CREATE TABLE huge (id INTEGER PRIMARY KEY, amount REAL, cents INTEGER) STRICT;
             INSERT INTO huge VALUES (1, 1.0, NULL), (2, 1e300, NULL);",
    postgres: "CREATE TABLE orders (id integer PRIMARY KEY, amount double precision, cents bigint);
               INSERT INTO orders VALUES (1, 1.25, NULL), (2, 2.675, NULL), (3, NULL, NULL), (4, -0.004, NULL);
               CREATE TABLE huge (id integer PRIMARY KEY, amount double precision, cents bigint);
               INSERT INTO huge VALUES (1, 1.0, NULL), (2, 1e300, NULL);",
};

const SPEC: &str = "backfill cents on orders {\n    set cents = round(amount * 100)\n}\n\n\
                    backfill cents on huge {\n    set cents = round(amount * 100)\n    batch 1\n}\n";

#[test]
fn a_whole_real_from_round_fills_an_integer_column_and_rolls_back() {
    for backend in backends() {
        let name = backend.name();
        let project = Project::on(&backend, &TABLES, SPEC);
        let out = project.mig(&["check"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));

        let out = project.mig(&["run", "orders.cents"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let cents = || project.query("SELECT coalesce(cents, -1) FROM orders ORDER BY id");
        // Halves away from zero, as the interpreter rounds on both stores.
        assert_eq!(cents(), ["125", "268", "-1", "0"], "{name}");

        let out = project.mig(&["run", "orders.cents", "--again"]);
        assert!(
            stdout(&out).contains("4 rows processed, 0 updated"),
            "{name}: a re-run changes nothing: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let out = project.mig(&["rollback", "orders.cents"]);
        assert!(
            stdout(&out).contains("3 rows restored, 0 conflicts"),
            "{name}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(cents(), ["-1", "-1", "-1", "-1"], "{name}");

        // 1e302 is whole but no bigint: the batch that meets it fails and writes nothing.
        let out = project.mig(&["run", "huge.cents"]);
        assert_eq!(out.status.code(), Some(4), "{name}: {}", stdout(&out));
        assert_eq!(
            project.query("SELECT coalesce(cents, -1) FROM huge ORDER BY id"),
            ["100", "-1"],
            "{name}: {}",
            stderr(&out)
        );
    }
}

/// PostgreSQL's `bigint` takes integers alone. (A STRICT SQLite `INTEGER` column takes any
/// real it can hold exactly, and SQLite refuses the others as it writes them.)
#[test]
fn a_real_that_may_keep_a_fraction_is_still_refused_for_a_bigint() {
    let Some(url) = postgres_url() else {
        return;
    };
    let project = Project::on(
        &Backend::Postgres(url),
        &TABLES,
        "backfill cents on orders {\n    set cents = round(amount * 100, 1)\n}\n",
    );
    let out = project.mig(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out)
            .contains("`set cents` needs an integer; `round(amount * 100, 1)` gives a real"),
        "{}",
        stderr(&out)
    );
}
