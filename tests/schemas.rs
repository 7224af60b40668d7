//! Databases laid out as DBAs lay them out: on PostgreSQL a schema whose name needs quoting
//! as the search path's first, on SQLite a virtual table of an extension mig has not loaded.
//! Each once stopped every command: `mig check` said the database was unreachable (and
//! exited 0 without checking anything), `mig run` failed on the schema.
mod common;

use common::{postgres_url, stderr, stdout, Backend, Project, Setup};

#[test]
fn a_search_path_schema_whose_name_needs_quoting_is_read_and_migrated() {
    let spec = "backfill total on orders {\n    set total = qty * 10\n    batch 7\n}\n";
    let Some(project) = Project::postgres(
        "CREATE SCHEMA \"Sales\";
                   CREATE TABLE \"Sales\".orders (id integer PRIMARY KEY, qty integer, total integer);
                   INSERT INTO \"Sales\".orders SELECT i, i, NULL FROM generate_series(1, 30) AS i;
                   DO $$ BEGIN
                       EXECUTE format('ALTER DATABASE %I SET search_path = \"Sales\"', current_database());
                   END $$;",
        spec,
    ) else {
        return;
    };
    let out = project.mig(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("checked against the live schema"),
        "{}",
        stdout(&out)
    );

    let out = project.mig(&["run", "orders.total"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM \"Sales\".orders WHERE total = qty * 10"),
        ["30"]
    );
    assert_eq!(
        project.query("SELECT count(*) FROM \"Sales\"._mig_runs"),
        ["1"],
        "mig's tables live beside the table, in the search path's first schema"
    );
    let out = project.mig(&["rollback", "orders.total"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM \"Sales\".orders WHERE total IS NULL"),
        ["30"]
    );
}

/// The virtual table is declared as an extension declares one; this process has no such
/// module, so reading its columns fails.
#[test]
fn a_virtual_table_of_an_extension_mig_lacks_is_passed_over() {
    let project = Project::sqlite(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER);
         INSERT INTO t VALUES (1, 1, NULL), (2, 2, NULL);
         PRAGMA writable_schema = ON;
         INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql)
             VALUES ('table', 'vt', 'vt', 0, 'CREATE VIRTUAL TABLE vt USING vec0(embedding float[4])');
         PRAGMA writable_schema = OFF;",
        "backfill b on t {\n    set b = a * 2\n}\n",
    );
    let out = project.mig(&["check"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("checked against the live schema"),
        "{}",
        stdout(&out)
    );
    let out = project.mig(&["run", "t.b"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM t WHERE b = a * 2"),
        ["2"]
    );
}

/// `items_archive` inherits from `items`, and its row 1 shares a key with one of `items`:
/// an UPDATE of `items` reaches it too, so the run wrote the archive's row as if it were
/// the parent's, and the rollback gave it the parent's old value. Refused before any run;
/// a partitioned table, whose key covers its partitions, is migrated as before.
#[test]
fn a_table_others_inherit_from_is_refused_and_a_partitioned_one_is_not() {
    let spec = "migrate shout on items {\n    set v = upper(v)\n}\n";
    let Some(project) = Project::postgres(
        "CREATE TABLE items (id integer PRIMARY KEY, v text);
                   CREATE TABLE items_archive () INHERITS (items);
                   INSERT INTO items VALUES (1, 'a'), (2, 'b');
                   INSERT INTO items_archive VALUES (1, 'x'), (3, 'y');
                   CREATE TABLE events (id integer PRIMARY KEY, v text) PARTITION BY RANGE (id);
                   CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (10);
                   CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (10) TO (100);
                   INSERT INTO events SELECT i, 'e' || i FROM generate_series(1, 30) AS i;",
        spec,
    ) else {
        return;
    };
    let before =
        project.query("SELECT tableoid::regclass || ':' || id || ':' || v FROM items ORDER BY 1");
    for command in [vec!["check"], vec!["run", "shout"]] {
        let out = project.mig(&command);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(
                "table `items` has tables that inherit from it (`items_archive`): every statement on it reaches their rows too"
            ),
            "{command:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        project.query("SELECT tableoid::regclass || ':' || id || ':' || v FROM items ORDER BY 1"),
        before
    );

    project.write_spec("migrate shout on events {\n    set v = upper(v)\n    batch 7\n}\n");
    let out = project.mig(&["run", "shout"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        project.query("SELECT count(*) FROM events WHERE v = 'E' || id"),
        ["30"]
    );
}

/// Runs `mig ARGS` as a role that may not read `pg_inherits` (revoked from PUBLIC, as some
/// hardened databases do), in a database holding `tables` and a spec backfilling `t.b`.
fn as_role_denied_pg_inherits(tables: &'static str, args: &[&str]) -> Option<std::process::Output> {
    let setup = Setup {
        sqlite: "",
        postgres: tables,
    };
    let project = Project::on(
        &Backend::Postgres(postgres_url()?),
        &setup,
        "backfill b on t {\n    set b = a\n}\n",
    );
    let db = project.postgres.as_ref().unwrap();
    let role = db.role(
        "reader",
        "REVOKE SELECT ON pg_catalog.pg_inherits FROM PUBLIC;",
    );
    let out = project
        .command(args)
        .env("MIG_DATABASE_URL", &role.url)
        .output()
        .unwrap();
    Some(out)
}

/// `mig check` checks specs without the schema only where the database cannot be opened.
/// Here it opens, but the role may not read a catalog table mig needs (`pg_inherits`, read
/// because a table has inheriting children): an error, exit 4, where it once printed "the
/// database is not reachable" and exited 0 with nothing checked against it.
#[test]
fn a_schema_that_cannot_be_read_fails_mig_check() {
    let Some(out) = as_role_denied_pg_inherits(
        "CREATE TABLE t (id integer PRIMARY KEY, a integer, b integer);
         CREATE TABLE parent (id integer PRIMARY KEY);
         CREATE TABLE child (extra integer) INHERITS (parent);",
        &["check"],
    ) else {
        return;
    };
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{}{said}", stdout(&out));
    assert!(
        said.contains("cannot read the database's schema to check the specs against")
            && said.contains("permission denied"),
        "{said}"
    );
}

/// Where no plain table has ever had a child, `pg_inherits` is not read: a role denied it
/// checks and runs as any other (it once could not use mig at all).
#[test]
fn pg_inherits_is_read_only_where_a_table_has_children() {
    let Some(out) = as_role_denied_pg_inherits(
        "CREATE TABLE t (id integer PRIMARY KEY, a integer, b integer);
         INSERT INTO t SELECT i, i, NULL FROM generate_series(1, 20) AS i;",
        &["run", "t.b"],
    ) else {
        return;
    };
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Row-level security that applies to mig's role hides rows from its batches: a policy that
/// let the role read every row but update only some made `mig run` retry its first batch
/// forever (its locking read found no row, a plain read found rows after the checkpoint),
/// and with larger batches it passed over the hidden rows and reported the run complete.
/// Refused before the first batch; the table's owner (here the superuser) runs it.
#[test]
fn row_level_security_over_mig_s_role_is_refused_before_a_batch() {
    let Some(url) = postgres_url() else {
        return;
    };
    let setup = Setup {
        sqlite: "",
        postgres: "CREATE TABLE t (id integer PRIMARY KEY, mine boolean, v text);
                   INSERT INTO t SELECT i, i > 10, 'v' || i FROM generate_series(1, 20) AS i;
                   ALTER TABLE t ENABLE ROW LEVEL SECURITY;
                   CREATE POLICY see_all ON t FOR SELECT USING (true);
                   CREATE POLICY change_mine ON t FOR UPDATE USING (mine);",
    };
    let project = Project::on(
        &Backend::Postgres(url),
        &setup,
        "migrate up on t {\n    set v = v || '!'\n    batch 5\n}\n",
    );
    let role = project.postgres.as_ref().unwrap().role("tenant", "");
    let checked = project
        .command(&["check"])
        .env("MIG_DATABASE_URL", &role.url)
        .output()
        .unwrap();
    // Asserted before `mig run`, which without the refusal never ended.
    assert_eq!(checked.status.code(), Some(2), "{}", stdout(&checked));
    let out = project
        .command(&["run", "up"])
        .env("MIG_DATABASE_URL", &role.url)
        .output()
        .unwrap();
    let untouched = project.query("SELECT count(*) FROM t WHERE v LIKE '%!'");
    let by_owner = project.mig(&["run", "up"]);
    let changed = project.query("SELECT count(*) FROM t WHERE v LIKE '%!'");
    // A validation would count only the rows the policy shows the role.
    project.write_spec("validate marked on t {\n    expect v <> 'v1!'\n}\n");
    let validated = project
        .command(&["validate", "marked"])
        .env("MIG_DATABASE_URL", &role.url)
        .output()
        .unwrap();
    assert_eq!(validated.status.code(), Some(2), "{}", stdout(&validated));
    assert!(
        stderr(&validated).contains("table `t` has row-level security"),
        "{}",
        stderr(&validated)
    );

    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("table `t` has row-level security that applies to mig's role")
            && said.contains("BYPASSRLS"),
        "{said}"
    );
    assert_eq!(untouched, ["0"]);
    assert!(by_owner.status.success(), "{}", stderr(&by_owner));
    assert_eq!(changed, ["20"]);
}
