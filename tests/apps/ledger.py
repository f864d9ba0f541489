"""App for tests/python/test_drain.py, test_lb.py and
tests/integration/test_once.c, test_reliability.c and test_runtime.c:
every call writes a line to a ledger file when it runs, so a test can
count how many times each call ran and which server (or worker, or
thread) ran it, and in what order calls started and ended, whatever the
clocks say. GILD_TEST_NAME names the server."""
import os
import threading
import time

NAME = os.environ.get("GILD_TEST_NAME", "?")


def _append(ledger, text):
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())  # one O_APPEND write: lines never interleave
    finally:
        os.close(fd)


def record(ledger, token):
    """Appends "token name" to the ledger; returns this server's name."""
    _append(ledger, "%s %s\n" % (token, NAME))
    return NAME


def record_large(ledger, token):
    """Appends "token name pid" to the ledger, then returns 100 KiB of
    zeros: a result that takes its worker's socket a moment to carry."""
    _append(ledger, "%s %s %d\n" % (token, NAME, os.getpid()))
    return bytes(100 * 1024)


def hold(ledger, token, gate):
    """Records, then waits (at most 60 s) until the file gate exists."""
    record(ledger, token)
    for _ in range(6000):
        if os.path.exists(gate):
            break
        time.sleep(0.01)
    return NAME


def stamp(ledger, token, gate=None):
    """Appends "start TOKEN PID THREAD" to the ledger; with gate, waits
    until the file gate exists (60 s at most); then appends "end TOKEN PID
    THREAD". Returns [pid, thread]. The ledger's lines are in the order
    the calls started and ended, across workers and threads."""
    where = [os.getpid(), threading.get_ident()]
    _append(ledger, "start %s %d %d\n" % (token, where[0], where[1]))
    if gate is not None:
        for _ in range(6000):
            if os.path.exists(gate):
                break
            time.sleep(0.01)
    _append(ledger, "end %s %d %d\n" % (token, where[0], where[1]))
    return where


def stamp_long(ledger, token, gate=None):
    """stamp after 5 ms of sleep: a call that the scheduler's estimate
    (server/svctime.c) counts as long, as CPU-bound calls of a few ms are."""
    time.sleep(0.005)
    return stamp(ledger, token, gate)
