/* policy: who may post to a list, and what happens to everyone else
 * (post_policy, nonmember_action, moderated members, loop guards). One
 * pure function over facts the caller gathered, so the daemon and the CLI
 * apply the same rules and tests can enumerate them. */
#ifndef DIALOGUE_POLICY_H
#define DIALOGUE_POLICY_H

#include "config.h"

struct post_facts {
	const char *envelope_from; /* MAIL FROM, "" for the null sender */
	const char *from_addr;     /* address of the From: header, "" if none */
	int sender_is_member;      /* From or envelope sender is an active member */
	int sender_is_moderated;   /* ... whose moderated flag is set */
	int sender_is_moderator;   /* From or envelope sender is in moderators */
	int has_own_list_id;       /* a List-Id header naming this list */
	int has_own_x_loop;        /* X-Loop: naming this list's address */
	int auto_submitted;        /* Auto-Submitted present and not "no" */
	int from_own_bounces;      /* envelope sender is L-bounces[+...]@D */
};

enum policy_action {
	POLICY_DISTRIBUTE, /* archive and send to the members */
	POLICY_HOLD,       /* keep for a moderator */
	POLICY_REJECT,     /* refuse; tell the sender why */
	POLICY_DISCARD     /* drop silently (loops, auto-replies, discard) */
};

struct policy_decision {
	enum policy_action action;
	const char *reason; /* static text for logs, moderators and notices */
	int notify_sender;  /* 1 when a notice to the sender is appropriate */
};

void policy_decide(const struct list_cfg *l, const struct post_facts *f,
		   struct policy_decision *out);
const char *policy_action_name(enum policy_action a);

#endif
