//! Fuzzing the `.mig` parser and compiler on the stable toolchain: generated specs (token
//! soup, mutations of real specs, random bytes, deep nesting, huge numbers, long names) must
//! parse or compile to diagnostics, never panic and never overflow the stack.
//!
//! `cargo test --release --test parser_fuzz` runs a short round and replays
//! `tests/data/fuzz_corpus/`. A long round: `MIG_FUZZ_CASES=2000000 cargo test --release
//! --test parser_fuzz -- --nocapture generated`. Each input that ever broke something is kept
//! in the corpus folder.

use mig::compile::{compile, render_diagnostics, Schema, SourceFile, TableSchema};
use mig::syntax::ast::{Item, StatementKind};
use mig::syntax::parser::MAX_NESTING;
use mig::syntax::{parse, parse_recovering};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::fs;
use std::path::{Path, PathBuf};

fn schema() -> Schema {
    let table = |name: &str, columns: &[&str], key: &[&str]| TableSchema {
        name: name.to_string(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        primary_key: key.iter().map(|c| c.to_string()).collect(),
        ..TableSchema::default()
    };
    Schema {
        tables: vec![
            table(
                "users",
                &["id", "first_name", "last_name", "email", "full_name"],
                &["id"],
            ),
            table("pairs", &["a", "b"], &["a", "b"]),
        ],
    }
}

/// Everything a spec author's text goes through before a database is touched. Returns the
/// rendered diagnostics, empty when the text compiled.
fn exercise(text: &str) -> String {
    let (parsed, syntax_errors) = parse_recovering(text);
    assert_eq!(parse(text).is_ok(), syntax_errors.is_empty());
    for item in &parsed.items {
        if let Item::Block(block) = item {
            for statement in &block.statements {
                if let StatementKind::Set { value, .. }
                | StatementKind::Where(value)
                | StatementKind::Expect(value) = &statement.kind
                {
                    prints_back(&value.to_string());
                }
            }
        }
    }
    let file = SourceFile {
        path: "fuzz.mig".to_string(),
        text: text.to_string(),
    };
    let files = std::slice::from_ref(&file);
    if let Err(all) = compile(files, None) {
        render_diagnostics(&all);
    }
    match compile(files, Some(&schema())) {
        Ok(catalog) => {
            for migration in &catalog.migrations {
                for set in &migration.sets {
                    set.value.to_string();
                }
            }
            String::new()
        }
        Err(all) => render_diagnostics(&all),
    }
}

/// The canonical print of an expression parses back to an expression that prints the same:
/// the spec hash is taken over this form. The print parenthesises every nested operator, so
/// it may count more nesting levels than the text it came from; past the limit it is refused
/// like any too-deep text.
fn prints_back(printed: &str) {
    let text = format!("migrate m on users {{\n    set email = {printed}\n}}\n");
    let file = match parse(&text) {
        Ok(file) => file,
        Err(errors)
            if errors
                .iter()
                .all(|e| e.message.contains("nested too deeply")) =>
        {
            return
        }
        Err(errors) => panic!("printed form {printed:?} does not parse: {errors:?}"),
    };
    let Some(Item::Block(block)) = file.items.first() else {
        panic!("no block in {text:?}");
    };
    let StatementKind::Set { value, .. } = &block.statements[0].kind else {
        panic!("no set in {text:?}");
    };
    assert_eq!(
        value.to_string(),
        printed,
        "print, parse, print changed the text"
    );
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz_corpus")
}

/// Seeds for mutation: the corpus, the golden bad specs and the demo spec.
fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in [
        corpus_dir(),
        root.join("tests/data/diagnostics"),
        root.join("specs"),
    ] {
        let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "mig"))
            .collect();
        paths.sort();
        for p in paths {
            let bytes = fs::read(&p).expect("corpus file");
            seeds.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    seeds
}

const TOKENS: &[&str] = &[
    "backfill",
    "migrate",
    "validate",
    "table",
    "on",
    "key",
    "set",
    "where",
    "batch",
    "pause",
    "lock_timeout",
    "retries",
    "check",
    "not_null",
    "unique",
    "expect",
    "users",
    "full_name",
    "email",
    "id",
    "first_name",
    "x",
    "_",
    "{",
    "}",
    "(",
    ")",
    ",",
    "=",
    "<>",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "and",
    "or",
    "not",
    "is",
    "null",
    "in",
    "between",
    "matches",
    "true",
    "false",
    "lower",
    "upper",
    "trim",
    "length",
    "substr",
    "replace",
    "coalesce",
    "nullif",
    "abs",
    "round",
    "concat",
    "0",
    "1",
    "1000",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999999",
    "1.5",
    "1e3",
    "1.0e308",
    "1.0e999",
    "0ms",
    "50ms",
    "2s",
    "1m",
    "18446744073709551616s",
    "'text'",
    "'it''s'",
    "'",
    "''",
    "'(['",
    "'\\'",
    "--",
    "-- comment\n",
    "\n",
    "\t",
    " ",
    "\r\n",
    "\"",
    "`",
    ";",
    "\0",
    "uѕers",
    "é",
    "🦀",
    "DROP TABLE users",
    "users; DROP TABLE users",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(TOKENS),
            prop::sample::select(&[" ", "\n", ""][..]),
        ),
        0..120,
    )
    .prop_map(|parts| parts.into_iter().map(|(t, s)| format!("{t}{s}")).collect())
}

/// A well-formed block around a generated expression, so the soup reaches the expression
/// rules and the compiler's checks instead of stopping at the block header.
fn block_with_soup() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["backfill full_name", "migrate m", "validate v"][..]),
        prop::sample::select(&["set full_name =", "where", "expect", "set email ="][..]),
        token_soup(),
    )
        .prop_map(|(head, statement, soup)| {
            format!("{head} on users {{\n    {statement} {soup}\n}}\n")
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, token: &'static str },
    Duplicate { at: usize, len: usize },
    Truncate { at: usize },
    Byte { at: usize, byte: u8 },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (at, prop::sample::select(TOKENS)).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (at, 1..200usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Byte { at, byte }),
    ]
}

/// Applies byte-level mutations, then reads the bytes back as text the way `mig` reads a file
/// that is not UTF-8 (lossily here, so the parser still sees the damage).
fn mutate(seed: &str, mutations: &[Mutation]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for m in mutations {
        let n = bytes.len();
        let pos = |at: usize| if n == 0 { 0 } else { at % (n + 1) };
        match *m {
            Mutation::Delete { at, len } => {
                let start = pos(at);
                let end = (start + len).min(n);
                bytes.drain(start..end);
            }
            Mutation::Insert { at, token } => {
                let start = pos(at);
                bytes.splice(start..start, token.bytes());
            }
            Mutation::Duplicate { at, len } => {
                let start = pos(at);
                let end = (start + len).min(n);
                let copy = bytes[start..end].to_vec();
                bytes.splice(end..end, copy);
            }
            Mutation::Truncate { at } => bytes.truncate(pos(at)),
            Mutation::Byte { at, byte } => {
                if n > 0 {
                    bytes[at % n] = byte;
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mutated(seeds: Vec<String>) -> impl Strategy<Value = String> {
    (
        prop::sample::select(seeds),
        prop::collection::vec(mutation(), 1..8),
    )
        .prop_map(|(seed, mutations)| mutate(&seed, &mutations))
}

/// Nesting at and far beyond the limit, in every construct that nests.
fn nested() -> impl Strategy<Value = String> {
    let shapes: &[(&str, &str, &str)] = &[
        ("(", "x", ")"),
        ("not ", "x", ""),
        ("- ", "1", ""),
        ("-", "1", ""),
        ("lower(", "x", ")"),
        ("x in (", "x", ")"),
        ("coalesce(x, ", "1", ")"),
        ("not (", "x", ")"),
        ("(-", "1", ")"),
    ];
    (
        prop::sample::select(shapes),
        prop_oneof![0..(MAX_NESTING + 4), 0..5_000usize],
    )
        .prop_map(|((open, middle, close), depth)| {
            format!(
                "migrate m on users {{\n    set email = {}{middle}{}\n}}\n",
                open.repeat(depth),
                close.repeat(depth)
            )
        })
}

fn long_names_and_numbers() -> impl Strategy<Value = String> {
    (1..20_000usize, "[0-9]{1,400}", prop::sample::select(&["", "ms", "s", "m", ".5", "e9"][..]))
        .prop_map(|(len, digits, suffix)| {
            let name = "n".repeat(len);
            format!(
                "backfill {name} on {name} {{\n    set {name} = {digits}{suffix}\n    batch {digits}\n    pause {digits}{suffix}\n    retries {digits}\n}}\n"
            )
        })
}

fn random_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        any::<String>(),
    ]
}

/// Expressions built from the grammar's own pieces, so most of them parse and reach the
/// compiler's checks (function arity, regexes, types) and the printer.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(&["email", "first_name", "full_name", "id", "nope", "x"][..])
            .prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
        "[0-9]{1,25}",
        any::<f64>().prop_map(|r| format!("{r:?}")),
        "'([^']|'')*'",
        prop::sample::select(&["true", "false", "null", "NULL", "True"][..])
            .prop_map(str::to_string),
    ];
    leaf.prop_recursive(6, 64, 4, |inner| {
        let binary = prop::sample::select(
            &[
                "or", "and", "=", "<>", "!=", "<", "<=", ">", ">=", "||", "+", "-", "*", "/", "%",
            ][..],
        );
        let function = prop::sample::select(
            &[
                "lower", "upper", "trim", "length", "substr", "replace", "coalesce", "nullif",
                "abs", "round", "concat", "nope",
            ][..],
        );
        prop_oneof![
            (inner.clone(), binary, inner.clone()).prop_map(|(l, op, r)| format!("{l} {op} {r}")),
            inner.clone().prop_map(|e| format!("({e})")),
            inner.clone().prop_map(|e| format!("not {e}")),
            inner.clone().prop_map(|e| format!("-{e}")),
            inner.clone().prop_map(|e| format!("{e} is not null")),
            (inner.clone(), prop::collection::vec(inner.clone(), 1..4))
                .prop_map(|(e, list)| format!("{e} not in ({})", list.join(", "))),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(e, lo, hi)| format!("{e} between {lo} and {hi}")),
            (inner.clone(), "[a-z.*+?()\\[\\]{}|^$0-9]{0,12}")
                .prop_map(|(e, re)| format!("{e} matches '{re}'")),
            (function, prop::collection::vec(inner, 0..4))
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
        ]
    })
}

fn structured_block() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["backfill full_name", "migrate m", "validate v"][..]),
        prop::collection::vec(
            (
                prop::sample::select(&["set full_name =", "set email =", "where", "expect"][..]),
                expression(),
            ),
            1..4,
        ),
    )
        .prop_map(|(head, statements)| {
            let body: String = statements
                .iter()
                .map(|(keyword, e)| format!("    {keyword} {e}\n"))
                .collect();
            format!("{head} on users {{\n{body}}}\n")
        })
}

fn generated_spec(seeds: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => structured_block(),
        3 => mutated(seeds),
        2 => block_with_soup(),
        1 => token_soup(),
        1 => nested(),
        1 => long_names_and_numbers(),
        1 => random_text(),
    ]
}

#[test]
fn generated_specs_never_panic() {
    let cases = std::env::var("MIG_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&generated_spec(seeds()), |text| {
        exercise(&text);
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

#[test]
fn corpus_parses_or_fails_cleanly() {
    let mut paths: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("tests/data/fuzz_corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "only {} corpus files", paths.len());
    for path in paths {
        let bytes = fs::read(&path).expect("corpus file");
        let text = String::from_utf8_lossy(&bytes);
        let outcome = std::panic::catch_unwind(|| exercise(&text));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for (open, middle, close) in [
        ("(", "x", ")"),
        ("not ", "x", ""),
        ("- ", "1", ""),
        ("lower(", "x", ")"),
    ] {
        for depth in [MAX_NESTING + 1, 1_000, 100_000] {
            let text = format!(
                "migrate m on users {{\n    set email = {}{middle}{}\n}}\n",
                open.repeat(depth),
                close.repeat(depth)
            );
            let rendered = exercise(&text);
            assert!(
                rendered.contains("nested too deeply"),
                "{open}… ×{depth}: {rendered}"
            );
        }
    }
}

#[test]
fn nesting_up_to_the_limit_compiles() {
    let depth = MAX_NESTING - 2;
    let text = format!(
        "migrate m on users {{\n    set email = {}email{}\n}}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    assert_eq!(exercise(&text), "");
}

#[test]
fn long_flat_expressions_are_not_nesting() {
    let terms = vec!["email"; 20_000].join(" || ");
    let text = format!("migrate m on users {{\n    set email = {terms}\n}}\n");
    let rendered = exercise(&text);
    assert!(
        rendered.is_empty() || rendered.contains("nested too deeply"),
        "{}",
        &rendered[..rendered.len().min(2_000)]
    );
}
