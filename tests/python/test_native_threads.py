"""gild._native (client-lib/python/_native.c) used by many threads at once:
one client shared by threads that call, submit and open and close streams,
one stream read by several threads, and a client closed while other
threads use it. Under free-threaded CPython (3.13t) the extension runs
without the GIL and these are the races it must survive; under a GIL build
they check the same. Imports only the standard library and gild, so that
any interpreter with the extension built for it can run it."""
import os
import sys
import sysconfig
import tempfile
import threading
import time
import unittest

from gildproc import ROOT, Gild, returns, until

FEATURES = os.path.join(ROOT, "tests", "apps", "features.py")

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402
    from gild import _native as native  # noqa: E402

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
THREADS = 8
CALLS = 200
JOIN_S = 120  # no thread of these tests needs more


def run_threads(targets):
    """Starts a thread for each callable, all released at once, and joins
    them; returns the names of those still running after JOIN_S."""
    start = threading.Barrier(len(targets))

    def gated(fn):
        def run():
            start.wait(JOIN_S)
            fn()
        return run
    threads = [threading.Thread(target=gated(fn), daemon=True)
               for fn in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threads if t.is_alive()]


def open_sockets():
    """How many sockets this process has open."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink("/proc/self/fd/" + fd).startswith("socket:")
        except OSError:  # closed meanwhile
            pass
    return n


def sockets_after_close(want, timeout=JOIN_S):
    """open_sockets() once it is want, or after timeout seconds (a bound
    only a descriptor never closed reaches): nng closes a connection's
    descriptor on its reaper thread, a moment after nng_close has
    returned."""
    end = time.monotonic() + timeout
    while open_sockets() != want and time.monotonic() < end:
        time.sleep(0.01)
    return open_sockets()


def is_closed_error(e):
    """What a call on a closed client (or one of its streams) raises:
    ValueError "... client is closed" / "stream is closed"."""
    return isinstance(e, ValueError) and "closed" in str(e)


class GilTest(unittest.TestCase):
    @unittest.skipIf(SANITIZED, "the extension is tested in the plain build")
    @unittest.skipUnless(FREE_THREADED, "a free-threaded interpreter only")
    def test_import_keeps_the_gil_off(self):
        if os.environ.get("PYTHON_GIL") == "1":
            self.skipTest("PYTHON_GIL=1 turns the GIL on")
        self.assertTrue(native.Client)
        self.assertFalse(sys._is_gil_enabled())


@unittest.skipIf(SANITIZED, "the extension is tested in the plain build")
class SharedClientTest(unittest.TestCase):
    """One gild.connect() client for every thread of a test."""

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(workers=2)
        try:
            cls.c = gild.connect(cls.gild.url)
        except BaseException:
            cls.gild.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        # The replies to the Cancels of closed streams land before the
        # close (nng 1.5.2 can hang closing a socket a reply comes in
        # on): the server answers this status behind them, in order.
        cls.c.status()
        cls.c.close()
        assert cls.gild.stop() == 0

    def tearDown(self):
        if FREE_THREADED and os.environ.get("PYTHON_GIL") != "1":
            self.assertFalse(sys._is_gil_enabled())

    def test_calls_and_streams_from_many_threads(self):
        c = self.c
        results = {k: [] for k in range(THREADS)}
        chunks = {k: [] for k in range(2)}
        futures = []
        errors = []

        def caller(k):
            def run():
                try:
                    for i in range(CALLS):
                        results[k].append(c.call("add", k * 1000, i))
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)
            return run

        def streamer(k):
            # Streams read to their end, and streams closed after a few
            # chunks (the server's generator is cancelled).
            def run():
                try:
                    for n in range(20):
                        with c.stream("ticks", 5 + n, window=4) as s:
                            got = list(s)
                        chunks[k].append(got == list(range(5 + n)))
                        s = c.stream("ticks", 10**6, window=2)
                        first = [next(s) for _ in range(3)]
                        s.close()
                        chunks[k].append(first == [0, 1, 2])
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
            return run

        def submitter():
            try:
                fs = [c.submit("add", i, 1) for i in range(100)]
                futures.extend(f.result(60) for f in fs)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        alive = run_threads([caller(k) for k in range(THREADS)] +
                            [streamer(k) for k in range(2)] + [submitter])
        self.assertEqual(alive, [])
        self.assertEqual(errors, [])
        for k in range(THREADS):
            self.assertEqual(results[k], [k * 1000 + i for i in range(CALLS)])
        self.assertEqual(sum(len(r) for r in results.values()),
                         THREADS * CALLS)
        self.assertEqual([len(v) for v in chunks.values()], [40, 40])
        self.assertTrue(all(all(v) for v in chunks.values()))
        self.assertEqual(futures, [i + 1 for i in range(100)])
        self.assertEqual(c.call("add", 1, 2), 3)

    def test_one_stream_read_by_many_threads(self):
        # The native stream: one reader at a time, the others are told so;
        # every chunk reaches exactly one thread, in order.
        n = 2000
        s = self.c._n().stream("ticks", [n], None, 16)
        got = {k: [] for k in range(4)}
        errors = []

        def reader(k):
            def run():
                deadline = time.monotonic() + JOIN_S / 2
                try:
                    while time.monotonic() < deadline:
                        try:
                            code, value, error = s.next(5000)
                        except RuntimeError as e:
                            self.assertIn("another thread", str(e))
                            time.sleep(0.0001)
                            continue
                        if code == native.STREAM_END:
                            return
                        self.assertEqual((code, error), (native.OK, None))
                        got[k].append(value)
                        s.seq()
                        self.assertFalse(s.closed)
                    errors.append("reader %d ran out of time" % k)
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
            return run

        alive = run_threads([reader(k) for k in range(4)])
        self.assertEqual(alive, [])
        self.assertEqual(errors, [])
        for values in got.values():
            self.assertEqual(values, sorted(values))
        self.assertEqual(sorted(v for vs in got.values() for v in vs),
                         list(range(n)))
        self.assertEqual(s.seq(), n)
        s.close()
        self.assertTrue(s.closed)
        self.assertEqual(s.seq(), n)


@unittest.skipIf(SANITIZED, "the extension is tested in the plain build")
class CloseWhileInUseTest(unittest.TestCase):
    """A client closed by one thread while others call through it: their
    calls return their results until then, and raise the closed error
    after; nothing crashes or hangs."""

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(workers=2)

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def close_while_calling(self, client, call):
        """THREADS threads call(client, k, i) until it raises; one closes
        client once each made 20 calls. Returns (calls made, errors)."""
        made = [0] * THREADS
        ended = [None] * THREADS
        wrong = []
        warm = threading.Semaphore(0)

        def caller(k):
            def run():
                for i in range(10**6):  # bounded; ends at the close
                    try:
                        r = call(client, k, i)
                    except Exception as e:  # noqa: BLE001
                        ended[k] = e
                        break
                    if r != k * 1000 + i:
                        wrong.append((k, i, r))
                    made[k] += 1
                    if made[k] == 20:
                        warm.release()
                if made[k] < 20:
                    warm.release()
            return run

        def closer():
            for _ in range(THREADS):
                warm.acquire(timeout=JOIN_S / 2)
            client.close()

        alive = run_threads([caller(k) for k in range(THREADS)] + [closer])
        self.assertEqual(alive, [])
        self.assertEqual(wrong, [])
        return made, ended

    def test_close_while_calling(self):
        c = gild.connect(self.gild.url)
        made, ended = self.close_while_calling(
            c, lambda c, k, i: c.call("add", k * 1000, i))
        self.assertTrue(all(n >= 20 for n in made), made)
        self.assertTrue(all(is_closed_error(e) for e in ended), ended)
        self.assertRaises(ValueError, c.call, "add", 1, 2)
        c.close()

    def test_close_native_while_calling(self):
        # The native client straight: no Python-side closed flag to stop
        # the calls first, so they race with close() in the extension.
        c = native.Client([self.gild.url])

        def call(c, k, i):
            code, value, error = c.call("add", [k * 1000, i])
            if code != native.OK:
                raise AssertionError((code, error))
            return value
        made, ended = self.close_while_calling(c, call)
        self.assertTrue(all(n >= 20 for n in made), made)
        self.assertTrue(all(is_closed_error(e) for e in ended), ended)
        self.assertTrue(c.closed)
        with self.assertRaises(ValueError) as cm:
            c.in_flight()
        self.assertEqual(str(cm.exception), "client is closed")
        c.close()

    def test_close_after_busy_threads(self):
        # Threads enter and leave the client as fast as they can (a cancel
        # of an unknown id never leaves this process); then a call is in
        # flight when close() comes. close() must return without waiting
        # for that call and leave the gild_client to it, whose thread closes
        # it (and its socket) on the way out. A `busy` count that lost
        # updates (no GIL) made close() shut the gild_client under the
        # call, or never. The call is features.py's until_file: it cannot
        # end before the test opens its gate, after close() returned.
        g = Gild(app=FEATURES, workers=1)
        self.addCleanup(g.stop)
        tmp = tempfile.TemporaryDirectory(prefix="gild-threads-")
        self.addCleanup(tmp.cleanup)
        gate = os.path.join(tmp.name, "gate")
        self.addCleanup(lambda: open(gate, "a").close())  # none left waiting
        sockets = open_sockets()
        c = native.Client([g.url])
        self.assertGreater(open_sockets(), sockets)
        stop = threading.Event()
        counts = [0] * THREADS
        errors = []

        def canceller(k):
            def run():
                cancel, found = c.cancel, 0
                try:
                    while not stop.is_set() and counts[k] < 10**8:
                        for _ in range(1000):
                            found += cancel(10**9 + k)
                        counts[k] += 1000
                except Exception as e:  # noqa: BLE001
                    errors.append(e)
                if found:
                    errors.append((k, "cancel found a call"))
            return run
        timer = threading.Timer(0.5, stop.set)
        timer.start()
        alive = run_threads([canceller(k) for k in range(THREADS)])
        timer.cancel()
        self.assertEqual(alive, [])
        self.assertEqual(errors, [])
        self.assertTrue(all(n > 0 for n in counts), counts)
        self.assertEqual(c.in_flight(), 0)
        results = []
        t = threading.Thread(target=lambda: results.append(
            c.call("until_file", [gate, JOIN_S / 2])))
        t.start()
        # Running on the server: the thread is inside gild_call.
        self.assertTrue(until(lambda: c.status()[1]["in_flight"] == 1))
        self.assertTrue(returns(c.close), "close() waited for the call")
        self.assertTrue(c.closed)
        self.assertEqual(results, [])  # the call goes on
        open(gate, "w").close()
        t.join(JOIN_S)
        self.assertFalse(t.is_alive())
        self.assertEqual(results, [(native.OK, True, None)])
        self.assertEqual(sockets_after_close(sockets), sockets)
        self.assertRaises(ValueError, c.call, "until_file", [gate, 0])

    def test_close_from_many_threads(self):
        # Everyone closes at once, streams read to their end included:
        # close() runs once, the rest return.
        for _ in range(20):
            c = native.Client([self.gild.url])
            streams = [c.stream("ticks", [2]) for _ in range(4)]
            for s in streams:
                self.assertEqual([s.next(5000)[1] for _ in range(3)],
                                 [0, 1, None])
            alive = run_threads([c.close] * 4 + [s.close for s in streams])
            self.assertEqual(alive, [])
            self.assertTrue(c.closed)
            self.assertTrue(all(s.closed for s in streams))
            self.assertEqual([s.seq() for s in streams], [2] * 4)


if __name__ == "__main__":
    unittest.main()
