#!/usr/bin/env python3
"""No-op latency and throughput of gild builds side by side, rep by rep,
against the bare nng echo measured in the same rep: issue 16's targets 2, 3
and 4, for comparing a change with what it changes.

    python3 bench/hopslat.py [--reps R] [--seconds S] [--workers W]
        [--no-python] [--py-threads T] BUILD[:ARGS] ...

Each build (a build folder, with extra `gild serve` arguments after a colon)
serves bench/apps/bench_app.py on its own loopback port for the whole run.
Each rep measures, taking turns (floor, then each build; the order of the
builds turns round from rep to rep):

- the bare nng REQ/REP echo (FIRST_BUILD/bench/floor --nng tcp): p50 with
  one request in flight, and requests/s with 64;
- per build: no-op p50 from C (BUILD/bench/loadgen --closed 1), from the
  Python client (bench/peers.py gild-latency, with BUILD's extension), and
  calls/s from C with 64 calls in flight, one call per message
  (loadgen --closed 64).

Prints each rep, then per build the median and range over the reps of each
figure and of the ratios, taken rep by rep: C p50 / echo p50 (target 2:
<= 1.5), Python p50 / C p50 (target 3: <= 1.05), calls/s at 64 / echo's
(target 4: >= 0.5). The load average is printed with each rep.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hops import start_gild  # noqa: E402
from procstat import loadavg  # noqa: E402


PY_THREADS = r"""
import json, sys, threading, time
sys.path.insert(0, "client-lib/python")
import gild
url, k, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = gild.connect(url)
for _ in range(100):
    c.call("noop")
n = [0] * k
end = time.monotonic() + secs
def run(i):
    while time.monotonic() < end:
        c.call("noop")
        n[i] += 1
t0 = time.monotonic()
ts = [threading.Thread(target=run, args=(i,)) for i in range(k)]
for t in ts: t.start()
for t in ts: t.join()
el = time.monotonic() - t0
c.close()
print(json.dumps({"calls_per_s": sum(n) / el}))
"""


def run_json(cmd, env=None):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       env=env, timeout=300)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


def med_range(xs, fmt):
    if not xs:
        return "-"
    return (fmt % statistics.median(xs)) + " (" + (fmt % min(xs)) + "–" + \
        (fmt % max(xs)) + ")"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="*", default=["build"])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-python", action="store_true")
    ap.add_argument("--py-threads", type=int, default=0,
                    help="also calls/s of the Python client with this many "
                    "threads each calling in a loop")
    o = ap.parse_args()
    first = o.builds[0].partition(":")[0]
    servers = []
    try:
        for b in o.builds:
            servers.append(start_gild(b, o.workers))
        secs = str(o.seconds)
        rows = {b: [] for b in o.builds}
        print(f"load average at start: {loadavg()}")
        for rep in range(o.reps):
            fl = run_json([os.path.join(first, "bench", "floor"), "--nng",
                           "tcp://127.0.0.1:0", "--calls", "20000",
                           "--seconds", secs])
            fl64 = run_json([os.path.join(first, "bench", "floor"), "--nng",
                             "tcp://127.0.0.1:0", "--closed", "64",
                             "--calls", "400000", "--seconds", secs])
            echo_p50 = fl["latency_us"]["p50"]
            echo_64 = fl64["calls_per_s"]
            order = list(range(len(o.builds)))
            order = order[rep % len(order):] + order[:rep % len(order)]
            line = [f"rep {rep + 1}: echo p50 {echo_p50:.1f} µs, "
                    f"64: {echo_64:.0f}/s"]
            for i in order:
                b = o.builds[i]
                d = b.partition(":")[0]
                url = servers[i][1]
                lg = os.path.join(d, "bench", "loadgen")
                c1 = run_json([lg, "--url", url, "--fn", "noop", "--closed",
                               "1", "--calls", "20000", "--seconds", secs])
                c64 = run_json([lg, "--url", url, "--fn", "noop",
                                "--closed", "64", "--calls", "400000",
                                "--seconds", secs])
                py = None
                if not o.no_python:
                    env = dict(os.environ, B=os.path.abspath(d))
                    py = run_json([sys.executable, "bench/peers.py",
                                   "gild-latency", "--url", url, "--calls",
                                   "20000", "--seconds", secs], env=env)
                pyt = None
                if o.py_threads:
                    env = dict(os.environ, B=os.path.abspath(d))
                    pyt = run_json([sys.executable, "-c", PY_THREADS, url,
                                    str(o.py_threads), secs], env=env)
                r = {"c_p50": c1["latency_us"]["p50"],
                     "pyt": pyt["calls_per_s"] if pyt else None,
                     "c64": c64["calls_per_s"],
                     "py_p50": py["latency_us"]["p50"] if py else None,
                     "echo_p50": echo_p50, "echo_64": echo_64}
                rows[b].append(r)
                line.append(
                    f"{b}: C p50 {r['c_p50']:.1f} µs"
                    + (f", Py p50 {r['py_p50']:.1f} µs" if py else "")
                    + f", 64: {r['c64']:.0f}/s"
                    + (f", Py {o.py_threads} threads: {r['pyt']:.0f}/s"
                       if pyt else ""))
            print("; ".join(line) + f"  [load {loadavg()}]", flush=True)
        print(f"load average at end: {loadavg()}")
        print(f"\nMedians (ranges) of {o.reps} reps, {o.workers} workers:\n")
        print("| build | C p50 µs | / echo p50 | Py p50 µs | Py / C | "
              "calls/s at 64 | / echo at 64 |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for b in o.builds:
            rs = rows[b]
            c = [r["c_p50"] for r in rs]
            cr = [r["c_p50"] / r["echo_p50"] for r in rs]
            p = [r["py_p50"] for r in rs if r["py_p50"]]
            pr = [r["py_p50"] / r["c_p50"] for r in rs if r["py_p50"]]
            t = [r["c64"] for r in rs]
            tr = [r["c64"] / r["echo_64"] for r in rs]
            print(f"| {b} | {med_range(c, '%.0f')} | {med_range(cr, '%.2f')}"
                  f" | {med_range(p, '%.0f')} | {med_range(pr, '%.2f')} | "
                  f"{med_range(t, '%.0f')} | {med_range(tr, '%.2f')} |")
        if o.py_threads:
            print(f"\nPython client, {o.py_threads} threads calling in a "
                  "loop, calls/s:\n")
            for b in o.builds:
                print(f"- {b}: "
                      f"{med_range([r['pyt'] for r in rows[b]], '%.0f')}")
        echo = [r["echo_p50"] for r in rows[o.builds[0]]]
        echo64 = [r["echo_64"] for r in rows[o.builds[0]]]
        print(f"\nbare nng echo: p50 {med_range(echo, '%.0f')} µs, "
              f"64 in flight {med_range(echo64, '%.0f')}/s")
    finally:
        for p, _ in servers:
            p.send_signal(signal.SIGTERM)
        for p, _ in servers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


if __name__ == "__main__":
    main()
