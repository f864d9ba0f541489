"""App for tests/python/test_drain.py and test_lb.py: every call writes a
line to a ledger file when it runs, so a test can count how many times each
call ran and which server ran it. GILD_TEST_NAME names the server."""
import os
import time

NAME = os.environ.get("GILD_TEST_NAME", "?")


def record(ledger, token):
    """Appends "token name" to the ledger; returns this server's name."""
    line = ("%s %s\n" % (token, NAME)).encode()
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one O_APPEND write: lines never interleave
    finally:
        os.close(fd)
    return NAME


def hold(ledger, token, gate):
    """Records, then waits (at most 60 s) until the file gate exists."""
    record(ledger, token)
    for _ in range(6000):
        if os.path.exists(gate):
            break
        time.sleep(0.01)
    return NAME
