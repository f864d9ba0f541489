"""Builds the gild Python package with its C extension, gild._native.

    make                                    # first: generates build/proto/gild.pb-c.c
    pip install --no-build-isolation ./client-lib/python
    python3 -m pip wheel --no-build-isolation --no-deps -w dist ./client-lib/python

The extension is compiled from libgild's own sources (client-lib/*.c, the
protobuf-c code that `make` generates into build/proto/, proto/wire.c), so
it does not need libgild installed; it links against the system's nng and
protobuf-c (Debian: libnng-dev, libprotobuf-c-dev). Offline builds work
with Debian's python3-setuptools (--no-build-isolation).

Build byproducts go to <root>/build/setuptools, not next to this file.
"""
import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GEN = os.path.join(ROOT, "build", "proto")


def version():
    """VERSION from the top Makefile, so that both builds agree."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        m = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M)
    return m.group(1) if m else "0.0.0"


if not os.path.exists(os.path.join(GEN, "gild.pb-c.c")):
    sys.exit(f"setup.py: {GEN}/gild.pb-c.c is missing: run `make` in "
             f"{ROOT} first (it generates the protobuf-c code)")

VERSION = version()
# Paths relative to this directory, as setuptools wants them.
SOURCES = ["_native.c", "pyvalue.c"]
SOURCES += ["../" + f for f in ("value.c", "codec.c", "error.c", "client.c",
                                 "table.c", "recv.c", "resend.c", "send.c",
                                 "wait.c", "stream.c", "actor.c")]
SOURCES += ["../../common/tlsconf.c", "../../proto/wire.c", "../../proto/codes.c",
            "../../build/proto/gild.pb-c.c"]


class BuildExt(build_ext):
    """build_ext whose object files stay inside its temporary folder:
    distutils would put ../../proto/wire.c's object at ../../proto/wire.o
    relative to it, that is into make's build/ tree."""

    def build_extensions(self):
        names = self.compiler.object_filenames

        def object_filenames(sources, strip_dir=0, output_dir=""):
            inside = [os.path.normpath(s).replace("..", "up") for s in sources]
            return names(inside, strip_dir, output_dir)

        self.compiler.object_filenames = object_filenames
        super().build_extensions()


native = Extension(
    "gild._native",
    sources=SOURCES,
    include_dirs=["..", "../../common", "../../proto", "../../build/proto"],
    define_macros=[("_GNU_SOURCE", None),
                   ("GILD_VERSION", '"%s"' % VERSION)],
    extra_compile_args=["-std=c11", "-pthread", "-fvisibility=hidden"],
    extra_link_args=["-pthread"],
    libraries=["nng", "protobuf-c"],
)

BUILD = os.path.join(ROOT, "build", "setuptools")

setup(
    version=VERSION,
    packages=["gild"],
    ext_modules=[native],
    cmdclass={"build_ext": BuildExt},
    options={"build": {"build_base": BUILD},
             "egg_info": {"egg_base": BUILD}},
)
