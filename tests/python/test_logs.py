"""gild's own log lines: logfmt or JSON (--log-format), and the slow-call
line (--slow-ms) with the call's request id."""
import json
import os
import re
import subprocess
import unittest

from gildproc import ROOT, B, Gild, gildctl

APP = os.path.join(ROOT, "tests", "apps", "probes.py")


def log_text(g):
    with open(g.log.name, errors="replace") as f:
        return f.read()


class LogTest(unittest.TestCase):
    def test_json_lines_and_slow_call(self):
        g = Gild(app=APP, workers=1,
                 args=("--log-format", "json", "--slow-ms", "200"))
        try:
            self.assertEqual(gildctl("call", g.url, "nap", "0.3")[0], 0)
            self.assertEqual(gildctl("call", g.url, "ping")[0], 0)
            text = log_text(g)
        finally:
            self.assertEqual(g.stop(), 0)
        # Every line is a JSON object (the app's output too: test_applogs.py).
        events = [json.loads(l) for l in text.splitlines()
                  if l.startswith("{")]
        self.assertGreater(len(events), 2)
        for e in events:
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT[\d:.]+Z$")
            self.assertIn(e["level"], ("debug", "info", "warn", "error"))
            self.assertIsInstance(e["msg"], str)
        slow = [e for e in events if e["msg"].startswith("slow call")]
        self.assertEqual(len(slow), 1, slow)  # nap, not ping
        s = slow[0]
        self.assertEqual((s["level"], s["function"], s["code"]),
                         ("warn", "nap", "OK"))
        self.assertIsInstance(s["request_id"], int)
        self.assertGreater(s["request_id"], 0)
        self.assertGreaterEqual(s["duration_ms"], 300)

    def test_lost_call_has_request_id(self):
        g = Gild(app=APP, workers=1, args=("--log-format", "json"))
        try:
            rc, _, err = gildctl("call", g.url, "crash")
            self.assertEqual(rc, 1)
            self.assertIn("WORKER_LOST", err)
            text = log_text(g)
        finally:
            self.assertEqual(g.stop(), 0)
        events = [json.loads(l) for l in text.splitlines()
                  if l.startswith("{")]
        lost = [e for e in events if "WORKER_LOST" in e["msg"]]
        self.assertEqual(len(lost), 1, events)
        self.assertEqual((lost[0]["level"], lost[0]["function"]),
                         ("warn", "crash"))
        self.assertGreater(lost[0]["request_id"], 0)
        self.assertIn("connection", lost[0])

    def test_logfmt_slow_call(self):
        g = Gild(app=APP, workers=1, args=("--slow-ms", "100"))
        try:
            rc, _, err = gildctl("--timeout", "0.15", "call", g.url, "nap",
                                 "0.3")
            self.assertIn("DEADLINE_EXCEEDED", err)
            text = log_text(g)
        finally:
            self.assertEqual(g.stop(), 0)
        lines = [l for l in text.splitlines() if 'msg="slow call' in l]
        self.assertEqual(len(lines), 1, text)
        self.assertRegex(lines[0], r"^time=\S+Z level=warn msg=\"slow call: "
                         r"'nap' took \d+ ms \(--slow-ms 100\)\" "
                         r"request_id=[1-9]\d* function=nap "
                         r"code=DEADLINE_EXCEEDED duration_ms=\d+ "
                         r"connection=\d+$")

    def test_bad_values_refused(self):
        for args, flag in ((("--log-format", "xml"), b"--log-format"),
                           (("--slow-ms", "-1"), b"--slow-ms"),
                           (("--slow-ms", "soon"), b"--slow-ms")):
            p = subprocess.run([os.path.join(B, "gild"), "serve", APP,
                                *args], capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(flag, p.stderr)


if __name__ == "__main__":
    unittest.main()
