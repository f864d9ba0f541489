#!/usr/bin/python3
"""Is a process's speed a property of its lifetime? Times the same
pure-Python call in several processes, one process at a time and pinned to
one CPU, round after round, and compares the spread between processes with
the spread within each.

    /usr/bin/python3 bench/lifetimes.py [--procs P] [--rounds R] [--fn fib]
        [--arg 25] [--how exec|fork|gild|mixed] [--cpus 0,1] [--no-aslr]
        [--gild-args ARGS] [--out FILE]

--how exec: P fresh `python3` processes (fork + exec, like bench/speedup.py's
control; --no-aslr starts them with address randomization off); fork: P
children forked from one parent that ran the function first (like
multiprocessing's fork start method); gild: the workers of one `gild serve
bench/apps/cpu.py --workers P` (calls one at a time; the stamps say which
worker ran each); mixed: P/2 gild servers of one worker each and P/2 plain
processes, taking turns in the same rounds. In each round every process
runs the call once, alone, pinned in turn to each CPU of --cpus (default:
all), so that neither other processes of this run nor the CPU they ran on
can explain a difference between them.

Each call is cpu.stamped(FN, ARG) (thread CPU time, CPU number, faults).
Prints one JSON object: per process its kind, the median, min and max CPU
ms per CPU, and its medians in the first and the second half of the
rounds; "spread", the slowest process's median over the fastest's, against
the median within-process range; and the rank correlation of the halves
(Spearman: near 1 when the same processes are slow in both halves). With
--out FILE, also every call ([pid, CPU, start, CPU ms, wall ms], in order)
into FILE. A process slow in both halves while the others are not is slow
for its lifetime; all processes slow in one half is the machine changing
speed.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(ROOT, "bench", "apps")
sys.path.insert(0, APPS)
sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import cpu  # noqa: E402

# A child: "FN ARG" in, one stamped call's JSON out. The same loop serves
# the fork children (run in-process after fork).
CHILD = """
import json, os, sys
sys.path.insert(0, %r)
import cpu
print(os.getpid(), flush=True)
for line in sys.stdin:
    fn, arg = line.split()
    print(json.dumps(cpu.stamped(fn, int(arg))), flush=True)
""" % APPS


class ExecChild:
    def __init__(self, no_aslr=False):
        pre = ["setarch", "-R"] if no_aslr else []
        self.p = subprocess.Popen(pre + [sys.executable, "-c", CHILD],
                                  text=True,
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        self.pid = int(self.p.stdout.readline())

    def call(self, fn, arg):
        self.p.stdin.write("%s %d\n" % (fn, arg))
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


class ForkChild:
    fds = []  # the parent's ends for every child: closed in each new child

    def __init__(self):
        r1, w1 = os.pipe()
        r2, w2 = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w1)
            os.close(r2)
            for fd in ForkChild.fds:
                os.close(fd)
            inp, out = os.fdopen(r1), os.fdopen(w2, "w")
            try:
                for line in inp:
                    fn, arg = line.split()
                    out.write(json.dumps(cpu.stamped(fn, int(arg))) + "\n")
                    out.flush()
            finally:
                os._exit(0)
        os.close(r1)
        os.close(w2)
        ForkChild.fds += [w1, r2]
        self.pid = pid
        self.inp, self.out = os.fdopen(r2), os.fdopen(w1, "w")

    def call(self, fn, arg):
        self.out.write("%s %d\n" % (fn, arg))
        self.out.flush()
        return json.loads(self.inp.readline())

    def close(self):
        self.out.close()
        os.waitpid(self.pid, 0)


class GildChild:
    """A gild server of one worker (its own template): the worker is the
    process timed."""

    def __init__(self, gild_args):
        import shlex
        import gild
        from gildproc import Gild
        self.g = Gild(app=os.path.join(APPS, "cpu.py"), workers=1,
                      args=("--log-level", "warn", *shlex.split(gild_args)))
        self.c = gild.connect(self.g.url, timeout=120)
        self.pid = self.c.status()["workers"][0]["pid"]

    def call(self, fn, arg):
        return self.c.call("stamped", fn, arg)

    def close(self):
        self.c.close()
        self.g.stop()


def pin(pid, cpu_):
    """Pins every thread of pid to one CPU."""
    for t in os.listdir("/proc/%d/task" % pid):
        os.sched_setaffinity(int(t), {cpu_})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--procs", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--fn", default="fib", choices=sorted(cpu.FUNCTIONS))
    ap.add_argument("--arg", type=int, default=25)
    ap.add_argument("--how", default="exec",
                    choices=("exec", "fork", "gild", "mixed"))
    ap.add_argument("--cpus", default="")
    ap.add_argument("--gild-args", default="")
    ap.add_argument("--no-aslr", action="store_true",
                    help="exec: start the processes with address space "
                    "randomization off (setarch -R), so all have one layout")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    cpus = ([int(c) for c in a.cpus.split(",")] if a.cpus
            else sorted(os.sched_getaffinity(0)))
    stamps = {}  # pid -> {cpu: [cpu ms]}
    raw = []  # every call: [pid, cpu, monotonic start, cpu ms, wall ms]
    kinds = {}  # pid: exec, fork or gild
    if a.how == "gild":
        import shlex
        import gild
        from gildproc import Gild
        g = Gild(app=os.path.join(APPS, "cpu.py"), workers=a.procs,
                 args=("--log-level", "warn", *shlex.split(a.gild_args)))
        try:
            c = gild.connect(g.url, timeout=120)
            pids = [w["pid"] for w in c.status()["workers"]]
            for r in range(a.rounds):
                for cp in cpus:
                    for p in pids:
                        pin(p, cp)
                    # one at a time: the server picks the worker; run
                    # enough calls that each worker gets some
                    for _ in range(2 * len(pids)):
                        s = c.call("stamped", a.fn, a.arg)
                        raw.append(s)
                        stamps.setdefault(s[0], {}).setdefault(
                            s[2], []).append(s[6] * 1e3)
            c.close()
        finally:
            g.stop()
    else:
        if a.how == "fork":
            cpu.stamped(a.fn, a.arg)  # the parent's pages, as a pool's
        kids = []
        for i in range(a.procs):
            if a.how == "mixed":
                kids.append(ExecChild(a.no_aslr) if i % 2 else
                            GildChild(a.gild_args))
            else:
                kids.append(ExecChild(a.no_aslr) if a.how == "exec" else
                            ForkChild())
        for k in kids:
            kinds[k.pid] = type(k).__name__[:-5].lower()  # exec, fork, gild
        try:
            for r in range(a.rounds):
                for cp in cpus:
                    for k in kids:
                        pin(k.pid, cp)
                        s = k.call(a.fn, a.arg)
                        raw.append(s)
                        stamps.setdefault(s[0], {}).setdefault(
                            s[2], []).append(s[6] * 1e3)
        finally:
            for k in kids:
                k.close()
    per = {}
    for pid, by_cpu in stamps.items():
        allv = [v for vs in by_cpu.values() for v in vs]
        per[str(pid)] = {
            "kind": kinds.get(pid, a.how),
            "median_ms": round(statistics.median(allv), 3),
            "by_cpu": {str(c): [round(statistics.median(v), 3),
                                round(min(v), 3), round(max(v), 3), len(v)]
                       for c, v in sorted(by_cpu.items())},
            "within": round(statistics.median(
                [max(v) / min(v) for v in by_cpu.values() if len(v) > 1]
                or [1.0]), 3)}
    # split halves: is a process slow in both halves of its rounds?
    halves = {}
    for pid in stamps:
        v = [s[6] * 1e3 for s in raw if s[0] == pid]
        h = len(v) // 2
        if h:
            halves[pid] = (statistics.median(v[:h]), statistics.median(v[h:]))
    rho = None
    if len(halves) > 2:
        def rank(x):
            order = sorted(range(len(x)), key=lambda i: x[i])
            r = [0] * len(x)
            for k, i in enumerate(order):
                r[i] = k
            return r
        ra = rank([h[0] for h in halves.values()])
        rb = rank([h[1] for h in halves.values()])
        n = len(ra)
        rho = 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (
            n * (n * n - 1))
    for pid, h in halves.items():
        per[str(pid)]["halves_ms"] = [round(h[0], 3), round(h[1], 3)]
    meds = [p["median_ms"] for p in per.values()]
    out = {"how": a.how, "procs": a.procs, "rounds": a.rounds,
           "fn": "%s(%d)" % (a.fn, a.arg), "cpus": cpus,
           "spread": round(max(meds) / min(meds), 3),
           "within_range": round(statistics.median(
               p["within"] for p in per.values()), 3),
           "halves_rank_correlation": None if rho is None else round(rho, 2),
           "processes": per}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(dict(out, raw=[[s[0], s[2], s[4], s[6] * 1e3,
                                      (s[5] - s[4]) * 1e3] for s in raw]), f)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
