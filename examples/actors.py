"""Actor example: instances that keep state between calls.

    build/gild serve examples/actors.py --listen tcp://127.0.0.1:7700
    (create and call them from Python or libgild: see docs/actors.md)
"""
import asyncio

import gild


@gild.actor
class Counter:
    """Counts; each instance has its own count."""

    def __init__(self, start=0):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n

    def get(self):
        return self.n


@gild.actor(max_restarts=3)
class Cache:
    """A key-value cache that is created again (empty) if its worker dies."""

    def __init__(self):
        self.data = {}

    def put(self, key, value):
        self.data[key] = value

    def get(self, key, default=None):
        return self.data.get(key, default)

    def keys(self):
        """A generator: as a stream, one key per chunk."""
        yield from sorted(self.data)


@gild.actor
class Model:
    """Weights loaded once per instance; predict is batched."""

    def __init__(self, weight=2):
        self.weight = weight  # stands for a model's weights

    @gild.function(batch=32)
    def predict(self, xs):
        """Gets a list of up to 32 inputs (one per call, in their order)
        and returns one result per input: one forward pass for them all."""
        return [x * self.weight for x in xs]


@gild.actor(concurrency=10)
class Fetcher:
    """Up to 10 of one instance's fetches in flight at once."""

    def __init__(self):
        self.n = 0

    async def fetch(self, url):
        await asyncio.sleep(0.2)  # stands for an HTTP request
        self.n += 1
        return url

    def count(self):
        return self.n
