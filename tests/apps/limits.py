"""What tests/python/test_limits.py calls: functions that hold a worker,
make big results and stream, and an actor that sleeps."""
import time

import gild


def nap(seconds):
    time.sleep(seconds)
    return seconds


def blob(n):
    return b"x" * n


def gen(n):
    for i in range(n):
        yield i


def big_chunks(n, size):
    for _ in range(n):
        yield b"c" * size


def gen_marked(path):
    """Yields for ever; writes path when it is closed."""
    try:
        i = 0
        while True:
            yield i
            i += 1
    finally:
        with open(path, "w") as f:
            f.write("closed")


@gild.actor
class Sleeper:
    def __init__(self, data=None):
        self.data = data

    def nap(self, seconds):
        time.sleep(seconds)
        return seconds
