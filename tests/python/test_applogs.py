"""App output in gild's log (docs/operations.md, "Logs"): what the app
prints and logs inside a call comes out as gild events, one per line, with
the call's request_id and function, in logfmt and in JSON; every line of
gild's stderr parses as one event."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import unittest
import urllib.request

from gildproc import ROOT, B, HANG_S, Gild, die_with_parent, gildctl, read_until

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
if os.environ.get("SANITIZE"):
    gild = None  # its extension is built in the plain build only
else:
    import gild  # noqa: E402

APP = os.path.join(ROOT, "tests", "apps", "applogs.py")
FT = os.path.exists(os.path.join(B, "gild-worker-ft"))
LINE_MAX = 16384  # APPLOG_LINE_MAX, proto/applog_frame.h

# logfmt as gild writes it: key=bare or key="quoted \" \\".
_PAIR = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|[^\s"=]+)'
                   r'(?: |$)')


def parse_logfmt(line):
    """The event of one logfmt line as a dict (numbers as int), or
    ValueError when the line is not logfmt."""
    ev, at = {}, 0
    while at < len(line):
        m = _PAIR.match(line, at)
        if m is None:
            raise ValueError("not logfmt at %d: %r" % (at, line[:300]))
        k, v = m.group(1), m.group(2)
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        elif re.fullmatch(r"-?\d+", v):
            v = int(v)
        if k in ev:
            raise ValueError("key %s twice: %r" % (k, line[:300]))
        ev[k] = v
        at = m.end()
    for k in ("time", "level", "msg"):
        if k not in ev:
            raise ValueError("no %s: %r" % (k, line[:300]))
    return ev


def parse_json(line):
    ev = json.loads(line)
    for k in ("time", "level", "msg"):
        if k not in ev:
            raise ValueError("no %s: %r" % (k, line[:300]))
    return ev


def call(g, fn, *args):
    rc, out, err = gildctl("call", g.url, fn, *map(str, args))
    return rc, out.strip(), err


class AppLogs:
    """The checks, run for each log format and runtime below."""
    args = ()
    parse = staticmethod(parse_logfmt)

    def serve(self, *extra):
        return Gild(app=APP, workers=1, args=self.args + extra)

    def events(self, g):
        """Every line of gild's stderr, parsed: each must parse."""
        self.assertIsNotNone(g.err)
        lines = g.err.splitlines()
        self.assertGreater(len(lines), 3)
        return [self.parse(l) for l in lines]

    def one(self, events, msg):
        found = [e for e in events if e["msg"] == msg]
        self.assertEqual(len(found), 1, (msg, found))
        return found[0]

    def chatty(self, g, tags):
        """chatty(tag) for each tag, sent at once on one connection (the
        plain build: the Python client), else one gildctl each; returns
        {tag: request id}."""
        if gild is None:
            ids = {}
            for tag in tags:
                rc, out, err = call(g, "chatty", tag)
                self.assertEqual(rc, 0, err)
                ids[tag] = int(out)
            return ids
        with gild.connect(g.url) as c:
            futures = {tag: c.submit("chatty", tag) for tag in tags}
            ids = {tag: f.result(timeout=60) for tag, f in futures.items()}
        self.assertEqual(len(set(ids.values())), len(tags))
        return ids

    def test_call_output(self):
        g = self.serve()
        try:
            ids = self.chatty(g, range(7, 13))
        finally:
            self.assertEqual(g.stop(), 0)
        ev = self.events(g)
        for tag, rid in ids.items():
            want = {
                "print %d" % tag: ("stdout", "info", None),
                "root %d" % tag: ("stderr", "info", "root"),
                "named %d" % tag: ("stderr", "warn", "applogs.calls"),
                "first %d" % tag: ("stdout", "info", None),
                "second %d" % tag: ("stdout", "info", None),
                "stderr %d" % tag: ("stderr", "info", None),
                "parts %d" % tag: ("stdout", "info", None),
            }
            for msg, (stream, level, logger) in want.items():
                e = self.one(ev, msg)
                self.assertEqual((e["request_id"], e["function"]),
                                 (rid, "chatty"), e)
                self.assertEqual((e["stream"], e["level"]), (stream, level),
                                 e)
                self.assertEqual(e.get("logger"), logger, e)
                self.assertIsInstance(e["pid"], int)
                self.assertGreater(e["pid"], 0)
                self.assertEqual(e["slot"], 0)
        # Written at import (in the template, or the exec'd worker): no
        # call named.
        e = self.one(ev, "imported applogs")
        self.assertEqual(e["stream"], "stdout")
        self.assertNotIn("request_id", e)
        self.assertNotIn("function", e)
        self.assertIsInstance(e["pid"], int)

    def test_long_line_and_raw(self):
        g = self.serve()
        try:
            rc, out, err = call(g, "long_line", LINE_MAX + 5000)
            self.assertEqual(rc, 0, err)
            rid = int(out)
            rc, short, err = call(g, "long_line", 100)
            self.assertEqual(rc, 0, err)
            rc, out, err = call(g, "raw", 9)
            self.assertEqual(rc, 0, err)
        finally:
            self.assertEqual(g.stop(), 0)
        ev = self.events(g)
        cut = [e for e in ev if e["msg"].startswith("yyy") and
               e.get("truncated") == 1]
        self.assertEqual(len(cut), 1, [e for e in ev if "yyy" in e["msg"]])
        self.assertEqual(cut[0]["msg"], "y" * LINE_MAX)
        self.assertEqual(cut[0]["request_id"], rid)
        e = self.one(ev, "y" * 100)
        self.assertNotIn("truncated", e)
        self.assertEqual(e["request_id"], int(short))
        # Raw writes name the worker, not the call.
        e = self.one(ev, "raw 9")
        self.assertEqual((e["stream"], e["slot"]), ("stdout", 0))
        self.assertGreater(e["pid"], 0)
        self.assertNotIn("request_id", e)
        # Bytes that are not UTF-8: JSON shows U+FFFD, logfmt the byte
        # (read here as U+FFFD too).
        self.one(ev, "bad \ufffd byte 9")

    def test_lines_before_death(self):
        g = self.serve()
        try:
            rc, out, err = call(g, "die", 5)
            self.assertNotEqual(rc, 0)
            self.assertIn("WORKER_LOST", err)
            # The replacement serves.
            rc, out, err = call(g, "raw", 6)
            self.assertEqual(rc, 0, err)
        finally:
            self.assertEqual(g.stop(), 0)
        ev = self.events(g)
        e = self.one(ev, "dying 5")
        self.assertEqual((e["function"], e["stream"]), ("die", "stdout"))
        # A partial line at exit is logged as it is.
        e = self.one(ev, "last words 5")
        self.assertEqual((e["stream"], e["slot"]), ("stderr", 0))
        self.one(ev, "raw 6")

    def test_flood_is_bounded(self):
        """64 MiB with no newline: one cut event, read and dropped as it
        comes, not held (gild's peak RSS stays far below it)."""
        g = self.serve()
        try:
            rc, out, err = call(g, "flood", 64)
            self.assertEqual((rc, out), (0, "64"), err)
            rc, out, err = call(g, "raw", 1)
            self.assertEqual(rc, 0, err)
            with open("/proc/%d/status" % g.proc.pid) as f:
                hwm = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
        finally:
            self.assertEqual(g.stop(), 0)
        if not os.environ.get("SANITIZE"):
            self.assertLess(hwm, 48 * 1024)  # KiB: less than the flood
        ev = self.events(g)
        z = [e for e in ev if e["msg"].startswith("zzz")]
        self.assertEqual(len(z), 1)
        self.assertEqual((z[0]["msg"], z[0]["truncated"]), ("z" * LINE_MAX, 1))
        self.one(ev, "after flood")
        self.one(ev, "raw 1")

    def test_handler_opt_out(self):
        """--app-log-handler=false: the app's logging is its own. Here
        logging.info() configures it (basicConfig: WARNING and up, to
        sys.stderr, in Python's format), and what it writes is still
        logged line by line, with the call named."""
        g = self.serve("--app-log-handler=false")
        try:
            rid = self.chatty(g, [3])[3]
        finally:
            self.assertEqual(g.stop(), 0)
        ev = self.events(g)
        self.assertEqual([e for e in ev if "root 3" in e["msg"]], [])
        e = self.one(ev, "WARNING:applogs.calls:named 3")
        self.assertEqual((e["stream"], e["level"], e["request_id"]),
                         ("stderr", "info", rid))
        self.assertNotIn("logger", e)
        self.one(ev, "print 3")


    def test_async_calls(self):
        """async def calls interleaved on one thread: each task's lines
        name its own call. (Sent at once: on one connection with the
        Python client, which numbers them apart; else one gildctl each,
        which all say request 1.)"""
        app = os.path.join(ROOT, "tests", "apps", "applogs_async.py")
        g = Gild(app=app, workers=1, args=self.args)
        try:
            if gild is not None:
                with gild.connect(g.url) as c:
                    futures = [c.submit("achatty", t) for t in range(4)]
                    got = [f.result(timeout=60) for f in futures]
            else:
                got = [None] * 4
                def one(t):
                    rc, out, _ = call(g, "achatty", t)
                    got[t] = int(out) if rc == 0 else None
                threads = [threading.Thread(target=one, args=(t,))
                           for t in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(HANG_S)
            self.assertEqual(got, list(range(4)))
            rc, out, err = call(g, "plain", 9)
            self.assertEqual((rc, out), (0, "9"), err)
        finally:
            self.assertEqual(g.stop(), 0)
        ev = self.events(g)
        ids = set()
        for t in range(4):
            a = self.one(ev, "async before %d" % t)
            b = self.one(ev, "async after %d" % t)
            self.assertEqual(a["function"], "achatty")
            self.assertEqual(a["request_id"], b["request_id"])
            self.assertEqual(b["function"], "achatty")
            ids.add(a["request_id"])
        self.assertEqual(len(ids), 4 if gild is not None else 1)
        e = self.one(ev, "plain 9")
        self.assertEqual((e["function"], e["request_id"]), ("plain", 1))


class LogfmtProcess(AppLogs, unittest.TestCase):
    pass


class JsonProcess(AppLogs, unittest.TestCase):
    args = ("--log-format", "json")
    parse = staticmethod(parse_json)


class LogfmtExec(AppLogs, unittest.TestCase):
    """Workers exec'd, not forked: each imports the app itself."""
    args = ("--spawn", "exec")


@unittest.skipUnless(FT, "gild-worker-ft is not built")
class LogfmtFreeThreaded(AppLogs, unittest.TestCase):
    args = ("--runtime", "free-threaded", "--threads", "2")


@unittest.skipUnless(FT, "gild-worker-ft is not built")
class JsonFreeThreaded(AppLogs, unittest.TestCase):
    args = ("--runtime", "free-threaded", "--threads", "2",
            "--log-format", "json")
    parse = staticmethod(parse_json)


class FullStderrTest(unittest.TestCase):
    """gild's stderr is a pipe nobody reads (a log collector that stalled):
    app lines are dropped and counted, the calls go on, and what gild
    writes once the pipe is read again still parses line by line."""

    def test_drops_when_stderr_is_full(self):
        p = subprocess.Popen(
            [os.path.join(B, "gild"), "serve", APP, "--listen",
             "tcp://127.0.0.1:0", "--workers", "1", "--http", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=die_with_parent)
        err, reader = [], None
        try:
            lines = read_until(p, "gild: ready")
            url = [l.split()[-1] for l in lines if "listening on" in l][0]
            http = [l.split()[-1] for l in lines
                    if l.startswith("gild: http on")][0]
            # 2,000 lines of 100 bytes: three times what a pipe holds.
            for _ in range(3):
                rc, out, e = gildctl("call", url, "lines", "2000")
                self.assertEqual((rc, out.strip()), (0, "2000"), e)
            rc, out, e = gildctl("call", url, "raw", "4")
            self.assertEqual(rc, 0, e)
            with urllib.request.urlopen(http + "/metrics", timeout=30) as r:
                metrics = r.read().decode()
        finally:
            reader = threading.Thread(
                target=lambda: err.append(p.stderr.read()), daemon=True)
            reader.start()
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(HANG_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            reader.join(HANG_S)
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(p.returncode, 0)
        ev = [parse_logfmt(l) for l in
              err[0].decode(errors="replace").splitlines()]
        app = [e for e in ev if e.get("stream") == "stdout" and
               re.fullmatch(r"\d+ *", e["msg"])]
        raw = [e for e in ev if e["msg"] in ("raw 4", "bad \ufffd byte 4")]
        warned = [e for e in ev if e["msg"].startswith("app output dropped")]
        self.assertGreater(len(warned), 0, ev[-5:])
        self.assertEqual(warned[0]["level"], "warn")
        dropped = max(e["dropped_total"] for e in warned)
        # Every line the app wrote (6,000, and raw's 2) was either logged
        # or counted as dropped (the last drops are said by the next
        # warning, or at exit).
        self.assertGreater(dropped, 0)
        self.assertLess(len(app), 6000)
        self.assertEqual(len(app) + len(raw) + dropped, 6002)
        # /metrics counted them as they went (what was still in the pipes
        # then is not in it).
        seen = {k: int(v) for k, v in re.findall(
            r"^(gild_app_log_lines(?:_dropped)?_total) (\d+)$", metrics,
            re.M)}
        self.assertGreater(seen["gild_app_log_lines_dropped_total"], 0)
        self.assertLessEqual(seen["gild_app_log_lines_dropped_total"],
                             dropped)
        self.assertGreater(seen["gild_app_log_lines_total"], 0)


class ParserTest(unittest.TestCase):
    """The test's own logfmt parser refuses what is not logfmt."""

    def test_refuses(self):
        for bad in ('time=1 level=info msg="a', "plain text", "a=1 a=2",
                    'time=1 level=info msg="x" junk'):
            with self.assertRaises(ValueError, msg=bad):
                parse_logfmt(bad)
        self.assertEqual(parse_logfmt('time=t level=info msg="a \\"b\\" c" '
                                      'n=5'),
                         {"time": "t", "level": "info", "msg": 'a "b" c',
                          "n": 5})


if __name__ == "__main__":
    unittest.main()
