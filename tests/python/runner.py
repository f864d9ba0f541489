"""Runs one unittest file for tests/run.sh: names each skipped test
("SKIP: "), expected failure ("XFAIL: ") and unexpected pass ("XPASS: "),
and prints a last line
"GILD_COUNTS passed=P failed=F skipped=S xfail=X left_out=L".
With GILD_TEST_ONLY=TEXT, only the tests whose id contains TEXT run; the
others are named and counted as left out. Exits 0 when nothing failed and
something ran or was skipped."""
import os
import sys
import unittest


class Result(unittest.TextTestResult):
    """Counts the tests that passed (testsRun also counts skips, and a
    skipped or failed setUpClass is one entry for all its tests)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def tests_of(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from tests_of(t)
        else:
            yield t


def main(path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    suite = unittest.defaultTestLoader.discover(
        os.path.dirname(path), pattern=os.path.basename(path))
    only = os.environ.get("GILD_TEST_ONLY")
    left_out = []
    if only:
        kept = []
        for t in tests_of(suite):
            (kept if only in t.id() else left_out).append(t)
        suite = unittest.TestSuite(kept)
        if left_out:
            print("GILD_TEST_ONLY=%s leaves out:" % only)
            for t in left_out:
                print("  " + t.id())
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout,
                                     resultclass=Result)
    r = runner.run(suite)
    print()
    for test, why in r.skipped:
        print("SKIP: %s: %s" % (test.id(), why))
    for test, trace in r.expectedFailures:
        last = trace.strip().splitlines()[-1]
        print("XFAIL: %s: %s" % (test.id(), last))
    for test in r.unexpectedSuccesses:
        print("XPASS: %s: (remove the expected-failure mark)" % test.id())
    failed = len(r.failures) + len(r.errors) + len(r.unexpectedSuccesses)
    print("GILD_COUNTS passed=%d failed=%d skipped=%d xfail=%d left_out=%d"
          % (r.passed, failed, len(r.skipped), len(r.expectedFailures),
             len(left_out)))
    ran = r.passed + failed + len(r.skipped) + len(r.expectedFailures)
    # A file that runs nothing fails, unless GILD_TEST_ONLY left it all out.
    return 0 if failed == 0 and (ran > 0 or left_out) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
