"""W3C trace context: a traceparent (and tracestate) sent with a call by
the Python client is what the app reads in gild.context() and what gild's
log lines about that call show, in logfmt and JSON; a malformed one is
refused with INVALID_ARGUMENT by the client before it is sent and by the
server from any client, and the server serves on."""
import json
import os
import re
import subprocess
import sys
import unittest

from gildproc import ROOT, Gild, pb_field, pb_varint

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402 (its extension is built in the plain build)
NO_CLIENT = "the Python client's extension is built in the plain build only"

APP = os.path.join(ROOT, "tests", "apps", "obs.py")
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TS = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"

LOGFMT_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def logfmt(line):
    """{key: value} of one logfmt line, quoted values unquoted."""
    out = {}
    for k, v in LOGFMT_FIELD.findall(line):
        out[k] = json.loads(v) if v.startswith('"') else v
    return out


def events(g, fmt):
    """gild's stderr once stopped, every line parsed (a line that does not
    parse fails the test)."""
    lines = [l for l in g.err.splitlines() if l.strip()]
    return [json.loads(l) if fmt == "json" else logfmt(l) for l in lines]


@unittest.skipIf(SANITIZED, NO_CLIENT)
class TraceTest(unittest.TestCase):
    def check(self, fmt):
        args = ("--slow-ms", "1") + (("--log-format", "json")
                                     if fmt == "json" else ())
        with Gild(app=APP, workers=1, args=args) as g:
            c = gild.connect(g.url)
            try:
                fn = c.function("traced_nap")
                self.assertEqual(fn(0.05), [None, None])
                traced = fn.options(traceparent=TP, tracestate=TS)
                self.assertEqual(traced(0.05), [TP, TS])
                self.assertEqual(
                    fn.options(traceparent=TP).submit(0.05).result(60),
                    [TP, None])
                # A lost call's line carries it too.
                with self.assertRaises(gild.WorkerLost):
                    c.function("die").options(traceparent=TP)()
            finally:
                c.close()
            self.assertEqual(g.stop(), 0)
        evs = events(g, fmt)
        slow = [e for e in evs if e["msg"].startswith("slow call") and
                e["function"] == "traced_nap"]
        self.assertEqual(len(slow), 3, slow)
        self.assertEqual([e.get("traceparent") for e in slow],
                         [None, TP, TP])
        self.assertEqual([e.get("tracestate") for e in slow],
                         [None, TS, None])
        # (die's own slow-call line may come too: it is not timed here.)
        lost = [e for e in evs if e.get("function") == "die" and
                "died" in e["msg"]]
        self.assertEqual(len(lost), 1, evs)
        self.assertEqual(lost[0]["traceparent"], TP)
        self.assertIn("request_id", lost[0])

    def test_logfmt(self):
        self.check("logfmt")

    def test_json(self):
        self.check("json")

    def test_client_refuses(self):
        """The Python client refuses a malformed trace context before
        anything is sent (and libgild does, below it)."""
        with Gild(app=APP, workers=1) as g, gild.connect(g.url) as c:
            fn = c.function("trace")
            for bad in ("", "00-xyz", TP.upper(), TP[:-1], "01" + TP[2:],
                        "00-" + "0" * 32 + TP[35:], TP[:36] + "0" * 16 +
                        TP[52:]):
                with self.assertRaises(ValueError, msg=bad):
                    fn.options(traceparent=bad)
            with self.assertRaises(ValueError):
                fn.options(traceparent=TP, tracestate="x" * 513)
            with self.assertRaises(ValueError):
                fn.options(tracestate="a=b")
            with self.assertRaises(TypeError):
                fn.options(traceparent=TP).map([1])
            # Past the Python check, libgild's own.
            with self.assertRaisesRegex(ValueError, "55 characters"):
                c._n().submit("trace", (), None, 0, traceparent="00-x")
            self.assertEqual(fn.options(traceparent=TP,
                                        tracestate="x" * 512)(),
                             [TP, "x" * 512])


@unittest.skipIf(SANITIZED, NO_CLIENT)
class AsyncContextTest(unittest.TestCase):
    def test_context_in_async_def(self):
        """gild.context() works inside async def: 8 calls interleaved on
        one worker's loop each see their own request id, function,
        traceparent and deadline after an await."""
        app = os.path.join(ROOT, "tests", "apps", "async_ctx.py")
        tps = ["00-%032x-%016x-01" % (k + 1, k + 1) for k in range(8)]
        with Gild(app=app, workers=1) as g, gild.connect(g.url) as c:
            fn = c.function("actx")
            futs = []
            for k in range(8):
                opts = {"traceparent": tps[k]} if k % 2 == 0 else {}
                if k % 4 == 0:
                    opts["timeout"] = 30
                futs.append(fn.options(**opts).submit(0.05 * (8 - k)))
            got = [f.result(60) for f in futs]
        self.assertEqual(len({r[0] for r in got}), 8)  # own request ids
        for k, (rid, function, tp, left, batch) in enumerate(got):
            self.assertEqual(function, "actx")
            self.assertEqual(tp, tps[k] if k % 2 == 0 else None)
            self.assertEqual(left, True if k % 4 == 0 else None)
            self.assertEqual(batch, 1)


def request(rid, trace_context):
    """Request{id, call: Call{function: "trace"}, trace_context} encoded by
    hand, trace_context being any bytes."""
    return (pb_varint(1 << 3) + pb_varint(rid) + pb_field(2, pb_field(1, b"trace")) +
            pb_field(14, trace_context))


def tc(traceparent=None, tracestate=None):
    out = b""
    if traceparent is not None:
        out += pb_field(1, traceparent)
    if tracestate is not None:
        out += pb_field(2, tracestate)
    return out


class ServerTest(unittest.TestCase):
    def test_server_refuses(self):
        """From a stock nng client: a malformed trace context gets
        INVALID_ARGUMENT saying why; a good one reaches the app; the
        server serves on."""
        import gild_pb2  # generated by protoc from proto/gild.proto
        tp = TP.encode()
        bad = [
            (tc(b"00-xyz"), "55 characters"),
            (tc(tp.upper()), "lowercase hex"),
            (tc(b"01" + tp[2:]), "version 00"),
            (tc(b"00-" + b"0" * 32 + tp[35:]), "trace id is all zeros"),
            (tc(tp[:36] + b"0" * 16 + tp[52:]), "parent id is all zeros"),
            (tc(tp[:53] + b"zz"), "flags"),
            (tc(tp, b"x" * 513), "512 bytes"),
            (tc(tp, b"a=b\nc=d"), "printable ASCII"),
            (tc(None, b"a=b"), "without a traceparent"),
            (b"\xff\xff\xff", "malformed trace_context"),
            (tc(tp) + pb_field(3, b"x" * 2000), "too long"),
        ]
        with Gild(app=APP, workers=1) as g:
            for i, (ctx, why) in enumerate(bad):
                r = gild_pb2.Reply.FromString(send(g.url, request(i + 1,
                                                                  ctx)))
                self.assertEqual(r.id, i + 1)
                self.assertEqual(r.error.code, gild_pb2.INVALID_ARGUMENT,
                                 (ctx, r))
                self.assertIn(why, r.error.message)
            # Good ones, an empty one, and one with a field gild does not
            # know (protobuf's rule: skipped).
            good = [(tc(tp, TS.encode()), [TP, TS]), (b"", [None, None]),
                    (tc(tp) + pb_field(9, b"later"), [TP, None])]
            for i, (ctx, want) in enumerate(good):
                r = gild_pb2.Reply.FromString(send(g.url, request(100 + i,
                                                                  ctx)))
                self.assertEqual(r.WhichOneof("body"), "result", r)
                got = [None if v.WhichOneof("kind") == "null_value"
                       else v.str_value.decode()
                       for v in r.result.list_value.items]
                self.assertEqual(got, want)
            self.assertEqual(g.stop(), 0)


def send(url, msg):
    """Sends one encoded Request from nngcat (a stock REQ client);
    returns the encoded Reply."""
    p = subprocess.run(["nngcat", "--req0", "--dial", url, "--raw",
                        "--recv-timeout", "60", "--file", "-"],
                       input=msg, capture_output=True, timeout=120)
    return p.stdout


if __name__ == "__main__":
    unittest.main()
