"""async def generators (issue 20): streamed chunk by chunk, or returned
as a list, in an app served by plain job threads and in one served by
asyncio loops (it has async def functions); closing the stream or its
deadline stops the generator, whose finally: runs."""
import os
import sys
import tempfile
import time
import unittest

from gildproc import ROOT, B, Gild

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402 (its extension is built in the plain build)

FT = os.path.exists(os.path.join(B, "gild-worker-ft"))
APPS = {"threads": os.path.join(ROOT, "tests", "apps", "agen.py"),
        "asyncio": os.path.join(ROOT, "tests", "apps", "agen_loop.py")}


def finally_ran(path, timeout=10):
    """Whether path says "finally ran" within timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path) and "finally ran" in open(path).read():
            return True
        time.sleep(0.02)
    return False


@unittest.skipIf(SANITIZED, "the Python client is tested in the plain build")
class AsyncGeneratorTest(unittest.TestCase):
    def check(self, app, args=()):
        with Gild(app=APPS[app], workers=1, args=args) as g, \
                gild.connect(g.url, timeout=60) as c, \
                tempfile.TemporaryDirectory() as tmp:
            want = [[i, "aticks"] for i in range(5)]
            with c.stream("aticks", 5, 0.01) as s:
                self.assertEqual(list(s), want)
            self.assertEqual(c.call("aticks", 5), want)  # not streamed
            # A window of 1: every chunk waits for the client.
            fn = c.function("aticks").options(window=1)
            self.assertEqual(list(fn.stream(20)),
                             [[i, "aticks"] for i in range(20)])
            # Closed by the client after 3 chunks: cancelled on the server.
            path = os.path.join(tmp, "closed")
            with c.stream("aforever", path) as s:
                self.assertEqual([next(s) for _ in range(3)], [0, 1, 2])
            self.assertTrue(finally_ran(path), "finally: did not run")
            # Its deadline ends it.
            path = os.path.join(tmp, "deadline")
            with self.assertRaises(gild.DeadlineExceeded):
                for _ in c.function("aforever").options(timeout=0.3).stream(
                        path):
                    pass
            self.assertTrue(finally_ran(path), "finally: did not run")
            self.assertEqual(c.call("aticks", 1), [[0, "aticks"]])

    def test_job_threads(self):
        self.check("threads")

    def test_asyncio_loops(self):
        self.check("asyncio")

    @unittest.skipUnless(FT, "gild-worker-ft is not built")
    def test_free_threaded(self):
        self.check("threads", ("--runtime", "free-threaded", "--threads", "2"))
        self.check("asyncio", ("--runtime", "free-threaded", "--threads", "2"))


if __name__ == "__main__":
    unittest.main()
