# bench/: load tools. Built on demand (make bench-tools), not by `make`.
$(B)/bench/burst: $(B)/bench/burst.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS) $(PROTOBUFC_LIBS)
$(B)/bench/recovery: $(B)/bench/recovery.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS) $(PROTOBUFC_LIBS)
.PHONY: bench-tools
bench-tools: $(B)/bench/burst $(B)/bench/recovery
