"""Runs one unittest file and prints its counts for tests/run.sh:
a last line "PYTEST_COUNTS <passed> <failed>"."""
import os
import sys
import unittest

path = sys.argv[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
suite = unittest.defaultTestLoader.discover(
    os.path.dirname(path), pattern=os.path.basename(path))
result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
print("PYTEST_COUNTS %d %d" % (result.testsRun - bad - len(result.skipped), bad))
sys.exit(0 if bad == 0 and result.testsRun > 0 else 1)
