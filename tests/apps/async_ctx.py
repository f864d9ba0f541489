"""App for tests/python/test_trace.py: gild.context() inside async def."""
import asyncio

import gild


@gild.function(concurrency=8)
async def actx(seconds):
    """Awaits, then says what gild.context() says in its task: interleaved
    with the others, each must see its own call."""
    await asyncio.sleep(seconds)
    ctx = gild.context()
    left = ctx.time_left()
    return [ctx.request_id, ctx.function, ctx.traceparent,
            None if left is None else left > 0, ctx.batch_size]
