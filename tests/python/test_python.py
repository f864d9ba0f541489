"""The gild Python package against the real server: docs/python.md's
examples, threads, errors, values, streams and futures (issue 5)."""
import concurrent.futures
import inspect
import io
import json
import os
import pickle
import re
import subprocess
import sys
import threading
import tempfile
import time
import tokenize
import unittest

from gildproc import ROOT, B, HANG_S, Gild

sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402
    try:
        import numpy
    except ImportError:
        numpy = None

DOCS = os.path.join(ROOT, "docs", "python.md")
ENV = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "client-lib", "python"))


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def shown_output(code):
    """The lines a ```python block of docs/python.md says it prints (the
    convention DocsTest states): the comment on a line of a print(...)
    statement, then each comment-only line right below it whose # is in
    the same column."""
    shown, column, first, in_print = [], None, True, False
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string[1:].rstrip()
            text = text[1:] if text.startswith(" ") else text
            if in_print:
                shown.append(text)
                column = tok.start[1]
            elif first and tok.start[1] == column:
                shown.append(text)
            else:
                column = None
        elif tok.type == tokenize.NEWLINE:
            first, in_print = True, False
        elif tok.type not in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER):
            if first:
                in_print = tok.string == "print"
                column = None
            first = False
    return shown


def shell_examples(text):
    """[(arguments of `python3 -m gild`, the lines shown for its output)]
    from the ```sh blocks of docs/python.md, by the same convention: the
    comment on the command's line, then aligned comment-only lines."""
    examples = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        column = None
        for line in block.splitlines():
            m = re.match(r"python3 -m gild (.*?)\s*(?:(#) ?(.*))?$", line)
            if m:
                shown = [m.group(3).rstrip()] if m.group(2) else []
                examples.append((m.group(1), shown))
                column = m.start(2) if m.group(2) else None
                continue
            m = re.match(r"(\s*)# ?(.*)$", line)
            if m and column is not None and len(m.group(1)) == column:
                examples[-1][1].append(m.group(2).rstrip())
            else:
                column = None
    return examples


def run_block(code, url):
    """Runs a ```python block against the server at url (for
    make run's address); returns the finished process."""
    code = code.replace("tcp://127.0.0.1:7700", url)
    return subprocess.run([sys.executable, "-c", code], env=ENV,
                          capture_output=True, text=True, timeout=120)


class ConventionTest(unittest.TestCase):
    """What DocsTest reads from the docs, on made-up blocks (no server)."""

    def test_shown_output(self):
        code = ("x = 1  # not output: no print\n"
                "print(x)       # 1\n"
                "for i in range(2):\n"
                "    print(i)   # 0\n"
                "               # 1\n"
                "# a note, not output\n"
                "print(\"#\", {'a': 1},\n"
                "      x)       # # {'a': 1} 1\n"
                "y = [x,\n"
                "     x]        # not output: no print\n"
                "print(y)\n")
        self.assertEqual(shown_output(code),
                         ["1", "0", "1", "# {'a': 1} 1"])

    def test_an_exception_that_never_happens_fails(self):
        code = ("try:\n"
                "    x = 1\n"
                "except ValueError as e:\n"
                "    print(type(e).__name__)  # ValueError\n")
        p = run_block(code, "tcp://127.0.0.1:7700")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotEqual(p.stdout.splitlines(), shown_output(code))

    def test_shell_examples(self):
        text = ("```sh\n"
                "python3 -m gild call URL add 1 2   # 3\n"
                "python3 -m gild stream URL t 2     # 0\n"
                "                                   # 1\n"
                "# a note\n"
                "python3 -m gild status URL\n"
                "```\n")
        self.assertEqual(shell_examples(text),
                         [("call URL add 1 2", ["3"]),
                          ("stream URL t 2", ["0", "1"]),
                          ("status URL", [])])


# A sanitized build's extension cannot load into a plain interpreter; the
# plain run covers the package.
@unittest.skipIf(SANITIZED, "the Python client is tested in the plain build")
class DocsTest(unittest.TestCase):
    """Item 1: every example in docs/python.md runs as written and prints
    what the docs show. The convention (also at the top of the docs'
    source): in a ```python block, the comment on a line of a print(...)
    statement is the line that print writes, exactly; comment-only lines
    right below it, their # in the same column, are the further lines it
    writes (a print in a loop). Other comments are notes. A block's whole
    standard output must be those lines, in order, so a print that does
    not run (an except: whose exception never came) or that prints
    something else fails the block. In a ```sh block, the comment on a
    `python3 -m gild` line (and aligned comment lines below it) is that
    command's whole output."""

    @classmethod
    def setUpClass(cls):
        cls.gild = Gild(workers=2)

    @classmethod
    def tearDownClass(cls):
        assert cls.gild.stop() == 0

    def test_python_blocks(self):
        """A block whose first line is `# gild serve examples/app.py ARGS`
        runs against a server started with those ARGS (--allow-exec...),
        the others against make run's."""
        text = open(DOCS).read()
        blocks = re.findall(r"```python\n(.*?)```", text, re.S)
        self.assertGreaterEqual(len(blocks), 7)
        servers = {}
        printed = 0
        try:
            for code in blocks:
                url = self.gild.url
                first = code.split("\n", 1)[0]
                if first.startswith("# gild serve examples/app.py"):
                    args = tuple(first.split()[4:])
                    if args not in servers:
                        servers[args] = Gild(workers=1, args=args)
                    url = servers[args].url
                p = run_block(code, url)
                self.assertEqual(p.returncode, 0, f"{code}\n{p.stderr}")
                shown = shown_output(code)
                self.assertEqual(p.stdout.splitlines(), shown,
                                 f"the output of\n{code}")
                printed += bool(shown)
        finally:
            for g in servers.values():
                self.assertEqual(g.stop(), 0)
        self.assertEqual(len(servers), 2)
        # Only the app-side block prints nothing.
        self.assertEqual(printed, len(blocks) - 1)

    def test_shell_lines(self):
        examples = shell_examples(open(DOCS).read())
        self.assertGreaterEqual(len(examples), 3)
        for line, shown in examples:
            args = line.replace("tcp://127.0.0.1:7700", self.gild.url).split()
            p = subprocess.run([sys.executable, "-m", "gild", *args], env=ENV,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 0, f"{line}\n{p.stderr}")
            if shown:
                self.assertEqual(p.stdout.splitlines(), shown, line)
            else:  # status: its JSON, too long to show
                self.assertEqual(json.loads(p.stdout)["state"], "serving")
        self.assertEqual([bool(s) for _, s in examples], [True, True, False])


@unittest.skipIf(SANITIZED, "the Python client is tested in the plain build")
class LimitsTest(unittest.TestCase):
    """The package's copies of proto/gild_limits.h, which Python cannot
    include (no server)."""

    @staticmethod
    def limit(name):
        with open(os.path.join(ROOT, "proto", "gild_limits.h")) as f:
            m = re.search(r"^#define %s (\d+)$" % name, f.read(), re.M)
        return int(m.group(1)) if m else None

    def test_function_batch(self):
        self.assertEqual(gild._app.BATCH_MAX,
                         self.limit("GILD_FUNCTION_BATCH_MAX"))

    def test_stream_window(self):
        want = self.limit("GILD_STREAM_WINDOW_DEFAULT")
        for fn in (gild.Client.stream, gild.Client.astream):
            got = inspect.signature(fn).parameters["window"].default
            self.assertEqual(got, want, fn.__name__)


@unittest.skipIf(SANITIZED, "the Python client is tested in the plain build")
class ClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Room for a 64 MiB array and the message around it.
        cls.gild = Gild(workers=2, args=("--max-message", "80M"))
        cls.c = gild.connect(cls.gild.url)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()
        assert cls.gild.stop() == 0

    def test_threads_submit_in_parallel(self):
        """Item 2: 10,000 submits from 8 threads, all correct, with
        blocking calls among them. (That a wait releases the GIL is
        tests/python/test_native.py's WaitsTest: another thread must act
        for the call to end.)"""
        results = {}

        def worker(t):
            futs = [(i, self.c.submit("add", i, t))
                    for i in range(t, 10_000, 8)]
            for i, f in futs:
                results[i] = f.result(timeout=60) - (i % 8) == i

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        # Blocking calls too: each waits 0.3 s in C without the GIL.
        slept = []
        waits = [threading.Thread(
            target=lambda: slept.append(self.c.call("sleep", 0.3)))
            for _ in range(2)]
        for th in waits:
            th.start()
        for th in waits + threads:
            th.join(120)  # a bound only a hang reaches
        self.assertFalse(any(th.is_alive() for th in waits + threads))
        self.assertEqual(len(results), 10_000)
        self.assertTrue(all(results.values()))
        self.assertEqual(slept, [0.3, 0.3])

    def test_remote_errors(self):
        """Item 3: the remote traceback in str(); one class per code."""
        with self.assertRaises(gild.RemoteError) as cm:
            self.c.call("fail", "bad input")
        e = cm.exception
        self.assertEqual((e.remote_type, e.remote_message, e.code),
                         ("ValueError", "bad input", "PYTHON_ERROR"))
        self.assertIn("Traceback", str(e))
        self.assertIn("raise ValueError(message)", str(e))
        self.assertIsInstance(e, gild.Error)
        with self.assertRaises(gild.NotFound):
            self.c.call("nope")
        with self.assertRaises(gild.DeadlineExceeded):
            self.c.call("spin", 2000, timeout=0.1)
        with self.assertRaises(gild.WorkerLost):
            self.c.call("crash")
        with self.assertRaises(TypeError):
            self.c.call("echo", {1, 2})  # a set cannot be sent
        self.assertEqual(self.c.call("add", 2, 3), 5)

    def test_typed_remote_errors(self):
        """Issue 20, item 2: a remote exception of a built-in type is
        caught by that type and by gild.RemoteError, and str() still
        shows the remote traceback; a call past its deadline is a
        TimeoutError."""
        with self.assertRaises(ZeroDivisionError) as cm:
            self.c.call("div", 1, 0)
        e = cm.exception
        self.assertIsInstance(e, gild.RemoteError)
        self.assertIs(type(e), gild.RemoteError[ZeroDivisionError])
        self.assertEqual((e.remote_type, e.remote_message),
                         ("ZeroDivisionError", "division by zero"))
        self.assertIn("Remote traceback:", str(e))
        self.assertIn("return a / b", str(e))
        with self.assertRaises(KeyError) as cm:
            self.c.call("lookup", {"a": 1}, "b")
        self.assertIsInstance(cm.exception, gild.RemoteError)
        self.assertIn("return table[key]", str(cm.exception))
        self.assertIn("KeyError: 'b'", str(cm.exception))
        # Both catch it, whichever comes first.
        for catch in (ValueError, gild.RemoteError, Exception):
            try:
                self.c.call("fail", "typed")
            except catch as e:
                self.assertIsInstance(e, ValueError)
                self.assertIsInstance(e, gild.RemoteError)
        with self.assertRaises(TimeoutError) as cm:
            self.c.call("spin", 2000, timeout=0.1)
        self.assertIsInstance(cm.exception, gild.DeadlineExceeded)
        self.assertIn("exceeded its deadline of 100 ms", str(cm.exception))
        # Where it was when its deadline stopped it: in spin's loop.
        self.assertIn("Remote traceback:", str(cm.exception))
        self.assertIn("in spin\n    while time.perf_counter() < deadline",
                      str(cm.exception))
        self.assertIn("gild.DeadlineInterrupt",
                      cm.exception.remote_traceback)
        # A call that did not run has no traceback.
        with self.assertRaises(LookupError) as lk:
            self.c.call("no_such_function")
        self.assertEqual(lk.exception.remote_traceback, "")
        self.assertNotIn("Remote traceback", str(lk.exception))
        # The same through a future.
        f = self.c.submit("div", 1, 0)
        self.assertIsInstance(f.exception(timeout=HANG_S), ZeroDivisionError)
        # gild's own errors and the standard exceptions they derive from.
        for cls, std in ((gild.DeadlineExceeded, TimeoutError),
                         (gild.Unavailable, ConnectionError),
                         (gild.PermissionDenied, PermissionError),
                         (gild.Unauthenticated, PermissionError),
                         (gild.NotFound, LookupError),
                         (gild.InvalidArgument, ValueError),
                         (gild.Unimplemented, NotImplementedError),
                         (gild.Cancelled,
                          concurrent.futures.CancelledError)):
            self.assertTrue(issubclass(cls, std), cls)
            self.assertTrue(issubclass(cls, gild.Error), cls)
        # A remote exception of a type of the app's stays a RemoteError
        # only; so do those that would stop the client or its loops.
        for t in ("app.MyError", "KeyboardInterrupt", "StopIteration"):
            e = gild.errors.from_error("PYTHON_ERROR", t + ": m", t, "tb")
            self.assertIs(type(e), gild.RemoteError, t)
        # They pickle (a ProcessPoolExecutor hands exceptions back so).
        e = pickle.loads(pickle.dumps(cm.exception))
        self.assertIs(type(e), gild.DeadlineExceeded)
        self.assertEqual(str(e), str(cm.exception))
        try:
            self.c.call("div", 1, 0)
        except ZeroDivisionError as z:
            e = pickle.loads(pickle.dumps(z))
            self.assertIs(type(e), type(z))
            self.assertEqual(str(e), str(z))

    def test_handles(self):
        """Issue 20, item 3: a handle passes every keyword to the
        function; its options (deadline, stream window) are set apart."""
        echo_kwargs = self.c.function("echo_kwargs")
        self.assertEqual(echo_kwargs(timeout=7, fn=1, window=2),
                         {"timeout": 7, "fn": 1, "window": 2})
        self.assertEqual(echo_kwargs.submit(timeout=1).result(HANG_S),
                         {"timeout": 1})
        self.assertEqual(self.c.fn.echo_kwargs(fn=2), {"fn": 2})
        self.assertEqual(self.c.call("echo_kwargs", fn=3), {"fn": 3})
        add = self.c.fn.add
        self.assertEqual((add.name, repr(add)), ("add", "<gild.Function add>"))
        self.assertEqual(add(1, 2), 3)
        self.assertEqual(add.submit(2, 3).result(HANG_S), 5)
        self.assertEqual(list(add.map(range(5), range(5))), [0, 2, 4, 6, 8])
        self.assertEqual(sorted(add.map(range(5), range(5), ordered=False)),
                         [0, 2, 4, 6, 8])
        self.assertEqual(list(add.starmap([(1, 2), (3, 4)])), [3, 7])
        self.assertEqual([f.result(HANG_S) for f in
                          add.submit_many([(1, 1), (2, 2)])], [2, 4])
        self.assertEqual(list(self.c.fn.ticks.stream(3)), [0, 1, 2])
        self.assertEqual(list(self.c.fn["ticks"].options(window=1).stream(4)),
                         [0, 1, 2, 3])
        # The deadline is the handle's, for every way of calling it.
        spin = self.c.function("spin").options(timeout=0.2)
        t0 = time.monotonic()
        with self.assertRaises(gild.DeadlineExceeded) as cm:
            spin(5000)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertIn("deadline of 200 ms", str(cm.exception))
        with self.assertRaises(gild.DeadlineExceeded):
            spin.submit(5000).result(HANG_S)
        with self.assertRaises(gild.DeadlineExceeded):
            list(spin.map([5000]))
        # options() keeps what it is not given, and makes a new handle.
        both = self.c.fn.ticks.options(window=4).options(timeout=30)
        self.assertEqual((both.window, both.timeout), (4, 30))
        self.assertEqual(self.c.fn.ticks.window, 64)
        with self.assertRaises(ValueError):
            add.options(timeout=-1)
        with self.assertRaises(TypeError):
            self.c.function(len)
        with self.assertRaises(gild.NotFound):
            self.c.fn.no_such_function()
        import asyncio

        async def main():
            return (await add.acall(4, 5),
                    [i async for i in self.c.fn.ticks.astream(2)])
        self.assertEqual(asyncio.run(main()), (9, [0, 1]))

    def test_values(self):
        """Item 4: values round-trip; a 64 MiB numpy array comes back equal."""
        for v in (None, True, False, 0, -1, 2**200, -(2**70), 1.5,
                  float("inf"), "", "héllo\0x", b"\x00\xff", [1, [2, []]],
                  (1, "a"), {"k": [1, 2]}, {1: "one", (1, 2): "pair"}):
            self.assertEqual(self.c.call("echo", v), v, repr(v))
        self.assertEqual(self.c.call("echo", bytearray(b"ab")), b"ab")
        self.assertEqual(self.c.call("echo", memoryview(b"cd")), b"cd")
        nan = self.c.call("echo", float("nan"))
        self.assertNotEqual(nan, nan)
        if numpy is None:
            self.skipTest("numpy is not installed")
        a = numpy.arange(16 * 2**20, dtype=numpy.float32).reshape(4096, 4096)
        b = self.c.call("echo", a)
        self.assertEqual((b.dtype, b.shape), (a.dtype, a.shape))
        self.assertTrue(numpy.array_equal(a, b))

    def test_stream_memory_flat(self):
        """Item 5: 1,000,000 chunks read slowly; the client's memory stays
        flat."""
        n, start, peak = 0, None, 0
        with self.c.stream("ticks", 1_000_000) as s:
            for i in s:
                if i != n:
                    self.fail(f"chunk {i} where {n} was due")
                n += 1
                if n == 50_000:
                    start = rss_kib()
                if n % 50_000 == 0:
                    peak = max(peak, rss_kib())
                    time.sleep(0.05)  # a slow reader, now and then
        self.assertEqual(n, 1_000_000)
        self.assertLess(peak - start, 8 * 1024)

    def test_future_cancel(self):
        """Item 6: cancelling a future cancels the call on the server; the
        app sees gild.context().cancelled() turn true."""
        with Gild(workers=1) as g, gild.connect(g.url) as c, \
                tempfile.TemporaryDirectory() as tmp:
            started = os.path.join(tmp, "started")
            f = c.submit("wait_for_cancel", 30, started)
            # Until it runs: sent to the worker is not enough (a call
            # cancelled before it starts never runs, and counts nothing).
            for _ in range(3000):
                if os.path.exists(started):
                    break
                time.sleep(0.01)
            self.assertTrue(os.path.exists(started))
            self.assertTrue(f.cancel())
            self.assertTrue(f.cancelled())
            for _ in range(500):
                if c.call("cancels_seen") == 1:
                    break
                time.sleep(0.01)
            self.assertEqual(c.call("cancels_seen"), 1)

    def test_map_and_actors_and_asyncio(self):
        self.assertEqual(list(self.c.map("add", range(100), range(100),
                                         max_in_flight=7)),
                         [2 * i for i in range(100)])
        got = sorted(self.c.map("add", range(20), range(20), ordered=False))
        self.assertEqual(got, [2 * i for i in range(20)])
        h = self.c.actor("Counter", 5)
        self.assertEqual([h.incr(), h.incr(2)], [6, 8])
        self.c.destroy_actor(h)
        with self.assertRaises(gild.NotFound):
            h.incr()
        import asyncio

        async def main():
            xs = await asyncio.gather(*(self.c.acall("add", i, i)
                                        for i in range(5)))
            ys = [y async for y in self.c.astream("ticks", 4)]
            return xs, ys
        self.assertEqual(asyncio.run(main()),
                         ([0, 2, 4, 6, 8], [0, 1, 2, 3]))

    def test_astream_holds_no_thread(self):
        """40 streams read at once on one asyncio loop, a window of 1
        each (so each waits for the server many times): every one gets
        its values in order, no thread is started for them (the loop
        watches each stream's descriptor), and an early break cancels
        its stream."""
        import asyncio
        n = 40

        async def read(k):
            return [y async for y in self.c.astream("ticks", 10 + k,
                                                    window=1)]

        async def main():
            before = threading.active_count()
            got = await asyncio.gather(*(read(k) for k in range(n)))
            during = threading.active_count()
            early = []
            async for y in self.c.astream("ticks", 1000, window=1):
                early.append(y)
                if y == 2:
                    break
            return got, during - before, early
        got, more_threads, early = asyncio.run(main())
        self.assertEqual(got, [list(range(10 + k)) for k in range(n)])
        self.assertEqual(more_threads, 0)
        self.assertEqual(early, [0, 1, 2])
        self.assertEqual(self.c.call("add", 1, 2), 3)  # still serving


if __name__ == "__main__":
    unittest.main()
