"""Starts the real gild for a test on a run-time port and stops it by pid."""
import ctypes
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B = os.path.join(ROOT, os.environ.get("B", "build"))
APP = os.path.join(ROOT, "examples", "app.py")


# What gild logs when its exit watchdog ends an nng close that hung
# (server/server.c, exit_watchdog), and what Gild.stop returns then.
CLOSE_HUNG_LOG = "nng did not close within 5 s"
CLOSE_HUNG = "gild's close hung (its exit watchdog fired)"


def read_until(proc, marker, timeout=60):
    """Reads proc's stdout lines until one starts with marker; returns the
    lines read. Raises on timeout or exit."""
    lines, buf, deadline = [], b"", time.time() + timeout
    fd = proc.stdout.fileno()
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError("process exited before %r" % marker)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            lines.append(line.decode())
            if lines[-1].startswith(marker):
                return lines
    raise RuntimeError("no %r within %ss" % (marker, timeout))


# Bounds the tests' waits on events: only a hang reaches it.
HANG_S = 60


def until(cond, seconds=HANG_S):
    """Polls cond() every 5 ms until it is true or seconds have passed;
    returns its last value. For waiting on an event (a file, a status
    field), bounded so that a test fails instead of hanging."""
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.005)
    return cond()


def returns(fn, seconds=HANG_S):
    """Runs fn() on a thread of its own; returns whether it returned
    within seconds. For a call that must not wait for something the test
    still holds back: if it does, it waits until the bound, which only
    such a wait (a hang) reaches."""
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    t.join(seconds)
    return not t.is_alive()


def die_with_parent():
    """Child-side: SIGTERM when the test process dies (PR_SET_PDEATHSIG), so
    a killed test leaves no server behind."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


class Gild:
    """gild serve APP on listen (default tcp://127.0.0.1:0, a free port);
    .url is where it listens (its first tcp:// URL, if any), .http_url its
    --http side port, .err its stderr once stopped."""

    def __init__(self, app=APP, workers=1, args=(),
                 listen="tcp://127.0.0.1:0"):
        self._start(["serve", app, "--listen", listen, "--workers",
                     str(workers), *args])

    def _start(self, argv, env=None):
        """Runs gild with argv (and env, default ours) until it is ready."""
        self.err = None
        self.log = tempfile.NamedTemporaryFile(prefix="gild-", suffix=".log")
        self.proc = subprocess.Popen(
            [os.path.join(B, "gild"), *argv], stdout=subprocess.PIPE,
            stderr=self.log, preexec_fn=die_with_parent, env=env)
        try:
            lines = read_until(self.proc, "gild: ready")
        except Exception:
            self.stop()
            raise
        urls = [l.split()[-1] for l in lines if "listening on" in l]
        self.url = next((u for u in urls if u.startswith("tcp://")), urls[0])
        # With --http: where the side port listens.
        self.http_url = next((l.split()[-1] for l in lines
                              if l.startswith("gild: http on")), None)

    def stop(self):
        """SIGTERM, wait; returns the exit status, or CLOSE_HUNG when gild
        exited only because its watchdog ended a close that hung (its
        status would hide that), and keeps the stderr text in .err.
        Stopping again returns the same."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.seek(0)
            self.err = self.log.read().decode(errors="replace")
            self.proc.stdout.close()
            self.log.close()
        if CLOSE_HUNG_LOG in self.err:
            return CLOSE_HUNG
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if self.stop() == CLOSE_HUNG and exc_type is None:
            raise AssertionError(CLOSE_HUNG + "\n" + self.err)


def pb_varint(n):
    """n as a protobuf varint: for requests built by hand (what Python's
    protobuf cannot or will not build)."""
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def pb_field(number, payload):
    """A length-delimited protobuf field."""
    return pb_varint(number << 3 | 2) + pb_varint(len(payload)) + payload


def http_get(url):
    """(status, body) of a GET of url (the side port's probes, /status,
    /metrics): an HTTP error status is an answer too."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def gildctl(*args, timeout=60, env=None, input=None):
    """Runs gildctl (with env instead of ours, and input bytes on its
    stdin, when given); returns (exit code, stdout, stderr) as text."""
    p = subprocess.run([os.path.join(B, "gildctl"), *args],
                       capture_output=True, timeout=timeout, env=env,
                       input=input)
    return p.returncode, p.stdout.decode(), p.stderr.decode()
