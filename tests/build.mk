# tests/: CUnit unit tests of modules shared by several programs, and the
# integration suites that start the real gild binary.

$(eval $(call cunit_test,test_frame,$(B)/libgildproto.a,))
$(eval $(call cunit_test,test_wire,$(B)/libgildproto.a,$(PROTOBUFC_LIBS)))

# Integration: the real gild (and its worker) must be built first.
$(eval $(call cunit_test,test_server,$(B)/tests/integration/harness.o \
	$(B)/libgild.a $(B)/libgildproto.a,$(NNG_LIBS) $(PROTOBUFC_LIBS) -lm))
TEST_DEPS += $(B)/gild $(B)/gild-worker $(B)/gildctl

# Python tests: the generated gild_pb2 module lets them speak the protocol
# with nothing but Python's protobuf, as a client in another language would.
$(B)/python/gild_pb2.py: proto/gild.proto $(B)/config.mk
	@mkdir -p $(@D)
	protoc --proto_path=proto --python_out=$(@D) $<
TEST_DEPS += $(B)/python/gild_pb2.py
UNIT_TESTS += tests/python/test_cli.py
