"""SIGTERM without a call failing, and without one running twice: a draining
gild refuses new calls as not started (Error.not_started), and libgild (so
the Python client) sends them again to a server that is not draining.
tests/python/test_lb.py does the same through HAProxy."""
import collections
import json
import os
import signal
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from gildproc import ROOT, Gild

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
import gild  # noqa: E402

APP = os.path.join(ROOT, "tests", "apps", "ledger.py")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def named_gild(name, **kw):
    """A Gild serving the ledger app whose workers call themselves name."""
    old = os.environ.get("GILD_TEST_NAME")
    os.environ["GILD_TEST_NAME"] = name
    try:
        return Gild(app=APP, **kw)
    finally:
        if old is None:
            del os.environ["GILD_TEST_NAME"]
        else:
            os.environ["GILD_TEST_NAME"] = old


def ledger_counts(path):
    """{token: [server names that ran it]}."""
    runs = collections.defaultdict(list)
    with open(path) as f:
        for line in f:
            token, name = line.split()
            runs[token].append(name)
    return runs


def refused_calls(metrics_text, function):
    """gild_calls_total{function=..., code="UNAVAILABLE"} from /metrics."""
    for line in metrics_text.splitlines():
        if (line.startswith("gild_calls_total{") and
                'function="%s"' % function in line and
                'code="UNAVAILABLE"' in line):
            return float(line.split()[-1])
    return 0.0


def hold_then_drain(a, client, ledger, gate):
    """Starts a call on a (through client) that waits for the gate file,
    waits until a runs it, SIGTERMs a and waits until its /readyz says it
    drains; returns the held call's future."""
    held = client.submit("hold", ledger, "held", gate)
    for _ in range(6000):
        if json.loads(get(a.http_url + "/status")[1])["in_flight"] == 1:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the held call never ran")
    a.proc.send_signal(signal.SIGTERM)
    for _ in range(6000):
        if get(a.http_url + "/readyz")[0] == 503:
            break
        time.sleep(0.01)
    return held


@unittest.skipIf(os.environ.get("SANITIZE"),
                 "the native client is not built under sanitizers")
class DrainResendTest(unittest.TestCase):
    def drain_a_under(self, calls):
        """Two servers, one client connected to both. A is held draining
        (SIGTERM while a call runs on it); calls(c, ledger) then makes
        calls that go to both connections, so A refuses some (its /metrics
        counts them), and every one still succeeds, on B, exactly once:
        calls returns the names of the servers that answered and the
        ledger tokens it used. Then A finishes its call and exits 0."""
        tmp = tempfile.TemporaryDirectory()
        ledger = os.path.join(tmp.name, "ledger")
        gate = os.path.join(tmp.name, "gate")
        a = named_gild("a", workers=1, args=("--http", "127.0.0.1:0"))
        b = named_gild("b", workers=1)
        try:
            with gild.connect(a.url, timeout=60) as ca, \
                    gild.connect([a.url, b.url], timeout=60) as c:
                held = hold_then_drain(a, ca, ledger, gate)
                names, tokens = calls(c, ledger)
                self.assertEqual(names, ["b"] * len(tokens))
                # A refused its share: the resend is what made them work.
                refused = refused_calls(get(a.http_url + "/metrics")[1],
                                        "record")
                self.assertGreaterEqual(refused, 1)
                open(gate, "w").close()
                self.assertEqual(held.result(60), "a")
            self.assertEqual(a.proc.wait(60), 0)
            runs = ledger_counts(ledger)
            self.assertEqual(runs.pop("held"), ["a"])
            self.assertEqual(runs, {t: ["b"] for t in tokens})
        finally:
            open(gate, "w").close()
            a.stop()
            b.stop()
            tmp.cleanup()

    def test_refused_calls_go_to_the_other_server(self):
        """60 calls one at a time, alternating between the connections."""
        def calls(c, ledger):
            tokens = ["t%d" % i for i in range(60)]
            return [c.call("record", ledger, t) for t in tokens], tokens
        self.drain_a_under(calls)

    def test_refused_batch_calls_go_to_the_other_server(self):
        """60 calls in batches of 10 (starmap), the batches alternating
        between the connections: A refuses each call of a batch it gets,
        and each is sent again, alone, to B."""
        def calls(c, ledger):
            tokens = ["m%d" % i for i in range(60)]
            return list(c.starmap("record", [(ledger, t) for t in tokens],
                                  batch_size=10)), tokens
        self.drain_a_under(calls)

    def test_lone_draining_server(self):
        """With nowhere else to go, a refused call ends with UNAVAILABLE
        saying it was not started, and it never ran."""
        tmp = tempfile.TemporaryDirectory()
        ledger = os.path.join(tmp.name, "ledger")
        gate = os.path.join(tmp.name, "gate")
        a = named_gild("a", workers=1, args=("--http", "127.0.0.1:0"))
        try:
            with gild.connect(a.url, timeout=60) as c:
                held = hold_then_drain(a, c, ledger, gate)
                with self.assertRaises(gild.Unavailable) as e:
                    c.call("record", ledger, "late")
                self.assertIn("not started", str(e.exception))
                open(gate, "w").close()
                self.assertEqual(held.result(60), "a")
            self.assertEqual(a.proc.wait(60), 0)
            self.assertEqual(dict(ledger_counts(ledger)), {"held": ["a"]})
        finally:
            open(gate, "w").close()
            a.stop()
            tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
