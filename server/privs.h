/* --user: the account gild becomes after binding its listeners, so the
 * server and every worker it starts run without root's rights. */
#ifndef GILD_PRIVS_H
#define GILD_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct privs_user {
	char name[64];
	uid_t uid;
	gid_t gid;    /* the user's primary group */
	char home[256];
} privs_user;

/* Looks name (a user name, or a numeric uid with an entry in the user
 * database) up and checks that this process can become that user: it runs
 * as root, or as that user already. Returns 0 with *out filled, or -1 with
 * why in err. */
int privs_lookup(const char *name, privs_user *out, char *err, size_t len);

/* Whether becoming u changes anything: false when this process already
 * runs as u's uid (real and effective; its groups are left as they are). */
bool privs_needed(const privs_user *u);

/* Becomes u for good: u's groups (initgroups), then its gid, then its
 * uid, each checked, then checks that root cannot be regained; sets HOME,
 * USER and LOGNAME to u's. Does nothing when !privs_needed(u). Returns 0,
 * or -1 with why in err, after which the caller must stop: the process
 * may be half-way. */
int privs_drop(const privs_user *u, char *err, size_t len);

#endif
