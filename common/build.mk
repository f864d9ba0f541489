# common/: code the daemon and the client side share that is not the wire
# protocol (proto/ holds that): TLS settings read from PEM files
# (tlsconf.c: the server's listeners, libgild's dialers) and a Status as
# JSON (statusjson.c: the side port's /status and `gildctl status`), and
# pyconv, the Python <-> Value converter the worker and the Python client
# both compile (common/sources.mk; built against each Python they embed or
# extend, so not into any library here).
include common/sources.mk
$(patsubst %.c,$(B)/%.o,$(PYCONV_SRCS)): XCFLAGS += $(PY_CFLAGS) -fvisibility=hidden
ifneq ($(PYTHON_FT_CONFIG),)
$(B)/ft/common/%.o: common/%.c $(FT_FLAGS_FILE) | $(PROTO_H)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(FT_PY_CFLAGS) -fvisibility=hidden -c $< -o $@
endif
$(B)/common/statusjson.o: ALL_CFLAGS += $(JANSSON_CFLAGS)

$(B)/tests/test_statusjson.o: ALL_CFLAGS += $(JANSSON_CFLAGS)
$(eval $(call cunit_test,test_statusjson,$(B)/common/statusjson.o \
	$(B)/libgildproto.a,$(JANSSON_LIBS) $(PROTOBUFC_LIBS)))
