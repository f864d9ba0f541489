"""Functions for the latency and throughput benches (bench/loadgen.c,
bench/suite.py): the smallest calls gild can serve, so that what is measured
is gild itself. Stdlib only, and no state shared between calls, so that it
serves the same under the free-threaded Python (3.13t) as under the GIL.
"""


def noop():
    """Does nothing: a call's fixed cost."""
    return None


def echo(x):
    """Returns its argument: the cost of moving x both ways."""
    return x


def burn(steps):
    """Pure-Python CPU work: `steps` turns of an integer loop over locals.
    Returns a checksum below 1000003."""
    acc = 0
    for i in range(steps):
        acc = (acc + i * i) % 1000003
    return acc


def chunks(n):
    """A generator (gild streams it): yields 0..n-1."""
    for i in range(n):
        yield i
