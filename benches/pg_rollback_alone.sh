#!/usr/bin/env bash
# How long `mig rollback` takes alone on PostgreSQL, whole backup records (no `yield`), for
# one build or two alternating (an A/B): a backfill of a new column of pgbench_accounts,
# `CHECKPOINT`, then the rollback, timed by its own summary, in $ROUNDS rounds.
#
#   bash benches/pg_rollback_alone.sh                         # scale 10: 1,000,000 accounts
#   MIG=/path/a MIG_B=/path/b bash benches/pg_rollback_alone.sh   # two builds, alternating
#
# Needs what pg_live_load.sh needs; creates and finally drops the database
# mig_rollback_alone. BENCHMARKS.md ("A rollback that yields") records a run.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-10}"
ROUNDS="${ROUNDS:-3}"
DB=mig_rollback_alone
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

pgbench_database
mig_project
printf 'backfill balance_cents on pgbench_accounts {\n    set balance_cents = abalance * 100\n    batch 5000\n}\n' \
    >"$WORK/project/specs/bench.mig"
builds=("$MIG")
[ -n "${MIG_B:-}" ] && builds+=("$MIG_B")
echo "pgbench_accounts: $ROWS rows (scale $SCALE); $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
    for build in "${builds[@]}"; do
        fresh_column
        (cd "$WORK/project" && "$build" run pgbench_accounts.balance_cents >/dev/null 2>&1)
        sql "CHECKPOINT"
        summary="$(cd "$WORK/project" && "$build" rollback pgbench_accounts.balance_cents 2>/dev/null | grep 'rolled back')"
        echo "round $round, $build: ${summary#*rolled back: }"
    done
done
drop_database
