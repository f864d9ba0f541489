/* launch: fork + exec of gild-worker processes, and how they ended. */
#include "launch.h"

#include "applog.h"

#include "worker.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int
launch_chan_pair(int ch[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ch) == -1
		   ? -errno
		   : 0;
}

extern char **environ;

/* Whether environment entry e is one that systemd gave gild alone: a
 * worker (or an app library) that saw NOTIFY_SOCKET could tell systemd
 * the service is ready before it is, or feed its watchdog for a wedged
 * front end. */
static bool
for_gild_only(const char *e)
{
	static const char *const names[] = {"NOTIFY_SOCKET=",
	    "WATCHDOG_USEC=", "WATCHDOG_PID="};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(e, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

/* A worker's environment: gild's, less for_gild_only's. A new array of
 * environ's strings (borrowed), or NULL. */
static char **
worker_environ(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	if ((env = malloc((n + 1) * sizeof(*env))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!for_gild_only(environ[i]))
			env[k++] = environ[i];
	env[k] = NULL;
	return env;
}

/* The arguments that tell a gild-worker how its output is read, into
 * argv (2 at most); returns how many. */
static int
log_args(const launch_config *cfg, const char **argv)
{
	int n = 0;

	if (cfg->logs != NULL)
		argv[n++] = "--app-logs";
	if (cfg->logs != NULL && !cfg->log_handler)
		argv[n++] = "--no-log-handler";
	return n;
}

/* cfg's gild-worker command line with the NULL-terminated extra
 * arguments (6 at most) and, with chan, --chan 4: a new array of borrowed
 * strings (mem and threads are the caller's buffers), or NULL. */
static const char **
worker_argv(const launch_config *cfg, const char *const *extra, bool chan,
    char *mem, size_t memlen, char *threads, size_t threadslen)
{
	/* 10 fixed, --venv, 2 for the logs, 6 extra, --chan and NULL: 23 at
	 * most, and 2 for each --env and --python-path. */
	size_t max = 23 + 2 * (cfg->nworker_env + cfg->npython_path), argc = 0;
	const char **argv = malloc(max * sizeof(*argv));

	if (argv == NULL)
		return NULL;
	snprintf(mem, memlen, "%llu", (unsigned long long) cfg->memory_mib);
	snprintf(threads, threadslen, "%d", cfg->threads > 0 ? cfg->threads : 1);
	argv[argc++] = cfg->worker_bin;
	argv[argc++] = "--fd";
	argv[argc++] = "3";
	argv[argc++] = "--app";
	argv[argc++] = cfg->app;
	argv[argc++] = "--memory-limit";
	argv[argc++] = mem;
	argv[argc++] = "--threads";
	argv[argc++] = threads;
	if (cfg->allow_pickle)
		argv[argc++] = "--allow-pickle";
	argc += (size_t) log_args(cfg, argv + argc);
	if (cfg->venv != NULL) {
		argv[argc++] = "--venv";
		argv[argc++] = cfg->venv;
	}
	for (size_t i = 0; i < cfg->npython_path; i++) {
		argv[argc++] = "--python-path";
		argv[argc++] = cfg->python_path[i];
	}
	for (size_t i = 0; i < cfg->nworker_env; i++) {
		argv[argc++] = "--env";
		argv[argc++] = cfg->worker_env[i];
	}
	for (size_t i = 0; *extra != NULL && i < 6; i++, extra++)
		argv[argc++] = *extra;
	if (chan) {
		argv[argc++] = "--chan";
		argv[argc++] = "4";
	}
	argv[argc] = NULL;
	return argv;
}

int
launch_worker(const launch_config *cfg, int slot, const char *const *extra,
    int *fd, int *chan, pid_t *pid_out)
{
	char mem[24], threads[16];
	const char **argv;
	int sv[2], ch[2] = {-1, -1}, out[2] = {-1, -1};
	char **env;
	pid_t pid;

	if ((argv = worker_argv(cfg, extra, chan != NULL, mem, sizeof(mem),
		 threads, sizeof(threads))) == NULL)
		return -ENOMEM;
	if ((env = worker_environ()) == NULL) {
		free(argv);
		return -ENOMEM;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		int e = errno;
		free(env);
		free(argv);
		return -e;
	}
	if (chan != NULL && launch_chan_pair(ch) != 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		free(env);
		free(argv);
		return -e;
	}
	if (cfg->logs != NULL) {
		int rc = applog_open(cfg->logs, slot, 0, out);
		if (rc != 0) {
			close(sv[0]);
			close(sv[1]);
			if (chan != NULL) {
				close(ch[0]);
				close(ch[1]);
			}
			free(env);
			free(argv);
			return rc;
		}
	}
	pid = fork();
	if (pid == -1) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		if (chan != NULL) {
			close(ch[0]);
			close(ch[1]);
		}
		if (out[0] != -1) {
			close(out[0]);
			close(out[1]);
		}
		free(env);
		free(argv);
		return -e;
	}
	if (pid == 0) {
		/* Child: async-signal-safe calls only until exec. */
		sigset_t none;
		int devnull;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		/* Own process group: a terminal's Ctrl-C reaches the server,
		 * which stops the workers in order. */
		setpgid(0, 0);
		/* Output first: out[] may sit on fds 3 and 4. */
		if (out[0] != -1 && (dup2(out[0], 1) == -1 ||
					dup2(out[1], 2) == -1))
			_exit(127);
		if (out[0] == -1)
			dup2(2, 1); /* app prints go to the log, not our stdout */
		/* Out of the way of fds 3 and 4 first, then into place. */
		if ((sv[1] = fcntl(sv[1], F_DUPFD, 5)) == -1 ||
		    dup2(sv[1], 3) == -1)
			_exit(127);
		if (chan != NULL && ((ch[1] = fcntl(ch[1], F_DUPFD, 5)) == -1 ||
					 dup2(ch[1], 4) == -1))
			_exit(127);
		if ((devnull = open("/dev/null", O_RDONLY)) != -1)
			dup2(devnull, 0);
		close_range(chan != NULL ? 5 : 4, ~0U, 0);
		execve(cfg->worker_bin, (char *const *) argv, env);
		_exit(127);
	}
	free(env);
	free(argv);
	close(sv[1]);
	if (out[0] != -1) {
		close(out[0]);
		close(out[1]);
	}
	*fd = sv[0];
	if (chan != NULL) {
		close(ch[1]);
		*chan = ch[0];
	}
	*pid_out = pid;
	return 0;
}

char *
launch_describe_exit(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	return buf;
}

struct timeval
launch_backoff(uint32_t n)
{
	long ms = n <= 1 ? 0 : 100L << (n - 2 < 16 ? n - 2 : 16);
	struct timeval tv;

	if (ms > 5000)
		ms = 5000;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

void
launch_startup_error(const uint8_t *data, size_t len, char **msg, char **tb,
    bool *retry)
{
	Gild__Worker__V1__StartupError *e;

	e = gild__worker__v1__startup_error__unpack(NULL, len, data);
	if (e != NULL && e->error != NULL) {
		free(*msg);
		free(*tb);
		*msg = strdup(e->error->message);
		*tb = strdup(e->error->traceback);
		*retry = e->retry;
	}
	if (e != NULL)
		gild__worker__v1__startup_error__free_unpacked(e, NULL);
}
