#!/usr/bin/env bash
# Instructions per row, counted by callgrind (repeatable, unlike seconds): mig's backfill
# against one bare UPDATE of the same table. Needs valgrind and python3.
#   cargo build --release && bash benches/instructions.sh [ROWS]
set -euo pipefail
rows=${1:-200000}
mig=$(cd "$(dirname "$0")/.." && pwd)/target/release/mig
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir specs
printf 'specs = "specs"\n[database]\nurl = "sqlite:db.sqlite"\n' > mig.toml
printf "backfill full_name on users {\n    set full_name = first_name || ' ' || last_name\n}\n" > specs/b.mig
python3 - "$rows" <<'PY'
import sqlite3, sys
c = sqlite3.connect("table.sqlite")
c.executescript(f"""
CREATE TABLE users (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
                    email TEXT NOT NULL, full_name TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {int(sys.argv[1])})
INSERT INTO users (id, first_name, last_name, email)
SELECT i, 'First' || (i % 997), 'Last' || (i % 991), 'user' || i || '@example.com' FROM n;""")
c.commit()
PY
cat > bare.py <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=NORMAL")
c.execute("BEGIN")
if sys.argv[2] == "update":
    c.execute("UPDATE users SET full_name = first_name || ' ' || last_name")
c.execute("COMMIT")
PY
python=$(python3 -c 'import sys; print(sys.executable)')
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*I *refs: *//p' | tr -d ,; }
cp table.sqlite db.sqlite
mig_total=$(count "$mig" run users.full_name)
cp table.sqlite bare.sqlite
bare_total=$(count "$python" bare.py bare.sqlite update)
cp table.sqlite idle.sqlite
idle_total=$(count "$python" bare.py idle.sqlite none)
bare=$(( (bare_total - idle_total) / rows ))
ours=$(( mig_total / rows ))
echo "rows=$rows"
echo "bare UPDATE instructions/row: $bare (python's own start-up subtracted)"
echo "mig backfill instructions/row: $ours"
python3 -c "print(f'ratio bare/mig: {$bare/$ours:.3f}')"
