"""The exec and pickle gates from the outside: gildctl exec and the Python
client's exec() and pickle=True, refused with PERMISSION_DENIED unless
gild serve --allow-exec / --allow-pickle, and working when enabled."""
import fractions
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import unittest

from gildproc import ROOT, B, Gild, gildctl

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402 (its extension is built in the plain build)

APP = os.path.join(ROOT, "tests", "apps", "gated.py")
CLIENT = unittest.skipIf(SANITIZED,
                         "the Python client is tested in the plain build")


class Marker:
    """Unpickling it creates the file at path: whether the file exists
    says whether the pickle was loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class Temp(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="gild-exec-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.marker = os.path.join(self.dir, "unpickled")

    def source_file(self, text):
        path = os.path.join(self.dir, "job.py")
        with open(path, "w") as f:
            f.write(text)
        return path


class RefusedTest(Temp):
    """A server started without the flags."""

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(app=APP, workers=1, args=("--http", "127.0.0.1:0"))

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def test_gildctl_exec(self):
        rc, out, err = gildctl("exec", self.gild.url,
                               self.source_file("result = 1\n"))
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("PERMISSION_DENIED", err)
        self.assertIn("--allow-exec", err)

    def test_refused_exec_is_counted(self):
        import urllib.request
        gildctl("exec", self.gild.url, self.source_file("result = 1\n"))
        with urllib.request.urlopen(self.gild.http_url + "/metrics",
                                    timeout=10) as r:
            text = r.read().decode()
        self.assertIn('gild_calls_total{function="<exec>",'
                      'code="PERMISSION_DENIED"}', text)

    def test_gildctl_pickle(self):
        data = pickle.dumps(Marker(self.marker))
        arg = json.dumps({"$pickle": __import__("base64").b64encode(
            data).decode()})
        rc, out, err = gildctl("call", self.gild.url, "kind", arg)
        self.assertEqual(rc, 1)
        self.assertIn("PERMISSION_DENIED", err)
        self.assertIn("--allow-pickle", err)
        self.assertFalse(os.path.exists(self.marker))

    @CLIENT
    def test_python_client(self):
        with gild.connect(self.gild.url, timeout=30, pickle=True) as c:
            with self.assertRaises(gild.PermissionDenied) as cm:
                c.exec("result = x", x=1)
            self.assertIn("--allow-exec", str(cm.exception))
            with self.assertRaises(gild.PermissionDenied) as cm:
                c.submit_exec("result = 1").result(30)
            self.assertIn("--allow-exec", str(cm.exception))
            # pickle=True pickles what has no gild form; the server says no
            # without loading it.
            for args in ((Marker(self.marker),),
                         ([1, {"k": Marker(self.marker)}],)):
                with self.assertRaises(gild.PermissionDenied) as cm:
                    c.call("kind", *args)
                self.assertIn("--allow-pickle", str(cm.exception))
            with self.assertRaises(gild.PermissionDenied):
                c.call("kind", x=gild.Pickled.dumps(Marker(self.marker)))
            self.assertFalse(os.path.exists(self.marker))
            # An unconvertible result is the error it always was.
            with self.assertRaises(gild.RemoteError) as cm:
                c.call("a_set")
            self.assertIn("cannot send set: gild sends", str(cm.exception))
            self.assertEqual(c.call("kind", 1), "int")

    @CLIENT
    def test_client_does_not_pickle_unless_asked(self):
        with gild.connect(self.gild.url, timeout=30) as c:
            with self.assertRaises(TypeError) as cm:
                c.call("kind", Marker(self.marker))
            self.assertIn("pickle=True", str(cm.exception))
        self.assertFalse(os.path.exists(self.marker))


class EnabledTest(Temp):
    """A server started with --allow-exec --allow-pickle (and --insecure:
    without a token they are refused)."""

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(app=APP, workers=1,
                        args=("--allow-exec", "--allow-pickle", "--insecure"))

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def test_gildctl_exec_file_and_stdin(self):
        path = self.source_file("result = {'sum': a + b, 'name': name}\n")
        self.assertEqual(
            gildctl("exec", self.gild.url, path, "a=1", "b=2",
                    'name="x"'),
            (0, '{"sum": 3, "name": "x"}\n', ""))
        rc, out, _ = gildctl("exec", self.gild.url, "-",
                             input=b"import math\nresult = math.pi\n")
        self.assertEqual((rc, out), (0, "3.141592653589793\n"))
        # Errors: a traceback naming the file; usage mistakes.
        path = self.source_file("x = 1\nraise ValueError('bad cell')\n")
        rc, out, err = gildctl("exec", self.gild.url, path)
        self.assertEqual(rc, 1)
        self.assertIn("PYTHON_ERROR: ValueError: bad cell", err)
        self.assertIn(path, err)
        self.assertIn("line 2", err)
        rc, out, err = gildctl("exec", self.gild.url, path, "1")
        self.assertEqual(rc, 2)
        self.assertIn("only NAME=ARG", err)
        rc, out, err = gildctl("exec", self.gild.url,
                               os.path.join(self.dir, "missing.py"))
        self.assertEqual(rc, 1)
        self.assertIn("missing.py", err)
        # --timeout is the exec's deadline.
        path = self.source_file("import time\nwhile True:\n"
                                "    time.sleep(0.01)\n")
        rc, out, err = gildctl("--timeout", "0.3", "exec", self.gild.url,
                               path)
        self.assertEqual(rc, 1)
        self.assertIn("DEADLINE_EXCEEDED", err)

    @CLIENT
    def test_python_m_gild_exec(self):
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "client-lib",
                                                        "python"))
        path = self.source_file("result = n + 1\n")
        p = subprocess.run([sys.executable, "-m", "gild", "exec",
                            self.gild.url, path, "n=41"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((p.returncode, p.stdout), (0, "42\n"), p.stderr)
        p = subprocess.run([sys.executable, "-m", "gild", "exec",
                            self.gild.url, "-"], input="1 +", env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("SyntaxError", p.stderr)
        self.assertIn("<stdin>", p.stderr)

    def test_gildctl_pickle_result(self):
        rc, out, err = gildctl("call", self.gild.url, "a_set")
        self.assertEqual(rc, 0, err)
        data = __import__("base64").b64decode(json.loads(out)["$pickle"])
        self.assertEqual(pickle.loads(data), {1, 2, 3})
        # And back, as it came.
        rc, out, err = gildctl("call", self.gild.url, "kind", out.strip())
        self.assertEqual((rc, out), (0, '"set"\n'), err)

    def test_stock_client(self):
        """Exec and pickle_value from another language: Python's protobuf
        and nngcat, with nothing from gild but gild.proto."""
        import gild_pb2  # generated by protoc from proto/gild.proto
        req = gild_pb2.Request(id=7)
        req.exec.source = b"result = [n * 2, type(p).__name__]"
        e = req.exec.variables.entries.add()
        e.key.str_value = b"n"
        e.value.int_value = 21
        e = req.exec.variables.entries.add()
        e.key.str_value = b"p"
        e.value.pickle_value = pickle.dumps(fractions.Fraction(1, 3))
        data = os.path.join(self.dir, "request")
        with open(data, "wb") as f:  # a pickle holds NUL bytes: no --data
            f.write(req.SerializeToString())
        out = subprocess.run(
            ["nngcat", "--req0", "--dial", self.gild.url, "--raw",
             "--recv-timeout", "20", "--file", data],
            capture_output=True, timeout=60).stdout
        reply = gild_pb2.Reply.FromString(out)
        self.assertEqual(reply.id, 7)
        self.assertEqual(reply.WhichOneof("body"), "result", reply)
        items = reply.result.list_value.items
        self.assertEqual(items[0].int_value, 42)
        self.assertEqual(items[1].str_value, b"Fraction")

    @CLIENT
    def test_python_exec(self):
        with gild.connect(self.gild.url, timeout=30) as c:
            self.assertEqual(c.exec("result = x * y", x=6, y=7), 42)
            self.assertIsNone(c.exec("z = 1"))
            with self.assertRaises(gild.RemoteError) as cm:
                c.exec("def f(:\n  pass\n")
            self.assertEqual(cm.exception.remote_type, "SyntaxError")
            fut = c.submit_exec("raise KeyError('k')", filename="cell-9")
            with self.assertRaises(gild.RemoteError) as cm:
                fut.result(30)
            self.assertEqual(cm.exception.remote_type, "KeyError")
            self.assertIn("cell-9", cm.exception.remote_traceback)
            with self.assertRaises(gild.DeadlineExceeded):
                c.exec("import time\nwhile True:\n    time.sleep(0.01)\n",
                       timeout=0.3)
            fut = c.submit_exec("import time\nwhile True:\n"
                                "    time.sleep(0.01)\n")
            self.assertTrue(fut.cancel())
            self.assertEqual(c.exec("result = 'still serving'"),
                             "still serving")

    @CLIENT
    def test_python_pickle(self):
        with gild.connect(self.gild.url, timeout=30, pickle=True) as c:
            self.assertEqual(c.call("half", 3), fractions.Fraction(3, 2))
            self.assertEqual(c.call("echo", {1, 2}), {1, 2})
            self.assertEqual(c.call("kind", fractions.Fraction(1, 3)),
                             "Fraction")
            # Natives keep their own form inside a pickled container.
            self.assertEqual(c.call("echo", [1, frozenset([2])]),
                             [1, frozenset([2])])
            self.assertEqual(c.exec("result = s | {3}", s={1, 2}),
                             {1, 2, 3})
            self.assertEqual(c.call("kind", Marker(self.marker)),
                             "TextIOWrapper")
            self.assertTrue(os.path.exists(self.marker))
            with self.assertRaises(TypeError) as cm:
                c.call("echo", lambda: 1)
            self.assertIn("pickling it failed", str(cm.exception))

    @CLIENT
    def test_unreadable_result_fails_only_its_call(self):
        """A pickle the client cannot load (its class lives in the app
        only) fails that call with an error saying why; the thread that
        hands every future its result goes on (it used to die, leaving
        every later future waiting for ever)."""
        with gild.connect(self.gild.url, timeout=30, pickle=True) as c:
            for _ in range(3):
                fut = c.submit("local_thing")
                with self.assertRaises(gild.Error) as cm:
                    fut.result(30)
                self.assertIn("cannot read the result", str(cm.exception))
                self.assertIn("gated", str(cm.exception))
                self.assertEqual(c.submit("echo", 7).result(30), 7)
            with self.assertRaises(gild.Error):
                c.call("local_thing")
            self.assertEqual(c.call("echo", 8), 8)

    @CLIENT
    def test_client_unpickles_only_when_asked(self):
        with gild.connect(self.gild.url, timeout=30) as c:
            got = c.call("a_set")
            self.assertIsInstance(got, gild.Pickled)
            self.assertEqual(got.loads(), {1, 2, 3})
            # An explicit Pickled is sent as a pickle.
            self.assertEqual(c.call("kind", gild.Pickled.dumps({4})), "set")
            self.assertEqual(c.call("echo", got), got)


if __name__ == "__main__":
    unittest.main()
