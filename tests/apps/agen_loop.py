"""App for tests/python/test_agen.py: agen.py's async generators, defined
here (an app exports the functions its own module defines) beside an async
def function, so that its workers serve with asyncio loops."""
import os

exec(compile(open(os.path.join(os.path.dirname(__file__), "agen.py")).read(),
             os.path.join(os.path.dirname(__file__), "agen.py"), "exec"))


async def nap(seconds):
    """An async def function: makes this app's workers run asyncio loops."""
    import asyncio
    await asyncio.sleep(seconds)
    return seconds
