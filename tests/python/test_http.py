"""The HTTP side port (gild serve --http): /healthz, /readyz, /status."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from gildproc import ROOT, B, Gild, gildctl

APP = os.path.join(ROOT, "tests", "apps", "probes.py")


def get(url, method="GET"):
    """(status, body) of one HTTP request; errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def poll(url, want, timeout=30):
    """Polls url every 5 ms until it answers status want; returns the
    seconds that took and the body. Fails after timeout seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        code, body = get(url)
        if code == want:
            return time.monotonic() - t0, body
        time.sleep(0.005)
    raise AssertionError("%s did not answer %d within %ss" %
                         (url, want, timeout))


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="gild-http-")
        cls.slow = os.path.join(cls.tmp.name, "slow")
        os.environ["GILD_TEST_SLOW_START"] = cls.slow
        # exec: each new worker imports the app, so it can be made slow.
        cls.gild = Gild(app=APP, workers=2,
                        args=("--http", "127.0.0.1:0", "--spawn", "exec"))
        cls.http = cls.gild.http_url

    @classmethod
    def tearDownClass(cls):
        code = cls.gild.stop()
        del os.environ["GILD_TEST_SLOW_START"]
        cls.tmp.cleanup()
        assert code == 0, "gild exited %d" % code

    def test_healthz(self):
        self.assertEqual(get(self.http + "/healthz"), (200, "ok\n"))
        self.assertEqual(get(self.http + "/healthz", "HEAD")[0], 200)

    def test_status_is_gildctl_status(self):
        code, body = get(self.http + "/status")
        self.assertEqual(code, 200)
        over_http = json.loads(body)
        rc, out, err = gildctl("status", self.gild.url)
        self.assertEqual(rc, 0, err)
        over_nng = json.loads(out)
        self.assertEqual(set(over_http), set(over_nng))
        # What does not move between the two requests is equal.
        for k in ("app", "runtime", "functions", "server_version",
                  "python_version", "threads", "state"):
            self.assertEqual(over_http[k], over_nng[k], k)
        self.assertEqual([w["pid"] for w in over_http["workers"]],
                         [w["pid"] for w in over_nng["workers"]])
        self.assertEqual(sorted(over_http["functions"]),
                         ["count", "crash", "getenv", "nap", "ping"])

    def test_unknown_path_and_method(self):
        code, body = get(self.http + "/nope")
        self.assertEqual(code, 404)
        self.assertIn("/readyz", body)
        self.assertNotEqual(get(self.http + "/readyz", "POST")[0], 200)

    def test_readyz_follows_the_workers(self):
        """All workers killed: 503 at once; 200 when they are back, and
        calls work again."""
        self.assertEqual(poll(self.http + "/readyz", 200)[1], "ready\n")
        status = json.loads(get(self.http + "/status")[1])
        pids = [w["pid"] for w in status["workers"]]
        open(self.slow, "w").close()  # the replacements take a second
        try:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            took, body = poll(self.http + "/readyz", 503)
            self.assertEqual(body, "not ready: no worker is ready\n")
            # The loop still answers while no worker is ready.
            self.assertEqual(get(self.http + "/healthz")[0], 200)
        finally:
            os.unlink(self.slow)
        back, _ = poll(self.http + "/readyz", 200)
        print("\n  /readyz: 503 %.0f ms after the kill, 200 again %.0f ms "
              "later" % (took * 1e3, back * 1e3))
        rc, out, err = gildctl("call", self.gild.url, "ping")
        self.assertEqual((rc, out), (0, '"pong"\n'), err)
        status = json.loads(get(self.http + "/status")[1])
        self.assertTrue(set(w["pid"] for w in status["workers"])
                        .isdisjoint(pids))


class MetricsTest(unittest.TestCase):
    """/metrics is valid Prometheus text (parsed by prometheus_client, the
    Debian python3-prometheus-client) and counts exactly the calls made."""

    def test_counts_every_call(self):
        from prometheus_client.parser import text_string_to_metric_families

        g = Gild(app=APP, workers=2,
                 args=("--http", "127.0.0.1:0", "--kill-grace", "0.1"))

        def restarted(n):
            """Waits until n workers were replaced and all are ready."""
            for _ in range(1000):
                ws = json.loads(get(g.http_url + "/status")[1])["workers"]
                if (sum(w["restarts"] for w in ws) == n and
                        all(w["state"] == "ready" for w in ws)):
                    return
                time.sleep(0.01)
            self.fail("no %d restarts" % n)

        try:
            for _ in range(5):
                self.assertEqual(gildctl("call", g.url, "ping")[0], 0)
            # Past its deadline in time.sleep (C): its worker is killed
            # after --kill-grace.
            rc, _, err = gildctl("--timeout", "0.2", "call", g.url, "nap", "5")
            self.assertIn("DEADLINE_EXCEEDED", err)
            restarted(1)
            for _ in range(2):
                self.assertEqual(gildctl("call", g.url, "nosuch")[0], 1)
            rc, out, err = gildctl("stream", g.url, "count", "3")
            self.assertEqual((rc, out), (0, "0\n1\n2\n"), err)
            # A worker killed from outside: a restart for a signal.
            pid = json.loads(get(g.http_url + "/status")[1])["workers"][0]["pid"]
            os.kill(pid, signal.SIGKILL)
            restarted(2)

            code, text = get(g.http_url + "/metrics")
            self.assertEqual(code, 200)
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            calls = {(s.labels["function"], s.labels["code"]): s.value
                     for s in fams["gild_calls"].samples}
            self.assertEqual(calls, {("ping", "OK"): 5,
                                     ("nap", "DEADLINE_EXCEEDED"): 1,
                                     ("(unknown)", "NOT_FOUND"): 2,
                                     ("count", "OK"): 1})
            self.assertEqual(fams["gild_calls"].type, "counter")
            hist = fams["gild_call_duration_seconds"]
            self.assertEqual(hist.type, "histogram")
            by = {}
            for s in hist.samples:
                by.setdefault(s.labels["function"], []).append(s)
            ping = by["ping"]
            buckets = [s.value for s in ping if s.name.endswith("_bucket")]
            self.assertEqual(buckets, sorted(buckets))  # cumulative
            count = [s.value for s in ping if s.name.endswith("_count")]
            self.assertEqual(count, [5])
            self.assertEqual(buckets[-1], 5)  # le="+Inf"
            nap = [s for s in by["nap"] if s.name.endswith("_sum")][0]
            self.assertGreaterEqual(nap.value, 0.2)  # it ran to its deadline
            restarts = {s.labels["reason"]: s.value
                        for s in fams["gild_worker_restarts"].samples}
            self.assertEqual(restarts, {"signal": 1, "exit": 0, "killed": 1,
                                        "worker-memory": 0})
            recycles = {s.labels["reason"]: s.value
                        for s in fams["gild_worker_recycles"].samples}
            self.assertEqual(recycles, {"max-jobs": 0, "max-rss": 0,
                                        "reload": 0})
            workers = {s.labels["state"]: s.value
                       for s in fams["gild_workers"].samples}
            self.assertEqual(workers["ready"], 2)
            self.assertEqual(sum(workers.values()), 2)
            single = {n: fams[n].samples[0].value for n in
                      ("gild_queue_depth", "gild_calls_in_flight",
                       "gild_draining", "gild_received_bytes",
                       "gild_sent_bytes")}
            self.assertEqual(single["gild_queue_depth"], 0)
            self.assertEqual(single["gild_calls_in_flight"], 0)
            self.assertEqual(single["gild_draining"], 0)
            self.assertGreater(single["gild_received_bytes"], 0)
            self.assertGreater(single["gild_sent_bytes"], 0)
        finally:
            self.assertEqual(g.stop(), 0)


class HttpDrainTest(unittest.TestCase):
    def test_draining_is_not_ready(self):
        """After SIGTERM, while a call finishes: /readyz 503 (draining),
        /healthz 200, and the call still succeeds."""
        g = Gild(app=APP, workers=1, args=("--http", "127.0.0.1:0"))
        try:
            call = subprocess.Popen(
                [os.path.join(B, "gildctl"), "call", g.url, "nap", "1.5"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            # Wait until the call runs, then ask the server to stop.
            for _ in range(500):
                status = json.loads(get(g.http_url + "/status")[1])
                if status["in_flight"] == 1:
                    break
                time.sleep(0.01)
            self.assertEqual(status["in_flight"], 1)
            g.proc.send_signal(signal.SIGTERM)
            _, body = poll(g.http_url + "/readyz", 503, timeout=5)
            self.assertIn("draining", body)
            self.assertEqual(get(g.http_url + "/healthz")[0], 200)
            out, err = call.communicate(timeout=30)
            self.assertEqual((call.returncode, out), (0, b"1.5\n"), err)
        finally:
            self.assertEqual(g.stop(), 0)

    def test_bad_address_refused(self):
        for bad in ("nonsense", "127.0.0.1:99999", "[::1:80", ":80x"):
            p = subprocess.run(
                [os.path.join(B, "gild"), "serve", APP, "--listen",
                 "tcp://127.0.0.1:0", "--http", bad],
                capture_output=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, bad)
            self.assertIn(b"--http", p.stderr, bad)


if __name__ == "__main__":
    unittest.main()
