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

int
launch_worker(const launch_config *cfg, int slot, const char *const *extra,
    int *fd, int *chan, pid_t *pid_out)
{
	char fdarg[] = "3", mem[24], threads[16];
	const char *argv[20] = {cfg->worker_bin, "--fd", fdarg, "--app",
	    cfg->app, "--memory-limit", mem, "--threads", threads};
	int argc = 9, sv[2], ch[2] = {-1, -1}, out[2] = {-1, -1};
	char **env;
	pid_t pid;

	if (cfg->allow_pickle)
		argv[argc++] = "--allow-pickle";
	argc += log_args(cfg, argv + argc);
	for (; *extra != NULL && argc < 17; extra++)
		argv[argc++] = *extra;
	if (chan != NULL) {
		argv[argc++] = "--chan";
		argv[argc++] = "4";
	}
	argv[argc] = NULL;
	snprintf(mem, sizeof(mem), "%llu",
	    (unsigned long long) cfg->memory_mib);
	snprintf(threads, sizeof(threads), "%d",
	    cfg->threads > 0 ? cfg->threads : 1);
	if ((env = worker_environ()) == NULL)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		int e = errno;
		free(env);
		return -e;
	}
	if (chan != NULL && launch_chan_pair(ch) != 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		free(env);
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
launch_startup_error(const uint8_t *data, size_t len, char **msg, char **tb)
{
	Gild__Worker__V1__StartupError *e;

	e = gild__worker__v1__startup_error__unpack(NULL, len, data);
	if (e != NULL && e->error != NULL) {
		free(*msg);
		free(*tb);
		*msg = strdup(e->error->message);
		*tb = strdup(e->error->traceback);
	}
	if (e != NULL)
		gild__worker__v1__startup_error__free_unpacked(e, NULL);
}
