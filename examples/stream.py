"""Streaming example: a generator's values reach the client as they are
yielded, with backpressure. Serve it and stream from it:

    build/gild serve examples/stream.py --listen tcp://127.0.0.1:7700
    build/gildctl stream tcp://127.0.0.1:7700 countdown 5
"""
import time


def countdown(n):
    """Yields n, n-1, ..., 1, one every 0.1 s."""
    for i in range(n, 0, -1):
        yield i
        time.sleep(0.1)


def tokens(text):
    """Yields the words of text one by one, as a model would yield tokens."""
    for word in text.split():
        yield word


def squares(n):
    """Called with `gildctl call` (not stream), a generator returns the list
    of everything it yields: [0, 1, 4, ...]."""
    for i in range(n):
        yield i * i
