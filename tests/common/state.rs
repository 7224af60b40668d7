//! Whole-database snapshots, for proving that a refused request or a failed run left nothing
//! half-written.

use rusqlite::Connection;
use std::path::Path;

/// Every schema object and every row of every table (mig's own included), as sorted text.
/// Two equal dumps mean the database holds the same data, whatever the file's bytes.
pub fn logical_dump(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut lines = Vec::new();
    let mut objects = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let mut tables = Vec::new();
    let rows = objects
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (kind, name, table, sql) = row.unwrap();
        lines.push(format!("schema|{kind}|{name}|{table}|{sql:?}"));
        if kind == "table" {
            tables.push(name);
        }
    }
    for table in tables {
        let mut rows = table_rows(&conn, &table);
        rows.sort();
        lines.extend(rows.into_iter().map(|r| format!("{table}|{r}")));
    }
    lines
}

/// Every row of `table` as text, in storage order.
pub fn table_rows(conn: &Connection, table: &str) -> Vec<String> {
    query_rows(
        conn,
        &format!("SELECT * FROM \"{}\"", table.replace('"', "\"\"")),
    )
}

/// Every row `sql` answers, its values as typed text joined by `|`.
pub fn query_rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let columns = stmt.column_count();
    stmt.query_map([], |row| {
        let values: Vec<String> = (0..columns)
            .map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap()))
            .collect();
        Ok(values.join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}
