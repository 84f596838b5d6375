/* policy: who may post to a list, and what happens to everyone else
 * (post_policy, nonmember_action, moderated members, loop guards). One
 * pure function over facts the caller gathered, so the daemon and the CLI
 * apply the same rules and tests can enumerate them. */
#ifndef DIALOGUE_POLICY_H
#define DIALOGUE_POLICY_H

#include <stddef.h>

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
	/* What the content holds look at; 0 (the default) holds nothing. */
	size_t size;               /* octets of the message as received */
	long n_recipients;         /* addresses in To and Cc */
	int implicit_destination;  /* the list (L@D or an L-*@D) is in neither To nor Cc */
	int admin_command;         /* Subject or text body is only a command (see below) */
	int from_is_list;          /* From is L@D or one of the list's L-*@D addresses */
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

/* Order: loop guards (discard); a From claiming to be the list (hold);
 * moderators (distribute); post_policy announce and moderated (hold); a
 * moderated member (hold); non-members under post_policy members (their
 * nonmember_action); then, for a post that would go out, the content
 * holds: administrative command, implicit destination, too many To/Cc
 * recipients (max_post_recipients), too large (max_post_size). */
void policy_decide(const struct list_cfg *l, const struct post_facts *f,
		   struct policy_decision *out);

/* Is TEXT (a decoded Subject when SUBJECT, else a text body with LF or
 * CRLF lines) only an administrative command that belongs at L-request?
 * A command is one line: subscribe, join, unsubscribe, leave, remove,
 * signoff or help, alone or with one address or "me" (subscribe also
 * with "digest"/"nodigest"), or "set OPTION... on|off"; case-insensitive,
 * surrounding blanks and a final '.' or '!' ignored. A Subject may carry
 * "[tags]" before it (not "Re:": a reply is a conversation). In a body,
 * blank lines, quoted lines ('>'), an attribution line ending in "wrote:"
 * and everything after a "-- " signature line are skipped, and exactly one
 * command line must remain. */
int policy_admin_command(const char *text, int subject);
const char *policy_action_name(enum policy_action a);

#endif
