#!/usr/bin/env bash
# Backfill under live load on PostgreSQL: pgbench plays the application while mig backfills a
# new column of pgbench_accounts; compared with one bare UPDATE of the same column and with a
# loop of bare UPDATEs, one transaction per batch of keys (what batching alone costs).
#
#   bash benches/pg_live_load.sh            # scale 20: 2,000,000 accounts
#   SCALE=5 bash benches/pg_live_load.sh    # a quicker run
#   BATCH=1000 bash benches/pg_live_load.sh # the spec's batch (default 5000)
#   MIG=/path/to/mig bash benches/pg_live_load.sh   # another build of mig (an A/B), not built here
#   PAUSE=8ms bash benches/pg_live_load.sh  # the spec's pause (the throttle) for every mig run
#   YIELD=1ms bash benches/pg_live_load.sh  # the spec's yield: how long a batch may take while
#                                           # the application is busy (default 2ms)
#   KEEP=/tmp/logs bash benches/pg_live_load.sh  # keep pgbench's logs of the backfills under it
#   REPEAT=5 bash benches/pg_live_load.sh   # rounds of the runs alone (default 3), medians taken
#
# Needs a PostgreSQL reachable as PG_ADMIN (default postgres://postgres@127.0.0.1:5432/test),
# pgbench, psql, python3 and a release build of mig (built here). It creates and finally drops
# the database mig_bench. Results go to stdout; BENCHMARKS.md (## PostgreSQL) records a run.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-20}"
CLIENTS="${CLIENTS:-4}"
# The spec's batch: with `yield`, the size a run takes alone only (beside the application its
# batches shrink to the yield time), so the bench takes the larger batches README recommends.
BATCH="${BATCH:-5000}"
PAUSE="${PAUSE:-0ms}"
YIELD="${YIELD:-2ms}"
IDLE_SECONDS="${IDLE_SECONDS:-20}"
REPEAT="${REPEAT:-3}"
DB=mig_bench
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

pgbench_database
echo "pgbench_accounts: $ROWS rows (scale $SCALE); $CLIENTS clients; mig batch $BATCH, pause $PAUSE, yield $YIELD"
mig_project
# The spec, with `yield` if $1 is "yield".
spec() {
    cat >"$WORK/project/specs/bench.mig" <<EOF
-- pgbench_accounts gained a nullable balance_cents column; fill it from abalance.
backfill balance_cents on pgbench_accounts {
    set balance_cents = abalance * 100
    batch $BATCH
    pause $PAUSE
$([ "$1" = yield ] && echo "    yield $YIELD")
}
EOF
}
spec yield
# Extra arguments go to mig run (--workers 4).
backfill() { (cd "$WORK/project" && "$MIG" run pgbench_accounts.balance_cents "$@" >"$WORK/mig.out" 2>&1); }

warmed_up
idle_latency

# The loop of bare UPDATEs: each range of $BATCH keys (pgbench's aid runs from 1 without
# gaps, so no key walk is needed) updated in a transaction of its own that does not wait for
# the WAL flush, as mig's batches; no backup, checkpoint or locking read. `\;` makes each
# line one query string, one round trip (mig takes three per batch).
python3 - "$ROWS" "$BATCH" >"$WORK/loop.sql" <<'PY'
import sys
rows, batch = int(sys.argv[1]), int(sys.argv[2])
for lo in range(0, rows, batch):
    print(f"BEGIN \\; SET LOCAL synchronous_commit = off \\; UPDATE pgbench_accounts "
          f"SET balance_cents = abalance * 100 WHERE aid > {lo} AND aid <= {lo + batch} \\; COMMIT;")
PY

bare_update() { sql "UPDATE pgbench_accounts SET balance_cents = abalance * 100"; }
bare_loop() { PGOPTIONS="-c client_min_messages=warning" psql "${PGARGS[@]}" -d "$DB" -qAt -v ON_ERROR_STOP=1 -f "$WORK/loop.sql" >/dev/null; }
# mig's summary of its last run (not its progress lines): the totals and what yield did.
summary() { grep -E '^pgbench_accounts\.balance_cents: run |^  yield' "$WORK/mig.out" | head -c 400; }
# The median of the numbers given.
median() { python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }
# Rates as shares of the bare UPDATE's: "$1" and "$2" are lists of seconds, the bare UPDATE's
# and another's, round by round; prints the median share and each round's.
shares() {
    python3 - "$1" "$2" <<'PY'
import statistics, sys
shares = [float(b) / float(r) for b, r in zip(sys.argv[1].split(), sys.argv[2].split())]
rounds = ", ".join(f"{x:.2f}" for x in shares)
print(f"{statistics.median(shares):.2f} (rounds: {rounds})")
PY
}

# Alone, in $REPEAT rounds: in each, the bare UPDATE, the loop, mig with one worker and with
# four, one after another, so each rate is compared with the bare UPDATE of its own round
# (the disk and the machine's other tenants drift between rounds); medians at the end.
bare_runs=(); loop_runs=(); one_runs=(); four_runs=()
for round in $(seq "$REPEAT"); do
    echo
    echo "== alone, round $round of $REPEAT"
    bare_runs+=("$(timed bare_update)")
    loop_runs+=("$(timed bare_loop)")
    one_runs+=("$(timed backfill)")
    one_summary="$(summary)"
    four_runs+=("$(timed backfill --workers 4)")
    echo "one bare UPDATE ${bare_runs[-1]} s; a loop of bare UPDATEs, one transaction per $BATCH keys, ${loop_runs[-1]} s"
    echo "mig, one worker ${one_runs[-1]} s: $one_summary"
    echo "mig, 4 workers ${four_runs[-1]} s: $(summary)"
done
bare_seconds="$(median "${bare_runs[@]}")"
bare_rate="$(python3 -c "print(int($ROWS / $bare_seconds))")"
one_worker_seconds="$(median "${one_runs[@]}")"
echo
echo "== alone, medians of $REPEAT rounds"
echo "one bare UPDATE: ${bare_seconds} s, ${bare_rate} rows/s (rounds: ${bare_runs[*]} s)"
echo "rate as a share of the bare UPDATE's in the same round, median:"
echo "  loop of bare UPDATEs: $(shares "${bare_runs[*]}" "${loop_runs[*]}")"
echo "  mig, one worker:      $(shares "${bare_runs[*]}" "${one_runs[*]}")"
echo "  mig, 4 workers:       $(shares "${bare_runs[*]}" "${four_runs[*]}")"

echo
echo "== one bare UPDATE under the application"
fresh_column
window="$(python3 -c "import math; print(int(math.ceil($bare_seconds * 3 + 20)))")"
application "$window" "$WORK/bare" &
app=$!
sleep 5
start="$(now)"; sql "UPDATE pgbench_accounts SET balance_cents = abalance * 100"; end="$(now)"
wait "$app"
read -r n p50 p99 max <<<"$(latency "$WORK/bare" "$start" "$end")"
echo "UPDATE took $(python3 -c "print(f'{$end - $start:.2f}')") s; application meanwhile: transactions $n  p50 ${p50} ms  p99 ${p99} ms  max ${max} ms"

# mig (one worker) while pgbench runs, with the spec `spec "$1"` writes; pgbench runs for
# $2 times as long as mig alone took, plus 20 s, to outlast the backfill.
mig_loaded() {
    spec "$1"
    fresh_column
    local window start end loaded_rate n p50 p99 max app
    window="$(python3 -c "import math; print(int(math.ceil($one_worker_seconds * $2 + 20)))")"
    application "$window" "$WORK/mig" &
    app=$!
    sleep 5
    start="$(now)"; backfill; end="$(now)"
    wait "$app"
    loaded_rate="$(python3 -c "print(int($ROWS / ($end - $start)))")"
    read -r n p50 p99 max <<<"$(latency "$WORK/mig" "$start" "$end")"
    summary
    echo "backfill took $(python3 -c "print(f'{$end - $start:.2f}')") s, ${loaded_rate} rows/s ($(python3 -c "print(f'{$loaded_rate / $bare_rate:.2f}')") of the bare UPDATE alone)"
    echo "application meanwhile: transactions $n  p50 ${p50} ms  p99 ${p99} ms ($(python3 -c "print(f'{$p99 / $idle_p99:.2f}')")x idle)  max ${max} ms"
    echo "backed up: $(sql "SELECT coalesce(sum(cardinality(keys)), 0) FROM _mig_backup") rows; NULLs left: $(sql "SELECT count(*) FROM pgbench_accounts WHERE balance_cents IS NULL")"
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP" && rm -rf "${KEEP:?}/$1" && cp -r "$WORK/mig" "$KEEP/$1"
        echo "pgbench logs kept in $KEEP/$1; the backfill ran from $start to $end"
    fi
    rm -rf "$WORK/mig"
}

echo
echo "== mig backfill under the application (yield $YIELD)"
mig_loaded yield 8

echo
echo "== mig backfill under the application, without yield"
mig_loaded plain 3

drop_database
