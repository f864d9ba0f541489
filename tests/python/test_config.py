"""gild serve's settings from flags, GILD_* environment variables and a
--config file (precedence flag > env > file > default), --print-config,
the errors for bad values from each source, and --user."""
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from gildproc import ROOT, B, APP, Gild, die_with_parent, gildctl

GILD = os.path.join(B, "gild")


def clean_env(**extra):
    """The test's environment without any GILD_* setting, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GILD_")}
    env.update(extra)
    return env


def serve(*args, env=None, user=None):
    """Runs gild serve ARGS, which must exit by itself; returns
    (exit status, stdout, stderr) as text."""
    p = subprocess.run([GILD, "serve", *args], capture_output=True,
                       text=True, timeout=60, preexec_fn=die_with_parent,
                       env=clean_env() if env is None else env, user=user)
    return p.returncode, p.stdout, p.stderr


def print_config(*args, env=None):
    """gild serve ARGS --print-config as {name: (values, comment)}: the
    lines that are set, and the comment line above them."""
    rc, out, err = serve(*args, "--print-config", env=env)
    if rc != 0:
        raise AssertionError("--print-config failed: %s" % err)
    found, comment = {}, None
    for line in out.splitlines():
        if line.startswith("#") and " = " not in line:
            comment = line
        elif " = " in line and not line.startswith("#"):
            name, value = line.split(" = ", 1)
            vals, _ = found.get(name, ([], None))
            found[name] = (vals + [value], comment)
    return found, out


class ConfigFile:
    """A temporary config file with the given lines."""

    def __init__(self, *lines):
        self.f = tempfile.NamedTemporaryFile("w", prefix="gild-",
                                             suffix=".conf")
        self.f.write("".join(l + "\n" for l in lines))
        self.f.flush()
        self.path = self.f.name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


class PrecedenceTest(unittest.TestCase):
    def test_flag_beats_env_beats_file_beats_default(self):
        with ConfigFile("# a comment", "", "workers = 2", "max-queue = 7",
                        "slow-ms = 11", "  log-format = json  ") as cf:
            env = clean_env(GILD_MAX_QUEUE="8", GILD_SLOW_MS="12")
            got, _ = print_config(APP, "--config", cf.path, "--slow-ms",
                                  "13", env=env)
            self.assertEqual(got["workers"],
                             (["2"], "# from %s:3" % cf.path))
            self.assertEqual(got["log-format"],
                             (["json"], "# from %s:6" % cf.path))
            self.assertEqual(got["max-queue"],
                             (["8"], "# from the environment: GILD_MAX_QUEUE"))
            # Durations in seconds, whatever their bare unit.
            self.assertEqual(got["slow-ms"],
                             (["0.013s"], "# from the flag --slow-ms"))
            self.assertEqual(got["kill-grace"], (["2s"], "# default"))
            self.assertEqual(got["app"], ([APP], "# from the command line"))

    def test_config_file_from_the_environment(self):
        with ConfigFile("max-queue = 5", "app = " + APP) as cf:
            got, _ = print_config(env=clean_env(GILD_CONFIG=cf.path))
        self.assertEqual(got["max-queue"][0], ["5"])
        self.assertEqual(got["app"][0], [APP])

    def test_every_option_has_an_env_var(self):
        """Each option of --help set through its GILD_ variable shows up
        as set by it."""
        env = clean_env(GILD_APP=APP, GILD_LISTEN="tcp://127.0.0.1:0",
                        GILD_HTTP="127.0.0.1:0", GILD_INSECURE="true",
                        GILD_WORKERS="3", GILD_RUNTIME="process",
                        GILD_MAX_MESSAGE="1M", GILD_MAX_QUEUE="9",
                        GILD_MAX_JOBS_PER_WORKER="4",
                        GILD_MAX_WORKER_RSS="500",
                        GILD_DEFAULT_TIMEOUT="1.5", GILD_KILL_GRACE="3",
                        GILD_WORKER_MEMORY="512", GILD_SPAWN="exec",
                        GILD_DRAIN_TIMEOUT="5",
                        GILD_WORKER_BIN=os.path.join(B, "gild-worker"),
                        GILD_LOG_LEVEL="warn", GILD_LOG_FORMAT="json",
                        GILD_SLOW_MS="100",
                        GILD_WS_ALLOW_ORIGIN="https://app.example",
                        GILD_USER=pwd.getpwuid(os.getuid()).pw_name)
        got, out = print_config(env=env)
        # Durations and sizes are shown in one unit.
        shown = {"GILD_MAX_WORKER_RSS": "500M", "GILD_DEFAULT_TIMEOUT": "1.5s",
                 "GILD_KILL_GRACE": "3s", "GILD_WORKER_MEMORY": "512M",
                 "GILD_DRAIN_TIMEOUT": "5s", "GILD_SLOW_MS": "0.1s"}
        for var, value in env.items():
            if not var.startswith("GILD_"):
                continue
            name = var[5:].lower().replace("_", "-")
            self.assertEqual(got[name], ([shown.get(var, value)],
                                         "# from the environment: " + var),
                             out)

    def test_help_lists_every_setting(self):
        rc, out, _ = serve("--help")
        self.assertEqual(rc, 0)
        got, _ = print_config(APP)
        for name in got:
            if name != "app":
                self.assertIn("  --" + name, out)
        self.assertIn("--print-config", out)
        self.assertIn("GILD_", out)

    def test_lists(self):
        """--listen repeats in each source; the highest source's list
        wins whole."""
        a, b, c = ("tcp://127.0.0.1:0", "ipc:///tmp/gild-cfg-a.sock",
                   "ipc:///tmp/gild-cfg-b.sock")
        with ConfigFile("listen = " + a, "listen = " + b) as cf:
            got, _ = print_config(APP, "--config", cf.path)
            self.assertEqual(got["listen"][0], [a, b])
            env = clean_env(GILD_LISTEN=c + " , " + a)
            got, _ = print_config(APP, "--config", cf.path, env=env)
            self.assertEqual(got["listen"][0], [c, a])
            got, _ = print_config(APP, "--config", cf.path, "--listen", b,
                                  "--listen", c, env=env)
            self.assertEqual(got["listen"][0], [b, c])
        got, _ = print_config(APP)
        self.assertEqual(got["listen"], (["tcp://127.0.0.1:7700"],
                                         "# default"))

    def test_switch(self):
        with ConfigFile("insecure = true") as cf:
            got, _ = print_config(APP, "--config", cf.path)
            self.assertEqual(got["insecure"][0], ["true"])
            got, _ = print_config(APP, "--config", cf.path,
                                  "--insecure=false")
            self.assertEqual(got["insecure"][0], ["false"])
        got, _ = print_config(APP, "--insecure")
        self.assertEqual(got["insecure"][0], ["true"])

    def test_output_is_a_config_file(self):
        """--print-config's output, saved, gives the same settings."""
        env = clean_env(GILD_WORKERS="3")
        with ConfigFile("max-queue = 7", "listen = tcp://127.0.0.1:0",
                        "listen = ipc:///tmp/gild-cfg.sock") as cf:
            first, out = print_config(APP, "--config", cf.path, "--slow-ms",
                                      "9", env=env)
        with ConfigFile(out) as saved:
            again, _ = print_config("--config", saved.path)
        self.assertEqual({k: v for k, (v, _) in first.items()},
                         {k: v for k, (v, _) in again.items()})

    def test_example_file(self):
        """deploy/gild.conf is a valid config file."""
        example = os.path.join(ROOT, "deploy", "gild.conf")
        me = pwd.getpwuid(os.getuid()).pw_name
        got, out = print_config("--config", example, APP, "--user", me,
                                env=clean_env(GILD_TOKEN="t"))
        self.assertEqual(got["listen"][0],
                         ["tcp://0.0.0.0:7700", "ipc:///run/gild/gild.sock"])
        self.assertTrue(got["listen"][1].startswith("# from %s:" % example))
        self.assertEqual(got["http"][0], ["127.0.0.1:8080"])
        self.assertEqual(got["user"][0], [me])  # the flag beats the file

    def test_token_is_masked(self):
        secret = "hunter2-very-secret"
        for args, env in ((("--token", secret), clean_env()),
                          ((), clean_env(GILD_TOKEN=secret))):
            got, out = print_config(APP, *args, env=env)
            self.assertNotIn(secret, out)
            self.assertNotIn("token", got)  # commented out
            self.assertIn("# token = ********", out)
        with ConfigFile("token = " + secret) as cf:
            got, out = print_config(APP, "--config", cf.path)
        self.assertNotIn(secret, out)
        self.assertIn("# token = ********", out)
        _, out = print_config(APP)
        self.assertNotIn("********", out)


class BadValueTest(unittest.TestCase):
    CASES = [
        # option, bad value, what the error says is allowed
        ("workers", "0", "a whole number from 1 to 4096"),
        ("runtime", "threads", "process or free-threaded"),
        ("max-message", "3G", "a size such as"),
        ("log-level", "loud", "debug, info, warn or error"),
        ("worker-memory", "10", "a size in whole MiB, at least 64M"),
        ("worker-memory", "100K", "a size in whole MiB, at least 64M"),
        ("default-timeout", "soon", "a duration from 0 (none) to 24h"),
        ("drain-timeout", "1500MS", "a duration from 0 to 24h"),
        ("drain-timeout", "25h", "a duration from 0 to 24h"),
        ("slow-ms", "0.4", "a duration up to 24h"),  # rounds to 0 ms
        ("max-message", "64X", "a size such as"),
        ("max-message", "1.1K", "a size such as"),  # not whole bytes
        ("insecure", "maybe", "true or false"),
        ("listen", "localhost:7700", "a URL such as"),
        ("listen", "ws://127.0.0.1@0.0.0.0:7701/x",
         "a URL such as tcp://127.0.0.1:7700 or ipc:///run/gild.sock, "
         "with no user@ part"),
        ("ws-allow-origin", "https://app.example/x", "an origin such as"),
    ]

    def assertRefused(self, rc, err, *words):
        self.assertEqual(rc, 2, err)
        for w in words:
            self.assertIn(w, err)

    def test_flag(self):
        for name, bad, allowed in self.CASES:
            rc, _, err = serve(APP, "--%s=%s" % (name, bad))
            self.assertRefused(rc, err, "gild: --%s: expected %s" % (
                name, allowed), "got '%s'" % bad)

    def test_env(self):
        for name, bad, allowed in self.CASES:
            var = "GILD_" + name.upper().replace("-", "_")
            rc, _, err = serve(APP, env=clean_env(**{var: bad}))
            self.assertRefused(rc, err, "gild: %s (--%s): expected %s" % (
                var, name, allowed), "got '%s'" % bad)

    def test_file(self):
        for name, bad, allowed in self.CASES:
            with ConfigFile("# settings", "%s = %s" % (name, bad)) as cf:
                rc, _, err = serve(APP, "--config", cf.path)
                self.assertRefused(rc, err, "gild: %s:2: %s: expected %s" % (
                    cf.path, name, allowed), "got '%s'" % bad)

    def test_overridden_bad_values_are_still_refused(self):
        """A broken file or variable is reported even when a flag wins."""
        with ConfigFile("workers = none") as cf:
            rc, _, err = serve(APP, "--config", cf.path, "--workers", "1")
            self.assertRefused(rc, err, "%s:1: workers" % cf.path)

    def test_file_errors(self):
        for lines, want in (
                (["workers = 1", "wokers = 2"],
                 ":2: unknown setting 'wokers'"),
                (["--workers = 2"], ":1: unknown setting '--workers'"),
                (["workers 2"], ":1: expected `name = value`"),
                (["workers = 1", "", "workers = 2"],
                 ":3: workers given again (first on line 1)"),
                (["config = /etc/other.conf"],
                 ":1: config cannot be set in a config file"),
                (["token = "], ":1: token: expected a non-empty secret")):
            with ConfigFile(*lines) as cf:
                rc, _, err = serve(APP, "--config", cf.path)
                self.assertRefused(rc, err, "gild: " + cf.path + want)
        rc, _, err = serve(APP, "--config", "/nonexistent/gild.conf")
        self.assertRefused(rc, err, "/nonexistent/gild.conf: No such file",
                           "--config")
        rc, _, err = serve(APP, env=clean_env(
            GILD_CONFIG="/nonexistent/gild.conf"))
        self.assertRefused(rc, err, "(from GILD_CONFIG)")

    def test_empty_token(self):
        rc, _, err = serve(APP, "--token=", env=clean_env(GILD_TOKEN="x"))
        self.assertRefused(rc, err, "--token: expected a non-empty secret")

    def test_combination_names_its_source(self):
        rc, _, err = serve(APP, env=clean_env(GILD_THREADS="2"))
        self.assertRefused(rc, err, "--threads needs --runtime free-threaded",
                           "threads is set by GILD_THREADS")
        with ConfigFile("listen = tcp://0.0.0.0:0") as cf:
            rc, _, err = serve(APP, "--config", cf.path)
        self.assertRefused(rc, err, "refusing to listen on tcp://0.0.0.0:0")

    def test_missing_app(self):
        rc, _, err = serve()
        self.assertRefused(rc, err, "missing APP", "GILD_APP")


class UnitsTest(unittest.TestCase):
    """Every duration takes ms, s, m (and h), every size K, M, G; a bare
    number keeps the option's own unit; --print-config shows each kind in
    one unit whatever the source said."""

    # option: (forms that all mean the same, what --print-config shows)
    SAME = {
        "drain-timeout": (["1500ms", "1.5", "1.5s"], "1.5s"),
        "slow-ms": (["0.5s", "500", "500ms"], "0.5s"),
        "max-message": (["64M", "67108864", "65536K", "64MiB"], "64M"),
        "kill-grace": (["500ms", "0.5"], "0.5s"),
        "default-timeout": (["1m", "60", "60000ms"], "60s"),
        "stream-idle-timeout": (["2m", "120", "120s"], "120s"),
        "max-unread-bytes": (["1G", "1073741824", "1024M"], "1G"),
        "max-actor-bytes": (["1.5K", "1536"], "1536"),
        "max-worker-rss": (["2G", "2048", "2048M"], "2G"),
        "worker-memory": (["512", "512M", "0.5G"], "512M"),
    }
    DEFAULTS = {"drain-timeout": "30s", "slow-ms": "0s",
                "kill-grace": "2s", "default-timeout": "0s",
                "stream-idle-timeout": "120s", "max-message": "64M",
                "max-unread-bytes": "64M", "max-actor-bytes": "256M",
                "max-worker-rss": "0", "worker-memory": "0"}

    def test_every_form_from_every_source(self):
        for name, (forms, shown) in self.SAME.items():
            var = "GILD_" + name.upper().replace("-", "_")
            for form in forms:
                got, out = print_config(APP, "--%s=%s" % (name, form))
                self.assertEqual(got[name], ([shown], "# from the flag --" +
                                             name), (form, out))
                got, _ = print_config(APP, env=clean_env(**{var: form}))
                self.assertEqual(got[name][0], [shown], (var, form))
                with ConfigFile("%s = %s" % (name, form)) as cf:
                    got, _ = print_config(APP, "--config", cf.path)
                self.assertEqual(got[name][0], [shown], (cf.path, form))

    def test_defaults_in_the_same_units(self):
        got, out = print_config(APP)
        for name, shown in self.DEFAULTS.items():
            self.assertEqual(got[name], ([shown], "# default"), out)

    def test_shown_values_read_back(self):
        """--print-config's output, saved and read again, shows the same
        values: what it shows is a valid value."""
        args = [a for name, (forms, _) in self.SAME.items()
                for a in ("--" + name, forms[0])]
        first, out = print_config(APP, *args)
        with ConfigFile(out) as saved:
            again, _ = print_config("--config", saved.path)
        for name in self.SAME:
            self.assertEqual(again[name][0], first[name][0])

    def test_values_take_effect(self):
        """--slow-ms 0.2s logs a call of 0.3 s as slow, as --slow-ms 200
        does; --drain-timeout 1500ms ends a drain after 1.5 s, not 1500."""
        for form in ("0.2s", "200"):
            g = Gild(app=APP, workers=1, args=("--slow-ms", form))
            try:
                self.assertEqual(gildctl("call", g.url, "sleep", "0.3"),
                                 (0, "0.3\n", ""))
            finally:
                self.assertEqual(g.stop(), 0)
            self.assertRegex(g.err, r"slow call: 'sleep' took \d+ ms "
                             r"\(--slow-ms 200\)")
        g = Gild(app=APP, workers=1, args=("--drain-timeout", "1500ms"))
        call = subprocess.Popen(
            [os.path.join(B, "gildctl"), "call", g.url, "sleep", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=die_with_parent)
        try:
            for _ in range(6000):
                rc, out, _ = gildctl("status", g.url)
                if rc == 0 and json.loads(out)["in_flight"] == 1:
                    break
                time.sleep(0.01)
            else:
                self.fail("the call never ran")
            t0 = time.monotonic()
            g.proc.send_signal(signal.SIGTERM)
            g.proc.wait(60)
            took = time.monotonic() - t0
        finally:
            call.kill()
            call.wait()
            g.stop()
        self.assertIn("drain timeout: stopping with calls still running",
                      g.err)
        self.assertGreaterEqual(took, 1.4)
        self.assertLess(took, 15)


class Served(Gild):
    """gild serve with the given args and env (default: no GILD_*
    variables), until stop(), which returns (exit status, its stderr)."""

    def __init__(self, *args, env=None):
        self._start(["serve", *args], clean_env() if env is None else env)
        self.http = self.http_url

    def stop(self):
        return super().stop(), self.err


class FromFileTest(unittest.TestCase):
    def test_server_runs_with_the_file(self):
        with ConfigFile("app = " + APP, "workers = 3",
                        "listen = tcp://127.0.0.1:0", "log-format = json",
                        "max-queue = 5") as cf:
            g = Served(env=clean_env(GILD_CONFIG=cf.path))
            self.addCleanup(g.stop)
            rc, out, err = gildctl("status", g.url)
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(json.loads(out)["workers"]), 3)
            self.assertEqual(gildctl("call", g.url, "add", "1", "2"),
                             (0, "3\n", ""))
            rc, err = g.stop()
        self.assertEqual(rc, 0)
        # log-format = json: gild's own lines are JSON objects.
        own = [l for l in err.splitlines() if l.startswith("{")]
        self.assertTrue(own, err)
        for l in own:
            json.loads(l)


def descendants(pid):
    """The pids of pid's children, grandchildren and so on."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def ids(pid):
    """(real, effective, saved uid), (same for gid), groups of pid."""
    found = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            found[k] = v.split()
    return (tuple(map(int, found["Uid"][:3])),
            tuple(map(int, found["Gid"][:3])),
            sorted(map(int, found["Groups"])))


def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


@unittest.skipUnless(os.geteuid() == 0,
                     "--user needs gild started as root (this test runs as "
                     "uid %d)" % os.geteuid())
@unittest.skipUnless(nobody() is not None, "no user 'nobody' here")
class UserTest(unittest.TestCase):
    def test_server_and_workers_run_as_the_user(self):
        pw = nobody()
        d = tempfile.mkdtemp(prefix="gild-user-")
        self.addCleanup(os.rmdir, d)
        os.chmod(d, 0o1777)  # like /tmp: sticky, anyone may create
        sock = os.path.join(d, "gild.sock")
        g = Served(APP, "--user", "nobody", "--workers", "2", "--listen",
                   "tcp://127.0.0.1:0", "--listen", "ipc://" + sock,
                   "--http", "127.0.0.1:0")
        self.addCleanup(g.stop)
        want = ((pw.pw_uid,) * 3, (pw.pw_gid,) * 3)
        self.assertEqual(ids(g.proc.pid)[:2], want)
        kids = descendants(g.proc.pid)
        rc, out, err = gildctl("status", g.url)
        workers = [w["pid"] for w in json.loads(out)["workers"]]
        self.assertEqual(len(workers), 2)
        self.assertTrue(set(workers) <= set(kids), (workers, kids))
        for pid in kids:  # the template, its standby and the workers
            uid, gid, groups = ids(pid)
            self.assertEqual((uid, gid), want, pid)
            self.assertNotIn(0, groups)
        # Calls work on every listener, and the side port answers.
        self.assertEqual(gildctl("call", g.url, "add", "1", "2"),
                         (0, "3\n", ""))
        self.assertEqual(gildctl("call", "ipc://" + sock, "add", "2", "2"),
                         (0, "4\n", ""))
        with urllib.request.urlopen(g.http + "/readyz", timeout=30) as r:
            self.assertEqual(r.status, 200)
        self.assertEqual(os.stat(sock).st_uid, pw.pw_uid)
        # A replacement worker is the user's too.
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.time() + 60
        while True:
            st = json.loads(gildctl("status", g.url)[1])["workers"]
            if all(w["state"] == "ready" and w["pid"] not in (0, workers[0])
                   for w in st) or time.time() > deadline:
                break
            time.sleep(0.05)
        new = [w["pid"] for w in st if w["pid"] not in workers]
        self.assertEqual(len(new), 1, st)
        self.assertEqual(ids(new[0])[:2], want)
        self.assertEqual(gildctl("call", g.url, "add", "3", "4"),
                         (0, "7\n", ""))
        rc, err = g.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("running as user nobody", err)
        # It could remove its own socket file at exit.
        self.assertFalse(os.path.exists(sock))

    def test_not_root_cannot_become_another_user(self):
        pw = nobody()
        rc, _, err = serve(APP, "--user", "root", user=pw.pw_uid)
        self.assertEqual(rc, 2, err)
        self.assertIn("--user root: gild runs as uid %d, not root" %
                      pw.pw_uid, err)
        # Naming who it already is changes nothing.
        rc, out, err = serve(APP, "--user", "nobody", "--print-config",
                             user=pw.pw_uid)
        self.assertEqual(rc, 0, err)
        self.assertIn("user = nobody", out)

    def test_unknown_user(self):
        rc, _, err = serve(APP, env=clean_env(GILD_USER="no-such-user-x"))
        self.assertEqual(rc, 2, err)
        self.assertIn("--user no-such-user-x: no such user", err)
        self.assertIn("user is set by GILD_USER", err)

    def test_user_who_cannot_run_the_worker(self):
        with tempfile.TemporaryDirectory() as d:  # 0700, root's
            worker = os.path.join(d, "gild-worker")
            shutil.copy2(os.path.join(B, "gild-worker"), worker)
            rc, _, err = serve(APP, "--user", "nobody", "--worker-bin",
                               worker, "--listen", "tcp://127.0.0.1:0")
        self.assertEqual(rc, 1, err)
        self.assertIn("--user nobody cannot run the worker program", err)

if __name__ == "__main__":
    unittest.main()
