# server/: the gild daemon.
SERVER_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))
SERVER_OBJS := $(SERVER_SRCS:%.c=$(B)/%.o)

$(B)/gild: $(B)/server/main.o $(SERVER_OBJS) $(B)/libgildproto.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(EVENT_LIBS) $(NNG_LIBS) $(PROTOBUFC_LIBS)
BINS += $(B)/gild

$(eval $(call cunit_test,test_sched,$(B)/server/sched.o,))
$(eval $(call cunit_test,test_cpus,$(B)/server/cpus.o,))
$(eval $(call cunit_test,test_parse,$(B)/server/parse.o $(B)/libgildproto.a,$(PROTOBUFC_LIBS)))
