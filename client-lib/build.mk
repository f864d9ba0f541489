# client-lib/: libgild (static and shared, with the gild.v1 protobuf-c code
# inside), its pkg-config file, the gildctl CLI and their unit tests. The
# sources are listed in client-lib/sources.mk, which setup.py reads too.
include client-lib/sources.mk
# The libraries carry the generated gild.v1 code, the wire reader and the
# TLS settings (common/tlsconf.c) they use.
GILD_LIB_DEPS := $(patsubst %.c,$(B)/%.o,$(GILD_LIB_SRCS)) \
	$(patsubst %.proto,$(B)/%.pb-c.o,$(GILD_LIB_PROTOS))
GILD_LIB_LIBS := $(NNG_LIBS) $(PROTOBUFC_LIBS)

$(B)/libgild.a: $(GILD_LIB_DEPS)
	@rm -f $@
	$(AR) rcs $@ $^

# Only gild_* (the gild.h API) is exported: client-lib/libgild.map.
$(B)/libgild.so.0: $(GILD_LIB_DEPS) client-lib/libgild.map
	$(CC) -shared $(ALL_LDFLAGS) -Wl,-soname,libgild.so.0 \
		-Wl,--version-script=client-lib/libgild.map \
		-o $@ $(GILD_LIB_DEPS) $(GILD_LIB_LIBS)

$(B)/libgild.so: $(B)/libgild.so.0
	ln -sf libgild.so.0 $@

# Directories under PREFIX are written relative to ${prefix}, so that
# `pkg-config --define-prefix` finds a tree that was moved (DESTDIR).
pc_dir = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))
# Remade on every run (PREFIX may differ between `make` and `make install`),
# but rewritten only when its text changes.
.PHONY: gild-pc-always
$(B)/gild.pc: client-lib/gild.pc.in gild-pc-always
	@sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(call pc_dir,$(LIBDIR))|' \
		-e 's|@INCLUDEDIR@|$(call pc_dir,$(INCLUDEDIR))|' \
		-e 's|@VERSION@|$(VERSION)|' $< > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# gildctl: libgild plus jansson for its JSON arguments (valjson.c) and for
# `gildctl status` (common/statusjson.c, which the server's /status uses).
$(B)/client-lib/valjson.o $(B)/client-lib/gildctl.o: ALL_CFLAGS += $(JANSSON_CFLAGS)
$(B)/gildctl: $(B)/client-lib/gildctl.o $(B)/client-lib/valjson.o \
		$(B)/common/statusjson.o $(B)/libgild.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(GILD_LIB_LIBS)

LIBS += $(B)/libgild.a $(B)/libgild.so.0 $(B)/libgild.so $(B)/gild.pc
BINS += $(B)/gildctl

# Unit tests (tests/unit/test_client_*.c).
$(eval $(call cunit_test,test_client_values,$(B)/libgild.a,$(GILD_LIB_LIBS)))
$(eval $(call cunit_test,test_client_json,$(B)/client-lib/valjson.o \
	$(B)/libgild.a,$(JANSSON_LIBS) $(GILD_LIB_LIBS)))
$(eval $(call cunit_test,test_client_net,$(B)/libgild.a,$(GILD_LIB_LIBS)))
