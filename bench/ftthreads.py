#!/usr/bin/python3
"""The bound on `--runtime free-threaded --threads 2` against one 3.11
thread (issue 16, target 5), measured in the interpreters alone: the
thread CPU time per call of FN in /usr/bin/python3 (one thread) and in the
free-threaded Python (one thread alone, and each of two threads running
at once), interleaved rep by rep. The free-threaded runs use a fresh copy
of bench/apps/cpu.py, compiled on import: once with its code rebuilt as
gild-worker-ft rebuilds an app's (gild/_ftconsts.py), once as imported,
whose constants CPython 3.13t leaves mortal and so shared between the
threads.

    /usr/bin/python3 bench/ftthreads.py [--ft PYTHON3.13t] [--reps 9]
        [--calls 8] [--fn fib|burn]

Thread CPU time (time.thread_time) leaves out time spent waiting for a
CPU, so two threads that slow each other (contention on shared objects)
show as a rise from "alone" to "two at once", whatever else the machine
runs. The best two free-threaded threads can do against one 3.11 thread
is 2 / (free-threaded alone / 3.11), when they do not contend. Prints one
JSON object: medians and ranges over the reps.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FT_DEFAULT = os.path.expanduser(
    "~/.cache/gild/python3.13t-pgo-static/bin/python3.13t")

# Run in each interpreter: prints {"alone": s, "both": s}, CPU seconds per
# call of one thread alone and of each of two threads at once; with
# "rebuilt", after gild-worker-ft's gild._ftconsts.intern_constants. The
# module is a fresh copy of bench/apps/cpu.py, compiled on import, as a
# user's app is the first time it runs.
CHILD = r"""
import json, os, shutil, sys, tempfile, threading, time
apps, gildpy, fn, arg, calls, k, how = sys.argv[1:8]
arg, calls, k = int(arg), int(calls), int(k)
d = tempfile.mkdtemp()
shutil.copy(os.path.join(apps, "cpu.py"), d)
sys.path.insert(0, d)
import cpu
shutil.rmtree(d)
if how == "rebuilt":
    sys.path.insert(0, gildpy)
    from gild import _ftconsts
    _ftconsts.intern_constants(cpu)
f = getattr(cpu, fn)
f(arg)
def per_call(out, i):
    t0 = time.thread_time()
    for _ in range(calls):
        f(arg)
    out[i] = (time.thread_time() - t0) / calls
def run(n):
    out = [0.0] * n
    ts = [threading.Thread(target=per_call, args=(out, i)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    return sum(out) / n
print(json.dumps({"alone": run(1), "both": run(2) if k > 1 else None}))
"""


def child(python, fn, arg, calls, k, how="imported"):
    out = subprocess.run([python, "-c", CHILD,
                          os.path.join(ROOT, "bench", "apps"),
                          os.path.join(ROOT, "client-lib", "python"),
                          fn, str(arg), str(calls), str(k), how],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def summary(xs):
    return {"median": round(statistics.median(xs), 3),
            "min": round(min(xs), 3), "max": round(max(xs), 3)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ft", default=os.environ.get("FT_PYTHON", FT_DEFAULT))
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--fn", default="fib", choices=["fib", "burn"])
    ap.add_argument("--arg", type=int)
    a = ap.parse_args()
    arg = a.arg or {"fib": 25, "burn": 100000}[a.fn]
    cost, contention, contention_imported, bound, ms311, msft = \
        [], [], [], [], [], []
    runs = [(sys.executable, 1, "imported"), (a.ft, 2, "rebuilt"),
            (a.ft, 2, "imported")]
    for rep in range(a.reps):
        got = [None] * len(runs)
        for i in [(rep + j) % len(runs) for j in range(len(runs))]:
            python, k, how = runs[i]
            got[i] = child(python, a.fn, arg, a.calls, k, how)
        base, ft, imported = got[0]["alone"], got[1], got[2]
        ms311.append(base * 1e3)
        msft.append(ft["alone"] * 1e3)
        cost.append(ft["alone"] / base)
        contention.append(ft["both"] / ft["alone"])
        contention_imported.append(imported["both"] / imported["alone"])
        bound.append(2 * base / ft["both"])
    print(json.dumps({
        "fn": "%s(%d)" % (a.fn, arg), "reps": a.reps,
        "ms_per_call_3.11": summary(ms311),
        "ms_per_call_ft_alone": summary(msft),
        "ft_alone_over_3.11": summary(cost),
        "ft_two_at_once_over_alone": summary(contention),
        "ft_two_at_once_over_alone_as_imported": summary(
            contention_imported),
        "best_speedup_of_2_ft_threads_over_one_3.11_thread": summary(bound),
    }, indent=1))


if __name__ == "__main__":
    main()
