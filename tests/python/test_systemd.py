"""gild as a systemd Type=notify service (server/sdnotify.c): READY=1 only
once every worker is ready, STOPPING=1 as SIGTERM starts the drain,
WATCHDOG=1 from the event loop when WATCHDOG_USEC asks for it, and workers
that do not see systemd's variables. The test plays systemd: it binds the
Unix datagram socket that NOTIFY_SOCKET names, in a temporary folder."""
import json
import os
import select
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from gildproc import ROOT, B, die_with_parent, gildctl, read_until, http_get

APP = os.path.join(ROOT, "tests", "apps", "probes.py")
# Seconds a test waits for an event that should come at once; only a
# hang reaches it.
WAIT_S = 30




class Notify:
    """The NOTIFY_SOCKET systemd would give: .got is every message
    received so far, as (monotonic time, {field: value})."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.got = []

    def close(self):
        self.sock.close()

    def _read(self, timeout):
        """Reads one message if one comes within timeout; returns whether
        one did."""
        if not select.select([self.sock], [], [], max(timeout, 0))[0]:
            return False
        data = self.sock.recv(4096).decode()
        fields = dict(l.split("=", 1) for l in data.split("\n") if "=" in l)
        self.got.append((time.monotonic(), fields))
        return True

    def drain(self):
        """Reads what has arrived, waiting for nothing."""
        while self._read(0):
            pass

    def wait_for(self, field, timeout=WAIT_S):
        """Reads until a message with field arrives; returns it as (time,
        fields). Fails after timeout seconds."""
        end = time.monotonic() + timeout
        seen = len(self.got)
        while True:
            for t, m in self.got[seen:]:
                if field in m:
                    return t, m
            seen = len(self.got)
            if not self._read(end - time.monotonic()):
                raise AssertionError("no %s within %ss; got %r" %
                                     (field, timeout, self.got))

    def count(self, field, since=0.0):
        return sum(1 for t, m in self.got if field in m and t >= since)


class Served:
    """gild serve APP ARGS with env, not waited for: .proc, .lines (its
    stdout lines read so far); stopped by pid."""

    def __init__(self, args, env):
        self.log = tempfile.NamedTemporaryFile(prefix="gild-", suffix=".log")
        self.proc = subprocess.Popen(
            [os.path.join(B, "gild"), "serve", APP, "--listen",
             "tcp://127.0.0.1:0", *args], stdout=subprocess.PIPE,
            stderr=self.log, preexec_fn=die_with_parent, env=env)
        self.lines = read_until(self.proc, "gild: http on")
        self.url = [l.split()[-1] for l in self.lines
                    if "listening on" in l][0]
        self.http = self.lines[-1].split()[-1]

    def err(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        """Kills gild if still running; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait(WAIT_S)
        self.proc.stdout.close()
        self.log.close()
        return code


def systemd_env(notify, **extra):
    """Our environment without systemd's or gild's variables, plus
    NOTIFY_SOCKET and extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GILD_", "NOTIFY_", "WATCHDOG_"))}
    env["NOTIFY_SOCKET"] = notify.path
    env.update(extra)
    return env


class SystemdTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="gild-systemd-")
        self.notify = Notify(self.tmp.name)
        self.gild = None

    def tearDown(self):
        if self.gild is not None:
            self.gild.stop()
        self.notify.close()
        self.tmp.cleanup()

    def start(self, *args, **env):
        self.gild = Served(("--http", "127.0.0.1:0") + args,
                           systemd_env(self.notify, **env))
        return self.gild

    def test_ready_after_every_worker_then_stopping_on_sigterm(self):
        """Worker 0 is ready after 1 s, worker 1 after 2.5 s: /readyz says
        200 from the first, but systemd hears READY=1 only when /status
        shows both ready; SIGTERM sends STOPPING=1 while a call still runs
        (the drain starts), the call succeeds, gild exits 0."""
        slow = os.path.join(self.tmp.name, "slow")
        open(slow, "w").close()
        g = self.start("--workers", "2", "--spawn", "exec",
                       GILD_TEST_SLOW_START=slow, GILD_TEST_SLOWER_SLOT="1")
        for _ in range(WAIT_S * 100):
            if http_get(g.http + "/readyz")[0] == 200:
                break
            time.sleep(0.01)
        states = [w["state"] for w in
                  json.loads(http_get(g.http + "/status")[1])["workers"]]
        self.notify.drain()
        self.assertEqual(self.notify.count("READY"), 0,
                         "READY=1 with workers %s" % states)
        self.assertIn("ready", states)
        self.assertNotEqual(set(states), {"ready"})

        _, ready = self.notify.wait_for("READY")
        states = [w["state"] for w in
                  json.loads(http_get(g.http + "/status")[1])["workers"]]
        self.assertEqual(states, ["ready", "ready"])
        self.assertEqual(ready, {"READY": "1",
                                 "STATUS": "ready: 2 workers"})
        # stdout said so first.
        read_until(g.proc, "gild: ready", timeout=5)
        # No WATCHDOG_USEC, no watchdog; and nothing said twice.
        self.assertEqual(self.notify.count("WATCHDOG"), 0, self.notify.got)
        self.assertEqual(self.notify.count("READY"), 1)

        # The workers do not see systemd's socket.
        self.assertEqual(gildctl("call", g.url, "getenv",
                                 '"NOTIFY_SOCKET"'), (0, "null\n", ""))

        held = subprocess.Popen(
            [os.path.join(B, "gildctl"), "call", g.url, "nap", "1.5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=die_with_parent)
        try:
            for _ in range(WAIT_S * 100):
                if json.loads(http_get(g.http + "/status")[1])["in_flight"] == 1:
                    break
                time.sleep(0.01)
            else:
                self.fail("the call never ran")
            g.proc.send_signal(signal.SIGTERM)
            _, stopping = self.notify.wait_for("STOPPING")
            self.assertIsNone(held.poll(), "STOPPING=1 after the drain")
            self.assertEqual(stopping["STOPPING"], "1")
            self.assertEqual(stopping["STATUS"], "draining: 1 running and "
                             "0 queued calls to finish")
            out, err = held.communicate(timeout=WAIT_S)
        finally:
            if held.poll() is None:
                held.kill()
                held.wait()
        self.assertEqual((held.returncode, out.decode(), err.decode()),
                         (0, "1.5\n", ""))
        self.assertEqual(g.proc.wait(WAIT_S), 0, g.err())
        self.assertEqual(self.notify.count("STOPPING"), 1)

    def test_watchdog_fed_from_the_loop(self):
        """WATCHDOG_USEC=200000: WATCHDOG=1 about every 100 ms from start
        to exit; the workers do not see WATCHDOG_USEC."""
        g = self.start("--workers", "1", WATCHDOG_USEC="200000")
        t_ready, _ = self.notify.wait_for("READY")
        time.sleep(1.0)
        self.notify.drain()
        # 10 expected; a loaded machine may delay a few.
        self.assertGreaterEqual(self.notify.count("WATCHDOG", t_ready), 5,
                                self.notify.got)
        self.assertEqual(gildctl("call", g.url, "getenv",
                                 '"WATCHDOG_USEC"'), (0, "null\n", ""))
        self.notify.wait_for("WATCHDOG")
        g.proc.send_signal(signal.SIGTERM)
        self.notify.wait_for("STOPPING")
        self.assertEqual(g.proc.wait(WAIT_S), 0, g.err())

    def test_watchdog_of_another_process(self):
        """WATCHDOG_PID naming another process (systemd's watchdog is for
        the main process only): no WATCHDOG=1."""
        self.start("--workers", "1", WATCHDOG_USEC="200000",
                   WATCHDOG_PID=str(os.getpid()))
        t_ready, _ = self.notify.wait_for("READY")
        time.sleep(0.5)
        self.notify.drain()
        self.assertEqual(self.notify.count("WATCHDOG"), 0, self.notify.got)

    def test_no_listener(self):
        """A NOTIFY_SOCKET nobody listens on: gild serves anyway and says
        why systemd did not hear it."""
        self.notify.close()
        os.unlink(self.notify.path)
        g = self.start("--workers", "1")
        read_until(g.proc, "gild: ready")
        self.assertEqual(gildctl("call", g.url, "ping"), (0, '"pong"\n', ""))
        g.proc.send_signal(signal.SIGTERM)
        self.assertEqual(g.proc.wait(WAIT_S), 0)
        self.assertIn("cannot tell systemd READY=1 (NOTIFY_SOCKET=%s)" %
                      self.notify.path, g.err())


if __name__ == "__main__":
    unittest.main()
