"""App of the dispatch tests (tests/integration/test_reliability.c,
test_runtime.c): each call writes when it starts and ends, and where it
ran, to a ledger file, so a test can tell from the order of the lines
which call waited for which, whatever the clocks say."""
import os
import threading
import time


def _append(ledger, text):
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())  # one O_APPEND write: lines never interleave
    finally:
        os.close(fd)


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
