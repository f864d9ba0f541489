# bench/: load tools. Built on demand (make bench-tools), not by `make`.
$(B)/bench/burst: $(B)/bench/burst.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS) $(PROTOBUFC_LIBS)
$(B)/bench/recovery: $(B)/bench/recovery.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS) $(PROTOBUFC_LIBS)

# scaling starts gild itself, with the integration tests' harness.
$(B)/bench/scaling.o: ALL_CFLAGS += -I. -Itests/integration $(JANSSON_CFLAGS)
$(B)/bench/scaling: $(B)/bench/scaling.o $(B)/tests/integration/harness.o \
	$(B)/server/cpus.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) \
		$(PROTOBUFC_LIBS) -lm

.PHONY: bench-tools bench
bench-tools: $(B)/bench/burst $(B)/bench/recovery $(B)/bench/scaling

# make bench: CPU-bound scaling of the process and free-threaded runtimes
# (bench/README.md); QUICK=1 measures 0.5 s per point instead of 2.
bench: $(B)/gild $(B)/gild-worker $(if $(PYTHON_FT_CONFIG),$(B)/gild-worker-ft) \
	$(B)/bench/scaling
	B=$(B) $(B)/bench/scaling --python $(PYTHON) --python-ft '$(FT_PY_EXE)' \
		$(if $(filter 1,$(QUICK)),--seconds 0.5)
