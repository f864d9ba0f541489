"""Test app that imports an extension module needing the GIL
(tests/apps/gilneeded.c, built into $GILD_TEST_EXT_DIR): a free-threaded
worker must report that its GIL is back on."""
import os
import sys

sys.path.insert(0, os.environ["GILD_TEST_EXT_DIR"])

import gilneeded  # noqa: E402


def answer():
    return gilneeded.answer()


def gil():
    return sys._is_gil_enabled()
