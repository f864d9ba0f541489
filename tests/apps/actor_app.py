"""Actors for tests/python/test_actors.py: one that logs the order its
calls ran in and streams, and async ones that stamp when each call
started and ended (with and without a concurrency)."""
import asyncio
import time

import gild


@gild.actor
class Log:
    """Appends what each call brings; streams from its generator methods."""

    def __init__(self):
        self.seen = []

    def add(self, x):
        """Appends x; returns how many items there are now."""
        self.seen.append(x)
        return len(self.seen)

    def items(self):
        return list(self.seen)

    def ticks(self, n):
        """Yields [i, how many items the log holds] n times."""
        for i in range(n):
            yield [i, len(self.seen)]

    def ticks_then_fail(self, n):
        yield from range(n)
        raise ValueError(f"failed after {n}")


class _Stamps:
    """Async naps that stamp (time.monotonic()) their start and end, and
    count how many ran at once at most."""

    def __init__(self):
        self.running = 0
        self.peak = 0

    async def nap(self, i, seconds):
        self.running += 1
        self.peak = max(self.peak, self.running)
        start = time.monotonic()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.running -= 1
        return [i, start, time.monotonic()]

    def most_at_once(self):
        return self.peak


@gild.actor(concurrency=10)
class Overlapping(_Stamps):
    """Up to 10 naps at once."""


@gild.actor
class OneByOne(_Stamps):
    """The default: one nap at a time."""


@gild.actor(concurrency=6, max_restarts=1)
class Fragile(_Stamps):
    """Dies on request, with other calls in flight; comes back once."""

    def die(self):
        import os
        os._exit(1)

    def pid(self):
        import os
        return os.getpid()
