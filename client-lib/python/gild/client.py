"""The gild client: call functions of a gild server from Python.

    import gild
    with gild.connect("tcp://127.0.0.1:7700") as c:
        print(c.call("add", 1, 2))                 # 3
        fut = c.submit("sleep", 0.1)               # a concurrent.futures.Future
        print(fut.result())
        for chunk in c.stream("count_to", 5):      # a generator's values, as they come
            print(chunk)

Everything blocking happens in the C extension (gild._native, over libgild)
with the GIL released, so client threads run in parallel.
"""
import asyncio
import collections
import concurrent.futures
import itertools
import os
import threading

from . import errors

# The C extension, imported on first use: an app's worker imports this
# package for its decorators and never needs the client.
_native = None


def _need_native():
    global _native
    if _native is None:
        try:
            from . import _native as n
        except ImportError as e:
            raise ImportError(
                "gild's C extension (gild._native) is not built: run "
                f"`make` (or pip install ./client-lib/python): {e}") from e
        _native = n
    return _native


def _ms(seconds, default=-1):
    """Seconds (float, or None for none) as the milliseconds libgild takes."""
    if seconds is None:
        return default
    if seconds < 0:
        raise ValueError(f"timeout must be >= 0 seconds, not {seconds!r}")
    return max(1, int(seconds * 1000))


def _raise(error):
    code, message, python_type, traceback = error
    raise errors.from_error(_native.code_name(code), message, python_type,
                            traceback)


def _value(outcome):
    code, value, error = outcome
    if code != _native.OK:
        _raise(error)
    return value


class Future(concurrent.futures.Future):
    """A submitted call. ``cancel()`` also asks the server to cancel it: a
    queued call is dropped, a running one interrupted (it sees
    ``gild.context().cancelled()`` become true)."""

    def __init__(self, client, call_id):
        super().__init__()
        self._client = client
        self.call_id = call_id

    def cancel(self):
        if not super().cancel():
            return False
        self._client._cancel(self.call_id)
        return True


class Stream:
    """An iterator over the chunks of a streaming call, in order. Reading it
    slowly slows the generator down (backpressure); ``close()`` (or leaving a
    ``with`` block, or dropping it) before the end cancels the stream."""

    def __init__(self, client, native_stream):
        self._client = client
        self._s = native_stream
        self._done = False

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        code, value, error = self._s.next(-1)
        if code == _native.STREAM_END:
            self._done = True
            raise StopIteration
        if code != _native.OK:
            self._done = True
            _raise(error)
        return value

    @property
    def seq(self):
        """How many chunks were received so far."""
        return self._s.seq()

    def close(self):
        self._done = True
        self._s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self._s.close()
        except Exception:
            pass


class Actor:
    """A handle on a remote actor: ``h.method(*args, **kwargs)`` runs that
    method of the instance on the server and returns its result."""

    def __init__(self, client, actor_id, class_name):
        self._client = client
        self.actor_id = actor_id
        self.class_name = class_name

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)

        def remote(*args, timeout=None, **kwargs):
            return _value(self._client._n().actor_call(
                self.actor_id, method, args, kwargs,
                _ms(timeout, self._client._timeout)))
        remote.__name__ = method
        return remote

    def __repr__(self):
        return f"<gild.Actor {self.class_name} {self.actor_id}>"


class Client:
    """A connection to one or more gild servers (calls are spread over
    them). Thread-safe; use as a context manager or call ``close()``."""

    def __init__(self, urls, *, token=None, timeout=None, tls_ca=None,
                 tls_cert=None, tls_key=None, tls_server_name=None):
        if isinstance(urls, str):
            urls = [urls]
        if token is None:
            token = os.environ.get("GILD_TOKEN") or None
        tls = [os.fspath(f) if f is not None else os.environ.get(env) or None
               for f, env in ((tls_ca, "GILD_TLS_CA"),
                              (tls_cert, "GILD_TLS_CERT"),
                              (tls_key, "GILD_TLS_KEY"))]
        self._native = _need_native().Client(list(urls), token, *tls,
                                              tls_server_name)
        self._timeout = _ms(timeout)
        self._lock = threading.Lock()
        self._futures = {}
        self._early = {}  # results polled before their future was filed
        self._work = threading.Event()
        self._poller = None
        self._closed = False

    # -- plumbing --

    def _n(self):
        if self._closed:
            raise ValueError("the gild client is closed")
        return self._native

    def _cancel(self, call_id):
        try:
            self._native.cancel(call_id)
        except Exception:
            pass

    def _poll(self):
        """The poller thread: hands results to their futures."""
        while not self._closed:
            try:
                got = self._native.poll(200)
            except LookupError:  # nothing in flight
                self._work.wait(0.2)
                self._work.clear()
                continue
            except ValueError:  # closed meanwhile
                return
            if got is None:
                continue
            call_id, outcome = got
            with self._lock:
                fut = self._futures.pop(call_id, None)
                if fut is None:
                    # Came before submit() could file its future.
                    self._early[call_id] = outcome
                    continue
            self._settle(fut, outcome)

    @staticmethod
    def _settle(fut, outcome):
        code, value, error = outcome
        if fut.cancelled():
            return
        if code == _native.OK:
            fut.set_result(value)
        else:
            c, message, python_type, traceback = error
            fut.set_exception(errors.from_error(
                _native.code_name(c), message, python_type, traceback))

    # -- calls --

    def call(self, fn, *args, timeout=None, **kwargs):
        """Calls fn(*args, **kwargs) on the server; returns its result or
        raises gild.Error (gild.RemoteError when the function raised)."""
        return _value(self._n().call(fn, args, kwargs,
                                     _ms(timeout, self._timeout)))

    def submit(self, fn, *args, timeout=None, **kwargs):
        """Sends fn(*args, **kwargs); returns a concurrent.futures.Future
        (so as_completed, wait and callbacks work)."""
        call_id = self._n().submit(fn, args, kwargs,
                                   max(0, _ms(timeout, self._timeout)))
        fut = Future(self, call_id)
        with self._lock:
            early = self._early.pop(call_id, None)
            if early is None:
                self._futures[call_id] = fut
            if self._poller is None:
                self._poller = threading.Thread(
                    target=self._poll, name="gild-poller", daemon=True)
                self._poller.start()
        self._work.set()
        if early is not None:
            self._settle(fut, early)
        return fut

    def map(self, fn, *iterables, ordered=True, max_in_flight=256,
            timeout=None):
        """Calls fn on each item (zip of iterables), at most max_in_flight
        at once; yields the results in input order (ordered=True) or as
        they finish."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        items = iter(zip(*iterables))
        pending = collections.deque()
        waiting = set()
        try:
            for args in itertools.islice(items, max_in_flight):
                f = self.submit(fn, *args, timeout=timeout)
                pending.append(f)
                waiting.add(f)
            while waiting:
                if ordered:
                    f = pending.popleft()
                    result = f.result()
                    waiting.discard(f)
                else:
                    done, _ = concurrent.futures.wait(
                        waiting, return_when=concurrent.futures.FIRST_COMPLETED)
                    f = done.pop()
                    waiting.discard(f)
                    result = f.result()
                for args in itertools.islice(items, 1):
                    nf = self.submit(fn, *args, timeout=timeout)
                    pending.append(nf)
                    waiting.add(nf)
                yield result
        finally:
            for f in waiting:
                f.cancel()

    def stream(self, fn, *args, window=64, timeout=None, **kwargs):
        """Calls generator function fn as a stream: returns an iterator over
        its chunks as they are produced."""
        return Stream(self, self._n().stream(
            fn, args, kwargs, window, max(0, _ms(timeout, self._timeout))))

    # -- actors --

    def actor(self, class_name, *args, name=None, detached=False, **kwargs):
        """Creates an instance of the app's @gild.actor class class_name and
        returns a handle whose attribute calls run on it remotely."""
        actor_id = _value(self._n().actor_new(
            class_name, args, kwargs, name, detached, self._timeout))
        return Actor(self, actor_id, class_name)

    def get_actor(self, name):
        """The handle of the actor created with this name."""
        return Actor(self, _value(self._n().actor_get(name, self._timeout)),
                     "?")

    def destroy_actor(self, actor):
        """Destroys an actor (after the calls already sent to it)."""
        _value(self._n().actor_destroy(actor.actor_id, self._timeout))

    # -- asyncio --

    async def acall(self, fn, *args, timeout=None, **kwargs):
        """``await client.acall(...)``: call without blocking the loop."""
        return await asyncio.wrap_future(
            self.submit(fn, *args, timeout=timeout, **kwargs))

    async def astream(self, fn, *args, window=64, timeout=None, **kwargs):
        """``async for chunk in client.astream(...)``."""
        loop = asyncio.get_running_loop()
        s = self.stream(fn, *args, window=window, timeout=timeout, **kwargs)
        done = object()
        try:
            while True:
                chunk = await loop.run_in_executor(None, next, s, done)
                if chunk is done:
                    return
                yield chunk
        finally:
            s.close()

    # -- the server --

    def status(self):
        """The server's status as a dict (workers, queue depth, ...)."""
        return _value(self._n().status(10000))

    def ping(self):
        _value(self._n().ping(10000))

    def close(self):
        if self._closed:
            return
        self._closed = True
        with self._lock:
            futures, self._futures = list(self._futures.values()), {}
        self._native.close()
        for f in futures:
            if not f.done():
                f.set_exception(errors.Unavailable("the client was closed"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(url_or_urls, *, token=None, timeout=None, tls_ca=None,
            tls_cert=None, tls_key=None, tls_server_name=None):
    """Connects to a gild server (or several: a list of URLs); returns a
    Client. token: the server's --token (default: $GILD_TOKEN), sent with
    every request. timeout: default seconds for calls (None: no limit).

    For tls+tcp:// URLs the server's certificate is always verified:
    tls_ca is the PEM file of the CA that signed it (default: $GILD_TLS_CA,
    else the system's CA bundle), and it must name the URL's host (or
    tls_server_name). tls_cert and tls_key (default: $GILD_TLS_CERT,
    $GILD_TLS_KEY) are this client's certificate and unencrypted key, for a
    server that requires one (gild serve --tls-ca); tls_key may be left out
    when the key is in the tls_cert file. A failed handshake raises
    ConnectionError saying why; an unreadable or unusable file,
    ValueError."""
    return Client(url_or_urls, token=token, timeout=timeout, tls_ca=tls_ca,
                  tls_cert=tls_cert, tls_key=tls_key,
                  tls_server_name=tls_server_name)
