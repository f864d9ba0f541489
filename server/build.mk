# server/: the gild daemon.
SERVER_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))
SERVER_OBJS := $(SERVER_SRCS:%.c=$(B)/%.o)

# What the server shares with libgild and gildctl (common/): TLS settings
# from PEM files, and a Status as JSON for the side port's /status.
SERVER_COMMON_OBJS := $(B)/common/tlsconf.o $(B)/common/statusjson.o

# mbedTLS (Debian's nng is built on it) checks that a --tls-key belongs to
# its --tls-cert (tlscheck.c), which nng does not.
MBEDTLS_LIBS := -lmbedx509 -lmbedcrypto

$(B)/gild: $(B)/server/main.o $(SERVER_OBJS) $(SERVER_COMMON_OBJS) \
		$(B)/libgildproto.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(EVENT_LIBS) $(NNG_LIBS) \
		$(PROTOBUFC_LIBS) $(JANSSON_LIBS) $(MBEDTLS_LIBS) $(SYSTEMD_LIBS)
BINS += $(B)/gild
# sd_notify for systemd's Type=notify and watchdog (sdnotify.c).
$(B)/server/sdnotify.o: XCFLAGS += $(SYSTEMD_CFLAGS)

$(eval $(call cunit_test,test_sched,$(B)/server/sched.o $(B)/server/svctime.o,))
$(eval $(call cunit_test,test_svctime,$(B)/server/svctime.o,))
$(eval $(call cunit_test,test_call,$(B)/server/call.o,))
$(eval $(call cunit_test,test_catalog,$(B)/server/catalog.o $(B)/libgildproto.a,$(PROTOBUFC_LIBS)))
$(eval $(call cunit_test,test_stream,$(B)/server/stream.o $(B)/server/replymsg.o \
	$(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS)))
$(eval $(call cunit_test,test_replymsg,$(B)/server/replymsg.o $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS)))
$(eval $(call cunit_test,test_conns,$(B)/server/conns.o,))
$(eval $(call cunit_test,test_cpus,$(B)/server/cpus.o,))
$(eval $(call cunit_test,test_parse,$(B)/server/parse.o $(B)/libgildproto.a,$(PROTOBUFC_LIBS)))
$(eval $(call cunit_test,test_config,$(B)/server/config.o,))
$(eval $(call cunit_test,test_listenurl,$(B)/server/listenurl.o,$(NNG_LIBS)))
$(eval $(call cunit_test,test_applog,$(B)/server/applog.o $(B)/server/log.o,$(EVENT_LIBS) $(JANSSON_LIBS)))
$(B)/tests/test_applog.o: ALL_CFLAGS += $(JANSSON_CFLAGS)
