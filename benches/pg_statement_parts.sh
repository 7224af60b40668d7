#!/usr/bin/env bash
# What each part of mig's NULL-old batch statement costs on PostgreSQL: one pass over a fresh
# column of pgbench_accounts in transactions of $BATCH keys, driven by `pgbench -M prepared`,
# once with the statement exactly as `mig plan` prints it and once with each part taken out,
# against a bare range UPDATE, and the bare UPDATE handing its written rows on as the
# statement does. Every transaction opens as mig's do (BEGIN, the SET LOCALs, the run row
# locked) and commits. BENCHMARKS.md ("Where one worker's time goes") records a run.
#
#   bash benches/pg_statement_parts.sh            # scale 20, batches of 1000, 2 rounds
#   BATCH=5000 bash benches/pg_statement_parts.sh # the live-load bench's batch
#   SCALE=1 ROUNDS=1 bash benches/pg_statement_parts.sh   # a quick check that it runs
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres), pgbench, psql, python3 and a release
# build of mig (built here unless MIG is given). It creates and finally drops the database
# mig_parts.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-20}"
BATCH="${BATCH:-1000}"
ROUNDS="${ROUNDS:-2}"
DB=mig_parts
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

fresh_database
pgbench "${PGARGS[@]}" -i -s "$SCALE" -q "$DB" >/dev/null 2>&1
ROWS="$(sql "SELECT count(*) FROM pgbench_accounts")"
sql "ALTER TABLE pgbench_accounts ADD COLUMN balance_cents integer"
sql "UPDATE pgbench_accounts SET balance_cents = 0"
sql "VACUUM pgbench_accounts"

mkdir -p "$WORK/project/specs"
printf 'specs = "specs"\n[database]\nurl = "postgres://postgres@127.0.0.1:5432/%s"\n' "$DB" \
    >"$WORK/project/mig.toml"
printf 'backfill balance_cents on pgbench_accounts {\n    set balance_cents = abalance * 100\n    batch %s\n}\n' "$BATCH" \
    >"$WORK/project/specs/bench.mig"
# `mig plan` prints the statement; a run of one row makes the _mig_* tables, which mig
# creates only as it first writes; run 1000 is the probes' run.
(cd "$WORK/project" && "$MIG" plan pgbench_accounts.balance_cents) >"$WORK/plan.txt"
(cd "$WORK/project" && "$MIG" run pgbench_accounts.balance_cents --limit 1) >/dev/null
python3 - "$WORK" "$BATCH" <<'PY'
import sys
work, batch = sys.argv[1], sys.argv[2]
lines = open(f"{work}/plan.txt").read().splitlines()
statement = next(l.strip() for l in lines if l.strip().startswith("WITH _mig_keys"))
# The NULL-old statement's parameters as one pass of a lone run binds them ($6: no upper
# bound); pgbench binds :lo. The timestamp's format holds colons pgbench would take for
# variables, so the probes write clock_timestamp()::text.
for n, value in [(7, "100"), (6, "NULL"), (5, "'{balance_cents}'"), (4, batch),
                 (3, ":lo"), (2, ":lo"), (1, "1000")]:
    statement = statement.replace(f"${n}", value)
stamp = """to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')"""
assert stamp in statement, "the checkpoint's timestamp is not where the probe expects it"
statement = statement.replace(stamp, "clock_timestamp()::text")

def without(part, instead=""):
    cut = statement.replace(part, instead)
    assert cut != statement, f"not in the statement any more: {part[:60]}"
    return cut

def between(text, start, end):
    i = text.index(start)
    return text[i:text.index(end, i)]

backup = between(statement, ", _mig_backed_up AS (", ", _mig_whole AS (")
progress = between(statement, ", _mig_progress AS (", ") SELECT _mig_seen.n") + ")"
walk = between(statement, "WITH _mig_keys AS (", ", _mig_updated AS (")
bare = ('UPDATE "pgbench_accounts" AS t SET "balance_cents" = (t."abalance"::int8 * 100::int8) '
        f'WHERE t."aid" > :lo::integer AND t."aid" <= :lo::integer + {batch}')
variants = {
    "bare range UPDATE": bare,
    "mig's statement": statement,
    "without the backup record": without(backup),
    "without the checkpoint update": without(progress),
    "without the key walk (bounds from the checkpoint)": without(
        walk, f"WITH _mig_seen AS (SELECT {batch} AS n, :lo::integer + 1 AS first, "
              f":lo::integer + {batch} AS last)"),
    "without the key walk, the backup and the checkpoint": without(progress).replace(backup, "")
        .replace(walk, f"WITH _mig_seen AS (SELECT {batch} AS n, :lo::integer + 1 AS first, "
                       f":lo::integer + {batch} AS last)"),
    # What is left once those are out: the written rows handed to the rest of the statement,
    # and what the backup makes of them.
    "bare, RETURNING 1 into a CTE, counted": f"WITH u AS ({bare} RETURNING 1) SELECT count(*) FROM u",
    "bare, RETURNING key and new value as the backup's arrays": (
        f"WITH u AS ({bare} RETURNING t.aid AS k, t.balance_cents::text AS new) "
        "SELECT count(*), array_agg(k::text), array_agg(new) FROM u"),
}
opening = ["BEGIN;", "SET LOCAL lock_timeout = '2000ms';", "SET LOCAL synchronous_commit = off;",
           "SET LOCAL enable_seqscan = off;", "SET LOCAL enable_bitmapscan = off;",
           "SET LOCAL plan_cache_mode = force_generic_plan;",
           "SET LOCAL default_toast_compression = lz4;",
           "SELECT status, checkpoint_int, checkpoint_text FROM _mig_runs WHERE id = 1000 FOR UPDATE;"]
with open(f"{work}/variants.txt", "w") as names:
    for i, (name, body) in enumerate(variants.items()):
        with open(f"{work}/variant{i}.sql", "w") as f:
            f.write("\n".join(opening + [body + ";", "COMMIT;", f"\\set lo :lo + {batch}"]) + "\n")
        names.write(f"{i}\t{name}\n")
PY

# One pass of variant $1 over a fresh column; prints its seconds.
pass() {
    sql "ALTER TABLE pgbench_accounts DROP COLUMN balance_cents"
    sql "ALTER TABLE pgbench_accounts ADD COLUMN balance_cents integer"
    sql "DELETE FROM _mig_backup; DELETE FROM _mig_runs"
    sql "INSERT INTO _mig_runs (id, migration, spec_hash, spec, status, started_at, updated_at) \
         VALUES (1000, 'probe', '', '', 'running', '', '')"
    sql "VACUUM ANALYZE pgbench_accounts"
    sql "CHECKPOINT"
    local start end
    start="$(date +%s.%N)"
    pgbench "${PGARGS[@]}" -n -M prepared -f "$WORK/variant$1.sql" -t $(((ROWS + BATCH - 1) / BATCH)) \
        -c 1 -D lo=0 "$DB" >"$WORK/pgbench.out" 2>&1 || { cat "$WORK/pgbench.out"; exit 1; }
    end="$(date +%s.%N)"
    [ "$(sql "SELECT count(*) FROM pgbench_accounts WHERE balance_cents IS NULL")" = 0 ] \
        || { echo "variant $1 left rows unfilled"; exit 1; }
    python3 -c "print(f'{$end - $start:.2f}')"
}

echo "pgbench_accounts: $ROWS rows (scale $SCALE); transactions of $BATCH keys; $ROUNDS rounds"
declare -A seconds
for round in $(seq "$ROUNDS"); do
    while IFS=$'\t' read -r i _; do
        seconds[$i]+="$(pass "$i") "
    done <"$WORK/variants.txt"
done
while IFS=$'\t' read -r i name; do
    printf '%-58s %s s\n' "$name" "${seconds[$i]}"
done <"$WORK/variants.txt"
drop_database
