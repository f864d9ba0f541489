#!/usr/bin/env python3
"""Bytes echo through gild against the bare nng echo of the same size, rep
by rep: issue 18's target 6 (1 MiB and 64 MiB over tcp >= 0.6x the bare
echo's throughput); with --shm also target 7 (shared memory for a local
client: the 64 MiB echo >= 25% of memcpy bandwidth, the 1 MiB echo's p50
<= 2x the no-op's).

    python3 bench/payload.py [--reps R] [--sizes 1M,64M] [--seconds S]
        [--workers W] [--shm] BUILD[:ARGS] ...

Each build (a build folder, with extra `gild serve` arguments after a colon)
serves bench/apps/bench_app.py on its own loopback port (with
--max-message 256M) for the whole run. Each rep, for each size, measures in
turn (the order turning round from rep to rep) the bare nng REQ/REP echo
between two C processes (FIRST_BUILD/bench/floor --nng tcp --bytes SIZE)
and each build's `echo` of a bytes value of SIZE from C (BUILD/bench/loadgen
--fn echo --arg-bytes SIZE), one call in flight. Prints each rep on stderr
and one JSON object on stdout: per size and build the round trips per
second of each rep and the ratio to the echo's of the same rep, with their
medians and ranges.

With --shm, one more server (the first build, gild serve --shm on an
ipc:// socket in a temporary folder) is measured in the same reps, from
FIRST_BUILD/bench/loadgen --shm: each rep measures in turn memcpy of 64
MiB (bench/floor --memcpy), the 64 MiB echo through shared memory, the
no-op's p50 and the 1 MiB echo's p50 (both with --shm, one call in
flight). The JSON gains "shm": per rep and as medians, the echo's
bandwidth (value bytes per second, one way) over memcpy's, and the 1 MiB
p50 over the no-op's.
"""
import argparse
import json
import os
import signal
import statistics
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hops import start_gild  # noqa: E402
from procstat import loadavg  # noqa: E402

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def size(s):
    s = s.strip().upper().removesuffix("IB").removesuffix("B")
    return int(s[:-1]) * UNITS[s[-1]] if s[-1] in UNITS else int(s)


def run_json(cmd):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout)


def calls_for(n, seconds):
    """Round trips to ask for: enough for `seconds` at about 1 GB/s, 3 at
    least (the tools stop at --seconds anyway)."""
    return max(3, min(20000, int(seconds * 1e9 / max(n, 1) / 2)))


def spread(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "n": len(xs)} if xs else None


def shm_rep(first, url, seconds):
    """One rep of target 7 against the --shm server at url."""
    tool = os.path.join(first, "bench", "loadgen")
    big = 64 << 20

    def lg(*args):
        r = run_json([tool, "--url", url, "--shm", "--closed", "1",
                      "--seconds", str(seconds), *map(str, args)])
        if r.get("errors"):
            raise SystemExit(f"--shm: errors {r}")
        return r
    mc = run_json([os.path.join(first, "bench", "floor"), "--memcpy",
                   "--bytes", str(big), "--seconds", str(min(seconds, 1))])
    echo = lg("--fn", "echo", "--arg-bytes", big, "--calls",
              calls_for(big, seconds), "--warmup", 2)
    noop = lg("--fn", "noop", "--calls", 20000, "--warmup", 200)
    one = lg("--fn", "echo", "--arg-bytes", 1 << 20, "--calls", 2000,
             "--warmup", 20)
    gbps = big * echo["calls_per_s"] / 1e9
    p50n = noop["latency_us"]["p50"]
    p50m = one["latency_us"]["p50"]
    return {"memcpy_gb_per_s": mc["gb_per_s"], "echo_gb_per_s": gbps,
            "bw_ratio": gbps / mc["gb_per_s"], "p50_noop_us": p50n,
            "p50_1m_us": p50m, "p50_ratio": p50m / p50n}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("builds", nargs="*", default=["build"])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sizes", default="1M,64M")
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--shm", action="store_true",
                    help="also measure shared memory (target 7)")
    o = ap.parse_args()
    sizes = [size(s) for s in o.sizes.split(",")]
    first = o.builds[0].partition(":")[0]
    servers = []
    shm_dir, shm_url, shm_rows = None, None, []
    out = {"sizes": sizes, "reps": o.reps, "builds": o.builds,
           "workers": o.workers, "load_start": loadavg(), "by_size": {}}
    try:
        for b in o.builds:
            d, _, args = b.partition(":")
            servers.append(start_gild(
                d + ":" + ("--max-message 256M " + args).strip(), o.workers))
        if o.shm:
            shm_dir = tempfile.mkdtemp(prefix="gild-bench-shm-")
            shm_url = "ipc://%s/g.sock" % shm_dir
            servers.append(start_gild(
                first + ":--max-message 256M --shm --listen " + shm_url,
                o.workers))
        rows = {n: {"echo": [], **{b: [] for b in o.builds}} for n in sizes}
        for rep in range(o.reps):
            if o.shm:
                shm_rows.append(shm_rep(first, shm_url, o.seconds))
                r = shm_rows[-1]
                print(f"rep {rep + 1}, shm: 64 MiB echo "
                      f"{r['echo_gb_per_s']:.2f} GB/s = "
                      f"{r['bw_ratio']:.2f}x memcpy "
                      f"({r['memcpy_gb_per_s']:.2f} GB/s); 1 MiB p50 "
                      f"{r['p50_1m_us']:.0f} us = {r['p50_ratio']:.2f}x "
                      f"no-op ({r['p50_noop_us']:.0f} us)"
                      + f"  [load {loadavg()}]", file=sys.stderr, flush=True)
            for n in sizes:
                calls, secs = str(calls_for(n, o.seconds)), str(o.seconds)
                ways = ["echo"] + list(range(len(o.builds)))
                k = rep % len(ways)
                line, got = [], {}
                for w in ways[k:] + ways[:k]:
                    if w == "echo":
                        r = run_json([os.path.join(first, "bench", "floor"),
                                      "--nng", "tcp://127.0.0.1:0", "--bytes",
                                      str(n), "--calls", calls, "--seconds",
                                      secs, "--warmup", "2"])
                        got["echo"] = r["calls_per_s"]
                    else:
                        d = o.builds[w].partition(":")[0]
                        r = run_json([os.path.join(d, "bench", "loadgen"),
                                      "--url", servers[w][1], "--fn", "echo",
                                      "--arg-bytes", str(n), "--closed", "1",
                                      "--calls", calls, "--seconds", secs,
                                      "--warmup", "2"])
                        if r.get("errors"):
                            raise SystemExit(f"{o.builds[w]}: errors {r}")
                        got[o.builds[w]] = r["calls_per_s"]
                for w, v in got.items():
                    rows[n][w].append(v)
                line = [f"{w} {v:.1f}/s" + (
                    "" if w == "echo" else f" ({v / got['echo']:.2f}x)")
                    for w, v in got.items()]
                print(f"rep {rep + 1}, {n} bytes: " + ", ".join(line)
                      + f"  [load {loadavg()}]", file=sys.stderr, flush=True)
        for n in sizes:
            r = rows[n]
            e = {"calls_per_s": r["echo"], "spread": spread(r["echo"])}
            by = {"echo": e}
            for b in o.builds:
                ratios = [g / x for g, x in zip(r[b], r["echo"])]
                by[b] = {"calls_per_s": r[b], "spread": spread(r[b]),
                         "ratio": ratios, "ratio_spread": spread(ratios)}
            out["by_size"][str(n)] = by
        if shm_rows:
            out["shm"] = {"reps": shm_rows, **{
                k: spread([r[k] for r in shm_rows])
                for k in ("bw_ratio", "p50_ratio", "echo_gb_per_s",
                          "memcpy_gb_per_s", "p50_1m_us", "p50_noop_us")}}
        out["load_end"] = loadavg()
    finally:
        for p, _ in servers:
            p.send_signal(signal.SIGTERM)
        for p, _ in servers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if shm_dir:
            shutil.rmtree(shm_dir, ignore_errors=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
