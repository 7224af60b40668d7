//! `mig plan` output, through the real binary, against reviewed golden files.
//! `UPDATE_GOLDEN=1 cargo test --test plan_golden` rewrites them.
mod common;

use common::{stderr, stdout, Project};
use std::path::Path;

fn check_plan(project: &Project, args: &[&str], golden: &str) {
    let out = project.mig(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/plan")
        .join(golden);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, stdout(&out)).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        stdout(&out),
        want,
        "{args:?} differs from {}",
        path.display()
    );
}

fn accounts() -> Project {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/plan");
    Project::sqlite(
        &std::fs::read_to_string(data.join("accounts.sql")).unwrap(),
        &std::fs::read_to_string(data.join("accounts.mig")).unwrap(),
    )
}

#[test]
fn plan_of_a_migrate_with_filter_throttle_and_check() {
    check_plan(&accounts(), &["plan", "tidy_accounts"], "tidy_accounts.out");
}

#[test]
fn plan_with_a_row_limit_and_batch_override() {
    check_plan(
        &accounts(),
        &[
            "plan",
            "accounts.name",
            "--batch",
            "1000",
            "--limit",
            "1500",
        ],
        "accounts.name.limit.out",
    );
}

#[test]
fn plan_says_a_set_that_reads_its_own_column_is_not_idempotent() {
    check_plan(&accounts(), &["plan", "bump"], "bump.out");
}

#[test]
fn plan_of_the_demo_backfill() {
    check_plan(
        &Project::demo(),
        &["plan", "users.full_name"],
        "users.full_name.out",
    );
}

#[test]
fn plan_of_an_unknown_migration_names_the_known_ones() {
    let out = accounts().mig(&["plan", "tidy"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: no migration named `tidy` (known: tidy_accounts, accounts.name, bump)\n"
    );
}
