"""async def example: I/O-bound calls interleave on one worker.

    build/gild serve examples/aio.py --listen tcp://127.0.0.1:7700 --workers 1
    build/gildctl call tcp://127.0.0.1:7700 fetch '"https://example.com"'
"""
import asyncio

import gild


@gild.function(concurrency=100)
async def fetch(url):
    """Pretends to fetch url: awaits 0.2 s (a real app would await an HTTP
    client here). Up to 100 calls wait at once on one worker."""
    await asyncio.sleep(0.2)
    return {"url": url, "status": 200}


async def slow_lookup(key):
    """Without concurrency=..., calls of an async def still run on the loop,
    one at a time per worker."""
    await asyncio.sleep(0.05)
    return key.upper()


def deadline_aware(n):
    """gild.context() tells a call its deadline and whether it was
    cancelled, so a long loop can stop cleanly and return what it has."""
    ctx = gild.context()
    total = 0
    for i in range(n):
        if ctx.cancelled():
            break
        total += i
    return {"total": total, "time_left": ctx.time_left()}
