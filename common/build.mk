# common/: code the daemon and the client side share that is not the wire
# protocol (proto/ holds that): TLS settings read from PEM files
# (tlsconf.c: the server's listeners, libgild's dialers) and a Status as
# JSON (statusjson.c: the side port's /status and `gildctl status`).
$(B)/common/statusjson.o: ALL_CFLAGS += $(JANSSON_CFLAGS)

$(B)/tests/test_statusjson.o: ALL_CFLAGS += $(JANSSON_CFLAGS)
$(eval $(call cunit_test,test_statusjson,$(B)/common/statusjson.o \
	$(B)/libgildproto.a,$(JANSSON_LIBS) $(PROTOBUFC_LIBS)))
