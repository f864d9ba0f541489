"""tls+tcp:// listeners (--tls-cert, --tls-key, --tls-ca): clients verify
the server against their CA file, and with --tls-ca the server requires
client certificates. Certificates are made at run time with openssl
(tests/tls/make-certs.sh); gildctl covers libgild, then the Python client."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

from gildproc import ROOT, B, Gild, gildctl

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402 (its extension is built in the plain build)

APP = os.path.join(ROOT, "tests", "apps", "probes.py")
MAKE_CERTS = os.path.join(ROOT, "tests", "tls", "make-certs.sh")
TLS_ENV = ("GILD_TLS_CA", "GILD_TLS_CERT", "GILD_TLS_KEY")

certs = None  # the directory of this run's certificates


def setUpModule():
    global certs
    certs = tempfile.mkdtemp(prefix="gild-tls-")
    subprocess.run([MAKE_CERTS, certs], check=True, capture_output=True,
                   timeout=120)
    for name in TLS_ENV:  # the tests say what they mean
        os.environ.pop(name, None)


def tearDownModule():
    shutil.rmtree(certs, ignore_errors=True)


def pem(name):
    return os.path.join(certs, name)


def port_of(url):
    return int(url.rsplit(":", 1)[1])


def ping_after_restart(c):
    """c.call("ping") once the server c was connected to has exited and
    another is up; returns its result. At most one retry, because the
    first call can race the client's notice that the old connection
    closed: nng reports a pipe's removal on its own thread a moment after
    the server exits, and a call sent before that goes out on the dead
    connection and fails UNAVAILABLE ("connection to URL lost"). The
    removal is handled before that failure is, so the retry waits (up to
    5 s) for the redial instead. A retry that fails too is a real failure:
    raised with both errors."""
    try:
        return c.call("ping")
    except gild.Unavailable as e:
        first = e
    print("\n  first ping after the restart failed (retrying once): %s"
          % first, file=sys.stderr)
    try:
        return c.call("ping")
    except gild.Unavailable as second:
        raise AssertionError("the ping failed twice after the restart: "
                             "first %s, then %s" % (first, second)) from first


class ServerAuthTest(unittest.TestCase):
    """A server with a certificate and no --tls-ca: any client that trusts
    its CA may connect."""

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(app=APP, workers=1, listen="tls+tcp://127.0.0.1:0",
                        args=("--tls-cert", pem("server.pem"),
                              "--tls-key", pem("server.key")))
        cls.url = cls.gild.url
        cls.port = port_of(cls.url)

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def test_listening_url_has_the_real_port(self):
        self.assertTrue(self.url.startswith("tls+tcp://127.0.0.1:"))
        self.assertNotEqual(self.port, 0)

    def test_right_ca_calls(self):
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"), "call", self.url,
                               "ping")
        self.assertEqual((rc, out), (0, '"pong"\n'), err)
        rc, out, err = gildctl("--tls-ca=" + pem("ca.pem"), "stream",
                               self.url, "count", "3")
        self.assertEqual((rc, out), (0, "0\n1\n2\n"), err)

    def test_status_over_tls(self):
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"), "status", self.url)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(json.loads(out)["workers"]), 1)

    def test_ca_from_environment(self):
        env = dict(os.environ, GILD_TLS_CA=pem("ca.pem"))
        rc, out, err = gildctl("call", self.url, "ping", env=env)
        self.assertEqual((rc, out), (0, '"pong"\n'), err)

    def test_host_name_in_the_certificate(self):
        # The certificate names localhost and 127.0.0.1; the URL's host is
        # what is checked.
        url = "tls+tcp://localhost:%d" % self.port
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"), "call", url,
                               "ping")
        self.assertEqual((rc, out), (0, '"pong"\n'), err)

    def test_server_name_option(self):
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"),
                               "--tls-server-name", "localhost", "call",
                               self.url, "ping")
        self.assertEqual((rc, out), (0, '"pong"\n'), err)
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"),
                               "--tls-server-name=gild.example.com", "call",
                               self.url, "ping")
        self.assertEqual(rc, 1)
        self.assertIn("does not name 'gild.example.com'", err)

    def test_wrong_ca_fails_to_connect(self):
        # Bounded: gildctl() gives up (and fails the test) after 60 s.
        rc, out, err = gildctl("--tls-ca", pem("other-ca.pem"), "call",
                               self.url, "ping")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("UNAVAILABLE: cannot connect to " + self.url, err)
        self.assertIn("TLS handshake failed", err)
        self.assertIn(pem("other-ca.pem"), err)

    def test_no_ca_given_uses_the_system_bundle(self):
        # The test CA is not in the system's bundle: refused.
        rc, out, err = gildctl("call", self.url, "ping")
        self.assertEqual(rc, 1)
        self.assertIn("TLS handshake failed", err)

    def test_plain_tcp_client_cannot_talk_to_it(self):
        url = "tcp://127.0.0.1:%d" % self.port
        rc, out, err = gildctl("call", url, "ping")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("UNAVAILABLE: cannot connect to " + url, err)
        # ... nor does a raw TCP client get any plain-text answer.
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=30) as s:
            s.sendall(b"\x00SP\x00\x00\x30\x00\x00")  # an SP header (REQ)
            data = s.recv(64)
        self.assertNotIn(b"SP", data)  # a TLS alert, or closed

    def test_stock_nngcat_client(self):
        """Any nng client that sets up TLS can call: nngcat --cacert."""
        import gild_pb2  # generated by protoc from proto/gild.proto
        req = gild_pb2.Request(id=42)
        req.call.function = "ping"

        def nngcat(ca):
            return subprocess.run(
                ["nngcat", "--req0", "--dial", self.url, "--cacert", ca,
                 "--raw", "--recv-timeout", "20",
                 "--data", req.SerializeToString()],
                capture_output=True, timeout=60)
        p = nngcat(pem("ca.pem"))
        reply = gild_pb2.Reply.FromString(p.stdout)
        self.assertEqual((reply.id, reply.result.str_value), (42, b"pong"))
        p = nngcat(pem("other-ca.pem"))
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(p.stdout, b"")

    def test_bad_ca_file(self):
        rc, out, err = gildctl("--tls-ca", pem("nope.pem"), "ping", self.url)
        self.assertEqual(rc, 2)
        self.assertIn("--tls-ca %s: No such file" % pem("nope.pem"), err)
        rc, out, err = gildctl("--tls-ca", pem("server.key"), "ping",
                               self.url)
        self.assertEqual(rc, 2)
        self.assertIn("tls_ca %s: no PEM certificate" % pem("server.key"),
                      err)

    @unittest.skipIf(SANITIZED,
                     "the Python client is tested in the plain build")
    def test_python_client(self):
        with gild.connect(self.url, tls_ca=pem("ca.pem"), timeout=30) as c:
            self.assertEqual(c.call("ping"), "pong")
            self.assertEqual(list(c.stream("count", 3)), [0, 1, 2])
        with self.assertRaises(ConnectionError) as cm:
            gild.connect(self.url, tls_ca=pem("other-ca.pem"))
        self.assertIn("TLS handshake failed", str(cm.exception))
        # The name checked is the URL's host, or tls_server_name.
        with self.assertRaises(ConnectionError) as cm:
            gild.connect(self.url, tls_ca=pem("ca.pem"),
                         tls_server_name="gild.example.com")
        self.assertIn("gild.example.com", str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            gild.connect(self.url, tls_ca=pem("nope.pem"))
        # python3 -m gild takes gildctl's TLS options.
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "client-lib",
                                                        "python"))
        for opts, rc, want in (
                (("--tls-ca", pem("ca.pem")), 0, '"pong"'),
                (("--tls-ca", pem("other-ca.pem")), 1, "TLS handshake failed"),
                (("--tls-ca", pem("ca.pem"), "--tls-server-name",
                  "gild.example.com"), 1, "gild.example.com")):
            p = subprocess.run([sys.executable, "-m", "gild", *opts, "call",
                                self.url, "ping"], env=env,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, rc, p.stderr)
            self.assertIn(want, p.stdout + p.stderr)
        self.assertIn("tls_ca", str(cm.exception))
        with self.assertRaises(ConnectionError):
            gild.connect("tcp://127.0.0.1:%d" % self.port)
        os.environ["GILD_TLS_CA"] = pem("ca.pem")
        try:
            with gild.connect(self.url, timeout=30) as c:
                self.assertEqual(c.call("ping"), "pong")
        finally:
            del os.environ["GILD_TLS_CA"]


class MutualTLSTest(unittest.TestCase):
    """--tls-ca on the server: clients need a certificate its CA signed.
    The server's key is inside its --tls-cert file here."""

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(app=APP, workers=1, listen="tls+tcp://localhost:0",
                        args=("--tls-cert", pem("server-combined.pem"),
                              "--tls-ca", pem("ca.pem")))
        cls.url = cls.gild.url

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def test_client_without_certificate_refused(self):
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"), "call", self.url,
                               "ping")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("UNAVAILABLE: cannot connect to " + self.url, err)
        self.assertIn("client certificate", err)

    def test_client_with_certificate_calls(self):
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"),
                               "--tls-cert", pem("client.pem"),
                               "--tls-key", pem("client.key"),
                               "call", self.url, "ping")
        self.assertEqual((rc, out), (0, '"pong"\n'), err)
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"),
                               "--tls-cert", pem("client.pem"),
                               "--tls-key", pem("client.key"),
                               "status", self.url)
        self.assertEqual(rc, 0, err)
        self.assertIn("workers", json.loads(out))

    def test_client_certificate_from_another_ca_refused(self):
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"),
                               "--tls-cert", pem("other-client.pem"),
                               "--tls-key", pem("other-client.key"),
                               "call", self.url, "ping")
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("UNAVAILABLE", err)

    def test_client_files_from_environment(self):
        env = dict(os.environ, GILD_TLS_CA=pem("ca.pem"),
                   GILD_TLS_CERT=pem("client.pem"),
                   GILD_TLS_KEY=pem("client.key"))
        rc, out, err = gildctl("call", self.url, "ping", env=env)
        self.assertEqual((rc, out), (0, '"pong"\n'), err)

    def test_client_key_missing(self):
        rc, out, err = gildctl("--tls-ca", pem("ca.pem"),
                               "--tls-cert", pem("client.pem"),
                               "call", self.url, "ping")
        self.assertEqual(rc, 2)
        self.assertIn("tls_cert %s: no PEM private key in it (give tls_key "
                      "too)" % pem("client.pem"), err)

    @unittest.skipIf(SANITIZED,
                     "the Python client is tested in the plain build")
    def test_python_client(self):
        with self.assertRaises(ConnectionError):
            gild.connect(self.url, tls_ca=pem("ca.pem"))
        with gild.connect(self.url, tls_ca=pem("ca.pem"),
                          tls_cert=pem("client.pem"),
                          tls_key=pem("client.key"), timeout=30) as c:
            self.assertEqual(c.call("ping"), "pong")
        # The key may sit in the certificate's file.
        both = pem("client-combined.pem")
        with open(both, "w") as f:
            for name in ("client.pem", "client.key"):
                with open(pem(name)) as part:
                    f.write(part.read())
        with gild.connect(self.url, tls_ca=pem("ca.pem"), tls_cert=both,
                          timeout=30) as c:
            self.assertEqual(c.call("ping"), "pong")
        # python3 -m gild: --tls-cert and --tls-key, as gildctl.
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "client-lib",
                                                        "python"))
        for opts, rc in (((), 1),
                         (("--tls-cert", pem("client.pem"), "--tls-key",
                           pem("client.key")), 0)):
            p = subprocess.run([sys.executable, "-m", "gild", "--tls-ca",
                                pem("ca.pem"), *opts, "call", self.url,
                                "ping"], env=env, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, rc, p.stderr)
            if rc == 0:
                self.assertEqual(p.stdout, '"pong"\n')


@unittest.skipIf(SANITIZED, "the Python client is tested in the plain build")
class RedialTest(unittest.TestCase):
    def test_redial_keeps_tls(self):
        """A server restarted on the same port: the client's redial goes
        through TLS again (nng redials with the same dialer)."""
        args = ("--tls-cert", pem("server.pem"), "--tls-key",
                pem("server.key"))
        g = Gild(app=APP, workers=1, listen="tls+tcp://127.0.0.1:0",
                 args=args)
        url = g.url
        try:
            c = gild.connect(url, tls_ca=pem("ca.pem"), timeout=30)
            try:
                self.assertEqual(c.call("ping"), "pong")
                self.assertEqual(g.stop(), 0)
                g = Gild(app=APP, workers=1, listen=url, args=args)
                # A call waits up to 5 s for the redial.
                self.assertEqual(ping_after_restart(c), "pong")
            finally:
                c.close()
        finally:
            self.assertEqual(g.stop(), 0)


    def test_background_dial_uses_tls(self):
        """A URL whose server is down at connect time is dialled in the
        background, through TLS too: once that server is up (and the
        other gone), calls reach it."""
        args = ("--tls-cert", pem("server.pem"), "--tls-key",
                pem("server.key"))
        g1 = Gild(app=APP, workers=1, listen="tls+tcp://127.0.0.1:0",
                  args=args)
        g2 = Gild(app=APP, workers=1, listen="tls+tcp://127.0.0.1:0",
                  args=args)
        url2 = g2.url
        self.assertEqual(g2.stop(), 0)  # a port nobody listens on now
        try:
            c = gild.connect([g1.url, url2], tls_ca=pem("ca.pem"),
                             timeout=30)
            try:
                self.assertEqual(c.call("ping"), "pong")
                g2 = Gild(app=APP, workers=1, listen=url2, args=args)
                self.assertEqual(g1.stop(), 0)
                self.assertEqual(ping_after_restart(c), "pong")
            finally:
                c.close()
        finally:
            self.assertEqual(g1.stop(), 0)
            self.assertEqual(g2.stop(), 0)


class SilentPeerTest(unittest.TestCase):
    def test_connect_gives_up_on_a_silent_peer(self):
        """A peer that accepts TCP and never answers the TLS handshake:
        nng 1.5.2 would wait forever; libgild gives up after 10 s."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(4)
            url = "tls+tcp://127.0.0.1:%d" % s.getsockname()[1]
            rc, out, err = gildctl("--tls-ca", pem("ca.pem"), "ping", url,
                                   timeout=120)
        self.assertEqual(rc, 1)
        self.assertIn("cannot connect to %s: Timed out (no TLS handshake "
                      "within 10 s" % url, err)

    def test_plain_tcp_server(self):
        """A TLS client to a plain tcp:// listener fails at once."""
        with Gild(app=APP, workers=1) as g:
            url = "tls+" + g.url
            rc, out, err = gildctl("--tls-ca", pem("ca.pem"), "ping", url)
        self.assertEqual(rc, 1)
        self.assertIn("UNAVAILABLE: cannot connect to " + url, err)
        self.assertIn("TLS handshake failed", err)


class StartupTest(unittest.TestCase):
    def serve(self, *args):
        return subprocess.run(
            [os.path.join(B, "gild"), "serve", APP, "--workers", "1", *args],
            capture_output=True, timeout=60)

    def assert_refused(self, args, *words):
        p = self.serve(*args)
        self.assertEqual(p.returncode, 2, p.stderr)
        for w in words:
            self.assertIn(w.encode(), p.stderr)
        self.assertNotIn(b"listening", p.stdout)

    def test_bad_files_name_the_option(self):
        tls = ("--listen", "tls+tcp://127.0.0.1:0")
        self.assert_refused(tls + ("--tls-cert", pem("nope.pem")),
                            "--tls-cert " + pem("nope.pem"),
                            "No such file or directory")
        self.assert_refused(tls + ("--tls-cert", pem("server.pem")),
                            "--tls-cert", "no PEM private key",
                            "--tls-key")
        self.assert_refused(tls + ("--tls-cert", pem("server.pem"),
                                   "--tls-key", pem("nope.key")),
                            "--tls-key " + pem("nope.key"),
                            "No such file or directory")
        self.assert_refused(tls + ("--tls-cert", pem("server.key"),
                                   "--tls-key", pem("server.key")),
                            "--tls-cert", "no PEM certificate")
        self.assert_refused(tls + ("--tls-cert", pem("server.pem"),
                                   "--tls-key", pem("server.key"),
                                   "--tls-ca", pem("server.key")),
                            "--tls-ca", "no PEM certificate")
        # A key of another certificate: found at start, not by clients.
        self.assert_refused(tls + ("--tls-cert", pem("server.pem"),
                                   "--tls-key", pem("client.key")),
                            "--tls-key " + pem("client.key"),
                            "does not belong to the certificate in "
                            "--tls-cert " + pem("server.pem"))
        # A file that looks like PEM but is not: nng's reason.
        broken = pem("broken.pem")
        with open(broken, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64\n"
                    "-----END CERTIFICATE-----\n")
        self.assert_refused(tls + ("--tls-cert", pem("server.pem"),
                                   "--tls-key", pem("server.key"),
                                   "--tls-ca", broken),
                            "--tls-ca " + broken, "Cryptographic error")

    def test_tls_url_needs_a_certificate(self):
        self.assert_refused(("--listen", "tls+tcp://127.0.0.1:0"),
                            "--tls-cert")

    def test_tls_options_need_a_tls_url(self):
        self.assert_refused(("--listen", "tcp://127.0.0.1:0", "--tls-cert",
                             pem("server-combined.pem")), "tls+tcp://")

    def test_tls_is_no_token(self):
        """TLS encrypts; it does not say who may call: a public address
        still needs --token (or --insecure)."""
        env_token = os.environ.pop("GILD_TOKEN", None)
        try:
            self.assert_refused(("--listen", "tls+tcp://0.0.0.0:0",
                                 "--tls-cert", pem("server-combined.pem")),
                                "refusing to listen on tls+tcp://0.0.0.0:0 "
                                "without a token")
        finally:
            if env_token is not None:
                os.environ["GILD_TOKEN"] = env_token

    def test_help_lists_the_options(self):
        p = subprocess.run([os.path.join(B, "gild"), "serve", "--help"],
                           capture_output=True, timeout=60)
        for opt in (b"--tls-cert", b"--tls-key", b"--tls-ca"):
            self.assertIn(opt, p.stdout)
        rc, out, err = gildctl("--help")
        for opt in ("--tls-cert", "--tls-key", "--tls-ca"):
            self.assertIn(opt, out)


if __name__ == "__main__":
    unittest.main()
