#!/usr/bin/env bash
# An application writing to the same SQLite database as a yielding `mig run`: one small
# INSERT every 5 ms through Python's sqlite3 (busy timeout 1 s, SQLite's own busy handler),
# beside a 300,000-row `migrate` with `yield 2ms`. Prints mig's summary and the
# application's longest write and errors. BENCHMARKS.md ("SQLite: an application writer
# beside a yielding run") records runs.
#
#   bash benches/sqlite_app_writer.sh                 # the release build here
#   MIG=/path/to/other/mig bash benches/sqlite_app_writer.sh   # another build, for an A/B
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MIG:-}" ]; then
    cargo build --release --quiet
    MIG="$PWD/target/release/mig"
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
mkdir specs
printf 'specs = "specs"\n[database]\nurl = "sqlite:db.sqlite"\n' >mig.toml
cat >specs/s.mig <<'SPEC'
migrate norm on t {
    set email = lower(trim(email))
    where email matches '[A-Z]'
    yield 2ms
}
SPEC
python3 - <<'PY'
import sqlite3
c = sqlite3.connect("db.sqlite")
c.execute("PRAGMA journal_mode = wal")
c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT)")
c.executemany("INSERT INTO t VALUES (?, ?)",
              ((i, f"  User{i}@Example.COM ") for i in range(1, 300001)))
c.execute("CREATE TABLE app (id INTEGER PRIMARY KEY, v TEXT)")
c.commit()
PY
cat >app.py <<'PY'
import os, sqlite3, time
c = sqlite3.connect("db.sqlite", timeout=1.0, isolation_level=None)
waits, errors = [], []
while not os.path.exists("stop"):
    started = time.perf_counter()
    try:
        c.execute("INSERT INTO app (v) VALUES ('x')")
    except sqlite3.OperationalError as e:
        errors.append(str(e))
    waits.append(time.perf_counter() - started)
    time.sleep(0.005)
print(f"application: {len(waits)} writes, longest {max(waits) * 1000:.0f} ms, errors: {errors}")
PY
python3 app.py &
sleep 1
"$MIG" run norm | tail -2
sleep 0.5
touch stop
wait
