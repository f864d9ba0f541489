#!/bin/sh
# Writes the compiler and linker flags of gild's dependencies as make
# variables (build/config.mk). Usage: mk/config.sh PYTHON_CONFIG
set -eu
pyconfig=$1
pc() { pkg-config "$@"; }
cat <<MK
EVENT_CFLAGS := $(pc --cflags libevent libevent_pthreads)
EVENT_LIBS := $(pc --libs libevent libevent_pthreads)
PROTOBUFC_CFLAGS := $(pc --cflags libprotobuf-c)
PROTOBUFC_LIBS := $(pc --libs libprotobuf-c)
CUNIT_CFLAGS := $(pc --cflags cunit)
CUNIT_LIBS := $(pc --libs cunit)
JANSSON_CFLAGS := $(pc --cflags jansson)
JANSSON_LIBS := $(pc --libs jansson)
SYSTEMD_CFLAGS := $(pc --cflags libsystemd)
SYSTEMD_LIBS := $(pc --libs libsystemd)
NNG_LIBS := -lnng -lpthread
PY_CFLAGS := $($pyconfig --includes)
PY_LIBS := $("$(dirname "$0")/pylink.sh" "$pyconfig")
PY_VERSION := $($pyconfig --configdir | sed -n 's/.*config-\([0-9.]*\).*/\1/p')
MK
