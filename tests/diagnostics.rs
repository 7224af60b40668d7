//! Golden `mig check` output: every `tests/data/diagnostics/NAME.mig` compiles against a fixed
//! schema to exactly the text in `NAME.out`. `UPDATE_GOLDEN=1 cargo test` rewrites the goldens.

use mig::compile::{
    compile, render_diagnostics, ColumnLimits, Idempotence, Schema, SourceFile, TableSchema,
};
use mig::store::sqlite::{column_values, ColumnStorage};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

fn table(name: &str, columns: &[&str], primary_key: &[&str]) -> TableSchema {
    TableSchema {
        name: name.to_string(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        primary_key: primary_key.iter().map(|c| c.to_string()).collect(),
        ..TableSchema::default()
    }
}

/// A table with columns a PostgreSQL store limits, with the reasons it gives: a `double
/// precision` primary key, a jsonb column, a generated column and a numeric.
fn readings() -> TableSchema {
    let mut readings = table(
        "readings",
        &["id", "serial", "mood", "doubled", "amount", "level"],
        &["id"],
    );
    let limit = |unreadable: Option<&str>, unwritable: Option<&str>, unwalkable: Option<&str>| {
        ColumnLimits {
            unreadable: unreadable.map(str::to_string),
            unwritable: unwritable.map(str::to_string),
            unwalkable: unwalkable.map(str::to_string),
        }
    };
    let jsonb = "has type jsonb, which mig cannot read or write (supported: smallint, \
                 integer, bigint, real, double precision, numeric (read only), text, \
                 varchar, char, boolean, bytea, uuid, enums, and domains over them)";
    let numeric = "is numeric: mig reads numerics as reals and will not write one back, \
                   which could lose precision";
    readings.limits = BTreeMap::from([
        (
            "id".to_string(),
            limit(
                None,
                None,
                Some("is double precision: mig walks integer, text or uuid keys only"),
            ),
        ),
        ("mood".to_string(), limit(Some(jsonb), None, None)),
        (
            "doubled".to_string(),
            limit(
                None,
                Some("is a generated column: PostgreSQL computes its values"),
                None,
            ),
        ),
        (
            "amount".to_string(),
            limit(
                None,
                Some(numeric),
                Some("is numeric(10,2): mig walks integer, text or uuid keys only"),
            ),
        ),
    ]);
    readings
}

/// `table` with `text` columns declared TEXT, as the SQLite store reads them: of TEXT
/// affinity, holding only text or blobs.
fn with_text(mut table: TableSchema, text: &[&str]) -> TableSchema {
    for column in text {
        let values =
            column_values("TEXT", ColumnStorage::Affinity).expect("TEXT is of TEXT affinity");
        table.values.insert(column.to_string(), values);
    }
    table
}

/// The schema of `tests/check_cli.rs`'s SQLite database, where every golden spec is checked
/// through the binary too.
fn schema() -> Schema {
    let users = ["id", "first_name", "last_name", "email", "full_name"];
    Schema {
        tables: vec![
            with_text(table("users", &users, &["id"]), &users[1..]),
            with_text(
                table("orders", &["id", "user_id", "total", "status"], &["id"]),
                &["status"],
            ),
            table("pairs", &["a", "b"], &["a", "b"]),
            with_text(
                table("accounts", &["id", "code", "balance"], &["id"]),
                &["code"],
            ),
            readings(),
        ],
    }
}

fn source(path: &str) -> SourceFile {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    SourceFile {
        path: path.to_string(),
        text,
    }
}

#[test]
fn bad_specs_render_their_golden_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/diagnostics");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .expect("diagnostics folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".mig").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 12, "only {} golden specs", names.len());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut mismatched = Vec::new();
    for name in &names {
        let file = source(&format!("tests/data/diagnostics/{name}.mig"));
        let rendered = match compile(std::slice::from_ref(&file), Some(&schema())) {
            Ok(_) => panic!("{name}.mig compiled, but every golden spec here is bad"),
            Err(all) => render_diagnostics(&all),
        };
        let golden = dir.join(format!("{name}.out"));
        if update {
            fs::write(&golden, &rendered).expect("write golden");
        } else if fs::read_to_string(&golden).ok().as_deref() != Some(rendered.as_str()) {
            eprintln!("--- {name}.out differs; got:\n{rendered}");
            mismatched.push(name.clone());
        }
    }
    assert!(
        mismatched.is_empty(),
        "goldens differ: {mismatched:?} (UPDATE_GOLDEN=1 rewrites them)"
    );
}

#[test]
fn the_demo_spec_compiles_with_no_errors() {
    let file = source("tests/data/good/users.mig");
    let catalog =
        compile(&[file], Some(&schema())).unwrap_or_else(|e| panic!("{}", render_diagnostics(&e)));
    let names: Vec<_> = catalog.migrations.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["users.full_name", "normalize_email"]);
    let names: Vec<_> = catalog
        .validations
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["no_nulls", "email_format"]);
    let email = &catalog.migration("normalize_email").expect("declared").sets[0];
    assert_eq!(email.column, "email");
    assert!(
        matches!(email.idempotence, Idempotence::Proven(_)),
        "{:?}",
        email.idempotence
    );
    assert_eq!(
        catalog
            .migration("users.full_name")
            .expect("declared")
            .checks,
        ["no_nulls"]
    );
}

#[test]
fn the_shipped_demo_spec_is_the_tested_one() {
    assert_eq!(
        source("specs/users.mig"),
        SourceFile {
            path: "specs/users.mig".into(),
            ..source("tests/data/good/users.mig")
        }
    );
}

#[test]
fn errors_are_grouped_per_file_in_input_order() {
    let files = [
        source("tests/data/diagnostics/integer_overflow.mig"),
        source("tests/data/good/users.mig"),
        source("tests/data/diagnostics/functions.mig"),
    ];
    let all = compile(&files, Some(&schema())).expect_err("two bad files");
    let paths: Vec<_> = all.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tests/data/diagnostics/integer_overflow.mig",
            "tests/data/diagnostics/functions.mig"
        ]
    );
    assert!(render_diagnostics(&all).ends_with("error: could not compile: 4 errors in 2 files\n"));
}
