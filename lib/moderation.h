/* moderation: deciding on held posts. The same rules whether a moderator
 * uses dialoguectl or replies to a notice by mail: approve (the post is
 * archived and a copy queued for every member, exactly as if it had been
 * distributed at once), reject (the poster gets a notice with the reason),
 * discard (nothing), withdraw (the poster cancelled it), expire (held past
 * the list's hold_expire: the poster is told). A post is decided once: a
 * second decision is a clear no-op, never a second delivery. */
#ifndef DIALOGUE_MODERATION_H
#define DIALOGUE_MODERATION_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"
#include "template.h"

enum moderation_action {
	MODERATION_APPROVE,
	MODERATION_REJECT,
	MODERATION_DISCARD,
	MODERATION_WITHDRAW,
	MODERATION_EXPIRE
};

enum moderation_result {
	MODERATION_DONE = 0,
	MODERATION_ALREADY = 1,   /* decided before: nothing happened now */
	MODERATION_NOTFOUND = 2,  /* no held post with that ID */
	MODERATION_ERROR = -1     /* store error (msg says which) */
};

struct moderation_request {
	int64_t held_id;
	enum moderation_action action;
	const char *reason; /* reject: told to the poster; may be NULL */
	int member_too;     /* approve: also clear the poster's moderated flag */
	const char *by;     /* who decided, for the log and the record ("cli",
			       or the moderator's address) */
};

/* Carry out R in one transaction of ST (the caller's, when one is open).
 * TMPL (may be NULL: built-in defaults) words the notices. MSG receives a
 * one-line account for the log or the CLI ("approved post 4 to dialogue:
 * 12 copies queued"). */
enum moderation_result moderation_decide(struct store *st, const struct config *cfg,
					 const struct templates *tmpl,
					 const struct moderation_request *r, char *msg,
					 size_t msglen);

const char *moderation_action_name(enum moderation_action a);

#endif
