//! A re-run updates nothing, NaN included: PostgreSQL holds NaN equal to NaN, and so does
//! mig on both of its paths. The read-compute-write path compared reals as `f64`, for which
//! NaN is never equal to itself, so a NaN was written, and backed up, on every run.
mod common;

use common::{postgres_url, stderr, stdout, Backend, Project, Setup};

#[test]
fn a_nan_that_does_not_change_is_not_written_again() {
    let Some(url) = postgres_url() else {
        return;
    };
    let setup = Setup {
        sqlite: "",
        postgres: "CREATE TABLE big (id integer PRIMARY KEY, f double precision, s text);
                   INSERT INTO big VALUES (1, 'NaN', 'a'), (2, -2.5, 'b'), (3, NULL, 'c');",
    };
    // `upper` only the interpreter computes, so the batch takes the read-compute-write path.
    let spec = "migrate fabs on big {\n    set f = abs(f)\n    set s = upper(s)\n}\n";
    let project = Project::on(&Backend::Postgres(url), &setup, spec);
    let plan = stdout(&project.mig(&["plan", "fabs"]));
    assert!(plan.contains("path: read-compute-write"), "{plan}");

    let out = project.mig(&["run", "fabs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 rows processed, 3 updated"),
        "{}",
        stdout(&out)
    );
    let out = project.mig(&["run", "fabs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("3 rows processed, 0 updated"),
        "{}",
        stdout(&out)
    );
}
