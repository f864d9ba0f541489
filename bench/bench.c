/* bench: helpers shared by the bench tools floor and loadgen (see
 * bench.h). */
#include "bench.h"
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint8_t
bench_pattern(size_t i)
{
	return (uint8_t) (i * 131 + 17);
}

void
bench_fail(bench_errors *e, const char *fmt, ...)
{
	va_list ap;

	if (e->count++ == 0) {
		va_start(ap, fmt);
		vsnprintf(e->first, sizeof(e->first), fmt, ap);
		va_end(ap);
	}
}

void
bench_errors_merge(bench_errors *dst, const bench_errors *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0)
		memcpy(dst->first, src->first, sizeof(dst->first));
	dst->count += src->count;
}

bool
bench_parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

bool
bench_parse_pos_double(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0) || !isfinite(v))
		return false;
	*out = v;
	return true;
}

json_t *
bench_real_json(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

int
bench_print_json(FILE *f, json_t *obj, int bad)
{
	int rc = bad == 0 && obj != NULL && json_dumpf(obj, f, JSON_COMPACT |
	    JSON_REAL_PRECISION(HIST_JSON_DIGITS)) == 0 &&
	    fputc('\n', f) != EOF && fflush(f) == 0 ? 0 : -1;

	json_decref(obj);
	return rc;
}
