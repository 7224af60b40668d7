#!/usr/bin/env bash
# Instructions per row, counted by callgrind (repeatable, unlike seconds): mig's backfill
# against one bare UPDATE of the same table, both through the bench binary's child cases,
# so both run on the same bundled SQLite. Needs valgrind and python3.
#   bash benches/instructions.sh [ROWS]
set -euo pipefail
rows=${1:-200000}
cd "$(dirname "$0")/.."
bench=$(cargo bench --bench backfill --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "backfill" and m.get("executable"):
        print(m["executable"])')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/table.sqlite" "$rows" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript(f"""
CREATE TABLE users (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
                    email TEXT NOT NULL, full_name TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {int(sys.argv[2])})
INSERT INTO users (id, first_name, last_name, email)
SELECT i, 'First' || (i % 997), 'Last' || (i % 991), 'user' || i || '@example.com' FROM n;""")
c.commit()
PY
# Instructions of one child case on a fresh copy of the table, in a folder of its own.
count() {
    mkdir "$work/$1"
    cp "$work/table.sqlite" "$work/$1/db.sqlite"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$bench" --child "$1" "$work/$1/db.sqlite" "$rows" 1000 2>&1 \
        | sed -n 's/.*I *refs: *//p' | tr -d ,
}
bare=$(( $(count bare) / rows ))
ours=$(( $(count mig) / rows ))
echo "rows=$rows batch=1000"
echo "bare UPDATE instructions/row: $bare"
echo "mig backfill instructions/row: $ours"
python3 -c "print(f'ratio bare/mig: {$bare/$ours:.3f}')"
