#!/usr/bin/python3
"""No-op call latency and throughput of gild's Python client and of its
peers (multiprocessing, concurrent.futures, and optionally dask.distributed,
celery and uWSGI), one workload per run.

    /usr/bin/python3 bench/peers.py WORKLOAD [options]

Prints exactly one JSON object on stdout (everything human-readable goes to
stderr) and exits 0 on success, 1 on failure ({"error": ...}), 2 when the
peer is not available here ({"skipped": "why"}).

Workloads:
  gild-latency     --url URL   one caller, sequential c.call("noop")
  gild-throughput  --url URL   --inflight K calls kept in flight (starmap)
  pool-latency                 multiprocessing.Pool(N).apply(noop)
  pool-throughput              Pool(N).imap_unordered(noop, range(C), 1)
  ppe-latency                  ProcessPoolExecutor(N).submit(noop).result()
  ppe-throughput               ProcessPoolExecutor(N): submit C, wait all
  dask-latency / dask-throughput       dask.distributed LocalCluster(N)
  celery-latency / celery-throughput   celery prefork worker(N) over redis
  uwsgi-latency                        uWSGI, N processes, HTTP/1.1 GETs

Options: --workers N (2), --calls C (2000 latency, 20000 throughput),
--seconds S (time bound, 10: stop early once passed), --warmup W (50 calls,
not measured), --inflight K (throughput: calls kept in flight, 256; the
multiprocessing and dask peers queue all their calls at once and report
"inflight": null), --fn/--args (gild: the function and its JSON argument
list, "noop" and []), --mode (gild-throughput, how calls are kept in
flight: starmap (default: `for r in client.starmap(fn, repeat(args),
ordered=False, max_in_flight=K)`, what a user writes for imap_unordered;
calls go out in batches, as many at once as results came back, up to
--batch), map (Client.map, ordered; needs a function with arguments, e.g.
--fn echo --args '[null]'), callbacks (each future's done-callback, on the
client's poller thread, submits the next: the calls submitted by the
callbacks of results that came back together go out in one message),
window (the main thread waits for the oldest future, then submits one
more: one call per message), native (gild._native submit/poll without futures: the
client wrapper's cost, for diagnosis; reported as peer "gild-native")),
--batch B (starmap and map: most calls per message, 64; 1 turns batching
off), the result's "messages" and "calls_sent" say how many messages the
client sent for how many calls,
--call-timeout (seconds one call may take, 30), --timeout (hard limit of the
whole run, seconds; default max(120, 3 * seconds + 90)).

The optional peers look for what Debian packages install: dask.distributed
(python3-distributed), celery and redis (python3-celery, python3-redis,
redis-tools), uwsgi (uwsgi-core, uwsgi-plugin-python3; UWSGI_PLUGIN_DIR is
honoured). Every peer's workers are started and stopped by this script.

Latency: time.perf_counter_ns() around each call; exact nearest-rank
percentiles over all measured calls; a CDF of at most 200 log-spaced points.
Every process this script starts is stopped by its pid before it exits.
"""
import argparse
import bisect
import collections
import itertools
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")


def noop(*a):
    """The no-op every multiprocessing/dask peer runs (module level, so it
    pickles by reference)."""
    return None


def application(environ, start_response):
    """The no-op WSGI app uwsgi-latency serves (uwsgi loads this file with
    --wsgi-file; nothing else in it runs at import)."""
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", "0")])
    return [b""]


# Celery's worker imports this module (`celery -A peers`, PYTHONPATH=bench)
# with GILD_PEERS_CELERY set to the broker URL; it then finds `app` here.
def _celery_app(url):
    from celery import Celery
    capp = Celery("gild-peers", broker=url, backend=url)
    capp.conf.update(
        task_serializer="json", result_serializer="json",
        accept_content=["json"], worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True, task_default_queue="gildbench")

    @capp.task(name="peers.noop")
    def _noop(*a):
        return None
    return capp


if os.environ.get("GILD_PEERS_CELERY") and __name__ != "__main__":
    app = _celery_app(os.environ["GILD_PEERS_CELERY"])


# -- output ------------------------------------------------------------------

_JSON_FD = None  # stdout as it was: the JSON goes there, and only the JSON


def _capture_stdout():
    """Points fd 1 (and sys.stdout) at stderr, so that nothing a library or
    child process prints can corrupt the one JSON line."""
    global _JSON_FD
    sys.stdout.flush()
    _JSON_FD = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def emit(obj, code):
    data = (json.dumps(obj) + "\n").encode()
    if _JSON_FD is None:
        sys.__stdout__.write(data.decode())
        sys.__stdout__.flush()
    else:
        os.write(_JSON_FD, data)
    return code


def log(*a):
    print("peers:", *a, file=sys.stderr, flush=True)


class Skip(Exception):
    """The peer is not available here (exit 2)."""


class Fail(Exception):
    """The run failed (exit 1)."""


# -- statistics --------------------------------------------------------------

def nearest_rank(sorted_ns, p):
    n = len(sorted_ns)
    k = max(1, math.ceil(p * n))
    return sorted_ns[min(n, k) - 1]


def cdf_points(sorted_us, points=200):
    """[[us, fraction of calls <= us], ...], at most `points` log-spaced
    abscissae from min to max (the last one exactly max, 1.0)."""
    n = len(sorted_us)
    lo, hi = sorted_us[0], sorted_us[-1]
    if n == 1 or hi <= lo or lo <= 0:
        return [[round(hi, 3), 1.0]]
    out = []
    ratio = hi / lo
    for i in range(points):
        x = hi if i == points - 1 else lo * ratio ** (i / (points - 1))
        frac = bisect.bisect_right(sorted_us, x) / n
        if out and out[-1][1] == frac:
            continue  # a flat step adds nothing to the curve
        out.append([round(x, 3), round(frac, 6)])
    if out[-1] != [round(hi, 3), 1.0]:
        out.append([round(hi, 3), 1.0])
    while len(out) > points:  # cannot happen; kept as the contract's bound
        out.pop(-2)
    return out


def latency_result(args, peer, workers, lat_ns, elapsed_s, extra=None):
    if not lat_ns:
        raise Fail("no call was measured")
    s = sorted(lat_ns)
    us = [v / 1000.0 for v in s]
    r = {
        "workload": args.workload, "peer": peer, "workers": workers,
        "calls": len(s), "seconds": round(elapsed_s, 6),
        "calls_per_s": round(len(s) / elapsed_s, 3) if elapsed_s > 0 else None,
        "latency_us": {
            "p50": nearest_rank(s, 0.50) / 1000.0,
            "p90": nearest_rank(s, 0.90) / 1000.0,
            "p99": nearest_rank(s, 0.99) / 1000.0,
            "p999": nearest_rank(s, 0.999) / 1000.0,
            "max": s[-1] / 1000.0, "min": s[0] / 1000.0,
            "mean": round(sum(s) / len(s) / 1000.0, 3),
        },
        "cdf": cdf_points(us),
    }
    if extra:
        r.update(extra)
    return r


def throughput_result(args, peer, workers, inflight, calls, elapsed_s,
                      extra=None):
    if calls <= 0:
        raise Fail("no call completed")
    r = {"workload": args.workload, "peer": peer, "workers": workers,
         "inflight": inflight, "calls": calls, "seconds": round(elapsed_s, 6),
         "calls_per_s": round(calls / elapsed_s, 3) if elapsed_s > 0 else None}
    if extra:
        r.update(extra)
    return r


def measure_latency(one_call, calls, seconds, warmup):
    """Runs one_call() warmup times, then up to `calls` times (fewer once
    `seconds` have passed), timing each. Returns (latencies ns, seconds)."""
    for _ in range(warmup):
        one_call()
    clock = time.perf_counter_ns
    lat = []
    append = lat.append
    start = clock()
    deadline = start + int(seconds * 1e9)
    for _ in range(calls):
        t0 = clock()
        one_call()
        t1 = clock()
        append(t1 - t0)
        if t1 >= deadline:
            break
    return lat, (clock() - start) / 1e9


# -- processes ---------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds, proc=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Fail(f"{proc.args[0]} exited with {proc.returncode} "
                       "before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise Fail(f"nothing listened on port {port} within {seconds} s")


_children = []  # Popen objects this script started, stopped at exit


def start(cmd, **kw):
    log("starting", " ".join(cmd))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=2,
                         start_new_session=True, **kw)
    _children.append(p)
    return p


def stop(p, grace=10.0):
    """SIGTERM to the child's pid, then (after grace) SIGKILL to its pid and
    to the process group it leads (its own session: only what it started)."""
    if p.poll() is None:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            log(f"pid {p.pid} ignored SIGTERM for {grace} s: SIGKILL")
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    try:
        os.killpg(p.pid, signal.SIGKILL)  # stragglers of its group, if any
    except (ProcessLookupError, PermissionError):
        pass
    if p in _children:
        _children.remove(p)


def stop_all():
    for p in list(reversed(_children)):
        try:
            stop(p, grace=5.0)
        except Exception as e:  # keep stopping the others
            log(f"stopping pid {p.pid}: {e}")


def kill_pids(pids):
    """SIGKILL the pids that are still alive (processes a peer's library
    started for us and should already have stopped)."""
    for pid in pids:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            continue
        log(f"pid {pid} outlived its shutdown: SIGKILL")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- gild --------------------------------------------------------------------

def gild_client(args):
    sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
    try:
        import gild
        import gild.client
        gild.client._need_native()
    except ImportError as e:
        raise Skip(f"the gild Python client cannot load (run make): {e}")
    if not args.url:
        raise Fail("--url is required")
    c = gild.connect(args.url, timeout=args.call_timeout)
    try:
        c.ping()
    except gild.Error as e:
        c.close()
        raise Fail(f"gild server {args.url} does not answer: {e}")
    return gild, c


def gild_workers(c):
    """How many workers the server has (its status), or None."""
    try:
        return len(c.status()["workers"])
    except Exception:
        return None


def gild_args(args):
    try:
        a = json.loads(args.args)
    except ValueError as e:
        raise Fail(f"--args is not JSON: {e}")
    if not isinstance(a, list):
        raise Fail("--args must be a JSON list")
    return a


def gild_latency(args):
    gild, c = gild_client(args)
    fn, a = args.fn, gild_args(args)
    try:
        workers = gild_workers(c)
        expected = c.call(fn, *a)
        call = c.call

        def one():
            if call(fn, *a) != expected:
                raise Fail(f"{fn} returned something else than {expected!r}")
        lat, el = measure_latency(one, args.calls, args.seconds, args.warmup)
    except gild.Error as e:
        raise Fail(f"gild call failed: {e!r}")
    finally:
        c.close()
    return latency_result(args, "gild-python", workers, lat, el,
                          {"fn": fn, "url": args.url})


class _Tally:
    """Completions of a throughput run, shared by the threads that settle
    them."""

    def __init__(self, total, inflight, deadline_ns, expected):
        self.lock = threading.Lock()
        self.total, self.inflight = total, inflight
        self.deadline_ns, self.expected = deadline_ns, expected
        self.sent = self.done = self.errors = 0
        self.first_error = None
        self.last_ns = 0
        self.finished = threading.Event()

    def more(self):
        """Reserves one more call to send, if the run is not over."""
        with self.lock:
            if (self.sent < self.total and self.errors == 0 and
                    time.perf_counter_ns() < self.deadline_ns):
                self.sent += 1
                return True
            if self.done == self.sent:
                self.finished.set()
            return False

    def check(self):
        """Sets finished when every call sent has come back and no more
        will be sent."""
        with self.lock:
            if self.done == self.sent and (
                    self.sent >= self.total or self.errors or
                    time.perf_counter_ns() >= self.deadline_ns):
                self.finished.set()

    def settle(self, value=None, error=None):
        now = time.perf_counter_ns()
        with self.lock:
            self.done += 1
            self.last_ns = now
            if error is None and value != self.expected:
                error = f"returned {value!r}, not {self.expected!r}"
            if error is not None:
                self.errors += 1
                if self.first_error is None:
                    self.first_error = str(error)


def _gild_tp_starmap(c, fn, a, t, batch):
    """Client.starmap(ordered=False, max_in_flight=K): the calls whose
    results came back together go out again together, in one message."""
    def calls():
        while t.more():
            yield a
    for v in c.starmap(fn, calls(), ordered=False, max_in_flight=t.inflight,
                       batch_size=batch):
        t.settle(v)
    t.check()


def _gild_tp_callbacks(c, fn, a, t, batch):
    """Each call's done-callback (on the client's poller thread) sends the
    next one: no thread hand-off per call beyond the client's own."""
    tls = threading.local()

    def on_done(f):
        try:
            t.settle(f.result())
        except BaseException as e:
            t.settle(error=repr(e))
        if getattr(tls, "active", False):  # re-entered from submit()
            tls.owed += 1
            return
        tls.active, tls.owed = True, 1
        try:
            while tls.owed:
                tls.owed -= 1
                if t.more():
                    try:
                        c.submit(fn, *a).add_done_callback(on_done)
                    except Exception as e:  # counted, and the run ends
                        t.settle(error=repr(e))
                        t.check()
        finally:
            tls.active = False

    for _ in range(t.inflight):
        if not t.more():
            break
        c.submit(fn, *a).add_done_callback(on_done)
    t.check()  # in case everything already came back


def _gild_tp_window(c, fn, a, t, batch):
    """The main thread waits for the oldest call, then sends one more."""
    pending = collections.deque()
    for _ in range(t.inflight):
        if not t.more():
            break
        pending.append(c.submit(fn, *a))
    while pending:
        f = pending.popleft()
        try:
            t.settle(f.result())
        except Exception as e:
            t.settle(error=repr(e))
        if t.more():
            pending.append(c.submit(fn, *a))
    t.check()


def _gild_tp_map(c, fn, a, t, batch):
    """Client.map(ordered=True, max_in_flight=K): its first column ends at
    the time bound or the call count (map zips its iterables, so the
    function must take at least one argument)."""
    def first():
        while t.more():
            yield a[0]
    for v in c.map(fn, first(), *[itertools.repeat(x) for x in a[1:]],
                   max_in_flight=t.inflight, batch_size=batch):
        t.settle(v)
    t.check()


def _gild_tp_native(c, fn, a, t, batch):
    """gild._native directly (submit/poll, no Future objects): what the
    client's wrapper costs, for diagnosis; not the public API."""
    n = c._native
    OK = sys.modules["gild.client"]._native.OK
    inflight = 0
    for _ in range(t.inflight):
        if not t.more():
            break
        n.submit(fn, a, None, 0)
        inflight += 1
    while inflight:
        got = n.poll(-1)
        inflight -= 1
        code, value, error = got[1]
        if code == OK:
            t.settle(value)
        else:
            t.settle(error=repr(error))
        if t.more():
            n.submit(fn, a, None, 0)
            inflight += 1
    t.check()


def gild_throughput(args):
    fn, a = args.fn, gild_args(args)
    modes = {"starmap": _gild_tp_starmap, "map": _gild_tp_map,
             "callbacks": _gild_tp_callbacks, "window": _gild_tp_window,
             "native": _gild_tp_native}
    if args.mode not in modes:
        raise Fail(f"--mode must be one of {', '.join(modes)}")
    if args.mode == "map" and not a:
        raise Fail("--mode map needs a function with arguments (map zips them)")
    gild, c = gild_client(args)
    try:
        workers = gild_workers(c)
        expected = c.call(fn, *a)
        for _ in range(args.warmup):
            c.call(fn, *a)
        if args.mode != "native":
            # warm the futures path too (starts the client's poller thread;
            # native mode must not have one: it would take the results)
            for f in [c.submit(fn, *a)
                      for _ in range(min(args.warmup, args.inflight))]:
                f.result()
        start = time.perf_counter_ns()
        t = _Tally(args.calls, args.inflight,
                   start + int(args.seconds * 1e9), expected)
        sent0 = c._native.sent()
        modes[args.mode](c, fn, a, t, args.batch)
        if args.mode == "callbacks":
            if not t.finished.wait(args.seconds + args.call_timeout + 30):
                raise Fail(f"{t.sent - t.done} calls never came back")
        elapsed = (t.last_ns - start) / 1e9
        sent1 = c._native.sent()
        if t.errors:
            raise Fail(f"{t.errors} of {t.done} calls failed, first: "
                       f"{t.first_error}")
    finally:
        c.close()
    peer = "gild-python" if args.mode != "native" else "gild-native"
    extra = {"fn": fn, "url": args.url, "mode": args.mode,
             "messages": sent1[0] - sent0[0],
             "calls_sent": sent1[1] - sent0[1]}
    if args.mode in ("starmap", "map"):
        extra["batch"] = args.batch
    log(f"gild-throughput: mode {args.mode}, {extra['calls_sent']} calls in "
        f"{extra['messages']} messages")
    return throughput_result(args, peer, workers, args.inflight, t.done,
                             elapsed, extra)


# -- multiprocessing, concurrent.futures -------------------------------------

def pool_latency(args):
    import multiprocessing
    with multiprocessing.Pool(args.workers) as pool:
        pids = [p.pid for p in pool._pool]

        def one():
            if pool.apply(noop) is not None:
                raise Fail("noop returned something")
        try:
            lat, el = measure_latency(one, args.calls, args.seconds,
                                      args.warmup)
        finally:
            pool.terminate()
            pool.join()
    kill_pids(pids)
    return latency_result(args, "multiprocessing.Pool", args.workers, lat, el,
                          {"start_method": multiprocessing.get_start_method()})


def pool_throughput(args):
    import multiprocessing
    with multiprocessing.Pool(args.workers) as pool:
        pids = [p.pid for p in pool._pool]
        try:
            for _ in range(args.warmup):
                pool.apply(noop)
            done = 0
            start = time.perf_counter_ns()
            deadline = start + int(args.seconds * 1e9)
            last = start
            for v in pool.imap_unordered(noop, range(args.calls), chunksize=1):
                if v is not None:
                    raise Fail("noop returned something")
                done += 1
                last = time.perf_counter_ns()
                if last >= deadline:
                    break
        finally:
            pool.terminate()
            pool.join()
    kill_pids(pids)
    return throughput_result(args, "multiprocessing.Pool", args.workers, None,
                             done, (last - start) / 1e9,
                             {"method": "imap_unordered(chunksize=1)"})


def _ppe(args):
    import concurrent.futures
    import multiprocessing
    return concurrent.futures.ProcessPoolExecutor(
        args.workers, mp_context=multiprocessing.get_context())


def _ppe_pids(ex):
    return list((getattr(ex, "_processes", None) or {}).keys())


def ppe_latency(args):
    ex = _ppe(args)
    try:
        def one():
            if ex.submit(noop).result() is not None:
                raise Fail("noop returned something")
        lat, el = measure_latency(one, args.calls, args.seconds, args.warmup)
    finally:
        pids = _ppe_pids(ex)
        ex.shutdown(wait=True, cancel_futures=True)
        kill_pids(pids)
    return latency_result(args, "ProcessPoolExecutor", args.workers, lat, el)


def ppe_throughput(args):
    import concurrent.futures
    ex = _ppe(args)
    try:
        for _ in range(args.warmup):
            ex.submit(noop).result()
        tally = {"done": 0, "bad": 0, "last": 0}
        lock = threading.Lock()

        def on_done(f):
            now = time.perf_counter_ns()
            with lock:
                if f.cancelled():
                    return
                if f.exception() is not None or f.result() is not None:
                    tally["bad"] += 1
                tally["done"] += 1
                tally["last"] = max(tally["last"], now)

        start = time.perf_counter_ns()
        deadline = start + int(args.seconds * 1e9)
        futures = []
        for i in range(args.calls):
            f = ex.submit(noop, i)
            f.add_done_callback(on_done)
            futures.append(f)
            if (i & 255) == 0 and time.perf_counter_ns() >= deadline:
                break
        left = max(0.0, (deadline - time.perf_counter_ns()) / 1e9)
        concurrent.futures.wait(futures, timeout=left)
        for f in futures:
            f.cancel()
        concurrent.futures.wait(futures, timeout=30)  # the running ones
        if tally["bad"]:
            raise Fail(f"{tally['bad']} no-op calls failed")
    finally:
        pids = _ppe_pids(ex)
        ex.shutdown(wait=True, cancel_futures=True)
        kill_pids(pids)
    return throughput_result(args, "ProcessPoolExecutor", args.workers, None,
                             tally["done"], (tally["last"] - start) / 1e9,
                             {"method": "submit all, then wait"})


# -- dask.distributed ----------------------------------------------------------

def _dask(args):
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as e:
        raise Skip("python3-distributed is not installed (make bench "
                   f"installs it): {e}")
    import logging
    from dask.distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                           processes=True, dashboard_address=None,
                           scheduler_port=0, silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        pids = list(client.run(os.getpid).values())
        pids += [w.process.pid for w in cluster.workers.values()
                 if getattr(w, "process", None) is not None
                 and w.process.pid is not None]
    except Exception:
        pids = []
    return client, cluster, pids


def _dask_close(client, cluster, pids):
    try:
        client.close()
    finally:
        cluster.close()
        kill_pids(pids)


def dask_latency(args):
    client, cluster, pids = _dask(args)
    try:
        counter = iter(range(1 << 62))

        def one():
            # pure=False: every call is a new task, not a cached result
            if client.submit(noop, next(counter), pure=False).result() \
                    is not None:
                raise Fail("noop returned something")
        lat, el = measure_latency(one, args.calls, args.seconds, args.warmup)
    finally:
        _dask_close(client, cluster, pids)
    import distributed
    return latency_result(args, "dask.distributed", args.workers, lat, el,
                          {"version": distributed.__version__})


def dask_throughput(args):
    from concurrent.futures import TimeoutError as FTimeout
    client, cluster, pids = _dask(args)
    try:
        import distributed
        for i in range(args.warmup):
            client.submit(noop, -i, pure=False).result()
        start = time.perf_counter_ns()
        futures = client.map(noop, range(args.calls), pure=False)
        try:
            distributed.wait(futures, timeout=args.seconds)
        except (FTimeout, distributed.TimeoutError):
            pass
        end = time.perf_counter_ns()
        done = [f for f in futures if f.status == "finished"]
        bad = sum(1 for f in futures if f.status == "error")
        client.cancel([f for f in futures if f.status == "pending"])
        if bad:
            raise Fail(f"{bad} no-op tasks failed")
    finally:
        _dask_close(client, cluster, pids)
    return throughput_result(args, "dask.distributed", args.workers, None,
                             len(done), (end - start) / 1e9,
                             {"method": "client.map, then wait",
                              "version": distributed.__version__})


# -- celery (redis broker and result backend) ----------------------------------

def redis_server():
    """The redis server's binary: redis-server on PATH, else Debian's
    redis-tools binary that is the server when its argv[0] says
    redis-server (redis-check-rdb; the redis-server package only adds a
    symlink and the system service). None if neither is there."""
    return shutil.which("redis-server") or shutil.which("redis-check-rdb")


class _Celery:
    """redis-server and one prefork celery worker (concurrency N), both
    started and stopped (by pid) here."""

    def __enter__(self):
        return self

    def __init__(self, args):
        try:
            import celery  # noqa: F401
        except ImportError as e:
            raise Skip("python3-celery is not installed (make bench "
                       f"installs it): {e}")
        try:
            import redis  # noqa: F401
        except ImportError as e:
            raise Skip("python3-redis is not installed (make bench "
                       f"installs it): {e}")
        redis_bin = redis_server()
        if redis_bin is None:
            raise Skip("redis-server is not installed (make bench installs "
                       "redis-tools, which has it)")
        self.tmp = tempfile.mkdtemp(prefix="gild-peers-")
        self.procs = []
        try:
            port = free_port()
            self.procs.append(start(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self.tmp,
                 "--loglevel", "warning"], executable=redis_bin))
            wait_port(port, 10, self.procs[-1])
            url = f"redis://127.0.0.1:{port}/0"
            env = dict(os.environ, GILD_PEERS_CELERY=url,
                       PYTHONPATH=BENCH + os.pathsep +
                       os.environ.get("PYTHONPATH", ""))
            self.procs.append(start(
                [sys.executable, "-m", "celery", "-A", "peers", "worker",
                 "--concurrency", str(args.workers), "--pool", "prefork",
                 "--queues", "gildbench", "--without-gossip",
                 "--without-mingle", "--without-heartbeat",
                 "--loglevel", "WARNING"], cwd=BENCH, env=env))
            self.app = _celery_app(url)
        except BaseException:
            self.close()
            raise

    def send(self, i=0):
        return self.app.send_task("peers.noop", args=(i,), queue="gildbench")

    def wait_ready(self, seconds=60):
        deadline = time.monotonic() + seconds
        while True:
            if self.procs[-1].poll() is not None:
                raise Fail("the celery worker exited with "
                           f"{self.procs[-1].returncode}")
            try:
                self.send().get(timeout=2)
                return
            except Exception as e:
                if time.monotonic() > deadline:
                    raise Fail(f"the celery worker never answered: {e!r}")

    def close(self):
        # Let go of every AsyncResult while redis still runs: their __del__
        # talks to it.
        import gc
        gc.collect()
        capp = getattr(self, "app", None)
        if capp is not None:
            try:
                capp.backend.result_consumer.stop()
            except Exception:
                pass
            capp.close()
        for p in reversed(self.procs):
            stop(p, grace=15.0)
        self.procs = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __exit__(self, *exc):
        self.close()


def celery_latency(args):
    with _Celery(args) as cw:
        cw.wait_ready()

        def one():
            if cw.send().get(timeout=args.call_timeout) is not None:
                raise Fail("noop returned something")
        lat, el = measure_latency(one, args.calls, args.seconds, args.warmup)
    return latency_result(args, "celery", args.workers, lat, el,
                          {"broker": "redis", "version": sys.modules["celery"].__version__})


def celery_throughput(args):
    with _Celery(args) as cw:
        cw.wait_ready()
        for _ in range(args.warmup):
            cw.send().get(timeout=args.call_timeout)
        start = time.perf_counter_ns()
        deadline = start + int(args.seconds * 1e9)
        pending = collections.deque()
        done = 0
        sent = 0
        last = start
        while sent < args.calls and len(pending) < args.inflight:
            pending.append(cw.send(sent))
            sent += 1
        while pending:
            r = pending.popleft()
            if r.get(timeout=args.call_timeout) is not None:
                raise Fail("noop returned something")
            done += 1
            last = time.perf_counter_ns()
            if sent < args.calls and last < deadline:
                pending.append(cw.send(sent))
                sent += 1
        r = None  # no AsyncResult may outlive redis (see _Celery.close)
    return throughput_result(args, "celery", args.workers, args.inflight,
                             done, (last - start) / 1e9,
                             {"broker": "redis", "version": sys.modules["celery"].__version__,
                              "method": "send_task, oldest result .get()"})


# -- uWSGI ---------------------------------------------------------------------

def uwsgi_latency(args):
    import http.client
    exe = shutil.which("uwsgi") or shutil.which("uwsgi-core")
    if exe is None:
        raise Skip("uwsgi is not installed (make bench installs "
                   "uwsgi-core and uwsgi-plugin-python3)")
    plugin = None
    # uwsgi itself reads UWSGI_PLUGIN_DIR (as --plugin-dir)
    for d in (os.environ.get("UWSGI_PLUGIN_DIR"), "/usr/lib/uwsgi/plugins"):
        if not d:
            continue
        for name in ("python311", "python3"):
            if os.path.exists(os.path.join(d, f"{name}_plugin.so")):
                plugin = name
                break
        if plugin:
            break
    if plugin is None:
        raise Skip("uwsgi-plugin-python3 is not installed (make bench "
                   "installs it)")
    port = free_port()
    p = start([exe, "--plugin", plugin, "--http11-socket",
               f"127.0.0.1:{port}", "--master", "--processes",
               str(args.workers), "--wsgi-file", os.path.abspath(__file__),
               "--callable", "application", "--disable-logging",
               "--die-on-term", "--need-app", "--so-keepalive"])
    try:
        wait_port(port, 20, p)
        conn = http.client.HTTPConnection("127.0.0.1", port,
                                          timeout=args.call_timeout)
        socks = set()

        def one():
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise Fail(f"uwsgi answered {r.status}")
            socks.add(id(conn.sock))
        lat, el = measure_latency(one, args.calls, args.seconds, args.warmup)
        conn.close()
    finally:
        stop(p, grace=10.0)
    return latency_result(args, "uwsgi", args.workers, lat, el,
                          {"protocol": "HTTP/1.1 keep-alive GET, http.client",
                           "connections": len(socks)})


# -- main ----------------------------------------------------------------------

WORKLOADS = {
    "gild-latency": gild_latency, "gild-throughput": gild_throughput,
    "pool-latency": pool_latency, "pool-throughput": pool_throughput,
    "ppe-latency": ppe_latency, "ppe-throughput": ppe_throughput,
    "dask-latency": dask_latency, "dask-throughput": dask_throughput,
    "celery-latency": celery_latency, "celery-throughput": celery_throughput,
    "uwsgi-latency": uwsgi_latency,
}


class _Parser(argparse.ArgumentParser):
    """A usage error is a failure like any other: JSON on stdout, exit 1
    (argparse's own exit 2 would read as "peer unavailable")."""

    def error(self, message):
        self.print_usage(sys.stderr)
        wl = next((a for a in sys.argv[1:] if a in WORKLOADS), None)
        sys.exit(emit({"workload": wl, "error": f"usage: {message}"}, 1))


def parse(argv):
    ap = _Parser(
        description="no-op latency/throughput of gild's Python client and "
        "its peers; one JSON object on stdout")
    ap.add_argument("workload", choices=sorted(WORKLOADS))
    ap.add_argument("--url", help="gild server URL (gild-* workloads)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--calls", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--inflight", type=int, default=256)
    ap.add_argument("--fn", default="noop", help="gild: function to call")
    ap.add_argument("--args", default="[]",
                    help="gild: JSON list of the call's arguments")
    ap.add_argument("--mode", default="starmap",
                    help="gild-throughput: starmap, map, callbacks, window "
                    "or native")
    ap.add_argument("--batch", type=int, default=64,
                    help="gild-throughput starmap/map: most calls per "
                    "message")
    ap.add_argument("--call-timeout", type=float, default=30.0,
                    help="seconds one call may take before the run fails")
    ap.add_argument("--timeout", type=float, default=None,
                    help="hard limit of the whole run, seconds")
    args = ap.parse_args(argv)
    if args.calls is None:
        args.calls = 2000 if args.workload.endswith("latency") else 20000
    if args.timeout is None:
        args.timeout = max(120.0, 3 * args.seconds + 90)
    for name in ("workers", "calls", "inflight", "batch"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1")
    if args.warmup < 0 or args.seconds <= 0:
        ap.error("--warmup must be >= 0 and --seconds > 0")
    return args


def _alarm(signum, frame):
    raise Fail("the run passed its --timeout")


def main(argv):
    args = parse(argv)
    _capture_stdout()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, int(math.ceil(args.timeout))))
    try:
        result = WORKLOADS[args.workload](args)
    except Skip as e:
        signal.alarm(0)
        stop_all()
        return emit({"workload": args.workload, "skipped": str(e)}, 2)
    except (Fail, Exception) as e:
        signal.alarm(0)
        stop_all()
        log(f"{args.workload} failed: {e!r}")
        return emit({"workload": args.workload,
                     "error": str(e) or repr(e)}, 1)
    signal.alarm(0)
    stop_all()
    return emit(result, 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
