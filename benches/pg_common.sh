# What the PostgreSQL bench scripts share; each sources it after setting DB, from the
# project's root. It gives PGARGS (psql's and pgbench's connection), URL (mig's URL of $DB),
# MIG (the build given, else a release build made here), WORK (a folder removed on exit),
# TABLE and COLUMN where the script did not set them (pgbench_accounts, balance_cents), and:
#   sql "…"         one statement on $DB, rows as plain text, NOTICEs silenced
#   admin "…"       one statement on the postgres database
#   fresh_database  $DB dropped if there and created empty
#   drop_database   $DB dropped, at the end
#   now             the time in seconds since the epoch
#   fresh_column    $COLUMN of $TABLE dropped and added again as an
#                   empty integer, mig's tables dropped, the table vacuumed, a checkpoint:
#                   every timed run finds the table alike
#   timed CMD…      the seconds CMD takes on a fresh column
#   application S F pgbench as the application ($CLIENTS clients, 2 threads) for S seconds,
#                   logging every transaction into folder F
#   latency F A B   "count p50 p99 max" (ms) of the transactions logged in folder F that
#                   overlapped the span from A to B (epoch seconds)
#   warmed_up       one full UPDATE of $COLUMN and a VACUUM, so every later timing finds
#                   the table as the ones after it do (each update reuses the space the
#                   previous one freed); the column left empty
#   idle_latency    the application alone for $IDLE_SECONDS s, printed; sets idle_p99
#   pgbench_database  $DB made fresh by `pgbench -i -s $SCALE`; sets ROWS, its accounts
#   mig_project     $WORK/project: a mig.toml on $URL (lock timeout 2s, 5 retries) and an
#                   empty specs folder
TABLE="${TABLE:-pgbench_accounts}"
COLUMN="${COLUMN:-balance_cents}"
# $DB on the server PG_SERVER names, by default this machine's.
URL="${PG_SERVER:-postgres://postgres@127.0.0.1:5432}/$DB"
PGARGS=(-h 127.0.0.1 -p 5432 -U postgres)
if [ -z "${MIG:-}" ]; then
    cargo build --release --quiet
    MIG="$PWD/target/release/mig"
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# NOTICEs (DROP … IF EXISTS of what is not there) would only clutter the results.
sql() { PGOPTIONS="-c client_min_messages=warning" psql "${PGARGS[@]}" -d "$DB" -qAtc "$1"; }
admin() { PGOPTIONS="-c client_min_messages=warning" psql "${PGARGS[@]}" -d postgres -qc "$1"; }
fresh_database() {
    admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
    admin "CREATE DATABASE $DB"
}
drop_database() { admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; }
now() { date +%s.%N; }
fresh_column() {
    sql "ALTER TABLE $TABLE DROP COLUMN IF EXISTS $COLUMN"
    sql "ALTER TABLE $TABLE ADD COLUMN $COLUMN integer"
    sql "DROP TABLE IF EXISTS _mig_runs, _mig_backup, _mig_conflicts, _mig_claims"
    sql "VACUUM ANALYZE $TABLE"
    sql "CHECKPOINT"
}
timed() {
    fresh_column
    local start end
    start="$(now)"; "$@"; end="$(now)"
    python3 -c "print(f'{$end - $start:.2f}')"
}

# Latency of the pgbench transactions that overlapped the span from $2 to $3 (epoch seconds):
# those a backfill could have slowed, including the ones it blocked until after it ended.
# From the -l logs in folder $1: "count p50 p99 max" in milliseconds.
latency() {
    python3 - "$@" <<'PY'
import glob, sys
folder, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
lat = []
for path in glob.glob(folder + "/pgbench_log.*"):
    for line in open(path):
        f = line.split()
        done = int(f[4]) + int(f[5]) / 1e6
        began = done - int(f[2]) / 1e6
        if began <= end and done >= start:
            lat.append(int(f[2]) / 1000.0)
lat.sort()
if not lat:
    print("0 - - -")
else:
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    print(f"{len(lat)} {q(0.50):.2f} {q(0.99):.2f} {lat[-1]:.2f}")
PY
}

# pgbench as the application for $1 seconds, logging every transaction into folder $2.
application() {
    mkdir -p "$2"
    (cd "$2" && pgbench "${PGARGS[@]}" -c "$CLIENTS" -j 2 -T "$1" -l -n "$DB" >pgbench.out 2>&1)
}

pgbench_database() {
    fresh_database
    pgbench "${PGARGS[@]}" -i -s "$SCALE" -q "$DB" >/dev/null 2>&1
    ROWS="$(sql "SELECT count(*) FROM pgbench_accounts")"
}

mig_project() {
    mkdir -p "$WORK/project/specs"
    cat >"$WORK/project/mig.toml" <<TOML
specs = "specs"
[database]
url = "$URL"
[defaults]
lock_timeout = "2s"
retries = 5
TOML
}

warmed_up() {
    fresh_column
    sql "UPDATE $TABLE SET $COLUMN = 0"
    fresh_column
}

idle_latency() {
    local start end n p50 max
    echo
    echo "== idle application, ${IDLE_SECONDS}s"
    start="$(now)"; application "$IDLE_SECONDS" "$WORK/idle"; end="$(now)"
    read -r n p50 idle_p99 max <<<"$(latency "$WORK/idle" "$start" "$end")"
    echo "transactions $n  p50 ${p50} ms  p99 ${idle_p99} ms  max ${max} ms"
}
