#!/usr/bin/env bash
# What a rollback costs the application on PostgreSQL: pgbench plays the application while
# `mig rollback` restores a backfill of a new column of pgbench_accounts, beside the same
# backfill run under the application with the spec's `yield`, in the same sitting.
#
#   bash benches/pg_rollback_load.sh            # scale 20: 2,000,000 accounts
#   SCALE=5 bash benches/pg_rollback_load.sh    # a quicker run
#   MIG=/path/to/mig bash benches/pg_rollback_load.sh   # another build of mig
#
# Needs what pg_live_load.sh needs; creates and finally drops the database
# mig_rollback_bench. Results go to stdout; BENCHMARKS.md records a run.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-20}"
CLIENTS="${CLIENTS:-4}"
BATCH="${BATCH:-5000}"
YIELD="${YIELD:-2ms}"
IDLE_SECONDS="${IDLE_SECONDS:-20}"
DB=mig_rollback_bench
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

pgbench_database
echo "pgbench_accounts: $ROWS rows (scale $SCALE); $CLIENTS clients; mig batch $BATCH, yield $YIELD"
mig_project
cat >"$WORK/project/specs/bench.mig" <<SPEC
backfill balance_cents on pgbench_accounts {
    set balance_cents = abalance * 100
    batch $BATCH
    yield $YIELD
}
SPEC
mig() { (cd "$WORK/project" && "$MIG" "$@" 2>/dev/null); }

warmed_up
idle_latency

# `mig "$@"` while pgbench runs for $1 seconds (long enough to outlast it), logging into
# folder $2; prints mig's summary and the application's latency meanwhile.
beside_the_application() {
    local window="$1" folder="$2" start end n p50 p99 max app
    shift 2
    application "$window" "$folder" &
    app=$!
    sleep 5
    start="$(now)"; mig "$@" | head -n 3; end="$(now)"
    wait "$app"
    read -r n p50 p99 max <<<"$(latency "$folder" "$start" "$end")"
    echo "took $(python3 -c "print(f'{$end - $start:.2f}')") s; application meanwhile: \
transactions $n  p50 ${p50} ms  p99 ${p99} ms ($(python3 -c "print(f'{$p99 / $idle_p99:.2f}')")x idle)  max ${max} ms"
}

echo
echo "== the backfill alone, then its rollback under the application"
fresh_column
start="$(now)"; mig run pgbench_accounts.balance_cents | head -n 1; end="$(now)"
alone="$(python3 -c "print($end - $start)")"
window="$(python3 -c "import math; print(int(math.ceil($alone * 4 + 20)))")"
beside_the_application "$window" "$WORK/rollback" rollback pgbench_accounts.balance_cents
echo "NULLs after the rollback: $(sql "SELECT count(*) FROM pgbench_accounts WHERE balance_cents IS NULL") of $ROWS"

echo
echo "== the backfill under the application (yield $YIELD), for comparison"
fresh_column
beside_the_application "$window" "$WORK/run" run pgbench_accounts.balance_cents

drop_database
