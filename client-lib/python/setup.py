"""Builds the gild Python package with its C extension, gild._native, from
a source tree, with no `make` first (Debian 12, offline):

    python3 -m venv --system-site-packages ENV
    ENV/bin/pip install --no-build-isolation ./client-lib/python

--system-site-packages lends the environment Debian's setuptools and wheel
(python3-setuptools, python3-wheel; numpy too); --no-build-isolation makes
pip build with them instead of downloading setuptools into a throwaway one.
`ENV/bin/pip wheel --no-build-isolation --no-deps -w dist ./client-lib/python`
builds a wheel instead.

The extension is compiled from libgild's own sources and pyconv (the value
converter the worker compiles too), as listed for make in
common/sources.mk and client-lib/sources.mk (one list for both builds), with the protobuf-c code
generated here by protoc-c (protobuf-c-compiler); it links against the
system's nng and protobuf-c (libnng-dev, libprotobuf-c-dev) and needs no
libgild installed. Build byproducts go to <root>/build/setuptools, not next
to this file. tests/python/test_pip.py installs it this way.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build", "setuptools")
# protoc-c's output: proto/X.proto gives GEN/X.pb-c.c and GEN/X.pb-c.h, of
# which the .c files of GILD_LIB_PROTOS are compiled in.
GEN = os.path.join(BUILD, "proto")


def version():
    """VERSION from the top Makefile, so that both builds agree."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        m = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), re.M)
    return m.group(1) if m else "0.0.0"


def source_lists():
    """The `NAME := path...` lists of common/sources.mk and
    client-lib/sources.mk, read in that order, as a dict of lists of paths
    from ROOT; `$(NAME)` stands for a list read before. Anything else there
    (+=, a make function) stops the build rather than leave a source out."""
    lists = {}
    for part in ("common", "client-lib"):
        path = os.path.join(ROOT, part, "sources.mk")
        with open(path) as f:
            text = re.sub(r"\\\n", " ", f.read())
        for line in text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            m = re.match(r"^([A-Z_]+)\s*:=(.*)$", line)
            if m is None:
                sys.exit(f"setup.py: {path}: not a `NAME := path...` "
                         f"line: {line}")
            words = []
            for w in m.group(2).split():
                ref = re.fullmatch(r"\$\(([A-Z_]+)\)", w)
                if ref is not None and ref.group(1) in lists:
                    words += lists[ref.group(1)]
                elif "$" in w:
                    sys.exit(f"setup.py: {path}: not a path or a list "
                             f"read before: {w}")
                else:
                    words.append(w)
            lists[m.group(1)] = words
    return lists


def here(path):
    """A path from ROOT as setuptools wants it: relative to this folder."""
    return os.path.relpath(os.path.join(ROOT, path), HERE)


VERSION = version()
LISTS = source_lists()
PROTOS = LISTS["GILD_LIB_PROTOS"]
SOURCES = [here(p) for p in LISTS["PY_NATIVE_SRCS"] + LISTS["GILD_LIB_SRCS"]]
SOURCES += [here(os.path.join(GEN, os.path.basename(p)[:-len(".proto")]
                              + ".pb-c.c")) for p in PROTOS]


class BuildExt(build_ext):
    """build_ext that first generates the protobuf-c code, and whose object
    files stay inside its temporary folder: distutils would put
    ../../proto/wire.c's object at ../../proto/wire.o relative to it, that
    is into the source tree."""

    def run(self):
        protoc = shutil.which("protoc-c")
        if protoc is None:
            sys.exit("setup.py: protoc-c is missing (Debian: apt-get install "
                     "protobuf-c-compiler)")
        # All of proto/, as make does: the headers of the ones not
        # compiled in are included too (proto/fields.h).
        proto = os.path.join(ROOT, "proto")
        os.makedirs(GEN, exist_ok=True)
        subprocess.check_call(
            [protoc, "--proto_path=" + proto, "--c_out=" + GEN]
            + sorted(glob.glob(os.path.join(proto, "*.proto"))))
        super().run()

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
    include_dirs=[here("client-lib"), here("common"), here("proto"), here(GEN)],
    define_macros=[("_GNU_SOURCE", None),
                   ("GILD_VERSION", '"%s"' % VERSION)],
    extra_compile_args=["-std=c11", "-pthread", "-fvisibility=hidden"],
    extra_link_args=["-pthread"],
    libraries=["nng", "protobuf-c"],
)

setup(
    version=VERSION,
    packages=["gild"],
    ext_modules=[native],
    cmdclass={"build_ext": BuildExt},
    options={"build": {"build_base": BUILD},
             "egg_info": {"egg_base": BUILD}},
)
