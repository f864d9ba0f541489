"""The asyncio loop of a gild worker whose app has ``async def`` functions.

gild-worker runs ``serve()`` in its main thread. Calls arrive through
``_gild_worker.take()``: plain functions run there and then (blocking the
loop, as they would block any event loop), async ones come back as
coroutines and run here as tasks, so up to their ``concurrency`` of them
interleave at each ``await``. An interrupt (deadline, cancel) cancels the
task: the coroutine sees ``asyncio.CancelledError`` where it awaits, and
its ``finally:`` blocks run.
"""
import asyncio
import contextvars

import _gild_worker as _w


def _finish(job_id, task):
    """Answers the call whose coroutine task ran: its result, or what it
    raised (CancelledError too: the call still ends). A task cancelled
    before its first step never ran the coroutine, and is answered all the
    same."""
    if task.cancelled():
        _w.finish(job_id, None, asyncio.CancelledError())
    elif task.exception() is not None:
        _w.finish(job_id, None, task.exception())
    else:
        _w.finish(job_id, task.result(), None)


async def _main():
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    tasks = {}

    def on_wake():
        _w.clear_wake()
        wake.set()

    loop.add_reader(_w.wake_fd(), on_wake)
    try:
        while True:
            started = _w.take()
            if started is None:  # the front end closed: nobody to answer
                break
            for job_id, coro, call in started:
                # What the task prints names its call (worker/applog.c).
                ctx = contextvars.copy_context()
                ctx.run(_w.call_var.set, call)
                task = loop.create_task(coro, context=ctx)
                tasks[job_id] = task
                task.add_done_callback(
                    lambda t, j=job_id: (_finish(j, t), tasks.pop(j, None),
                                         wake.set()))
            for job_id in _w.interrupted():
                task = tasks.get(job_id)
                if task is not None:
                    task.cancel()
            await wake.wait()
            wake.clear()
    finally:
        loop.remove_reader(_w.wake_fd())
        for task in tasks.values():
            task.cancel()


def serve():
    asyncio.run(_main())
