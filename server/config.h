/* gild serve's settings from three sources, each option defined once in a
 * table: command-line flags, GILD_* environment variables and a config
 * file of `name = value` lines. Precedence: flag > env > file > default. */
#ifndef GILD_CONFIG_H
#define GILD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum conf_source { CONF_DEFAULT, CONF_FILE, CONF_ENV, CONF_FLAG };

/* Flags of an option. */
#define CONF_LIST 1   /* repeatable: the values of the highest source win
			 together (flags and file lines repeat, the env var
			 separates them with commas); dst is a conf_list */
#define CONF_SECRET 2 /* never printed: --print-config masks it */
#define CONF_NOFILE 4 /* flag and env only (--config itself) */
#define CONF_NOFLAG 8 /* not a --flag (the APP positional argument) */

typedef struct conf_opt conf_opt;

/* Checks text and stores it at o->dst; returns 0, or -1 when text is not
 * one of o->allowed. Text lives as long as the conf that passes it (until
 * conf_fini), so pointers into it may be stored. */
typedef int conf_parse_fn(const conf_opt *o, const char *text);

/* Writes the value at o->dst into buf (len bytes) in the one form
 * --print-config shows it: "1.5s", "64M". */
typedef void conf_show_fn(const conf_opt *o, char *buf, size_t len);

struct conf_opt {
	const char *name;     /* long option and file key; the env var is
				 GILD_ and the name upper-cased, - as _ */
	const char *arg;      /* its value in --help ("N"); NULL: a switch,
				 --name alone means true */
	conf_parse_fn *parse;
	void *dst;            /* where parse stores the value */
	long min, max;        /* conf_int: bounds; conf_seconds,
				 conf_millis: in ms; conf_mib: in MiB */
	const char *const *choices; /* conf_choice: NULL-ended; stores the
				       index as an int */
	const char *allowed;  /* what parse accepts, for error messages:
				 "a whole number from 1 to 4096" */
	const char *def;      /* the default as --print-config shows it, or
				 NULL: unset (conf_set_default changes it) */
	int flags;            /* CONF_* */
	const char *help;     /* --help text; "\n" starts another line */
	conf_show_fn *show;   /* how --print-config shows the value; NULL:
				 conf_show_ms for conf_seconds and
				 conf_millis, conf_show_size for conf_size,
				 conf_show_mib for conf_mib, and as given
				 for the other parsers */
};

#define CONF_LIST_MAX 32
typedef struct conf_list {
	const char *v[CONF_LIST_MAX];
	size_t n;
} conf_list;

/* The largest conf_size: 2046M (nng and protobuf-c sizes stay in int). */
#define CONF_SIZE_MAX ((1ul << 31) - (1ul << 21))

/* The parsers for conf_opt.parse; dst types in brackets. Durations are a
 * number with ms, s, m or h ("1500ms", "0.5s", "2m"), or a bare number in
 * the option's own unit; sizes a number with K, M or G (binary: 1K is
 * 1024; "KiB" and "KB" read as K) or B, or a bare number in the option's
 * own unit. Numbers may have a fraction ("1.5G"), not a sign. */
conf_parse_fn conf_int;     /* [long] in [min, max] */
conf_parse_fn conf_seconds; /* [long] milliseconds in [min, max]; bare:
			       seconds ("1.5") */
conf_parse_fn conf_millis;  /* [long] milliseconds in [min, max]; bare:
			       milliseconds */
conf_parse_fn conf_size;    /* [size_t] whole bytes from 1 to
			       CONF_SIZE_MAX; bare: bytes */
conf_parse_fn conf_mib;     /* [long] whole MiB in [min, max]; bare: MiB */
conf_parse_fn conf_choice;  /* [int] index into choices */
conf_parse_fn conf_string;  /* [const char *] anything but empty */
conf_parse_fn conf_switch;  /* [bool] true/false, yes/no, on/off, 1/0 */
conf_parse_fn conf_url;     /* [conf_list] append a URL (has "://") */

/* The shows for conf_opt.show: durations in seconds ("1.5s", "0s"),
 * sizes in the largest of G, M and K that holds them whole ("64M",
 * "1000" bytes). */
conf_show_fn conf_show_ms;   /* [long] milliseconds */
conf_show_fn conf_show_size; /* [size_t] bytes */
conf_show_fn conf_show_mib;  /* [long] MiB */

typedef struct conf conf;

/* Settings over the n options of opts (which must outlive it). Returns 0
 * or -ENOMEM. */
int conf_init(conf **out, const conf_opt *opts, size_t n);
/* Frees every string the parsers were given. Accepts NULL. */
void conf_fini(conf *c);

/* The index of the option called name, or -1. */
int conf_find(const conf *c, const char *name);

/* Sources must be applied lowest first (file, env, flags): each value is
 * checked and stored, replacing what a lower source set. */

/* Reads the config file at path: blank lines, lines starting with #
 * (after blanks), and `name = value` lines (blanks around both are
 * dropped; the value is taken as is, no quotes, no trailing comments).
 * Returns 0, or -1 with why in err ("FILE:LINE: ..."): the file cannot be
 * read, a line is not name = value, an unknown name, a value not allowed,
 * an option given twice that is not CONF_LIST. */
int conf_read_file(conf *c, const char *path, char *err, size_t len);

/* Reads GILD_<NAME> for each option (empty counts as unset). Returns 0, or
 * -1 with why in err. */
int conf_read_env(conf *c, char *err, size_t len);

/* Sets option i from src; where names it for --print-config and errors
 * ("--workers", "GILD_WORKERS", "gild.conf:3"). Returns 0, or -1 with why
 * in err. */
int conf_set(conf *c, int i, const char *text, enum conf_source src,
    const char *where, char *err, size_t len);

/* Changes the default --print-config shows for option i (a value worked
 * out at start, such as the number of usable CPUs; NULL: none), with a
 * note on where it came from (or NULL). Copies both. */
void conf_set_default(conf *c, int i, const char *text, const char *note);

/* Where option i's value came from, and its name there: "--workers",
 * "GILD_WORKERS", "gild.conf:3", or "default". Borrowed from c. */
enum conf_source conf_source_of(const conf *c, int i, const char **where);

/* The env var of an option: "GILD_MAX_QUEUE" for "max-queue". */
void conf_env_name(const conf_opt *o, char *out, size_t len);

/* Writes the effective settings in the config file's own format, each
 * with where it came from as a comment line; secrets are masked and
 * commented out, unset options commented out. Durations and sizes are
 * shown in one unit (conf_opt.show), whatever unit they came in. */
void conf_write(const conf *c, FILE *f);

/* Writes the options' part of --help: "  --name ARG  help" lines. */
void conf_write_help(const conf *c, FILE *f);

#endif
