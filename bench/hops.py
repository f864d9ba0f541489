#!/usr/bin/env python3
"""Counts what one no-op call costs in hand-offs: which threads wake, in what
order, how often each is switched out, and the system calls each makes, per
call, for gild builds side by side.

    python3 bench/hops.py [--calls N] [--inflight K,...] [--workers W]
        [--client c|py] [--chains] BUILD[:ARGS] ...

For each build (a build folder, with extra `gild serve` arguments after a
colon; floor:BUILD for the bare nng echo, BUILD/bench/floor --nng, whose
echo server counts as "gild") and each K it starts `gild serve bench/apps/bench_app.py`, runs N
no-op calls with K in flight under `perf record -a` (the scheduler's
sched_waking and sched_switch tracepoints and raw_syscalls:sys_enter), and
divides what the client, gild's threads and the workers' threads did by
the calls made (warm-up calls included, so fixed costs count too; they are
small against N). Counts, not times: they hold on a loaded machine.

--client c (default) drives the calls with BUILD/bench/loadgen --closed K;
--client py with the Python client of BUILD (gild.connect, K threads each
making calls one at a time, or with K = 1 one thread).

Threads are named by process and role: client.main, client.nng:task,
gild.loop, gild.nng:task, worker.job (a worker's first thread), worker.reader
(its second), worker.t2.. (more job threads). A wake-up "A>B" is A waking
B (the kernel runs sched_waking in the waker's context, so a wake-up by a
write to a socket is counted to the writer).

--chains prints, for K = 1, the most common sequences of wake-ups from one
the client's calling thread makes (sending a call) to the next: the path
of one call.
Needs perf and root (or perf_event_paranoid <= -1).
"""
import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PY_CLIENT = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])  # the package; B names the build
import gild
url, k, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = gild.connect(url)
for _ in range(100):
    c.call("noop")
def run(m):
    for _ in range(m):
        c.call("noop")
if k == 1:
    run(n)
else:
    ts = [threading.Thread(target=run, args=(n // k,)) for _ in range(k)]
    for t in ts: t.start()
    for t in ts: t.join()
c.close()
"""


def syscall_names():
    names = {}
    try:
        with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as f:
            for line in f:
                m = re.match(r"#define __NR_(\w+) (\d+)", line)
                if m:
                    names[int(m.group(2))] = m.group(1)
    except OSError:
        pass
    return names


def descendants(pid):
    """pid's descendant processes (by /proc's ppid)."""
    kids = collections.defaultdict(list)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids[ppid].append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def cpu_s(pids):
    """User + system CPU seconds of processes pids (all their threads)."""
    t = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        t += int(fields[11]) + int(fields[12])
    return t / os.sysconf("SC_CLK_TCK")


def start_gild(spec, workers):
    d, _, args = spec.partition(":")
    out = tempfile.NamedTemporaryFile("w+", delete=False)
    p = subprocess.Popen(
        [os.path.join(d, "gild"), "serve", "bench/apps/bench_app.py",
         "--listen", "tcp://127.0.0.1:0", "--workers", str(workers)]
        + args.split(), cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(300):
        with open(out.name) as f:
            text = f.read()
        if "gild: ready" in text:
            url = re.search(r"listening on (\S+)", text).group(1)
            os.unlink(out.name)
            return p, url
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    raise SystemExit(f"gild ({spec}) did not start")


def parse(path, gild_pid, worker_pids, client_comm):
    """Per-thread counts from perf script: wakes[(waker, wakee)],
    switches[thread] = [voluntary, involuntary], syscalls[thread][nr], and
    the ordered wake-up list."""
    txt = subprocess.run(
        ["perf", "script", "-i", path, "-F",
         "comm,pid,tid,time,event,trace"],
        capture_output=True, text=True).stdout
    line_re = re.compile(
        r"^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$")
    tid_pid = {}
    evs = []
    client_pids = set()
    for line in txt.splitlines():
        m = line_re.match(line)
        if not m:
            continue
        comm, pid, tid, _, ev, rest = m.groups()
        pid, tid = int(pid), int(tid)
        tid_pid[tid] = pid
        if comm == client_comm and tid == pid:
            client_pids.add(pid)
        evs.append((comm, pid, tid, ev, rest))
    if gild_pid is None and len(client_pids) > 1:
        # floor: the forked echo server is the younger process.
        gild_pid = max(client_pids)
        client_pids.discard(gild_pid)
    worker_pids = set(worker_pids)
    # Thread roles: by process, then by creation order (tid) in workers.
    threads = collections.defaultdict(set)
    names = {}
    for comm, pid, tid, ev, rest in evs:
        threads[pid].add(tid)
        names[tid] = comm

    def role(tid, comm=None):
        pid = tid_pid.get(tid)
        if pid == gild_pid:
            name = names.get(tid, comm or "?")
            return "gild.loop" if tid == pid else "gild." + name
        if pid in worker_pids:
            order = sorted(threads[pid])
            i = order.index(tid) if tid in order else -1
            return ("worker.job" if i == 0 else "worker.reader" if i == 1
                    else f"worker.t{i}")
        if pid in client_pids:
            name = names.get(tid, comm or "?")
            return "client.main" if tid == pid else "client." + name
        return None

    wakes = collections.Counter()
    seq = []
    switches = collections.defaultdict(lambda: [0, 0])
    sysc = collections.defaultdict(collections.Counter)
    for comm, pid, tid, ev, rest in evs:
        if ev == "sched:sched_waking":
            m = re.search(r"pid=(\d+)", rest)
            wakee = int(m.group(1))
            b = role(wakee)
            if b is None:
                continue
            a = role(tid) or ("irq" if tid == 0 else "other")
            wakes[(a, b)] += 1
            seq.append((a, b))
        elif ev == "sched:sched_switch":
            r = role(tid)
            if r is None:
                continue
            m = re.search(r"prev_state=(\S+)", rest)
            st = m.group(1) if m else "?"
            switches[r][0 if st.startswith(("S", "D")) else 1] += 1
        elif ev == "raw_syscalls:sys_enter":
            r = role(tid)
            if r is None:
                continue
            m = re.search(r"NR (\d+)", rest)
            if m:
                sysc[r][int(m.group(1))] += 1
    return wakes, switches, sysc, seq


def chains(seq, top=3):
    """The commonest sequences of wake-ups from one wake-up made by the
    client's calling thread (it sends a call) to the next."""
    out = collections.Counter()
    cur = []
    prev = None
    for a, b in seq:
        if a == "client.main" and prev != "client.main" and cur:
            out[tuple(cur)] += 1
            cur = []
        cur.append(f"{a}>{b}")
        prev = a
    total = sum(out.values())
    return total, out.most_common(top)


def run_one(spec, k, calls, workers, client, want_chains, names):
    floor = spec.startswith("floor:")
    if floor:
        # The bare nng echo (BUILD/bench/floor --nng): its forked REP
        # server counts as "gild".
        srv, url, wpids, d = None, None, [], spec.partition(":")[2]
    else:
        srv, url = start_gild(spec, workers)
        wpids = descendants(srv.pid)
        d = spec.partition(":")[0]
    data = tempfile.mktemp(suffix=".perf")
    if floor:
        cmd = [os.path.join(d, "bench", "floor"), "--nng",
               "tcp://127.0.0.1:0", "--closed", str(k), "--calls",
               str(calls), "--warmup", "100"]
        comm = "floor"
        total = calls + 100
    elif client == "c":
        cmd = [os.path.join(d, "bench", "loadgen"), "--url", url, "--fn",
               "noop", "--closed", str(k), "--calls", str(calls),
               "--warmup", "100", "--seconds", "60"]
        comm = "loadgen"
        total = calls + 100
    else:
        cmd = [sys.executable, "-c", PY_CLIENT,
               os.path.join(ROOT, "client-lib", "python"), url, str(k),
               str(calls)]
        comm = os.path.basename(sys.executable)[:15]
        total = calls // k * k + 100
    cpu0 = cpu_s([srv.pid] + wpids) if srv else 0
    try:
        subprocess.run(
            ["perf", "record", "-q", "-a", "-o", data, "-e",
             "sched:sched_waking,sched:sched_switch,raw_syscalls:sys_enter",
             "--"] + cmd, cwd=ROOT, check=True,
            env=dict(os.environ, B=os.path.abspath(d)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu = cpu_s([srv.pid] + wpids) - cpu0 if srv else 0
        wakes, switches, sysc, seq = parse(data, srv.pid if srv else None,
                                           wpids, comm)
    finally:
        if srv is not None:
            srv.send_signal(signal.SIGTERM)
            try:
                srv.wait(10)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
        if os.path.exists(data):
            os.unlink(data)
    print(f"\n## {spec}: {k} in flight, {total} calls ({client} client)")
    by_wakee = collections.Counter()
    for (a, b), n in wakes.items():
        by_wakee[b] += n
    tw = sum(by_wakee.values())
    ts = sum(v + i for v, i in switches.values())
    tsc = sum(sum(c.values()) for c in sysc.values())
    print(f"per call: {tw / total:.2f} wake-ups, {ts / total:.2f} context "
          f"switches, {tsc / total:.1f} system calls; gild and its workers "
          f"used {cpu / total * 1e6:.0f} µs of CPU")
    print("| thread | woken | switched out (vol+invol) | syscalls | top syscalls |")
    print("|---|---:|---:|---:|---|")
    for r in sorted(set(by_wakee) | set(switches) | set(sysc)):
        v, i = switches.get(r, [0, 0])
        sc = sysc.get(r, collections.Counter())
        top = ", ".join(f"{names.get(nr, nr)} {n / total:.2f}"
                        for nr, n in sc.most_common(4))
        print(f"| {r} | {by_wakee[r] / total:.2f} | {(v + i) / total:.2f} "
              f"({v / total:.2f}+{i / total:.2f}) | "
              f"{sum(sc.values()) / total:.1f} | {top} |")
    print("wake-ups A>B per call: " + ", ".join(
        f"{a}>{b} {n / total:.2f}" for (a, b), n in wakes.most_common()
        if n / total >= 0.02))
    if want_chains:
        n, top = chains(seq)
        for c, cnt in top:
            print(f"chain ({cnt} of {n}): " + " | ".join(c))
    groups = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in set(by_wakee) | set(switches) | set(sysc):
        g = group(r)
        groups[g][0] += by_wakee[r] / total
        groups[g][1] += sum(switches.get(r, [0, 0])) / total
        groups[g][2] += sum(sysc.get(r, {}).values()) / total
    return tw / total, ts / total, tsc / total, dict(groups), \
        cpu / total * 1e6


def group(role):
    """client.nng:task -> client.nng; gild.loop and worker roles stay."""
    proc, _, name = role.partition(".")
    return f"{proc}.nng" if name.startswith("nng:") else role


def cpu_split(spec, k, calls, workers):
    """CPU µs per call of the client (loadgen, from wait4), gild and the
    workers (/proc), in a run without perf."""
    srv, url = start_gild(spec, workers)
    wpids = descendants(srv.pid)
    d = spec.partition(":")[0]
    try:
        g0, w0 = cpu_s([srv.pid]), cpu_s(wpids)
        p = subprocess.Popen(
            [os.path.join(d, "bench", "loadgen"), "--url", url, "--fn",
             "noop", "--closed", str(k), "--calls", str(calls), "--warmup",
             "100", "--seconds", "60"], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        g, w = cpu_s([srv.pid]) - g0, cpu_s(wpids) - w0
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(10)
    n = calls + 100
    c = ru.ru_utime + ru.ru_stime
    return c / n * 1e6, g / n * 1e6, w / n * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="*", default=["build"])
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--inflight", default="1,64")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--client", choices=("c", "py"), default="c")
    ap.add_argument("--chains", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--quiet", action="store_true",
                    help="only the summary (medians of the runs)")
    ap.add_argument("--cpu", action="store_true",
                    help="only CPU time per call: client, gild, workers "
                    "(runs without perf; C client)")
    o = ap.parse_args()
    if o.cpu:
        res = collections.defaultdict(list)
        for run in range(o.runs):
            for k in [int(x) for x in o.inflight.split(",")]:
                for b in o.builds:
                    res[(b, k)].append(cpu_split(b, k, o.calls, o.workers))
        print(f"CPU µs per call, median (range) of {o.runs} run(s), "
              f"{o.calls} calls each, {o.workers} workers:\n")
        print("| build | in flight | client | gild | workers | total |")
        print("|---|---:|---:|---:|---:|---:|")
        for (b, k), v in res.items():
            cells = []
            for i in range(4):
                xs = sorted(sum(x) if i == 3 else x[i] for x in v)
                cells.append(f"{xs[len(xs) // 2]:.0f} ({xs[0]:.0f}–"
                             f"{xs[-1]:.0f})" if len(xs) > 1 else
                             f"{xs[0]:.0f}")
            print(f"| {b} | {k} | " + " | ".join(cells) + " |")
        return
    names = syscall_names()
    with open("/proc/loadavg") as f:
        print("load average at start:", " ".join(f.read().split()[:3]))
    got = collections.defaultdict(list)
    out = sys.stdout
    for run in range(o.runs):
        for k in [int(x) for x in o.inflight.split(",")]:
            for b in o.builds:
                if o.quiet:
                    sys.stdout = open(os.devnull, "w")
                try:
                    got[(b, k)].append(run_one(
                        b, k, o.calls, o.workers, o.client,
                        o.chains and k == 1, names))
                finally:
                    if o.quiet:
                        sys.stdout.close()
                        sys.stdout = out

    def mr(xs, fmt):
        xs = sorted(xs)
        med = xs[len(xs) // 2] if len(xs) % 2 else \
            (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
        if len(xs) == 1:
            return fmt % med
        return f"{fmt % med} ({fmt % xs[0]}–{fmt % xs[-1]})"

    print(f"\nPer call, median (range) of {o.runs} run(s), {o.calls} calls "
          f"each, {o.client} client, {o.workers} workers:\n")
    print("| build | in flight | wake-ups | context switches | syscalls | "
          "server CPU µs |")
    print("|---|---:|---:|---:|---:|---:|")
    for (b, k), v in got.items():
        print(f"| {b} | {k} | {mr([x[0] for x in v], '%.2f')} | "
              f"{mr([x[1] for x in v], '%.2f')} | "
              f"{mr([x[2] for x in v], '%.1f')} | "
              f"{mr([x[4] for x in v], '%.0f')} |")
    print("\nBy thread (nng's threads together), median of the runs: "
          "wake-ups / switches / syscalls per call\n")
    roles = sorted({g for v in got.values() for x in v
                    for g, c in x[3].items() if c[0] + c[1] + c[2] >= 0.05})
    print("| build | in flight | " + " | ".join(roles) + " |")
    print("|---|---:|" + "---:|" * len(roles))
    for (b, k), v in got.items():
        cells = []
        for g in roles:
            vals = [x[3].get(g, [0, 0, 0]) for x in v]
            cells.append("/".join(
                mr([y[i] for y in vals], f) for i, f in
                ((0, "%.2f"), (1, "%.2f"), (2, "%.1f"))).replace(" (", "(")
                if len(v) == 1 else "/".join(
                    "%.2f" % sorted(y[i] for y in vals)[len(vals) // 2]
                    if i < 2 else
                    "%.1f" % sorted(y[i] for y in vals)[len(vals) // 2]
                    for i in range(3)))
        print(f"| {b} | {k} | " + " | ".join(cells) + " |")
    with open("/proc/loadavg") as f:
        print("load average at end:", " ".join(f.read().split()[:3]))


if __name__ == "__main__":
    main()
