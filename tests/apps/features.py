"""The app the feature tests serve (tests/integration/test_features.c):
streams, batching and the call context."""
import os
import time

import gild


def pid():
    return os.getpid()


# ---- streams ----

def count(n):
    """Yields [i, time.monotonic()] for i in 0..n-1: the stamp is when the
    generator produced it, to see it pause while the client is slow."""
    for i in range(n):
        yield [i, time.monotonic()]


def count_to(n):
    """Yields 0..n-1."""
    yield from range(n)


def fail_after(n):
    """Yields 0..n-1, then raises."""
    for i in range(n):
        yield i
    raise ValueError(f"failed after {n} chunks")


def forever(path):
    """Yields forever; its finally: writes to path when it is closed."""
    try:
        i = 0
        while True:
            yield i
            i += 1
    finally:
        with open(path, "a") as f:
            f.write("closed\n")


def single(x):
    """Not a generator: as a stream, one chunk."""
    return x


def blobs(n, size):
    """A stream of n bytes values of `size` bytes: chunk i is all byte i."""
    for i in range(n):
        yield bytes([i % 256]) * size


# ---- batching ----

_batches = []


def _double(xs):
    """Records each batch's size, how long its first call waited in the
    queue and the batch size the context says; doubles each input."""
    ctx = gild.context()
    _batches.append([len(xs), ctx.queued_ms, ctx.batch_size])
    time.sleep(0.02)
    return [2 * x for x in xs]


@gild.function(batch=32, batch_wait_ms=200)
def double(xs):
    """Batched: gets a list of inputs."""
    return _double(xs)


@gild.function(batch=32, batch_wait_ms=10000)
def double_patient(xs):
    """double, waiting up to 10 s (the most allowed) for a batch to fill:
    a lone call held for that would show."""
    return _double(xs)


@gild.function(batch=8)
def wrong_length(xs):
    """Batched, but returns one result too few."""
    return xs[:-1]


@gild.function(batch=8, batch_wait_ms=50)
def tally(xs):
    """Batched, and named like the method Tally.tally: each input x comes
    back as ["function", x, the size of the batch it came in]."""
    return [["function", x, len(xs)] for x in xs]


def batches():
    """The batches double() has run in this worker: [size, queued_ms, n]."""
    return list(_batches)


_scale_runs = []


@gild.function(batch=10, batch_wait_ms=10000)
def scale(xs, ys, k=None):
    """Batched with two arguments and a keyword: each call's x * y * k (k
    given or 1). Records each run as [calls, whether k was given]."""
    _scale_runs.append([len(xs), k is not None])
    ks = k if k is not None else [1] * len(xs)
    return [x * y * kk for x, y, kk in zip(xs, ys, ks)]


def scale_runs():
    """The runs scale() has made in this worker."""
    return list(_scale_runs)


# ---- context ----

def whoami():
    """The call's context as gild.context() shows it."""
    ctx = gild.context()
    return {"request_id": ctx.request_id, "function": ctx.function,
            "time_left": ctx.time_left(), "batch_size": ctx.batch_size,
            "cancelled": ctx.cancelled(), "traceparent": ctx.traceparent,
            "tracestate": ctx.tracestate}


def until_cancelled(limit_s):
    """Loops until gild.context().cancelled() (checking it, not relying on
    the interrupt), then returns how many rounds it did."""
    ctx = gild.context()
    n = 0
    end = time.monotonic() + limit_s
    try:
        while not ctx.cancelled() and time.monotonic() < end:
            n += 1
    except gild.Interrupted:
        return -1
    return n


def until_file(path, limit_s):
    """Returns True once the file path exists (a gate the test opens when
    it has seen what it waits for), or False after limit_s seconds, so a
    test that never opens it fails instead of hanging. As a stream: that
    one chunk."""
    end = time.monotonic() + limit_s
    while not os.path.exists(path):
        if time.monotonic() >= end:
            return False
        time.sleep(0.005)
    return True


# ---- async ----

@gild.function(concurrency=100)
async def snooze(seconds):
    """Awaits asyncio.sleep; returns [start, end] stamps (time.monotonic())
    to show how calls overlap."""
    import asyncio
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return [start, time.monotonic()]


_alone = {"now": 0, "most": 0}


async def one_at_a_time(gate):
    """An async def declared without concurrency (so 1): awaits until the
    file gate exists (30 s at most) or it is cancelled, then returns how
    many of its calls this worker has had started at once at most, itself
    included."""
    import asyncio
    _alone["now"] += 1
    _alone["most"] = max(_alone["most"], _alone["now"])
    try:
        for _ in range(6000):
            if os.path.exists(gate):
                break
            await asyncio.sleep(0.005)
    finally:
        _alone["now"] -= 1
    return _alone["most"]


async def snooze_marked(seconds, path):
    """Awaits, and leaves a mark in path from its finally: when cancelled."""
    import asyncio
    try:
        await asyncio.sleep(seconds)
        return seconds
    finally:
        with open(path, "a") as f:
            f.write("finally ran\n")


# ---- actors ----

@gild.actor
class Counter:
    """A counter: each instance keeps its own count."""

    def __init__(self, start=0):
        self.n = start

    def incr(self, by=1):
        self.n += by
        return self.n

    def get(self):
        return self.n

    def where(self):
        return os.getpid()

    def upto(self, k):
        """A generator method: counts k more, yielding each count."""
        for _ in range(k):
            self.n += 1
            yield self.n

    async def aincr(self, by=1):
        """An async method: runs on the worker's loop, in turn with the
        others."""
        import asyncio
        await asyncio.sleep(0)
        self.n += by
        return self.n

    def _private(self):
        return "not callable remotely"


@gild.actor
class Tally:
    """An actor whose method has the name of a batched function."""

    def __init__(self):
        self.n = 0

    def tally(self, x):
        """Counts its own calls: ["actor", x, how many so far]."""
        self.n += 1
        return ["actor", x, self.n]

    def count(self):
        return self.n


@gild.actor
class Scaler:
    """An actor with a batched method, and an unbatched one to put between
    its calls. Each instance records its runs."""

    def __init__(self):
        self.runs = []

    @gild.function(batch=4)
    def scale(self, xs, k=None):
        """Batched: lists of inputs (and of k, when given); each x * 10
        (times k). Records the run as its size."""
        assert isinstance(xs, list), xs
        self.runs.append(len(xs))
        ks = k if k is not None else [1] * len(xs)
        return [x * 10 * kk for x, kk in zip(xs, ks)]

    def negate(self, x):
        """Not batched: x as it is; recorded as a run of 0."""
        self.runs.append(0)
        return -x

    def runs_seen(self):
        return list(self.runs)


@gild.actor(max_restarts=1)
class Phoenix:
    """Comes back once (state lost) if its worker dies."""

    def __init__(self, tag):
        self.tag = tag
        self.calls = 0

    def hit(self):
        self.calls += 1
        return [self.tag, self.calls, os.getpid()]

    def die(self):
        os._exit(1)


@gild.actor
class Mortal:
    """Gone for good if its worker dies."""

    def hit(self):
        return os.getpid()

    def die(self):
        os._exit(1)
