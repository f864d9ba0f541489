# worker/: gild-worker, the process that embeds CPython and runs the app's
# functions. Sources are split so the same files can be built a second time
# against a free-threaded libpython (gild-worker-ft). Values are converted
# by pyconv, which the Python client compiles too (common/sources.mk).
WORKER_SRCS := worker/werr.c worker/convert.c worker/interp.c worker/app.c \
	worker/reply.c worker/decode.c worker/job.c worker/batch.c worker/interrupt.c \
	worker/inbox.c worker/template.c worker/lifecycle.c $(PYCONV_SRCS)
# The app's stdout, stderr and logging as records gild logs (applog.h).
WORKER_SRCS += worker/applog.c
WORKER_OBJS_NO_MAIN := $(patsubst %.c,$(B)/%.o,$(WORKER_SRCS))
WORKER_OBJS := $(WORKER_OBJS_NO_MAIN) $(B)/worker/main.o

# The interpreter gild-worker embeds: sys.executable points at it.
WORKER_PYTHON_EXE := $(shell $(PYTHON_CONFIG) --prefix 2>/dev/null)/bin/python$(PY_VERSION)

$(B)/worker/%.o: XCFLAGS += $(PY_CFLAGS) \
	-DGILD_PYTHON_EXE='"$(WORKER_PYTHON_EXE)"'

$(B)/gild-worker: $(WORKER_OBJS) $(B)/libgildproto.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PY_LIBS) $(PROTOBUFC_LIBS)

BINS += $(B)/gild-worker

# The unit and end-to-end tests of the worker (they run $(B)/gild-worker).
$(B)/tests/test_convert.o: XCFLAGS += $(PY_CFLAGS)
$(eval $(call cunit_test,test_convert,$(WORKER_OBJS_NO_MAIN) $(B)/libgildproto.a,$(PY_LIBS) $(PROTOBUFC_LIBS)))
$(B)/tests/test_convert: | $(B)/gild-worker

# gild-worker-ft: the same sources built a second time, against the
# free-threaded libpython of PYTHON_FT_CONFIG (the top Makefile finds or
# builds it). Both workers link their Python as mk/pylink.sh says: the
# static library when there is one (it needs no run path), else the shared
# one with a run path to it, wherever it lives.
ifneq ($(PYTHON_FT_CONFIG),)
FT_PREFIX := $(shell $(PYTHON_FT_CONFIG) --prefix)
FT_PY_CFLAGS := $(shell $(PYTHON_FT_CONFIG) --includes)
FT_PY_LIBS := $(shell mk/pylink.sh $(PYTHON_FT_CONFIG))
FT_PY_VERSION := $(shell $(PYTHON_FT_CONFIG) --configdir | \
	sed -n 's/.*config-\([0-9.]*t\{0,1\}\).*/\1/p')
FT_PY_EXE := $(FT_PREFIX)/bin/python$(FT_PY_VERSION)
WORKER_FT_OBJS := $(patsubst %.c,$(B)/ft/%.o,$(WORKER_SRCS) worker/main.c)

# $(FT_FLAGS_FILE), which what is built against that Python depends on, is
# rewritten when its flags change (another free-threaded Python found or
# built): like $(B)/config.mk for the system Python, it makes them rebuild.
FT_FLAGS := $(FT_PY_CFLAGS) $(FT_PY_EXE) $(FT_PY_LIBS)
ifneq ($(file <$(FT_FLAGS_FILE)),$(FT_FLAGS))
$(shell mkdir -p $(B)/ft)
$(file >$(FT_FLAGS_FILE),$(FT_FLAGS))
endif
$(WORKER_FT_OBJS): $(FT_FLAGS_FILE)

$(B)/ft/worker/%.o: worker/%.c | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(FT_PY_CFLAGS) -DGILD_PYTHON_EXE='"$(FT_PY_EXE)"' \
		-c $< -o $@

$(B)/gild-worker-ft: $(WORKER_FT_OBJS) $(B)/libgildproto.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(FT_PY_LIBS) $(PROTOBUFC_LIBS)

BINS += $(B)/gild-worker-ft
endif
