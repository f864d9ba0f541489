"""The app of tests/python/test_lifecycle.py: its hooks append one JSON line
per event to the file GILD_TEST_RECORD names (what ran, in which worker,
with which environment)."""
import ctypes
import json
import os

import gild

_libc = ctypes.CDLL(None)
_libc.getenv.restype = ctypes.c_char_p


def _record(event):
    w = gild.worker()
    c_env = _libc.getenv(b"GILD_TEST_DEV")
    line = json.dumps({
        "event": event, "slot": w.slot, "pid": w.pid, "threads": w.threads,
        # os.environ, and the C library's environment (what a CUDA
        # runtime reads) separately.
        "env": os.environ.get("GILD_TEST_DEV"),
        "c_env": c_env.decode() if c_env is not None else None}) + "\n"
    # One write of one line, appended: lines of several workers interleave
    # whole.
    fd = os.open(os.environ["GILD_TEST_RECORD"],
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@gild.on_worker_start
def started():
    _record("start")


@gild.warmup
def warm():
    _record("warmup")
    if os.environ.get("GILD_TEST_WARMUP_FAIL"):
        raise ValueError("warm-up failed: no model weights")


@gild.on_worker_stop
def stopped():
    _record("stop")


@gild.on_worker_stop
def stop_that_fails():
    # Declared last, so it runs first: the other stop hook still runs.
    if os.environ.get("GILD_TEST_STOP_FAIL"):
        raise RuntimeError("cannot flush the cache")


def info():
    """Which worker ran this call, as gild.worker() and the environment say."""
    w = gild.worker()
    return {"slot": w.slot, "pid": w.pid, "threads": w.threads,
            "env": os.environ.get("GILD_TEST_DEV")}
