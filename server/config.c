/* gild serve's settings: one table of options read from flags, GILD_*
 * environment variables and a `name = value` config file. */
#include "config.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static conf_show_fn *show_of(const conf_opt *o);

/* What one option was last set to, and by whom. */
typedef struct rec {
	enum conf_source src;
	char *where;   /* "--workers", "GILD_WORKERS", "FILE:LINE" */
	const char *text; /* the value as given (owned by the conf) */
	char *def;     /* conf_set_default's value, or NULL: opts[i].def */
	char *note;    /* conf_set_default's note */
	int line;      /* CONF_FILE: its line */
} rec;

struct conf {
	const conf_opt *opts;
	size_t n;
	rec *r;
	char **texts;  /* every value given, freed by conf_fini */
	size_t ntexts, cap;
};

int
conf_init(conf **out, const conf_opt *opts, size_t n)
{
	conf *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->r = calloc(n, sizeof(rec))) == NULL) {
		free(c);
		return -ENOMEM;
	}
	c->opts = opts;
	c->n = n;
	*out = c;
	return 0;
}

void
conf_fini(conf *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->r[i].where);
		free(c->r[i].def);
		free(c->r[i].note);
	}
	for (size_t i = 0; i < c->ntexts; i++)
		free(c->texts[i]);
	free(c->texts);
	free(c->r);
	free(c);
}

int
conf_find(const conf *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return (int) i;
	return -1;
}

void
conf_env_name(const conf_opt *o, char *out, size_t len)
{
	size_t k = 0;

	if (len == 0)
		return;
	for (const char *p = "GILD_"; *p && k + 1 < len; p++)
		out[k++] = *p;
	for (const char *p = o->name; *p && k + 1 < len; p++)
		out[k++] = *p == '-' ? '_' : (char) toupper((unsigned char) *p);
	out[k] = '\0';
}

/* A copy of s that lives until conf_fini, or NULL. */
static char *
keep(conf *c, const char *s)
{
	char *t;

	if (c->ntexts == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 32;
		char **v = realloc(c->texts, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		c->texts = v;
		c->cap = cap;
	}
	if ((t = strdup(s)) == NULL)
		return NULL;
	c->texts[c->ntexts++] = t;
	return t;
}

int
conf_set(conf *c, int i, const char *text, enum conf_source src,
    const char *where, char *err, size_t len)
{
	const conf_opt *o = &c->opts[i];
	rec *r = &c->r[i];
	char *t = keep(c, text), *w = strdup(where), got[160];

	if (t == NULL || w == NULL) {
		free(w);
		snprintf(err, len, "out of memory");
		return -1;
	}
	if (o->flags & CONF_SECRET)
		snprintf(got, sizeof(got), "%s",
		    *text ? "a value that is not" : "an empty value");
	else
		snprintf(got, sizeof(got), "'%.120s'", text);
	if ((o->flags & CONF_LIST) && src > r->src)
		((conf_list *) o->dst)->n = 0; /* a higher source: its own list */
	if ((o->flags & CONF_LIST) &&
	    ((conf_list *) o->dst)->n == CONF_LIST_MAX) {
		snprintf(err, len, "%s: at most %d values of %s", where,
		    CONF_LIST_MAX, o->name);
		free(w);
		return -1;
	}
	if (o->parse(o, t) != 0) {
		if (src == CONF_FLAG)
			snprintf(err, len, "%s: expected %s, got %s", where,
			    o->allowed, got);
		else if (src == CONF_ENV)
			snprintf(err, len, "%s (--%s): expected %s, got %s",
			    where, o->name, o->allowed, got);
		else
			snprintf(err, len, "%s: %s: expected %s, got %s", where,
			    o->name, o->allowed, got);
		free(w);
		return -1;
	}
	free(r->where);
	r->where = w;
	r->src = src;
	r->text = t;
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

int
conf_read_file(conf *c, const char *path, char *err, size_t len)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *key, *val, *eq, where[512];
	size_t cap = 0;
	int no = 0, i, rc = -1;

	if (f == NULL) {
		snprintf(err, len, "config file %s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) != -1) {
		no++;
		snprintf(where, sizeof(where), "%s:%d", path, no);
		key = trim(line);
		if (*key == '\0' || *key == '#')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			snprintf(err, len,
			    "%s: expected `name = value` or a # comment, got "
			    "'%.80s'",
			    where, key);
			goto out;
		}
		*eq = '\0';
		val = trim(eq + 1);
		key = trim(key);
		if ((i = conf_find(c, key)) < 0 ||
		    (c->opts[i].flags & CONF_NOFILE)) {
			snprintf(err, len,
			    i < 0 ? "%s: unknown setting '%.80s' (the names are "
				    "gild serve's long options without the "
				    "leading --, such as max-queue; gild serve "
				    "--help lists them)"
				  : "%s: %s cannot be set in a config file",
			    where, key);
			goto out;
		}
		if (c->r[i].src == CONF_FILE &&
		    !(c->opts[i].flags & CONF_LIST)) {
			snprintf(err, len, "%s: %s given again (first on line %d)",
			    where, key, c->r[i].line);
			goto out;
		}
		if (conf_set(c, i, val, CONF_FILE, where, err, len) != 0)
			goto out;
		c->r[i].line = no;
	}
	if (ferror(f)) {
		snprintf(err, len, "config file %s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(line);
	fclose(f);
	return rc;
}

int
conf_read_env(conf *c, char *err, size_t len)
{
	char name[96], *copy, *p, *item, *save;
	const char *v;

	for (size_t i = 0; i < c->n; i++) {
		conf_env_name(&c->opts[i], name, sizeof(name));
		if ((v = getenv(name)) == NULL || *v == '\0')
			continue;
		if (!(c->opts[i].flags & CONF_LIST)) {
			if (conf_set(c, (int) i, v, CONF_ENV, name, err, len) != 0)
				return -1;
			continue;
		}
		/* A list: comma-separated. */
		if ((copy = strdup(v)) == NULL) {
			snprintf(err, len, "out of memory");
			return -1;
		}
		for (p = copy; (item = strtok_r(p, ",", &save)) != NULL;
		     p = NULL) {
			item = trim(item);
			if (*item != '\0' && conf_set(c, (int) i, item, CONF_ENV,
						 name, err, len) != 0) {
				free(copy);
				return -1;
			}
		}
		free(copy);
	}
	return 0;
}

void
conf_set_default(conf *c, int i, const char *text, const char *note)
{
	free(c->r[i].def);
	free(c->r[i].note);
	c->r[i].def = text ? strdup(text) : NULL;
	c->r[i].note = note ? strdup(note) : NULL;
}

enum conf_source
conf_source_of(const conf *c, int i, const char **where)
{
	if (where != NULL)
		*where = c->r[i].src == CONF_DEFAULT ? "default" : c->r[i].where;
	return c->r[i].src;
}

void
conf_write(const conf *c, FILE *f)
{
	char shown[64];

	fputs("# gild serve settings, as `gild serve --print-config` found "
	      "them.\n"
	      "# Precedence: flag > environment (GILD_*) > config file > "
	      "default.\n"
	      "# Save as a file and start with `gild serve --config FILE`.\n",
	    f);
	for (size_t i = 0; i < c->n; i++) {
		const conf_opt *o = &c->opts[i];
		const rec *r = &c->r[i];
		const char *def = r->def ? r->def : o->def;
		/* Lines a saved file must not set: secrets, flag-only
		 * options, and unset ones. */
		const char *off = (o->flags & (CONF_SECRET | CONF_NOFILE)) ||
					  (r->src == CONF_DEFAULT && def == NULL)
				      ? "# "
				      : "";

		fputc('\n', f);
		if (r->src == CONF_FLAG && (o->flags & CONF_NOFLAG))
			fputs("# from the command line", f);
		else if (r->src == CONF_FLAG)
			fprintf(f, "# from the flag %s", r->where);
		else if (r->src == CONF_ENV)
			fprintf(f, "# from the environment: %s", r->where);
		else if (r->src == CONF_FILE)
			fprintf(f, "# from %s", r->where);
		else if (def == NULL)
			fputs("# not set", f);
		else
			fputs("# default", f);
		if (r->src == CONF_DEFAULT && r->note != NULL)
			fprintf(f, " (%s)", r->note);
		if (o->flags & CONF_NOFILE)
			fputs(" (flag or environment only)", f);
		if ((o->flags & CONF_SECRET) && r->src != CONF_DEFAULT)
			fputs(" (hidden: put the value back to use it)", f);
		fputc('\n', f);
		if ((o->flags & CONF_LIST) && r->src != CONF_DEFAULT) {
			const conf_list *l = o->dst;
			for (size_t k = 0; k < l->n; k++)
				fprintf(f, "%s = %s\n", o->name, l->v[k]);
		} else if ((o->flags & CONF_SECRET) && r->src != CONF_DEFAULT) {
			fprintf(f, "# %s = ********\n", o->name);
		} else if (show_of(o) != NULL &&
			   (r->src != CONF_DEFAULT ||
			       (def != NULL && r->def == NULL))) {
			/* The value in its one unit, however it was given. */
			show_of(o)(o, shown, sizeof(shown));
			fprintf(f, "%s%s = %s\n", off, o->name, shown);
		} else if (r->src != CONF_DEFAULT) {
			fprintf(f, "%s%s = %s\n", off, o->name, r->text);
		} else {
			fprintf(f, "%s%s = %s\n", off, o->name, def ? def : "");
		}
	}
}

void
conf_write_help(const conf *c, FILE *f)
{
	char head[64];

	for (size_t i = 0; i < c->n; i++) {
		const conf_opt *o = &c->opts[i];
		const char *h = o->help, *nl;
		int n;

		if (o->flags & CONF_NOFLAG)
			continue;
		n = snprintf(head, sizeof(head), "  --%s%s%s", o->name,
		    o->arg ? " " : "", o->arg ? o->arg : "");
		if (n > 21)
			fprintf(f, "%s\n%22s", head, "");
		else
			fprintf(f, "%-21s ", head);
		for (;;) {
			nl = strchr(h, '\n');
			fprintf(f, "%.*s\n", nl ? (int) (nl - h) : (int) strlen(h),
			    h);
			if (nl == NULL)
				break;
			h = nl + 1;
			fprintf(f, "%22s", "");
		}
	}
}

/* The parsers. */

static int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
conf_int(const conf_opt *o, const char *text)
{
	return parse_long(text, o->min, o->max, o->dst);
}

/* A decimal number at the start of s, digits with an optional fraction
 * ("12", "1.5"; no sign, blanks or exponent): its value in *v, and where
 * the rest (a unit) starts in *unit. Returns 0, or -1 if s starts with
 * none. */
static int
number(const char *s, double *v, const char **unit)
{
	const char *p = s;
	char buf[64];

	if (!isdigit((unsigned char) *p))
		return -1;
	while (isdigit((unsigned char) *p))
		p++;
	if (*p == '.') {
		if (!isdigit((unsigned char) *++p))
			return -1;
		while (isdigit((unsigned char) *p))
			p++;
	}
	if ((size_t) (p - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t) (p - s));
	buf[p - s] = '\0';
	*v = strtod(buf, NULL);
	*unit = p;
	return 0;
}

/* A duration: a number and ms, s, m or h, or a bare number of bare_ms
 * milliseconds each. Stores milliseconds (rounded) in [o->min, o->max];
 * a duration that is not 0 but rounds to 0 ms is refused. */
static int
store_ms(const conf_opt *o, const char *s, double bare_ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	const char *u;
	double v, scale = bare_ms;
	long ms;

	if (number(s, &v, &u) != 0)
		return -1;
	if (*u != '\0') {
		size_t k = 0;
		while (k < sizeof(units) / sizeof(units[0]) &&
		       strcmp(u, units[k].unit) != 0)
			k++;
		if (k == sizeof(units) / sizeof(units[0]))
			return -1;
		scale = units[k].ms;
	}
	v *= scale;
	if (!(v <= (double) o->max + 0.5))
		return -1;
	ms = (long) (v + 0.5);
	if (ms < o->min || ms > o->max || (ms == 0 && v > 0))
		return -1;
	*(long *) o->dst = ms;
	return 0;
}

int
conf_seconds(const conf_opt *o, const char *s)
{
	return store_ms(o, s, 1000);
}

int
conf_millis(const conf_opt *o, const char *s)
{
	return store_ms(o, s, 1);
}

/* A size: a number and K, M or G (binary; "KiB", "KB" and "Ki" read as
 * K), a number and B (bytes), or a bare number of bare bytes each. Fills
 * *bytes; returns 0 or -1. */
static int
size_bytes(const char *s, double bare, double *bytes)
{
	const char *u;
	double v, scale;

	if (number(s, &v, &u) != 0)
		return -1;
	switch (*u) {
	case 'k': case 'K': scale = 1024.0; break;
	case 'm': case 'M': scale = 1024.0 * 1024; break;
	case 'g': case 'G': scale = 1024.0 * 1024 * 1024; break;
	default: scale = 0; break;
	}
	if (scale != 0) {
		u++;
		if (*u == 'i')
			u++;
		if (*u == 'B')
			u++;
	} else if (*u == 'B') {
		scale = 1;
		u++;
	} else {
		scale = bare;
	}
	if (*u != '\0')
		return -1;
	*bytes = v * scale;
	return 0;
}

/* Whether v, a non-negative double, is a whole number (below 2^53). */
static bool
whole(double v)
{
	return v < 9007199254740992.0 && v == (double) (unsigned long long) v;
}

int
conf_size(const conf_opt *o, const char *s)
{
	double b;

	if (size_bytes(s, 1, &b) != 0 || !(b >= 1) ||
	    b > (double) CONF_SIZE_MAX || !whole(b))
		return -1;
	*(size_t *) o->dst = (size_t) b;
	return 0;
}

int
conf_mib(const conf_opt *o, const char *s)
{
	double b, mib;

	if (size_bytes(s, 1024.0 * 1024, &b) != 0)
		return -1;
	mib = b / (1024.0 * 1024);
	if (!(mib >= (double) o->min) || !(mib <= (double) o->max) ||
	    !whole(mib))
		return -1;
	*(long *) o->dst = (long) mib;
	return 0;
}

/* How --print-config shows values: one unit for every duration (seconds),
 * and the largest of G, M and K that holds a size whole. */

void
conf_show_ms(const conf_opt *o, char *buf, size_t len)
{
	long ms = *(const long *) o->dst;
	int n = snprintf(buf, len, "%ld.%03ld", ms / 1000, ms % 1000);

	/* Trailing zeros of the fraction, and its point, go. */
	while (n > 0 && (size_t) n < len && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && (size_t) n < len && buf[n - 1] == '.')
		buf[--n] = '\0';
	snprintf(buf + n, len - (size_t) n, "s");
}

static void
show_bytes(unsigned long long b, char *buf, size_t len)
{
	static const char units[] = "GMK";

	for (int k = 0; k < 3 && b != 0; k++) {
		unsigned long long scale = 1ull << (10 * (3 - k));
		if (b % scale == 0) {
			snprintf(buf, len, "%llu%c", b / scale, units[k]);
			return;
		}
	}
	snprintf(buf, len, "%llu", b);
}

void
conf_show_size(const conf_opt *o, char *buf, size_t len)
{
	show_bytes(*(const size_t *) o->dst, buf, len);
}

void
conf_show_mib(const conf_opt *o, char *buf, size_t len)
{
	show_bytes((unsigned long long) *(const long *) o->dst << 20, buf, len);
}

/* The way option o's value is shown: its own, or that of its parser's
 * unit; NULL: as it was given. */
static conf_show_fn *
show_of(const conf_opt *o)
{
	if (o->show != NULL)
		return o->show;
	if (o->parse == conf_seconds || o->parse == conf_millis)
		return conf_show_ms;
	if (o->parse == conf_size)
		return conf_show_size;
	if (o->parse == conf_mib)
		return conf_show_mib;
	return NULL;
}

int
conf_choice(const conf_opt *o, const char *text)
{
	for (int k = 0; o->choices[k] != NULL; k++)
		if (strcmp(text, o->choices[k]) == 0) {
			*(int *) o->dst = k;
			return 0;
		}
	return -1;
}

int
conf_string(const conf_opt *o, const char *text)
{
	if (*text == '\0')
		return -1;
	*(const char **) o->dst = text;
	return 0;
}

int
conf_switch(const conf_opt *o, const char *text)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t k = 0; k < 4; k++) {
		if (strcmp(text, yes[k]) == 0) {
			*(bool *) o->dst = true;
			return 0;
		}
		if (strcmp(text, no[k]) == 0) {
			*(bool *) o->dst = false;
			return 0;
		}
	}
	return -1;
}

int
conf_url(const conf_opt *o, const char *text)
{
	conf_list *l = o->dst;
	const char *p = strstr(text, "://");

	if (p == NULL || p == text || p[3] == '\0' || l->n == CONF_LIST_MAX)
		return -1;
	l->v[l->n++] = text;
	return 0;
}
