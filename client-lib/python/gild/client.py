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

# Most calls map, starmap and submit_many put in one message by default.
# Smaller batches keep workers busy while earlier replies travel (the
# server answers a batch when its last call is done); larger ones pay the
# transport less often.
BATCH_SIZE = 64


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
    ``gild.context().cancelled()`` become true). ``call_id`` is None until
    the call is sent (a submit from a done-callback is sent when the
    callbacks of the results that came together have run)."""

    def __init__(self, client, call_id):
        super().__init__()
        self._client = client
        self.call_id = call_id

    def cancel(self):
        if not super().cancel():
            return False
        if self.call_id is not None:  # else it will not be sent
            self._client._cancel(self.call_id)
        return True

    def _gild_settle(self, outcome):
        code, value, error = outcome
        try:
            if code == _native.OK:
                self.set_result(value)
            else:
                c, message, python_type, traceback = error
                self.set_exception(errors.from_error(
                    _native.code_name(c), message, python_type, traceback))
        except concurrent.futures.InvalidStateError:
            pass  # cancelled meanwhile


class _Inbox:
    """Where the poller thread leaves the outcomes of the calls that one
    map/starmap sent: no Future per call, and one wake-up per batch of
    replies rather than one per call."""

    def __init__(self):
        self.cond = threading.Condition(threading.Lock())
        self.ready = []    # (call_id, outcome), in arrival order
        self.closed = False  # the map ended: outcomes are dropped
        self.lost = None     # the client was closed: the error to raise

    def put(self, got):
        with self.cond:
            if not self.closed:
                self.ready.extend(got)
                self.cond.notify()

    def take(self):
        """Every outcome arrived so far, waiting for at least one."""
        with self.cond:
            while not self.ready and self.lost is None:
                self.cond.wait()
            if not self.ready:
                raise self.lost
            got, self.ready = self.ready, []
        return got

    def fail(self, error):
        with self.cond:
            self.lost = error
            self.cond.notify()


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


_KEEP = object()  # Function.options: leave this option as it is


class Actor:
    """A handle on a remote actor. ``h.incr`` (or ``h.method("incr")``)
    is a handle on its method ``incr``: ``h.incr(1)`` calls it and returns
    its result; ``h.incr.submit(1)`` returns a Future, ``await
    h.incr.acall(1)`` awaits it, ``h.ticks.stream()`` iterates over a
    generator method's yields. The calls one client makes to one actor
    start in the order it made them."""

    def __init__(self, client, actor_id, class_name):
        self._client = client
        self.actor_id = actor_id
        self.class_name = class_name

    def method(self, name):
        """The handle on method name (also for a name this handle's own
        attributes hide, such as ``actor_id``)."""
        if not isinstance(name, str):
            raise TypeError(f"a method name is a str, not "
                            f"{type(name).__name__}")
        return ActorMethod(self, name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return ActorMethod(self, name)

    def __repr__(self):
        return f"<gild.Actor {self.class_name} {self.actor_id}>"


class ActorMethod:
    """A handle on one method of a remote actor (``h.incr``). Calling it
    calls the method; ``submit``, ``acall``, ``stream`` and ``astream`` work
    as a Function's. Every keyword argument reaches the method: the call
    options are the handle's, set with ``options()``."""

    __slots__ = ("actor", "name", "timeout", "window")

    def __init__(self, actor, name, timeout=None, window=64):
        self.actor = actor
        self.name = name
        self.timeout = timeout  # seconds; None: the client's default
        self.window = window    # chunks of a stream in flight

    def options(self, *, timeout=_KEEP, window=_KEEP):
        """A handle on the same method with these call options changed
        (as Function.options)."""
        if timeout is not _KEEP:
            _ms(timeout)  # refuses a negative one now
        return ActorMethod(self.actor, self.name,
                           self.timeout if timeout is _KEEP else timeout,
                           self.window if window is _KEEP else window)

    def __call__(self, *args, **kwargs):
        c = self.actor._client
        return _value(c._n().actor_call(self.actor.actor_id, self.name,
                                        args, kwargs,
                                        _ms(self.timeout, c._timeout)))

    def submit(self, *args, **kwargs):
        """Sends the call; returns a concurrent.futures.Future (cancel()
        also cancels it on the server)."""
        c = self.actor._client
        call_id = c._n().actor_submit(
            self.actor.actor_id, self.name, args, kwargs,
            max(0, _ms(self.timeout, c._timeout)))
        return c._future(call_id)

    async def acall(self, *args, **kwargs):
        return await asyncio.wrap_future(self.submit(*args, **kwargs))

    def stream(self, *args, **kwargs):
        """Calls a generator method as a stream: an iterator over its
        yields as they come, with a Function's flow control (window)."""
        return self.actor._client._stream(self.name, args, kwargs,
                                          self.window, self.timeout,
                                          self.actor.actor_id)

    def astream(self, *args, **kwargs):
        """``async for chunk in h.ticks.astream(...)``."""
        return self.actor._client._astream(self.name, args, kwargs,
                                           self.window, self.timeout,
                                           self.actor.actor_id)

    def __repr__(self):
        return (f"<gild.ActorMethod {self.actor.class_name}.{self.name} "
                f"of {self.actor.actor_id}>")


def _check_trace(traceparent, tracestate):
    """Raises ValueError (TypeError for a non-str) unless traceparent and
    tracestate are a trace context the server takes (proto/trace.h)."""
    for name, v in (("traceparent", traceparent), ("tracestate", tracestate)):
        if v is not None and not isinstance(v, str):
            raise TypeError("%s must be a str or None, not %s"
                            % (name, type(v).__name__))
    if traceparent is None:
        if tracestate:
            raise ValueError("tracestate without a traceparent")
        return
    parts = traceparent.split("-")
    if (len(traceparent) != 55 or len(parts) != 4 or parts[0] != "00" or
            [len(p) for p in parts] != [2, 32, 16, 2] or
            any(c not in "0123456789abcdef" for c in "".join(parts))):
        raise ValueError("traceparent must be 00-<32 hex>-<16 hex>-<2 hex> "
                         "(W3C Trace Context, lowercase), not %r"
                         % traceparent[:80])
    if set(parts[1]) == {"0"} or set(parts[2]) == {"0"}:
        raise ValueError("traceparent's trace id and parent id cannot be "
                         "all zeros")
    if tracestate is not None and (
            len(tracestate) > 512 or
            any(not (" " <= c <= "~" or c == "\t") for c in tracestate)):
        raise ValueError("tracestate must be at most 512 printable ASCII "
                         "characters")


class Function:
    """A handle on one function of a server (``c.function("add")`` or
    ``c.fn.add``). Calling it calls the function; ``submit``, ``map``,
    ``starmap``, ``submit_many``, ``stream``, ``acall`` and ``astream``
    are the client's, for this function. Every keyword argument reaches
    the remote function: the call options are the handle's, set with
    ``options()``."""

    __slots__ = ("_client", "name", "timeout", "window", "traceparent",
                 "tracestate")

    def __init__(self, client, name, timeout=None, window=64,
                 traceparent=None, tracestate=None):
        self._client = client
        self.name = name
        self.timeout = timeout  # seconds; None: the client's default
        self.window = window    # chunks of a stream in flight
        self.traceparent = traceparent  # W3C trace context, or None
        self.tracestate = tracestate

    def options(self, *, timeout=_KEEP, window=_KEEP, traceparent=_KEEP,
                tracestate=_KEEP):
        """A handle on the same function with these call options changed:
        timeout, the calls' deadline in seconds (None: the client's
        default); window, how many chunks of a stream may be in flight;
        traceparent and tracestate, the W3C trace context its calls carry
        (None: none), which the app reads in gild.context() and gild logs
        with the call. A traceparent must be "00-<32 hex>-<16 hex>-<2 hex>"
        (lowercase, ids not all zeros) and a tracestate at most 512
        printable ASCII characters: anything else raises ValueError here.
        The trace context goes with calls made by calling the handle,
        submit and acall."""
        if timeout is not _KEEP:
            _ms(timeout)  # refuses a negative one now
        tp = self.traceparent if traceparent is _KEEP else traceparent
        ts = self.tracestate if tracestate is _KEEP else tracestate
        _check_trace(tp, ts)
        return Function(self._client, self.name,
                        self.timeout if timeout is _KEEP else timeout,
                        self.window if window is _KEEP else window, tp, ts)

    def _trace(self):
        """The trace context as submit's keyword arguments ({}: none)."""
        if self.traceparent is None:
            return {}
        return {"traceparent": self.traceparent,
                "tracestate": self.tracestate}

    def _untraced(self, what):
        if self.traceparent is not None:
            raise TypeError(
                "%s does not carry a trace context: call the handle, or "
                "use submit or acall, to send one" % what)

    def __call__(self, *args, **kwargs):
        if self.traceparent is not None:
            return self._client._submit(self.name, args, kwargs,
                                        self.timeout,
                                        self._trace()).result()
        return self._client._call(self.name, args, kwargs, self.timeout)

    def submit(self, *args, **kwargs):
        return self._client._submit(self.name, args, kwargs, self.timeout,
                                    self._trace())

    def map(self, *iterables, ordered=True, max_in_flight=256,
            batch_size=BATCH_SIZE):
        self._untraced("map")
        return self._client.starmap(
            self.name, zip(*iterables), ordered=ordered,
            max_in_flight=max_in_flight, timeout=self.timeout,
            batch_size=batch_size)

    def starmap(self, arg_tuples, *, ordered=True, max_in_flight=256,
                batch_size=BATCH_SIZE):
        self._untraced("starmap")
        return self._client.starmap(
            self.name, arg_tuples, ordered=ordered,
            max_in_flight=max_in_flight, timeout=self.timeout,
            batch_size=batch_size)

    def submit_many(self, arg_tuples, *, batch_size=BATCH_SIZE):
        self._untraced("submit_many")
        return self._client.submit_many(self.name, arg_tuples,
                                        timeout=self.timeout,
                                        batch_size=batch_size)

    def stream(self, *args, **kwargs):
        self._untraced("stream")
        return self._client._stream(self.name, args, kwargs, self.window,
                                    self.timeout)

    async def acall(self, *args, **kwargs):
        return await asyncio.wrap_future(self.submit(*args, **kwargs))

    def astream(self, *args, **kwargs):
        self._untraced("astream")
        return self._client._astream(self.name, args, kwargs, self.window,
                                     self.timeout)

    def __repr__(self):
        return f"<gild.Function {self.name}>"


class _Functions:
    """``client.fn``: its attributes are the server's functions' handles."""

    __slots__ = ("_client",)

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._client.function(name)

    def __getitem__(self, name):
        return self._client.function(name)


class Client:
    """A connection to one or more gild servers (calls are spread over
    them). Thread-safe; use as a context manager or call ``close()``."""

    def __init__(self, urls, *, token=None, timeout=None, pickle=False,
                 tls_ca=None, tls_cert=None, tls_key=None,
                 tls_server_name=None, shm=False):
        if isinstance(urls, str):
            urls = [urls]
        if token is None:
            token = os.environ.get("GILD_TOKEN") or None
        tls = [os.fspath(f) if f is not None else os.environ.get(env) or None
               for f, env in ((tls_ca, "GILD_TLS_CA"),
                              (tls_cert, "GILD_TLS_CERT"),
                              (tls_key, "GILD_TLS_KEY"))]
        self._pickle = bool(pickle)
        self._native = _need_native().Client(list(urls), token, self._pickle,
                                              *tls, tls_server_name,
                                              bool(shm))
        self._timeout = _ms(timeout)
        self._lock = threading.Lock()
        self._futures = {}
        self._early = {}  # results polled before their future was filed
        self._work = threading.Event()
        self._poller = None
        self._poller_ident = None
        # While the poller thread runs done-callbacks: the (Call, Future)
        # of the submits they made, sent together afterwards.
        self._deferred = None
        self._closed = False

    @property
    def shm(self):
        """Whether values of 256 KiB and more go through shared memory
        (connect(..., shm=True) to a local server run with --shm)."""
        return self._n().shm_active()

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
        """The poller thread: hands results to their futures (and to the
        inboxes of maps), all the results that arrived together at once.
        The calls their done-callbacks submit meanwhile go out together
        once those callbacks have run (see submit)."""
        self._poller_ident = threading.get_ident()
        while not self._closed:
            try:
                got = self._native.poll_many(200)
            except LookupError:  # nothing in flight
                self._work.wait(0.2)
                self._work.clear()
                continue
            except ValueError:  # closed meanwhile
                return
            if got:
                self._deliver(got)
                got = None

    def _deliver(self, got):
        """On the poller thread: hands the (call_id, outcome) pairs polled
        together to their futures and inboxes. (A method of its own, so
        that nothing here keeps a future, its callbacks and what they hold
        alive while the poller waits for the next results.)"""
        futures = []
        inboxes = {}
        with self._lock:
            pop = self._futures.pop
            for call_id, outcome in got:
                to = pop(call_id, None)
                if to is None:
                    # Came before submit() could file its future.
                    self._early[call_id] = outcome
                elif type(to) is _Inbox:
                    inboxes.setdefault(to, []).append((call_id, outcome))
                else:
                    futures.append((to, outcome))
        for inbox, outcomes in inboxes.items():
            inbox.put(outcomes)
        if not futures:
            return
        self._deferred = []
        try:
            for fut, outcome in futures:
                if not fut.cancelled():
                    fut._gild_settle(outcome)
        finally:
            deferred, self._deferred = self._deferred, None
            if deferred:
                self._send_deferred(deferred)

    def _send_deferred(self, deferred):
        """On the poller thread: sends the calls that done-callbacks
        submitted, BATCH_SIZE per message; a call that cannot be sent fails
        its future with the error submit would have raised."""
        live = [(call, fut) for call, fut in deferred if not fut.cancelled()]
        for i in range(0, len(live), BATCH_SIZE):
            chunk = live[i:i + BATCH_SIZE]
            futures = [fut for _, fut in chunk]
            try:
                if self._closed:
                    raise errors.Unavailable("the client was closed")
                ids = self._native.submit_many([call for call, _ in chunk])
            except Exception as e:
                for fut in futures:
                    try:
                        fut.set_exception(e)
                    except concurrent.futures.InvalidStateError:
                        pass  # cancelled meanwhile
                continue
            for fut, call_id in zip(futures, ids):
                fut.call_id = call_id
            for fut, outcome in self._file(ids, futures):
                fut._gild_settle(outcome)
            for fut in futures:
                if fut.cancelled():  # while it was being sent
                    self._cancel(fut.call_id)

    def _start_poller(self):
        """In self._lock: starts the poller thread if it is not running."""
        if self._poller is None:
            self._poller = threading.Thread(
                target=self._poll, name="gild-poller", daemon=True)
            self._poller.start()

    def _file(self, ids, to):
        """Files the futures (to: a list, one per id) or the inbox (to: an
        _Inbox for all ids) of calls just sent, for the poller. Returns the
        (future, outcome) pairs, or for an inbox the (call_id, outcome)
        pairs, of calls whose results came before they were filed."""
        early = []
        with self._lock:
            taken = self._early.pop
            if type(to) is _Inbox:
                for call_id in ids:
                    outcome = taken(call_id, None) if self._early else None
                    if outcome is None:
                        self._futures[call_id] = to
                    else:
                        early.append((call_id, outcome))
            else:
                for call_id, fut in zip(ids, to):
                    outcome = taken(call_id, None) if self._early else None
                    if outcome is None:
                        self._futures[call_id] = fut
                    else:
                        early.append((fut, outcome))
            self._start_poller()
        self._work.set()
        return early

    # -- calls --

    def function(self, name):
        """A handle on the server's function name: calling it calls the
        function, and every keyword argument reaches it (call options are
        set with .options(timeout=..., window=...)). ``c.fn.name`` is the
        same handle."""
        if not isinstance(name, str):
            raise TypeError(f"a function name is a str, not "
                            f"{type(name).__name__}")
        return Function(self, name)

    @property
    def fn(self):
        """Handles by attribute: ``c.fn.add(1, 2)`` is
        ``c.function("add")(1, 2)``."""
        return _Functions(self)

    def call(self, fn, /, *args, timeout=None, **kwargs):
        """Calls fn(*args, **kwargs) on the server; returns its result or
        raises gild.Error (gild.RemoteError when the function raised).
        timeout is this call's deadline, not an argument of fn: to pass
        any keyword to fn, call a handle (``c.function(fn)``)."""
        return self._call(fn, args, kwargs, timeout)

    def _call(self, fn, args, kwargs, timeout):
        return _value(self._n().call(fn, args, kwargs,
                                     _ms(timeout, self._timeout)))

    def submit(self, fn, /, *args, timeout=None, **kwargs):
        """Sends fn(*args, **kwargs); returns a concurrent.futures.Future
        (so as_completed, wait and callbacks work). Called from a
        done-callback that the client's poller thread runs, it sends the
        call once the callbacks of the results that came back together
        have run, with the calls they submitted, in one message."""
        return self._submit(fn, args, kwargs, timeout)

    def _submit(self, fn, args, kwargs, timeout, trace=None):
        t = max(0, _ms(timeout, self._timeout))
        if trace:
            # Sent at once, not deferred with the poller's batch (whose
            # calls carry no trace context).
            return self._future(self._n().submit(fn, args, kwargs, t,
                                                 **trace))
        if (self._deferred is not None and
                threading.get_ident() == self._poller_ident):
            self._n()
            fut = Future(self, None)
            self._deferred.append(
                (_native.Call(fn, args, kwargs or None, t, self._pickle),
                 fut))
            return fut
        return self._future(self._n().submit(fn, args, kwargs, t))

    def _future(self, call_id):
        fut = Future(self, call_id)
        for f, outcome in self._file((call_id,), (fut,)):
            f._gild_settle(outcome)
        return fut

    def submit_many(self, fn, arg_tuples, *, timeout=None,
                    batch_size=BATCH_SIZE):
        """Sends fn(*args) for each tuple of arguments in arg_tuples, up to
        batch_size calls per message; returns their futures, in order.
        The server answers a message's calls together, when the slowest is
        done. If an item cannot be sent (a value gild cannot send), raises
        that error, naming the item, and cancels the calls already sent:
        no future is left pending."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        n = self._n()
        t = max(0, _ms(timeout, self._timeout))
        batch_size = min(batch_size, _native.MAX_BATCH)
        out = []
        items = iter(arg_tuples)
        try:
            while True:
                chunk = [(fn, a, None, t)
                         for a in itertools.islice(items, batch_size)]
                if not chunk:
                    return out
                try:
                    ids = n.submit_many(chunk)
                except (TypeError, ValueError) as e:
                    raise type(e)(_renumber(str(e), len(out))) from None
                futures = [Future(self, call_id) for call_id in ids]
                out.extend(futures)
                for f, outcome in self._file(ids, futures):
                    f._gild_settle(outcome)
        except BaseException:
            for f in out:
                f.cancel()
            raise

    def map(self, fn, *iterables, ordered=True, max_in_flight=256,
            timeout=None, batch_size=BATCH_SIZE):
        """Calls fn on each item (zip of iterables), at most max_in_flight
        at once; yields the results in input order (ordered=True) or as
        they finish. Calls go out in batches of up to batch_size per
        message: the first max_in_flight at once, then, as results come
        back, as many new calls as results came, together."""
        return self.starmap(fn, zip(*iterables), ordered=ordered,
                            max_in_flight=max_in_flight, timeout=timeout,
                            batch_size=batch_size)

    def starmap(self, fn, arg_tuples, *, ordered=True, max_in_flight=256,
                timeout=None, batch_size=BATCH_SIZE):
        """map for functions of several arguments, as itertools.starmap:
        calls fn(*args) for each tuple in arg_tuples (() for a function of
        none)."""
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        n = self._n()
        return self._starmap(n, fn, iter(arg_tuples), ordered, max_in_flight,
                             max(0, _ms(timeout, self._timeout)),
                             min(batch_size, _native.MAX_BATCH))

    def _starmap(self, n, fn, items, ordered, max_in_flight, t, batch_size):
        inbox = _Inbox()
        order = collections.deque()  # ordered: ids sent, not yet yielded
        arrived = {}                 # ordered: id -> outcome not yielded
        outstanding = set()          # ids sent whose result has not come
        islice = itertools.islice
        taken = [0]                  # items sent so far

        def send(k):
            """Sends up to k more calls, batch_size per message."""
            while k > 0:
                chunk = [(fn, a, None, t)
                         for a in islice(items, min(k, batch_size))]
                if not chunk:
                    return
                try:
                    ids = n.submit_many(chunk)
                except (TypeError, ValueError) as e:
                    raise type(e)(_renumber(str(e), taken[0])) from None
                k -= len(ids)
                taken[0] += len(ids)
                outstanding.update(ids)
                if ordered:
                    order.extend(ids)
                early = self._file(ids, inbox)
                if early:
                    inbox.put(early)

        try:
            send(max_in_flight)
            if not ordered:
                while outstanding:
                    got = inbox.take()
                    for call_id, _ in got:
                        outstanding.discard(call_id)
                    send(len(got))
                    for _, outcome in got:
                        yield _value(outcome)
                return
            while order:
                while order[0] not in arrived:
                    for call_id, outcome in inbox.take():
                        outstanding.discard(call_id)
                        arrived[call_id] = outcome
                group = []
                while order and order[0] in arrived:
                    group.append(arrived.pop(order.popleft()))
                send(len(group))
                for outcome in group:
                    yield _value(outcome)
        finally:
            inbox.closed = True
            if outstanding and not self._closed:
                for call_id in outstanding:
                    self._cancel(call_id)

    def stream(self, fn, /, *args, window=64, timeout=None, **kwargs):
        """Calls generator function fn as a stream: returns an iterator over
        its chunks as they are produced."""
        return self._stream(fn, args, kwargs, window, timeout)

    def _stream(self, fn, args, kwargs, window, timeout, actor_id=0):
        return Stream(self, self._n().stream(
            fn, args, kwargs, window, max(0, _ms(timeout, self._timeout)),
            actor_id))

    # -- exec --

    def exec(self, source, *, timeout=None, **variables):
        """Runs Python source on the server (which must run with
        --allow-exec, else gild.PermissionDenied) in a fresh namespace
        holding the keyword arguments as variables; returns the value the
        source left in ``result`` (None if it set none). An exception or a
        SyntaxError raises gild.RemoteError with the remote traceback;
        timeout as for call()."""
        return _value(self._n().exec(source, variables,
                                     _ms(timeout, self._timeout)))

    def submit_exec(self, source, *, timeout=None, filename=None,
                    **variables):
        """exec() without waiting: returns a Future (cancel() interrupts
        the running source). filename is what tracebacks show."""
        call_id = self._n().exec_submit(source, variables, filename,
                                        max(0, _ms(timeout, self._timeout)))
        return self._future(call_id)

    # -- actors --

    def actor(self, class_name, *args, name=None, detached=False, **kwargs):
        """Creates an instance of the app's @gild.actor class class_name and
        returns a handle whose attribute calls run on it remotely."""
        actor_id = _value(self._n().actor_new(
            class_name, args, kwargs, name, detached, self._timeout))
        return Actor(self, actor_id, class_name)

    def get_actor(self, name):
        """The handle of the actor created with this name (its
        class_name is the server's word; "?" from a server too old to
        say)."""
        actor_id, class_name = _value(self._n().actor_get(name,
                                                          self._timeout))
        return Actor(self, actor_id, class_name or "?")

    def destroy_actor(self, actor):
        """Destroys an actor (after the calls already sent to it)."""
        _value(self._n().actor_destroy(actor.actor_id, self._timeout))

    # -- asyncio --

    async def acall(self, fn, /, *args, timeout=None, **kwargs):
        """``await client.acall(...)``: call without blocking the loop."""
        return await asyncio.wrap_future(
            self._submit(fn, args, kwargs, timeout))

    def astream(self, fn, /, *args, window=64, timeout=None, **kwargs):
        """``async for chunk in client.astream(...)``."""
        return self._astream(fn, args, kwargs, window, timeout)

    async def _astream(self, fn, args, kwargs, window, timeout, actor_id=0):
        """The chunks of a stream, for asyncio: the loop watches the
        stream's descriptor (libgild's gild_stream_fd) and takes what has
        come without waiting, so no thread is held per stream."""
        loop = asyncio.get_running_loop()
        s = self._stream(fn, args, kwargs, window, timeout, actor_id)
        try:
            fd = s._s.fileno()
            ready = asyncio.Event()
            loop.add_reader(fd, ready.set)
            try:
                while True:
                    ready.clear()
                    try:
                        os.read(fd, 8)  # clear it before looking
                    except BlockingIOError:
                        pass
                    while True:
                        code, value, error = s._s.next(0)
                        if code == _native.OK:
                            yield value
                        elif code == _native.STREAM_END:
                            return
                        elif code == _native.DEADLINE_EXCEEDED and \
                                error is None:
                            break  # nothing yet: fd says when
                        else:
                            _raise(error)
                    await ready.wait()
            finally:
                loop.remove_reader(fd)
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
            self._early = {}
        self._native.close()
        for f in futures:
            if type(f) is _Inbox:
                f.fail(errors.Unavailable("the client was closed"))
            elif not f.done():
                try:
                    f.set_exception(
                        errors.Unavailable("the client was closed"))
                except concurrent.futures.InvalidStateError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _renumber(message, offset):
    """A submit_many error's "calls[i]: ..." with i counted from the start
    of the caller's items rather than of the batch."""
    if message.startswith("calls["):
        k = message.find("]")
        try:
            return f"item {int(message[6:k]) + offset}{message[k + 1:]}"
        except ValueError:
            pass
    return message


def connect(url_or_urls, *, token=None, timeout=None, pickle=False,
            tls_ca=None, tls_cert=None, tls_key=None, tls_server_name=None,
            shm=False):
    """Connects to a gild server (or several: a list of URLs); returns a
    Client. token: the server's --token (default: $GILD_TOKEN), sent with
    every request. timeout: default seconds for calls (None: no limit).
    pickle: send arguments that have no gild form (your classes, sets...)
    pickled, and unpickle pickled results; the server must run with
    --allow-pickle. Off by default: unpickling runs code, so only turn it on
    for a server you trust (without it, a pickled result arrives as a
    gild.Pickled holding its bytes).

    For tls+tcp:// URLs the server's certificate is always verified:
    tls_ca is the PEM file of the CA that signed it (default: $GILD_TLS_CA,
    else the system's CA bundle), and it must name the URL's host (or
    tls_server_name). tls_cert and tls_key (default: $GILD_TLS_CERT,
    $GILD_TLS_KEY) are this client's certificate and unencrypted key, for a
    server that requires one (gild serve --tls-ca); tls_key may be left out
    when the key is in the tls_cert file. A failed handshake raises
    ConnectionError saying why; an unreadable or unusable file,
    ValueError.

    shm: for an ipc:// server on this host run with --shm, values of
    256 KiB and more travel as shared memory (sealed memfds) instead of
    through the socket; elsewhere it changes nothing (Client.shm says
    whether it is in use)."""
    return Client(url_or_urls, token=token, timeout=timeout, pickle=pickle,
                  tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
                  tls_server_name=tls_server_name, shm=shm)
