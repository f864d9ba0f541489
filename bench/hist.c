/* hist: log-linear latency histogram (see hist.h). Bucket i < 64 holds the
 * value i; above, each power of two [2^k, 2^(k+1)) is split into 32 buckets
 * of width 2^(k-5), as in HdrHistogram. */
#include "hist.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SUB_BITS 5                 /* 32 sub-buckets per power of two */
#define SUB (1u << SUB_BITS)
#define MAX_BIT 40                 /* highest k: values below 2^41 ns */
#define N_BUCKETS ((MAX_BIT - SUB_BITS + 2) * SUB)
#define TOP_NS ((UINT64_C(1) << (MAX_BIT + 1)) - 1)

struct hist {
	uint64_t count;
	uint64_t min, max; /* ns, exact */
	double sum;        /* ns: a double cannot overflow */
	uint64_t counts[N_BUCKETS];
};

static size_t
bucket_of(uint64_t ns)
{
	unsigned k, shift;

	if (ns > TOP_NS)
		ns = TOP_NS;
	if (ns < 2 * SUB)
		return (size_t) ns;
	k = 63u - (unsigned) __builtin_clzll(ns);
	shift = k - SUB_BITS;
	return (size_t) shift * SUB + (size_t) (ns >> shift);
}

/* The lowest and highest value bucket i holds. */
static void
bucket_range(size_t i, uint64_t *lo, uint64_t *hi)
{
	unsigned shift;

	if (i < 2 * SUB) {
		*lo = *hi = i;
		return;
	}
	shift = (unsigned) (i / SUB) - 1;
	*lo = (uint64_t) (i % SUB + SUB) << shift;
	*hi = *lo + (UINT64_C(1) << shift) - 1;
}

int
hist_init(hist **out)
{
	hist *h = malloc(sizeof(*h));

	if (h == NULL)
		return -ENOMEM;
	hist_reset(h);
	*out = h;
	return 0;
}

void
hist_fini(hist *h)
{
	free(h);
}

void
hist_reset(hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void
hist_record(hist *h, uint64_t ns)
{
	h->counts[bucket_of(ns)]++;
	h->count++;
	h->sum += (double) ns;
	if (ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
}

void
hist_record_us(hist *h, double us)
{
	double ns = us * 1e3 + 0.5;

	hist_record(h, ns <= 0 ? 0 : ns >= 1.8e19 ? UINT64_MAX : (uint64_t) ns);
}

void
hist_merge(hist *dst, const hist *src)
{
	if (src->count == 0)
		return;
	for (size_t i = 0; i < N_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t
hist_count(const hist *h)
{
	return h->count;
}

double
hist_min_us(const hist *h)
{
	return h->count ? (double) h->min / 1e3 : 0;
}

double
hist_max_us(const hist *h)
{
	return h->count ? (double) h->max / 1e3 : 0;
}

double
hist_mean_us(const hist *h)
{
	return h->count ? h->sum / (double) h->count / 1e3 : 0;
}

double
hist_quantile_us(const hist *h, double q)
{
	uint64_t rank, seen = 0, lo, hi;
	double mid;

	if (h->count == 0)
		return 0;
	if (!(q > 0))
		return (double) h->min / 1e3;
	rank = (uint64_t) ceil(q * (double) h->count);
	if (rank >= h->count)
		return (double) h->max / 1e3;
	for (size_t i = 0; i < N_BUCKETS; i++) {
		if ((seen += h->counts[i]) < rank)
			continue;
		bucket_range(i, &lo, &hi);
		mid = ((double) lo + (double) hi) / 2;
		if (mid < (double) h->min)
			mid = (double) h->min;
		if (mid > (double) h->max)
			mid = (double) h->max;
		return mid / 1e3;
	}
	return (double) h->max / 1e3; /* not reached: the counts add up */
}

size_t
hist_cdf(const hist *h, double *us, double *frac, size_t max_points)
{
	double lo, ratio, next;
	uint64_t seen = 0, left = h->count, blo, bhi;
	size_t n = 0;

	if (h->count == 0 || max_points == 0)
		return 0;
	if (max_points > HIST_CDF_POINTS)
		max_points = HIST_CDF_POINTS;
	/* max_points - 1 grid points from min to max, ratio apart: each point
	 * but the last uses up at least one of them. */
	lo = h->min > 0 ? (double) h->min : 1;
	ratio = max_points > 2 && (double) h->max > lo ?
	    pow((double) h->max / lo, 1.0 / (double) (max_points - 2)) : 0;
	next = lo;
	for (size_t i = 0; i < N_BUCKETS && left > 0; i++) {
		double x;

		if (h->counts[i] == 0)
			continue;
		seen += h->counts[i];
		left -= h->counts[i];
		bucket_range(i, &blo, &bhi);
		x = (double) (bhi < h->max ? bhi : h->max);
		if (left > 0 && (x < next || n + 1 >= max_points))
			continue;
		us[n] = x / 1e3;
		frac[n] = (double) seen / (double) h->count;
		n++;
		if (ratio <= 1)
			next = INFINITY;
		else
			while (next <= x)
				next *= ratio;
	}
	return n;
}

/* v as a new JSON real, or null when h is empty or v is not finite (JSON
 * has no NaN or infinity). */
static json_t *
us_json(const hist *h, double v)
{
	return h->count > 0 && isfinite(v) ? json_real(v) : json_null();
}

json_t *
hist_json(const hist *h)
{
	static const double qs[] = {0.5, 0.9, 0.99, 0.999};
	static const char *const names[] = {"p50", "p90", "p99", "p999"};
	double us[HIST_CDF_POINTS], frac[HIST_CDF_POINTS];
	size_t n = hist_cdf(h, us, frac, HIST_CDF_POINTS);
	json_t *obj = json_object(), *lat = json_object(), *cdf = json_array();
	int bad = obj == NULL || lat == NULL || cdf == NULL ? -1 : 0;

	/* json_object_set_new and json_array_append_new take the value even
	 * when they fail (or get NULL): nothing leaks on the way. */
	for (size_t i = 0; i < 4; i++)
		bad |= json_object_set_new(lat, names[i],
		    us_json(h, hist_quantile_us(h, qs[i])));
	bad |= json_object_set_new(lat, "max", us_json(h, hist_max_us(h)));
	bad |= json_object_set_new(lat, "min", us_json(h, hist_min_us(h)));
	bad |= json_object_set_new(lat, "mean", us_json(h, hist_mean_us(h)));
	for (size_t i = 0; i < n; i++)
		bad |= json_array_append_new(cdf,
		    json_pack("[ff]", us[i], frac[i]));
	if (bad != 0 || json_object_set(obj, "latency_us", lat) != 0 ||
	    json_object_set(obj, "cdf", cdf) != 0) {
		json_decref(obj);
		obj = NULL;
	}
	json_decref(lat);
	json_decref(cdf);
	return obj;
}
