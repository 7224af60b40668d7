//! A batch that changes megabytes of rows commits like a small one. On SQLite each batch
//! keeps a statement journal of the pages it changes; a journal once set to spill to disk in
//! one 4 MiB write made every such batch fail with "database or disk is full" (the unix VFS
//! writes at most 128 KiB at a time), and every resume failed the same way.
mod common;

use common::{backends, stderr, Project, Setup};

/// 3,000 rows of 5,000-byte text, batches of 1,000: about 5 MB changed in each.
const DOCS: Setup = Setup {
    sqlite: "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO docs SELECT i, printf('%.5000c', char(97 + i % 26)) FROM n;",
    postgres: "CREATE TABLE docs (id integer PRIMARY KEY, body text);
               INSERT INTO docs SELECT i, repeat(chr(97 + i % 26), 5000)
               FROM generate_series(1, 3000) AS i;",
};

#[test]
fn batches_of_megabytes_run_and_roll_back_exactly() {
    let spec = "migrate shout on docs {\n    set body = upper(body)\n    batch 1000\n}\n";
    for backend in backends() {
        let project = Project::on(&backend, &DOCS, spec);
        let before = project.dump("docs");
        let out = project.mig(&["run", "shout"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        let upper = project
            .query("SELECT count(*) FROM docs WHERE body = upper(body) AND length(body) = 5000");
        assert_eq!(upper, ["3000"], "{}", backend.name());

        let out = project.mig(&["rollback", "shout"]);
        assert!(out.status.success(), "{}: {}", backend.name(), stderr(&out));
        assert_eq!(project.dump("docs"), before, "{}", backend.name());
    }
}
