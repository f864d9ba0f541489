"""App for tests/python/test_metrics.py and test_trace.py: a plain
function, a batched one, the worker's pid, and the trace context a call
sees in gild.context()."""
import os
import time

import gild


def ping():
    return "pong"


@gild.function(batch=4, batch_wait_ms=50)
def twice(xs):
    return [2 * x for x in xs]


def pid():
    return os.getpid()


def trace():
    """The running call's traceparent and tracestate (None when absent)."""
    ctx = gild.context()
    return [ctx.traceparent, ctx.tracestate]


def fail():
    raise ValueError("failing on purpose")


def traced_nap(seconds):
    """Sleeps, then says what trace() says: long enough for --slow-ms 1 to
    log the call."""
    time.sleep(seconds)
    return trace()


def die():
    """Ends the worker while the call runs: gild logs the lost call."""
    os._exit(1)
