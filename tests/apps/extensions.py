"""Test app for C extension modules in the workers (test_features.c): gild's
own tests/apps/gildext.c (built for each worker's Python into
$GILD_TEST_EXT_DIR), standard library C modules, and numpy (the system
Python's only). A worker linked against a static libpython that does not
export the C API fails to import them: the app does not load, or the call
fails with the ImportError."""
import os
import sys

sys.path.insert(0, os.environ["GILD_TEST_EXT_DIR"])

import gildext  # noqa: E402


def own():
    """gildext's results, the ValueError it raises, and whether the GIL is
    on (a free-threaded Python turns it on for an extension that does not
    declare it runs without it; gildext declares it)."""
    try:
        gildext.fail("from C")
    except ValueError as e:
        raised = str(e)
    gil = getattr(sys, "_is_gil_enabled", lambda: False)()
    return [gildext.scale([1, 2.5, "ab"], 2), raised, gil]


def stdlib():
    """One result of each standard library C module named (imported here,
    not at load, so that a missing one fails this call by name)."""
    import _ctypes  # noqa: F401 (ctypes needs it)
    import _decimal
    import _sqlite3  # noqa: F401 (sqlite3 needs it)
    import _ssl  # noqa: F401 (ssl needs it)
    import ctypes
    import hashlib
    import sqlite3
    import ssl

    libc = ctypes.CDLL(None)
    libc.abs.argtypes = [ctypes.c_int]
    db = sqlite3.connect(":memory:")
    ctx = _decimal.Context(prec=5)
    return {
        "_ctypes": libc.abs(-42),
        "_decimal": str(ctx.divide(_decimal.Decimal(1), _decimal.Decimal(7))),
        "_sqlite3": db.execute("select 6 * 7").fetchone()[0],
        "_ssl": ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED,
        "_hashlib": hashlib.sha256(b"gild").hexdigest()[:8],
    }


def numpy_sum():
    """numpy's sum of 0..99 (installed for the system Python only)."""
    import numpy
    return int(numpy.arange(100).sum())
