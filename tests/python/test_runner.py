"""The test runner's own tests: tests/run.sh, tests/fuzz/run.sh,
tests/python/runner.py and tests/test_main.c must count what ran (passes,
failures, skips, expected failures) and fail on every way a test program
can go wrong, or make test could pass with nothing checked."""
import os
import re
import stat
import subprocess
import tempfile
import textwrap
import unittest

import gildproc
from gildproc import ROOT, B

RUN = os.path.join(ROOT, "tests", "run.sh")
FUZZ = os.path.join(ROOT, "tests", "fuzz", "run.sh")
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped, "
                     r"(\d+) expected failures$", re.M)

ASAN_REPORT = """\
==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020
READ of size 1 at 0x6020 thread T0
SUMMARY: AddressSanitizer: heap-buffer-overflow (fuzz_request+0x1)
"""


def run(args, env=None, timeout=120):
    """Runs a command from the repository root; returns (status, output)."""
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout,
                       env=dict(os.environ, B=B, **(env or {})))
    return p.returncode, p.stdout + p.stderr


def summary(out):
    """(passed, failed, skipped, xfail) from run.sh's closing line."""
    m = SUMMARY.findall(out)
    assert m, out
    return tuple(int(x) for x in m[-1])


def tail(out):
    """What run.sh printed after its "skipped:" and "not run" lists: the
    part of a long log that a reader of its last lines sees."""
    return out[out.rfind("what failed ("):]


class Scratch(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def script(self, name, body):
        """An executable shell script `name` in the scratch folder."""
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        return path

    def pyfile(self, name, body):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(body))
        return path


class FuzzRunTest(Scratch):
    """tests/fuzz/run.sh passes a target only when it ran its time, said
    so, exited 0 and printed no sanitizer report. The fakes are named
    fuzz_request so that the committed seed corpus is found."""

    def fuzz(self, body, seconds=1, grace=60):
        target = self.script("fuzz_request", body)
        return run([FUZZ, target, str(seconds)],
                   env={"FUZZ_GRACE": str(grace)})

    def test_a_clean_run_passes(self):
        rc, out = self.fuzz('echo "Done 1234 runs in 1 second(s)"\n')
        self.assertEqual(rc, 0, out)
        self.assertIn("no crash in 1s", out)

    def test_a_crash_fails(self):
        rc, out = self.fuzz("cat <<'EOF'\n%sEOF\nexit 77\n" % ASAN_REPORT)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("FAIL: exited with status 77", out)
        self.assertIn("heap-buffer-overflow", out)  # the report is shown

    def test_a_report_with_status_0_fails(self):
        rc, out = self.fuzz("cat <<'EOF'\n%sEOF\n"
                            'echo "Done 1 runs in 1 second(s)"\n'
                            % ASAN_REPORT)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("FAIL: a sanitizer report", out)

    def test_ubsan_report_fails(self):
        rc, out = self.fuzz('echo "parse.c:12:3: runtime error: signed '
                            'integer overflow"\n'
                            'echo "Done 1 runs in 1 second(s)"\n')
        self.assertNotEqual(rc, 0, out)
        self.assertIn("FAIL: a sanitizer report", out)

    def test_a_hang_fails(self):
        rc, out = self.fuzz("exec sleep 600\n", seconds=1, grace=1)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("FAIL: still running 1s past its 1s: killed", out)

    def test_a_target_that_never_fuzzed_fails(self):
        rc, out = self.fuzz("exit 0\n")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("FAIL: it never said it was done", out)

    def test_a_missing_target_fails(self):
        rc, out = run([FUZZ, os.path.join(self.tmp.name, "fuzz_request"),
                       "1"])
        self.assertNotEqual(rc, 0, out)
        self.assertIn("FAIL: no fuzz target at", out)

    def test_make_test_fails_with_a_crashing_target(self):
        """run.sh, as make test calls it, fails and names the target."""
        target = self.script("fuzz_request",
                             "cat <<'EOF'\n%sEOF\nexit 77\n" % ASAN_REPORT)
        rc, out = run([RUN, target], env={"FUZZ_SECONDS": "1"})
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(summary(out), (0, 1, 0, 0))
        self.assertIn("failing: " + target, out)


class PythonCountsTest(Scratch):
    """Python test files, run through runner.py: each test counted once,
    skips and expected failures named."""

    FILE = """\
        import unittest

        class T(unittest.TestCase):
            def test_1(self): pass
            def test_2(self): pass
            def test_3(self): pass
            def test_4(self): pass
            def test_5(self): pass
            def test_fails(self): self.assertEqual(1, 2)
            @unittest.skip("not here")
            def test_skipped(self): pass
    """

    def test_five_passed_one_failed_one_skipped(self):
        path = self.pyfile("test_fake.py", self.FILE)
        rc, out = run([RUN, path])
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(summary(out), (5, 1, 1, 0))
        self.assertIn("SKIP: test_fake.T.test_skipped: not here", out)
        self.assertIn("failing: " + path, out)
        self.assertIn("\n  %s: FAIL: test_fails" % path, tail(out))
        self.assertIn("\n  %s: AssertionError: 1 != 2" % path, tail(out))

    def test_expected_failures(self):
        path = self.pyfile("test_fake.py", """\
            import unittest

            class T(unittest.TestCase):
                def test_ok(self): pass
                @unittest.expectedFailure
                def test_known_bug(self): self.assertEqual(1, 2)
        """)
        rc, out = run([RUN, path])
        self.assertEqual(rc, 0, out)
        self.assertEqual(summary(out), (1, 0, 0, 1))
        self.assertIn("XFAIL: test_fake.T.test_known_bug: AssertionError",
                      out)

    def test_an_unexpected_pass_fails(self):
        path = self.pyfile("test_fake.py", """\
            import unittest

            class T(unittest.TestCase):
                @unittest.expectedFailure
                def test_fixed(self): pass
        """)
        rc, out = run([RUN, path])
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(summary(out), (0, 1, 0, 0))
        self.assertIn("XPASS: test_fake.T.test_fixed", out)

    def test_a_file_whose_tests_all_skip_says_so(self):
        path = self.pyfile("test_fake.py", """\
            import unittest

            @unittest.skip("nothing to do here")
            class T(unittest.TestCase):
                def test_a(self): pass
                def test_b(self): pass
        """)
        rc, out = run([RUN, path])
        self.assertEqual(rc, 0, out)
        self.assertEqual(summary(out), (0, 0, 2, 0))
        self.assertIn("!!! every test of %s was skipped" % path, out)

    def test_a_broken_file_fails(self):
        path = self.pyfile("test_fake.py", "import no_such_module\n")
        rc, out = run([RUN, path])
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(summary(out), (0, 1, 0, 0))

    def test_gild_test_only_says_what_it_left_out(self):
        path = self.pyfile("test_fake.py", self.FILE)
        rc, out = run([RUN, path], env={"GILD_TEST_ONLY": "test_2"})
        self.assertEqual(rc, 0, out)
        self.assertEqual(summary(out), (1, 0, 0, 0))
        self.assertIn("  test_fake.T.test_fails", out)
        self.assertIn("!!! GILD_TEST_ONLY=test_2 left out 6 tests", out)

    def test_not_run_suites_are_listed(self):
        path = self.pyfile("test_fake.py", "import unittest\n"
                           "class T(unittest.TestCase):\n"
                           "    def test_a(self): pass\n")
        rc, out = run([RUN, path], env={
            "NOT_RUN": "suite_a: reason a;suite_b: reason b;"})
        self.assertEqual(rc, 0, out)
        self.assertIn("not run in this build:\n  suite_a: reason a\n"
                      "  suite_b: reason b\n", out)


class CUnitCountsTest(Scratch):
    """build/tests/fake_cunit (tests/runner/fake_cunit.c) has two passing
    tests, one failing, one skipped, one failing as expected, one passing
    unexpectedly, and one in a suite whose setup fails."""

    FAKE = os.path.join(B, "tests", "fake_cunit")

    def test_each_outcome_counted_once(self):
        rc, out = run([RUN, self.FAKE])
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(summary(out), (2, 3, 1, 1))
        self.assertIn(self.FAKE + ": skipped: the fake has nothing to run",
                      out)
        self.assertIn(self.FAKE + ": fails as expected: a known bug", out)
        self.assertIn(self.FAKE + ": passes unexpectedly: a bug that was "
                      "fixed (remove the mark)", out)
        self.assertIn("suite 'fake, setup fails' could not be set up", out)
        # What failed is said again at the end, after the skips.
        self.assertIn("\n  %s: 1. tests/runner/fake_cunit.c:15  - "
                      "CU_ASSERT_EQUAL(1 + 1,3)\n" % self.FAKE, tail(out))

    def test_gild_test_only(self):
        rc, out = run([RUN, self.FAKE], env={"GILD_TEST_ONLY": "passes"})
        self.assertNotEqual(rc, 0, out)  # "passes unexpectedly" fails
        self.assertEqual(summary(out), (2, 1, 0, 0))
        self.assertIn("!!! GILD_TEST_ONLY=passes left out 4 tests", out)

    def test_a_passing_program_without_counts(self):
        """A program that prints no counts (as a fuzz target) and exits 0 is
        one pass, and nothing is said to have failed."""
        path = self.script("no_counts", "echo hello\n")
        rc, out = run([RUN, path])
        self.assertEqual(rc, 0, out)
        self.assertEqual(summary(out), (1, 0, 0, 0))
        self.assertNotIn("what failed", out)

    def test_a_failure_after_test_output_is_named(self):
        """A CUnit test that printed something before it failed has its
        "FAILED" on a line of its own: the end still names the test."""
        path = self.script("test_noisy", "echo '  Test: quiet ...passed'\n"
                           "echo '  Test: noisy ...'\necho '  some output'\n"
                           "echo FAILED\necho '    1. x.c:3  - CU_FAIL(\"y\")'\n"
                           "echo 'GILD_COUNTS passed=1 failed=1 skipped=0 "
                           "xfail=0 left_out=0'\nexit 1\n")
        rc, out = run([RUN, path])
        self.assertNotEqual(rc, 0, out)
        self.assertIn("\n  %s: Test: noisy ...FAILED\n  %s: 1. x.c:3  - "
                      "CU_FAIL(\"y\")\n" % (path, path), tail(out))

    def test_a_crash_counts_as_a_failure(self):
        """A program that dies before its counts is one failure."""
        path = self.script("test_crash", "echo '  Test: x ...passed'\n"
                           "kill -SEGV $$\n")
        rc, out = run([RUN, path])
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(summary(out), (0, 1, 0, 0))
        self.assertIn("\n  %s: exited with status 139\n" % path, tail(out))

    def test_a_failure_after_the_counts(self):
        """Counts that say all passed, then a non-zero exit (a leak report
        at exit): one failure."""
        path = self.script("test_leak", "echo 'GILD_COUNTS passed=3 "
                           "failed=0 skipped=0 xfail=0 left_out=0'\n"
                           "exit 23\n")
        rc, out = run([RUN, path])
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(summary(out), (3, 1, 0, 0))
        self.assertIn("exited with status 23 after its tests passed", out)


class CloseHangTest(Scratch):
    """A gild that exits 0 only because its watchdog ended an nng close
    that hung (nng #1543) fails a test: gildproc.Gild.stop says so."""

    def test_a_close_hang_is_not_exit_0(self):
        self.script("gild", """\
            trap 'echo "gild: warn nng did not close within 5 s (a known \\
            nng 1.5.2 deadlock): exiting anyway" >&2; exit 0' TERM
            echo "gild: listening on tcp://127.0.0.1:1"
            echo "gild: ready (1 workers)"
            while :; do sleep 0.1; done
            """.replace("            ", ""))
        saved, gildproc.B = gildproc.B, self.tmp.name
        try:
            g = gildproc.Gild()
        finally:
            gildproc.B = saved
        self.assertEqual(g.stop(), gildproc.CLOSE_HUNG)
        with self.assertRaisesRegex(AssertionError, "close hung"):
            g.__exit__(None, None, None)


if __name__ == "__main__":
    unittest.main()
