# bench/: load tools. Built on demand (make bench-tools), not by `make`.
$(B)/bench/burst: $(B)/bench/burst.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS) $(PROTOBUFC_LIBS)
$(B)/bench/recovery: $(B)/bench/recovery.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS) $(PROTOBUFC_LIBS)

# scaling starts gild itself, with the integration tests' harness (which
# marks skipped tests through tests/test_main.c, hence CUnit).
$(B)/bench/scaling.o: ALL_CFLAGS += -I. -Itests/integration $(JANSSON_CFLAGS)
$(B)/bench/scaling: $(B)/bench/scaling.o $(B)/tests/integration/harness.o \
	$(B)/tests/test_main.o $(B)/server/cpus.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) \
		$(PROTOBUFC_LIBS) $(CUNIT_LIBS) -lm

.PHONY: bench-tools bench
bench-tools: $(B)/bench/burst $(B)/bench/recovery $(B)/bench/scaling

# make bench: the suite (bench/suite.py, docs/benchmarks.md): gild next to
# its peers, measured in the same run; QUICK=1 for a shorter run. It writes
# bench/results/<date>.{json,md,*.png} and the latest tables and plots into
# docs/benchmarks.md. gnuplot draws the plots; the peers are Dask, Celery
# with Redis and uWSGI (make test needs none of them). redis-tools holds the
# redis-server binary (as redis-check-rdb): bench/peers.py starts it on a
# port of its own and stops it by pid, so no system redis service (the
# redis-server package's) is installed or started.
BENCH_DEBS := gnuplot-nox python3-distributed python3-celery python3-redis \
	redis-tools uwsgi-core uwsgi-plugin-python3
bench: $(B)/gild $(B)/gild-worker $(B)/gildctl \
	$(if $(PYTHON_FT_CONFIG),$(B)/gild-worker-ft) bench-tools
	@mk/deps.sh $(BENCH_DEBS)
	B=$(B) FT_PYTHON='$(FT_PY_EXE)' $(PYTHON) bench/suite.py \
		$(if $(filter 1,$(QUICK)),--quick) --docs docs/benchmarks.md

# Latency and throughput: loadgen drives a gild server through libgild,
# floor measures what the transport and the machine cost alone; both keep
# their latencies in bench/hist.c and share bench/bench.c (clock, payload,
# failure counts, option values, the JSON line). bench/suite.py runs them.
# Their reports are built with jansson (hist.h and bench.h include it).
$(B)/bench/loadgen.o $(B)/bench/floor.o $(B)/bench/hist.o \
	$(B)/bench/bench.o $(B)/tests/test_hist.o: \
	ALL_CFLAGS += $(JANSSON_CFLAGS)
$(B)/bench/loadgen: $(B)/bench/loadgen.o $(B)/bench/bench.o \
	$(B)/bench/hist.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) \
		$(PROTOBUFC_LIBS) -lm
$(B)/bench/floor: $(B)/bench/floor.o $(B)/bench/bench.o $(B)/bench/hist.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) -lm
bench-tools: $(B)/bench/loadgen $(B)/bench/floor
# cunit_test adds it to UNIT_TESTS.
$(eval $(call cunit_test,test_hist,$(B)/bench/hist.o,$(JANSSON_LIBS) -lm))
