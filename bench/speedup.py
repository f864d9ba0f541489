#!/usr/bin/python3
"""8 CPU-bound calls on N workers: the speedup of gild (map, submit, the
free-threaded runtime) and of multiprocessing.Pool.map,
ProcessPoolExecutor.map and N plain processes, each over running the same
calls one after another in this process, interleaved rep by rep.

    /usr/bin/python3 bench/speedup.py [--workers N] [--calls 8] [--fn fib]
        [--arg 25] [--reps 10] [--block 5] [--no-ft] [--gild-args ARGS]
        [--server-build DIR] [--build-b DIR] [--b-args ARGS] [--pin M,...]
        [--slow-cpu] [--only M,...] [--stamps FILE]

Every call is cpu.stamped(FN, ARG) of bench/apps/cpu.py (the function plus
its stamps: pid, thread, CPU number at start and end, thread CPU time, wall
times, minor faults, context switches), in every method, the sequential one
included. The reps run in blocks of --block: each block starts its own gild
servers (`--workers N`; when the build has gild-worker-ft also `--runtime
free-threaded --workers 1 --threads N`), Pool, ProcessPoolExecutor and N
plain `python3` processes (the control: each runs its share, calls / N, with
nothing between them), so a block is one server lifetime; the order of the
methods rotates from rep to rep. Speedup = the rep's sequential wall time /
the method's; "vs_pool" = a method's speedup / Pool.map's in the same rep.

Around each method's run it reads, for that method's worker processes,
/proc/PID/task/*/{stat,schedstat,status} (CPU time, time runnable but
waiting for a CPU, wake-ups, faults), the per-CPU steal time (/proc/stat)
and the CPU time every other task on the machine took meanwhile (kworkers,
other sessions). "cpu_imbalance" is the slowest worker's median call CPU
time over the fastest's (per rep, and per block).

For comparisons: --server-build serves gild from another build folder;
--build-b (a second build) or --b-args (other `gild serve` arguments) adds
methods b-map and b-submit beside gild-map and gild-submit; --pin pins the
named methods' worker i to CPU i; --slow-cpu pins every method's workers so
and keeps a spinning process on the last CPU (one worker at half speed);
--gild-args adds `gild serve` arguments. Prints one JSON object (medians
and ranges; per-worker diagnostics; with --stamps every rep's raw data goes
to FILE). Exit 1 on failure. See bench/README.md.
"""
import argparse
import concurrent.futures
import functools
import json
import multiprocessing
import os
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APPS = os.path.join(ROOT, "bench", "apps")
sys.path.insert(0, APPS)
sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import cpu  # noqa: E402
import gildproc  # noqa: E402
from procstat import (all_tasks_run_ns, cpu_ticks, descendants,  # noqa: E402
                      loadavg, task_counters)
from gildproc import Gild  # noqa: E402  (starts and stops gild by pid)

TICK = os.sysconf("SC_CLK_TCK")

# A plain process of the control: reads "FN ARG K", runs K stamped calls,
# prints their stamps as one JSON line.
CHILD = """
import json, sys
sys.path.insert(0, %r)
import cpu
print("ready", flush=True)
for line in sys.stdin:
    fn, arg, k = line.split()
    print(json.dumps([cpu.stamped(fn, int(arg)) for _ in range(int(k))]),
          flush=True)
""" % APPS


def log(*a):
    print("speedup:", *a, file=sys.stderr, flush=True)


class Window:
    """What the machine did while one method ran: its workers' threads,
    every other task, and each CPU."""

    def __init__(self, pids, skip_pids):
        self.pids, self.skip = list(pids), set(skip_pids) | {os.getpid()}
        self.t0 = time.monotonic()
        self.cpu0 = cpu_ticks()
        self.tasks0 = {p: task_counters(p) for p in self.pids}
        self.all0 = all_tasks_run_ns()
        self.wall0 = time.perf_counter()

    def close(self):
        wall = time.perf_counter() - self.wall0
        all1 = all_tasks_run_ns()
        tasks1 = {p: task_counters(p) for p in self.pids}
        cpu1 = cpu_ticks()
        workers = {}
        for p in self.pids:
            threads = {}
            for tid, b in tasks1[p].items():
                a = self.tasks0[p].get(tid)
                if a is None:
                    continue
                threads[tid] = {
                    "comm": b[0], "cpu_ticks": b[1] - a[1],
                    "run_ms": (b[2] - a[2]) / 1e6,
                    "wait_ms": (b[3] - a[3]) / 1e6, "slices": b[4] - a[4],
                    "minflt": b[5] - a[5], "vol": b[6] - a[6],
                    "invol": b[7] - a[7], "cpu": b[8]}
            workers[p] = threads
        # every other task: the CPU time it took during the window; this
        # run's own (a gild front end, idle servers) apart
        others, ours = {}, 0.0
        mine = descendants(all1, os.getpid())
        for k, (comm, run, _) in all1.items():
            if k[0] in self.skip or k[0] in self.pids:
                continue
            a = self.all0.get(k)
            d = run - (a[1] if a else 0)
            if d <= 0:
                continue
            if k[0] in mine:
                ours += d / 1e6
                continue
            name = comm.split("/")[0] if comm.startswith("kworker") \
                else comm
            others[name] = others.get(name, 0) + d / 1e6
        top = sorted(others.items(), key=lambda x: -x[1])[:5]
        cpus = [[b - a for a, b in zip(r0, r1)]
                for r0, r1 in zip(self.cpu0, cpu1)]
        return {"wall_s": wall, "workers": workers,
                "others_ms": round(sum(others.values()), 3),
                "ours_ms": round(ours, 3),
                "others_top": [[n, round(v, 3)] for n, v in top],
                "kworker_ms": round(sum(v for n, v in others.items()
                                        if n.startswith(("kworker",
                                                         "ksoftirqd"))), 3),
                "steal_ticks": [c[4] for c in cpus],
                "cpu_ticks": cpus}


# ---- the methods ------------------------------------------------------------

class Procs:
    """N plain interpreters (the control: no pool machinery), each running
    its share of the calls."""

    def __init__(self, n):
        self.ps = [subprocess.Popen([sys.executable, "-c", CHILD], text=True,
                                    stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE)
                   for _ in range(n)]
        for p in self.ps:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a control process did not start")
        self.pids = [p.pid for p in self.ps]

    def run(self, fn, arg, calls):
        n = len(self.ps)
        for i, p in enumerate(self.ps):
            p.stdin.write("%s %d %d\n" % (fn, arg, calls // n +
                                         (i < calls % n)))
            p.stdin.flush()
        out = []
        for p in self.ps:
            out += json.loads(p.stdout.readline())
        return out

    def close(self):
        for p in self.ps:
            p.stdin.close()
        for p in self.ps:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def gild_pids(c):
    return [w["pid"] for w in c.status()["workers"]]


class Block:
    """One block's servers, pools and processes, started in an order that
    forks nothing from a process with the gild client's threads."""

    def __init__(self, a, methods):
        self.a, self.closers = a, []
        self.pids = {}
        self.run = {}
        fn, arg, k = a.fn, a.arg, a.calls
        job = functools.partial(cpu.stamped, fn)
        try:
            self.run["seq"] = lambda: [cpu.stamped(fn, arg) for _ in range(k)]
            self.pids["seq"] = []
            if "pool-map" in methods:
                pool = multiprocessing.Pool(a.workers)
                self.closers.append(lambda: (pool.terminate(), pool.join()))
                pool.map(job, [arg] * 2 * a.workers)
                self.pids["pool-map"] = [p.pid for p in pool._pool]
                self.run["pool-map"] = lambda: pool.map(job, [arg] * k)
            if "ppe-map" in methods:
                ex = concurrent.futures.ProcessPoolExecutor(a.workers)
                self.closers.append(lambda: ex.shutdown(wait=True))
                list(ex.map(job, [arg] * 2 * a.workers))
                self.pids["ppe-map"] = list(ex._processes)
                self.run["ppe-map"] = lambda: list(ex.map(job, [arg] * k))
            if "procs" in methods:
                pr = Procs(a.workers)
                self.closers.append(pr.close)
                self.pids["procs"] = pr.pids
                self.run["procs"] = lambda: pr.run(fn, arg, k)
            extra = tuple(shlex.split(a.gild_args))
            if {"gild-map", "gild-submit"} & set(methods):
                self.gild("gild", a.server_build, a.workers, extra)
            if {"b-map", "b-submit"} & set(methods):
                self.gild("b", a.build_b or a.server_build, a.workers,
                          tuple(shlex.split(a.b_args)))
            if "gild-ft" in methods:
                self.gild("gild-ft", a.server_build, 1, (
                    "--runtime", "free-threaded", "--threads",
                    str(a.workers)) + extra, submit=False)
            self.run["seq"]()
        except BaseException:
            self.close()
            raise

    def gild(self, name, build, workers, args, submit=True):
        """A gild server of build serving cpu.py with workers and args, as
        the methods
        NAME-map and NAME-submit (NAME alone when not submit)."""
        import gild
        fn, arg, k = self.a.fn, self.a.arg, self.a.calls
        saved = gildproc.B
        gildproc.B = os.path.abspath(build) if build else saved
        try:
            g = Gild(app=os.path.join(APPS, "cpu.py"), workers=workers,
                     args=("--log-level", "warn") + args)
        finally:
            gildproc.B = saved
        self.closers.append(g.stop)
        c = gild.connect(g.url, timeout=120)
        self.closers.append(c.close)
        m = name + "-map" if submit else name
        self.pids[m] = gild_pids(c)
        self.run[m] = lambda: list(c.map("stamped", [fn] * k, [arg] * k))
        if submit:
            self.pids[name + "-submit"] = self.pids[m]
            self.run[name + "-submit"] = lambda: [
                f.result() for f in [c.submit("stamped", fn, arg)
                                     for _ in range(k)]]
        list(c.map("stamped", [fn] * 2 * self.a.workers,
                   [arg] * 2 * self.a.workers))

    def close(self):
        for f in reversed(self.closers):
            try:
                f()
            except Exception as e:  # keep closing the rest
                log("closing: %r" % e)
        self.closers = []


# ---- summaries --------------------------------------------------------------

def span(values, nd=3):
    if not values:
        return None
    return {"median": round(statistics.median(values), nd),
            "min": round(min(values), nd), "max": round(max(values), nd)}


def per_worker(reps, method):
    """Per process (or thread, for one free-threaded process) over all reps
    of a method: its calls' median thread CPU ms and wall ms, the CPUs its
    calls ran on, and its threads' runnable-wait and wake-ups per rep."""
    by = {}
    for r in reps:
        m = r["methods"].get(method)
        if not m:
            continue
        key_pid = len({s[0] for s in m["stamps"]}) > 1
        for s in m["stamps"]:
            k = s[0] if key_pid else s[1]
            w = by.setdefault(k, {"cpu_ms": [], "wall_ms": [], "cpus": {},
                                  "moved": 0, "minflt": 0, "invol": 0,
                                  "calls": 0})
            w["calls"] += 1
            w["cpu_ms"].append(s[6] * 1e3)
            w["wall_ms"].append((s[5] - s[4]) * 1e3)
            w["cpus"][s[2]] = w["cpus"].get(s[2], 0) + 1
            w["moved"] += s[2] != s[3]
            w["minflt"] += s[7]
            w["invol"] += s[9]
    out = {}
    for k, w in sorted(by.items()):
        out[str(k)] = {"calls": w["calls"],
                       "call_cpu_ms": span(w["cpu_ms"], 2),
                       "call_wall_ms": span(w["wall_ms"], 2),
                       "start_cpus": {str(c): n for c, n in
                                      sorted(w["cpus"].items())},
                       "moved_cpu": w["moved"], "minflt": w["minflt"],
                       "involuntary_switches": w["invol"]}
    return out


def imbalance(m):
    """One rep of one method: the slowest worker's median call CPU time over
    the fastest's, and the same for wall time (1.0: even)."""
    by = {}
    multi = len({s[0] for s in m["stamps"]}) > 1
    for s in m["stamps"]:
        k = s[0] if multi else s[1]
        by.setdefault(k, []).append(s)
    if len(by) < 2:
        return None, None, len(by)
    cpu_ = [statistics.median(x[6] for x in v) for v in by.values()]
    wall = [statistics.median(x[5] - x[4] for x in v) for v in by.values()]
    return max(cpu_) / min(cpu_), max(wall) / min(wall), len(by)


def block_imbalance(reps, method):
    """Per block (one server lifetime): the slowest worker's median call CPU
    time over the fastest's, over all the block's reps."""
    out = []
    for b in sorted({r["block"] for r in reps}):
        by = {}
        for r in reps:
            m = r["methods"].get(method)
            if r["block"] != b or not m:
                continue
            multi = len({s[0] for s in m["stamps"]}) > 1
            for s in m["stamps"]:
                by.setdefault(s[0] if multi else s[1], []).append(s[6])
        med = [statistics.median(v) for v in by.values()]
        if len(med) > 1:
            out.append(round(max(med) / min(med), 3))
    return out


def summarize(reps, methods, block):
    res = {}
    for meth in methods:
        sp = [r["methods"]["seq"]["wall_s"] / r["methods"][meth]["wall_s"]
              for r in reps if meth in r["methods"]]
        row = {"speedup": span(sp)}
        if meth != "seq":
            imb = [imbalance(r["methods"][meth]) for r in reps]
            row["cpu_imbalance"] = span([i[0] for i in imb if i[0]])
            row["wall_imbalance"] = span([i[1] for i in imb if i[1]])
            row["workers_used"] = span([i[2] for i in imb], 0)
            row["cpu_imbalance_blocks"] = block_imbalance(reps, meth)
            # what stole time from this method's workers: runnable-wait,
            # other tasks' CPU, steal
            row["worker_wait_ms"] = span([
                sum(t["wait_ms"] for th in r["methods"][meth]["workers"]
                    .values() for t in th.values()) for r in reps])
            row["others_ms"] = span([r["methods"][meth]["others_ms"]
                                     for r in reps])
            row["kworker_ms"] = span([r["methods"][meth]["kworker_ms"]
                                      for r in reps])
            row["steal_ms"] = span([sum(r["methods"][meth]["steal_ticks"]) *
                                    1e3 / TICK for r in reps])
            row["per_worker"] = per_worker(reps, meth)
        if meth != "seq" and "pool-map" in methods and meth != "pool-map":
            rel = [r["methods"]["seq"]["wall_s"] / r["methods"][meth]["wall_s"]
                   / (r["methods"]["seq"]["wall_s"] /
                      r["methods"]["pool-map"]["wall_s"]) for r in reps]
            row["vs_pool"] = span(rel)
            row["vs_pool_quiet"] = span([v for v, r in zip(rel, reps)
                                         if r.get("quiet")])
            blocks = [statistics.median(rel[i:i + block])
                      for i in range(0, len(rel), block)
                      if len(rel[i:i + block]) == block]
            row["vs_pool_blocks"] = [round(b, 3) for b in blocks]
        res[meth] = row
    return res


def wait_quiet(limit_s):
    """Waits (at most limit_s) until the machine's other tasks took under 5 %
    of one CPU over 0.3 s; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        a = all_tasks_run_ns()
        time.sleep(0.3)
        b = all_tasks_run_ns()
        busy = sum(run - a.get(k, ("", 0))[1] for k, (_, run, _) in
                   b.items() if k[0] != os.getpid())
        if busy < 0.05 * 0.3e9:
            break
    return time.monotonic() - t0


def quiet_rep(rep):
    """Whether no other task took over 5 % of one CPU in any of the rep's
    windows."""
    return all(m["others_ms"] < 0.05 * m["wall_s"] * 1e3
               for m in rep["methods"].values())


def pin_workers(pids):
    """Pins every thread of the i-th of pids to the i-th CPU (cycling)."""
    cpus = sorted(os.sched_getaffinity(0))
    for i, pid in enumerate(pids):
        for t in os.listdir("/proc/%d/task" % pid):
            os.sched_setaffinity(int(t), {cpus[i % len(cpus)]})


def anon_huge_kib(pid):
    """The transparent huge pages of pid's anonymous memory (KiB)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_blocks(a, methods):
    huge = []  # per block: each way's workers' AnonHugePages
    reps = []
    load = []
    t0 = time.monotonic()
    nblocks = (a.reps + a.block - 1) // a.block
    for b in range(nblocks):
        blk = Block(a, methods)
        try:
            pinned = set(a.pin.split(",")) if a.pin else set()
            for m, pids in blk.pids.items():
                # gild-ft is one process: its threads float
                if m != "gild-ft" and (a.slow_cpu or m in pinned):
                    pin_workers(pids)
            for i in range(min(a.block, a.reps - b * a.block)):
                n = len(reps)
                order = methods[n % len(methods):] + methods[:n %
                                                             len(methods)]
                waited = wait_quiet(a.quiet) if a.quiet else 0.0
                rep = {"block": b, "order": order, "load": loadavg(),
                       "waited_s": round(waited, 2), "methods": {}}
                load.append(rep["load"])
                for meth in order:
                    w = Window(blk.pids[meth], ())
                    stamps = blk.run[meth]()
                    m = w.close()
                    m["stamps"] = stamps
                    rep["methods"][meth] = m
                rep["quiet"] = quiet_rep(rep)
                reps.append(rep)
                log("block %d rep %d: %s" % (b, n, ", ".join(
                    "%s %.2f" % (m, rep["methods"]["seq"]["wall_s"] /
                                 rep["methods"][m]["wall_s"])
                    for m in methods)))
            huge.append({m: [anon_huge_kib(p) for p in pids]
                         for m, pids in blk.pids.items() if pids})
        finally:
            blk.close()
    return reps, load, t0, huge


ALL = ("seq", "gild-map", "gild-submit", "gild-ft", "b-map", "b-submit",
       "pool-map", "ppe-map", "procs")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--calls", type=int, default=8)
    ap.add_argument("--fn", default="fib", choices=sorted(cpu.FUNCTIONS))
    ap.add_argument("--arg", type=int, default=25)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--block", type=int, default=5,
                    help="reps per server lifetime")
    ap.add_argument("--no-ft", action="store_true",
                    help="leave out the free-threaded runtime (measured "
                    "when the build has gild-worker-ft)")
    ap.add_argument("--gild-args", default="",
                    help="extra `gild serve` arguments")
    ap.add_argument("--server-build", default="",
                    help="the build folder whose gild and workers serve "
                    "(default $B, build): to compare builds")
    ap.add_argument("--build-b", default="",
                    help="a second build folder, measured as methods b-map "
                    "and b-submit beside gild-map and gild-submit")
    ap.add_argument("--b-args", default=None,
                    help="`gild serve` arguments of b-map and b-submit "
                    "(default: --gild-args); with it and no --build-b, "
                    "b-* is this build with other arguments")
    ap.add_argument("--quiet", type=float, default=0,
                    help="before each rep, wait up to this many seconds "
                    "for the machine's other tasks to go quiet")
    ap.add_argument("--pin", default="",
                    help="comma-separated methods whose worker i is pinned "
                    "to CPU i")
    ap.add_argument("--slow-cpu", action="store_true",
                    help="pin each method's worker i to CPU i and keep a "
                    "spinning process (bench/thrash.py --mode spin) on the "
                    "last CPU: one worker at about half speed, as on a VM "
                    "whose vCPU is slowed")
    ap.add_argument("--only", default="",
                    help="comma-separated methods (seq is always run)")
    ap.add_argument("--stamps", default="", help="write every rep here")
    a = ap.parse_args()
    has_ft = not a.no_ft and os.path.exists(os.path.join(
        os.path.abspath(a.server_build) if a.server_build else gildproc.B,
        "gild-worker-ft"))
    methods = [m for m in ALL if m == "seq" or (
        (not a.only or m in a.only.split(",")) and (m != "gild-ft" or has_ft)
        and (not m.startswith("b-") or a.build_b or a.b_args is not None))]
    if a.b_args is None:
        a.b_args = a.gild_args
    multiprocessing.set_start_method("fork")
    steal0 = [c[4] for c in cpu_ticks()]
    spinner = None
    if a.slow_cpu:
        last = sorted(os.sched_getaffinity(0))[-1]
        spinner = subprocess.Popen([sys.executable, os.path.join(
            ROOT, "bench", "thrash.py"), "--mode", "spin", "--cpu",
            str(last)])
    try:
        reps, load, t0, huge = run_blocks(a, methods)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    if a.stamps:
        with open(a.stamps, "w") as f:
            json.dump(reps, f)
    seq_cpu = [s[6] * 1e3 for r in reps for s in r["methods"]["seq"]
               ["stamps"]]
    steal1 = [c[4] for c in cpu_ticks()]
    print(json.dumps({
        "workers": a.workers, "calls": a.calls, "fn": "%s(%d)" % (a.fn,
                                                                  a.arg),
        "reps": len(reps), "block": a.block,
        "quiet_reps": sum(1 for r in reps if r.get("quiet")),
        "gild_args": a.gild_args, "seconds": round(time.monotonic() - t0, 1),
        "call_ms_sequential": span(seq_cpu, 2),
        "loadavg": span(load, 2),
        "steal_ticks": [b - x for x, b in zip(steal0, steal1)],
        "methods": summarize(reps, methods, a.block),
        "anon_huge_kib": huge,
    }))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one JSON object on stdout, whatever happened
        import traceback
        traceback.print_exc()
        print(json.dumps({"error": repr(e)}))
        sys.exit(1)
