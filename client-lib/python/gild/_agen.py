"""``async def`` generators served like generators (gild-worker only).

A call of an async generator function runs on the worker's job thread as a
plain generator does: as a stream, each value it yields is a chunk, sent
as the client's window allows; without a stream, the list of its values.
Its steps run on one event loop per worker process, in a thread of its own
(started on first use, after the fork), so it may await anything asyncio
offers, while the job thread waits for each value in short slices: a
deadline or a cancel interrupts the wait, and the step is then cancelled
(``asyncio.CancelledError`` at the generator's await, its ``finally:``
blocks run). Each step runs in a task whose context names the call, so
``gild.context()`` and the app's output inside it work as in the call.
"""
import asyncio
import concurrent.futures
import threading

import _gild_worker as _w

_loop = None
_lock = threading.Lock()
# How long the job thread waits for a step at a time: an interrupt (an
# exception raised into that thread) is seen between two waits.
_SLICE_S = 0.05


def _runner():
    """The process's loop for async generators, started on first use."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="gild-agen",
                             daemon=True).start()
            _loop = loop
        return _loop


async def _step(agen, call):
    _w.call_var.set(call)  # this task's context only
    return await agen.__anext__()


async def _close(agen, call):
    _w.call_var.set(call)
    while agen.ag_running:  # a step being cancelled: let it end first
        await asyncio.sleep(0)
    await agen.aclose()


def _wait(fut):
    while True:
        try:
            return fut.result(_SLICE_S)
        except concurrent.futures.TimeoutError:
            continue


def iterate(agen):
    """A generator of agen's values, stepping it on the process's loop."""
    loop = _runner()
    call = _w.context_info()
    try:
        while True:
            fut = asyncio.run_coroutine_threadsafe(_step(agen, call), loop)
            try:
                item = _wait(fut)
            except StopAsyncIteration:
                return
            except BaseException:
                fut.cancel()
                raise
            yield item
    finally:
        _wait(asyncio.run_coroutine_threadsafe(_close(agen, call), loop))
