#!/usr/bin/env bash
# An application of SERIALIZABLE transactions beside mig on PostgreSQL: how many of its
# transactions fail with a serialization failure alone, and beside mig runs and rollbacks of
# a backfill, in a database whose default_transaction_isolation is serializable (BENCHMARKS.md,
# "Isolation"). The application reads one random row and updates another, as pgbench clients
# that do not retry (--max-tries=1), so every failure is counted. Beside them mig makes one
# run of the backfill and rolls it back, the same rows written whatever the build.
#
#   bash benches/pg_serializable_app.sh
#   MIG=/path/to/mig bash benches/pg_serializable_app.sh   # another build (an A/B)
#   SECONDS_EACH=30 ROUNDS=3 bash benches/pg_serializable_app.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres), pgbench 15 or later, psql and a release
# build of mig (built here). It creates and finally drops the database mig_isolation.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS="${ROWS:-400000}"
SECONDS_EACH="${SECONDS_EACH:-20}"
ROUNDS="${ROUNDS:-2}"
DB=mig_isolation
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

fresh_database
psql "${PGARGS[@]}" -d "$DB" -qc "CREATE TABLE t (id int PRIMARY KEY, a int, b int)" \
    -c "INSERT INTO t SELECT g, g, NULL FROM generate_series(1, $ROWS) g" \
    -c "VACUUM ANALYZE t" \
    -c "ALTER DATABASE $DB SET default_transaction_isolation = 'serializable'"

mkdir -p "$WORK/project/specs"
printf 'specs = "specs"\n[database]\nurl = "postgres://postgres@127.0.0.1:5432/%s"\n[defaults]\nretries = 3\n' \
    "$DB" >"$WORK/project/mig.toml"
printf 'backfill b on t {\n    set b = a * 2\n    batch 2000\n}\n' >"$WORK/project/specs/t.mig"
cat >"$WORK/app.sql" <<EOF
\set id random(1, $ROWS)
\set other random(1, $ROWS)
BEGIN;
SELECT a FROM t WHERE id = :other;
UPDATE t SET a = a + 1 WHERE id = :id;
COMMIT;
EOF

# The application for SECONDS_EACH seconds: "transactions failed".
application() {
    pgbench "${PGARGS[@]}" -n -c 4 -j 2 -T "$SECONDS_EACH" --max-tries=1 -f "$WORK/app.sql" "$DB" \
        >"$WORK/app.out" 2>&1 || true
    local done failed
    done="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/app.out")"
    failed="$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/app.out")"
    echo "$done ${failed:-0}"
}

echo "t: $ROWS rows; database default_transaction_isolation = serializable; mig: $MIG"
for round in $(seq "$ROUNDS"); do
    read -r done failed <<<"$(application)"
    echo "round $round, application alone:   $done transactions, $failed failed"
    application >"$WORK/beside" &
    app=$!
    # One run and its rollback: the same rows written whatever the build's speed, within
    # the application's window.
    started=$SECONDS
    (cd "$WORK/project" && "$MIG" run t.b --restart >"$WORK/mig.out" 2>&1) || true
    (cd "$WORK/project" && "$MIG" rollback t.b >>"$WORK/mig.out" 2>&1) || true
    took=$((SECONDS - started))
    wait "$app"
    read -r done failed <"$WORK/beside"
    # The run's summary, or what stopped it, and the rollback's.
    ran="$(grep -E '^t\.b: run [0-9]+: |^error: |restored' "$WORK/mig.out" | cut -c1-160 | paste -sd ';' || true)"
    echo "round $round, application beside mig: $done transactions, $failed failed; mig (run and rollback, ${took} s): ${ran:-?}"
done
drop_database
