"""An app that writes: print, sys.stderr, logging, raw os.write, long
lines, and output right before its worker dies (tests/python/test_applogs.py
checks how each comes out in gild's log)."""
import logging
import os
import sys

import gild

print("imported applogs")  # at import: in no call
log = logging.getLogger("applogs.calls")


def chatty(tag):
    """Writes every way Python can; returns its request id."""
    print("print", tag)
    logging.info("root %s", tag)
    log.warning("named %s", tag)
    print("first %s\nsecond %s" % (tag, tag))
    sys.stderr.write("stderr %s\n" % tag)
    print("parts", end=" ")
    print(tag)
    return gild.context().request_id


def long_line(n):
    """One line of n characters."""
    print("y" * n)
    return gild.context().request_id


def raw(tag):
    """Writes on fd 1 as a C extension would: no call named."""
    os.write(1, b"raw %d\n" % tag)
    os.write(1, b"bad \xff byte %d\n" % tag)  # not UTF-8
    return gild.context().request_id


def flood(mib):
    """mib MiB written raw with no newline, then one short line."""
    chunk = b"z" * (1 << 20)
    for _ in range(mib):
        os.write(1, chunk)
    os.write(1, b"\nafter flood\n")
    return mib


def die(tag):
    """A line, then a partial one, then the worker dies."""
    print("dying", tag)
    os.write(2, b"last words %d" % tag)
    os._exit(3)


def lines(n):
    """n lines of 100 characters; returns n."""
    for i in range(n):
        print("%-100d" % i)
    return n
