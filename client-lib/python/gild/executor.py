"""gild.Executor: a concurrent.futures.Executor whose calls run on gild
servers, for code written against ProcessPoolExecutor or any Executor.

    with gild.Executor("tcp://127.0.0.1:7700") as ex:
        print(list(ex.map("add", [1, 2], [3, 4])))      # [4, 6]

It keeps at most max_workers calls on the servers at once (by default,
as many as the server has workers): those are running, as in a process
pool; the others wait in the executor, where cancel() and
shutdown(cancel_futures=True) can still take them back.
"""
import atexit
import collections
import concurrent.futures
import functools
import threading
import weakref

from . import client as _client

# Executors not yet closed: at exit, the interpreter waits for their calls,
# as it does for a ThreadPoolExecutor's or a ProcessPoolExecutor's work.
_live = weakref.WeakSet()


@atexit.register
def _wait_at_exit():
    for ex in list(_live):
        ex.shutdown(wait=True)


def _target(fn, args, kwargs):
    """(name, timeout, args, kwargs) of a call of fn: a function's name, a
    gild.Function handle, a function defined at the top of a module the
    server serves (called by its name, as ProcessPoolExecutor pickles a
    function by reference), or a functools.partial of one of these."""
    if isinstance(fn, str):
        return fn, None, args, kwargs
    if isinstance(fn, _client.Function):
        return fn.name, fn.timeout, args, kwargs
    if isinstance(fn, functools.partial):
        return _target(fn.func, fn.args + args, {**fn.keywords, **kwargs})
    name = getattr(fn, "__name__", None)
    if (callable(fn) and isinstance(name, str) and name.isidentifier()
            and getattr(fn, "__qualname__", name) == name):
        return name, None, args, kwargs
    raise TypeError(
        f"gild.Executor calls the server's functions by name: {fn!r} has "
        f"none the server can serve (pass a function defined at the top of "
        f"the app's module, its name, or a gild.Function handle)")


class Executor(concurrent.futures.Executor):
    """An Executor over a gild client: ``Executor(url_or_urls,
    max_workers=None, **connect_options)`` connects with
    gild.connect(url_or_urls, **connect_options) (token, timeout, pickle,
    TLS files...).

    submit(fn, /, *args, **kwargs) takes the name of a function of the
    server, a function object of the app's module (sent by its name), a
    gild.Function handle (with its options) or a functools.partial of one
    of these. map(fn, *iterables, timeout=None, chunksize=1) and
    shutdown(wait=True, *, cancel_futures=False) mean what they mean for
    every Executor; leaving ``with`` waits for the calls.

    max_workers: how many calls it keeps on the servers at once (default:
    the server's workers times its threads per worker, times the number of
    URLs). Further calls wait in the executor: pending, so cancel()
    succeeds on them; a call sent is running, and runs to its end."""

    def __init__(self, url_or_urls, max_workers=None, **connect_options):
        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._client = _client.connect(url_or_urls, **connect_options)
        try:
            if max_workers is None:
                st = self._client.status()
                urls = 1 if isinstance(url_or_urls, str) else len(url_or_urls)
                max_workers = (max(1, len(st.get("workers", ()))) *
                               max(1, st.get("threads", 1)) * max(1, urls))
        except BaseException:
            self._client.close()
            raise
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue = collections.deque()  # (future, name, args, kwargs, timeout)
        self._running = 0      # calls sent whose result has not come
        self._shutdown = False
        self._closed = False
        _live.add(self)
        # Dropped without shutdown (and so with no call left: each holds
        # it), it closes its client, as a dropped pool ends its workers.
        # Not at exit: _wait_at_exit shuts it down first.
        weakref.finalize(self, self._client.close).atexit = False

    @property
    def client(self):
        """The gild.Client the executor calls through (closed at shutdown)."""
        return self._client

    def submit(self, fn, /, *args, **kwargs):
        name, timeout, args, kwargs = _target(fn, args, kwargs)
        fut = concurrent.futures.Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after "
                                   "shutdown")
            self._queue.append((fut, name, args, kwargs, timeout))
            ready = self._take()
        self._send(ready)
        return fut

    submit.__doc__ = concurrent.futures.Executor.submit.__doc__

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        """Returns an iterator of fn(*args) for args in zip(*iterables),
        in order, as concurrent.futures.Executor.map: every call is
        submitted at once; timeout (seconds, for the whole iteration)
        makes the iterator raise TimeoutError when a result is not there
        in time. chunksize is accepted for ProcessPoolExecutor's sake:
        the client already sends calls that go out together in one
        message."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        _target(fn, (), {})  # refuse fn before taking any item
        return super().map(fn, *iterables, timeout=timeout)

    def _take(self):
        """In self._lock: the queued calls that may go now, marked
        running (a cancelled one is dropped)."""
        ready = []
        while self._queue and self._running < self._max_workers:
            item = self._queue.popleft()
            if item[0].set_running_or_notify_cancel():
                ready.append(item)
                self._running += 1
        if not self._queue and not self._running:
            self._idle.notify_all()
        return ready

    def _send(self, ready):
        """Outside self._lock: sends the calls _take gave."""
        for fut, name, args, kwargs, timeout in ready:
            try:
                inner = self._client._submit(name, args, kwargs, timeout)
            except BaseException as e:  # a value gild cannot send...
                fut.set_exception(e)
                self._finished()
                continue
            inner.add_done_callback(functools.partial(self._settle, fut))

    def _settle(self, fut, inner):
        """A call's result came (on the client's poller thread, or on the
        thread that sent it when it was there already)."""
        try:
            e = inner.exception()
        except concurrent.futures.CancelledError as c:
            e = c
        if e is None:
            fut.set_result(inner.result())
        else:
            fut.set_exception(e)
        self._finished()

    def _finished(self):
        """A running call ended: the next may go."""
        with self._lock:
            self._running -= 1
            ready = self._take()
            close = self._shutdown and not self._running and not self._queue
        self._send(ready)
        if close:
            self._close()

    def _close(self):
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _live.discard(self)
        self._client.close()

    def shutdown(self, wait=True, *, cancel_futures=False):
        """Takes no more calls. cancel_futures: the calls still waiting in
        the executor are cancelled (those sent run to their end). wait:
        returns when every call has ended; either way the client closes
        once they have."""
        with self._lock:
            self._shutdown = True
            dropped = []
            if cancel_futures:
                dropped = [item[0] for item in self._queue]
                self._queue.clear()
            idle = not self._running and not self._queue
        for fut in dropped:
            fut.cancel()
            fut.set_running_or_notify_cancel()
        # The poller thread (a done-callback calling shutdown) cannot wait
        # for the results it is to deliver itself.
        if (wait and not idle and
                threading.get_ident() != self._client._poller_ident):
            with self._lock:
                while self._running or self._queue:
                    self._idle.wait()
            idle = True
        if idle:
            self._close()
