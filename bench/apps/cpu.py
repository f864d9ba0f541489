"""CPU-bound pure-Python work for bench/scaling.c and bench/cputime.py.

gild serves it (the process and the free-threaded runtime), and the bench
imports it in a plain interpreter to time the same work sequentially.
Stdlib only: the free-threaded Python has no numpy.
"""
import os
import resource
import sys
import threading
import time


def burn(steps):
    """Pure-Python CPU work: `steps` turns of an integer loop that touches
    only locals (nothing shared between threads). Returns a checksum below
    1000003."""
    acc = 0
    for i in range(steps):
        acc = (acc + i * i) % 1000003
    return acc


def fib(n):
    """Pure-Python calls: the naive recursive Fibonacci number n."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


FUNCTIONS = {"burn": burn, "fib": fib}


def _thread_stat():
    """(CPU number, minor faults) of this thread, from
    /proc/thread-self/stat (fields 39 and 10)."""
    with open("/proc/thread-self/stat", "rb") as f:
        s = f.read()
    f = s[s.rindex(b")") + 2:].split()  # f[i] is field i + 3
    return int(f[36]), int(f[7])


def stamped(name, arg):
    """Runs FUNCTIONS[name](arg) and returns its stamps, for bench/speedup.py:
    [pid, thread id, CPU at start, CPU at end, monotonic start, monotonic end
    (seconds; CLOCK_MONOTONIC is one clock for every process), thread CPU
    seconds, minor faults, voluntary and involuntary context switches of
    this thread during the call]."""
    fn = FUNCTIONS[name]
    cpu0, flt0 = _thread_stat()
    r0 = resource.getrusage(resource.RUSAGE_THREAD)
    w0, c0 = time.monotonic(), time.thread_time()
    fn(arg)
    c1, w1 = time.thread_time(), time.monotonic()
    r1 = resource.getrusage(resource.RUSAGE_THREAD)
    cpu1, flt1 = _thread_stat()
    return [os.getpid(), threading.get_native_id(), cpu0, cpu1, w0, w1,
            c1 - c0, flt1 - flt0, r1.ru_nvcsw - r0.ru_nvcsw,
            r1.ru_nivcsw - r0.ru_nivcsw]


def cpu_time(name, arg):
    """The CPU time, in seconds, that this thread spent in one call of
    FUNCTIONS[name](arg) (bench/cputime.py runs it in a worker and in a
    plain interpreter)."""
    fn = FUNCTIONS[name]
    t0 = time.thread_time()
    fn(arg)
    return time.thread_time() - t0


def _best(steps, repeat):
    """The shortest of `repeat` timings of burn(steps), in seconds."""
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        burn(steps)
        t = time.perf_counter() - t0
        best = t if best is None or t < best else best
    return best


def calibrate(ms):
    """The step count for which burn takes about `ms` milliseconds on the
    interpreter running this (best of 5 at a size of at least 50 ms, scaled
    linearly)."""
    steps = 1000
    while _best(steps, 1) < 0.05:
        steps *= 2
    return max(1, int(steps * (ms / 1000.0) / _best(steps, 5)))


def sequential(steps, n):
    """Runs burn(steps) n times, one after another on this thread, after
    one untimed call. Returns the seconds per call."""
    burn(steps)
    t0 = time.perf_counter()
    for _ in range(n):
        burn(steps)
    return (time.perf_counter() - t0) / n


def runtime():
    """The interpreter running this: [version, GIL enabled now]."""
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return [sys.version.split()[0], bool(gil)]
