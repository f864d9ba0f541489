"""The example gild app: `make run` serves it, the tests call it.

Every public function defined here can be called by name, e.g.
    gildctl call tcp://127.0.0.1:7700 add 1 2
"""
import os
import time
from math import sqrt  # imported names are not exported: sqrt is not callable

try:
    import numpy as np
except ImportError:  # the app still serves without numpy
    np = None


def add(a, b):
    """Adds two numbers (or concatenates two lists or strings)."""
    return a + b


def echo(*args, **kwargs):
    """Returns its arguments as they arrived: a value, or a list/dict of them."""
    if kwargs:
        return {"args": list(args), "kwargs": kwargs}
    return args[0] if len(args) == 1 else list(args)


def types(*args):
    """The Python type name of each argument, as the worker sees it."""
    return [type(a).__name__ for a in args]


def fib(n):
    """CPU-bound: the n-th Fibonacci number, computed the slow way."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def spin(ms):
    """Keeps one CPU busy for about `ms` milliseconds and reports where and
    when it ran: pid, and start/end stamps from time.time()."""
    start = time.time()
    deadline = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < deadline:
        pass
    return {"pid": os.getpid(), "start": start, "end": time.time()}


def sleep(seconds):
    """Sleeps, then returns how long it slept."""
    time.sleep(seconds)
    return seconds


def fail(message="something went wrong"):
    """Raises ValueError with the given message."""
    raise ValueError(message)


def hypot(a, b):
    """Uses an imported helper inside an exported function."""
    return sqrt(a * a + b * b)


def pid():
    """The worker's process id."""
    return os.getpid()


def crash():
    """Kills its own worker process, as a segfault would."""
    os._exit(1)


def matmul(a, b):
    """Matrix product of two tensors (needs numpy)."""
    if np is None:
        raise RuntimeError("numpy is not installed")
    return np.asarray(a) @ np.asarray(b)


def normalize(v):
    """Scales a float tensor to unit length (needs numpy)."""
    if np is None:
        raise RuntimeError("numpy is not installed")
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


_held = []


def hold(mib):
    """Keeps `mib` MiB allocated in this worker until it exits; returns its pid."""
    _held.append(b"x" * (mib * 2**20))  # written, so resident
    return os.getpid()


# ---- used by the Python client examples (docs/python.md) ----

import gild  # noqa: E402  (the app-side API: decorators, context)


def ticks(n):
    """A generator: as a stream, its values arrive as they are yielded."""
    for i in range(n):
        yield i


_cancels_seen = 0


def wait_for_cancel(limit_s=30.0, started=None):
    """Loops until the call is cancelled (or limit_s passes). When the client
    cancels, gild.context().cancelled() turns true (and the loop is
    interrupted); cancels_seen() counts the calls that saw it. started: a
    file to create once the loop runs (a call cancelled before it starts
    never runs, so it counts nothing)."""
    global _cancels_seen
    ctx = gild.context()
    if started:
        open(started, "w").close()
    end = time.monotonic() + limit_s
    try:
        while not ctx.cancelled() and time.monotonic() < end:
            time.sleep(0.001)
    finally:
        if ctx.cancelled():
            _cancels_seen += 1
    return "not cancelled"


def cancels_seen():
    """How many wait_for_cancel calls in this worker saw their cancel."""
    return _cancels_seen


@gild.actor
class Counter:
    """An actor: each instance keeps its count between calls."""

    def __init__(self, start=0):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n


def echo_kwargs(**kwargs):
    """Returns its keyword arguments: every name reaches a function called
    through a handle (c.function("echo_kwargs")(timeout=7))."""
    return kwargs


def div(a, b):
    """a / b: dividing by zero raises ZeroDivisionError."""
    return a / b


def lookup(table, key):
    """table[key]: a missing key raises KeyError."""
    return table[key]
