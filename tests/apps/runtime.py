"""Test app of the free-threaded runtime (tests/integration/test_runtime.c).

Every function reports where it ran, so the test can tell threads and
processes apart, and how much CPU its thread got, so it can tell parallel
threads from threads taking turns under a GIL.
"""
import os
import sys
import threading
import time

import gild


def _where():
    return [os.getpid(), threading.get_ident()]


def burn(n):
    """Pure-Python CPU work: n loop steps. Returns [pid, thread, start,
    end, thread CPU seconds, checksum]."""
    start = time.monotonic()
    cpu0 = time.thread_time()
    acc = 0
    for i in range(n):
        acc = (acc + i * i) % 1000003
    return _where() + [start, time.monotonic(), time.thread_time() - cpu0,
                       acc]


def checksum(n):
    """What burn(n) computes, for checking it."""
    acc = 0
    for i in range(n):
        acc = (acc + i * i) % 1000003
    return acc


def spin_until_stopped(marker):
    """Loops in pure Python until interrupted; its finally: writes marker."""
    try:
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
