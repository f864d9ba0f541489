#!/usr/bin/python3
"""CPU time of the same pure-Python function inside a gild worker and in a
plain interpreter, interleaved rep by rep, so that the machine's drift
cancels in the ratio.

    /usr/bin/python3 bench/cputime.py --url URL [--python PY] [--fn fib]
        [--arg N] [--reps R] [--warmup W]

URL serves bench/apps/cpu.py. Each rep calls cpu_time(FN, ARG) in the
worker (the thread CPU time the call took, measured by the worker's Python
around the function alone: no transport, no conversion) and runs the same
cpu_time(FN, ARG) in the reference interpreter: this process when --python
is this interpreter (the default), else a child process of --python kept
for the whole run (for the free-threaded python3.13t). The order of the
two alternates from rep to rep.

Prints one JSON object: the function, both interpreters' versions, the
worker's and the interpreter's milliseconds (median, min, max) and the
per-rep ratio worker / interpreter (median, min, max). Exit 1 on failure.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(ROOT, "bench", "apps")

# The child's loop: one "FN ARG" line in, one CPU time in seconds out.
CHILD = """
import json, sys
sys.path.insert(0, %r)
import cpu
print(json.dumps(cpu.runtime()), flush=True)
for line in sys.stdin:
    fn, arg = line.split()
    print(repr(cpu.cpu_time(fn, int(arg))), flush=True)
""" % APPS


class Local:
    """cpu_time in this process."""

    def __init__(self):
        sys.path.insert(0, APPS)
        import cpu
        self.cpu = cpu
        self.runtime = cpu.runtime()

    def __call__(self, fn, arg):
        return self.cpu.cpu_time(fn, arg)

    def close(self):
        pass


class Child:
    """cpu_time in a child process of another interpreter."""

    def __init__(self, python):
        self.p = subprocess.Popen([python, "-c", CHILD], text=True,
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        self.runtime = json.loads(self.p.stdout.readline())

    def __call__(self, fn, arg):
        self.p.stdin.write("%s %d\n" % (fn, arg))
        self.p.stdin.flush()
        return float(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def summary(values):
    return {"median": statistics.median(values), "min": min(values),
            "max": max(values)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--fn", default="fib", choices=("fib", "burn"))
    ap.add_argument("--arg", type=int, default=22)
    ap.add_argument("--reps", type=int, default=31)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()

    sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
    import gild
    same = os.path.realpath(a.python) == os.path.realpath(sys.executable)
    ref = Local() if same else Child(a.python)
    c = gild.connect(a.url, timeout=120)
    try:
        worker_rt = c.call("runtime")

        def in_worker(fn, arg):
            return c.call("cpu_time", fn, arg)

        for _ in range(a.warmup):
            in_worker(a.fn, a.arg)
            ref(a.fn, a.arg)
        w, r = [], []
        for i in range(a.reps):
            if i % 2 == 0:
                w.append(in_worker(a.fn, a.arg))
                r.append(ref(a.fn, a.arg))
            else:
                r.append(ref(a.fn, a.arg))
                w.append(in_worker(a.fn, a.arg))
    finally:
        c.close()
        ref.close()
    print(json.dumps({
        "fn": "%s(%d)" % (a.fn, a.arg), "reps": a.reps,
        "worker": worker_rt, "interpreter": ref.runtime,
        "python": a.python,
        "worker_ms": summary([x * 1e3 for x in w]),
        "interpreter_ms": summary([x * 1e3 for x in r]),
        "ratio": summary([x / y for x, y in zip(w, r)]),
    }))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one JSON object on stdout, whatever happened
        print(json.dumps({"error": repr(e)}))
        sys.exit(1)
