#!/usr/bin/env bash
# What the application's slowest transactions waited for while mig backfilled beside it:
# pgbench plays the application (as in pg_live_load.sh) while mig, with `yield`, fills a new
# column of pgbench_accounts, and pg_stat_activity is sampled every 50 ms. Prints the
# application's p99 and max during the backfill, then its slowest transactions, each with
# the wait events sampled while it ran. BENCHMARKS.md ("What held the application's slowest
# transactions") records runs.
#
#   bash benches/pg_slowest_waits.sh                  # scale 20, batch 5000, yield 2ms
#   MIG=/path/to/other/mig bash benches/pg_slowest_waits.sh   # an A/B with another build
#   SCALE=1 SECONDS_AFTER=5 bash benches/pg_slowest_waits.sh  # a quick check that it runs
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres), pgbench, psql, python3 and a release
# build of mig (built here unless MIG is given). It creates and finally drops mig_waits.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-20}"
BATCH="${BATCH:-5000}"
YIELD="${YIELD:-2ms}"
SECONDS_AFTER="${SECONDS_AFTER:-20}"
DB=mig_waits
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

fresh_database
pgbench "${PGARGS[@]}" -i -s "$SCALE" -q "$DB" >/dev/null 2>&1
sql "ALTER TABLE pgbench_accounts ADD COLUMN balance_cents integer"
sql "UPDATE pgbench_accounts SET balance_cents = 0"
sql "ALTER TABLE pgbench_accounts DROP COLUMN balance_cents"
sql "ALTER TABLE pgbench_accounts ADD COLUMN balance_cents integer"
sql "VACUUM ANALYZE pgbench_accounts"
sql "CHECKPOINT"

mkdir -p "$WORK/project/specs" "$WORK/app"
printf 'specs = "specs"\n[database]\nurl = "postgres://postgres@127.0.0.1:5432/%s"\n' "$DB" \
    >"$WORK/project/mig.toml"
printf 'backfill balance_cents on pgbench_accounts {\n    set balance_cents = abalance * 100\n    batch %s\n    yield %s\n}\n' \
    "$BATCH" "$YIELD" >"$WORK/project/specs/bench.mig"

# The sampler: one psql session reading a query every 50 ms from a pipe, so it costs one
# connection, not one per sample. It leaves out itself and the idle client sessions.
(while true; do
    echo "SELECT extract(epoch FROM clock_timestamp()), backend_type, coalesce(state, ''), \
          coalesce(wait_event_type, ''), coalesce(wait_event, ''), left(query, 30) \
          FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
          AND (backend_type <> 'client backend' OR state <> 'idle');"
    sleep 0.05
done) | psql "${PGARGS[@]}" -d "$DB" -qAt -F $'\t' >"$WORK/activity.tsv" 2>/dev/null &
sampler=$!
# The application runs until the backfill is done and SECONDS_AFTER more, then is killed:
# the log lines it loses are its last ones, seconds after the backfill.
(cd "$WORK/app" && exec pgbench "${PGARGS[@]}" -c 4 -j 2 -T 100000 -l -n "$DB" >pgbench.out 2>&1) &
app=$!
sleep 5
start="$(now)"
(cd "$WORK/project" && "$MIG" run pgbench_accounts.balance_cents >"$WORK/mig.out" 2>&1)
end="$(now)"
sleep "$SECONDS_AFTER"
kill "$app" "$sampler" 2>/dev/null || true
wait 2>/dev/null || true
grep -E '^pgbench_accounts\.balance_cents: run |^  yield' "$WORK/mig.out"

python3 - "$WORK" "$start" "$end" <<'PY'
import collections, glob, sys
work, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
during = []
for path in glob.glob(f"{work}/app/pgbench_log.*"):
    for line in open(path):
        f = line.split()
        if len(f) < 6:
            continue  # the line pgbench was writing when it was killed
        done = int(f[4]) + int(f[5]) / 1e6
        began = done - int(f[2]) / 1e6
        if began <= end and done >= start:
            during.append((int(f[2]) / 1000.0, began, done))
during.sort()
if not during:
    sys.exit("no application transaction overlapped the backfill")
p99 = during[min(len(during) - 1, int(0.99 * len(during)))][0]
print(f"backfill {end - start:.1f} s; application meanwhile: {len(during)} transactions, "
      f"p99 {p99:.2f} ms, max {during[-1][0]:.2f} ms")
samples = []
for line in open(f"{work}/activity.tsv"):
    f = line.rstrip("\n").split("\t")
    if len(f) == 6:
        samples.append((float(f[0]), f[1], f[2], f[3], f[4], f[5]))
print("slowest application transactions, with the waits sampled while each ran:")
for ms, began, done in sorted(during, reverse=True)[:5]:
    waits = collections.Counter(
        f"{kind}: {wait_type or 'CPU'} {wait}".strip() + (f" ({query})" if kind == "client backend" else "")
        for t, kind, state, wait_type, wait, query in samples
        if began <= t <= done and (wait_type or kind == "client backend")
        and not (kind != "client backend" and wait_type == "Activity"))
    print(f"  {ms:.1f} ms, from {began - start:.2f} s into the backfill")
    for wait, n in waits.most_common(6):
        print(f"      {n} x {wait}")
PY
drop_database
