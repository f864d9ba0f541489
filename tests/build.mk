# tests/: CUnit unit tests of modules shared by several programs, and the
# integration suites that start the real gild binary.

# The runner's own test (tests/python/test_runner.py) runs this CUnit
# program, which has one test of each outcome; it is not in UNIT_TESTS.
$(B)/tests/runner/fake_cunit.o: tests/runner/fake_cunit.c tests/test_main.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CUNIT_CFLAGS) -Itests -c $< -o $@
$(B)/tests/fake_cunit: $(B)/tests/runner/fake_cunit.o $(B)/tests/test_main.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CUNIT_LIBS)
TEST_DEPS += $(B)/tests/fake_cunit

$(eval $(call cunit_test,test_frame,$(B)/libgildproto.a,))
$(eval $(call cunit_test,test_wire,$(B)/libgildproto.a,$(PROTOBUFC_LIBS)))
$(eval $(call cunit_test,test_fields,$(B)/libgildproto.a,$(PROTOBUFC_LIBS)))
$(eval $(call cunit_test,test_trace,$(B)/libgildproto.a,$(PROTOBUFC_LIBS)))

# Integration: the real gild (and its worker) must be built first.
$(eval $(call cunit_test,test_server,$(B)/tests/integration/harness.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS) -lm))
$(eval $(call cunit_test,test_reliability,$(B)/tests/integration/harness.o \
	$(B)/tests/integration/served.o $(B)/tests/integration/rawclient.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS) -pthread))
$(eval $(call cunit_test,test_once,$(B)/tests/integration/harness.o \
	$(B)/tests/integration/served.o $(B)/tests/integration/rawclient.o \
	$(B)/tests/integration/dupproxy.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS) -pthread))
$(foreach t,test_features test_batching test_actors,$(eval $(call \
	cunit_test,$(t),$(B)/tests/integration/harness.o \
	$(B)/tests/integration/served.o $(B)/tests/integration/features.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS) -lm -pthread)))
$(eval $(call cunit_test,test_exec,$(B)/tests/integration/harness.o \
	$(B)/tests/integration/served.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS) -pthread))
$(eval $(call cunit_test,test_shm,$(B)/tests/integration/harness.o \
	$(B)/tests/integration/served.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS) -pthread))
$(eval $(call cunit_test,test_tls,$(B)/tests/integration/harness.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS)))
TEST_DEPS += $(B)/gild $(B)/gild-worker $(B)/gildctl
# The test apps' C extension modules (tests/apps/*.c), each built for the
# Python that loads it: not sanitized, as an app's extension modules are
# not. gildext is gild's own, for both workers (test_features.c): a worker
# must export the C API it uses.
$(B)/tests/apps/%$(PY_EXT_SUFFIX): tests/apps/%.c
	@mkdir -p $(@D)
	$(CC) -shared -fPIC $(PY_CFLAGS) -o $@ $<
TEST_DEPS += $(B)/tests/apps/gildext$(PY_EXT_SUFFIX)

# The free-threaded runtime: its own suite, and the seven suites above run
# a second time against it (tests/run.sh runs "ft:PROGRAM" with
# GILD_TEST_RUNTIME=free-threaded).
ifneq ($(PYTHON_FT_CONFIG),)
$(eval $(call cunit_test,test_runtime,$(B)/tests/integration/harness.o \
	$(B)/tests/integration/served.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS) -pthread))
TEST_DEPS += $(B)/gild-worker-ft
# The same for the free-threaded Python: gildext, and gilneeded, an
# extension module without free-threading support, for the GIL check.
FT_EXT_SUFFIX := $(shell $(PYTHON_FT_CONFIG) --extension-suffix)
$(B)/tests/apps/%$(FT_EXT_SUFFIX): tests/apps/%.c $(FT_FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) -shared -fPIC $(FT_PY_CFLAGS) -o $@ $<
TEST_DEPS += $(B)/tests/apps/gildext$(FT_EXT_SUFFIX) \
	$(B)/tests/apps/gilneeded$(FT_EXT_SUFFIX)
RUNTIME_TESTS += $(addprefix ft:$(B)/tests/,test_server test_reliability \
	test_once test_exec test_features test_batching test_actors)
else
NOT_RUN += test_runtime and the free-threaded runs (ft:, ftpy:): built \
	without the free-threaded runtime (PYTHON_FT_CONFIG is empty);
endif

# Python tests: the generated gild_pb2 module lets them speak the protocol
# with nothing but Python's protobuf, as a client in another language would.
$(B)/python/gild_pb2.py: proto/gild.proto $(B)/config.mk
	@mkdir -p $(@D)
	protoc --proto_path=proto --python_out=$(@D) $<
TEST_DEPS += $(B)/python/gild_pb2.py
UNIT_TESTS += tests/python/test_cli.py tests/python/test_python.py \
	tests/python/test_http.py tests/python/test_logs.py \
	tests/python/test_applogs.py \
	tests/python/test_auth.py tests/python/test_config.py \
	tests/python/test_batch.py tests/python/test_exec.py \
	tests/python/test_tls.py tests/python/test_deploy.py \
	tests/python/test_drain.py tests/python/test_lb.py \
	tests/python/test_runner.py tests/python/test_systemd.py \
	tests/python/test_mirror.py tests/python/test_metrics.py \
	tests/python/test_trace.py tests/python/test_agen.py \
	tests/python/test_limits.py tests/python/test_actors.py \
	tests/python/test_lifecycle.py tests/python/test_docs.py

# Fuzzing: libFuzzer targets (clang, with ASan and UBSan) over the decoders
# of untrusted bytes. `make fuzz FUZZ_SECONDS=60` runs each for that long;
# `make test` runs each for FUZZ_SECONDS (default 60) in the plain build.
FUZZ_SECONDS ?= 60
FUZZ_B := build-fuzz
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-I$(B)/proto -Iproto -Icommon -Iclient-lib -I. $(PROTOBUFC_CFLAGS)
FUZZ_COMMON := server/parse.c proto/wire.c proto/trace.c $(B)/proto/gild.pb-c.c
$(FUZZ_B)/fuzz_request: tests/fuzz/fuzz_request.c $(FUZZ_COMMON) | $(PROTO_H)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(PROTOBUFC_LIBS)
$(FUZZ_B)/fuzz_from_worker: tests/fuzz/fuzz_from_worker.c $(FUZZ_COMMON) \
	client-lib/codec.c client-lib/value.c client-lib/error.c proto/codes.c \
	| $(PROTO_H)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(PROTOBUFC_LIBS)
# The worker's frame decoding and value conversion, with its embedded
# Python: every worker source but main.c, built again for fuzzing.
$(FUZZ_B)/fuzz_to_worker: tests/fuzz/fuzz_to_worker.c $(WORKER_SRCS) \
	proto/frame.c proto/wire.c proto/codes.c proto/trace.c $(B)/proto/gild.pb-c.c \
	$(B)/proto/worker.pb-c.c | $(PROTO_H)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -Iworker $(PY_CFLAGS) \
		-DGILD_PYTHON_EXE='"$(WORKER_PYTHON_EXE)"' -o $@ $^ \
		$(PY_LIBS) $(PROTOBUFC_LIBS)
FUZZ_TARGETS := $(FUZZ_B)/fuzz_request $(FUZZ_B)/fuzz_from_worker \
	$(FUZZ_B)/fuzz_to_worker

.PHONY: fuzz
fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do tests/fuzz/run.sh $$t $(FUZZ_SECONDS) || exit 1; done

# The sanitized test run leaves them out: they are sanitized builds already.
ifeq ($(SANITIZE),)
UNIT_TESTS += $(FUZZ_TARGETS)
else
NOT_RUN += $(notdir $(FUZZ_TARGETS)): the fuzz targets are built with ASan \
	and UBSan already (the plain make test runs them);
endif
