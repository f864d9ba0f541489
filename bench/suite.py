"""The benchmark suite behind `make bench`: gild side by side with its peers,
measured in the same run on the same machine.

    /usr/bin/python3 bench/suite.py [--quick] [--out DIR] [--docs FILE]

It runs the C tools (build/bench/loadgen, floor, scaling, recovery) and
bench/peers.py, each printing one JSON object, against gild servers it
starts on 127.0.0.1 ports chosen at run time (each stopped by its pid), and
writes DIR/<date>.json, DIR/<date>.md (the tables) and DIR/<date>-*.png
(gnuplot). With --docs it also rewrites the part of FILE (docs/benchmarks.md)
between the "bench:begin" and "bench:end" markers with the latest tables and
plots. Environment: B (the build folder, default build). See bench/README.md.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
from gildproc import Gild  # noqa: E402  (starts and stops gild by pid)
sys.path.insert(0, os.path.join(ROOT, "bench"))
from procstat import cpu_ticks, loadavg, vm_facts  # noqa: E402

B = os.path.join(ROOT, os.environ.get("B", "build"))
APP = os.path.join(ROOT, "bench", "apps", "bench_app.py")
PYTHON = "/usr/bin/python3"


def log(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


# ---- running things --------------------------------------------------------

# Runs that failed so far: server() shows its log when one fails under it.
failures = 0


def run_json(cmd, timeout=600, env=None):
    """Runs cmd, which prints one JSON object; returns it (None if the tool
    failed, with its stderr logged; {"skipped": ...} passes through)."""
    global failures
    log("$", " ".join(cmd))
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        log("timed out after %ss" % timeout)
        failures += 1
        return None
    try:
        out = json.loads(p.stdout)
    except ValueError:
        out = None
    if p.returncode not in (0, 2) or out is None:
        log("failed (exit %d): %s" % (p.returncode, p.stderr.strip()[-600:]))
        failures += 1
        return None
    return out


@contextlib.contextmanager
def server(workers, args=(), transport="tcp", app=APP):
    """gild serving app on 127.0.0.1 (a free port) or an ipc path in a temp
    dir, stopped by pid on leaving (the tests' gildproc.Gild)."""
    with tempfile.TemporaryDirectory(prefix="gild-bench-") as d:
        listen = ("tcp://127.0.0.1:0" if transport == "tcp"
                  else "ipc://%s/gild.sock" % d)
        with Gild(app=app, workers=workers, listen=listen,
                  args=("--log-level", "warn", *args)) as g:
            before = failures
            try:
                yield g
            finally:
                if failures != before:
                    with open(g.log.name, errors="replace") as f:
                        log("the server's log:\n" + f.read()[-3000:])


def worker_pids(url):
    """The pids of gild's workers, from status."""
    p = subprocess.run([os.path.join(B, "gildctl"), "status", url],
                       stdout=subprocess.PIPE, text=True, timeout=30)
    return [w["pid"] for w in json.loads(p.stdout)["workers"]]


def loadgen(url, *args, timeout=600):
    return run_json([os.path.join(B, "bench", "loadgen"), "--url", url,
                     *map(str, args)], timeout=timeout)


def floor(*args):
    return run_json([os.path.join(B, "bench", "floor"), *map(str, args)])


def cputime(url, python, fn, arg, reps):
    return run_json([PYTHON, os.path.join(ROOT, "bench", "cputime.py"),
                     "--url", url, "--python", python, "--fn", fn, "--arg",
                     str(arg), "--reps", str(reps)])


# The pure-Python functions bench/cputime.py times in a worker and in an
# interpreter: one made of calls, one a loop of integer arithmetic.
CPU_FUNCTIONS = (("fib", 22), ("burn", 100000))


def python_in_workers(quick):
    """CPU time of the same pure-Python functions in each worker and in a
    plain interpreter, interleaved rep by rep: the cost of how the worker
    embeds its Python (docs/runtimes.md). Returns a list of rows."""
    reps = 21 if quick else 41
    app = os.path.join(ROOT, "bench", "apps", "cpu.py")
    rows = []

    def measure(url, runtime, python):
        for fn, arg in CPU_FUNCTIONS:
            row = {"fn": "%s(%d)" % (fn, arg), "runtime": runtime,
                   "against": python}
            row.update(cputime(url, python, fn, arg, reps) or {})
            rows.append(row)

    with server(1, app=app) as s:
        measure(s.url, "process", PYTHON)
    ft = os.environ.get("FT_PYTHON", "")
    if ft and os.path.exists(os.path.join(B, "gild-worker-ft")):
        with server(1, app=app, args=("--runtime", "free-threaded",
                                      "--threads", "1")) as s:
            measure(s.url, "free-threaded", ft)
            measure(s.url, "free-threaded", PYTHON)
    return rows


def peers(workload, *args, timeout=600):
    env = dict(os.environ, B=os.path.relpath(B, ROOT))
    return run_json([PYTHON, os.path.join(ROOT, "bench", "peers.py"),
                     workload, *map(str, args)], timeout=timeout, env=env)


def kib(path, fields):
    """Sum of the given kB fields of a /proc file (0 if it is gone)."""
    total = 0
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in fields:
                    total += int(v.split()[0])
    except OSError:
        pass
    return total


def rss_kib(pid):
    return kib("/proc/%d/status" % pid, ("VmRSS",))


def uss_kib(pid):
    return kib("/proc/%d/smaps_rollup" % pid,
               ("Private_Clean", "Private_Dirty"))


# ---- the suite ---------------------------------------------------------------

def cpus():
    return len(os.sched_getaffinity(0))


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = kib("/proc/meminfo", ("MemTotal",))
    return {"cpus": cpus(), "model": model, "mem_gib": round(mem / 2**20, 1),
            "kernel": platform.release(), "host": platform.node(),
            "virtual": vm_facts()["hypervisor"]}


def cpu_stat():
    """(steal ticks, all ticks) summed over the CPUs (/proc/stat)."""
    rows = cpu_ticks()
    return sum(r[4] for r in rows), sum(sum(r) for r in rows)


class Phases:
    """The suite's sections one after another, each with the machine's state
    beside its numbers: the load average at its start and end, and the share
    of CPU time the VM's vCPUs lost to steal meanwhile (res["load"]).
    phase("name") ends the current section and starts the next; phase(None)
    ends the last."""

    def __init__(self, res):
        self.res, self.cur = res, None

    def __call__(self, name):
        load, (steal, total) = loadavg(), cpu_stat()
        if self.cur is not None:
            n, load0, steal0, total0 = self.cur
            self.res.setdefault("load", {})[n] = {
                "loadavg": [load0, load],
                "steal_pct": round(100.0 * (steal - steal0) /
                                   max(1, total - total0), 2)}
        self.cur = None if name is None else (name, load, steal, total)
        if name is not None:
            log(name)


def p50(r):
    return r["latency_us"]["p50"] if r and "latency_us" in r else None


def ratio(a, b):
    return a / b if a is not None and b else None


def suite(quick):
    n = cpus()
    secs = 1 if quick else 5
    lat_calls = 2000 if quick else 20000
    res = {"machine": machine(), "quick": quick,
           "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "command": "make bench" + (" QUICK=1" if quick else "")}

    phase = Phases(res)

    # 0. Python inside the workers against plain interpreters.
    phase("python in the workers")
    res["python_in_workers"] = python_in_workers(quick)

    # 8 CPU-bound calls on N workers, every way, interleaved rep by rep;
    # then how fast each vCPU ran, in the same minute.
    phase("8 CPU-bound calls")
    res["speedup"] = run_json(
        [PYTHON, os.path.join(ROOT, "bench", "speedup.py"), "--workers",
         str(n), "--calls", str(4 * n), "--reps", "10" if quick else "30",
         "--block", "5"], env=dict(os.environ, B=os.path.relpath(B, ROOT)))
    res["vcpus"] = run_json(
        [PYTHON, os.path.join(ROOT, "bench", "vcpus.py"), "--seconds",
         "4" if quick else "10"])

    # 1. Floor: the transport and the hardware alone.
    phase("floor")
    res["floor"] = {
        "nng_tcp": floor("--nng", "tcp://127.0.0.1:0", "--calls", lat_calls),
        "nng_tcp_64": floor("--nng", "tcp://127.0.0.1:0", "--calls",
                            lat_calls * 5, "--closed", 64),
        "socketpair": floor("--socketpair", "--calls", lat_calls),
    }

    # 2, 3, 8. Latency and throughput of no-op calls; front end memory.
    phase("latency and throughput, %d workers" % n)
    with server(n) as s:
        fe_idle = rss_kib(s.proc.pid)
        lat = {
            "gild_c": loadgen(s.url, "--fn", "noop", "--closed", 1,
                              "--calls", lat_calls, "--seconds", secs),
            "gild_python": peers("gild-latency", "--url", s.url, "--calls",
                                 lat_calls, "--seconds", secs),
        }
        tput = {"gild_c": {}}
        fe_load = 0
        for k in ([1, 16, 64, 256] if quick else
                  [1, 4, 16, 64, 256, 1024]):
            r = loadgen(s.url, "--fn", "noop", "--closed", k, "--calls",
                        200000, "--seconds", secs)
            fe_load = max(fe_load, rss_kib(s.proc.pid))
            tput["gild_c"][str(k)] = r
        # The same with calls sent in batches (loadgen --batch: the calls
        # whose replies came together go out together, B at most).
        tput["gild_c_batch"] = {}
        for b in ([64] if quick else [16, 64]):
            tput["gild_c_batch"][str(b)] = loadgen(
                s.url, "--fn", "noop", "--closed", 256, "--batch", b,
                "--calls", 400000, "--seconds", secs)
        tput["gild_python"] = peers("gild-throughput", "--url", s.url,
                                    "--inflight", 256, "--calls", 100000,
                                    "--seconds", secs)
        workers = worker_pids(s.url)
        uss = [uss_kib(p) for p in workers]
    res["memory"] = {"frontend_rss_idle_kib": fe_idle,
                     "frontend_rss_load_kib": fe_load,
                     "worker_uss_kib": uss}
    with server(n, transport="ipc") as s:
        lat["gild_c_ipc"] = loadgen(s.url, "--fn", "noop", "--closed", 1,
                                    "--calls", lat_calls, "--seconds", secs)
    res["floor"]["nng_ipc"] = floor("--nng", "ipc:///tmp/gild-bench-floor-%d"
                                    % os.getpid(), "--calls", lat_calls)
    phase("peers: multiprocessing")
    lat["pool_apply"] = peers("pool-latency", "--workers", n, "--calls",
                              lat_calls, "--seconds", secs)
    lat["ppe_submit"] = peers("ppe-latency", "--workers", n, "--calls",
                              lat_calls, "--seconds", secs)
    tput["pool_imap_unordered"] = peers("pool-throughput", "--workers", n,
                                        "--calls", 100000, "--seconds", secs)
    tput["ppe"] = peers("ppe-throughput", "--workers", n, "--calls", 100000,
                        "--seconds", secs)
    res["latency"], res["throughput"] = lat, tput

    # 4. Scaling (its own tool: both runtimes, 1..N).
    phase("scaling")
    with tempfile.TemporaryDirectory() as d:
        ft = ""
        if os.path.exists(os.path.join(B, "gild-worker-ft")):
            ft = os.environ.get("FT_PYTHON", "")
        subprocess.run([os.path.join(B, "bench", "scaling"), "--python",
                        PYTHON, "--python-ft", ft, "--seconds",
                        "0.5" if quick else "2", "--out", d],
                       stdout=sys.stderr, timeout=900,
                       env=dict(os.environ, B=os.path.relpath(B, ROOT)),
                       cwd=ROOT)
        files = [f for f in os.listdir(d) if f.endswith(".json")]
        res["scaling"] = (json.load(open(os.path.join(d, files[0])))
                          if files else None)

    # 5, 6. Streaming and payloads.
    phase("streaming and payloads")
    with server(1, args=("--max-message", "256M")) as s:
        res["streaming"] = loadgen(s.url, "--fn", "chunks", "--arg-int",
                                   100000, "--stream", "--seconds", secs,
                                   "--calls", 10)
        pay = {}
        for size in (1024, 1 << 20, 64 << 20):
            calls = {1024: 20000, 1 << 20: 500, 64 << 20: 10}[size]
            if quick:
                calls = max(3, calls // 10)
            pay[str(size)] = {
                "gild": loadgen(s.url, "--fn", "echo", "--arg-bytes", size,
                                "--closed", 1, "--calls", calls, "--seconds",
                                secs * 2, "--warmup", 2),
                "memcpy": floor("--memcpy", "--bytes", size, "--seconds",
                                0.3 if quick else 1),
            }
        res["payloads"] = pay
    # Issue 18, target 6: bytes echo against the bare nng echo of the same
    # size, interleaved rep by rep (bench/payload.py, its own server).
    res["payload_vs_echo"] = run_json(
        [PYTHON, os.path.join(ROOT, "bench", "payload.py"), "--reps",
         "3" if quick else "7", "--seconds", "1" if quick else "2",
         "--sizes", "1M,64M", os.path.relpath(B, ROOT)], timeout=900)

    # 7. Recovery: SIGKILL a worker of an app that imports numpy.
    phase("recovery")
    rec = {}
    app_np = os.path.join(ROOT, "examples", "app.py")
    for spawn in ("fork", "exec"):
        with server(2, args=("--spawn", spawn), app=app_np) as s:
            p = subprocess.run(
                [os.path.join(B, "bench", "recovery"), s.url,
                 "5" if quick else "20"],
                stdout=subprocess.PIPE, text=True, timeout=300)
            m = re.search(r"median ([0-9.]+) ms, p90 ([0-9.]+) ms, "
                          r"max ([0-9.]+) ms", p.stdout)
            rec[spawn] = ({"median_ms": float(m.group(1)),
                           "p90_ms": float(m.group(2)),
                           "max_ms": float(m.group(3))} if m else None)
    res["recovery"] = rec

    # 9. The peers make bench installs: Dask, Celery (Redis), uWSGI.
    phase("peers: Dask, Celery, uWSGI")
    res["optional_peers"] = {w: peers(w, "--workers", n, "--calls", 2000,
                                      "--seconds", secs)
                             for w in ("dask-latency", "celery-latency",
                                       "uwsgi-latency")}
    phase(None)
    res["targets"] = targets(res)
    return res


def targets(res):
    """The issues' performance targets, as ratios from this run: each row
    names the issue and target number it comes from (issue 16 restated
    issue 7's latency targets against the floors)."""
    lat, tput, fl = res["latency"], res["throughput"], res["floor"]
    t = []

    def add(issue, name, value, goal, better, note=""):
        met = None
        if value is not None:
            met = value <= goal if better == "<=" else value >= goal
        t.append({"issue": issue, "target": name, "value": value,
                  "goal": goal, "better": better, "met": met, "note": note})

    for r in res.get("python_in_workers", []):
        v = (r.get("ratio") or {}).get("median")
        if r["runtime"] == "process":
            add("16.0", "CPU time of %s in gild-worker / in %s" % (
                r["fn"], r["against"]), v, 1.08, "<=")
        elif r["against"] == PYTHON and r["fn"].startswith("burn"):
            add("16.5", "free-threaded single-thread cost: CPU time of %s "
                "in gild-worker-ft / in %s" % (r["fn"], r["against"]), v,
                1.5, "<=")
    sp = res.get("speedup") or {}
    for m, how in (("gild-map", "map"), ("gild-submit", "submit")):
        row = (sp.get("methods") or {}).get(m) or {}
        vs, blocks = row.get("vs_pool") or {}, row.get("vs_pool_blocks")
        add("16.1", "%d CPU-bound calls on %s workers: gild's speedup by %s "
            "/ Pool.map's (median of %s interleaved reps)" % (
                sp.get("calls", 0), sp.get("workers"), how, sp.get("reps")),
            vs.get("median"), 0.95, ">=")
        add("16.1", "the same, lowest median of %s reps (one server "
            "lifetime each)" % sp.get("block"),
            min(blocks) if blocks else None, 0.9, ">=",
            "%d blocks" % len(blocks or []))
    ft = ((sp.get("methods") or {}).get("gild-ft") or {}).get("speedup")
    if sp and "gild-ft" in (sp.get("methods") or {}):
        add("16.5", "the %d calls on --runtime free-threaded --threads %s / "
            "one 3.11 thread (speedup, median)" % (sp.get("calls", 0),
                                                   sp.get("workers")),
            (ft or {}).get("median"), 1.5, ">=")
    add("16.2", "no-op p50 from C / bare nng echo p50 (tcp)",
        ratio(p50(lat.get("gild_c")), p50(fl.get("nng_tcp"))), 1.5, "<=")
    add("16.3", "no-op p50 from the Python client / from C (tcp)",
        ratio(p50(lat.get("gild_python")), p50(lat.get("gild_c"))), 1.05,
        "<=")
    one = (tput["gild_c"].get("64") or {}).get("calls_per_s")
    echo = (fl.get("nng_tcp_64") or {}).get("calls_per_s")
    add("16.4", "one call per message, 64 in flight: C client calls/s / "
        "bare nng echo's at 64", ratio(one, echo), 0.5, ">=")
    pool = (tput.get("pool_imap_unordered") or {}).get("calls_per_s")
    best_b = max((r["calls_per_s"] for r in
                  (tput.get("gild_c_batch") or {}).values() if r),
                 default=None)
    add("16.4", "throughput (C client, batches, 256 in flight) / "
        "Pool.imap_unordered", ratio(best_b, pool), 2.0, ">=")
    py = (tput.get("gild_python") or {}).get("calls_per_s")
    add("7", "throughput (Python client) / Pool.imap_unordered",
        ratio(py, pool), 2.0, ">=")
    sc = res.get("scaling") or {}
    rows = [r for r in sc.get("rows", []) if r["runtime"] == "process"]
    if rows:
        top = max(rows, key=lambda r: r["n"])
        add("7", "scaling efficiency at N = %d (process)" % top["n"],
            top["efficiency"], 0.95, ">=")
    rows = [r for r in sc.get("rows", []) if r["runtime"] == "free-threaded"]
    if rows:
        top = max(rows, key=lambda r: r["n"])
        add("7", "scaling efficiency at N = %d (free-threaded)" % top["n"],
            top["efficiency"], 0.95, ">=")
    big = (res.get("payloads") or {}).get(str(64 << 20)) or {}
    g, m = big.get("gild"), big.get("memcpy")
    add("7", "64 MiB echo / memcpy bandwidth",
        ratio(g and g.get("arg_bytes", 0) * g["calls_per_s"] / 1e9,
              m and m.get("gb_per_s")), 0.25, ">=")
    pe = res.get("payload_vs_echo") or {}
    for size, name in ((1 << 20, "1 MiB"), (64 << 20, "64 MiB")):
        by = (pe.get("by_size") or {}).get(str(size)) or {}
        mine = [v for k, v in by.items() if k != "echo"]
        r = (mine[0].get("ratio_spread") or {}) if mine else {}
        add("18.6", "%s bytes echo over tcp: gild's round trips/s / the bare "
            "nng echo's (median of %s interleaved reps)" % (
                name, r.get("n")), r.get("median"), 0.6, ">=",
            "range %s–%s" % (fmt(r.get("min"), 2), fmt(r.get("max"), 2))
            if r else "")
    rec = res.get("recovery") or {}
    add("7", "recovery with preload (ms, median)",
        (rec.get("fork") or {}).get("median_ms"), 20, "<=",
        "cold start (--spawn exec): %s ms"
        % (rec.get("exec") or {}).get("median_ms"))
    return t


# ---- output ------------------------------------------------------------------

def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return ("%." + str(nd) + "f") % v
    return str(v)


SPEEDUP_NAMES = (
    ("gild-map", "gild, `Client.map`"),
    ("gild-submit", "gild, `Client.submit` each"),
    ("gild-ft", "gild, `--runtime free-threaded --threads N`, `map`"),
    ("pool-map", "`multiprocessing.Pool(N).map`"),
    ("ppe-map", "`ProcessPoolExecutor(N).map`"),
    ("procs", "N plain processes, calls / N each (control)"))


def speedup_md(res):
    """The 8-call section: every way's speedup, against Pool.map's, per
    server lifetime, and what the machine did meanwhile."""
    sp, out = res.get("speedup"), []
    if not sp or "methods" not in sp:
        return out
    ld = (res.get("load") or {}).get("8 CPU-bound calls") or {}
    out.append("### %d CPU-bound calls on %d workers: speedup over one "
               "process" % (sp["calls"], sp["workers"]))
    out.append("")
    out.append(
        "`%s`, %s ms of CPU per call in the suite's own process (median). "
        "Each rep runs the %d calls every way below, in turn (the order "
        "rotates), and one after another in the suite's process: speedup = "
        "that sequential time / the way's, in the same rep. %d reps in "
        "blocks of %d, each block with fresh servers, pools and processes "
        "(`bench/speedup.py`). Load average %s at its start, %s at its "
        "end; steal %s %% of CPU time meanwhile." % (
            sp["fn"], fmt((sp.get("call_ms_sequential") or {}).get(
                "median"), 2), sp["calls"], sp["reps"], sp["block"],
            *[fmt(x, 2) for x in ld.get("loadavg", [None, None])],
            fmt(ld.get("steal_pct"), 2)))
    out.append("")
    out.append("| how | speedup | / Pool.map's | per block | quiet reps | "
               "CPU ms per call | slowest / fastest worker | others' CPU "
               "ms |")
    out.append("|---|---:|---:|---|---:|---:|---:|---:|")

    def span(d, nd=2):
        if not d:
            return "–"
        return "%s (%s–%s)" % (fmt(d["median"], nd), fmt(d["min"], nd),
                               fmt(d["max"], nd))
    for key, name in SPEEDUP_NAMES:
        r = sp["methods"].get(key)
        if not r:
            continue
        calls = [w["call_cpu_ms"]["median"]
                 for w in (r.get("per_worker") or {}).values()]
        blocks = r.get("vs_pool_blocks")
        quiet = r.get("vs_pool_quiet")
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, span(r.get("speedup")),
            "1" if key == "pool-map" else span(r.get("vs_pool")),
            ", ".join(fmt(b, 2) for b in blocks) if blocks else "",
            "" if key == "pool-map" else (
                "%s (%d)" % (fmt(quiet["median"], 2), sp.get("quiet_reps"))
                if quiet else "none"),
            fmt(sorted(calls)[len(calls) // 2], 2) if calls else "–",
            span(r.get("cpu_imbalance")),
            fmt((r.get("others_ms") or {}).get("median"), 1)))
    out.append("")
    out.append("*per block*: the median of each block's reps against "
               "Pool.map (one server lifetime each). *quiet reps*: the "
               "median against Pool.map over the reps in which no other "
               "task took over 5 % of a CPU (how many). *slowest / fastest "
               "worker*: the median call CPU time of the slowest worker "
               "over the fastest's, per rep. *others' CPU ms*: CPU time "
               "every other task on the machine took while a way ran "
               "(median per rep).")
    vc = res.get("vcpus")
    if vc and vc.get("speed_spread"):
        out.append("")
        out.append(
            "How fast each vCPU ran, in the same minute (`bench/vcpus.py`: "
            "`%s` on every CPU at once, %s s slices): the slowest slice's "
            "median call took %s× the fastest's; steal ticks per CPU %s." % (
                vc["fn"], vc["slice_s"], fmt(vc["speed_spread"], 2),
                vc["steal_ticks"]))
    out.append("")
    return out


def lat_row(name, r):
    if not r or "latency_us" not in r:
        return "| %s | – | – | – | – | – | %s |" % (
            name, (r or {}).get("skipped", "failed"))
    q = r["latency_us"]
    return "| %s | %s | %s | %s | %s | %s | %s |" % (
        name, fmt(q["p50"]), fmt(q["p90"]), fmt(q["p99"]), fmt(q["p999"]),
        fmt(q["max"]), fmt(r.get("calls_per_s"), 0))


def markdown(res):
    m, out = res["machine"], []
    out.append("Machine: `%s`, %s%d CPUs (%s), %s GiB, Linux %s. Date: %s. "
               "Command: `%s`." % (
                   m.get("host", "?"), "a virtual machine (the CPU reports "
                   "a hypervisor) with " if m.get("virtual") else "",
                   m["cpus"], m["model"], m["mem_gib"], m["kernel"],
                   res["date"], res["command"]))
    out.append("")
    load = res.get("load") or {}
    if load:
        la = [v for x in load.values() for v in x["loadavg"]]
        st = [x["steal_pct"] for x in load.values()]
        out.append("Load average (1 min) %s–%s over the run; steal %s–%s "
                   "%% of CPU time per section (`/proc/loadavg`, "
                   "`/proc/stat`; per section in the JSON)." % (
                       fmt(min(la), 2), fmt(max(la), 2), fmt(min(st), 2),
                       fmt(max(st), 2)))
        out.append("")
    out.append("### Targets (ratios from this run)")
    out.append("")
    out.append("| issue | target | this run | goal | met |")
    out.append("|---|---|---:|---:|---|")
    for t in res["targets"]:
        out.append("| %s | %s | %s | %s %s | %s |" % (
            t["issue"],
            t["target"] + (" (%s)" % t["note"] if t["note"] else ""),
            fmt(t["value"], 2), t["better"], t["goal"],
            {True: "yes", False: "**no**", None: "–"}[t["met"]]))
    out.append("")
    out.extend(speedup_md(res))
    rows = res.get("python_in_workers")
    if rows:
        out.append("### Python inside the workers: CPU time of one call "
                   "(ms)")
        out.append("")
        out.append("Medians and ranges of %s reps, worker and interpreter "
                   "interleaved (`bench/cputime.py`); the ratio is taken "
                   "rep by rep." % rows[0].get("reps", "?"))
        out.append("")
        out.append("| function | worker | in the worker | interpreter | "
                   "in the interpreter | ratio |")
        out.append("|---|---|---:|---:|---:|---:|")
        for r in rows:
            def span(d, nd=2):
                return "%s (%s–%s)" % (fmt(d.get("median"), nd),
                                       fmt(d.get("min"), nd),
                                       fmt(d.get("max"), nd))
            if "ratio" not in r:
                out.append("| %s | %s | failed | | | |" % (
                    r["fn"], r["runtime"]))
                continue
            out.append("| %s | %s (%s) | %s | %s %s | %s | %s |" % (
                r["fn"], {"process": "gild-worker"}.get(
                    r["runtime"], "gild-worker-ft"), r["worker"][0],
                span(r["worker_ms"]), os.path.basename(r["python"]),
                r["interpreter"][0], span(r["interpreter_ms"]),
                span(r["ratio"])))
        out.append("")
    out.append("### Latency of one no-op call, one caller (µs)")
    out.append("")
    out.append("| what | p50 | p90 | p99 | p99.9 | max | calls/s |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    fl, lat = res["floor"], res["latency"]
    for name, r in (("socketpair ping-pong (floor)", fl.get("socketpair")),
                    ("bare nng REQ/REP echo, tcp (floor)", fl.get("nng_tcp")),
                    ("bare nng REQ/REP echo, ipc (floor)", fl.get("nng_ipc")),
                    ("gild from C (libgild), tcp", lat.get("gild_c")),
                    ("gild from C (libgild), ipc", lat.get("gild_c_ipc")),
                    ("gild from Python (gild.connect), tcp",
                     lat.get("gild_python")),
                    ("multiprocessing.Pool(N).apply", lat.get("pool_apply")),
                    ("ProcessPoolExecutor(N).submit().result()",
                     lat.get("ppe_submit"))):
        out.append(lat_row(name, r))
    opt = res.get("optional_peers") or {}
    for name, key in (
            ("Dask: LocalCluster(N) `submit().result()`", "dask-latency"),
            ("Celery, Redis broker and backend: `send_task().get()`",
             "celery-latency"),
            ("uWSGI, N processes: HTTP/1.1 GET (`http.client`)",
             "uwsgi-latency")):
        if key in opt:
            out.append(lat_row(name, opt[key]))
    out.append("")
    out.append("### Throughput of no-op calls (calls/s)")
    out.append("")
    out.append("| what | calls in flight | calls/s | p50 µs | p99 µs |")
    out.append("|---|---:|---:|---:|---:|")
    tput = res["throughput"]
    r = fl.get("nng_tcp_64")
    if r:
        out.append("| bare nng echo (floor) | 64 | %s | %s | %s |" % (
            fmt(r["calls_per_s"], 0), fmt(r["latency_us"]["p50"]),
            fmt(r["latency_us"]["p99"])))
    for k, r in tput["gild_c"].items():
        if r:
            out.append("| gild from C | %s | %s | %s | %s |" % (
                k, fmt(r["calls_per_s"], 0), fmt(r["latency_us"]["p50"]),
                fmt(r["latency_us"]["p99"])))
    for b, r in (tput.get("gild_c_batch") or {}).items():
        if r:
            out.append("| gild from C, batches of up to %s | 256 | %s | %s "
                       "| %s |" % (b, fmt(r["calls_per_s"], 0),
                                   fmt(r["latency_us"]["p50"]),
                                   fmt(r["latency_us"]["p99"])))
    for name, key in (("gild from Python", "gild_python"),
                      ("Pool.imap_unordered(chunksize=1)",
                       "pool_imap_unordered"),
                      ("ProcessPoolExecutor", "ppe")):
        r = tput.get(key)
        if key == "gild_python" and (r or {}).get("mode"):
            name += " (%s%s)" % (r["mode"], ", batches of up to %s" %
                                 r["batch"] if r.get("batch") else "")
        out.append("| %s | %s | %s | – | – |" % (
            name, fmt((r or {}).get("inflight")),
            fmt((r or {}).get("calls_per_s"), 0) if r else "failed"))
    out.append("")
    sc = res.get("scaling")
    if sc:
        out.append("### Scaling: CPU-bound pure Python, %.1f ms calls" %
                   sc["ms_per_call"])
        out.append("")
        out.append("Single-thread cost of the free-threaded build: %s× "
                   "(sequential, free-threaded / GIL)." %
                   fmt(sc["sequential"].get("ft_over_gil"), 2))
        out.append("")
        out.append("| runtime | N | calls/s | speedup | efficiency |")
        out.append("|---|---:|---:|---:|---:|")
        for r in sc["rows"]:
            out.append("| %s | %d | %s | %s | %s |" % (
                r["runtime"], r["n"], fmt(r["calls_per_s"]),
                fmt(r["speedup"], 2), fmt(r["efficiency"], 2)))
        out.append("")
    out.append("### Streaming, payloads, recovery, memory")
    out.append("")
    st = res.get("streaming")
    out.append("- Streaming: %s chunks/s from one generator to one client." %
               fmt((st or {}).get("chunks_per_s"), 0))
    for size, p in res.get("payloads", {}).items():
        g, mc = p.get("gild"), p.get("memcpy")
        gbs = g and g.get("arg_bytes", 0) * g["calls_per_s"] / 1e9
        out.append("- Echo of %s bytes: %s GB/s (p50 %s µs); memcpy of "
                   "the same size: %s GB/s." % (
                       size, fmt(gbs, 3), fmt(p50(g)),
                       fmt((mc or {}).get("gb_per_s"), 2)))
    pe = (res.get("payload_vs_echo") or {}).get("by_size") or {}
    for size, by in pe.items():
        echo = (by.get("echo") or {}).get("spread") or {}
        for k, r in by.items():
            if k == "echo":
                continue
            g, q = r.get("spread") or {}, r.get("ratio_spread") or {}
            out.append("- Echo of %s bytes, one call at a time, interleaved "
                       "with the bare nng echo: %s round trips/s against "
                       "%s/s, %s× (medians of %s reps)." % (
                           size, fmt(g.get("median")),
                           fmt(echo.get("median")), fmt(q.get("median"), 2),
                           q.get("n")))
    rec = res.get("recovery", {})
    out.append("- Recovery after SIGKILL (examples/app.py, imports numpy): "
               "fork from the template %s ms median, cold start "
               "(--spawn exec) %s ms median." % (
                   fmt((rec.get("fork") or {}).get("median_ms")),
                   fmt((rec.get("exec") or {}).get("median_ms"))))
    mem = res["memory"]
    out.append("- Memory: front end RSS %s KiB idle, %s KiB under load; "
               "worker USS %s KiB." % (
                   mem["frontend_rss_idle_kib"], mem["frontend_rss_load_kib"],
                   ", ".join(str(u) for u in mem["worker_uss_kib"])))
    for w, r in res.get("optional_peers", {}).items():
        if r is None or "skipped" in r:
            out.append("- %s: %s" % (w, (r or {}).get("skipped", "failed")))
    return "\n".join(out) + "\n"


def plots(res, prefix):
    """PNGs with gnuplot: latency CDF, throughput vs in-flight, scaling.
    Returns the file names written."""
    if shutil.which("gnuplot") is None:
        log("gnuplot not found: no plots")
        return []
    made = []
    d = tempfile.mkdtemp(prefix="gild-plot-")
    try:
        series = []
        for name, r in (("nng echo (tcp)", res["floor"].get("nng_tcp")),
                        ("gild C (tcp)", res["latency"].get("gild_c")),
                        ("gild Python", res["latency"].get("gild_python")),
                        ("Pool.apply", res["latency"].get("pool_apply")),
                        ("ProcessPoolExecutor",
                         res["latency"].get("ppe_submit"))):
            if r and r.get("cdf"):
                f = os.path.join(d, "cdf%d.dat" % len(series))
                with open(f, "w") as out:
                    for us, frac in r["cdf"]:
                        out.write("%g %g\n" % (us, frac))
                series.append("'%s' using 1:2 with lines lw 2 title '%s'"
                              % (f, name))
        if series:
            made.append(gnuplot(prefix + "-latency-cdf.png",
                                "set logscale x; set xlabel 'latency (µs)';"
                                "set ylabel 'fraction of calls';"
                                "set key bottom right;"
                                "plot " + ", ".join(series)))
        pts = sorted((int(k), r["calls_per_s"])
                     for k, r in res["throughput"]["gild_c"].items() if r)
        if pts:
            f = os.path.join(d, "tput.dat")
            with open(f, "w") as out:
                for k, v in pts:
                    out.write("%d %g\n" % (k, v))
            pool = (res["throughput"].get("pool_imap_unordered") or {}).get(
                "calls_per_s")
            extra = (", %g with lines dt 2 title 'Pool.imap_unordered'" % pool
                     if pool else "")
            made.append(gnuplot(prefix + "-throughput.png",
                                "set logscale x 2; set xlabel 'calls in "
                                "flight'; set ylabel 'calls/s';"
                                "set key bottom right;"
                                "plot '%s' using 1:2 with linespoints lw 2 "
                                "title 'gild (C client)'%s" % (f, extra)))
        sc = res.get("scaling")
        if sc and sc.get("rows"):
            series = []
            for rt in ("process", "free-threaded"):
                rows = [r for r in sc["rows"] if r["runtime"] == rt]
                if rows:
                    f = os.path.join(d, "sc-%s.dat" % rt)
                    with open(f, "w") as out:
                        for r in rows:
                            out.write("%d %g\n" % (r["n"], r["speedup"]))
                    series.append("'%s' using 1:2 with linespoints lw 2 "
                                  "title '%s'" % (f, rt))
            series.append("x with lines dt 2 title 'ideal'")
            made.append(gnuplot(prefix + "-scaling.png",
                                "set xlabel 'workers (process) or threads "
                                "(free-threaded)'; set ylabel 'speedup over "
                                "sequential'; set key top left;"
                                "set xrange [1:*]; set xtics 1;"
                                "plot " + ", ".join(series)))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return [m for m in made if m]


def gnuplot(path, script):
    full = ("set terminal pngcairo size 800,500 noenhanced font ',10';"
            "set output '%s'; set grid;" % path) + script
    p = subprocess.run(["gnuplot", "-e", full], stderr=subprocess.PIPE,
                       text=True, timeout=60)
    if p.returncode != 0:
        log("gnuplot failed:", p.stderr.strip())
        return None
    return path


def update_docs(path, md, pngs):
    """Replaces the text between the markers in path."""
    with open(path) as f:
        text = f.read()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin not in text or end not in text:
        log("%s has no bench markers: not updated" % path)
        return
    imgdir = os.path.join(os.path.dirname(path), "bench")
    os.makedirs(imgdir, exist_ok=True)
    links = []
    for p in pngs:
        name = re.sub(r"^.*?-(latency-cdf|throughput|scaling)\.png$",
                      r"\1.png", os.path.basename(p))
        shutil.copy(p, os.path.join(imgdir, name))
        links.append("![%s](bench/%s)" % (name[:-4], name))
    body = md + "\n" + "\n\n".join(links) + "\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + begin + "\n" + body + end + tail)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--docs", default=None)
    a = ap.parse_args()
    t0 = time.time()
    res = suite(a.quick)
    res["seconds"] = round(time.time() - t0, 1)
    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    prefix = os.path.join(a.out, stamp)
    with open(prefix + ".json", "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(prefix + ".md", "w") as f:
        f.write(md)
    pngs = plots(res, prefix)
    if a.docs:
        update_docs(a.docs, md, pngs)
    print(md)
    log("wrote %s.json, .md and %d plots in %.0f s" % (prefix, len(pngs),
                                                       res["seconds"]))


if __name__ == "__main__":
    main()
