"""gildctl and `make run` against the real server, as a user would type."""
import json
import math
import os
import signal
import sys
import shutil
import socket
import subprocess
import tempfile
import unittest

from gildproc import ROOT, B, Gild, die_with_parent, gildctl, read_until

APP_PY = os.path.join(ROOT, "examples", "app.py")


class GildctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(workers=1)
        cls.url = cls.gild.url

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def call(self, *args):
        return gildctl("call", self.url, *args)

    def test_add(self):
        self.assertEqual(self.call("add", "1", "2"), (0, "3\n", ""))

    def test_json_values(self):
        rc, out, err = self.call("echo", '{"a": [1, 2.5, null, true, "s"]}')
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), {"a": [1, 2.5, None, True, "s"]})

    def test_keyword_arguments(self):
        rc, out, err = self.call("echo", "1", "flag=true", 'name="x"')
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out),
                         {"args": [1], "kwargs": {"flag": True, "name": "x"}})

    def test_big_int(self):
        rc, out, err = self.call("add", "18446744073709551616", "1")
        self.assertEqual((rc, out.strip()), (0, "18446744073709551617"), err)

    def test_special_floats(self):
        rc, out, err = self.call("echo", "[1e308, -0.0]")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out), [1e308, -0.0])
        rc, out, err = self.call("fib", "20")
        self.assertEqual((rc, out), (0, "6765\n"))

    def test_not_found(self):
        rc, out, err = self.call("nope")
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, "")
        self.assertTrue(err.startswith("NOT_FOUND: "), err)
        self.assertIn("'nope'", err)

    def test_python_error_with_traceback(self):
        rc, out, err = self.call("fail", '"broken"')
        self.assertNotEqual(rc, 0)
        self.assertIn("PYTHON_ERROR: ", err)
        self.assertIn("ValueError", err)
        self.assertIn("broken", err)
        self.assertIn("Traceback", err)

    def test_bad_json_argument(self):
        rc, out, err = self.call("add", "1", "{not json")
        self.assertEqual(rc, 2)
        self.assertIn("JSON", err)

    def test_ping(self):
        rc, out, err = gildctl("ping", self.url)
        self.assertEqual(rc, 0, err)
        self.assertIn("pong", out)

    def test_status(self):
        rc, out, err = gildctl("status", self.url)
        self.assertEqual(rc, 0, err)
        st = json.loads(out)
        self.assertEqual(st["runtime"], "process")
        self.assertEqual(len(st["workers"]), 1)
        self.assertIn("add", st["functions"])

    def test_unreachable_server(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        rc, out, err = gildctl("call", "tcp://127.0.0.1:%d" % port, "add", "1", "2")
        self.assertNotEqual(rc, 0)
        self.assertTrue(err.startswith("UNAVAILABLE: "), err)


class ExamplesTest(unittest.TestCase):
    """The commands the feature pages (docs/streaming.md, batching.md,
    async.md) show, against the examples they serve."""

    def serve(self, name):
        g = Gild(app=os.path.join(ROOT, "examples", name))
        self.addCleanup(g.stop)
        return g.url

    def test_stream(self):
        url = self.serve("stream.py")
        self.assertEqual(gildctl("stream", url, "countdown", "5"),
                         (0, "5\n4\n3\n2\n1\n", ""))
        self.assertEqual(gildctl("stream", url, "tokens", '"a b c"'),
                         (0, '"a"\n"b"\n"c"\n', ""))
        self.assertEqual(gildctl("call", url, "squares", "4"),
                         (0, "[0, 1, 4, 9]\n", ""))
        rc, out, err = gildctl("--timeout", "0.25", "stream", url,
                               "countdown", "100")
        self.assertEqual(rc, 1)
        self.assertTrue(err.startswith("DEADLINE_EXCEEDED"), err)
        self.assertTrue(out.startswith("100\n99\n"), out)

    def test_batch(self):
        url = self.serve("batch.py")
        self.assertEqual(gildctl("call", url, "embed", '"hello"'),
                         (0, "[5, 2]\n", ""))

    def test_async(self):
        url = self.serve("aio.py")
        rc, out, _ = gildctl("call", url, "fetch", '"https://example.com"')
        self.assertEqual((rc, json.loads(out)),
                         (0, {"url": "https://example.com", "status": 200}))
        self.assertEqual(gildctl("call", url, "slow_lookup", '"k"'),
                         (0, '"K"\n', ""))
        rc, out, _ = gildctl("call", url, "deadline_aware", "1000")
        self.assertEqual((rc, json.loads(out)["total"]), (0, 499500))

    def test_actors_app_serves(self):
        url = self.serve("actors.py")
        rc, out, _ = gildctl("status", url)
        self.assertEqual(rc, 0)


@unittest.skipUnless(os.path.exists(os.path.join(B, "gild-worker-ft")),
                     "gild-worker-ft is not built (make PYTHON_FT_CONFIG=)")
class RuntimeCliTest(unittest.TestCase):
    """--runtime free-threaded from the command line: it serves, and what
    cannot work fails at start with a message that says why."""

    def serve_fails(self, *args, gild=None):
        """Runs gild serve ARGS, which must exit by itself; returns (exit
        status, stderr)."""
        p = subprocess.run(
            [gild or os.path.join(B, "gild"), "serve", "--listen",
             "tcp://127.0.0.1:0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            timeout=60, preexec_fn=die_with_parent)
        return p.returncode, p.stderr

    def test_examples_app_serves_free_threaded(self):
        g = Gild(args=("--runtime", "free-threaded", "--threads", "2"))
        self.addCleanup(g.stop)
        self.assertEqual(gildctl("call", g.url, "add", "1", "2"),
                         (0, "3\n", ""))
        rc, out, _ = gildctl("status", g.url)
        st = json.loads(out)
        self.assertEqual((st["runtime"], st["threads"], st["gil_enabled"]),
                         ("free-threaded", 2, False))

    def test_missing_worker_ft(self):
        with tempfile.TemporaryDirectory() as d:
            lone = os.path.join(d, "gild")
            shutil.copy(os.path.join(B, "gild"), lone)
            shutil.copy(os.path.join(B, "gild-worker"), d)
            rc, err = self.serve_fails(APP_PY, "--runtime", "free-threaded",
                                       gild=lone)
        self.assertEqual(rc, 2)
        self.assertIn("needs gild-worker-ft", err)

    def test_threads_needs_free_threaded(self):
        rc, err = self.serve_fails(APP_PY, "--threads", "2")
        self.assertEqual(rc, 2)
        self.assertIn("--threads needs --runtime free-threaded", err)

    def test_system_only_package(self):
        """Debian's numpy is built for the system Python only."""
        with tempfile.TemporaryDirectory() as d:
            app = os.path.join(d, "needs_numpy.py")
            with open(app, "w") as f:
                f.write("import numpy\n\ndef f():\n    return 1\n")
            rc, err = self.serve_fails(app, "--runtime", "free-threaded")
        self.assertEqual(rc, 1)
        self.assertIn("the app imports 'numpy', which is installed only for "
                      "the system Python", err)
        self.assertIn("--runtime process", err)


class StockClientTest(unittest.TestCase):
    """A call from another language: Python's protobuf and nngcat, a stock
    cooked REQ client, with nothing from gild but gild.proto."""

    def test_nngcat_call(self):
        import gild_pb2  # generated by protoc from proto/gild.proto
        req = gild_pb2.Request(id=42)
        req.call.function = "add"
        req.call.args.add().int_value = 20
        req.call.args.add().int_value = 22
        with Gild(workers=1) as g:
            out = subprocess.run(
                ["nngcat", "--req0", "--dial", g.url, "--raw",
                 "--recv-timeout", "20", "--data", req.SerializeToString()],
                capture_output=True, timeout=60).stdout
        reply = gild_pb2.Reply.FromString(out)
        self.assertEqual(reply.id, 42)
        self.assertEqual(reply.WhichOneof("body"), "result")
        self.assertEqual(reply.result.int_value, 42)


class MakeRunTest(unittest.TestCase):
    def test_make_run_then_gildctl(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        url = "tcp://127.0.0.1:%d" % port
        env = dict(os.environ)
        env.pop("MAKEFLAGS", None)
        env.pop("MAKELEVEL", None)
        proc = subprocess.Popen(
            ["make", "-s", "-C", ROOT, "run", "LISTEN=" + url, "WORKERS=1",
             "B=" + os.environ.get("B", "build")],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True)
        try:
            lines = read_until(proc, "gild: ready", timeout=120)
            self.assertIn("gild: listening on " + url, lines)
            self.assertEqual(gildctl("call", url, "add", "1", "2"), (0, "3\n", ""))
        finally:
            # make's child is gild: stop both by pid (the session's group).
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main()


class InstallTest(unittest.TestCase):
    """make install into a DESTDIR: the installed gild finds its worker, the
    worker finds the gild package (the app imports it), and a C program
    builds against the installed gild.pc."""

    def test_install_and_pkg_config(self):
        import tempfile
        b = os.environ.get("B", "build")
        with tempfile.TemporaryDirectory() as dest:
            env = dict(os.environ)
            env.pop("MAKEFLAGS", None)
            env.pop("MAKELEVEL", None)
            subprocess.run(["make", "-s", "-C", ROOT, "install", "B=" + b,
                            "DESTDIR=" + dest, "PREFIX=/opt/gild"],
                           check=True, env=env, capture_output=True, timeout=300)
            prefix = dest + "/opt/gild"
            for f in ("bin/gild", "bin/gildctl", "libexec/gild/gild-worker",
                      "include/gild.h", "lib/libgild.a", "lib/libgild.so",
                      "lib/pkgconfig/gild.pc", "lib/gild/python/gild/__init__.py"):
                self.assertTrue(os.path.exists(os.path.join(prefix, f)), f)
            # The Python package, for the system Python.
            site = [d for d in os.listdir(prefix + "/lib")
                    if d.startswith("python3")]
            self.assertEqual(len(site), 1, site)
            pkg = os.path.join(prefix, "lib", site[0], "dist-packages")
            out = subprocess.run(
                [sys.executable, "-c",
                 "import gild; print(gild.connect.__module__)"],
                env=dict(env, PYTHONPATH=pkg), capture_output=True, text=True)
            self.assertEqual(out.stdout.strip(), "gild.client", out.stderr)
            # The installed gild finds libexec/gild/gild-worker by itself.
            g = Gild.__new__(Gild)
            g.log = tempfile.NamedTemporaryFile(prefix="gild-", suffix=".log")
            g.proc = subprocess.Popen(
                [prefix + "/bin/gild", "serve",
                 os.path.join(ROOT, "tests", "apps", "reliability.py"),
                 "--listen", "tcp://127.0.0.1:0", "--workers", "1"],
                stdout=subprocess.PIPE, stderr=g.log, preexec_fn=die_with_parent)
            try:
                lines = read_until(g.proc, "gild: ready")
                url = [l.split()[-1] for l in lines if "listening on" in l][0]
                # A C client built only from the installed header and .pc file.
                src = os.path.join(dest, "client.c")
                with open(src, "w") as f:
                    f.write(CLIENT_C)
                pc = subprocess.run(
                    ["pkg-config", "--define-prefix", "--cflags", "--libs", "gild"],
                    env=dict(env, PKG_CONFIG_PATH=prefix + "/lib/pkgconfig"),
                    capture_output=True, check=True, text=True).stdout.split()
                self.assertIn("-I" + prefix + "/include", pc)
                exe = os.path.join(dest, "client")
                # A sanitized libgild needs a sanitized program around it.
                san = os.environ.get("SANITIZE")
                subprocess.run(["cc", "-o", exe, src, *pc,
                                "-Wl,-rpath," + prefix + "/lib",
                                *(["-fsanitize=" + san] if san else [])],
                               check=True, capture_output=True, timeout=120)
                out = subprocess.run([exe, url], capture_output=True, text=True, timeout=60)
                self.assertEqual((out.returncode, out.stdout), (0, "3\n"), out.stderr)
            finally:
                g.stop()


CLIENT_C = r"""
#include <gild.h>
#include <stdio.h>
int main(int argc, char **argv) {
	const char *urls[] = {argv[1]};
	gild_client *c;
	gild_value *args = gild_list(), *out = NULL;
	gild_error err = {0};
	if (gild_connect(&c, urls, 1, &err) != GILD_OK) return 1;
	gild_list_append(args, gild_int(1));
	gild_list_append(args, gild_int(2));
	if (gild_call(c, "add", args, NULL, 30000, &out, &err) != GILD_OK) {
		fprintf(stderr, "%s: %s\n", gild_code_name(err.code), err.message);
		return 1;
	}
	printf("%lld\n", (long long) gild_value_int(out));
	gild_value_free(out);
	gild_value_free(args);
	gild_close(c);
	return 0;
}
"""


class DepsTest(unittest.TestCase):
    """Not root: the build names the missing packages and the exact command
    instead of installing them."""

    def test_non_root_prints_command(self):
        p = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             os.path.join(ROOT, "mk", "deps.sh"), "make", "gild-no-such-package"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("sudo apt-get install -y gild-no-such-package", p.stderr)
        self.assertNotIn(" make", p.stderr.split("install -y")[1])
