"""App for tests/python/test_agen.py: async def generators, in an app
with no other async def (so served by plain job threads)."""
import asyncio

import gild


async def aticks(n, delay=0.0):
    """Yields [i, the function gild.context() names] for i in 0..n-1,
    awaiting delay seconds before each."""
    for i in range(n):
        await asyncio.sleep(delay)
        yield [i, gild.context().function]


async def aforever(path):
    """Yields 0, 1, 2... every 10 ms until stopped; its finally: writes
    "finally ran" to path."""
    try:
        i = 0
        while True:
            await asyncio.sleep(0.01)
            yield i
            i += 1
    finally:
        with open(path, "a") as f:
            f.write("finally ran\n")
