"""gild.Executor against a real server (issue 20, item 1): the standard
library's executor tests (Lib/test/test_concurrent_futures: executor.py,
test_wait.py, test_as_completed.py, test_shutdown.py), adapted only where
a gild server stands in for the pool's processes: the functions are
tests/apps/executor_app.py's, served by the server and submitted by name
or as the objects the test imports from the same module, and what the
standard tests print from a worker is written to a file here."""
import concurrent.futures as futures
import functools
import gc
import os
import subprocess
import sys
import tempfile
import time
import unittest

from gildproc import ROOT, HANG_S, Gild, until

APPS = os.path.join(ROOT, "tests", "apps")
sys.path.insert(0, os.path.join(ROOT, "client-lib", "python"))
sys.path.insert(0, APPS)
SANITIZED = bool(os.environ.get("SANITIZE"))
if not SANITIZED:
    import gild  # noqa: E402
    import executor_app as app  # noqa: E402

server = None


def setUpModule():
    global server
    if not SANITIZED:
        server = Gild(app=os.path.join(APPS, "executor_app.py"), workers=2)


def tearDownModule():
    if server is not None:
        assert server.stop() == 0


def create_future(state=futures._base.PENDING, exception=None, result=None):
    f = futures.Future()
    f._state = state
    f._exception = exception
    f._result = result
    return f


CANCELLED_FUTURE = create_future(state=futures._base.CANCELLED)
CANCELLED_AND_NOTIFIED_FUTURE = create_future(
    state=futures._base.CANCELLED_AND_NOTIFIED)
EXCEPTION_FUTURE = create_future(state=futures._base.FINISHED,
                                 exception=OSError())
SUCCESSFUL_FUTURE = create_future(state=futures._base.FINISHED, result=42)


def run_python(code, timeout=HANG_S):
    """Runs code in a fresh interpreter with the package on its path;
    returns the finished process."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "client-lib", "python"), APPS,
         os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=timeout)


@unittest.skipIf(SANITIZED, "the Python client is tested in the plain build")
class ExecutorTest(unittest.TestCase):
    """Each test has its own executor on the module's server (2 workers,
    so max_workers is 2), shut down (waiting) after it."""

    def setUp(self):
        self.t0 = time.monotonic()
        self.executor = gild.Executor(server.url)

    def tearDown(self):
        self.executor.shutdown(wait=True)
        self.assertLess(time.monotonic() - self.t0, HANG_S)


class GeneralTest(ExecutorTest):
    """executor.py's ExecutorTest."""

    def test_is_an_executor(self):
        self.assertIsInstance(self.executor, futures.Executor)
        self.assertEqual(self.executor._max_workers, 2)

    def test_submit(self):
        future = self.executor.submit("power", 2, 8)
        self.assertEqual(256, future.result())

    def test_submit_keyword(self):
        future = self.executor.submit(app.mul, 2, y=8)
        self.assertEqual(16, future.result())
        future = self.executor.submit(app.mul, x=2, y=8)
        self.assertEqual(16, future.result())

    def test_submit_partial_and_handle(self):
        self.assertEqual(self.executor.submit(
            functools.partial(app.mul, 3), 5).result(), 15)
        mul = self.executor.client.function("mul")
        self.assertEqual(self.executor.submit(mul, 3, 7).result(), 21)
        with self.assertRaises(gild.DeadlineExceeded):
            self.executor.submit(self.executor.client.fn.sleep.options(
                timeout=0.1), 5).result()

    def test_submit_refuses_what_has_no_name(self):
        def local(x):
            return x
        for fn in (lambda x: x, local, GeneralTest.setUp, 3):
            with self.assertRaises(TypeError):
                self.executor.submit(fn, 1)
        with self.assertRaises(TypeError):
            self.executor.map(lambda x: x, [1])

    def test_map(self):
        self.assertEqual(
            list(self.executor.map(app.power, range(10), range(10))),
            list(map(pow, range(10), range(10))))
        self.assertEqual(
            list(self.executor.map("power", range(10), range(10),
                                   chunksize=3)),
            list(map(pow, range(10), range(10))))
        with self.assertRaises(ValueError):
            self.executor.map(app.power, range(3), range(3), chunksize=0)

    def test_map_exception(self):
        i = self.executor.map(app.div_mod, [1, 1, 1, 1], [2, 3, 0, 5])
        self.assertEqual(i.__next__(), (0, 1))
        self.assertEqual(i.__next__(), (0, 1))
        self.assertRaises(ZeroDivisionError, i.__next__)

    def test_map_timeout(self):
        results = []
        try:
            for i in self.executor.map(app.sleep, [0, 0, 3], timeout=1):
                results.append(i)
        except futures.TimeoutError:
            pass
        else:
            self.fail("expected TimeoutError")
        self.assertEqual([None, None], results)
        # It is the built-in TimeoutError (Python 3.11 made them one).
        self.assertIs(futures.TimeoutError, TimeoutError)

    def test_shutdown_race_issue12456(self):
        # Issue #12456: race condition at shutdown where trying to post a
        # sentinel in the call queue blocks (the queue is full while
        # processes have exited).
        self.executor.map(str, [2] * (self.executor._max_workers + 1))
        self.executor.shutdown()

    def test_max_workers_negative(self):
        for number in (0, -1):
            with self.assertRaisesRegex(ValueError,
                                        "max_workers must be greater "
                                        "than 0"):
                gild.Executor(server.url, max_workers=number)

    def test_max_workers(self):
        with gild.Executor(server.url, max_workers=1) as ex:
            spans = [f.result() for f in
                     [ex.submit("sleep_and_write", 0.1, os.devnull, "x")
                      for _ in range(3)]]
        self.assertEqual(spans, ["x"] * 3)

    def test_traceback(self):
        # The remote traceback comes with the exception, of its own type.
        future = self.executor.submit(app.raise_runtime)
        with self.assertRaises(Exception) as cm:
            future.result()
        exc = cm.exception
        self.assertIsInstance(exc, RuntimeError)
        self.assertIsInstance(exc, gild.RemoteError)
        self.assertEqual(exc.remote_message, "123")
        self.assertIn("raise RuntimeError(123)  # some comment",
                      exc.remote_traceback)
        self.assertIn("raise RuntimeError(123)  # some comment", str(exc))

    def test_exception_from_result(self):
        f = self.executor.submit(app.sleep_and_raise, 0)
        self.assertIsInstance(f.exception(), Exception)
        self.assertEqual(f.exception().remote_message,
                         "this is an exception")
        with self.assertRaises(Exception):
            f.result()
        with self.assertRaises(gild.NotFound):
            self.executor.submit("no_such_function").result()
        with self.assertRaises(TypeError):  # a set has no gild form
            self.executor.submit(app.mul, {1}, 2).result()

    def test_running_is_not_cancellable(self):
        # A call sent to the server runs to its end, as in a process pool.
        f = self.executor.submit(app.sleep, 0.5)
        self.assertTrue(f.running())
        self.assertFalse(f.cancel())
        self.assertIsNone(f.result())
        # One waiting in the executor is still pending: it cancels.
        fs = [self.executor.submit(app.sleep, 0.3) for _ in range(3)]
        self.assertTrue(fs[2].cancel())
        self.assertTrue(fs[2].cancelled())
        self.assertEqual([f.result() for f in fs[:2]], [None, None])


class WaitTest(ExecutorTest):
    """test_wait.py."""

    def test_20369(self):
        # See https://bugs.python.org/issue20369
        future = self.executor.submit(app.sleep, 1.5)
        done, not_done = futures.wait([future, future],
                                      return_when=futures.ALL_COMPLETED)
        self.assertEqual({future}, done)
        self.assertEqual(set(), not_done)

    def test_first_completed(self):
        future1 = self.executor.submit(app.mul, 21, 2)
        future2 = self.executor.submit(app.sleep, 1.5)
        done, not_done = futures.wait(
            [CANCELLED_FUTURE, future1, future2],
            return_when=futures.FIRST_COMPLETED)
        self.assertEqual(set([future1]), done)
        self.assertEqual(set([CANCELLED_FUTURE, future2]), not_done)

    def test_first_completed_some_already_completed(self):
        future1 = self.executor.submit(app.sleep, 1.5)
        finished, pending = futures.wait(
            [CANCELLED_AND_NOTIFIED_FUTURE, SUCCESSFUL_FUTURE, future1],
            return_when=futures.FIRST_COMPLETED)
        self.assertEqual(
            set([CANCELLED_AND_NOTIFIED_FUTURE, SUCCESSFUL_FUTURE]),
            finished)
        self.assertEqual(set([future1]), pending)

    def test_first_exception(self):
        future1 = self.executor.submit(app.mul, 2, 21)
        future2 = self.executor.submit(app.sleep_and_raise, 1.5)
        future3 = self.executor.submit(app.sleep, 3)
        finished, pending = futures.wait(
            [future1, future2, future3],
            return_when=futures.FIRST_EXCEPTION)
        self.assertEqual(set([future1, future2]), finished)
        self.assertEqual(set([future3]), pending)

    def test_first_exception_some_already_complete(self):
        future1 = self.executor.submit(divmod, 21, 0)  # not served: fails
        future2 = self.executor.submit(app.sleep, 1.5)
        finished, pending = futures.wait(
            [SUCCESSFUL_FUTURE, CANCELLED_FUTURE,
             CANCELLED_AND_NOTIFIED_FUTURE, future1, future2],
            return_when=futures.FIRST_EXCEPTION)
        self.assertEqual(set([SUCCESSFUL_FUTURE,
                              CANCELLED_AND_NOTIFIED_FUTURE, future1]),
                         finished)
        self.assertEqual(set([CANCELLED_FUTURE, future2]), pending)
        self.assertIsInstance(future1.exception(), gild.NotFound)

    def test_first_exception_one_already_failed(self):
        future1 = self.executor.submit(app.sleep, 2)
        finished, pending = futures.wait(
            [EXCEPTION_FUTURE, future1],
            return_when=futures.FIRST_EXCEPTION)
        self.assertEqual(set([EXCEPTION_FUTURE]), finished)
        self.assertEqual(set([future1]), pending)

    def test_all_completed(self):
        future1 = self.executor.submit(app.div_mod, 2, 0)
        future2 = self.executor.submit(app.mul, 2, 21)
        finished, pending = futures.wait(
            [SUCCESSFUL_FUTURE, CANCELLED_AND_NOTIFIED_FUTURE,
             EXCEPTION_FUTURE, future1, future2],
            return_when=futures.ALL_COMPLETED)
        self.assertEqual(set([SUCCESSFUL_FUTURE,
                              CANCELLED_AND_NOTIFIED_FUTURE,
                              EXCEPTION_FUTURE, future1, future2]),
                         finished)
        self.assertEqual(set(), pending)
        self.assertIsInstance(future1.exception(), ZeroDivisionError)

    def test_timeout(self):
        short_timeout = 0.5
        future = self.executor.submit(app.sleep, short_timeout * 6)
        finished, pending = futures.wait(
            [CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE,
             SUCCESSFUL_FUTURE, future],
            timeout=short_timeout,
            return_when=futures.ALL_COMPLETED)
        self.assertEqual(set([CANCELLED_AND_NOTIFIED_FUTURE,
                              EXCEPTION_FUTURE, SUCCESSFUL_FUTURE]),
                         finished)
        self.assertEqual(set([future]), pending)


class AsCompletedTest(ExecutorTest):
    """test_as_completed.py."""

    def test_no_timeout(self):
        future1 = self.executor.submit(app.mul, 2, 21)
        future2 = self.executor.submit(app.mul, 7, 6)
        completed = set(futures.as_completed(
            [CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE,
             SUCCESSFUL_FUTURE, future1, future2]))
        self.assertEqual(set([CANCELLED_AND_NOTIFIED_FUTURE,
                              EXCEPTION_FUTURE, SUCCESSFUL_FUTURE,
                              future1, future2]),
                         completed)

    def test_future_times_out(self):
        """as_completed raises TimeoutError when it times out on a
        future that is still pending, whether or not its call was sent."""
        already_completed = {CANCELLED_AND_NOTIFIED_FUTURE, EXCEPTION_FUTURE,
                             SUCCESSFUL_FUTURE}
        sleeping = [self.executor.submit(app.sleep, 1) for _ in range(3)]
        for timeout in (0, 0.01):
            with self.subTest(timeout):
                completed_futures = set()
                try:
                    for future in futures.as_completed(
                            already_completed | set(sleeping),
                            timeout=timeout):
                        completed_futures.add(future)
                except futures.TimeoutError:
                    pass
                # Check that ``future`` wasn't completed.
                self.assertEqual(completed_futures, already_completed)

    def test_duplicate_futures(self):
        # Issue 20367. Duplicate futures should not raise exceptions or
        # give duplicate responses.
        future1 = self.executor.submit(app.sleep, 0.5)
        completed = [f for f in futures.as_completed(
            itertools_repeat(future1, 3))]
        self.assertEqual(len(completed), 1)

    def test_correct_timeout_exception_msg(self):
        futures_list = [CANCELLED_AND_NOTIFIED_FUTURE, SUCCESSFUL_FUTURE,
                        self.executor.submit(app.sleep, 1.5),
                        self.executor.submit(app.sleep, 1.5)]
        with self.assertRaises(futures.TimeoutError) as cm:
            list(futures.as_completed(futures_list, timeout=0))
        self.assertEqual(str(cm.exception), "2 (of 4) futures unfinished")

    def test_many(self):
        fs = [self.executor.submit(app.mul, i, 2) for i in range(500)]
        got = sorted(f.result() for f in futures.as_completed(fs))
        self.assertEqual(got, [2 * i for i in range(500)])


def itertools_repeat(x, n):
    return [x] * n


class ShutdownTest(ExecutorTest):
    """test_shutdown.py."""

    def test_run_after_shutdown(self):
        self.executor.shutdown()
        self.assertRaises(RuntimeError, self.executor.submit, app.power, 2, 5)
        self.assertRaises(RuntimeError, self.executor.map, app.power, [2],
                          [5])

    def test_hang_issue12364(self):
        fs = [self.executor.submit(app.sleep, 0.02) for _ in range(50)]
        self.executor.shutdown()
        for f in fs:
            f.result()

    def test_shutdown_waits(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            fs = [self.executor.submit(app.sleep_and_write, 0.2, out, str(i))
                  for i in range(4)]
            self.executor.shutdown(wait=True)
            self.assertTrue(all(f.done() for f in fs))
            with open(out) as f:
                self.assertEqual(sorted(f.read().split()),
                                 ["0", "1", "2", "3"])
        # The client closes with the executor.
        with self.assertRaises(ValueError):
            self.executor.client.call("mul", 1, 2)

    def test_cancel_futures(self):
        assert self.executor._max_workers <= 5, "test needs few workers"
        fs = [self.executor.submit(app.sleep, .1) for _ in range(50)]
        self.executor.shutdown(cancel_futures=True)
        # We can't guarantee the exact number of cancellations, but we can
        # guarantee that *some* were cancelled. With few workers, many of
        # the submitted futures should have been cancelled.
        cancelled = [fut for fut in fs if fut.cancelled()]
        self.assertGreater(len(cancelled), 20)
        # Ensure the other futures were able to finish.
        others = [fut for fut in fs if not fut.cancelled()]
        for fut in others:
            self.assertTrue(fut.done(), msg=f"{fut._state=}")
            self.assertIsNone(fut.exception())
        # Similar to the number of cancelled futures, we can't guarantee
        # the exact number that completed. But, we can guarantee that at
        # least one finished.
        self.assertGreater(len(others), 0)
        # Cancelled futures are done for wait() and as_completed().
        done, not_done = futures.wait(fs, timeout=HANG_S)
        self.assertEqual(len(done), 50)
        self.assertEqual(len(list(futures.as_completed(fs))), 50)

    def test_shutdown_no_wait(self):
        res = self.executor.map(abs_remote(), range(-5, 5))
        t0 = time.monotonic()
        self.executor.shutdown(wait=False)
        self.assertLess(time.monotonic() - t0, 0.5)
        self.assertEqual(list(res), [x * 1 for x in range(-5, 5)])
        # The client closes once the last call is done.
        self.assertTrue(until(lambda: self.executor._closed))

    def test_shutdown_no_wait_returns_at_once(self):
        f = self.executor.submit(app.sleep, 1)
        t0 = time.monotonic()
        self.executor.shutdown(wait=False)
        self.assertLess(time.monotonic() - t0, 0.5)
        self.assertFalse(f.done())
        self.assertIsNone(f.result(timeout=HANG_S))

    def test_context_manager_shutdown(self):
        with gild.Executor(server.url) as e:
            fs = [e.submit(app.sleep_and_write, 0.3, os.devnull, "x")
                  for _ in range(3)]
            self.assertEqual(list(e.map(abs_remote(), (-5, -1))), [-5, -1])
        # Leaving the block waited for every call.
        self.assertTrue(all(f.done() for f in fs))
        self.assertEqual([f.result() for f in fs], ["x"] * 3)
        self.assertRaises(RuntimeError, e.submit, app.mul, 1, 1)

    def test_del_shutdown(self):
        executor = gild.Executor(server.url)
        res = executor.map(app.mul, range(3), range(3))
        client = executor.client
        del executor
        self.assertEqual(list(res), [0, 1, 4])
        gc.collect()
        self.assertTrue(until(lambda: client._closed))

    def test_shutdown_from_a_callback(self):
        done = []
        f = self.executor.submit(app.mul, 2, 3)
        f.add_done_callback(lambda f: (self.executor.shutdown(wait=True),
                                       done.append(f.result())))
        self.assertTrue(until(lambda: done))
        self.assertEqual(done, [6])

    def test_interpreter_shutdown(self):
        # At exit, the interpreter waits for an executor's calls, as for a
        # pool's work: the call still ends.
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            p = run_python(f"""if 1:
                import gild
                from executor_app import sleep_and_write
                t = gild.Executor({server.url!r})
                t.submit(sleep_and_write, 1.0, {out!r}, "apple")
                """)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, "")
            with open(out) as f:
                self.assertEqual(f.read().strip(), "apple")

    def test_cancel_futures_wait_false(self):
        # Can only be reliably tested for the executor's worker count
        # (here 1): the first call runs, the second is cancelled, and
        # the interpreter's exit waits for the first.
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            p = run_python(f"""if 1:
                import gild
                from executor_app import sleep_and_write
                t = gild.Executor({server.url!r}, max_workers=1)
                t.submit(sleep_and_write, .1, {out!r}, "apple")
                f = t.submit(sleep_and_write, .1, {out!r}, "pear")
                t.shutdown(wait=False, cancel_futures=True)
                assert f.cancelled()
                """)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stderr, "")
            with open(out) as f:
                self.assertEqual(f.read().strip(), "apple")


def abs_remote():
    """mul(x, 1): the servers' stand-in for abs in the standard tests
    (abs is not the app's)."""
    return functools.partial(app.mul, y=1)


if __name__ == "__main__":
    unittest.main()
