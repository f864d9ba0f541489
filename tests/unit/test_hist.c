/* Tests of bench/hist.c: quantiles of known distributions within the
 * stated error, exact min/max/mean, merge, the CDF and its JSON (the
 * jansson object, and its text as the bench tools print it). */
#include "bench/hist.h"

#include <CUnit/Basic.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "test_main.h"

/* hist_json(h) as the bench tools print it (a new string), or NULL. */
static char *
json_text(const hist *h)
{
	json_t *obj = hist_json(h);
	char *text = obj == NULL ? NULL : json_dumps(obj,
	    JSON_COMPACT | JSON_REAL_PRECISION(HIST_JSON_DIGITS));

	json_decref(obj);
	return text;
}

/* |got - want| within HIST_REL_ERROR of want (plus a hair for rounding). */
static int
close_rel(double got, double want)
{
	return fabs(got - want) <= want * HIST_REL_ERROR + 1e-9;
}

static void
test_empty(void)
{
	hist *h;
	double us[4], frac[4];
	char *text;

	CU_ASSERT_EQUAL_FATAL(hist_init(&h), 0);
	CU_ASSERT_EQUAL(hist_count(h), 0);
	CU_ASSERT_EQUAL(hist_quantile_us(h, 0.5), 0);
	CU_ASSERT_EQUAL(hist_max_us(h), 0);
	CU_ASSERT_EQUAL(hist_mean_us(h), 0);
	CU_ASSERT_EQUAL(hist_cdf(h, us, frac, 4), 0);
	text = json_text(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_STRING_EQUAL(text, "{\"latency_us\":{\"p50\":null,"
	    "\"p90\":null,\"p99\":null,\"p999\":null,\"max\":null,"
	    "\"min\":null,\"mean\":null},\"cdf\":[]}");
	free(text);
	hist_fini(h);
	hist_fini(NULL);
}

/* Every integer 1..100000 ns once: the q quantile is q * 100000 ns. */
static void
test_uniform(void)
{
	static const struct {
		double q, want_us;
	} cases[] = {
		{0.5, 50.0}, {0.9, 90.0}, {0.99, 99.0}, {0.999, 99.9},
		{0.25, 25.0}, {0.001, 0.1}, {0.0001, 0.01}, {0.00001, 0.001},
	};
	hist *h;

	CU_ASSERT_EQUAL_FATAL(hist_init(&h), 0);
	for (uint64_t v = 100000; v >= 1; v--)
		hist_record(h, v);
	CU_ASSERT_EQUAL(hist_count(h), 100000);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double got = hist_quantile_us(h, cases[i].q);

		if (!close_rel(got, cases[i].want_us))
			printf("\nq %g: got %g us, want %g us\n", cases[i].q,
			    got, cases[i].want_us);
		CU_ASSERT(close_rel(got, cases[i].want_us));
	}
	CU_ASSERT_DOUBLE_EQUAL(hist_max_us(h), 100.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(hist_quantile_us(h, 1.0), 100.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(hist_min_us(h), 0.001, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(hist_mean_us(h), 50.0005, 1e-9);
	hist_fini(h);
}

static void
test_constant(void)
{
	static const double qs[] = {0, 0.01, 0.5, 0.9, 0.99, 0.999, 1};
	hist *h;
	double us[8], frac[8];

	CU_ASSERT_EQUAL_FATAL(hist_init(&h), 0);
	for (int i = 0; i < 1000; i++)
		hist_record(h, 12345);
	/* Clamped to [min, max]: exact. */
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		CU_ASSERT_DOUBLE_EQUAL(hist_quantile_us(h, qs[i]), 12.345, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(hist_mean_us(h), 12.345, 1e-9);
	CU_ASSERT_EQUAL_FATAL(hist_cdf(h, us, frac, 8), 1);
	CU_ASSERT_DOUBLE_EQUAL(us[0], 12.345, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(frac[0], 1.0, 0);
	hist_fini(h);
}

/* 90% at 1 us, 10% at 1 s: the quantiles jump from one to the other. */
static void
test_two_point(void)
{
	hist *h;
	double us[HIST_CDF_POINTS], frac[HIST_CDF_POINTS];
	size_t n;

	CU_ASSERT_EQUAL_FATAL(hist_init(&h), 0);
	for (int i = 0; i < 10000; i++)
		hist_record(h, i % 10 == 3 ? 1000000000u : 1000u);
	CU_ASSERT(close_rel(hist_quantile_us(h, 0.5), 1.0));
	CU_ASSERT(close_rel(hist_quantile_us(h, 0.9), 1.0));
	CU_ASSERT(close_rel(hist_quantile_us(h, 0.9001), 1e6));
	CU_ASSERT(close_rel(hist_quantile_us(h, 0.99), 1e6));
	CU_ASSERT(close_rel(hist_quantile_us(h, 0.999), 1e6));
	CU_ASSERT_DOUBLE_EQUAL(hist_max_us(h), 1e6, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(hist_min_us(h), 1.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(hist_mean_us(h), 0.9 * 1.0 + 0.1 * 1e6, 1e-6);
	n = hist_cdf(h, us, frac, HIST_CDF_POINTS);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT(us[0] >= 1.0 && us[0] < 1.0 * (1 + 2 * HIST_REL_ERROR));
	CU_ASSERT_DOUBLE_EQUAL(frac[0], 0.9, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(us[1], 1e6, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(frac[1], 1.0, 0);
	hist_fini(h);
}

/* A value anywhere from 1 ns to 1000 s, between a 0 and a huge one, is
 * the median: within the relative error bound at every magnitude. */
static void
test_relative_error(void)
{
	hist *h;
	double worst = 0;

	CU_ASSERT_EQUAL_FATAL(hist_init(&h), 0);
	for (double v = 1; v <= 1e12; v *= 1.013) {
		uint64_t ns = (uint64_t) v;
		double got, err;

		hist_reset(h);
		hist_record(h, 0);
		hist_record(h, ns);
		hist_record(h, UINT64_C(1) << 50);
		got = hist_quantile_us(h, 0.5) * 1e3;
		err = fabs(got - (double) ns) / (double) ns;
		if (err > worst)
			worst = err;
		if (err > HIST_REL_ERROR)
			printf("\n%llu ns: median %g ns\n",
			    (unsigned long long) ns, got);
		CU_ASSERT(err <= HIST_REL_ERROR);
	}
	CU_ASSERT(worst > 0.005); /* the bound is not loose by a lot */
	/* max and min stay exact past the top bucket. */
	CU_ASSERT_DOUBLE_EQUAL(hist_max_us(h), (double) (UINT64_C(1) << 50) / 1e3,
	    1e-3);
	CU_ASSERT_EQUAL(hist_min_us(h), 0);
	hist_fini(h);
}

static void
test_max_exact(void)
{
	hist *h;
	uint64_t max = 0, v = 88172645463325252ull;

	CU_ASSERT_EQUAL_FATAL(hist_init(&h), 0);
	for (int i = 0; i < 100000; i++) {
		v ^= v << 13, v ^= v >> 7, v ^= v << 17; /* xorshift64 */
		uint64_t ns = v % 987654321u;

		hist_record(h, ns);
		if (ns > max)
			max = ns;
	}
	hist_record_us(h, 1.5);
	CU_ASSERT_EQUAL(hist_count(h), 100001);
	CU_ASSERT_DOUBLE_EQUAL(hist_max_us(h), (double) max / 1e3, 0);
	CU_ASSERT_DOUBLE_EQUAL(hist_quantile_us(h, 1), (double) max / 1e3, 0);
	CU_ASSERT(hist_quantile_us(h, 0.999) <= hist_max_us(h));
	CU_ASSERT(hist_min_us(h) <= 1.5);
	hist_fini(h);
}

static void
test_merge(void)
{
	static const double qs[] = {0.1, 0.5, 0.9, 0.99, 0.999, 1};
	hist *all, *odd, *even, *empty;

	CU_ASSERT_EQUAL_FATAL(hist_init(&all), 0);
	CU_ASSERT_EQUAL_FATAL(hist_init(&odd), 0);
	CU_ASSERT_EQUAL_FATAL(hist_init(&even), 0);
	CU_ASSERT_EQUAL_FATAL(hist_init(&empty), 0);
	for (uint64_t v = 7; v <= 7000000; v += 7) {
		hist_record(all, v);
		hist_record((v / 7) % 2 ? odd : even, v);
	}
	hist_merge(odd, empty); /* nothing changes */
	hist_merge(empty, odd);
	hist_merge(empty, even);
	CU_ASSERT_EQUAL(hist_count(empty), hist_count(all));
	CU_ASSERT_DOUBLE_EQUAL(hist_min_us(empty), 0.007, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(hist_max_us(empty), 7000.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(hist_mean_us(empty), hist_mean_us(all), 1e-9);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
		CU_ASSERT_DOUBLE_EQUAL(hist_quantile_us(empty, qs[i]),
		    hist_quantile_us(all, qs[i]), 0);
	CU_ASSERT_EQUAL(hist_count(odd), 500000);
	hist_fini(all);
	hist_fini(odd);
	hist_fini(even);
	hist_fini(empty);
}

/* The CDF of 1..100000 ns: at most 200 points, log-spaced, each exact
 * (frac of the values <= us), ending at (max, 1). */
static void
test_cdf(void)
{
	hist *h;
	double us[HIST_CDF_POINTS], frac[HIST_CDF_POINTS];
	size_t n;
	int bad = 0;

	CU_ASSERT_EQUAL_FATAL(hist_init(&h), 0);
	for (uint64_t v = 1; v <= 100000; v++)
		hist_record(h, v);
	n = hist_cdf(h, us, frac, HIST_CDF_POINTS);
	CU_ASSERT(n >= 100 && n <= HIST_CDF_POINTS);
	for (size_t i = 0; i < n; i++) {
		if (fabs(frac[i] - us[i] * 1e3 / 100000) > 1e-12)
			bad++;
		if (i > 0 && !(us[i] > us[i - 1] && frac[i] > frac[i - 1]))
			bad++;
		/* log-spaced: no two points closer than a bucket's width. */
		if (i > 0 && us[i] > 0.1 && us[i] / us[i - 1] < 1.01)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_DOUBLE_EQUAL(us[0], 0.001, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(us[n - 1], 100.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(frac[n - 1], 1.0, 0);
	/* Fewer points when asked. */
	n = hist_cdf(h, us, frac, 10);
	CU_ASSERT(n >= 5 && n <= 10);
	CU_ASSERT_DOUBLE_EQUAL(us[n - 1], 100.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(frac[n - 1], 1.0, 0);
	hist_fini(h);
}

/* 1000..2000 ns once each: the object's members, their types and values,
 * and the text the tools print. */
static void
test_json(void)
{
	static const char *const keys[] = {"p50", "p90", "p99", "p999", "max",
	    "min", "mean"};
	hist *h;
	json_t *obj, *lat, *cdf, *last;
	double p50, max, min, mean, us0, frac0, us1, frac1;
	size_t n;
	char *text;

	CU_ASSERT_EQUAL_FATAL(hist_init(&h), 0);
	for (uint64_t v = 1000; v <= 2000; v++)
		hist_record(h, v);
	obj = hist_json(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(obj);
	CU_ASSERT_EQUAL(json_object_size(obj), 2);
	lat = json_object_get(obj, "latency_us");
	cdf = json_object_get(obj, "cdf");
	CU_ASSERT_FATAL(json_is_object(lat) && json_is_array(cdf));
	CU_ASSERT_EQUAL(json_object_size(lat), 7);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		CU_ASSERT(json_is_real(json_object_get(lat, keys[i])));
	CU_ASSERT_EQUAL_FATAL(json_unpack(lat, "{s:F, s:F, s:F, s:F}", "p50",
	    &p50, "max", &max, "min", &min, "mean", &mean), 0);
	CU_ASSERT(close_rel(p50, 1.5));
	CU_ASSERT_DOUBLE_EQUAL(max, 2.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(min, 1.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(mean, 1.5, 1e-12);
	/* The points are hist_cdf's, as [us, frac] pairs of reals. */
	n = json_array_size(cdf);
	CU_ASSERT(n >= 2 && n <= HIST_CDF_POINTS);
	CU_ASSERT_EQUAL_FATAL(json_unpack(json_array_get(cdf, 0), "[FF!]",
	    &us0, &frac0), 0);
	CU_ASSERT_DOUBLE_EQUAL(us0, 1.007, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(frac0, 8.0 / 1001, 1e-12);
	last = json_array_get(cdf, n - 1);
	CU_ASSERT_FATAL(json_is_real(json_array_get(last, 0)) &&
	    json_is_real(json_array_get(last, 1)));
	CU_ASSERT_EQUAL_FATAL(json_unpack(last, "[FF!]", &us1, &frac1), 0);
	CU_ASSERT_DOUBLE_EQUAL(us1, 2.0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(frac1, 1.0, 0);
	json_decref(obj);
	/* The text: reals to ten digits, members in this order. */
	text = json_text(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT(strncmp(text, "{\"latency_us\":{\"p50\":1.", 23) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"max\":2.0,\"min\":1.0,"
	    "\"mean\":1.5},\"cdf\":[[1.007,0.007992007992],"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, ",[2.0,1.0]]}"));
	free(text);
	hist_fini(h);
}

int
main(void)
{
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("hist", NULL, NULL);
	CU_add_test(s, "empty", test_empty);
	CU_add_test(s, "uniform 1..100000 ns", test_uniform);
	CU_add_test(s, "constant", test_constant);
	CU_add_test(s, "two-point mix", test_two_point);
	CU_add_test(s, "relative error 1 ns .. 1000 s", test_relative_error);
	CU_add_test(s, "max exact", test_max_exact);
	CU_add_test(s, "merge", test_merge);
	CU_add_test(s, "cdf", test_cdf);
	CU_add_test(s, "json", test_json);
	return test_run_all();
}
