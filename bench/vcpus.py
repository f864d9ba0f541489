#!/usr/bin/python3
"""How fast is each CPU, alone and with the others busy, and does it stay
so? Runs the same short pure-Python call over and over on every CPU, one
process pinned to each, in time slices that take turns: all CPUs at once,
then each CPU alone while the others idle. What a machine whose CPUs are
shared (a VM's vCPUs) does to CPU-bound work, which steal time does not
show.

    /usr/bin/python3 bench/vcpus.py [--seconds 6] [--slice 0.25]
        [--fn fib] [--arg 20]

Prints one JSON object: per slice, its mode ("all" or the CPU alone) and
each running CPU's median thread CPU ms per call; "alone_ms" and
"together_ms", each CPU's median over the slices of either kind;
"together_over_alone", the median over CPUs of together / alone (1.0: a
CPU runs as fast when the others are busy; 1.3: 30 % slower, so N workers
can reach at most N / 1.3 times one); "speed_spread", the slowest
slice-median over the fastest (how much a CPU's speed moved during the
run); the per-CPU steal ticks (/proc/stat) over the run; and per slice
the CPU time every other task on the machine took ("others_ms", which
this script's own sampling adds a few ms to); and "vm": the transparent
huge page mode, the NUMA nodes, whether the CPU says it runs under a
hypervisor and whether virtio-balloon free page reporting hands freed
memory back to the host.
"""
import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench", "apps"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import cpu  # noqa: E402
from procstat import (all_tasks_run_ns, cpu_ticks,  # noqa: E402
                      vm_facts)


def others_run_ns(skip):
    """CPU ns every task not in skip has run so far (schedstat)."""
    return sum(run for (pid, _), (_, run, _) in all_tasks_run_ns().items()
               if pid not in skip)


def steal():
    return [c[4] for c in cpu_ticks()]


def runs(k, i, n):
    """Whether the CPU of index i runs in slice k of n + 1 kinds: kind 0,
    all; kind j, the CPU of index j - 1 alone."""
    kind = k % (n + 1)
    return kind == 0 or kind == i + 1


def probe(c, i, n, a, t0, slices, out_fd):
    """In a child pinned to CPU c: runs calls in its slices; writes [slice,
    cpu ms] rows to out_fd."""
    os.sched_setaffinity(0, {c})
    fn = cpu.FUNCTIONS[a.fn]
    rows = []
    while True:
        k = int((time.monotonic() - t0) / a.slice)
        if k >= slices:
            break
        if not runs(k, i, n):
            time.sleep(0.002)
            continue
        c0 = time.thread_time()
        fn(a.arg)
        rows.append([k, (time.thread_time() - c0) * 1e3])
    os.write(out_fd, json.dumps(rows).encode())
    os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--slice", type=float, default=0.25)
    ap.add_argument("--fn", default="fib", choices=sorted(cpu.FUNCTIONS))
    ap.add_argument("--arg", type=int, default=20)
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    n = len(cpus)
    slices = int(a.seconds / a.slice)
    cpu.FUNCTIONS[a.fn](a.arg)
    s0 = steal()
    t0 = time.monotonic() + 0.2
    kids = []
    for i, c in enumerate(cpus):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            probe(c, i, n, a, t0, slices, w)
        os.close(w)
        kids.append((c, pid, r))
    # While the probes run: what every other task took, per slice.
    skip = {os.getpid()} | {pid for _, pid, _ in kids}
    busy = {}
    prev = None
    for k in range(slices + 1):
        delay = t0 + k * a.slice - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = others_run_ns(skip)
        if prev is not None:
            busy[k - 1] = (now - prev) / 1e6
        prev = now
    per = {}
    for c, pid, r in kids:
        data = b""
        while True:
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        for k, ms in json.loads(data):
            per.setdefault(k, {}).setdefault(c, []).append(ms)
    s1 = steal()
    rows, meds = [], []
    alone, together = {}, {}
    for k in sorted(per):
        kind = k % (n + 1)
        row = {"t": round(k * a.slice, 2),
               "mode": "all" if kind == 0 else "alone",
               "others_ms": round(busy.get(k, 0), 1)}
        for c, v in sorted(per[k].items()):
            if len(v) < 3:  # the slice's edge: a call or two
                continue
            m = statistics.median(v)
            row[str(c)] = round(m, 3)
            meds.append(m)
            (together if kind == 0 else alone).setdefault(c, []).append(m)
        rows.append(row)
    al = {c: statistics.median(v) for c, v in alone.items()}
    to = {c: statistics.median(v) for c, v in together.items()}
    both = [to[c] / al[c] for c in cpus if c in al and c in to]
    print(json.dumps({
        "fn": "%s(%d)" % (a.fn, a.arg), "slice_s": a.slice,
        "alone_ms": {str(c): round(v, 3) for c, v in sorted(al.items())},
        "together_ms": {str(c): round(v, 3) for c, v in sorted(to.items())},
        "together_over_alone": round(statistics.median(both), 3)
        if both else None,
        "speed_spread": round(max(meds) / min(meds), 3) if meds else None,
        "steal_ticks": [b - x for x, b in zip(s0, s1)],
        "vm": vm_facts(),
        "slices": rows}))


if __name__ == "__main__":
    main()
