"""The app tests/python/test_executor.py serves: the functions the
standard library's executor tests (Lib/test/test_concurrent_futures) run
in a pool, where a gild server can serve them. The test imports this
module too, to submit its functions as objects (sent by their name)."""
import os
import time


def mul(x, y):
    return x * y


def power(x, y):
    return x ** y


def div_mod(a, b):
    return divmod(a, b)


def sleep(t):
    time.sleep(t)


def sleep_and_raise(t):
    time.sleep(t)
    raise Exception("this is an exception")


def sleep_and_write(t, path, text):
    """Sleeps t seconds, then writes text to path (where the standard
    library's tests print: a gild worker's output goes to the server's
    log)."""
    time.sleep(t)
    with open(path, "a") as f:
        f.write(text + "\n")
    return text


def raise_runtime():
    raise RuntimeError(123)  # some comment


def pid():
    return os.getpid()
