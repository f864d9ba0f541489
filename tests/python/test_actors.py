"""Actors from the Python client (issue 20, item 4): method handles with
submit (futures, in submission order), acall, stream and astream from
generator methods; @gild.actor(concurrency=K) running up to K async calls
of one actor at once; get_actor with the class's name; a batched method
getting lists (issue 20, item 7); and docs/actors.md's Python examples,
run as written."""
import asyncio
import os
import re
import sys
import tempfile
import unittest

from gildproc import ROOT, B, HANG_S, Gild
from test_python import run_block, shown_output

APPS = os.path.join(ROOT, "tests", "apps")
sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402

CLIENT = unittest.skipIf(SANITIZED,
                         "the Python client is tested in the plain build")


@CLIENT
class ActorClientTest(unittest.TestCase):
    ARGS = ()  # gild serve's, beyond the app and --workers 2

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(app=os.path.join(APPS, "actor_app.py"), workers=2,
                        args=cls.ARGS)
        cls.c = gild.connect(cls.gild.url, timeout=HANG_S)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        assert cls.gild.stop() == 0

    def test_100_submits_run_in_order(self):
        h = self.c.actor("Log")
        futures = [h.add.submit(i) for i in range(100)]
        self.assertTrue(all(isinstance(f, gild.Future) for f in futures))
        # Each call saw the calls submitted before it, and no other.
        self.assertEqual([f.result(HANG_S) for f in futures],
                         list(range(1, 101)))
        self.assertEqual(h.items(), list(range(100)))
        self.c.destroy_actor(h)

    def test_acall(self):
        h = self.c.actor("Log")

        async def main():
            return await asyncio.gather(*(h.add.acall(i) for i in range(20)))
        self.assertEqual(asyncio.run(main()), list(range(1, 21)))
        self.assertEqual(h.items(), list(range(20)))

    def test_a_generator_method_streams(self):
        h = self.c.actor("Log")
        h.add("a")
        s = h.ticks.stream(5)
        self.assertIsInstance(s, gild.Stream)
        self.assertEqual(list(s), [[i, 1] for i in range(5)])
        # A window smaller than the stream: the generator waits for the
        # reader, and every item still comes, in order.
        self.assertEqual([x for x, _ in h.ticks.options(window=2).stream(50)],
                         list(range(50)))
        # Called plainly, the whole list in one reply, as before.
        self.assertEqual(h.ticks(2), [[0, 1], [1, 1]])

        async def main():
            return [x async for x in h.ticks.astream(3)]
        self.assertEqual(asyncio.run(main()), [[0, 1], [1, 1], [2, 1]])

    def test_a_stream_keeps_its_place_among_the_calls(self):
        h = self.c.actor("Log")
        first = h.add.submit("x")
        s = h.ticks.stream(3)
        after = h.add.submit("y")
        # The stream ran after the first add and before the second.
        self.assertEqual(list(s), [[0, 1], [1, 1], [2, 1]])
        self.assertEqual([first.result(HANG_S), after.result(HANG_S)],
                         [1, 2])

    def test_a_stream_that_raises(self):
        h = self.c.actor("Log")
        got = []
        with self.assertRaises(ValueError) as cm:
            for x in h.ticks_then_fail.stream(3):
                got.append(x)
        self.assertEqual(got, [0, 1, 2])
        self.assertIsInstance(cm.exception, gild.RemoteError)
        self.assertIn("failed after 3", str(cm.exception))
        self.assertEqual(h.add("still here"), 1)

    def test_every_keyword_reaches_the_method(self):
        h = self.c.actor("Log")
        self.assertEqual(h.add(x="timeout"), 1)
        self.assertEqual(h.method("add").submit(x=2).result(HANG_S), 2)
        self.assertEqual(h.items(), ["timeout", 2])
        with self.assertRaises(TypeError):
            h.add(timeout=1)  # not an option: add has no such argument

    def test_options_timeout_sets_the_deadline(self):
        h = self.c.actor("OneByOne")
        with self.assertRaises(TimeoutError):
            h.nap.options(timeout=0.2)(0, 30)
        with self.assertRaises(TimeoutError):
            h.nap.options(timeout=0.2).submit(1, 30).result(HANG_S)
        # The actor carries on after its interrupted calls.
        self.assertEqual(h.nap(2, 0)[0], 2)

    def test_cancel_a_submitted_call(self):
        h = self.c.actor("OneByOne")
        running = h.nap.submit(0, 30)
        waiting = h.nap.submit(1, 0)
        self.assertTrue(waiting.cancel())
        self.assertTrue(running.cancel())
        self.assertEqual(h.nap(2, 0)[0], 2)

    def stamps(self, cls, n):
        h = self.c.actor(cls)
        futures = [h.nap.submit(i, 0.2) for i in range(n)]
        got = [f.result(HANG_S) for f in futures]
        self.assertEqual([i for i, _, _ in got], list(range(n)))
        return h, [(start, end) for _, start, end in got]

    def test_concurrency_10_overlaps_10_async_calls(self):
        h, spans = self.stamps("Overlapping", 10)
        # The app's own stamps: every call started before any ended, so
        # all ten were in flight at once.
        self.assertLess(max(s for s, _ in spans), min(e for _, e in spans))
        self.assertEqual(h.most_at_once(), 10)

    def test_concurrency_is_a_bound(self):
        h, spans = self.stamps("Overlapping", 25)
        self.assertEqual(h.most_at_once(), 10)
        # They started in the order they were submitted.
        starts = [s for s, _ in spans]
        self.assertEqual(starts, sorted(starts))

    def test_concurrency_1_runs_one_at_a_time(self):
        h, spans = self.stamps("OneByOne", 4)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            self.assertLessEqual(end, start)
        self.assertEqual(h.most_at_once(), 1)

    def test_worker_death_with_calls_in_flight(self):
        h = self.c.actor("Fragile")
        before = h.pid()
        naps = [h.nap.submit(i, 30) for i in range(5)]
        death = h.die.submit()
        # Past the concurrency (6): these wait for their turn, and run on
        # the instance created again once the worker died.
        waiting = [h.pid.submit() for _ in range(2)]
        for f in naps + [death]:
            with self.assertRaises(gild.WorkerLost):
                f.result(HANG_S)
        after = [f.result(HANG_S) for f in waiting]
        self.assertEqual(len(set(after)), 1)
        self.assertNotEqual(after[0], before)
        self.assertEqual(h.most_at_once(), 0)  # a fresh instance

    def test_20_submits_of_a_batched_method(self):
        h = self.c.actor("Embedder")
        with tempfile.TemporaryDirectory() as tmp:
            gate = os.path.join(tmp, "gate")
            held = h.until_file.submit(gate, HANG_S)
            texts = ["w" * (i + 1) for i in range(20)]
            futures = [h.embed.submit(t, scale=2) if i == 10 else
                       h.embed.submit(t) for i, t in enumerate(texts)]
            # One connection's requests are taken in order: once ping is
            # answered, the 20 calls wait in the actor's queue.
            self.assertEqual(self.c.call("ping"), "pong")
            open(gate, "w").close()
            self.assertTrue(held.result(HANG_S))
        # One result per input, each its own.
        self.assertEqual([f.result(HANG_S) for f in futures],
                         [[t, len(t) * (2 if i == 10 else 1)]
                          for i, t in enumerate(texts)])
        # The method saw lists, in the calls' order: batches of 8 (its
        # batch), the call with a keyword a run of its own.
        runs = h.runs()
        self.assertEqual({kind for kind, _, _ in runs}, {"list"})
        self.assertEqual([len(ts) for _, ts, _ in runs], [8, 2, 1, 5, 4])
        self.assertEqual([t for _, ts, _ in runs for t in ts], texts)
        self.assertEqual([s for _, _, s in runs],
                         [None, None, [2], None, None])
        self.c.destroy_actor(h)

    def test_get_actor_shows_the_class(self):
        h = self.c.actor("Overlapping", name="found-by-name")
        with gild.connect(self.gild.url, timeout=HANG_S) as other:
            again = other.get_actor("found-by-name")
            self.assertEqual(again.class_name, "Overlapping")
            self.assertEqual(again.actor_id, h.actor_id)
            self.assertIn("Overlapping", repr(again))
            self.assertEqual(again.nap(7, 0)[0], 7)
            with self.assertRaises(gild.NotFound):
                other.get_actor("nobody")
        self.c.destroy_actor(h)


@unittest.skipUnless(os.path.exists(os.path.join(B, "gild-worker-ft")),
                     "gild-worker-ft is not built (make PYTHON_FT_CONFIG=)")
class FreeThreadedActorClientTest(ActorClientTest):
    """The same against the free-threaded runtime: an actor's calls go to
    one thread of its worker, whose event loop interleaves its async
    ones."""
    ARGS = ("--runtime", "free-threaded", "--threads", "2")


class DecoratorTest(unittest.TestCase):
    """@gild.actor(concurrency=K) is checked where the app declares it."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
        from gild import _app
        cls.app = _app

    def test_bounds(self):
        actor = self.app.actor
        for bad in (0, -1, self.app.ACTOR_CONCURRENCY_MAX + 1):
            with self.assertRaises(ValueError, msg=bad):
                actor(concurrency=bad)
        for bad in (True, 2.0, "2"):
            with self.assertRaises(TypeError, msg=bad):
                actor(concurrency=bad)

    def test_needs_async_methods(self):
        class Plain:
            def f(self):
                pass
        with self.assertRaises(TypeError) as cm:
            self.app.actor(concurrency=2)(Plain)
        self.assertIn("async def", str(cm.exception))

        class Async:
            async def f(self):
                pass
        self.assertIs(self.app.actor(concurrency=2)(Async), Async)
        self.assertEqual(Async.__gild_actor__,
                         {"max_restarts": 0, "concurrency": 2})

    def test_the_maximum_is_gild_limits_h(self):
        with open(os.path.join(ROOT, "proto", "gild_limits.h")) as f:
            m = re.search(r"^#define GILD_ACTOR_CONCURRENCY_MAX (\d+)$",
                          f.read(), re.M)
        self.assertEqual(int(m.group(1)), self.app.ACTOR_CONCURRENCY_MAX)


@CLIENT
class DocsTest(unittest.TestCase):
    """docs/actors.md's Python client blocks (those that connect) run as
    written against examples/actors.py and print what the page shows, by
    test_python.DocsTest's convention."""

    def test_client_blocks(self):
        with open(os.path.join(ROOT, "docs", "actors.md")) as f:
            blocks = [b for b in re.findall(r"```python\n(.*?)```", f.read(),
                                            re.S)
                      if "gild.connect(" in b]
        self.assertGreaterEqual(len(blocks), 2)
        g = Gild(app=os.path.join(ROOT, "examples", "actors.py"), workers=2)
        try:
            for code in blocks:
                p = run_block(code, g.url)
                self.assertEqual(p.returncode, 0, f"{code}\n{p.stderr}")
                self.assertEqual(p.stdout.splitlines(), shown_output(code),
                                 f"the output of\n{code}")
        finally:
            self.assertEqual(g.stop(), 0)


if __name__ == "__main__":
    unittest.main()
