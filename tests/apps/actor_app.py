"""Actors for tests/python/test_actors.py: one that logs the order its
calls ran in and streams, async ones that stamp when each call started
and ended (with and without a concurrency), and one with a batched
method."""
import asyncio
import os
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


@gild.actor
class Embedder:
    """A batched method: each run gets lists, one item per call."""

    def __init__(self):
        self.seen = []  # each run as it came: [type of texts, texts, scale]

    @gild.function(batch=8)
    def embed(self, texts, scale=None):
        """[text, len(text) * scale] per call (scale given or 1)."""
        self.seen.append([type(texts).__name__, texts, scale])
        scales = scale if scale is not None else [1] * len(texts)
        return [[t, len(t) * k] for t, k in zip(texts, scales)]

    def runs(self):
        return self.seen

    def until_file(self, path, limit_s):
        """Holds the actor until the file path exists (True), or limit_s
        seconds (False): a gate the test opens."""
        end = time.monotonic() + limit_s
        while not os.path.exists(path):
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)
        return True


def ping():
    """A plain function: answered once the calls sent before it are in."""
    return "pong"
