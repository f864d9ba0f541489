#!/bin/sh
# Prints the linker flags that embed the Python of PYTHON_CONFIG in a worker
# the way that Python's own interpreter is linked, for its speed (see
# docs/runtimes.md, "How the workers are linked"). Usage:
#   mk/pylink.sh PYTHON_CONFIG
# When the Python has a static libpython (Debian's libpython3.11.a, or the
# one mk/python-ft.sh builds): that archive, whole (an extension module may
# need any of its functions), in a non-PIE program (Debian's archive is not
# position-independent code), exporting the C API (Py*, _Py*) for extension
# modules, plus the libraries its built-in modules need (MODLIBS, LIBS,
# SYSLIBS), as CPython's Makefile links `python`. Only the C API is
# exported, not gild's own functions: an extension module calling a
# function of its own named like one of gild's must not get gild's.
# Otherwise (a Python without the archive): the shared libpython, as
# `pythonX.Y-config --ldflags --embed` gives, with a run path to it when it
# is not in /usr.
set -eu
config=$1
prefix=$("$config" --prefix)
version=$("$config" --configdir | sed -n 's/.*config-\([0-9.]*\).*/\1/p')
exe=$prefix/bin/python$version$("$config" --abiflags)

# The archive's path, then the libraries, as that Python was built.
vars=$("$exe" -c 'import os, sysconfig
v = lambda k: sysconfig.get_config_var(k) or ""
print(os.path.join(v("LIBPL"), v("LIBRARY")))
print(" ".join(" ".join((v("MODLIBS"), v("LIBS"), v("SYSLIBS"))).split()))')
archive=$(echo "$vars" | sed -n 1p)
libs=$(echo "$vars" | sed -n 2p)

if [ -f "$archive" ]; then
	echo "-no-pie '-Wl,--export-dynamic-symbol=Py*,--export-dynamic-symbol=_Py*'" \
		"-Wl,--whole-archive $archive -Wl,--no-whole-archive $libs"
else
	rpath=
	[ "$prefix" = /usr ] || rpath="-Wl,-rpath,$prefix/lib"
	echo "$("$config" --ldflags --embed) $rpath"
fi
