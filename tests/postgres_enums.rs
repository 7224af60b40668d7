//! Enum columns on PostgreSQL: read as the text of their labels and compared as text (not
//! in the enum's declared order), on the pushdown path and in the interpreter alike; written
//! on either path as text the server casts to the enum, so a label the enum lacks stops
//! the run before its batch commits, and `mig check` refuses a `set` of a literal that is no
//! label; restored by a rollback. Before, every enum column was
//! refused as a type mig cannot read.
mod common;

use common::{envelope, reply_to, stderr, Project};
use serde_json::json;

/// 40 orders, ten in each state, declared in an order that is not the labels' text order;
/// `state` is the same enum through a domain.
const TABLE: &str = "CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'cancelled');
     CREATE DOMAIN order_state AS order_status;
     CREATE TABLE orders (id bigint PRIMARY KEY, status order_status NOT NULL, state order_state,
                          note text, flag text, shout text, wish text);
     INSERT INTO orders SELECT i, (ARRAY['pending', 'paid', 'shipped', 'cancelled'])[i % 4 + 1]::order_status,
                               NULL, NULL, NULL, NULL, CASE WHEN i % 4 = 3 THEN 'PAID' END
     FROM generate_series(1, 40) AS i;
     CREATE TABLE by_status (status order_status PRIMARY KEY, n integer);";

const SPEC: &str = "migrate ship on orders {\n    set status = 'shipped'\n    where status = 'paid'\n    batch 7\n}\n\n\
     backfill note on orders {\n    set note = status || '!'\n    batch 7\n}\n\n\
     backfill flag on orders {\n    set flag = 'later'\n    where status > 'paid'\n    batch 7\n}\n\n\
     backfill shout on orders {\n    set shout = upper(status)\n    where status > 'paid'\n    batch 7\n}\n\n\
     backfill state on orders {\n    set state = status\n    batch 7\n}\n\n\
     migrate reopen on orders {\n    set status = lower(wish)\n    where wish is not null\n    batch 7\n}\n\n\
     migrate lose on orders {\n    set status = flag\n    where flag is not null\n    batch 7\n}\n\n\
     validate known on orders {\n    not_null status\n    expect status in ('pending', 'paid', 'shipped', 'cancelled')\n}\n";

fn project() -> Option<Project> {
    Project::postgres(TABLE, SPEC)
}

#[test]
fn enum_columns_are_read_compared_as_text_written_and_restored() {
    let Some(project) = project() else {
        return;
    };
    let before = project.dump("orders");
    project.mig_ok(&["check", "specs/test.mig"]);
    let plan = project.mig_ok(&["plan", "ship"]);
    assert!(plan.contains("path: pushdown"), "{plan}");
    let plan = project.mig_ok(&["plan", "reopen"]);
    assert!(plan.contains("path: read-compute-write"), "{plan}");
    let plan = project.mig_ok(&["plan", "orders.flag"]);
    assert!(plan.contains("path: pushdown"), "{plan}");

    assert!(project
        .mig_ok(&["run", "orders.note"])
        .contains("40 updated"));
    // Labels compare as text: 'pending' and 'shipped' sort after 'paid', 'cancelled' before
    // it (in the enum's order 'shipped' and 'cancelled' come after 'paid', 'pending' before).
    assert!(project
        .mig_ok(&["run", "orders.flag"])
        .contains("20 updated"));
    assert!(project
        .mig_ok(&["run", "orders.shout"])
        .contains("20 updated"));
    assert_eq!(
        project.query(
            "SELECT string_agg(DISTINCT status || ' ' || flag || ' ' || shout, ', ') FROM orders \
             WHERE flag IS NOT NULL"
        ),
        ["pending later PENDING, shipped later SHIPPED"]
    );
    assert!(project
        .mig_ok(&["run", "orders.state"])
        .contains("40 updated"));
    // Written by the interpreter (`lower` follows the database's ctype, so it is not
    // pushed down), then by the pushed-down statement.
    assert!(project.mig_ok(&["run", "reopen"]).contains("10 updated"));
    assert!(project.mig_ok(&["run", "ship"]).contains("20 updated"));
    assert_eq!(
        project
            .query("SELECT status || ' ' || count(*) FROM orders GROUP BY status ORDER BY status"),
        ["pending 10", "shipped 30"]
    );
    assert!(project.mig_ok(&["validate", "known"]).contains("passed"));

    for migration in [
        "ship",
        "reopen",
        "orders.state",
        "orders.shout",
        "orders.flag",
        "orders.note",
    ] {
        project.mig_ok(&["rollback", migration]);
    }
    assert_eq!(project.dump("orders"), before, "rollback restores exactly");
}

#[test]
fn a_label_the_enum_lacks_stops_the_run_before_its_batch_commits() {
    let Some(project) = project() else {
        return;
    };
    project.execute("UPDATE orders SET flag = 'lost' WHERE id >= 10");
    let out = project.mig(&["run", "lose"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("batch 2 of run 1 failed and was rolled back")
            && stderr(&out).contains("invalid input value for enum order_status: \"lost\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        project.query("SELECT count(*) FROM orders WHERE status::text = 'lost'"),
        ["0"]
    );
    let (replies, _) = project.node(&[envelope(
        json!({"type": "migrate", "msg_id": 1, "table": "orders", "name": "lose"}),
    )]);
    assert_eq!(reply_to(&replies, 1)["code"], 22, "{replies:?}");
}

#[test]
fn a_table_keyed_by_an_enum_is_refused_by_check() {
    let Some(project) = project() else {
        return;
    };
    project.write_spec("backfill n on by_status {\n    set n = 1\n}\n");
    let out = project.mig(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "table `by_status` cannot be walked by its primary key: column `status` is \
             order_status: mig walks integer, text or uuid keys only"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_set_of_or_comparison_with_a_text_that_is_no_label_is_refused_by_check() {
    let Some(project) = project() else {
        return;
    };
    project.write_spec(
        "migrate lose on orders {\n    set status = 'lost'\n}\n\n\
         migrate pay on orders {\n    set status = 'paid'\n    where status = 'pending'\n}\n\n\
         migrate typo on orders {\n    set note = 'x'\n    where status = 'archvied'\n}\n",
    );
    let out = project.mig(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "error: `set status` writes 'lost', which is not a label of `status`\n \
         --> specs/test.mig:2:18\n  |\n2 |     set status = 'lost'\n  |                  ^^^^^^\n  \
         = help: `status` has PostgreSQL type order_status, which mig reads and writes as the \
         text of its labels: 'pending', 'paid', 'shipped', 'cancelled'; the server refuses any \
         other\n\nerror: `=` compares `status` with 'archvied', which is not a label of \
         `status`\n  --> specs/test.mig:12:20\n   |\n12 |     where status = 'archvied'\n   \
         |                    ^^^^^^^^^^\n   = help: `status` has PostgreSQL type order_status, \
         which mig reads and writes as the text of its labels: 'pending', 'paid', 'shipped', \
         'cancelled'; the server refuses any other\n\nerror: could not compile: 2 errors in \
         1 file\n"
    );
}

/// The pushed-down statement compares the label it would write with the stored one as text:
/// a second run writes nothing.
#[test]
fn a_pushed_down_enum_set_writes_nothing_the_second_time() {
    let Some(project) = project() else {
        return;
    };
    assert!(project
        .mig_ok(&["run", "ship"])
        .contains("40 rows processed, 10 updated"));
    assert!(project
        .mig_ok(&["run", "ship"])
        .contains("40 rows processed, 0 updated"));
}
