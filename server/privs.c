/* --user: dropping root after binding, for the server and its workers. */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
privs_lookup(const char *name, privs_user *out, char *err, size_t len)
{
	struct passwd pw, *found = NULL;
	char buf[4096], *end;
	unsigned long n;
	int rc;

	rc = getpwnam_r(name, &pw, buf, sizeof(buf), &found);
	if (found == NULL && rc == 0 && *name >= '0' && *name <= '9') {
		errno = 0;
		n = strtoul(name, &end, 10);
		if (errno == 0 && *end == '\0' && n < (uid_t) -1)
			rc = getpwuid_r((uid_t) n, &pw, buf, sizeof(buf), &found);
	}
	if (found == NULL) {
		snprintf(err, len,
		    "--user %s: %s", name,
		    rc != 0 ? strerror(rc)
			    : "no such user (expected a user name or uid "
			      "in the user database, such as nobody)");
		return -1;
	}
	if (strlen(pw.pw_name) >= sizeof(out->name) ||
	    strlen(pw.pw_dir) >= sizeof(out->home)) {
		snprintf(err, len, "--user %s: name or home folder too long",
		    name);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	strcpy(out->name, pw.pw_name);
	strcpy(out->home, pw.pw_dir);
	out->uid = pw.pw_uid;
	out->gid = pw.pw_gid;
	if (privs_needed(out) && geteuid() != 0) {
		snprintf(err, len,
		    "--user %s: gild runs as uid %d, not root, so it cannot "
		    "become another user (start it as root, or leave --user "
		    "out)",
		    name, (int) geteuid());
		return -1;
	}
	return 0;
}

bool
privs_needed(const privs_user *u)
{
	return getuid() != u->uid || geteuid() != u->uid;
}

int
privs_drop(const privs_user *u, char *err, size_t len)
{
	const char *step;

	if (!privs_needed(u))
		return 0;
	/* Groups first and uid last: each step needs root's rights. */
	step = "initgroups";
	if (initgroups(u->name, u->gid) == -1)
		goto fail;
	step = "setgid";
	if (setgid(u->gid) == -1)
		goto fail;
	step = "setuid";
	if (setuid(u->uid) == -1)
		goto fail;
	if (getuid() != u->uid || geteuid() != u->uid || getgid() != u->gid ||
	    getegid() != u->gid) {
		snprintf(err, len, "--user %s: ids did not change", u->name);
		return -1;
	}
	if (u->uid != 0 && (setuid(0) != -1 || seteuid(0) != -1)) {
		snprintf(err, len, "--user %s: root could be regained after "
				   "setuid", u->name);
		return -1;
	}
	if (setenv("HOME", u->home, 1) == -1 ||
	    setenv("USER", u->name, 1) == -1 ||
	    setenv("LOGNAME", u->name, 1) == -1) {
		step = "setenv";
		goto fail;
	}
	return 0;
fail:
	snprintf(err, len, "--user %s: %s: %s", u->name, step, strerror(errno));
	return -1;
}
