#!/usr/bin/env bash
# What a batch of a yielding run and a part of a yielding rollback cost, fixed and per row,
# on PostgreSQL: beside a session that holds a transaction open (busy, but using no CPU),
# `yield` sizes each batch or part to take its time; at two yields the rows taken tell the
# cost of a row (the slope) and of the transaction around them (what is left at the first).
#
#   bash benches/pg_part_cost.sh               # scale 5: 500,000 accounts; yields 2ms and 8ms
#   MIG=/path/to/mig bash benches/pg_part_cost.sh
#
# Needs what pg_live_load.sh needs; creates and finally drops the database mig_part_cost.
# BENCHMARKS.md ("A rollback that yields") records a run.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-5}"
DB=mig_part_cost
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

pgbench_database
mig_project
spec() {
    printf 'backfill balance_cents on pgbench_accounts {\n    set balance_cents = abalance * 100\n    batch 5000\n%s}\n' "$1" \
        >"$WORK/project/specs/bench.mig"
}
mig() { (cd "$WORK/project" && "$MIG" "$@" 2>/dev/null); }
# The rows a batch (or part) took, from a summary's `yield:` line.
rows_each() { grep -E '^  yield:' | sed -E 's/.*, ([0-9]+) a (batch|transaction)\)$/\1/'; }

declare -A run_rows rollback_rows
for yield in 2 8; do
    fresh_column
    spec ""
    mig run pgbench_accounts.balance_cents >/dev/null
    spec "    yield ${yield}ms
"
    psql "${PGARGS[@]}" -d "$DB" -qc "BEGIN; SELECT 1; SELECT pg_sleep(600)" >/dev/null 2>&1 &
    sleep 1
    rollback_rows[$yield]="$(mig rollback pgbench_accounts.balance_cents | rows_each)"
    run_rows[$yield]="$(mig run pgbench_accounts.balance_cents | rows_each)"
    sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()" >/dev/null
    wait || true
done
cost() {
    python3 - "$1" "$2" "$3" <<'PY'
import sys
name, at2, at8 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
row = 6000 / (at8 - at2)
print(f"{name}: {at2} rows at yield 2ms, {at8} at 8ms: {row:.1f} us a row, {2000 - at2 * row:.0f} us around them")
PY
}
echo "pgbench_accounts: $ROWS rows (scale $SCALE); beside a session holding a transaction open"
cost "a yielding run's batch" "${run_rows[2]}" "${run_rows[8]}"
cost "a yielding rollback's part" "${rollback_rows[2]}" "${rollback_rows[8]}"
drop_database
