# client-lib/python/: gild._native, the CPython extension over libgild for
# the system Python. It is built into $(B)/python/gild/, which the package
# in client-lib/python/gild/ adds to its __path__ in a source checkout.
# (pip install ./client-lib/python builds it from the same sources instead:
# client-lib/python/setup.py.)
PY_EXT_SUFFIX := $(shell $(PYTHON_CONFIG) --extension-suffix 2>/dev/null)
PY_NATIVE := $(B)/python/gild/_native$(PY_EXT_SUFFIX)
PY_NATIVE_OBJS := $(patsubst %.c,$(B)/%.o,$(PY_NATIVE_SRCS))

# Only PyInit__native is exported: the module's own functions are hidden,
# and so are the libgild objects linked in (--exclude-libs).
$(B)/client-lib/python/%.o: XCFLAGS += $(PY_CFLAGS) -fvisibility=hidden

$(PY_NATIVE): $(PY_NATIVE_OBJS) $(B)/libgild.a
	@mkdir -p $(@D)
	$(CC) -shared $(ALL_LDFLAGS) -Wl,--exclude-libs,ALL -o $@ \
		$(PY_NATIVE_OBJS) $(B)/libgild.a $(GILD_LIB_LIBS)

LIBS += $(PY_NATIVE)

# The same extension for the free-threaded Python (PYTHON_FT_CONFIG, see
# worker/build.mk), next to the first: each interpreter loads the one with
# its own suffix (_native.cpython-313t-x86_64-linux-gnu.so). It declares
# that it runs without the GIL.
ifneq ($(PYTHON_FT_CONFIG),)
PY_NATIVE_FT := $(B)/python/gild/_native$(shell $(PYTHON_FT_CONFIG) \
	--extension-suffix)
PY_NATIVE_FT_OBJS := $(patsubst %.c,$(B)/ft/%.o,$(PY_NATIVE_SRCS))
$(B)/ft/client-lib/python/%.o: client-lib/python/%.c $(FT_FLAGS_FILE) | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(FT_PY_CFLAGS) -fvisibility=hidden -c $< -o $@
$(PY_NATIVE_FT): $(PY_NATIVE_FT_OBJS) $(B)/libgild.a
	@mkdir -p $(@D)
	$(CC) -shared $(ALL_LDFLAGS) -Wl,--exclude-libs,ALL -o $@ \
		$(PY_NATIVE_FT_OBJS) $(B)/libgild.a $(GILD_LIB_LIBS)
LIBS += $(PY_NATIVE_FT)
endif

# The Python tests of the extension import it into the system Python (and
# the free-threaded one: "ftpy:", see tests/run.sh), which a sanitized
# build cannot be loaded into.
ifeq ($(SANITIZE),)
UNIT_TESTS += tests/python/test_native.py tests/python/test_native_threads.py
# The client and the server accept the same values (one converter,
# common/pyconv), tensors through the free-threaded worker included.
UNIT_TESTS += tests/python/test_values_same.py
# gild.Executor under the standard library's executor tests (the package's
# pure Python, over the extension).
UNIT_TESTS += tests/python/test_executor.py
# pip install ./client-lib/python from a clean copy of the tree: it builds
# its own extension, plain, so the sanitized run has nothing to add.
UNIT_TESTS += tests/python/test_pip.py
# Shared memory for local clients (gild.connect(..., shm=True)).
UNIT_TESTS += tests/python/test_shm.py
ifneq ($(PYTHON_FT_CONFIG),)
RUNTIME_TESTS += ftpy:tests/python/test_native.py \
	ftpy:tests/python/test_native_threads.py ftpy:tests/python/test_batch.py \
	ftpy:tests/python/test_executor.py ftpy:tests/python/test_actors.py
endif
else
NOT_RUN += tests/python/test_native.py, test_native_threads.py, \
	test_values_same.py, test_executor.py, test_shm.py and the \
	free-threaded Python runs (ftpy:): an extension built with sanitizers \
	cannot be loaded into a plain Python (the plain make test runs them);
NOT_RUN += tests/python/test_pip.py: pip builds the extension with \
	the flags of the system Python, never sanitized (the plain make test \
	runs it);
endif

# make install: the package (with the extension) for the system Python, in
# its dist-packages under PREFIX (on sys.path for /usr and /usr/local), and
# the extension next to the workers' copy of the package too.
PYTHON_SITE ?= $(PREFIX)/lib/python$(PY_VERSION)/dist-packages
.PHONY: install-python-native
install: install-python-native
install-python-native: $(PY_NATIVE) $(PY_NATIVE_FT)
	install -d $(DESTDIR)$(LIBDIR)/gild/python/gild $(DESTDIR)$(PYTHON_SITE)/gild
	install -m 755 $(PY_NATIVE) $(PY_NATIVE_FT) \
		$(DESTDIR)$(LIBDIR)/gild/python/gild/
	install -m 644 client-lib/python/gild/*.py $(DESTDIR)$(PYTHON_SITE)/gild/
	install -m 755 $(PY_NATIVE) $(DESTDIR)$(PYTHON_SITE)/gild/
