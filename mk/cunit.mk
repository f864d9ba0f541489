# The cunit_test macro, shared by every folder's build.mk.
# A CUnit test program: $(call cunit_test,NAME,OBJECTS,LIBS) links
# $(B)/tests/NAME from tests/*/NAME.c plus OBJECTS and tests/test_main.c
# (skips, expected failures and the counts tests/run.sh reads).
define cunit_test
$(B)/tests/$(1): $(B)/tests/$(1).o $(B)/tests/test_main.o $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $(3) $$(CUNIT_LIBS)
$(B)/tests/$(1).o: $(wildcard tests/*/$(1).c) | $$(PROTO_H)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) $$(CUNIT_CFLAGS) -Itests -I. -c $$< -o $$@
UNIT_TESTS += $(B)/tests/$(1)
endef

$(B)/tests/test_main.o: tests/test_main.c tests/test_main.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CUNIT_CFLAGS) -Itests -c $< -o $@
