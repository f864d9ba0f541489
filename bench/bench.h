/* bench: what the bench tools floor and loadgen share: the clock, the
 * payload bytes they send and check, the count of a run's failures, option
 * values, and the one JSON line each prints (bench_*). Writes only to the
 * stream it is given; never exits. */
#ifndef GILD_BENCH_BENCH_H
#define GILD_BENCH_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/* The payload byte at offset i: what the tools send, and what an echo
 * must bring back. */
uint8_t bench_pattern(size_t i);

/* A run's failures: how many, and the first one's text (for stderr). Zero
 * it to start. */
typedef struct bench_errors {
	long count;
	char first[512];
} bench_errors;

/* Counts one failure in e; when it is the first, keeps its text (printf's
 * fmt, cut to fit). */
void bench_fail(bench_errors *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Adds src's failures to dst: dst keeps its first text, or takes src's
 * when it had none. src is unchanged. */
void bench_errors_merge(bench_errors *dst, const bench_errors *src);

/* A whole decimal number in [lo, hi] in *out: true, or false (and *out
 * unchanged) when s is not one. */
bool bench_parse_long(const char *s, long lo, long hi, long *out);
/* A finite number > 0 in *out: true, or false (and *out unchanged) when
 * s is not one. */
bool bench_parse_pos_double(const char *s, double *out);

/* v as a new JSON real, or null when not finite (JSON has no NaN or
 * infinity); NULL when out of memory. */
json_t *bench_real_json(double v);
/* Writes obj on f as one compact line, reals to HIST_JSON_DIGITS
 * significant digits, and flushes f. Takes obj (a new reference, NULL
 * allowed) and drops it; writes nothing when obj is NULL or bad is nonzero
 * (building it failed). Returns 0, or -1 when the line was not written. */
int bench_print_json(FILE *f, json_t *obj, int bad);

#endif
