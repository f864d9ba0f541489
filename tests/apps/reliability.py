"""The app the reliability tests serve (tests/integration/test_reliability.c):
functions that never return, get stuck in C, die, or eat memory."""
import os
import time

import gild


def _mark(path, text):
    with open(path, "a") as f:
        f.write(text)


def add(a, b):
    return a + b


def pid():
    return os.getpid()


def loop(path):
    """Pure Python that never returns; its finally: leaves a mark. Marks
    "running" first, inside the try:, so an interrupt that comes after
    that mark runs the finally:."""
    try:
        _mark(path, "running\n")
        while True:
            pass
    finally:
        _mark(path, "finally ran\n")


def stuck(seconds):
    """Stuck in C code (time.sleep) that an interrupt cannot reach."""
    time.sleep(seconds)
    return seconds


def nap(seconds):
    """Sleeps in short steps: interruptible between them."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)
    return seconds


def marked_nap(path):
    """Leaves a mark in path when it starts, then naps 5 s."""
    _mark(path, "nap ran\n")
    return nap(5)


@gild.function(timeout=0.3)
def bounded(path):
    """Declares a 300 ms deadline; loops past it."""
    loop(path)


def _count(path):
    n = int(open(path).read()) if os.path.exists(path) else 0
    with open(path, "w") as f:
        f.write(str(n + 1))
    return n + 1


@gild.function(retries=2)
def die_once(path):
    """Kills its worker on the first run, succeeds on the second."""
    runs = _count(path)
    if runs == 1:
        os._exit(1)
    return runs


@gild.function(retries=1)
def die_always(path):
    """Kills its worker every time: 1 retry, then WORKER_LOST."""
    _count(path)
    os._exit(1)


def bomb():
    """Asks for 50 GiB at once."""
    return len(bytearray(50 * 2**30))


VERSION = 1


def version():
    """The app's version: the reload test edits this file, then SIGHUPs."""
    return VERSION


def _worker_socket():
    """The worker's socket to the front end: its one Unix stream socket
    (the other, the descriptor channel, is a SOCK_SEQPACKET)."""
    import socket
    for name in os.listdir("/proc/self/fd"):
        try:
            s = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        found = s.family == socket.AF_UNIX and s.type == socket.SOCK_STREAM
        s.close()
        if found:
            return int(name)
    raise RuntimeError("no worker socket")


def second_hello():
    """Writes a second Hello to the front end on this worker's socket, as a
    broken worker would, exporting only 'evil'. gild must replace this
    worker, and keep the app's list of functions."""
    import struct
    hello = b"\x12\x04evil"                 # Hello.functions = ["evil"]
    payload = b"\x22" + bytes([len(hello)]) + hello  # FromWorker.hello
    os.write(_worker_socket(), struct.pack("<I", len(payload)) + payload)
    time.sleep(5)                           # it is killed before this ends
    return "survived"


@gild.function(batch=4, batch_wait_ms=1)
def bsum(xs):
    """Batched: the length of each input (test_deep_values sends it one
    nested too deep)."""
    return [len(x) if isinstance(x, list) else 0 for x in xs]


@gild.actor
class Box:
    """An actor that keeps its constructor's arguments."""

    def __init__(self, *args, **kwargs):
        self.n = len(args) + len(kwargs)

    def size(self):
        return self.n
