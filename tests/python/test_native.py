"""gild._native (client-lib/python/_native.c), the C extension over libgild,
against the real server: values, errors, submit/wait/poll/cancel, the GIL,
streams, actors and closing. Loads the extension straight from
$B/python/gild/, so it does not depend on the pure-Python package."""
import importlib.machinery
import importlib.util
import math
import os
import signal
import sys
import tempfile
import threading
import time
import unittest

from gildproc import ROOT, B, HANG_S, Gild, returns, until

FEATURES = os.path.join(ROOT, "tests", "apps", "features.py")
SANITIZED = bool(os.environ.get("SANITIZE"))


def load_native():
    """gild._native from $B/python/gild (`make` builds it); None in a
    sanitized build, which the plain interpreter cannot load."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    path = os.path.join(B, "python", "gild", "_native" + suffix)
    if SANITIZED:
        return None
    if "gild._native" in sys.modules:
        return sys.modules["gild._native"]
    loader = importlib.machinery.ExtensionFileLoader("gild._native", path)
    spec = importlib.util.spec_from_file_location(
        "gild._native", path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


native = load_native()
try:
    import numpy as np
except ImportError:
    np = None

skip_native = unittest.skipIf(
    native is None, "the extension is tested in the plain build")
need_numpy = unittest.skipIf(np is None, "numpy is not installed")
# Under a preloaded AddressSanitizer (B=build-san LD_PRELOAD=libasan.so...)
# freed memory is quarantined: RSS is no measure of leaks then.
skip_asan = unittest.skipIf("asan" in os.environ.get("LD_PRELOAD", ""),
                            "RSS grows under AddressSanitizer")


def running(client):
    """How many calls the server is running (its status's in_flight)."""
    code, st, _ = client.status()
    return st["in_flight"] if code == native.OK else -1


def settle(client):
    """Lets replies still on their way arrive before the client is closed:
    nng 1.5.2 sometimes hangs in nng_close (under gild_close) when a reply
    comes in while a socket closes, and a Cancel (sent by Stream.close on a
    stream that still runs) always gets one. The server answers a status
    request behind every reply it sent before on the same connection (it
    reads one request at a time and sends in order, the client reads in
    order), so once that answer is in, they are too."""
    assert client.status()[0] == native.OK


def wait_for_closed(test, path):
    """Waits for tests/apps/features.py's forever(path) to write "closed"
    (its generator was closed); removes path."""
    try:
        if not until(lambda: os.path.exists(path) and
                     "closed" in open(path).read()):
            test.fail("the generator was not closed")
    finally:
        if os.path.exists(path):
            os.unlink(path)


class Gate:
    """A file that tests/apps/features.py's until_file(path, limit_s) waits
    for: a call that cannot end before the test opens it (or gives up with
    False after limit_s, so a test that never opens it fails)."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="gild-native-")
        self.path = os.path.join(self.dir.name, "gate")

    def args(self, limit_s=HANG_S / 2):
        return [self.path, limit_s]

    def open(self):
        open(self.path, "w").close()

    def shut(self):
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.open()  # nothing is left waiting
        self.dir.cleanup()


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


class ServerCase(unittest.TestCase):
    """One server (app, workers, args) and one client per test class."""
    app = os.path.join(ROOT, "examples", "app.py")
    workers = 2
    args = ()

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(app=cls.app, workers=cls.workers, args=cls.args)
        cls.c = native.Client([cls.gild.url])

    @classmethod
    def tearDownClass(cls):
        settle(cls.c)
        cls.c.close()
        assert cls.gild.stop() == 0

    def ok(self, outcome):
        """The value of an OK outcome."""
        code, value, error = outcome
        self.assertEqual((code, error), (native.OK, None),
                         native.code_name(code))
        return value

    def echo(self, value):
        return self.ok(self.c.call("echo", [value]))


@skip_native
class ModuleTest(unittest.TestCase):
    def test_codes(self):
        self.assertEqual(native.STREAM_END, -1)
        expected = {"OK": 0, "CANCELLED": 1, "UNKNOWN": 2,
                    "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
                    "NOT_FOUND": 5, "ALREADY_EXISTS": 6,
                    "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
                    "FAILED_PRECONDITION": 9, "UNIMPLEMENTED": 12,
                    "INTERNAL": 13, "UNAVAILABLE": 14, "UNAUTHENTICATED": 16,
                    "WORKER_LOST": 100, "PYTHON_ERROR": 101}
        for name, code in expected.items():
            self.assertEqual(getattr(native, name), code)
            self.assertEqual(native.code_name(code), name)
        self.assertEqual(native.code_name(-1), "STREAM_END")
        self.assertEqual(native.code_name(12345), "UNKNOWN")
        self.assertEqual(native.code_name(2**80), "UNKNOWN")

    def test_roundtrip_without_server(self):
        values = [None, True, False, 0, -1, 2**63 - 1, -2**63, 2**64,
                  -2**300, 7**20000, 1.25, -0.0, math.inf, "h\u00e9\u2603",
                  "", "a\x00b", b"\x00\xff", [], (), {},
                  [1, (2, [3, {"k": (4,)}])], {1: "a", (1, "x"): [None]}]
        for v in values:
            out = native._roundtrip(v)
            self.assertEqual(out, v)
            self.assertIs(type(out), type(v))
        self.assertTrue(math.isnan(native._roundtrip(math.nan)))
        self.assertEqual(math.copysign(1, native._roundtrip(-0.0)), -1)
        self.assertEqual(native._roundtrip(bytearray(b"ab")), b"ab")
        self.assertEqual(native._roundtrip(memoryview(b"abcdef")[::2]),
                         b"ace")

    def test_unsupported_types(self):
        cases = [({1, 2}, TypeError, "value: cannot send set"),
                 ([1, [2, object()]], TypeError,
                  "value[1][1]: cannot send object"),
                 ({"k": [1j]}, TypeError, "value['k'][0]: cannot send complex"),
                 ({frozenset(): 1}, TypeError,
                  "value key #0: cannot send frozenset"),
                 ("\udc80", ValueError, "value: cannot send a str that is "
                                        "not valid UTF-8")]
        for v, exc, msg in cases:
            with self.assertRaises(exc) as cm:
                native._roundtrip(v)
            self.assertTrue(str(cm.exception).startswith(msg),
                            str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            native._roundtrip({1})
        self.assertEqual(str(cm.exception),
                         "value: cannot send set: gild sends None, bool, "
                         "int, float, str, bytes, lists, tuples, dicts and "
                         "numpy arrays (others pickled with "
                         "gild.connect(..., pickle=True) to a server run "
                         "with --allow-pickle)")

    def test_depth_limit(self):
        # VALUE_DEPTH_MAX lists nested (the outermost counts) round-trip;
        # one more is refused with the text the server gives
        # (tests/python/test_values_same.py checks the server's side).
        limit = native.VALUE_DEPTH_MAX
        deep = v = []
        for _ in range(limit - 1):
            v.append([])
            v = v[0]
        out, levels = native._roundtrip(deep), 1
        while out:
            self.assertIs(type(out), list)
            out, levels = out[0], levels + 1
        self.assertEqual(levels, limit)
        v.append([])
        with self.assertRaises(ValueError) as cm:
            native._roundtrip(deep)
        self.assertIn(f"values nested deeper than {limit} levels",
                      str(cm.exception))
        loop = []
        loop.append(loop)
        self.assertRaises(ValueError, native._roundtrip, loop)

    @skip_asan
    def test_refcounts_and_rss(self):
        value = {"a": [1, 2.5, "s" * 100, b"b" * 100, 2**100, None, True],
                 "t": (1, (2, 3)), 7: {"x": -2**70}}
        if np is not None:
            value["np"] = np.arange(1000, dtype=np.float32)
        items = [value["a"][2], value["a"][3], value["a"][4]]
        before_refs = [sys.getrefcount(o) for o in items]
        for _ in range(2000):
            native._roundtrip(value)
        rss0 = rss_kib()
        for _ in range(10000):
            self.assertEqual(native._roundtrip(value)["t"], (1, (2, 3)))
            try:
                native._roundtrip([1, {2}])
            except TypeError:
                pass
        grown = rss_kib() - rss0
        self.assertLess(grown, 2048, f"RSS grew by {grown} KiB")
        self.assertEqual([sys.getrefcount(o) for o in items], before_refs)

    def test_client_arguments(self):
        self.assertRaises(TypeError, native.Client, "tcp://127.0.0.1:1")
        self.assertRaises(TypeError, native.Client, [1])
        with self.assertRaises(ValueError) as cm:
            native.Client([])
        self.assertEqual(cm.exception.code, native.INVALID_ARGUMENT)
        with self.assertRaises(ValueError):
            native.Client(["bogus://x"])
        with self.assertRaises(ConnectionError) as cm:
            native.Client(["tcp://127.0.0.1:1"])
        self.assertEqual(cm.exception.code, native.UNAVAILABLE)
        self.assertIn("127.0.0.1:1", str(cm.exception))
        self.assertRaises(TypeError, native.Stream)


@skip_native
class ValuesTest(ServerCase):
    args = ("--max-message", "200M")

    def test_scalars(self):
        for v in [None, True, False, 0, 1, -1, 2**63 - 1, -2**63, 2**63,
                  2**64, -2**64 - 1, 10**40, -7**3000, 0.5, -0.0, 1e308,
                  math.inf, -math.inf, "", "plain", "h\u00e9llo \u2603 \U0001f600",
                  "nul\x00inside", b"", b"\x00\x01\xfe\xff"]:
            out = self.echo(v)
            self.assertEqual(out, v)
            self.assertIs(type(out), type(v))
        self.assertTrue(math.isnan(self.echo(math.nan)))
        self.assertEqual(math.copysign(1, self.echo(-0.0)), -1)
        self.assertEqual(self.echo(bytearray(b"xy")), b"xy")
        self.assertEqual(self.echo(memoryview(b"0123456789")[1::3]), b"147")

    def test_big_ints_are_ints_remotely(self):
        self.assertEqual(self.ok(self.c.call("add", [2**64, 1])), 2**64 + 1)
        self.assertEqual(self.ok(self.c.call("add", [-2**200, 2**200])), 0)
        self.assertEqual(self.ok(self.c.call("types", [2**100, True, 1.0])),
                         ["int", "bool", "float"])

    def test_containers(self):
        v = [1, (2, "three"), {"k": [None, {"n": (4.5, b"x")}]}, [], (), {},
             {1: "int key", (1, 2): "tuple key", None: 0, 2.5: "f"}]
        self.assertEqual(self.echo(v), v)
        self.assertEqual(self.ok(self.c.call("types", [[1], (1,), {}, "s"])),
                         ["list", "tuple", "dict", "str"])
        nested = x = []
        for _ in range(50):
            x.append([])
            x = x[0]
        self.assertEqual(self.echo(nested), nested)

    def test_kwargs(self):
        self.assertEqual(
            self.ok(self.c.call("echo", (1, 2), {"flag": True, "n": None})),
            {"args": [1, 2], "kwargs": {"flag": True, "n": None}})
        self.assertEqual(self.ok(self.c.call("add", [], {"a": 1, "b": 2})), 3)
        self.assertEqual(self.ok(self.c.call("add", None, {"a": 1, "b": 2})),
                         3)
        with self.assertRaises(TypeError) as cm:
            self.c.call("echo", [], {1: 2})
        self.assertIn("keyword argument names must be str", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            self.c.call("echo", [], {"bad": {1, 2}})
        self.assertTrue(str(cm.exception).startswith(
            "keyword argument 'bad': cannot send set"), str(cm.exception))
        self.assertRaises(TypeError, self.c.call, "echo", "not a list")
        self.assertRaises(TypeError, self.c.call, "echo", [], [("a", 1)])

    def test_bad_arguments_are_not_sent(self):
        with self.assertRaises(TypeError) as cm:
            self.c.submit("echo", [1, {1, 2}])
        self.assertTrue(str(cm.exception).startswith(
            "argument 2: cannot send set: gild sends None"),
            str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            self.c.call("echo", ["ok", ["\ud800"]])
        self.assertTrue(str(cm.exception).startswith("argument 2[0]: "))
        with self.assertRaises(ValueError):
            self.c.stream("echo", ["\ud800"])
        self.assertEqual(self.c.in_flight(), 0)
        self.assertRaises(ValueError, self.c.call, "bad\x00name", [])

    @need_numpy
    def test_numpy_dtypes(self):
        for dt in ["bool", "int8", "int16", "int32", "int64", "uint8",
                   "uint16", "uint32", "uint64", "float16", "float32",
                   "float64", "complex64", "complex128"]:
            a = (np.arange(24) % 5).astype(dt).reshape(2, 3, 4)
            out = self.echo(a)
            self.assertIsInstance(out, np.ndarray)
            self.assertEqual(out.dtype, np.dtype(dt), dt)
            self.assertEqual(out.shape, (2, 3, 4))
            self.assertTrue(np.array_equal(out, a), dt)
        self.assertEqual(self.ok(self.c.call("types", [np.zeros(3)])),
                         ["ndarray"])

    @need_numpy
    def test_numpy_layouts(self):
        a = np.arange(20, dtype=np.int32).reshape(4, 5)
        for v in [a.T, a[::2, 1::2], np.arange(6, dtype=">f8"),
                  np.array(3.5), np.zeros((0, 3), np.float32),
                  np.asfortranarray(a)]:
            out = self.echo(v)
            self.assertEqual(out.shape, v.shape)
            self.assertTrue(np.array_equal(out, v))
            self.assertTrue(out.flags.c_contiguous)
        # numpy scalars travel as the Python scalars they hold
        self.assertEqual(self.echo([np.int64(5), np.float32(0.5),
                                    np.bool_(True)]), [5, 0.5, True])
        with self.assertRaises(TypeError) as cm:
            self.c.call("echo", [np.array(["text"])])
        self.assertIn("numpy array of dtype", str(cm.exception))
        m = self.ok(self.c.call("matmul", [np.eye(2), np.array([[1., 2.],
                                                                  [3., 4.]])]))
        self.assertEqual(m.tolist(), [[1.0, 2.0], [3.0, 4.0]])

    @need_numpy
    def test_numpy_64_mib(self):
        a = np.random.default_rng(1).random(8 * 2**20)  # 64 MiB of float64
        out = self.echo(a)
        self.assertEqual(out.nbytes, 64 * 2**20)
        self.assertTrue(np.array_equal(out, a))
        big = np.ones(64 * 2**20, np.uint8)
        self.assertEqual(int(self.ok(self.c.call("echo", [big])).sum()),
                         64 * 2**20)

    def test_tensors_without_numpy(self):
        native._use_numpy(False)
        try:
            v = self.ok(self.c.call("normalize", [[3.0, 4.0]]))
            self.assertIsInstance(v, memoryview)
            self.assertEqual((v.format, v.shape), ("d", (2,)))
            self.assertEqual(v.tolist(), [0.6, 0.8])
            m = self.ok(self.c.call("matmul", [[[1, 2], [3, 4]],
                                               [[1, 0], [0, 1]]]))
            self.assertEqual(m.shape, (2, 2))
            self.assertEqual(m.tolist(), [[1, 2], [3, 4]])
        finally:
            native._use_numpy(True)

    def test_bytes_big(self):
        b = os.urandom(1 << 20) * 20
        self.assertEqual(self.echo(b), b)

    def test_status_and_ping(self):
        st = self.ok(self.c.status())
        self.assertEqual(st["state"], "serving")
        self.assertEqual(len(st["workers"]), self.workers)
        self.assertIn("echo", st["functions"])
        self.assertEqual(self.c.ping(), (native.OK, None, None))
        self.assertEqual(self.c.ping(timeout_ms=5000), (native.OK, None, None))

    @skip_asan
    def test_rss_flat_over_calls(self):
        value = {"a": [1, 2.5, "s" * 50, b"b" * 50, 2**90], "t": (1, 2)}
        for _ in range(300):
            self.echo(value)
        rss0 = rss_kib()
        for _ in range(2000):
            self.assertEqual(self.echo(value), value)
        grown = rss_kib() - rss0
        self.assertLess(grown, 2048, f"RSS grew by {grown} KiB")


@skip_native
class CallsTest(ServerCase):
    def test_errors(self):
        code, value, error = self.c.call("nope", [])
        self.assertEqual((code, value), (native.NOT_FOUND, None))
        self.assertEqual(error[0], native.NOT_FOUND)
        self.assertIn("'nope'", error[1])
        self.assertEqual(error[2:], ("", ""))
        code, value, error = self.c.call("fail", ["broken"])
        self.assertEqual((code, value), (native.PYTHON_ERROR, None))
        ecode, message, ptype, tb = error
        self.assertEqual((ecode, message, ptype),
                         (native.PYTHON_ERROR, "broken", "ValueError"))
        self.assertIn("Traceback (most recent call last)", tb)
        self.assertIn("raise ValueError(message)", tb)

    def test_submit_wait(self):
        ids = [self.c.submit("add", [i, 1]) for i in range(50)]
        self.assertEqual(len(set(ids)), 50)
        self.assertEqual(self.c.in_flight(), 50)
        for i, cid in enumerate(ids):
            self.assertEqual(self.c.wait(cid), (native.OK, i + 1, None))
        self.assertEqual(self.c.in_flight(), 0)
        with self.assertRaises(KeyError):
            self.c.wait(ids[0])
        self.assertRaises(OverflowError, self.c.wait, -1)
        self.assertRaises(TypeError, self.c.wait, "1")

    def test_wait_timeout(self):
        cid = self.c.submit("sleep", [0.3])
        self.assertIsNone(self.c.wait(cid, 10))
        self.assertEqual(self.c.in_flight(), 1)
        self.assertEqual(self.c.wait(cid, 5000), (native.OK, 0.3, None))

    def test_poll(self):
        with self.assertRaises(LookupError):
            self.c.poll(0)
        ids = {self.c.submit("add", [i, i]): 2 * i for i in range(30)}
        got = {}
        while len(got) < len(ids):
            r = self.c.poll(5000)
            self.assertIsNotNone(r)
            cid, (code, value, error) = r
            self.assertEqual((code, error), (native.OK, None))
            got[cid] = value
        self.assertEqual(got, ids)
        cid = self.c.submit("sleep", [0.2])
        self.assertIsNone(self.c.poll(10))
        self.assertEqual(self.c.poll(), (cid, (native.OK, 0.2, None)))

    def test_cancel(self):
        """A running call (it created its started file) is interrupted."""
        with tempfile.TemporaryDirectory() as tmp:
            started = os.path.join(tmp, "started")
            cid = self.c.submit("wait_for_cancel", [HANG_S, started])
            self.assertTrue(until(lambda: os.path.exists(started)))
            self.assertTrue(self.c.cancel(cid))
        code, value, error = self.c.wait(cid, 10000)
        self.assertEqual(code, native.CANCELLED)
        self.assertEqual(error[0], native.CANCELLED)
        self.assertFalse(self.c.cancel(cid))
        self.assertFalse(self.c.cancel(987654321))

    def test_deadlines(self):
        cid = self.c.submit("sleep", [3], None, 200)
        code, _, error = self.c.wait(cid, 10000)
        self.assertEqual(code, native.DEADLINE_EXCEEDED)
        self.assertIsNotNone(error)
        code, _, error = self.c.call("sleep", [3], None, 200)
        self.assertEqual(code, native.DEADLINE_EXCEEDED)
        self.assertEqual(self.c.call("sleep", [0.01], timeout_ms=5000),
                         (native.OK, 0.01, None))

    def test_threads_share_a_client(self):
        errors = []

        def work(k):
            try:
                for i in range(25):
                    if i % 2:
                        r = self.c.call("add", [k, i])
                    else:
                        r = self.c.wait(self.c.submit("add", [k, i]))
                    if r != (native.OK, k + i, None):
                        errors.append(r)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_sleep_as_a_stream(self):
        s = self.c.stream("sleep", [0.3])
        self.assertEqual(s.next(0), (native.DEADLINE_EXCEEDED, None, None))
        self.assertEqual(s.next(), (native.OK, 0.3, None))
        self.assertEqual(s.next(), (native.STREAM_END, None, None))
        self.assertEqual(s.seq(), 1)
        s.close()


@skip_native
class WaitsTest(ServerCase):
    """Waiting in the client, for a call or a chunk, releases the GIL and
    is interrupted by a signal. Each call here ends only once the test
    opens its gate, so what happens meanwhile happens while the client
    waits, however slow the machine."""
    app = FEATURES
    workers = 2

    def opened_while(self, waits, gate, when=lambda: True):
        """Runs waits() on this thread while another Python thread opens
        gate once waits() has begun and when() is true; returns what
        waits() returned. Were the GIL held while waits() blocks, the
        other thread could not run: the gate would stay shut and the call
        end with False."""
        began = []

        def opener():
            if until(lambda: began and when()):
                gate.open()
        t = threading.Thread(target=opener)
        t.start()
        try:
            began.append(True)
            return waits()
        finally:
            t.join(HANG_S)

    def test_gil_released_in_call(self):
        with Gate() as gate:
            # Running on the server: this thread is inside call().
            r = self.opened_while(
                lambda: self.c.call("until_file", gate.args()), gate,
                lambda: running(self.c) == 1)
        self.assertEqual(r, (native.OK, True, None))

    def test_gil_released_in_wait_and_poll(self):
        with Gate() as gate:
            cid = self.c.submit("until_file", gate.args())
            self.assertEqual(self.opened_while(lambda: self.c.wait(cid),
                                               gate),
                             (native.OK, True, None))
            gate.shut()
            cid = self.c.submit("until_file", gate.args())
            self.assertEqual(self.opened_while(self.c.poll, gate),
                             (cid, (native.OK, True, None)))

    def test_signals_interrupt_waits(self):
        class Alarm(Exception):
            pass

        def alarm(signum, frame):
            raise Alarm()
        old = signal.signal(signal.SIGALRM, alarm)
        try:
            with Gate() as gate:
                cid = self.c.submit("until_file", gate.args())
                s = self.c.stream("until_file", gate.args())
                for fn in (lambda: self.c.wait(cid), self.c.poll, s.next):
                    signal.setitimer(signal.ITIMER_REAL, 0.2)
                    self.assertRaises(Alarm, fn)
                    # The signal ended the wait: the gate is shut, so the
                    # call and the stream have not.
                    self.assertIsNone(self.c.wait(cid, 0))
                    self.assertEqual(s.next(0),
                                     (native.DEADLINE_EXCEEDED, None, None))
                # The call and the stream go on.
                gate.open()
                self.assertEqual(self.c.wait(cid), (native.OK, True, None))
                self.assertEqual(s.next(), (native.OK, True, None))
                self.assertEqual(s.next()[0], native.STREAM_END)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


@skip_native
class StreamsActorsTest(ServerCase):
    app = FEATURES
    workers = 2

    def test_count_to(self):
        s = self.c.stream("count_to", [1000], None, 16)
        for i in range(1000):
            self.assertEqual(s.seq(), i)
            self.assertEqual(s.next(5000), (native.OK, i, None))
        self.assertEqual(s.next(), (native.STREAM_END, None, None))
        self.assertEqual(s.next(0), (native.STREAM_END, None, None))
        self.assertEqual(s.seq(), 1000)
        self.assertFalse(s.closed)
        s.close()
        s.close()
        self.assertTrue(s.closed)
        self.assertEqual(s.seq(), 1000)
        self.assertRaises(ValueError, s.next)

    def test_stream_error(self):
        s = self.c.stream("fail_after", [3])
        self.assertEqual([s.next()[1] for _ in range(3)], [0, 1, 2])
        code, value, error = s.next()
        self.assertEqual((code, value), (native.PYTHON_ERROR, None))
        self.assertEqual(error[:3], (native.PYTHON_ERROR,
                                     "failed after 3 chunks", "ValueError"))
        self.assertIn("Traceback", error[3])
        s.close()
        s = self.c.stream("nope", [])
        self.assertEqual(s.next(5000)[0], native.NOT_FOUND)
        s.close()
        self.assertRaises(ValueError, self.c.stream, "count_to", [1], None,
                          native.STREAM_MAX_WINDOW + 1)

    def test_stream_deadline(self):
        path = tempfile.mktemp(prefix="gild-native-")
        s = self.c.stream("forever", [path], None, 8, 300)
        # Ended by its 300 ms deadline (the loop's bound is a hang's).
        end = time.monotonic() + HANG_S
        code = native.OK
        while code == native.OK and time.monotonic() < end:
            code, value, error = s.next(10000)
        self.assertEqual(code, native.DEADLINE_EXCEEDED)
        self.assertIsNotNone(error)
        self.assertEqual(error[0], native.DEADLINE_EXCEEDED)
        s.close()
        wait_for_closed(self, path)

    def test_close_cancels_the_generator(self):
        path = tempfile.mktemp(prefix="gild-native-")
        s = self.c.stream("forever", [path])
        self.assertEqual([s.next(5000)[1] for _ in range(5)], list(range(5)))
        s.close()
        wait_for_closed(self, path)
        path = tempfile.mktemp(prefix="gild-native-")
        s = self.c.stream("forever", [path])
        self.assertEqual(s.next(5000)[0], native.OK)
        del s  # dealloc closes it too
        wait_for_closed(self, path)

    def test_actors(self):
        code, aid, error = self.c.actor_new("Counter", [5], None, None, False)
        self.assertEqual((code, error), (native.OK, None))
        self.assertIsInstance(aid, int)
        self.assertEqual(self.c.actor_call(aid, "incr", [2]),
                         (native.OK, 7, None))
        cid = self.c.actor_submit(aid, "incr", [], {"by": 3})
        self.assertEqual(self.c.wait(cid), (native.OK, 10, None))
        self.assertEqual(self.c.actor_call(aid, "get", ()),
                         (native.OK, 10, None))
        self.assertEqual(self.c.actor_call(aid, "nope", [])[0],
                         native.NOT_FOUND)
        self.assertEqual(self.c.actor_destroy(aid), (native.OK, True, None))
        self.assertEqual(self.c.actor_call(aid, "get", [])[0],
                         native.NOT_FOUND)
        self.assertEqual(self.c.actor_destroy(aid)[0], native.NOT_FOUND)

    def test_named_actors(self):
        code, aid, _ = self.c.actor_new("Counter", [], {"start": 1},
                                        "native-test", detached=False,
                                        timeout_ms=10000)
        self.assertEqual(code, native.OK)
        self.assertEqual(self.c.actor_get("native-test"),
                         (native.OK, (aid, "Counter"), None))
        self.assertEqual(
            self.c.actor_new("Counter", [], None, "native-test", False)[0],
            native.ALREADY_EXISTS)
        self.assertEqual(self.c.actor_get("no-such-actor")[0],
                         native.NOT_FOUND)
        self.assertEqual(self.c.actor_new("NoSuchClass", [])[0],
                         native.NOT_FOUND)
        self.assertEqual(self.c.actor_destroy(aid)[1], True)


@skip_native
class CloseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Two workers: a stream holds one while it runs.
        cls.gild = Gild(app=FEATURES, workers=2)

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def test_close(self):
        c = native.Client([self.gild.url])
        self.assertFalse(c.closed)
        c.close()
        c.close()
        self.assertTrue(c.closed)
        for fn, args in [(c.call, ("pid", [])), (c.submit, ("pid", [])),
                         (c.poll, ()), (c.in_flight, ()), (c.status, ()),
                         (c.stream, ("count_to", [3]))]:
            with self.assertRaises(ValueError) as cm:
                fn(*args)
            self.assertEqual(str(cm.exception), "client is closed")

    def test_close_with_open_streams(self):
        # Read to their end, so that closing them sends no Cancel (see
        # settle()); the next test closes a running one.
        c = native.Client([self.gild.url])
        s1 = c.stream("single", [5])
        s2 = c.stream("count_to", [2])
        self.assertEqual(s1.next(5000), (native.OK, 5, None))
        self.assertEqual(s1.next(5000), (native.STREAM_END, None, None))
        self.assertEqual([s2.next(5000)[1] for _ in range(3)], [0, 1, None])
        self.assertFalse(s1.closed or s2.closed)
        c.close()
        self.assertTrue(s1.closed and s2.closed)
        self.assertRaises(ValueError, s1.next)
        self.assertRaises(ValueError, s2.next)
        self.assertEqual((s1.seq(), s2.seq()), (1, 2))
        s1.close()

    def test_close_while_another_thread_waits(self):
        """close() while another thread waits in the client for a call:
        it closes the streams now and returns without waiting for that
        call (which cannot end before the gate opens, after close()); the
        client closes once the waiter is out, with its result."""
        c = native.Client([self.gild.url])
        path = tempfile.mktemp(prefix="gild-native-")
        s = c.stream("forever", [path])
        self.assertEqual(s.next(5000), (native.OK, 0, None))
        results = []
        with Gate() as gate:
            t = threading.Thread(target=lambda: results.append(
                c.call("until_file", gate.args())))
            t.start()
            # Running on the server, with the stream: the waiter is inside
            # the client.
            self.assertTrue(until(lambda: running(c) == 2))
            self.assertTrue(returns(c.close), "close() waited for the call")
            self.assertTrue(c.closed and s.closed)
            self.assertEqual(results, [])  # the call goes on
            wait_for_closed(self, path)  # s was cancelled
            gate.open()
            t.join(HANG_S)
        self.assertEqual(results, [(native.OK, True, None)])
        self.assertRaises(ValueError, c.call, "pid", [])

    def test_stream_read_by_one_thread_at_a_time(self):
        c = native.Client([self.gild.url])
        s = c.stream("count_to", [1])
        self.assertEqual(s.next(5000), (native.OK, 0, None))
        self.assertEqual(s.next(5000)[0], native.STREAM_END)
        s.close()
        results = []
        with Gate() as gate:
            s = c.stream("until_file", gate.args())  # one chunk, once open

            def busy():
                """Whether another thread is reading s (s.next(0) takes
                nothing meanwhile: no chunk comes before the gate opens)."""
                try:
                    self.assertEqual(s.next(0)[0], native.DEADLINE_EXCEEDED)
                    return False
                except RuntimeError as e:
                    self.assertIn("another thread", str(e))
                    return True
            t = threading.Thread(target=lambda: results.append(s.next()))
            t.start()
            self.assertTrue(until(busy))
            s.close()  # the reader closes it once its next() returns
            self.assertTrue(s.closed)
            gate.open()
            t.join(HANG_S)
        self.assertEqual(results, [(native.OK, True, None)])
        self.assertRaises(ValueError, s.next)
        self.assertEqual(s.seq(), 1)
        settle(c)  # s was closed before its end: a Cancel went out
        c.close()

    def test_dealloc_closes(self):
        for i in range(20):
            c = native.Client([self.gild.url])
            s = c.stream("single", [i])
            self.assertEqual(s.next(5000), (native.OK, i, None))
            self.assertEqual(s.next(5000)[0], native.STREAM_END)
            del c  # s keeps it
            del s  # closes the stream, then the client
        c = native.Client([self.gild.url])
        self.assertEqual(c.call("pid", [])[0], native.OK)


if __name__ == "__main__":
    unittest.main()
