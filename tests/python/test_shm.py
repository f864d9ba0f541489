"""Shared memory for local clients from Python (gild.connect(..., shm=True)
to a server run with --shm, issue 18): bytes and numpy tensors of 256 KiB
to 64 MiB round-trip through memfds (the server's status counts them); a
tcp:// client is never offered it, even on loopback and when it asks."""
import os
import shutil
import sys
import tempfile
import unittest

from gildproc import ROOT, Gild

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
import gild  # noqa: E402

try:
    import numpy
except ImportError:
    numpy = None

SIZES = [256 << 10, (1 << 20) + 3, 16 << 20, 64 << 20]
ARGS = ("--shm", "--max-message", "80MiB")


def pattern(n):
    """n bytes that differ from one position to the next."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


class ShmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="gild-shm-")
        cls.ipc = "ipc://%s/g.sock" % cls.dir
        cls.srv = Gild(listen=cls.ipc, args=ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def counts(self, c):
        st = c.status()
        return st["shm_requests"], st["shm_replies"]

    def test_bytes_round_trip(self):
        with gild.connect(self.ipc, shm=True) as c:
            self.assertTrue(c.shm)
            req0, rep0 = self.counts(c)
            for n in SIZES:
                b = pattern(n)
                self.assertEqual(c.call("echo", b), b, n)
            self.assertEqual(c.call("echo", b"small"), b"small")
            req, rep = self.counts(c)
            self.assertEqual(req - req0, len(SIZES))
            self.assertEqual(rep - rep0, len(SIZES))

    @unittest.skipIf(numpy is None, "numpy is not installed")
    def test_tensors_round_trip(self):
        with gild.connect(self.ipc, shm=True) as c:
            req0, rep0 = self.counts(c)
            for n in SIZES:
                a = numpy.arange(n // 4, dtype=numpy.float32).reshape(-1, 4)
                got = c.call("echo", a)
                self.assertEqual(got.dtype, a.dtype)
                self.assertEqual(got.shape, a.shape)
                self.assertTrue(numpy.array_equal(got, a), n)
            req, rep = self.counts(c)
            self.assertEqual(req - req0, len(SIZES))
            self.assertEqual(rep - rep0, len(SIZES))

    def test_off_unless_asked(self):
        with gild.connect(self.ipc) as c:
            self.assertFalse(c.shm)
            req0, rep0 = self.counts(c)
            b = pattern(1 << 20)
            self.assertEqual(c.call("echo", b), b)
            self.assertEqual(self.counts(c), (req0, rep0))


class RemoteTest(unittest.TestCase):
    def test_tcp_never_offered(self):
        d = tempfile.mkdtemp(prefix="gild-shm-")
        srv = Gild(args=ARGS + ("--listen", "ipc://%s/g.sock" % d))
        try:
            self.assertTrue(srv.url.startswith("tcp://"))
            with gild.connect(srv.url, shm=True) as c:
                self.assertFalse(c.shm)
                b = pattern(1 << 20)
                self.assertEqual(c.call("echo", b), b)
                st = c.status()
                self.assertEqual(st["shm_requests"], 0)
                self.assertEqual(st["shm_replies"], 0)
        finally:
            self.assertEqual(srv.stop(), 0)
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
