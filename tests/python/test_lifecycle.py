"""The app's lifecycle and environment against the real gild (issue 20,
items 5 and 6): start, warm-up and stop hooks in each worker, gild.worker(),
--worker-env with {slot}, a warm-up that fails keeping /readyz at 503, and
--venv / --python-path, with a venv for another Python refused at start."""
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import unittest

from gildproc import (ROOT, B, Gild, die_with_parent, gildctl, http_get,
                      read_until, until)

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
import gild  # noqa: E402  (the app-side API only: no C extension)

APP = os.path.join(ROOT, "tests", "apps", "lifecycle.py")
# The Python the workers embed (tests/run.sh: the system python3).
PYTHON = os.environ.get("PYTHON", "/usr/bin/python3")
FT_WORKER = os.path.join(B, "gild-worker-ft")




def records(path):
    """The events the app's hooks wrote, in order."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f]


def call(url, fn, *args):
    """gildctl call: works in the sanitized build too (no C extension)."""
    rc, out, err = gildctl("call", url, fn, *args)
    return rc, (json.loads(out) if rc == 0 else err)


class LifeGild(Gild):
    """gild serve APP ARGS, with env added to ours."""

    def __init__(self, args, env, app=APP):
        self._start(["serve", app, "--listen", "tcp://127.0.0.1:0", *args],
                    env=dict(os.environ, **env))


def unready_gild(args, env):
    """A Gild that is not waited for to be ready: its HTTP side port is."""
    g = Gild.__new__(Gild)
    g.err = None
    g.log = tempfile.NamedTemporaryFile(prefix="gild-", suffix=".log")
    g.proc = subprocess.Popen(
        [os.path.join(B, "gild"), "serve", APP, "--listen",
         "tcp://127.0.0.1:0", "--http", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE, stderr=g.log, preexec_fn=die_with_parent,
        env=dict(os.environ, **env))
    try:
        lines = read_until(g.proc, "gild: http on")
    except Exception:
        g.stop()
        raise
    g.http_url = lines[-1].split()[-1]
    return g


class HooksTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.rec = os.path.join(self.tmp.name, "events.jsonl")

    def tearDown(self):
        self.tmp.cleanup()

    def test_each_worker_starts_once_with_its_slot(self):
        """With --workers 2 --worker-env GILD_TEST_DEV={slot}, each
        worker's start hook ran once, saw its own slot and the value made
        from it (os.environ and the C environment alike), then its warm-up;
        calls see the same; a stop runs each worker's stop hook once. Forked
        and exec'd workers alike."""
        for spawn in ("fork", "exec"):
            with self.subTest(spawn=spawn):
                if os.path.exists(self.rec):
                    os.unlink(self.rec)
                g = LifeGild(["--workers", "2", "--spawn", spawn,
                              "--worker-env", "GILD_TEST_DEV=dev{slot}"],
                             {"GILD_TEST_RECORD": self.rec})
                try:
                    ev = records(self.rec)
                    starts = [e for e in ev if e["event"] == "start"]
                    self.assertEqual(sorted(e["slot"] for e in starts), [0, 1])
                    for e in starts:
                        self.assertEqual(e["env"], "dev%d" % e["slot"])
                        self.assertEqual(e["c_env"], "dev%d" % e["slot"])
                        self.assertEqual(e["threads"], 1)
                    pids = {e["pid"] for e in starts}
                    self.assertEqual(len(pids), 2)
                    # Each warm-up after its worker's start hook.
                    for pid in pids:
                        mine = [e["event"] for e in ev if e["pid"] == pid]
                        self.assertEqual(mine, ["start", "warmup"])
                    by_slot = {e["slot"]: e["pid"] for e in starts}
                    for _ in range(6):
                        rc, got = call(g.url, "info")
                        self.assertEqual(rc, 0, got)
                        self.assertEqual(got["pid"], by_slot[got["slot"]])
                        self.assertEqual(got["env"], "dev%d" % got["slot"])
                    # Hooks are gild's to call, not clients'.
                    rc, err = call(g.url, "started")
                    self.assertEqual(rc, 1)
                    self.assertIn("NOT_FOUND", err)
                finally:
                    self.assertEqual(g.stop(), 0, g.err)
                stops = [e for e in records(self.rec) if e["event"] == "stop"]
                self.assertEqual(sorted(e["pid"] for e in stops), sorted(pids))

    def test_recycle_runs_stop_then_start(self):
        """--max-jobs-per-worker 2: after its second call the worker runs
        its stop hook, then a new process (another pid, the same slot and
        env) runs the start hook and warm-up before it takes a call."""
        g = LifeGild(["--workers", "1", "--max-jobs-per-worker", "2",
                      "--worker-env", "GILD_TEST_DEV=gpu{slot}"],
                     {"GILD_TEST_RECORD": self.rec})
        try:
            first = [call(g.url, "info")[1] for _ in range(2)]
            self.assertEqual(first[0]["pid"], first[1]["pid"])
            self.assertTrue(until(lambda: len(
                [e for e in records(self.rec) if e["event"] == "warmup"]) == 2))
            rc, after = call(g.url, "info")
            self.assertEqual(rc, 0, after)
            ev = records(self.rec)
            self.assertEqual([(e["event"], e["pid"]) for e in ev],
                             [("start", first[0]["pid"]),
                              ("warmup", first[0]["pid"]),
                              ("stop", first[0]["pid"]),
                              ("start", after["pid"]),
                              ("warmup", after["pid"])])
            self.assertNotEqual(after["pid"], first[0]["pid"])
            self.assertEqual({(e["slot"], e["env"], e["c_env"]) for e in ev},
                             {(0, "gpu0", "gpu0")})
        finally:
            self.assertEqual(g.stop(), 0, g.err)

    def test_reload_runs_stop_then_start(self):
        """SIGHUP: the worker of the app as it was runs its stop hook, then
        its replacement (a new template's fork) its start hook and warm-up,
        in both spawn modes."""
        for spawn in ("fork", "exec"):
            with self.subTest(spawn=spawn):
                if os.path.exists(self.rec):
                    os.unlink(self.rec)
                g = LifeGild(["--workers", "1", "--spawn", spawn],
                             {"GILD_TEST_RECORD": self.rec})
                try:
                    old = call(g.url, "info")[1]["pid"]
                    g.proc.send_signal(signal.SIGHUP)
                    self.assertTrue(until(lambda: len(records(self.rec)) >= 5))
                    new = call(g.url, "info")[1]["pid"]
                    self.assertNotEqual(new, old)
                    self.assertEqual(
                        [(e["event"], e["pid"]) for e in records(self.rec)],
                        [("start", old), ("warmup", old), ("stop", old),
                         ("start", new), ("warmup", new)])
                finally:
                    self.assertEqual(g.stop(), 0, g.err)

    def test_stop_hook_that_raises(self):
        """A stop hook that raises is logged with its traceback, and the
        stop hooks declared before it still run (last declared first)."""
        g = LifeGild(["--workers", "1"], {"GILD_TEST_RECORD": self.rec,
                                          "GILD_TEST_STOP_FAIL": "1"})
        self.assertEqual(g.stop(), 0, g.err)
        self.assertEqual([e["event"] for e in records(self.rec)],
                         ["start", "warmup", "stop"])
        # The worker's stderr, each line a gild log event (applog).
        self.assertIn("@gild.on_worker_stop lifecycle.stop_that_fails raised "
                      "RuntimeError: cannot flush the cache\" stream=stderr",
                      g.err)
        self.assertIn('msg="RuntimeError: cannot flush the cache" '
                      'stream=stderr', g.err)

    def test_failing_warmup_keeps_unready(self):
        """A warm-up that raises: no worker is ready, /readyz stays 503,
        the server stays up and starts the workers again (with backoff),
        and the log says which warm-up raised what, with its traceback.
        Exec'd workers too: a failing warm-up is not an app that cannot
        be imported (which would stop gild)."""
        for spawn in ("fork", "exec"):
            with self.subTest(spawn=spawn):
                if os.path.exists(self.rec):
                    os.unlink(self.rec)
                g = unready_gild(["--workers", "2", "--spawn", spawn],
                                 {"GILD_TEST_RECORD": self.rec,
                                  "GILD_TEST_WARMUP_FAIL": "1"})
                try:
                    # Tried again: more warm-ups than workers.
                    self.assertTrue(until(lambda: len(
                        [e for e in records(self.rec)
                         if e["event"] == "warmup"]) >= 4))
                    self.assertEqual(http_get(g.http_url + "/readyz"),
                                     (503, "not ready: no worker is ready\n"))
                    self.assertEqual(http_get(g.http_url + "/healthz")[0], 200)
                    self.assertIsNone(g.proc.poll())
                    # Each try: start hook, then warm-up; never a stop hook
                    # (the worker never took a call).
                    ev = [e["event"] for e in records(self.rec)]
                    self.assertNotIn("stop", ev)
                    self.assertEqual(ev.count("start"),
                                     ev.count("warmup"))
                finally:
                    self.assertEqual(g.stop(), 0, g.err)
                self.assertIn("@gild.warmup lifecycle.warm raised ValueError: "
                              "warm-up failed: no model weights", g.err)
                self.assertIn('msg="ValueError: warm-up failed: no model '
                              'weights" stream=stderr', g.err)
                self.assertRegex(g.err, r"worker [01] is not ready: .*; "
                                        r"starting it again in \d+ ms")

    @unittest.skipUnless(os.path.exists(FT_WORKER),
                         "built without the free-threaded runtime")
    def test_free_threaded(self):
        """The free-threaded runtime: gild.worker() says its threads."""
        g = LifeGild(["--runtime", "free-threaded", "--workers", "1",
                      "--threads", "3", "--worker-env", "GILD_TEST_DEV={slot}"],
                     {"GILD_TEST_RECORD": self.rec})
        try:
            rc, got = call(g.url, "info")
            self.assertEqual(rc, 0, got)
            self.assertEqual((got["slot"], got["threads"], got["env"]),
                             (0, 3, "0"))
        finally:
            self.assertEqual(g.stop(), 0, g.err)
        self.assertEqual([(e["event"], e["threads"], e["c_env"])
                          for e in records(self.rec)],
                         [("start", 3, "0"), ("warmup", 3, "0"),
                          ("stop", 3, "0")])


class EnvironmentTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.app = os.path.join(self.tmp.name, "venvapp.py")
        with open(self.app, "w") as f:
            f.write("import gild_venv_only\n\n"
                    "def where():\n"
                    "    return gild_venv_only.where()\n")

    def tearDown(self):
        self.tmp.cleanup()

    def serve_fails(self, *args):
        """gild serve self.app ARGS, which must exit by itself: (status,
        stderr)."""
        p = subprocess.run(
            [os.path.join(B, "gild"), "serve", self.app, "--listen",
             "tcp://127.0.0.1:0", "--workers", "1", *args],
            capture_output=True, text=True, timeout=60,
            preexec_fn=die_with_parent)
        return p.returncode, p.stderr

    def test_venv(self):
        """A package installed only in a venv (made offline with
        --system-site-packages from the workers' Python) is imported with
        --venv, and not without it."""
        venv = os.path.join(self.tmp.name, "venv")
        subprocess.run([PYTHON, "-m", "venv", "--system-site-packages",
                        "--without-pip", venv], check=True, timeout=120)
        site, = glob.glob(os.path.join(venv, "lib", "python3*",
                                       "site-packages"))
        pkg = os.path.join(site, "gild_venv_only")
        os.mkdir(pkg)
        with open(os.path.join(pkg, "__init__.py"), "w") as f:
            f.write("def where():\n    return __file__\n")
        rc, err = self.serve_fails()
        self.assertNotEqual(rc, 0)
        self.assertIn("the app imports 'gild_venv_only', which is not "
                      "installed", err)
        with Gild(app=self.app, args=("--venv", venv)) as g:
            rc, got = call(g.url, "where")
            self.assertEqual(rc, 0, got)
            self.assertEqual(got, os.path.join(pkg, "__init__.py"))

    def test_venv_of_another_python(self):
        """A venv whose pyvenv.cfg says Python 3.9.0 is refused at start,
        the message naming both versions."""
        venv = os.path.join(self.tmp.name, "old")
        os.mkdir(venv)
        with open(os.path.join(venv, "pyvenv.cfg"), "w") as f:
            f.write("home = /usr/bin\ninclude-system-site-packages = true\n"
                    "version = 3.9.0\n")
        mine = subprocess.run(
            [PYTHON, "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, check=True).stdout.strip()
        for spawn in ("fork", "exec"):
            with self.subTest(spawn=spawn):
                rc, err = self.serve_fails("--venv", venv, "--spawn", spawn)
                self.assertEqual(rc, 1, err)
                self.assertIn("--venv %s was made by Python 3.9.0 (from "
                              "/usr/bin, says its pyvenv.cfg), but the "
                              "workers embed Python %s" % (venv, mine), err)
        # Not a venv at all: refused before anything starts.
        rc, err = self.serve_fails("--venv", self.tmp.name)
        self.assertEqual(rc, 2)
        self.assertIn("--venv: expected a virtual environment's directory",
                      err)

    def test_python_path(self):
        """--python-path DIR (repeatable) goes in front of sys.path, in
        order: the first holding a module wins."""
        first, second = (os.path.join(self.tmp.name, d) for d in "ab")
        for d in (first, second):
            os.mkdir(d)
            with open(os.path.join(d, "gild_venv_only.py"), "w") as f:
                f.write("def where():\n    return %r\n" % d)
        with Gild(app=self.app, args=("--python-path", first,
                                      "--python-path", second,
                                      "--spawn", "exec")) as g:
            self.assertEqual(call(g.url, "where"), (0, first))


class DocsExampleTest(unittest.TestCase):
    """docs/lifecycle.md's example app, served with the command the page
    shows: each worker's start hook saw its own CUDA_VISIBLE_DEVICES, the
    warm-up passed, and a call shows what the page says it shows."""

    def test_example(self):
        text = open(os.path.join(ROOT, "docs", "lifecycle.md")).read()
        code = re.findall(r"```python\n(.*?)```", text, re.S)[0]
        sh = re.findall(r"```sh\n(.*?)```", text, re.S)[0].splitlines()
        serve = sh[0].split()
        self.assertEqual(serve[:4], ["gild", "serve", "app.py", "--workers"])
        m = re.match(r"gildctl call tcp://127.0.0.1:7700 (\w+) +# (.*)$", sh[1])
        fn, shown = m.group(1), json.loads(m.group(2))
        with tempfile.TemporaryDirectory() as tmp:
            app = os.path.join(tmp, "app.py")
            with open(app, "w") as f:
                f.write(code)
            with Gild(app=app, workers=int(serve[4]), args=serve[5:]) as g:
                seen = set()
                for _ in range(20):
                    rc, got = call(g.url, fn)
                    self.assertEqual(rc, 0, got)
                    self.assertEqual(got, {"slot": got["slot"],
                                           "device": str(got["slot"])})
                    seen.add(got["slot"])
                self.assertLessEqual(seen, {0, 1})
                self.assertIn(shown["slot"], (0, 1))
                self.assertEqual(shown, {"slot": shown["slot"],
                                         "device": str(shown["slot"])})


class DecoratorTest(unittest.TestCase):
    """What the decorators refuse (no server)."""

    def test_refused(self):
        async def coro():
            pass

        def needs_arg(x):
            pass

        with self.assertRaisesRegex(TypeError, "async def"):
            gild.on_worker_start(coro)
        with self.assertRaisesRegex(TypeError, "no arguments"):
            gild.warmup(needs_arg)
        with self.assertRaisesRegex(TypeError, "decorates a function"):
            gild.on_worker_stop(int)

    def test_worker_outside_a_worker(self):
        with self.assertRaisesRegex(RuntimeError, "only available in a gild "
                                                  "worker"):
            gild.worker()


if __name__ == "__main__":
    unittest.main()
