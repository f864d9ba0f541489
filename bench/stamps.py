#!/usr/bin/python3
"""Reads the per-call stamps that `bench/speedup.py --stamps FILE` wrote and
says where each way's time went.

    /usr/bin/python3 bench/stamps.py FILE [--slow 1.25]

On a VM whose vCPUs run now at full speed, now markedly slower (see
bench/vcpus.py), a call's thread CPU time falls in one of two groups. A
call counts as slow when its CPU time is over --slow times the median of
the sequential calls that were not (the fast sequential calls are the
reference). Per way it prints:
- how many calls were fast and slow, the median CPU ms of each group, and
  the fast group's median over the reference: what running in that way's
  worker costs the same Python (gild's embedded interpreter, for one);
- the minor faults per call;
- per block (one server lifetime), each worker's median call CPU ms, and
  how many workers were slow for their whole block (most of their calls
  slow in at least 80 % of the block's reps), of how many;
- how many pairs of calls that ran at the same time on two workers started
  on the same CPU (wake-up placement), and the median gap between a
  worker's calls (dispatch);
- each worker thread's run time, wake-ups and runnable wait per rep (from
  /proc/PID/task/*/{schedstat,status});
- the CPU time per rep of the run's own other processes (a gild front end
  and template; the spinner of --slow-cpu) and of every other task.
One JSON object on stdout.
"""
import argparse
import json
import statistics


def med(v):
    return round(statistics.median(v), 3) if v else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--slow", type=float, default=1.25)
    a = ap.parse_args()
    with open(a.file) as f:
        reps = json.load(f)
    seq = sorted(s[6] * 1e3 for r in reps for s in r["methods"]["seq"]
                 ["stamps"])
    ref = statistics.median(seq[:max(1, len(seq) // 2)])  # the fast half
    ref = statistics.median([c for c in seq if c <= a.slow * ref])
    cut = a.slow * ref
    out = {"reference_ms": round(ref, 3), "slow_over_ms": round(cut, 3),
           "ways": {}}
    for m in reps[0]["methods"]:
        calls = [s for r in reps for s in r["methods"][m]["stamps"]]
        fast = [s[6] * 1e3 for s in calls if s[6] * 1e3 <= cut]
        slow = [s[6] * 1e3 for s in calls if s[6] * 1e3 > cut]
        w = {"calls": len(calls), "fast": len(fast), "slow": len(slow),
             "minor_faults_per_call": med([s[7] for s in calls]),
             "fast_ms": med(fast), "slow_ms": med(slow),
             "fast_over_reference": round(statistics.median(fast) / ref, 3)
             if fast else None}
        if m != "seq":
            blocks, same, pairs, gaps = {}, 0, 0, []
            slow_reps = {}  # (block, pid): [most of its calls slow, ...]
            threads = {}
            for r in reps:
                x = r["methods"][m]
                ss = x["stamps"]
                by = {}
                for s in ss:
                    by.setdefault(s[0], []).append(s)
                for pid, v in by.items():
                    blocks.setdefault(r["block"], {}).setdefault(
                        pid, []).extend(s[6] * 1e3 for s in v)
                    slow_reps.setdefault((r["block"], pid), []).append(
                        2 * sum(s[6] * 1e3 > cut for s in v) > len(v))
                    v.sort(key=lambda s: s[4])
                    gaps += [(q[4] - p[5]) * 1e3 for p, q in zip(v, v[1:])]
                for i, p in enumerate(ss):
                    for q in ss[i + 1:]:
                        if p[0] != q[0] and p[4] < q[5] and q[4] < p[5]:
                            pairs += 1
                            same += p[2] == q[2]
                for th in x["workers"].values():
                    for k, t in enumerate(sorted(th.values(),
                                                 key=lambda t: -t["run_ms"])):
                        d = threads.setdefault(k, {"run_ms": [], "vol": [],
                                                   "wait_ms": []})
                        d["run_ms"].append(t["run_ms"])
                        d["vol"].append(t["vol"])
                        d["wait_ms"].append(t["wait_ms"])
            w["per_block_worker_ms"] = [
                [med(v) for v in b.values()]
                for _, b in sorted(blocks.items())]
            life = [v for v in slow_reps.values()
                    if len(v) >= 3 and sum(v) >= 0.8 * len(v)]
            w["slow_for_their_block"] = [len(life), len(slow_reps)]
            w["overlapping_pairs_same_cpu"] = [same, pairs]
            w["gap_between_calls_ms"] = med(gaps)
            # this run's other processes (a gild front end and template)
            # and every other task, CPU ms per rep
            w["ours_ms_per_rep"] = med([r["methods"][m].get("ours_ms", 0)
                                        for r in reps])
            w["others_ms_per_rep"] = med([r["methods"][m]["others_ms"]
                                          for r in reps])
            w["threads_per_rep"] = {
                "#%d" % k: {n: med(v) for n, v in d.items()}
                for k, d in sorted(threads.items())}
        out["ways"][m] = w
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
