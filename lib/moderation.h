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
#include "message.h"
#include "route.h"
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

/* Hears of each decision moderation_expire_due makes: the post, the
 * result and the one-line account. */
typedef void (*moderation_report_fn)(void *arg, int64_t held_id, enum moderation_result res,
				     const char *msg);

/* Expire the posts held longer than their list's hold_expire at NOW (a
 * list with hold_expire 0 keeps them until decided), of list ONLY or of
 * every list when NULL, oldest first, at most MAX (0 = all): each decided
 * as by moderation_decide (by "expiry"; the poster is told), REPORT (may
 * be NULL) told of each. *n gets how many expired. STORE_OK, or STORE_ERR
 * after a decision failed on the database (the rest waits for next time).
 * dialogued runs this about once a minute; dialoguectl held expire by hand. */
int moderation_expire_due(struct store *st, const struct config *cfg,
			  const struct templates *tmpl, const struct list_cfg *only, int64_t now,
			  size_t max, size_t *n, moderation_report_fn report, void *arg);

/* ---- by mail (lib/moderation_notice.c, lib/moderation_mail.c) ---- */

/* At most one notice per list in this many seconds: posts held meanwhile
 * wait for the next one, which lists them all. */
#define MODERATION_NOTICE_INTERVAL 60
/* A quiet list's first notice waits this long after the first post it
 * lists, so that posts held together are announced together. */
#define MODERATION_NOTICE_SETTLE 3

/* dialogued's periodic sweep, cheap when there is nothing to do (one
 * indexed query). For every post held and not yet announced: its poster is
 * told once ("post-held", with a withdraw address L-withdraw+TOKEN@D; not
 * to the null sender, automatic mail, our own addresses, or past
 * auto_replies_per_day), and the list's moderators get a notice
 * ("moderator-notice"): each post's reason, key header fields, the start
 * of its text, the original attached, and its reply addresses
 * L-approve+TOKEN@D and L-reject+TOKEN@D. A list gets at most one notice
 * per MODERATION_NOTICE_INTERVAL, listing every post held since the one
 * before (as many as fit; the rest go in the next). Tokens are stored
 * hashed, bound to the list, the action and the post. Each list's work is
 * one transaction. *queued gets the mails queued. STORE_OK, or the first
 * store error (the rest is tried again next time). */
int moderation_announce(struct store *st, const struct config *cfg, const struct templates *tmpl,
			int64_t now, size_t *queued);

/* One mail to an approve, reject or withdraw address. */
struct moderation_reply {
	const struct list_cfg *list;
	enum moderation_action action; /* APPROVE, REJECT or WITHDRAW */
	char token[ROUTE_DETAIL_MAX];  /* as received */
	char *outcome;                 /* moderation_mail_apply: one line for the log */
};

/* What a message to those addresses asks, read by moderation_mail_prepare. */
struct moderation_mail {
	char *sender;      /* envelope sender, normalised; "" for none or an unusable one */
	char *from_addr;   /* From address, normalised; "" for none (or a poison message) */
	char *reason;      /* for a reject: moderation_reply_reason() of the body; "" */
	const char *quiet; /* why no answer may go back (static), NULL when one may */
	struct moderation_reply *replies;
	size_t n;
};

/* Read what message P (parsed as MI; UNPARSED: a poison message, of which
 * only the envelope counts) asks through its approve, reject and withdraw
 * recipients. Reads no database; OUT->n may be 0. */
void moderation_mail_prepare(const struct config *cfg, const struct store_pending *p,
			     const struct msg_info *mi, int unparsed, struct moderation_mail *out);
/* Decide M inside the caller's transaction (T: NULL for the built-in
 * texts): each token checked and spent, each post decided through
 * moderation_decide, answers queued. Approve and reject count only from a
 * moderator's address (From or envelope sender); automatic mail decides
 * nothing; a second decision is a no-op. *queued says whether mail or
 * copies were queued. A STORE_E* only for a database failure (then roll
 * back). */
int moderation_mail_apply(struct store *st, const struct config *cfg, const struct templates *t,
			  const struct store_pending *p, struct moderation_mail *m, size_t *queued);
/* One log line per reply of M (after the commit). */
void moderation_mail_log(const struct moderation_mail *m);
void moderation_mail_clear(struct moderation_mail *m);

/* The reason a moderator gives in a reply to a reject address: the first
 * non-empty line of their own text — quoted lines ("> ..."), the
 * attribution above a quote ("On ..., X wrote:") and everything from the
 * signature ("-- ") or an "-----Original Message-----" line on are not
 * theirs — trimmed, at most 500 bytes. "" when there is none. Caller
 * frees. */
char *moderation_reply_reason(const char *body);

#endif
