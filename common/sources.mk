# The sources of pyconv, the one Python <-> gild.v1.Value converter
# (common/pyconv.h), listed once: compiled into gild-worker and
# gild-worker-ft (worker/build.mk) and into the Python extension
# gild._native (client-lib/sources.mk, which client-lib/python/setup.py
# reads after this file). Keep to the `NAME := path...` form setup.py reads.
PYCONV_SRCS := common/pyconv.c common/pyconv_to.c common/pyconv_from.c
