# gild: the one entry point.
#   make          build everything into build/
#   make run      build and serve examples/app.py on tcp://127.0.0.1:7700
#   make test     build and run every test
#   make install  PREFIX=/usr/local DESTDIR=
#   make clean
#   make fuzz     FUZZ_SECONDS=60: run each libFuzzer target that long
# Missing Debian packages are installed first (as root) or named (otherwise).

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
LIBEXECDIR ?= $(PREFIX)/libexec
# The system Python (Debian's), not whatever python3 comes first on PATH:
# workers embed its libpython and the tests use its numpy and protobuf.
PYTHON ?= /usr/bin/python3
PYTHON_CONFIG ?= /usr/bin/python3-config
# make test SANITIZE=address,undefined builds into build-san/.
SANITIZE ?=
# -Werror is on in CI and when WERROR=1.
WERROR ?= $(if $(CI),1,0)
# make run: where to listen and how many workers (empty: one per usable CPU).
LISTEN ?= tcp://127.0.0.1:7700
WORKERS ?=

B := build$(if $(SANITIZE),-san)
VERSION := 0.1.0

DEBS := gcc make pkg-config libevent-dev libnng-dev nng-utils \
	libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-dev \
	python3-numpy python3-protobuf python3-prometheus-client \
	libcunit1-dev libjansson-dev libmbedtls-dev openssl \
	clang libclang-rt-14-dev haproxy python3-yaml docker-compose \
	python3-venv python3-setuptools python3-wheel libsystemd-dev prometheus

# What building the free-threaded CPython needs (mk/python-ft.sh).
FT_DEBS := dpkg-dev xz-utils libssl-dev zlib1g-dev libffi-dev libbz2-dev \
	liblzma-dev libsqlite3-dev uuid-dev libexpat1-dev

SAN_FLAGS := $(if $(SANITIZE),-fsanitize=$(SANITIZE) -fno-omit-frame-pointer \
	-fno-sanitize-recover=all)
WARN := -Wall -Wextra -Wstrict-prototypes -Wno-unused-parameter \
	$(if $(filter 1,$(WERROR)),-Werror)
CFLAGS ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -pthread $(WARN) $(CFLAGS) \
	$(SAN_FLAGS) -MMD -MP -I$(B)/proto -Iproto -Icommon -Iclient-lib \
	-DGILD_VERSION='"$(VERSION)"' $(PROTOBUFC_CFLAGS) $(XCFLAGS)
ALL_LDFLAGS = -pthread $(SAN_FLAGS) $(LDFLAGS)

.DEFAULT_GOAL := all
.PHONY: all run test install clean deps
.DELETE_ON_ERROR:

# Everything but clean needs the packages and their flags. The packages are
# checked on every run (dpkg-query, a few ms each) and installed when root;
# then build/config.mk is made (and make restarts) before anything else.
ifeq ($(filter clean deps,$(MAKECMDGOALS)),)
ifneq ($(shell mk/deps.sh $(DEBS) >&2 && echo ok),ok)
$(error missing Debian packages: see the command above)
endif
include $(B)/config.mk
# The free-threaded CPython that gild-worker-ft embeds: GILD_PYTHON_FT, one
# on PATH, or one built once into ~/.cache/gild (mk/python-ft.sh). `make
# PYTHON_FT_CONFIG=` builds without the free-threaded runtime.
ifeq ($(origin PYTHON_FT_CONFIG),undefined)
PYTHON_FT_CONFIG := $(shell mk/python-ft.sh $(FT_DEBS))
ifeq ($(PYTHON_FT_CONFIG),)
$(error no free-threaded Python for gild-worker-ft: see the messages above)
endif
endif
endif
# What is built against the free-threaded Python depends on this file
# (worker/build.mk writes it), so that another one rebuilds it.
FT_FLAGS_FILE := $(B)/ft/python.flags

deps:
	@mk/deps.sh $(DEBS)

$(B)/config.mk: Makefile mk/deps.sh mk/config.sh mk/pylink.sh
	@mkdir -p $(@D)
	mk/config.sh $(PYTHON_CONFIG) > $@.tmp && mv $@.tmp $@

# Fragments add to these lists; every folder owns its build.mk.
BINS :=
LIBS :=
UNIT_TESTS :=
RUNTIME_TESTS := # run by tests/run.sh, not files to build ("ft:...")
NOT_RUN := # "WHAT: WHY;" for each suite this build leaves out (tests/run.sh)
include proto/build.mk
include mk/cunit.mk
include common/build.mk
include client-lib/build.mk
include client-lib/python/build.mk
include worker/build.mk
include server/build.mk
include tests/build.mk
include bench/build.mk

all: $(BINS) $(LIBS)

run: all
	$(B)/gild serve examples/app.py --listen $(LISTEN) \
		$(if $(WORKERS),--workers $(WORKERS))

# Under sanitizers, leaks inside libpython and numpy (not ours) are ignored.
test: all $(UNIT_TESTS) $(TEST_DEPS)
	@B=$(B) PYTHON=$(PYTHON) FT_PYTHON=$(FT_PY_EXE) SANITIZE=$(SANITIZE) \
	FUZZ_SECONDS=$(FUZZ_SECONDS) NOT_RUN='$(strip $(NOT_RUN))' \
	LSAN_OPTIONS=suppressions=$(CURDIR)/worker/lsan.supp:print_suppressions=0 \
	tests/run.sh $(UNIT_TESTS) $(RUNTIME_TESTS)

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)/gild \
		$(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 755 $(B)/gild $(B)/gildctl $(DESTDIR)$(BINDIR)/
	install -m 755 $(B)/gild-worker $(if $(PYTHON_FT_CONFIG),$(B)/gild-worker-ft) \
		$(DESTDIR)$(LIBEXECDIR)/gild/
	install -m 644 client-lib/gild.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 $(B)/libgild.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(B)/libgild.so.0 $(DESTDIR)$(LIBDIR)/
	ln -sf libgild.so.0 $(DESTDIR)$(LIBDIR)/libgild.so
	install -m 644 $(B)/gild.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -d $(DESTDIR)$(LIBDIR)/gild/python/gild
	install -m 644 client-lib/python/gild/*.py $(DESTDIR)$(LIBDIR)/gild/python/gild/

clean:
	rm -rf build build-san build-fuzz

# Generic rules: sources compile to $(B)/<same path>.o.
$(B)/%.o: %.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

-include $(shell find $(B) -name '*.d' 2>/dev/null)
