#!/usr/bin/env bash
# A backfill of a table keyed by random uuids on PostgreSQL, against one bare UPDATE of the
# same column. The walk goes in key order, which for random uuids is no order on the disk:
# each batch of keys reads and writes rows spread over the whole table, where a walk by a
# serial key reads its rows from a few neighbouring pages.
#
#   bash benches/pg_uuid_key.sh                 # 2,000,000 rows, batch 5000, 3 rounds
#   ROWS=200000 REPEAT=1 bash benches/pg_uuid_key.sh   # a quick check that it runs
#   MIG=/path/to/mig bash benches/pg_uuid_key.sh       # another build of mig, not built here
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres), psql, python3 and a release build of
# mig (built here). It creates and finally drops the database mig_uuid_bench.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS="${ROWS:-2000000}"
BATCH="${BATCH:-5000}"
REPEAT="${REPEAT:-3}"
DB=mig_uuid_bench
TABLE=acct
COLUMN=cents
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

fresh_database
# Rows about as wide as pgbench_accounts' (a char(84) filler), keys from gen_random_uuid().
sql "CREATE TABLE acct (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), balance integer NOT NULL, \
     filler char(84) NOT NULL DEFAULT '')"
sql "INSERT INTO acct (balance) SELECT g FROM generate_series(1, $ROWS) AS g"

mkdir -p "$WORK/project/specs"
printf 'specs = "specs"\n[database]\nurl = "postgres://postgres@127.0.0.1:5432/%s"\n' "$DB" \
    >"$WORK/project/mig.toml"
printf 'backfill cents on acct {\n    set cents = balance * 100\n    batch %s\n}\n' "$BATCH" \
    >"$WORK/project/specs/bench.mig"

bare_update() { sql "UPDATE acct SET cents = balance * 100"; }
backfill() { (cd "$WORK/project" && "$MIG" run acct.cents >"$WORK/mig.out" 2>&1); }

# As in pg_live_load.sh: one full UPDATE and VACUUM first, so every timing finds the table
# as the ones after it do.
fresh_column
bare_update
echo "acct: $ROWS rows keyed by gen_random_uuid(); mig batch $BATCH; $REPEAT rounds"
bare_runs=(); mig_runs=()
for round in $(seq "$REPEAT"); do
    bare_runs+=("$(timed bare_update)")
    mig_runs+=("$(timed backfill)")
    [ "$(sql "SELECT count(*) FROM acct WHERE cents IS DISTINCT FROM balance * 100")" = 0 ] \
        || { echo "mig left rows unfilled"; exit 1; }
    echo "round $round: one bare UPDATE ${bare_runs[-1]} s; mig ${mig_runs[-1]} s: $(grep -E '^acct\.cents: run ' "$WORK/mig.out")"
done
python3 - "${bare_runs[*]}" "${mig_runs[*]}" <<'PY'
import statistics, sys
bare = [float(x) for x in sys.argv[1].split()]
mig = [float(x) for x in sys.argv[2].split()]
shares = [b / m for b, m in zip(bare, mig)]
print(f"mig's rate as a share of the bare UPDATE's, median of the rounds: "
      f"{statistics.median(shares):.2f} (rounds: {', '.join(f'{s:.2f}' for s in shares)})")
PY
drop_database
