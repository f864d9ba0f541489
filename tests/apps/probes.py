"""App for tests/python/test_http.py: workers that can be made slow to
start, so a test can watch /readyz while none is ready."""
import os
import time

# While this file exists, every worker that imports the app takes a second.
_SLOW = os.environ.get("GILD_TEST_SLOW_START")
if _SLOW and os.path.exists(_SLOW):
    time.sleep(1.0)
    # ... and the worker of slot GILD_TEST_SLOWER_SLOT 1.5 s more (with
    # --spawn exec, where each worker imports the app).
    if os.environ.get("GILD_WORKER_SLOT") == os.environ.get(
            "GILD_TEST_SLOWER_SLOT"):
        time.sleep(1.5)


def ping():
    """A call that answers at once."""
    return "pong"


def nap(seconds):
    """Sleeps, then returns what it was given."""
    time.sleep(seconds)
    return seconds


def crash():
    """Kills its worker mid-call."""
    os._exit(3)


def count(n):
    """A stream of 0..n-1."""
    yield from range(n)


def getenv(name):
    """The worker's environment variable name, or None."""
    return os.environ.get(name)
