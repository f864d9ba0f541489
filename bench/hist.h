/* hist: a latency histogram for the bench tools. Records nanoseconds into
 * log-linear buckets (32 linear sub-buckets per power of two, exact below
 * 64 ns), so any quantile is within 1/64 (1.6%) of the true value from
 * 1 ns to 2^41 ns (about 2200 s); min, max, count and mean are exact.
 * Recording never allocates. Results are in microseconds. */
#ifndef GILD_BENCH_HIST_H
#define GILD_BENCH_HIST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hist hist;

/* The largest relative error of a quantile (half a bucket's width). */
#define HIST_REL_ERROR (1.0 / 64)
/* Most points hist_cdf gives (and hist_json puts in "cdf"). */
#define HIST_CDF_POINTS 200

/* A new, empty histogram in *out: 0, or -ENOMEM. */
int hist_init(hist **out);
void hist_fini(hist *h); /* accepts NULL */
void hist_reset(hist *h);

/* Adds one latency of ns nanoseconds; values past 2^41 ns count in the
 * last bucket (max stays exact). */
void hist_record(hist *h, uint64_t ns);
/* Adds one latency given in microseconds (negative counts as 0). */
void hist_record_us(hist *h, double us);
/* Adds every value src holds to dst; src is unchanged. */
void hist_merge(hist *dst, const hist *src);

uint64_t hist_count(const hist *h);
/* These are 0 for an empty histogram. */
double hist_min_us(const hist *h);
double hist_max_us(const hist *h);
double hist_mean_us(const hist *h);
/* The value at quantile q (0..1) in microseconds: the midpoint of the
 * bucket holding the ceil(q * count)-th smallest value, kept within
 * [min, max]; exactly max for q = 1. */
double hist_quantile_us(const hist *h, double q);

/* The cumulative distribution as up to max_points (at most
 * HIST_CDF_POINTS) points, latencies log-spaced between min and max:
 * frac[i] of the values are <= us[i] (exact at bucket bounds: us[i] is the
 * top of a bucket, or max). us rises; the last point is (max, 1). Returns
 * the number of points written (0 when empty). */
size_t hist_cdf(const hist *h, double *us, double *frac, size_t max_points);

/* A new JSON object (a new reference; NULL when out of memory):
 *   {"latency_us":{"p50":..,"p90":..,"p99":..,"p999":..,"max":..,"min":..,
 *    "mean":..},"cdf":[[us,frac],...]}
 * in microseconds; for an empty h every latency_us member is null and
 * "cdf" is []. The tools merge it into their report. */
json_t *hist_json(const hist *h);
/* The significant digits to print hist_json's reals with
 * (JSON_REAL_PRECISION): every latency to the nanosecond below 10 s, far
 * finer than the buckets, without the binary noise of jansson's default 17
 * (12.345000000000001). */
#define HIST_JSON_DIGITS 10

#endif
