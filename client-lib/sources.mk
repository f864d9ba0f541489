# The sources of libgild and of the Python extension over it, listed once.
# Read by client-lib/build.mk, client-lib/python/build.mk and by
# client-lib/python/setup.py (pip install ./client-lib/python), which takes
# each `NAME := word...` line (with `\` continuations) as a list of paths
# from the top of the tree: keep to that form, plain paths or `$(NAME)` of
# a list defined before (here or in common/sources.mk), no make functions.

# libgild: its own C files, the TLS settings and wire helpers it uses
# (common/, proto/), and the protobuf-c
# code generated from GILD_LIB_PROTOS (by protoc-c, into $(B)/proto).
GILD_LIB_SRCS := client-lib/value.c client-lib/error.c client-lib/codec.c \
	client-lib/client.c client-lib/table.c client-lib/recv.c \
	client-lib/resend.c client-lib/send.c client-lib/wait.c \
	client-lib/stream.c client-lib/actor.c client-lib/shm.c \
	common/tlsconf.c \
	proto/wire.c proto/codes.c proto/trace.c proto/frame.c
GILD_LIB_PROTOS := proto/gild.proto

# gild._native, the CPython extension: these and pyconv, the converter it
# shares with the worker (common/sources.mk), linked with all of libgild.
PY_NATIVE_SRCS := client-lib/python/_native.c \
	client-lib/python/native_actor.c client-lib/python/native_batch.c \
	client-lib/python/native_outcome.c client-lib/python/native_stream.c \
	client-lib/python/native_wait.c client-lib/python/pyvalue.c \
	$(PYCONV_SRCS)
