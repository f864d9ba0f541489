"""Test app of the free-threaded runtime (tests/integration/test_runtime.c).

Every function reports where it ran, so the test can tell threads and
processes apart, and what its thread did meanwhile (ran, waited for a CPU,
or was blocked), so it can tell parallel threads from threads taking turns
under a GIL.
"""
import os
import sys
import threading
import time

import gild


def _where():
    return [os.getpid(), threading.get_ident()]


# Samples burn() takes of its thread, evenly over its loop.
SAMPLES = 50


def _sample():
    """[monotonic s, s this thread has run, s it has waited runnable for a
    CPU] (the kernel's /proc/thread-self/schedstat), or None where the
    kernel keeps no such count. What is left of a span is the time the
    thread was blocked (under a GIL: waiting for it)."""
    now = time.monotonic()
    try:
        with open("/proc/thread-self/schedstat") as f:
            ran, waited = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    return [now, int(ran) / 1e9, int(waited) / 1e9]


def burn(n):
    """Pure-Python CPU work: n loop steps. Returns [pid, thread, start,
    end, thread CPU seconds, checksum, samples]: samples is SAMPLES + 1
    _sample()s taken evenly from the loop's start to its end (None if the
    kernel keeps no schedstat)."""
    start = time.monotonic()
    cpu0 = time.thread_time()
    samples = [_sample()]
    acc = 0
    step = max(1, n // SAMPLES)
    for lo in range(0, n, step):
        for i in range(lo, min(lo + step, n)):
            acc = (acc + i * i) % 1000003
        samples.append(_sample())
    if None in samples:
        samples = None
    return _where() + [start, time.monotonic(), time.thread_time() - cpu0,
                       acc, samples]


def checksum(n):
    """What burn(n) computes, for checking it."""
    acc = 0
    for i in range(n):
        acc = (acc + i * i) % 1000003
    return acc


def spin_until_stopped(marker):
    """Loops in pure Python until interrupted; its finally: writes marker.
    Creates marker + ".running" once inside the try:, so that an interrupt
    after that file exists runs the finally:."""
    try:
        open(marker + ".running", "w").close()
        while True:
            pass
    finally:
        with open(marker, "w") as f:
            f.write(repr(threading.get_ident()))


def gil():
    """Whether this worker's interpreter runs with a GIL now."""
    f = getattr(sys, "_is_gil_enabled", None)
    return True if f is None else f()


@gild.actor
class Where:
    """Remembers the thread that created it: an actor is pinned there."""

    def __init__(self):
        self.thread = threading.get_ident()
        self.calls = 0

    def check(self):
        self.calls += 1
        return [self.thread == threading.get_ident(), self.calls]


def constant_refcount():
    """The reference count of this function's constant 1000003, which
    gild-worker-ft makes immortal (gild/_ftconsts.py): 2**32 - 1 there,
    a small count where it is an ordinary object."""
    consts = constant_refcount.__code__.co_consts
    return sys.getrefcount([c for c in consts if c == 1000003][0])


class _Holder:
    """A class whose method has a constant too."""

    def method_constant_refcount(self):
        consts = _Holder.method_constant_refcount.__code__.co_consts
        return sys.getrefcount([c for c in consts if c == 2.5][0])


def method_constant_refcount():
    return _Holder().method_constant_refcount()
