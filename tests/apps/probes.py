"""App for tests/python/test_http.py: workers that can be made slow to
start, so a test can watch /readyz while none is ready."""
import os
import time

# While this file exists, every worker that imports the app takes a second.
_SLOW = os.environ.get("GILD_TEST_SLOW_START")
if _SLOW and os.path.exists(_SLOW):
    time.sleep(1.0)


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
