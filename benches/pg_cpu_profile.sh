#!/usr/bin/env bash
# Where the server's CPU goes in one worker's backfill against one bare UPDATE of the same
# column: both run alone on a fresh column of pgbench_accounts under `perf record -a`, in
# rounds, and the samples are counted per process and, for PostgreSQL's processes, per
# function. The functions the backfill spends the most samples on beyond the bare UPDATE are
# listed from the last round. BENCHMARKS.md ("Fifteenth sitting") records a run.
#
#   bash benches/pg_cpu_profile.sh             # scale 20, batches of 5000, 2 rounds
#   SCALE=1 ROUNDS=1 bash benches/pg_cpu_profile.sh   # a quick check that it runs
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres), pgbench, psql, python3, perf (and the
# right to sample every CPU: root, or kernel.perf_event_paranoid <= -1) and a release build
# of mig (built here unless MIG is given). It creates and finally drops the database
# mig_profile.
set -euo pipefail
cd "$(dirname "$0")/.."

SCALE="${SCALE:-20}"
BATCH="${BATCH:-5000}"
ROUNDS="${ROUNDS:-2}"
DB=mig_profile
# shellcheck source=benches/pg_common.sh
source benches/pg_common.sh

pgbench_database
mig_project
printf 'backfill %s on %s {\n    set %s = abalance * 100\n    batch %s\n}\n' \
    "$COLUMN" "$TABLE" "$COLUMN" "$BATCH" >"$WORK/project/specs/bench.mig"
warmed_up
echo "$TABLE: $ROWS rows (scale $SCALE); mig batch $BATCH; $ROUNDS rounds"

# `perf record` of every CPU while the shell command $2 runs, into $WORK/$1.data; prints
# the seconds $2 took (timed inside the recording, so perf's own start is left out).
profiled() {
    fresh_column
    perf record -q -a -o "$WORK/$1.data" -- bash -c \
        "start=\$(date +%s.%N); $2 >/dev/null 2>&1; end=\$(date +%s.%N); echo \$start \$end" \
        >"$WORK/$1.span" 2>/dev/null
    python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{b - a:.2f}')" $(cat "$WORK/$1.span")
}

# Samples per command name, then PostgreSQL's per function, as "count<TAB>name" lines.
samples() {
    perf report -i "$WORK/$1.data" --sort comm -n --stdio 2>/dev/null \
        | awk '!/^#/ && NF >= 3 {print $2 "\t" $3}' >"$WORK/$1.comm"
    perf report -i "$WORK/$1.data" --comm postgres --sort sym -n --stdio 2>/dev/null \
        | awk '!/^#/ && NF >= 3 {n = $2; $1 = ""; $2 = ""; sub(/^ +/, ""); print n "\t" $0}' \
        >"$WORK/$1.sym"
}

for round in $(seq "$ROUNDS"); do
    mig_seconds="$(profiled "mig$round" "cd '$WORK/project' && '$MIG' run $TABLE.$COLUMN")"
    bare_seconds="$(profiled "bare$round" \
        "psql ${PGARGS[*]} -d $DB -qc 'UPDATE $TABLE SET $COLUMN = abalance * 100'")"
    samples "mig$round"
    samples "bare$round"
    python3 - "$WORK" "$round" "$mig_seconds" "$bare_seconds" "$(basename "$MIG")" <<'PY'
import sys
work, r, mig_s, bare_s = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
mig_comm = sys.argv[5][:15]  # the kernel keeps a process's name to 15 bytes
def comm(name):
    counts = {}
    for line in open(f"{work}/{name}.comm"):
        n, c = line.split("\t")
        counts[c.strip()] = counts.get(c.strip(), 0) + int(n)
    return counts
m, b = comm(f"mig{r}"), comm(f"bare{r}")
pm, pb = m.get("postgres", 0), b.get("postgres", 0)
print(f"round {r}: mig {mig_s:.2f} s, bare UPDATE {bare_s:.2f} s ({bare_s / mig_s:.2f} of its rate); "
      f"postgres samples {pm} against {pb} ({pm / max(pb, 1):.2f}x); "
      f"in mig's own process {m.get(mig_comm, 0)}")
PY
done

echo "PostgreSQL's functions with the most samples beyond the bare UPDATE's (last round):"
python3 - "$WORK" "$ROUNDS" <<'PY'
import sys
work, r = sys.argv[1], sys.argv[2]
def syms(name):
    counts = {}
    for line in open(f"{work}/{name}.sym"):
        n, s = line.split("\t", 1)
        counts[s.strip()] = counts.get(s.strip(), 0) + int(n)
    return counts
m, b = syms(f"mig{r}"), syms(f"bare{r}")
extra = sorted(((m.get(s, 0) - b.get(s, 0), s) for s in set(m) | set(b)), reverse=True)
print(f"  {'extra':>6} {'mig':>6} {'bare':>6}")
for d, s in extra[:20]:
    print(f"  {d:6d} {m.get(s, 0):6d} {b.get(s, 0):6d}  {s}")
print(f"  all: {sum(m.values())} against {sum(b.values())}")
PY
drop_database
