# The cunit_test macro, shared by every folder's build.mk.
# A CUnit test program: $(call cunit_test,NAME,OBJECTS,LIBS) links
# $(B)/tests/NAME from tests/*/NAME.c plus OBJECTS.
define cunit_test
$(B)/tests/$(1): $(B)/tests/$(1).o $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $(3) $$(CUNIT_LIBS)
$(B)/tests/$(1).o: $(wildcard tests/*/$(1).c) | $$(PROTO_H)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) $$(CUNIT_CFLAGS) -Itests -I. -c $$< -o $$@
UNIT_TESTS += $(B)/tests/$(1)
endef
