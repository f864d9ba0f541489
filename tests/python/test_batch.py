"""The Python client's batches (issue 7): Client.map/starmap and
submit_many send many calls per message (gild._native's submit_many), with
the same results, errors and cancellation as one call per message."""
import os
import sys
import tempfile
import threading
import unittest

from gildproc import ROOT, Gild, until

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402 (its extension is built in the plain build)


def ceil_div(a, b):
    return -(-a // b)


def map_messages(n, max_in_flight, batch_size):
    """(fewest, most) messages a map of n calls can send (client.py
    _starmap): its first min(n, max_in_flight) calls at once, batch_size
    per message; then, whenever results come back, as many new calls as
    came. Those refills carry batch_size calls per message when results
    come back in batches of at least batch_size, and one call per message
    when they come one at a time (libgild hands over a batch reply's
    results one by one, so a poll can take part of one)."""
    first = min(n, max_in_flight)
    at_once = ceil_div(first, batch_size)
    return at_once + ceil_div(n - first, batch_size), at_once + n - first


# A sanitized build's extension cannot load into a plain interpreter; the
# plain run covers the package.
@unittest.skipIf(SANITIZED, "the Python client is tested in the plain build")
class BatchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(workers=2)
        cls.c = gild.connect(cls.gild.url)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        assert cls.gild.stop() == 0

    def sent(self):
        return self.c._native.sent()

    def settled(self):
        """Every call this client sent has come back and been handed
        over: no future or early result is left in the client."""
        return until(lambda: not self.c._futures and not self.c._early)

    def test_map_ordered_1000(self):
        m0, n0 = self.sent()
        got = list(self.c.map("add", range(1000), range(1000)))
        self.assertEqual(got, [2 * i for i in range(1000)])
        m1, n1 = self.sent()
        self.assertEqual(n1 - n0, 1000)
        # The first 256 in 4 messages of 64, then the other 744 in 12 to
        # 744 refills: 16 to 748 messages, never one per call.
        fewest, most = map_messages(1000, 256, gild.client.BATCH_SIZE)
        self.assertEqual((fewest, most), (16, 748))
        self.assertTrue(fewest <= m1 - m0 <= most, m1 - m0)
        self.assertTrue(self.settled())

    def test_map_unordered_1000(self):
        m0, n0 = self.sent()
        got = list(self.c.map("add", range(1000), range(1000),
                              ordered=False, max_in_flight=100))
        self.assertEqual(sorted(got), [2 * i for i in range(1000)])
        m1, n1 = self.sent()
        self.assertEqual(n1 - n0, 1000)
        fewest, most = map_messages(1000, 100, gild.client.BATCH_SIZE)
        self.assertEqual((fewest, most), (17, 902))
        self.assertTrue(fewest <= m1 - m0 <= most, m1 - m0)
        self.assertTrue(self.settled())

    def test_batches_counted(self):
        """All 1000 in flight at once in batches of 250: exactly 4
        messages, whatever the timing."""
        m0, n0 = self.sent()
        got = list(self.c.map("add", range(1000), range(1000),
                              max_in_flight=1000, batch_size=250))
        self.assertEqual(got, [2 * i for i in range(1000)])
        self.assertEqual((self.sent()[0] - m0, self.sent()[1] - n0),
                         (4, 1000))
        # batch_size=1: one message per call, as before batches.
        m0, n0 = self.sent()
        got = list(self.c.map("add", range(50), range(50), batch_size=1))
        self.assertEqual(got, [2 * i for i in range(50)])
        self.assertEqual((self.sent()[0] - m0, self.sent()[1] - n0),
                         (50, 50))

    def test_starmap(self):
        self.assertEqual(list(self.c.starmap("add", [(1, 2), (3, 4)])),
                         [3, 7])
        pids = set(self.c.starmap("pid", [()] * 200, ordered=False))
        self.assertTrue(1 <= len(pids) <= 2, pids)
        self.assertEqual(list(self.c.starmap("add", [])), [])

    def test_submit_many(self):
        m0, n0 = self.sent()
        fs = self.c.submit_many("add", [(i, 1) for i in range(300)],
                                batch_size=100)
        self.assertEqual([f.result(30) for f in fs],
                         [i + 1 for i in range(300)])
        self.assertEqual((self.sent()[0] - m0, self.sent()[1] - n0),
                         (3, 300))
        self.assertEqual(self.c.submit_many("add", []), [])
        self.assertTrue(self.settled())

    def test_error_fails_only_its_call(self):
        """One call of a batch raising fails its own future only."""
        args = [(i, 1) for i in range(20)]
        args[7] = ("x", 1)  # "x" + 1 raises TypeError on the server
        m0 = self.sent()[0]
        fs = self.c.submit_many("add", args)
        self.assertEqual(self.sent()[0] - m0, 1)
        for i, f in enumerate(fs):
            if i == 7:
                with self.assertRaises(gild.RemoteError) as cm:
                    f.result(30)
                self.assertEqual(cm.exception.remote_type, "TypeError")
            else:
                self.assertEqual(f.result(30), i + 1)
        # map yields the results before the failing one, then raises it.
        it = self.c.map("add", [1, 2, "x", 4], [1, 1, 1, 1])
        self.assertEqual([next(it), next(it)], [2, 3])
        with self.assertRaises(gild.RemoteError):
            next(it)
        self.assertTrue(self.settled())

    def test_unsendable_item(self):
        """A value gild cannot send, in one item: submit_many raises
        naming the item, and cancels the batch it had sent already; no
        future is left behind."""
        args = [(1, 2)] * 100 + [({1}, 2)]
        m0, n0 = self.sent()
        with self.assertRaises(TypeError) as cm:
            self.c.submit_many("add", args, batch_size=64)
        self.assertIn("item 100", str(cm.exception))
        self.assertIn("cannot send set", str(cm.exception))
        self.assertEqual((self.sent()[0] - m0, self.sent()[1] - n0),
                         (1, 64))
        self.assertTrue(self.settled())
        with self.assertRaises(TypeError) as cm:
            list(self.c.map("echo", [1] * 10 + [{1}]))
        self.assertIn("item 10", str(cm.exception))
        self.assertTrue(self.settled())
        with self.assertRaises(ValueError):
            self.c.submit_many("add", [(1, 2)], batch_size=0)
        with self.assertRaises(ValueError):
            self.c.map("add", [1], [2], max_in_flight=0)
        with self.assertRaises(TypeError):
            self.c.submit_many("add", [5])  # not a tuple of arguments
        self.assertEqual(self.c.call("add", 2, 3), 5)

    def test_native_errors(self):
        n = self.c._native
        for bad, err in (([], ValueError), ([("add",)], TypeError),
                         ([(1, ())], TypeError), (["add"], TypeError),
                         ([("add", (), None, -1)], ValueError),
                         ([("a\0b", ())], ValueError),
                         ([("add", ())] * 4097, ValueError),
                         ("ab", TypeError)):
            with self.assertRaises(err, msg=repr(bad)[:60]):
                n.submit_many(bad)
        with self.assertRaises(ValueError):
            n.poll_many(0, 0)
        # A Call converts its arguments when made.
        with self.assertRaises(TypeError):
            gild.client._native.Call("echo", ({1},))
        call = gild.client._native.Call("add", (2, 3))
        raw = gild.client._native.Client([self.gild.url])
        try:
            ids = raw.submit_many([call, call, ("add", (1, 1), None, 0)])
            got = []
            while len(got) < 3:
                got += raw.poll_many(30000)
            self.assertEqual(sorted((i, o[1]) for i, o in got),
                             list(zip(ids, [5, 5, 2])))
            with self.assertRaises(LookupError):  # none left in flight
                raw.poll_many(10)
        finally:
            raw.close()
        self.assertEqual([f.result(30) for f in
                          self.c.submit_many("add", [(4, 4)])], [8])

    def test_callbacks_coalesce(self):
        """Calls submitted by done-callbacks (on the poller thread) go out
        together, once the callbacks of the results that came together
        have run; a bad argument still raises in submit; a future
        cancelled before it was sent is never sent."""
        done = threading.Event()
        results, errors_seen, left = [], [], [1000]
        lock = threading.Lock()

        def on_done(f):
            with lock:
                results.append(f.result())
                more = left[0] > 0
                left[0] -= 1
                if len(results) == 1100:
                    done.set()
            if more:
                self.c.submit("add", 1, 1).add_done_callback(on_done)

        m0, n0 = self.sent()
        for i in range(100):
            self.c.submit("add", i, 0).add_done_callback(on_done)
        self.assertTrue(done.wait(60))
        self.assertEqual(sorted(results),
                         sorted(list(range(100)) + [2] * 1000))
        m1, n1 = self.sent()
        self.assertEqual(n1 - n0, 1100)
        # The first 100 one per message (submitted outside callbacks);
        # the 1000 the callbacks submit go BATCH_SIZE at most per message,
        # and as few as one (results that came alone). Which, depends on
        # how results arrive; the coalescing itself is checked below.
        self.assertTrue(100 + ceil_div(1000, gild.client.BATCH_SIZE) <=
                        m1 - m0 <= 1100, m1 - m0)

        got = []
        fired = threading.Event()

        def in_callback(f):
            try:
                self.c.submit("echo", {1})
            except TypeError as e:
                got.append(e)
            dropped = self.c.submit("add", 5, 5)
            got.append(dropped.call_id)
            got.append(dropped.cancel())
            got.append(self.c.submit("add", 6, 6))
            got.append(self.c.submit("add", 7, 7))
            fired.set()

        # The callback must run on the poller thread, so the call must
        # still be in flight when it is attached (a done future runs it
        # at once, here): both workers are held by another client's
        # calls until the callback is attached.
        with gild.connect(self.gild.url) as c2, \
                tempfile.TemporaryDirectory() as tmp:
            started = [os.path.join(tmp, str(i)) for i in range(2)]
            holders = [c2.submit("wait_for_cancel", 60, p) for p in started]
            self.assertTrue(until(lambda: all(map(os.path.exists, started))))
            m0, n0 = self.sent()
            first = self.c.submit("add", 1, 2)
            first.add_done_callback(in_callback)
            self.assertFalse(fired.is_set())
            for h in holders:
                h.cancel()
            self.assertTrue(fired.wait(30))
        self.assertIsInstance(got[0], TypeError)
        self.assertEqual(got[1:3], [None, True])
        self.assertEqual([f.result(30) for f in got[3:]], [12, 14])
        self.assertIsNotNone(got[3].call_id)
        # The first submit, then the two kept in one message; the
        # cancelled one never.
        self.assertEqual((self.sent()[0] - m0, self.sent()[1] - n0), (2, 3))
        self.assertTrue(self.settled())

    def test_cancel_on_early_exit(self):
        """Leaving a map early cancels the calls it still has in flight,
        queued and running: they end long before their 30 s."""
        with Gild(workers=2) as g, gild.connect(g.url) as c:
            it = c.map("wait_for_cancel", [0, 0, 30, 30, 30, 30],
                       max_in_flight=6, batch_size=2)
            self.assertEqual(next(it), "not cancelled")
            self.assertTrue(until(lambda: c.status()["in_flight"] >= 2))
            it.close()
            self.assertTrue(until(lambda: c.status()["in_flight"] == 0))
            self.assertTrue(until(lambda: not c._futures and not c._early))
            self.assertEqual(c.call("add", 1, 1), 2)

    def test_close_while_mapping(self):
        """Closing the client wakes a map waiting for results."""
        with Gild(workers=1) as g:
            c = gild.connect(g.url)
            it = c.map("wait_for_cancel", [30])
            out = []

            def consume():
                try:
                    out.append(next(it))
                except Exception as e:
                    out.append(e)
            t = threading.Thread(target=consume)
            t.start()
            with gild.connect(g.url) as c2:
                self.assertTrue(until(lambda: c2.status()["in_flight"] == 1))
            c.close()
            t.join(30)
            self.assertFalse(t.is_alive())
            self.assertIsInstance(out[0], gild.Unavailable)


if __name__ == "__main__":
    unittest.main()
