"""One converter (common/pyconv), compiled into the worker and the Python
client (issue 18): the client and the server accept exactly the same
values. A value GILD_VALUE_DEPTH_MAX containers deep goes through both; one
level deeper is refused by the client before it is sent, and by the server
for a request built by hand, with the same text. Every kind comes back
from the server as the client's own conversion gives it, and tensors
round-trip through the free-threaded worker from 8 client threads at
once."""
import os
import struct
import sys
import threading
import unittest

import gild_pb2
from gildproc import B, HANG_S, ROOT, Gild, pb_field, pb_varint
from test_limits import Raw

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
import gild  # noqa: E402
from gild import _native as native  # noqa: E402

try:
    import numpy
except ImportError:
    numpy = None

LIMIT = native.VALUE_DEPTH_MAX
TOO_DEEP = f"values nested deeper than {LIMIT} levels"


def nested(n):
    """n lists one inside another (the outermost counts): [[...[]...]]."""
    v = []
    for _ in range(n - 1):
        v = [v]
    return v


def number(message, name):
    return getattr(gild_pb2, message).DESCRIPTOR.fields_by_name[name].number


def nested_bytes(n):
    """gild.v1.Value bytes of n nested lists, encoded by hand (python's
    protobuf cannot serialize a message nested 20,000 deep)."""
    value, items = number("Value", "list_value"), number("List", "items")
    chunks = [pb_field(value, b"")]
    total = len(chunks[0])
    for _ in range(n - 1):
        for f in (items, value):
            head = pb_varint(f << 3 | 2) + pb_varint(total)
            chunks.append(head)
            total += len(head)
    return b"".join(reversed(chunks))


def read_varint(b, i):
    v, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def top_fields(b):
    """{field number: bytes} of the length-delimited top-level fields of
    an encoded message (python's protobuf refuses to parse a Reply as deep
    as the limit allows, so the tests read its top level by hand)."""
    out, i = {}, 0
    while i < len(b):
        tag, i = read_varint(b, i)
        if tag & 7 == 0:
            _, i = read_varint(b, i)
        elif tag & 7 == 2:
            n, i = read_varint(b, i)
            out[tag >> 3] = b[i:i + n]
            i += n
        elif tag & 7 == 1:
            i += 8
        else:
            i += 4
    return out


REPLY = gild_pb2.Reply.DESCRIPTOR.fields_by_name


class DepthTest(unittest.TestCase):
    """The one depth limit, through the client and through the server."""

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(workers=1)
        cls.c = gild.connect(cls.gild.url)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        assert cls.gild.stop() == 0

    def raw_call(self, n):
        """Sends echo(<n nested lists>), a request built by hand; returns
        the Reply's top-level fields and the argument's bytes."""
        arg = nested_bytes(n)
        call = pb_field(number("Call", "function"), b"echo") + \
            pb_field(number("Call", "args"), arg)
        req = pb_varint(number("Request", "id") << 3) + pb_varint(1) + \
            pb_field(number("Request", "call"), call)
        body = struct.pack(">I", 0x80000001) + req
        raw = Raw(self.gild.url)
        try:
            raw.s.sendall(struct.pack(">Q", len(body)) + body)
            size = struct.unpack(">Q", raw._exact(8))[0]
            return top_fields(raw._exact(size)[4:]), arg
        finally:
            raw.close()

    def test_limit_is_the_protocols(self):
        self.assertEqual(LIMIT, 100)  # proto/gild_limits.h, docs/protocol.md

    def test_at_the_limit_round_trips(self):
        v = nested(LIMIT)
        self.assertEqual(self.c.call("echo", v), v)
        self.assertEqual(native._roundtrip(v), v)
        fields, arg = self.raw_call(LIMIT)
        self.assertNotIn(REPLY["error"].number, fields)
        # The value comes back exactly as it was sent.
        self.assertEqual(fields[REPLY["result"].number], arg)

    def test_one_deeper_is_refused_alike(self):
        with self.assertRaises(ValueError) as cm:
            self.c.call("echo", nested(LIMIT + 1))
        client = str(cm.exception)
        with self.assertRaises(ValueError) as cm:
            native._roundtrip(nested(LIMIT + 1))
        self.assertTrue(str(cm.exception).endswith(": " + TOO_DEEP))
        fields, _ = self.raw_call(LIMIT + 1)
        self.assertNotIn(REPLY["result"].number, fields)
        err = gild_pb2.Error.FromString(fields[REPLY["error"].number])
        self.assertEqual(err.code, gild_pb2.INVALID_ARGUMENT)
        self.assertEqual(err.message, "argument 1: " + TOO_DEEP)
        # The same text, naming the same argument.
        self.assertTrue(client.startswith("argument 1"), client)
        self.assertTrue(client.endswith(": " + TOO_DEEP), client)
        # Deeper still is no different, and the server serves on.
        fields, _ = self.raw_call(20000)
        err = gild_pb2.Error.FromString(fields[REPLY["error"].number])
        self.assertEqual(err.message, "argument 1: " + TOO_DEEP)
        self.assertEqual(self.c.call("add", 1, 2), 3)

    def test_dict_and_tuple_count_like_lists(self):
        v = {"k": (nested(LIMIT - 2),)}  # dict, tuple, then LIMIT - 2
        self.assertEqual(self.c.call("echo", v), v)
        with self.assertRaises(ValueError) as cm:
            self.c.call("echo", {"k": (nested(LIMIT - 1),)})
        self.assertTrue(str(cm.exception).endswith(TOO_DEEP))

    def test_every_kind_comes_back_as_the_client_converts_it(self):
        values = [None, True, 0, -2**63, 2**64, -7**200, 1.5, -0.0, "h\u00e9",
                  b"\x00\xff", bytearray(b"ab"), memoryview(b"abcdef")[::2],
                  [1, (2, 3)], (), {(1, 2): [None]}, {"k": {"j": b""}}]
        if numpy is not None:
            values += [numpy.arange(6, dtype=numpy.int16).reshape(2, 3),
                       numpy.array([1.5, 2.5], dtype=numpy.float16),
                       numpy.array([1 + 2j], dtype=numpy.complex64),
                       numpy.float32(2.5), numpy.int64(-3)]
        for v in values:
            local = native._roundtrip(v)
            server = self.c.call("echo", v)
            self.assertIs(type(server), type(local), repr(v))
            if numpy is not None and isinstance(local, numpy.ndarray):
                self.assertEqual(server.dtype, local.dtype)
                self.assertEqual(server.shape, local.shape)
                self.assertTrue(numpy.array_equal(server, local), repr(v))
            else:
                self.assertEqual(server, local, repr(v))

    def test_unsendable_is_refused_before_sending(self):
        for v in ({1}, 1j, [object()]):
            with self.assertRaises(TypeError) as cm:
                self.c.call("echo", v)
            self.assertIn("cannot send", str(cm.exception))
        self.assertEqual(self.c.call("add", 2, 2), 4)


# The dtypes whose arrays come back as they went whether or not the
# free-threaded worker's Python has numpy (without it a tensor arrives as a
# memoryview of its format and shape and goes back as a tensor; float16
# and complex arrays have no memoryview format, docs/python.md).
FT_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
             "uint32", "uint64", "float32", "float64"]
THREADS = 8
ROUNDS = 10


@unittest.skipUnless(numpy is not None, "numpy is not installed")
@unittest.skipUnless(os.path.exists(os.path.join(B, "gild-worker-ft")),
                     "no free-threaded worker in this build")
class FreeThreadedTensorsTest(unittest.TestCase):
    """Tensors from 8 client threads at once through one free-threaded
    worker running 4 threads: each array comes back equal, dtype and
    shape kept."""

    def setUp(self):
        self.gild = Gild(workers=1, args=("--runtime", "free-threaded",
                                          "--threads", "4"))
        self.addCleanup(self.gild.stop)
        self.c = gild.connect(self.gild.url)
        self.addCleanup(self.c.close)

    def test_tensors_from_8_threads(self):
        status = self.c.status()
        self.assertEqual(status["runtime"], "free-threaded")
        done, errors, lock = [0], [], threading.Lock()
        start = threading.Barrier(THREADS, timeout=HANG_S)

        def arrays(t, r):
            out = []
            for i, dt in enumerate(FT_DTYPES):
                a = numpy.arange(12 * (t + 1), dtype=numpy.int64)[:12]
                out.append((a + r + i).astype(dt).reshape(3, 4))
            # Past the size copied with the GIL released (2 MiB).
            out.append(numpy.full((512, 512), t + r / 10,
                                  dtype=numpy.float64))
            return out

        def client(t):
            try:
                start.wait()
                for r in range(ROUNDS):
                    for a in arrays(t, r):
                        back = self.c.call("echo", a)
                        if not (isinstance(back, numpy.ndarray) and
                                back.dtype == a.dtype and
                                back.shape == a.shape and
                                numpy.array_equal(back, a)):
                            raise AssertionError(
                                f"thread {t} round {r}: {a.dtype} "
                                f"{a.shape} came back as {back!r:.200}")
                        with lock:
                            done[0] += 1
            except Exception as e:  # reported by the test thread
                with lock:
                    errors.append(e)

        threads = [threading.Thread(target=client, args=(t,))
                   for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(HANG_S)
        self.assertFalse(any(th.is_alive() for th in threads))
        self.assertEqual(errors, [])
        self.assertEqual(done[0], THREADS * ROUNDS * (len(FT_DTYPES) + 1))
        self.assertEqual(self.c.call("add", 1, 2), 3)


if __name__ == "__main__":
    unittest.main()
