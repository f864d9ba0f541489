"""App for tests/python/test_auth.py: what app code can see of gild's
secrets from inside a worker."""
import ctypes
import os

PR_GET_DUMPABLE = 3


def peek(pids):
    """This worker's environment, whether it is dumpable, and for each pid
    (gild's, the template's) its /proc environ and cmdline as read from
    here, or why they could not be read."""
    seen = {"environ": dict(os.environ),
            "dumpable": ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)}
    for pid in pids:
        for what in ("environ", "cmdline"):
            try:
                with open("/proc/%d/%s" % (pid, what), "rb") as f:
                    seen["%d/%s" % (pid, what)] = f.read().decode(
                        errors="replace")
            except OSError as e:
                seen["%d/%s" % (pid, what)] = "unreadable: %s" % e
    return seen


def parent():
    """The pid of this worker's parent: the template, or gild."""
    return os.getppid()
