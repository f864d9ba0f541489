/* Counters and histograms for /metrics, in Prometheus text format. */
#include "metrics.h"

#include "codes.h"
#include "gild.pb-c.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds of the histograms' buckets; +Inf follows. Seconds, for
 * call durations and queue waits: */
static const double sec_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
/* Calls, for batch sizes, by powers of two up to the most a batch may
 * hold (GILD_FUNCTION_BATCH_MAX): */
static const double size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
    1024, 2048, 4096};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define HIST_MAX NELEM(sec_bounds)
_Static_assert(NELEM(size_bounds) <= HIST_MAX, "room for every bucket");

typedef struct hist {
	uint64_t buckets[HIST_MAX + 1]; /* per bucket, not cumulative */
	uint64_t count;
	double sum;
} hist;

typedef struct fn_stats {
	char *name;     /* len bytes (and a NUL after them) */
	size_t len;
	uint64_t by_code[CODES_MAX]; /* by codes_index */
	hist duration;  /* arrival to answer, seconds (sec_bounds) */
	hist wait;      /* arrival to start on a worker, seconds */
	hist batch;     /* sizes of its batches (size_bounds) */
	struct fn_stats *next;
} fn_stats;

struct metrics {
	fn_stats *fns; /* in order of first call */
	fn_stats **tail;
};

/* Where a call that ended with code is counted: an unknown code counts as
 * UNKNOWN. */
static int
code_index(int code)
{
	int i = codes_index(code);

	return i >= 0 ? i : codes_index(GILD__V1__CODE__UNKNOWN);
}

metrics *
metrics_new(void)
{
	metrics *m = calloc(1, sizeof(*m));

	if (m != NULL)
		m->tail = &m->fns;
	return m;
}

void
metrics_free(metrics *m)
{
	if (m == NULL)
		return;
	for (fn_stats *f = m->fns, *next; f != NULL; f = next) {
		next = f->next;
		free(f->name);
		free(f);
	}
	free(m);
}

/* The stats of function name (len bytes; NULL: "(unknown)"), made on
 * first use; NULL when out of memory (the count is lost, nothing else). */
static fn_stats *
fn_get(metrics *m, const char *name, size_t len)
{
	fn_stats *f;

	if (name == NULL) {
		name = "(unknown)";
		len = strlen(name);
	}
	for (f = m->fns; f != NULL; f = f->next)
		if (f->len == len && memcmp(f->name, name, len) == 0)
			return f;
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->name = malloc(len + 1)) == NULL) {
		free(f);
		return NULL;
	}
	memcpy(f->name, name, len);
	f->name[len] = '\0';
	f->len = len;
	*m->tail = f;
	m->tail = &f->next;
	return f;
}

static void
observe(hist *h, const double *bounds, size_t nb, double v)
{
	size_t b = 0;

	while (b < nb && v > bounds[b])
		b++;
	h->buckets[b]++;
	h->count++;
	h->sum += v;
}

void
metrics_call(metrics *m, const char *function, size_t len, int code,
    double seconds)
{
	fn_stats *f;

	if (m == NULL || (f = fn_get(m, function, len)) == NULL)
		return;
	f->by_code[code_index(code)]++;
	if (seconds >= 0)
		observe(&f->duration, sec_bounds, NELEM(sec_bounds), seconds);
}

void
metrics_wait(metrics *m, const char *function, size_t len, double seconds)
{
	fn_stats *f;

	if (m != NULL && (f = fn_get(m, function, len)) != NULL)
		observe(&f->wait, sec_bounds, NELEM(sec_bounds),
		    seconds < 0 ? 0 : seconds);
}

void
metrics_batch(metrics *m, const char *function, size_t len, size_t calls)
{
	fn_stats *f;

	if (m != NULL && (f = fn_get(m, function, len)) != NULL)
		observe(&f->batch, size_bounds, NELEM(size_bounds),
		    (double) calls);
}

/* A growing string. */
typedef struct out {
	char *p;
	size_t len, cap;
	int failed;
} out;

static void
put(out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t) n < o->cap - o->len) {
			o->len += (size_t) n;
			return;
		}
		size_t cap = 2 * o->cap + (size_t) n;
		char *p = realloc(o->p, cap);
		if (p == NULL) {
			o->failed = 1;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates, past U+10FFFF. */
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	return len;
}

/* A label value of len bytes in the exposition format: \, " and newline
 * escaped (its only escapes), NUL and bytes that are not UTF-8 as U+FFFD
 * (the format is UTF-8, and a NUL would cut the value for some
 * readers). */
static void
put_label(out *o, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_len(p + i, len - i);

		if (n == 0 || p[i] == '\0') {
			put(o, "\xef\xbf\xbd");
			i += n ? n : 1;
		} else if (p[i] == '\\' || p[i] == '"') {
			put(o, "\\%c", p[i++]);
		} else if (p[i] == '\n') {
			put(o, "\\n");
			i++;
		} else {
			put(o, "%.*s", (int) n, s + i);
			i += n;
		}
	}
}

static void
head(out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The series of histogram family name for each function that has a
 * sample in the histogram at offset off of fn_stats (all of them with
 * every_fn). */
/* A family of one unlabelled series. */
static void
put_one(out *o, const char *name, const char *type, const char *help,
    unsigned long long v)
{
	head(o, name, type, help);
	put(o, "%s %llu\n", name, v);
}

/* A family of n series, label=names[i] (known label values: not escaped). */
static void
put_by(out *o, const char *name, const char *type, const char *help,
    const char *label, const char *const *names, const uint64_t *v, size_t n)
{
	head(o, name, type, help);
	for (size_t i = 0; i < n; i++)
		put(o, "%s{%s=\"%s\"} %llu\n", name, label, names[i],
		    (unsigned long long) v[i]);
}

static void
put_hists(out *o, const metrics *m, const char *name, size_t off,
    const double *bounds, size_t nb, bool every_fn)
{
	for (const fn_stats *f = m->fns; f != NULL; f = f->next) {
		const hist *h = (const hist *) ((const char *) f + off);
		uint64_t cum = 0;

		if (h->count == 0 && !every_fn)
			continue;
		for (size_t b = 0; b <= nb; b++) {
			cum += h->buckets[b];
			put(o, "%s_bucket{function=\"", name);
			put_label(o, f->name, f->len);
			if (b < nb)
				put(o, "\",le=\"%g\"} %llu\n", bounds[b],
				    (unsigned long long) cum);
			else
				put(o, "\",le=\"+Inf\"} %llu\n",
				    (unsigned long long) cum);
		}
		put(o, "%s_sum{function=\"", name);
		put_label(o, f->name, f->len);
		put(o, "\"} %.9g\n", h->sum);
		put(o, "%s_count{function=\"", name);
		put_label(o, f->name, f->len);
		put(o, "\"} %llu\n", (unsigned long long) h->count);
	}
}

/* The process_* families as the Prometheus client libraries define them. */
static void
put_process(out *o, const procstat *p)
{
	head(o, "process_cpu_seconds_total", "counter",
	    "Total user and system CPU time spent in seconds.");
	put(o, "process_cpu_seconds_total %.2f\n", p->cpu_seconds);
	head(o, "process_resident_memory_bytes", "gauge",
	    "Resident memory size in bytes.");
	put(o, "process_resident_memory_bytes %llu\n",
	    (unsigned long long) p->resident_bytes);
	head(o, "process_virtual_memory_bytes", "gauge",
	    "Virtual memory size in bytes.");
	put(o, "process_virtual_memory_bytes %llu\n",
	    (unsigned long long) p->virtual_bytes);
	head(o, "process_open_fds", "gauge",
	    "Number of open file descriptors.");
	put(o, "process_open_fds %llu\n", (unsigned long long) p->open_fds);
	head(o, "process_max_fds", "gauge",
	    "Maximum number of open file descriptors.");
	if (p->max_fds == UINT64_MAX)
		put(o, "process_max_fds +Inf\n");
	else
		put(o, "process_max_fds %llu\n",
		    (unsigned long long) p->max_fds);
	head(o, "process_start_time_seconds", "gauge",
	    "Start time of the process since unix epoch in seconds.");
	put(o, "process_start_time_seconds %.2f\n", p->start_time);
}

char *
metrics_render(const metrics *m, const metrics_now *now)
{
	out o = {malloc(4096), 0, 4096, 0};
	static const char *const states[] = {"starting", "ready", "busy",
	    "recycling", "restarting", "stopped"};

	if (o.p == NULL)
		return NULL;
	head(&o, "gild_calls_total", "counter",
	    "Calls answered, by function and gild.v1 code.");
	for (const fn_stats *f = m->fns; f != NULL; f = f->next)
		for (size_t i = 0; i < codes_count(); i++) {
			if (f->by_code[i] == 0)
				continue;
			put(&o, "gild_calls_total{function=\"");
			put_label(&o, f->name, f->len);
			put(&o, "\",code=\"%s\"} %llu\n",
			    codes_name(codes_at(i)),
			    (unsigned long long) f->by_code[i]);
		}
	head(&o, "gild_call_duration_seconds", "histogram",
	    "Seconds from a call's arrival to its answer, by function.");
	put_hists(&o, m, "gild_call_duration_seconds",
	    offsetof(fn_stats, duration), sec_bounds, NELEM(sec_bounds), true);
	head(&o, "gild_queue_wait_seconds", "histogram",
	    "Seconds from a call's arrival to its start on a worker, by "
	    "function.");
	put_hists(&o, m, "gild_queue_wait_seconds", offsetof(fn_stats, wait),
	    sec_bounds, NELEM(sec_bounds), false);
	head(&o, "gild_batch_size", "histogram",
	    "Calls in each batch handed to a batched function, by function.");
	put_hists(&o, m, "gild_batch_size", offsetof(fn_stats, batch),
	    size_bounds, NELEM(size_bounds), false);
	head(&o, "gild_queue_depth", "gauge", "Calls waiting for a worker.");
	put(&o, "gild_queue_depth %llu\n", (unsigned long long) now->queued);
	head(&o, "gild_calls_in_flight", "gauge", "Calls running on workers.");
	put(&o, "gild_calls_in_flight %llu\n",
	    (unsigned long long) now->in_flight);
	head(&o, "gild_workers", "gauge", "Worker slots, by state.");
	for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
		int n = 0;
		for (int w = 0; w < now->workers; w++)
			n += strcmp(now->worker_state[w], states[s]) == 0;
		put(&o, "gild_workers{state=\"%s\"} %d\n", states[s], n);
	}
	put_by(&o, "gild_worker_restarts_total", "counter",
	    "Workers that died and were restarted, by why.", "reason",
	    now->restart_reason, now->restarts, now->n_reasons);
	put_by(&o, "gild_worker_recycles_total", "counter",
	    "Workers replaced on purpose, by why.", "reason",
	    now->recycle_reason, now->recycles, now->n_recycle_reasons);
	head(&o, "gild_worker_resident_memory_bytes", "gauge",
	    "Resident memory of each worker process, by slot.");
	for (int w = 0; w < now->workers; w++)
		if (now->worker_rss[w] != 0)
			put(&o, "gild_worker_resident_memory_bytes{slot=\"%d\"} "
				"%llu\n",
			    w, (unsigned long long) now->worker_rss[w]);
	put_one(&o, "gild_received_bytes_total", "counter",
	    "Bytes of requests received from clients.", now->bytes_in);
	put_one(&o, "gild_sent_bytes_total", "counter",
	    "Bytes of replies sent to clients.", now->bytes_out);
	put_one(&o, "gild_shm_bytes_total", "counter",
	    "Bytes between the front end and workers through shared memory.",
	    now->shm_bytes);
	head(&o, "gild_uptime_seconds", "gauge", "Seconds since gild started.");
	put(&o, "gild_uptime_seconds %.3f\n", now->uptime_s);
	head(&o, "gild_draining", "gauge",
	    "1 after SIGTERM, while calls finish; else 0.");
	put(&o, "gild_draining %d\n", now->draining);
	put_one(&o, "gild_connections", "gauge", "Client connections open.",
	    now->connections);
	put_one(&o, "gild_app_log_lines_total", "counter",
	    "Lines of the app's output (stdout, stderr, logging) logged.",
	    now->app_lines);
	put_one(&o, "gild_app_log_lines_dropped_total", "counter",
	    "Lines of the app's output dropped because gild's own stderr "
	    "was full.", now->app_dropped);
	put_by(&o, "gild_limit_hits_total", "counter",
	    "Requests refused or connections closed at a bound, by the "
	    "option that sets it.", "limit", now->limit, now->limit_hits,
	    now->n_limits);
	head(&o, "gild_build_info", "gauge",
	    "Always 1: the gild version and the runtime its workers use.");
	put(&o, "gild_build_info{version=\"");
	put_label(&o, now->version, strlen(now->version));
	put(&o, "\",runtime=\"");
	put_label(&o, now->runtime, strlen(now->runtime));
	put(&o, "\"} 1\n");
	put_process(&o, &now->process);
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	return o.p;
}
