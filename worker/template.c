/* template: forking workers from a process that has the app imported. */
#include "template.h"

#include <Python.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "applog.h"
#include "frame.h"
#include "worker.pb-c.h"

/* Descriptors that came with Spawn frames and wait for theirs: each Spawn
 * is sent with exactly one, in order. */
#define FDQ_MAX 64
static int fdq[FDQ_MAX];
static size_t fdq_len;

/* The workers forked and not yet reaped (standbys are not among them). */
static pid_t *kids;
static size_t nkids, kids_cap;

static void
kid_add(pid_t pid)
{
	if (nkids == kids_cap) {
		size_t cap = kids_cap ? 2 * kids_cap : 16;
		pid_t *k = realloc(kids, cap * sizeof(*k));
		if (k == NULL)
			return; /* not waited for at exit: it may die with us */
		kids = k;
		kids_cap = cap;
	}
	kids[nkids++] = pid;
}

static void
kid_remove(pid_t pid)
{
	for (size_t i = 0; i < nkids; i++)
		if (kids[i] == pid) {
			kids[i] = kids[--nkids];
			return;
		}
}

/* How long the template waits at exit for its workers' stop hooks. */
#define KIDS_WAIT_MS 30000

/* Waits, without reaping them, until every worker this template forked
 * has exited (KIDS_WAIT_MS at most): the front end closed the sockets of
 * all of them, and they run the app's stop hooks before they exit, which
 * their PDEATHSIG would cut short if the template went first. Their
 * zombies go to gild, the subreaper, which reaps them. */
static void
wait_kids(int sfd)
{
	for (int waited = 0; nkids > 0 && waited < KIDS_WAIT_MS;) {
		struct pollfd pfd = {sfd, POLLIN, 0};
		struct signalfd_siginfo ssi;

		for (size_t i = 0; i < nkids;) {
			siginfo_t si = {0};
			if (waitid(P_PID, (id_t) kids[i], &si,
				WEXITED | WNOHANG | WNOWAIT) == -1 ||
			    si.si_pid != 0)
				kids[i] = kids[--nkids]; /* gone */
			else
				i++;
		}
		if (nkids == 0)
			break;
		if (poll(&pfd, 1, 100) > 0)
			while (read(sfd, &ssi, sizeof(ssi)) == sizeof(ssi))
				;
		waited += 100;
	}
}

static void
tlog(const char *fmt, const char *arg)
{
	fprintf(stderr, "gild-worker[template]: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
}

/* Reads exactly len bytes of the stream, keeping any descriptors that come
 * with them. Returns 0, 1 on EOF before any byte, or -1. */
static int
recv_full(int ctl, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		char cbuf[CMSG_SPACE(sizeof(int) * 8)];
		struct iovec iov = {buf + got, len - got};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
		    .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
		ssize_t n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && got == 0 ? 1 : -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
		     c = CMSG_NXTHDR(&mh, c)) {
			size_t nfd;
			if (c->cmsg_level != SOL_SOCKET ||
			    c->cmsg_type != SCM_RIGHTS)
				continue;
			nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < nfd; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
				    sizeof(int));
				if (fdq_len < FDQ_MAX)
					fdq[fdq_len++] = fd;
				else
					close(fd);
			}
		}
		got += (size_t) n;
	}
	return 0;
}

static int
send_msg(int ctl, const Gild__Worker__V1__FromWorker *m)
{
	uint8_t buf[64];
	size_t n = gild__worker__v1__from_worker__get_packed_size(m);

	if (n > sizeof(buf))
		return -1;
	gild__worker__v1__from_worker__pack(m, buf);
	return frame_write(ctl, buf, n) == 0 ? 0 : -1;
}

/* Reaps every child that has ended and reports each. */
static int
report_exits(int ctl)
{
	Gild__Worker__V1__FromWorker m = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__Worker__V1__Exited ex = GILD__WORKER__V1__EXITED__INIT;
	int status;
	pid_t pid;

	m.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_EXITED;
	m.exited = &ex;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		kid_remove(pid);
		ex.pid = pid;
		ex.wait_status = status;
		if (send_msg(ctl, &m) != 0)
			return -1;
	}
	return 0;
}

/* Forks a worker, or (standby) a standby template. Returns the child's
 * pid in the parent, 0 in the child, -1 on failure. The child keeps none
 * of the descriptors queued for later requests, nor ctl. */
static pid_t
fork_child(int ctl, int sfd, bool standby)
{
	pid_t parent = getpid();
	pid_t pid;
	sigset_t none;

	PyOS_BeforeFork();
	pid = fork();
	if (pid != 0) {
		PyOS_AfterFork_Parent();
		return pid;
	}
	PyOS_AfterFork_Child();
	nkids = 0; /* the template's, not this child's */
	close(ctl);
	for (size_t i = 0; i < fdq_len; i++)
		close(fdq[i]);
	fdq_len = 0;
	/* A standby outlives the template it was forked from (gild, the
	 * subreaper, adopts it) and, like it, exits when gild closes its
	 * socket; it keeps SIGCHLD blocked for its signalfd (sfd, which
	 * reads the signals of the process that reads it). */
	if (standby)
		return 0;
	/* The worker dies with the template, which dies with the front end. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(1);
	close(sfd);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	return 0;
}

/* In a forked child: its own stdout and stderr (out[0], out[1]; -1: it
 * keeps the template's), whose reader is told its pid. */
static void
own_output(const int out[2])
{
	if (out[0] == -1)
		return;
	if (dup2(out[0], 1) == -1 || dup2(out[1], 2) == -1)
		_exit(1);
	close(out[0]);
	close(out[1]);
	applog_announce();
}

void
template_run(int ctl, bool app_logs, int *fd, int *chan, char *slot,
    size_t slotlen)
{
	Gild__Worker__V1__FromWorker out = GILD__WORKER__V1__FROM_WORKER__INIT;
	Gild__Worker__V1__Spawned sp = GILD__WORKER__V1__SPAWNED__INIT;
	sigset_t chld;
	int sfd;

	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	if ((sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) == -1) {
		tlog("signalfd: %s", strerror(errno));
		_exit(1);
	}
	out.body_case = GILD__WORKER__V1__FROM_WORKER__BODY_SPAWNED;
	out.spawned = &sp;
	for (;;) {
		struct pollfd pfd[2] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}};
		Gild__Worker__V1__ToWorker *m;
		uint8_t hdr[FRAME_HEADER_LEN], *buf;
		size_t len, nfd;
		int rc, wfd, wchan, wout[2] = {-1, -1};
		bool standby;
		pid_t pid;

		Py_BEGIN_ALLOW_THREADS
		rc = poll(pfd, 2, -1);
		Py_END_ALLOW_THREADS
		if (rc == -1 && errno != EINTR) {
			tlog("poll: %s", strerror(errno));
			_exit(1);
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			if (report_exits(ctl) != 0) {
				/* The front end is gone (a stop: its
				 * standby or a worker exited first). */
				wait_kids(sfd);
				_exit(1);
			}
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if ((rc = recv_full(ctl, hdr, sizeof(hdr))) != 0) {
			wait_kids(sfd); /* the front end closed: done */
			_exit(rc == 1 ? 0 : 1);
		}
		len = frame_header_decode(hdr);
		if (len > 1024 || (buf = malloc(len ? len : 1)) == NULL ||
		    recv_full(ctl, buf, len) != 0) {
			tlog("%s", "bad frame from the front end");
			_exit(1);
		}
		m = gild__worker__v1__to_worker__unpack(NULL, len, buf);
		free(buf);
		if (m == NULL ||
		    m->body_case != GILD__WORKER__V1__TO_WORKER__BODY_SPAWN) {
			tlog("%s", "malformed spawn request");
			_exit(1);
		}
		/* A worker's socket and channel, or a standby's socket; then,
		 * with app_logs, its stdout and stderr. */
		standby = m->spawn->standby;
		nfd = (standby ? 1 : 2) + (app_logs ? 2 : 0);
		if (fdq_len < nfd) {
			tlog("%s", "malformed spawn request");
			_exit(1);
		}
		wfd = fdq[0];
		wchan = standby ? -1 : fdq[1];
		if (app_logs) {
			wout[0] = fdq[nfd - 2];
			wout[1] = fdq[nfd - 1];
		}
		fdq_len -= nfd;
		memmove(fdq, fdq + nfd, fdq_len * sizeof(int));
		sp.slot = m->spawn->slot;
		sp.standby = standby;
		snprintf(slot, slotlen, "%u", (unsigned) m->spawn->slot);
		gild__worker__v1__to_worker__free_unpacked(m, NULL);
		pid = fork_child(ctl, sfd, standby);
		if (pid == 0)
			own_output(wout);
		if (pid == 0 && standby) {
			ctl = wfd; /* the child: a template on its own socket */
			continue;
		}
		if (pid == 0) {
			*fd = wfd;
			*chan = wchan;
			return; /* the child: serve as a worker */
		}
		close(wfd);
		if (wchan != -1)
			close(wchan);
		for (int i = 0; i < 2; i++)
			if (wout[i] != -1)
				close(wout[i]);
		sp.pid = pid > 0 ? pid : 0; /* 0: the fork failed */
		if (pid > 0 && !standby)
			kid_add(pid);
		if (send_msg(ctl, &out) != 0)
			_exit(1);
	}
}
