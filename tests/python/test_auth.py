"""--token: every request needs it; the clients send it; no token on a
non-loopback address unless --insecure."""
import json
import os
import resource
import subprocess
import sys
import unittest

from gildproc import ROOT, B, Gild, gildctl

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402 (its extension is built in the plain build)

APP = os.path.join(ROOT, "tests", "apps", "probes.py")
TOKEN = "s3cret-token"


class TokenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(app=APP, workers=1,
                        args=("--token", TOKEN, "--http", "127.0.0.1:0"))

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def test_gildctl(self):
        url = self.gild.url
        rc, out, err = gildctl("call", url, "ping")
        self.assertEqual(rc, 1)
        self.assertIn("UNAUTHENTICATED", err)
        self.assertIn("none was sent", err)
        rc, out, err = gildctl("--token", "wrong", "call", url, "ping")
        self.assertEqual(rc, 1)
        self.assertIn("UNAUTHENTICATED: wrong token", err)
        rc, out, err = gildctl("--token", TOKEN[:-1], "call", url, "ping")
        self.assertIn("UNAUTHENTICATED", err)  # a prefix is not enough
        self.assertEqual(gildctl("--token", TOKEN, "call", url, "ping"),
                         (0, '"pong"\n', ""))
        # Every kind of request, not only calls.
        rc, out, err = gildctl("status", url)
        self.assertIn("UNAUTHENTICATED", err)
        self.assertEqual(gildctl("--token", TOKEN, "status", url)[0], 0)

    def test_gildctl_from_environment(self):
        env = dict(os.environ, GILD_TOKEN=TOKEN)
        rc, out, _ = gildctl("call", self.gild.url, "ping", env=env)
        self.assertEqual((rc, out), (0, '"pong"\n'))

    @unittest.skipIf(SANITIZED,
                     "the Python client is tested in the plain build")
    def test_python_client(self):
        with gild.connect(self.gild.url, token=TOKEN, timeout=30) as c:
            self.assertEqual(c.call("ping"), "pong")
        with gild.connect(self.gild.url, token="nope", timeout=30) as c:
            with self.assertRaises(gild.Unauthenticated):
                c.call("ping")
        saved = os.environ.pop("GILD_TOKEN", None)
        try:
            with gild.connect(self.gild.url, timeout=30) as c:
                with self.assertRaises(gild.Unauthenticated):
                    c.call("ping")
            os.environ["GILD_TOKEN"] = TOKEN
            with gild.connect(self.gild.url, timeout=30) as c:
                self.assertEqual(c.call("ping"), "pong")
        finally:
            os.environ.pop("GILD_TOKEN", None)
            if saved is not None:
                os.environ["GILD_TOKEN"] = saved

    def test_refused_calls_are_counted(self):
        import urllib.request
        gildctl("--token", "bad", "call", self.gild.url, "ping")
        with urllib.request.urlopen(self.gild.http_url + "/metrics",
                                    timeout=10) as r:
            text = r.read().decode()
        self.assertIn('gild_calls_total{function="ping",'
                      'code="UNAUTHENTICATED"}', text)


def core_limit(pid):
    """[soft, hard] core file size limit of a process, as /proc says."""
    with open("/proc/%d/limits" % pid) as f:
        line = [l for l in f if l.startswith("Max core file size")][0]
    return line.split()[4:6]


class WorkerCoreTest(unittest.TestCase):
    def test_workers_dump_no_core(self):
        """A worker's memory (the app's data, the calls' arguments) is
        never written to a core file: RLIMIT_CORE is 0, forked or exec'd,
        even when gild itself may dump core."""
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        if hard == 0:
            self.skipTest("core dumps are off for this whole session")
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_CORE,
                        (soft, hard))
        for spawn in ("fork", "exec"):
            g = Gild(app=APP, workers=2, args=("--spawn", spawn))
            try:
                rc, out, err = gildctl("status", g.url)
                self.assertEqual(rc, 0, err)
                pids = [w["pid"] for w in json.loads(out)["workers"]]
                self.assertEqual(len(pids), 2)
                self.assertNotEqual(core_limit(g.proc.pid), ["0", "0"])
                for pid in pids:
                    self.assertEqual(core_limit(pid), ["0", "0"], spawn)
            finally:
                self.assertEqual(g.stop(), 0)


class ListenTest(unittest.TestCase):
    def serve(self, *args, env=None):
        return subprocess.run(
            [os.path.join(B, "gild"), "serve", APP, *args],
            capture_output=True, timeout=60,
            env=dict(os.environ if env is None else env))

    def test_no_token_on_a_public_address(self):
        env = {k: v for k, v in os.environ.items() if k != "GILD_TOKEN"}
        for url in ("tcp://0.0.0.0:0", "ws://0.0.0.0:0/x", "tcp://[::]:0"):
            p = self.serve("--listen", url, env=env)
            self.assertEqual(p.returncode, 2, url)
            self.assertIn(b"refusing to listen on " + url.encode() +
                          b" without a token", p.stderr)
            self.assertIn(b"--insecure", p.stderr)

    def test_public_address_with_token_or_insecure(self):
        env = {k: v for k, v in os.environ.items() if k != "GILD_TOKEN"}
        for args, extra_env in ((("--token", TOKEN), {}),
                                (("--insecure",), {}),
                                ((), {"GILD_TOKEN": TOKEN})):
            g = None
            saved = dict(os.environ)
            os.environ.clear()
            os.environ.update(env, **extra_env)
            try:
                g = Gild(app=APP, workers=1,
                         listen="tcp://0.0.0.0:0", args=args)
                port = g.url.rsplit(":", 1)[1]
                tok = () if args == ("--insecure",) else ("--token", TOKEN)
                rc, out, err = gildctl(*tok, "call",
                                       "tcp://127.0.0.1:" + port, "ping")
                self.assertEqual((rc, out), (0, '"pong"\n'), err)
            finally:
                os.environ.clear()
                os.environ.update(saved)
                if g is not None:
                    self.assertEqual(g.stop(), 0)

    def test_empty_token_refused(self):
        p = self.serve("--listen", "tcp://127.0.0.1:0", "--token", "")
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--token", p.stderr)


if __name__ == "__main__":
    unittest.main()
