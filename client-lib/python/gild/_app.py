"""The app-side API: decorators read by gild-worker."""

import collections
import inspect
import math
import os

try:
    # Inside gild-worker: the classes the worker raises to interrupt a call.
    import _gild_worker
    from _gild_worker import Interrupted, DeadlineInterrupt, CancelInterrupt
except ImportError:  # a plain interpreter (a client, a unit test)
    _gild_worker = None

    class Interrupted(BaseException):
        """A call was stopped from outside while it ran."""

    class DeadlineInterrupt(Interrupted):
        """The call's deadline passed while it ran."""

    class CancelInterrupt(Interrupted):
        """The client cancelled the call (or went away) while it ran."""

# The worker reads this attribute of each exported function.
OPTIONS_ATTR = "__gild__"


def _check_timeout(timeout):
    if timeout is None:
        return 0
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(
            f"gild.function: timeout must be a number of seconds, "
            f"not {type(timeout).__name__}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(
            f"gild.function: timeout must be a positive number of seconds, "
            f"not {timeout!r}")
    ms = math.ceil(timeout * 1000)
    if ms > 2**32 - 1:
        raise ValueError(
            f"gild.function: timeout {timeout!r} s is too long "
            f"(at most {(2**32 - 1) // 1000} s)")
    return ms


def _check_retries(retries):
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(
            f"gild.function: retries must be an int, "
            f"not {type(retries).__name__}")
    if not 0 <= retries <= 100:
        raise ValueError(
            f"gild.function: retries must be between 0 and 100, "
            f"not {retries!r}")
    return retries


BATCH_MAX = 4096


def _check_batch(batch, batch_wait_ms):
    if batch is None:
        return 0, 0
    if isinstance(batch, bool) or not isinstance(batch, int):
        raise TypeError(
            f"gild.function: batch must be an int, not {type(batch).__name__}")
    if not 1 <= batch <= BATCH_MAX:
        raise ValueError(
            f"gild.function: batch must be between 1 and {BATCH_MAX}, "
            f"not {batch!r}")
    if (isinstance(batch_wait_ms, bool)
            or not isinstance(batch_wait_ms, (int, float))
            or not math.isfinite(batch_wait_ms)
            or not 0 <= batch_wait_ms <= 10_000):
        raise ValueError(
            f"gild.function: batch_wait_ms must be a number of "
            f"milliseconds from 0 to 10000, not {batch_wait_ms!r}")
    return batch, round(batch_wait_ms * 1000)


def _check_concurrency(concurrency):
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(
            f"gild.function: concurrency must be an int, "
            f"not {type(concurrency).__name__}")
    if not 1 <= concurrency <= 10_000:
        raise ValueError(
            f"gild.function: concurrency must be between 1 and 10000, "
            f"not {concurrency!r}")
    return concurrency


def function(fn=None, *, timeout=None, retries=0, batch=None,
             batch_wait_ms=2, concurrency=1):
    """Declares how gild runs an exported function.

    timeout: seconds from when the server receives a call to its deadline,
        unless the call sets its own; None means --default-timeout.
    retries: how many times a call is run again on another worker when the
        worker running it dies (for idempotent functions only).
    batch: run up to this many calls at once (at most 4096). Each
        argument the function gets is then a list, with one item per call:
        the calls f(1, 2, k=3) and f(4, 5, k=6) become one run of
        f([1, 4], [2, 5], k=[3, 6]), which returns a list of as many
        results. Calls with other arguments (another number of positional
        ones, other keywords) in the same batch make runs of their own.
    batch_wait_ms: when calls pile up (every worker was busy when they
        came), how long a batch may wait to fill up before it runs. A call
        that finds a worker free never waits.
    concurrency: for an ``async def`` function, how many of its calls may
        be in flight on one worker at once (they run on the worker's
        asyncio loop, interleaving at each await).

    Usable bare (``@gild.function``) or with options
    (``@gild.function(timeout=1.5)``); the function itself is returned
    unchanged apart from the ``__gild__`` attribute the worker reads.
    """
    batch, batch_wait_us = _check_batch(batch, batch_wait_ms)
    options = {"timeout_ms": _check_timeout(timeout),
               "retries": _check_retries(retries),
               "batch": batch, "batch_wait_us": batch_wait_us,
               "concurrency": _check_concurrency(concurrency)}

    def mark(f):
        if not callable(f):
            raise TypeError("gild.function decorates a function")
        if options["concurrency"] > 1 and not inspect.iscoroutinefunction(f):
            raise TypeError(
                f"gild.function: concurrency={options['concurrency']} needs "
                f"an async def function; {f.__name__} is not one")
        setattr(f, OPTIONS_ATTR, dict(options))
        return f

    return mark(fn) if fn is not None else mark


ACTOR_ATTR = "__gild_actor__"

# The most calls of one actor that may run at once: proto/gild_limits.h's
# GILD_ACTOR_CONCURRENCY_MAX (tests/python/test_python.py checks the copy).
ACTOR_CONCURRENCY_MAX = 256


def _has_async_method(cls):
    return any(inspect.iscoroutinefunction(getattr(cls, name, None))
               for name in dir(cls) if not name.startswith("_"))


def actor(cls=None, *, max_restarts=0, concurrency=1):
    """Makes a class of the app an actor: clients create instances of it
    (each lives in one worker, keeps its state between calls, and runs its
    calls in arrival order, one at a time unless concurrency says more)
    and call its public methods.

    max_restarts: if the worker holding an instance dies, the instance is
    created again (with its constructor arguments; its state is lost) up to
    this many times; after that, calls get NOT_FOUND ("actor lost").
    concurrency: for a class with ``async def`` methods, how many calls of
    one instance may be in flight at once (1 to ACTOR_CONCURRENCY_MAX,
    256): they start in arrival order and interleave at each ``await`` on
    the worker's event loop. A plain method still runs to its end without
    interleaving with anything.

    Usable bare (``@gild.actor``) or with options
    (``@gild.actor(max_restarts=2)``).
    """
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) \
            or not 0 <= max_restarts <= 1_000_000:
        raise ValueError(
            f"gild.actor: max_restarts must be an int from 0, "
            f"not {max_restarts!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise TypeError(
            f"gild.actor: concurrency must be an int, "
            f"not {type(concurrency).__name__}")
    if not 1 <= concurrency <= ACTOR_CONCURRENCY_MAX:
        raise ValueError(
            f"gild.actor: concurrency must be between 1 and "
            f"{ACTOR_CONCURRENCY_MAX}, not {concurrency!r}")

    def mark(c):
        if not isinstance(c, type):
            raise TypeError("gild.actor decorates a class")
        if concurrency > 1 and not _has_async_method(c):
            raise TypeError(
                f"gild.actor: concurrency={concurrency} needs async def "
                f"methods; {c.__name__} has none")
        setattr(c, ACTOR_ATTR, {"max_restarts": max_restarts,
                                "concurrency": concurrency})
        return c

    return mark(cls) if cls is not None else mark


class Context:
    """What gild knows about the call running now (see gild.context())."""

    __slots__ = ("request_id", "function", "deadline", "queued_ms",
                 "batch_size", "traceparent", "tracestate")

    def __init__(self, request_id, function, deadline, queued_ms, batch_size,
                 traceparent=None, tracestate=None):
        self.request_id = request_id  # the client's Request.id
        self.function = function      # the function's name
        self.deadline = deadline      # a time.monotonic() value, or None
        self.queued_ms = queued_ms    # how long the call waited for a worker
        self.batch_size = batch_size  # calls in its batch (1: not batched)
        # The W3C trace context the client sent with the call (a batched
        # call: the batch's first call's), or None.
        self.traceparent = traceparent
        self.tracestate = tracestate

    def time_left(self):
        """Seconds until the deadline (negative once past), or None."""
        import time
        return None if self.deadline is None else self.deadline - time.monotonic()

    def cancelled(self):
        """True once the call has been told to stop (cancelled by the client,
        or past its deadline): a long loop can check this and return early."""
        return _gild_worker.cancelled()

    def __repr__(self):
        return (f"gild.Context(request_id={self.request_id}, "
                f"function={self.function!r}, deadline={self.deadline}, "
                f"queued_ms={self.queued_ms:.3f}, batch_size={self.batch_size}, "
                f"traceparent={self.traceparent!r})")


def context():
    """The running call's Context. Only inside a call, in a gild worker."""
    if _gild_worker is None:
        raise RuntimeError("gild.context() is only available inside a gild "
                           "worker")
    return Context(*_gild_worker.context_info())


# ---- the worker's lifecycle ----------------------------------------------
# gild-worker (worker/lifecycle.c) runs these in each worker: the start
# hooks, then the warm-ups, after the fork and before the worker takes a
# call; the stop hooks, last declared first, when it exits as planned.
_HOOKS = {"start": [], "warmup": [], "stop": []}
# Set on a hook: the worker does not export it as a callable function.
HOOK_ATTR = "__gild_hook__"


def _hook(kind, decorator, fn):
    if not callable(fn) or isinstance(fn, type):
        raise TypeError(f"gild.{decorator} decorates a function")
    if inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"gild.{decorator}: {fn.__name__} is an async def; hooks run "
            f"before the worker's event loop starts: use a plain def")
    try:
        inspect.signature(fn).bind()
    except TypeError:
        raise TypeError(
            f"gild.{decorator}: {fn.__name__} must be callable with no "
            f"arguments (gild.worker() says which worker runs it)") from None
    except ValueError:
        pass  # no signature to check (a builtin)
    setattr(fn, HOOK_ATTR, kind)
    _HOOKS[kind].append(fn)
    return fn


def on_worker_start(fn):
    """Runs fn() in each worker after it starts (after the fork from the
    template, or after an exec'd worker imported the app) and before it
    takes its first call: open connections, load a model onto the device
    --worker-env gave it. Also after every restart, recycle and reload. If
    it raises, the worker is not ready and is started again later (see
    docs/lifecycle.md). Not exported as a callable function."""
    return _hook("start", "on_worker_start", fn)


def on_worker_stop(fn):
    """Runs fn() in a worker that exits as planned (recycled, reloaded,
    the server stopping), after its last call: close what the start hook
    opened. Not run when the worker dies or is killed. Stop hooks run in
    the reverse order of their declaration. Not exported."""
    return _hook("stop", "on_worker_stop", fn)


def warmup(fn):
    """Runs fn() in each worker after its start hooks, before it counts
    as ready: a worker whose warm-up raises takes no call, /readyz stays
    503 while no worker is ready, gild logs why, and the worker is started
    again with the crash-loop backoff (100 ms doubling to 5 s). Not
    exported."""
    return _hook("warmup", "warmup", fn)


class Worker(collections.namedtuple("Worker", "slot pid threads")):
    """Which worker this is (see gild.worker()).

    slot: its number, 0 to --workers - 1 (a replacement takes the slot of
        the worker it replaces); None in the template process gild forks
        workers from (while the app is imported under --spawn fork).
    pid: its process id.
    threads: how many calls it runs at once (--threads; 1 for the process
        runtime).
    """
    __slots__ = ()


def worker():
    """This worker's Worker(slot, pid, threads). Only in a gild worker."""
    if _gild_worker is None or not hasattr(_gild_worker, "worker_info"):
        raise RuntimeError("gild.worker() is only available in a gild "
                           "worker")
    slot, threads = _gild_worker.worker_info()
    return Worker(slot, os.getpid(), threads)
