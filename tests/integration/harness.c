/* Starts the real gild binary for a test and stops it by pid. */
#include "harness.h"
#include "../test_main.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *
build_dir(void)
{
	const char *b = getenv("B");
	return b && *b ? b : "build";
}

double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

const char *
value_str(const gild_value *v)
{
	const char *s = gild_value_str(v, NULL);

	return s != NULL ? s : "(not a string)";
}

struct bounded {
	void (*fn)(void *);
	void *arg;
	atomic_bool done;
};

static void *
bounded_main(void *arg)
{
	struct bounded *b = arg;

	b->fn(b->arg);
	atomic_store(&b->done, true);
	return NULL;
}

int
run_bounded(void (*fn)(void *), void *arg, int timeout_ms, const char *what)
{
	/* Owned by the thread if fn never returns. */
	struct bounded *b = calloc(1, sizeof(*b));
	pthread_t t;

	if (b == NULL || (b->fn = fn, b->arg = arg,
			     atomic_init(&b->done, false),
			     pthread_create(&t, NULL, bounded_main, b) != 0)) {
		free(b);
		fn(arg);
		return 0;
	}
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (atomic_load(&b->done)) {
			pthread_join(t, NULL);
			free(b);
			return 0;
		}
		usleep(10000);
	}
	fprintf(stderr, "%s did not return in %d ms (nng 1.5.2 deadlock, nng "
			"#1543): going on without it\n",
	    what, timeout_ms);
	pthread_detach(t);
	return -1;
}

static void
close_socket(void *arg)
{
	nng_close(*(nng_socket *) arg);
}

int
close_bounded(nng_socket s, int timeout_ms)
{
	static nng_socket sock; /* outlives us if the close never returns */

	sock = s;
	return run_bounded(close_socket, &sock, timeout_ms, "nng_close");
}

static void
close_client(void *c)
{
	gild_close(c);
}

int
client_close_bounded(gild_client *c, int timeout_ms)
{
	return run_bounded(close_client, c, timeout_ms, "gild_close");
}

bool
pid_alive(pid_t pid)
{
	char path[64], state = 0;
	FILE *f;

	if (kill(pid, 0) != 0)
		return false;
	/* A zombie is not alive: it has exited and waits to be reaped. */
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fscanf(f, "%*d %*s %c", &state) != 1)
		state = 0;
	fclose(f);
	return state != 'Z';
}

void
proc_dump_log(const gild_proc *p)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(p->log, "r");

	if (f == NULL)
		return;
	fprintf(stderr, "---- gild log (%s) ----\n", p->log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end of gild log ----\n");
	fclose(f);
}

int
proc_workers(const gild_proc *p, pid_t *pids, int max)
{
	enum { MAXP = 4096 };
	static pid_t pid[MAXP], ppid[MAXP];
	char path[300], line[512];
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0, np = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL && np < MAXP) {
		int pp = 0;
		pid_t id = (pid_t) atoi(e->d_name);
		FILE *f;
		if (id <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/status", (int) id);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "PPid: %d", &pp) == 1)
				break;
		fclose(f);
		pid[np] = id;
		ppid[np++] = (pid_t) pp;
	}
	closedir(d);
	/* Descendants of gild: its children (the template, exec'd workers)
	 * and theirs (forked workers), found breadth first. */
	for (int k = -1; k < n; k++) {
		pid_t parent = k < 0 ? p->pid : pids[k];
		for (int i = 0; i < np && n < max; i++)
			if (ppid[i] == parent && pid_alive(pid[i]))
				pids[n++] = pid[i];
	}
	return n;
}

pid_t
pid_parent(pid_t pid)
{
	char path[64], stat[512], *paren;
	size_t len;
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	len = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[len] = '\0';
	/* "pid (comm) state ppid ...": comm ends at the last ')'. */
	if ((paren = strrchr(stat, ')')) == NULL ||
	    sscanf(paren + 1, " %*c %d", &ppid) != 1)
		return 0;
	return (pid_t) ppid;
}

pid_t
proc_template(const gild_proc *p)
{
	pid_t kids[64], found = 0;
	int n = proc_workers(p, kids, 64), hits = 0;

	for (int i = 0; i < n; i++) {
		char path[64], buf[4096];
		size_t len;
		FILE *f;

		if (pid_parent(kids[i]) != p->pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) kids[i]);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		len = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		/* One of its NUL-separated arguments is "--template". */
		for (size_t j = 0; j + 10 <= len; j++) {
			if ((j == 0 || buf[j - 1] == '\0') &&
			    memcmp(buf + j, "--template", 10) == 0 &&
			    (j + 10 == len || buf[j + 10] == '\0')) {
				found = kids[i];
				hits++;
				break;
			}
		}
	}
	return hits == 1 ? found : 0;
}

bool
test_free_threaded(void)
{
	const char *r = getenv("GILD_TEST_RUNTIME");

	return r != NULL && strcmp(r, "free-threaded") == 0;
}

int
test_processes(int n)
{
	return test_free_threaded() ? 1 : n;
}

bool
skip_unless_process(const char *why)
{
	if (!test_free_threaded())
		return false;
	test_skip(why);
	return true;
}

int
proc_start(gild_proc *p, const char *app, int workers, const char *listen,
    const char *const *extra)
{
	char bin[256], nworkers[16], listen_url[300], line[1024];
	const char *argv[40];
	int out[2], argc = 0, logfd;
	size_t used = 0;
	double deadline;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "/tmp/gild-test-XXXXXX");
	if (mkdtemp(p->dir) == NULL)
		return -1;
	snprintf(p->log, sizeof(p->log), "%s/gild.log", p->dir);
	snprintf(bin, sizeof(bin), "%s/gild", build_dir());
	snprintf(nworkers, sizeof(nworkers), "%d", workers);
	if (listen == NULL)
		snprintf(listen_url, sizeof(listen_url), "tcp://127.0.0.1:0");
	else
		snprintf(listen_url, sizeof(listen_url), listen, p->dir);
	argv[argc++] = bin;
	argv[argc++] = "serve";
	argv[argc++] = app;
	argv[argc++] = "--listen";
	argv[argc++] = listen_url;
	if (test_free_threaded()) {
		argv[argc++] = "--runtime";
		argv[argc++] = "free-threaded";
		argv[argc++] = "--workers";
		argv[argc++] = "1";
		argv[argc++] = "--threads";
	} else {
		argv[argc++] = "--workers";
	}
	argv[argc++] = nworkers;
	for (int i = 0; extra && extra[i] && argc < 38; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	if (pipe(out) != 0)
		return -1;
	logfd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	p->pid = fork();
	if (p->pid == 0) {
		/* If the test program dies, gild gets SIGTERM and stops its
		 * workers: a crashed or timed-out test leaves no server. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(out[1], 1);
		dup2(logfd, 2);
		close(out[0]);
		execv(bin, (char *const *) argv);
		_exit(127);
	}
	close(out[1]);
	close(logfd);
	/* Read stdout lines until "gild: ready". */
	deadline = now_s() + 60;
	while (now_s() < deadline) {
		struct pollfd pfd = {.fd = out[0], .events = POLLIN};
		ssize_t r;
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		r = read(out[0], line + used, sizeof(line) - 1 - used);
		if (r <= 0)
			break; /* gild exited */
		used += (size_t) r;
		line[used] = '\0';
		char *nl;
		while ((nl = strchr(line, '\n')) != NULL) {
			*nl = '\0';
			if (strncmp(line, "gild: listening on ", 19) == 0 &&
			    p->url[0] == '\0')
				snprintf(p->url, sizeof(p->url), "%s", line + 19);
			if (strncmp(line, "gild: ready", 11) == 0) {
				close(out[0]);
				return 0;
			}
			used -= (size_t) (nl + 1 - line);
			memmove(line, nl + 1, used + 1);
		}
	}
	close(out[0]);
	fprintf(stderr, "gild did not become ready\n");
	proc_dump_log(p);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
	return -1;
}

/* What gild logs when its exit watchdog ends a close that hung
 * (server/server.c, exit_watchdog). */
#define CLOSE_HUNG "nng did not close within 5 s"

bool
proc_log_has(const gild_proc *p, const char *text)
{
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen(p->log, "r");

	if (f == NULL)
		return false;
	while (!found && getline(&line, &cap, f) != -1)
		found = strstr(line, text) != NULL;
	free(line);
	fclose(f);
	return found;
}

int
proc_log_read(const gild_proc *p, char ***lines, size_t *n)
{
	char *line = NULL, **all = NULL;
	size_t cap = 0, len = 0, room = 0;
	ssize_t got;
	FILE *f = fopen(p->log, "r");

	*lines = NULL;
	*n = 0;
	if (f == NULL)
		return -1;
	while ((got = getline(&line, &cap, f)) != -1) {
		if (got > 0 && line[got - 1] == '\n')
			line[got - 1] = '\0';
		if (len == room) {
			char **more = realloc(all, (room ? 2 * room : 256) *
						       sizeof(*all));
			if (more == NULL)
				break;
			all = more;
			room = room ? 2 * room : 256;
		}
		if ((all[len] = strdup(line)) == NULL)
			break;
		len++;
	}
	free(line);
	fclose(f);
	*lines = all;
	*n = len;
	return 0;
}

void
proc_log_free(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

long long
log_stamp_ms(const char *line)
{
	const char *t = strstr(line, "time=");
	struct tm tm = {0};
	int ms;

	if (t != NULL)
		t += 5;
	else if ((t = strstr(line, "\"time\":\"")) != NULL)
		t += 8;
	else
		return -1;
	if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
		&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long) timegm(&tm) * 1000 + ms;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int
proc_stop(gild_proc *p)
{
	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	return proc_wait(p);
}

int
proc_wait(gild_proc *p)
{
	pid_t workers[64];
	int n, rc = -1;
	double deadline;

	if (p->pid <= 0)
		return -1;
	n = proc_workers(p, workers, 64);
	deadline = now_s() + 30;
	while (now_s() < deadline) {
		pid_t r = waitpid(p->pid, &p->exit_status, WNOHANG);
		if (r == p->pid) {
			rc = 0;
			break;
		}
		usleep(10000);
	}
	if (rc != 0) {
		fprintf(stderr, "gild did not exit within 30 s: killing it\n");
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->exit_status, 0);
	}
	p->pid = 0;
	if (rc == 0 && !(WIFEXITED(p->exit_status) &&
			 WEXITSTATUS(p->exit_status) == 0)) {
		fprintf(stderr, "gild exited with status 0x%x\n", p->exit_status);
		rc = -1;
	}
	/* No orphans: every worker it had must be gone (give the kernel a
	 * moment to reap what init adopted). */
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 100 && pid_alive(workers[i]); k++)
			usleep(10000);
		if (pid_alive(workers[i])) {
			fprintf(stderr, "worker %d outlived gild\n",
			    (int) workers[i]);
			kill(workers[i], SIGKILL);
			rc = -1;
		}
	}
	/* gild exits with the status it meant to when nng's close hangs (its
	 * 5 s watchdog): a hang all the same, which exit 0 would hide. */
	if (proc_log_has(p, CLOSE_HUNG)) {
		fprintf(stderr, "gild's close hung: '%s' in its log\n",
		    CLOSE_HUNG);
		rc = -1;
	}
	if (rc != 0)
		proc_dump_log(p);
	nftw(p->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return rc;
}
