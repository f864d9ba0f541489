"""async def functions that print while other calls of theirs run on the
same thread (tests/python/test_applogs.py): each line names its own call."""
import asyncio

import gild


@gild.function(concurrency=8)
async def achatty(tag):
    """Prints, lets the others run, prints again."""
    print("async before", tag)
    await asyncio.sleep(0.05)
    print("async after", tag)
    return tag


def plain(tag):
    print("plain", tag)
    return tag
