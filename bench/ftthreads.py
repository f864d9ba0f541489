#!/usr/bin/python3
"""The bound on `--runtime free-threaded --threads 2` against one 3.11
thread (issue 16, target 5), measured in the interpreters alone: the
thread CPU time per call of FN in /usr/bin/python3 (one thread) and in the
free-threaded Python (one thread alone, and each of two threads running
at once), interleaved rep by rep.

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
# call of one thread alone and of each of two threads at once.
CHILD = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import cpu
fn, arg, calls, k = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
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


def child(python, fn, arg, calls, k):
    out = subprocess.run([python, "-c", CHILD, os.path.join(ROOT, "bench",
                                                              "apps"),
                          fn, str(arg), str(calls), str(k)],
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
    cost, contention, bound, ms311, msft = [], [], [], [], []
    for rep in range(a.reps):
        order = [0, 1] if rep % 2 == 0 else [1, 0]
        got = [None, None]
        for i in order:
            got[i] = child(sys.executable if i == 0 else a.ft, a.fn, arg,
                           a.calls, 1 if i == 0 else 2)
        base, ft = got[0]["alone"], got[1]
        ms311.append(base * 1e3)
        msft.append(ft["alone"] * 1e3)
        cost.append(ft["alone"] / base)
        contention.append(ft["both"] / ft["alone"])
        bound.append(2 * base / ft["both"])
    print(json.dumps({
        "fn": "%s(%d)" % (a.fn, arg), "reps": a.reps,
        "ms_per_call_3.11": summary(ms311),
        "ms_per_call_ft_alone": summary(msft),
        "ft_alone_over_3.11": summary(cost),
        "ft_two_at_once_over_alone": summary(contention),
        "best_speedup_of_2_ft_threads_over_one_3.11_thread": summary(bound),
    }, indent=1))


if __name__ == "__main__":
    main()
