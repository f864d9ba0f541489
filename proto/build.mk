# proto/: generated protobuf-c code plus framing and wire helpers, linked into
# every gild program as one static library.
PROTO_SRCS := $(wildcard proto/*.proto)
PROTO_C := $(patsubst proto/%.proto,$(B)/proto/%.pb-c.c,$(PROTO_SRCS))
PROTO_H := $(PROTO_C:.c=.h)

$(B)/proto/%.pb-c.c $(B)/proto/%.pb-c.h: proto/%.proto $(B)/config.mk
	@mkdir -p $(@D)
	protoc-c --proto_path=proto --c_out=$(B)/proto $<

$(B)/proto/%.pb-c.o: $(B)/proto/%.pb-c.c $(PROTO_H)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

PROTO_OBJS := $(PROTO_C:.c=.o) $(B)/proto/frame.o $(B)/proto/wire.o \
	$(B)/proto/codes.o $(B)/proto/trace.o
$(B)/libgildproto.a: $(PROTO_OBJS)
	$(AR) rcs $@ $^
