"""Three gild servers behind a real HAProxy (Debian's haproxy), configured
from deploy/haproxy/haproxy.cfg with loopback addresses and ports chosen at
run time, and six clients calling through it in bounded loops. One server is
SIGKILLed (calls end with a result or an explicit error, HAProxy marks it
down from /readyz, every call made after that succeeds) or SIGTERMed (no
call fails). The ledger app records every run, so no call may run twice."""
import collections
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from gildproc import ROOT, die_with_parent
from test_drain import named_gild, ledger_counts

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
import gild  # noqa: E402

CFG = os.path.join(ROOT, "deploy", "haproxy", "haproxy.cfg")
CLIENTS = 6
MAX_CALLS = 5000       # per client, in all
AFTER_DOWN = 30        # calls each client makes once the server is down


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haproxy_config(servers, port, admin, spare=False):
    """deploy/haproxy/haproxy.cfg with the test's addresses: the frontend on
    127.0.0.1:port, the three servers (nng URL, side port), the runtime API
    socket at admin, checks every 100 ms, no Docker DNS; with spare, a
    fourth server gild4, in maintenance until Haproxy.add_spare."""
    text = open(CFG).read()
    subs = [
        (r"(?m)^\s*log stdout.*\n", ""),
        (r"stats socket \S+", "stats socket %s" % admin),
        (r"bind :7700", "bind 127.0.0.1:%d" % port),
        (r" inter \S+", " inter 100ms"),
        (r" resolvers docker", ""),
        (r"(?ms)^resolvers docker.*", ""),
    ]
    for i, (nng, http) in enumerate(servers, 1):
        subs.append((r"server gild%d gild%d:7700" % (i, i),
                     "server gild%d %s check port %d" % (i, nng, http)))
    if spare:
        subs.append((r"(server gild3 .*\n)",
                     r"\1    server gild4 127.0.0.1:9 check port 9 disabled\n"))
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text)
        assert n >= 1, "deploy/haproxy/haproxy.cfg has no %r" % pattern
    return text


class Haproxy:
    """haproxy -db (foreground) on a generated config; stopped by pid."""

    def __init__(self, tmp, servers, spare=False):
        self.port = free_port()
        self.admin = os.path.join(tmp, "admin.sock")
        cfg = os.path.join(tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(haproxy_config(servers, self.port, self.admin, spare))
        self.log = open(os.path.join(tmp, "haproxy.log"), "w")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", cfg],
                                     stdout=self.log, stderr=self.log,
                                     preexec_fn=die_with_parent)
        self.url = "tcp://127.0.0.1:%d" % self.port

    def command(self, line):
        """One runtime API command; its answer as text."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.admin)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        return out.decode()

    def add_spare(self, nng, http):
        """Points gild4 at a server started since (nng host:port, side
        port) and takes it out of maintenance; its checks then bring it
        up."""
        host, port = nng.rsplit(":", 1)
        for cmd in ("set server gild_replicas/gild4 addr %s port %s" %
                    (host, port),
                    "set server gild_replicas/gild4 check-port %d" % http,
                    "set server gild_replicas/gild4 state ready"):
            out = self.command(cmd)
            assert "rror" not in out and "nknown" not in out, (cmd, out)

    def states(self):
        """{server name: UP/DOWN/...} from the runtime API (a server in
        maintenance is DOWN)."""
        out = self.command("show servers state gild_replicas")
        names = {"0": "DOWN", "1": "STARTING", "2": "UP", "3": "STOPPING"}
        states = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) > 6 and not line.startswith("#"):
                states[f[3]] = names.get(f[5], f[5])
        return states

    def wait_states(self, want, timeout=60):
        """Polls the runtime API until the states are want."""
        got, deadline = None, time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("haproxy exited: %s" % open(
                    self.log.name).read())
            try:
                got = self.states()
            except OSError:
                got = None  # not listening yet
            if got == want:
                return
            time.sleep(0.02)
        raise AssertionError("HAProxy says %r, not %r" % (got, want))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()


class Load:
    """CLIENTS clients, each its own connection through HAProxy, each
    calling record() in a loop of at most MAX_CALLS calls with a 30 s
    deadline per call. Each outcome is kept with the phase the call
    started in (the test moves the phase on)."""

    def __init__(self, url, ledger, clients=CLIENTS, max_calls=MAX_CALLS,
                 pause=0):
        self.ledger = ledger
        self.phase = 0
        self.max_calls = max_calls
        self.pause = pause  # seconds between a client's calls
        self.stop = threading.Event()
        self.outcomes = [[] for _ in range(clients)]
        # Connected one after another: leastconn spreads them evenly.
        self.clients = [gild.connect(url, timeout=30) for _ in range(clients)]
        self.threads = [threading.Thread(target=self.run, args=(k,),
                                         daemon=True)
                        for k in range(clients)]
        self.finished = False
        for t in self.threads:
            t.start()

    def run(self, k):
        c, out = self.clients[k], self.outcomes[k]
        for i in range(self.max_calls):
            if self.stop.is_set():
                break
            phase, token = self.phase, "c%d-%d" % (k, i)
            try:
                out.append((phase, token, "ok", c.call("record", self.ledger,
                                                       token)))
            except gild.Error as e:  # an explicit error, the call ended
                out.append((phase, token, type(e).__name__, str(e)))
            if self.pause:
                time.sleep(self.pause)

    def count(self, pred):
        return sum(1 for out in self.outcomes for o in out if pred(o))

    def wait(self, pred, n, timeout=120, each=False):
        """Until n outcomes satisfy pred, or n of each client's do (or
        every client stopped)."""
        def done():
            if each:
                return min(sum(1 for o in out if pred(o))
                           for out in self.outcomes) >= n
            return self.count(pred) >= n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done() and \
                any(t.is_alive() for t in self.threads):
            time.sleep(0.01)

    def finish(self):
        """Stops the clients; returns the threads still in a call after
        2 minutes (none, unless a call hangs)."""
        self.stop.set()
        for t in self.threads:
            t.join(120)
        hung = [t for t in self.threads if t.is_alive()]
        if not hung and not self.finished:
            self.finished = True
            for c in self.clients:
                c.close()
        return hung


@unittest.skipIf(os.environ.get("SANITIZE"),
                 "the native client is not built under sanitizers")
class LoadBalancerTest(unittest.TestCase):
    def setUp(self):
        # Cleanups run even when setUp fails half way.
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.ledger = os.path.join(self.tmp.name, "ledger")
        self.servers = []
        for name in "abc":
            g = named_gild(name, workers=1, args=("--http", "127.0.0.1:0"))
            self.addCleanup(g.stop)
            self.servers.append(g)
        self.haproxy = Haproxy(self.tmp.name, [
            (g.url.split("://")[1], int(g.http_url.rsplit(":", 1)[1]))
            for g in self.servers])
        self.addCleanup(self.haproxy.stop)
        self.haproxy.wait_states({"gild1": "UP", "gild2": "UP",
                                  "gild3": "UP"})

    def start_load(self):
        """Load until every server has run calls (so the one stopped has
        clients connected to it)."""
        load = Load(self.haproxy.url, self.ledger)
        self.addCleanup(load.finish)  # also when an assertion fails
        for name in "abc":
            load.wait(lambda o, name=name: o[3] == name, 20)
        self.assertEqual({o[3] for out in load.outcomes for o in out
                          if o[2] == "ok"}, set("abc"))
        return load

    def check_ledger(self, load):
        """No call ran twice; every call that succeeded ran once, on the
        server that answered it."""
        runs = ledger_counts(self.ledger)
        self.assertEqual({t: r for t, r in runs.items() if len(r) > 1}, {})
        for out in load.outcomes:
            for phase, token, what, name in out:
                if what == "ok":
                    self.assertEqual(runs.get(token), [name], token)

    def test_sigkill_one(self):
        load = self.start_load()
        victim = self.servers[0]
        victim.proc.send_signal(signal.SIGKILL)
        load.phase = 1
        self.haproxy.wait_states({"gild1": "DOWN", "gild2": "UP",
                                  "gild3": "UP"})
        load.phase = 2
        load.wait(lambda o: o[0] == 2, AFTER_DOWN, each=True)
        hung = load.finish()
        self.assertEqual(hung, [], "calls that never ended")
        after = [o for out in load.outcomes for o in out if o[0] == 2]
        self.assertEqual([o for o in after if o[2] != "ok"], [])
        self.assertNotIn("a", {o[3] for o in after})
        # Every client kept going after the kill.
        for out in load.outcomes:
            self.assertGreaterEqual(sum(1 for o in out if o[0] == 2),
                                    AFTER_DOWN)
        # Failures, if any, are explicit errors of calls in flight at the
        # kill (or sent before HAProxy noticed), from the lost connection.
        failed = [o for out in load.outcomes for o in out if o[2] != "ok"]
        for phase, token, what, msg in failed:
            self.assertEqual(what, "Unavailable", msg)
        print("SIGKILL: %d calls, %d ended with an explicit error, %d after "
              "HAProxy marked the server down (all succeeded)" %
              (load.count(lambda o: True), len(failed), len(after)))
        self.check_ledger(load)

    def test_sigterm_one(self):
        load = self.start_load()
        victim = self.servers[0]
        victim.proc.send_signal(signal.SIGTERM)
        load.phase = 1
        self.haproxy.wait_states({"gild1": "DOWN", "gild2": "UP",
                                  "gild3": "UP"})
        load.phase = 2
        load.wait(lambda o: o[0] == 2, AFTER_DOWN, each=True)
        self.assertEqual(victim.proc.wait(60), 0)
        hung = load.finish()
        self.assertEqual(hung, [], "calls that never ended")
        failed = [o for out in load.outcomes for o in out if o[2] != "ok"]
        self.assertEqual(failed, [])
        after = [o for out in load.outcomes for o in out if o[0] == 2]
        self.assertNotIn("a", {o[3] for o in after})
        for out in load.outcomes:
            self.assertGreaterEqual(sum(1 for o in out if o[0] == 2),
                                    AFTER_DOWN)
        print("SIGTERM: %d calls, none failed, %d after HAProxy marked the "
              "server down" % (load.count(lambda o: True), len(after)))
        self.check_ledger(load)


AGE_CLIENTS = 8        # two connections for each of the four servers
AGE_PAUSE = 0.005      # seconds between a client's calls
AGE_MAX_CALLS = 10000  # per client, in all (about 50 s of calls)
AGE_AFTER_S = 15       # how long the clients call once gild4 is up


@unittest.skipIf(os.environ.get("SANITIZE"),
                 "the native client is not built under sanitizers")
class ConnectionAgeTest(unittest.TestCase):
    """--max-connection-age: three servers behind HAProxy with clients
    calling all along, then a fourth added (as an autoscaler would). Each
    connection's calls are refused as not started once it is 2 s old (+/-
    10%), so its client resends them on a new connection, which HAProxy's
    leastconn gives to the newcomer until it has its share."""

    def test_new_server_gets_calls(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        ledger = os.path.join(tmp.name, "ledger")
        args = ("--http", "127.0.0.1:0", "--max-connection-age", "2s")
        servers = []
        for name in "abc":
            g = named_gild(name, workers=1, args=args)
            self.addCleanup(g.stop)
            servers.append(g)
        haproxy = Haproxy(tmp.name, [
            (g.url.split("://")[1], int(g.http_url.rsplit(":", 1)[1]))
            for g in servers], spare=True)
        self.addCleanup(haproxy.stop)
        up3 = {"gild1": "UP", "gild2": "UP", "gild3": "UP"}
        haproxy.wait_states(dict(up3, gild4="DOWN"))
        load = Load(haproxy.url, ledger, AGE_CLIENTS, AGE_MAX_CALLS,
                    AGE_PAUSE)
        self.addCleanup(load.finish)
        load.wait(lambda o: True, 200, timeout=60)
        d = named_gild("d", workers=1, args=args)
        self.addCleanup(d.stop)
        haproxy.add_spare(d.url.split("://")[1],
                          int(d.http_url.rsplit(":", 1)[1]))
        haproxy.wait_states(dict(up3, gild4="UP"))
        load.phase = 1
        end = time.monotonic() + AGE_AFTER_S
        while time.monotonic() < end and \
                any(t.is_alive() for t in load.threads):
            time.sleep(0.05)
        hung = load.finish()
        self.assertEqual(hung, [], "calls that never ended")
        failed = [o for out in load.outcomes for o in out if o[2] != "ok"]
        self.assertEqual(failed, [])
        after = [o for out in load.outcomes for o in out if o[0] == 1]
        by = collections.Counter(o[3] for o in after)
        print("--max-connection-age 2s: %d calls after the fourth server "
              "was up, by server %s" % (len(after), dict(sorted(by.items()))))
        self.assertGreater(len(after), 0)
        self.assertGreaterEqual(by["d"] * 5, len(after), by)
        # The refusals were answered on arrival and resent: no call ran
        # twice, each ran where its answer came from.
        runs = ledger_counts(ledger)
        self.assertEqual({t: r for t, r in runs.items() if len(r) > 1}, {})
        for out in load.outcomes:
            for phase, token, what, name in out:
                self.assertEqual(runs.get(token), [name], token)


if __name__ == "__main__":
    unittest.main()
