#!/usr/bin/env python3
"""Runs a command and prints its wall time and the CPU time (user + system, from /proc) that
each process of the machine used meanwhile, highest first: a PostgreSQL backend's share of a
`mig run` or of a bare UPDATE, which the client's own timing cannot show.

    python3 benches/cpu_during.py target/release/mig run pgbench_accounts.balance_cents

A process's CPU includes that of its children it has reaped: the CPU of a backend that ended
with the command shows in the postmaster's line. Linux only."""
import os
import subprocess
import sys
import time


def cpu_by_process():
    seen = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
            command = open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        seen[pid] = (command, sum(int(f) for f in fields[11:15]))
    return seen


before = cpu_by_process()
started = time.time()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
wall = time.time() - started
# Time for the postmaster to reap a backend whose client just disconnected.
time.sleep(0.5)
after = cpu_by_process()
ticks = os.sysconf("SC_CLK_TCK")
used = []
for pid, (command, cpu) in after.items():
    spent = cpu - before.get(pid, (command, 0))[1]
    if spent > 0:
        used.append((spent / ticks, command[:70]))
print(f"wall {wall:.2f}s")
for seconds, command in sorted(used, reverse=True)[:5]:
    print(f"{seconds:6.2f}s {command}")
