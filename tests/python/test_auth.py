"""--token: every request needs it; the clients send it; no token where
others could call (a non-loopback address, ws://, abstract://, exec and
pickle) unless --insecure; web pages only from --ws-allow-origin."""
import base64
import json
import os
import resource
import socket
import struct
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

    @unittest.skipIf(SANITIZED,
                     "the Python client is tested in the plain build")
    def test_python_m_gild_token(self):
        """python3 -m gild takes --token as gildctl does."""
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "client-lib",
                                                        "python"))
        env.pop("GILD_TOKEN", None)

        def run(*args):
            p = subprocess.run([sys.executable, "-m", "gild", *args],
                               env=env, capture_output=True, text=True,
                               timeout=60)
            return p.returncode, p.stdout, p.stderr
        self.assertEqual(run("--token", TOKEN, "call", self.gild.url,
                             "ping")[:2], (0, '"pong"\n'))
        rc, out, err = run("--token", "wrong", "call", self.gild.url, "ping")
        self.assertEqual(rc, 1)
        self.assertIn("UNAUTHENTICATED", err)
        rc, out, err = run("call", self.gild.url, "ping")
        self.assertEqual(rc, 1)
        self.assertIn("UNAUTHENTICATED", err)

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

    def test_token_needed(self):
        """Without --token or --insecure, gild refuses to start wherever
        someone other than this machine's users, or a web page, could call
        it, or calls could run any code; a user@ in a listen URL is refused
        even with a token (nng drops it and binds the host after it)."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("GILD_TOKEN", "GILD_INSECURE")}
        abstract = "abstract://gild-test-%d" % os.getpid()
        cases = (
            (("--listen", "ws://127.0.0.1:0/x"), "web page"),
            (("--listen", abstract), "network namespace"),
            (("--listen", "tcp://127.0.0.1:0", "--allow-exec"),
             "refusing --allow-exec without a token"),
            (("--listen", "tcp://127.0.0.1:0", "--allow-pickle"),
             "refusing --allow-pickle without a token"),
            (("--listen", "tcp://127.evil.example:0"),
             "refusing to listen on tcp://127.evil.example:0 without a"),
        )
        for args, why in cases:
            p = self.serve(*args, env=env)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(why, p.stderr.decode(), args)
            self.assertIn("--insecure", p.stderr.decode(), args)
        for extra in ((), ("--token", TOKEN), ("--insecure",)):
            p = self.serve("--listen", "ws://127.0.0.1@0.0.0.0:0/x", *extra,
                           env=env)
            self.assertEqual(p.returncode, 2, extra)
            self.assertIn("no user@ part, got 'ws://127.0.0.1@0.0.0.0:0/x'",
                          p.stderr.decode())
        # The same settings with a token pass the check (--print-config
        # checks what a start would, and starts nothing).
        for args, _ in cases:
            p = self.serve(*args, "--token", TOKEN, "--print-config",
                           env=env)
            self.assertEqual(p.returncode, 0, (args, p.stderr))

    def test_empty_token_refused(self):
        p = self.serve("--listen", "tcp://127.0.0.1:0", "--token", "")
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--token", p.stderr)


class SecretTest(unittest.TestCase):
    """App code cannot read the token: gild takes it out of its own
    environment (and its command line) before starting workers, and
    workers are not dumpable."""

    def test_workers_cannot_read_the_token(self):
        peek_app = os.path.join(ROOT, "tests", "apps", "peek.py")
        secret = "tok-%d-secret" % os.getpid()
        for spawn, token_args, env_token in (("fork", (), secret),
                                             ("exec", ("--token", secret),
                                              None)):
            saved = dict(os.environ)
            os.environ.pop("GILD_TOKEN", None)
            os.environ["GILD_TEST_MARK"] = "visible"
            if env_token:
                os.environ["GILD_TOKEN"] = env_token
            try:
                g = Gild(app=peek_app, workers=1,
                         args=("--spawn", spawn, *token_args))
            finally:
                os.environ.clear()
                os.environ.update(saved)
            with g:
                tok = ("--token", secret)
                rc, out, err = gildctl(*tok, "call", g.url, "parent")
                self.assertEqual(rc, 0, err)
                pids = sorted({g.proc.pid, int(out)})
                self.assertEqual(len(pids), 2 if spawn == "fork" else 1)
                rc, out, err = gildctl(*tok, "call", g.url, "peek",
                                       json.dumps(pids))
                self.assertEqual(rc, 0, err)
                seen = json.loads(out)
                # The environment otherwise reaches the app.
                self.assertEqual(seen["environ"].get("GILD_TEST_MARK"),
                                 "visible")
                self.assertNotIn("GILD_TOKEN", list(seen["environ"]))
                self.assertEqual(seen["dumpable"], 0, spawn)
                for key, text in seen.items():
                    self.assertNotIn(secret, json.dumps(text), (spawn, key))
                # Here (root, or gild's user) /proc was read: the check
                # above looked at the real text. As another user it is
                # unreadable, which keeps the token too.
                if os.getuid() == 0:
                    for pid in pids:
                        self.assertFalse(seen["%d/environ" % pid]
                                         .startswith("unreadable"))
                        self.assertIn("GILD_TEST_MARK=visible",
                                      seen["%d/environ" % pid])


def free_port():
    """A loopback TCP port free now (nng's ws:// reports no bound port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ws_ping(port, origin):
    """Connects to gild's ws://127.0.0.1:port/gild as a browser would (an
    Origin header unless origin is None), sends a Ping with the token and
    returns the Reply; or None when gild closes the connection (or sends a
    WebSocket Close) instead."""
    import gild_pb2  # generated by protoc from proto/gild.proto
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        head = ["GET /gild HTTP/1.1", "Host: 127.0.0.1:%d" % port,
                "Upgrade: websocket", "Connection: Upgrade",
                "Sec-WebSocket-Key: " +
                base64.b64encode(os.urandom(16)).decode(),
                "Sec-WebSocket-Version: 13",
                "Sec-WebSocket-Protocol: rep.sp.nanomsg.org"]
        if origin is not None:
            head.append("Origin: " + origin)
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return None
                buf += chunk
            status, buf = buf.split(b"\r\n\r\n", 1)
            if not status.startswith(b"HTTP/1.1 101"):
                return None
            req = gild_pb2.Request(id=7, token=TOKEN)
            req.ping.payload = b"hi"
            # REQ's header (a request id, top bit set), then the Request,
            # in one masked binary frame.
            body = b"\x80\x00\x00\x01" + req.SerializeToString()
            mask = os.urandom(4)
            s.sendall(bytes([0x82, 0x80 | len(body)]) + mask +
                      bytes(b ^ mask[i % 4] for i, b in enumerate(body)))

            def need(n):
                nonlocal buf
                while len(buf) < n:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise ConnectionResetError
                    buf += chunk
            need(2)
            n, off = buf[1] & 0x7f, 2
            if n == 126:
                need(4)
                n, off = struct.unpack(">H", buf[2:4])[0], 4
            need(off + n)
            frame = buf[off:off + n]
        except (ConnectionResetError, BrokenPipeError):
            return None
        if buf[0] & 0x0f == 8:  # a Close frame: refused
            return None
        assert frame[:4] == b"\x80\x00\x00\x01", frame
        return gild_pb2.Reply.FromString(frame[4:])


class WebSocketOriginTest(unittest.TestCase):
    """nng's WebSocket listener takes any page's upgrade; gild closes those
    that carry an Origin not in --ws-allow-origin, token or not."""

    def test_origin(self):
        port = free_port()
        with Gild(app=APP, workers=1, listen="ws://127.0.0.1:%d/gild" % port,
                  args=("--token", TOKEN, "--ws-allow-origin",
                        "http://good.example")) as g:
            for origin in (None, "http://good.example",
                           "HTTP://GOOD.EXAMPLE"):
                reply = ws_ping(port, origin)
                self.assertIsNotNone(reply, origin)
                self.assertEqual((reply.id, reply.WhichOneof("body")),
                                 (7, "pong"), origin)
            for origin in ("http://evil.example", "null",
                           "http://good.example.evil.example",
                           "http://good.example:8080"):
                self.assertIsNone(ws_ping(port, origin), origin)
            # The server still serves (and said why it refused).
            self.assertEqual(ws_ping(port, None).WhichOneof("body"), "pong")
        self.assertIn("origin=http://evil.example", g.err)
        self.assertIn("--ws-allow-origin", g.err)


if __name__ == "__main__":
    unittest.main()
