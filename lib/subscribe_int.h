/* subscribe_int: what the parts of the subscription module share (the
 * rules in subscribe.c, the moderator's acts in subscribe_mod.c, mails and
 * counters in subscribe_mail.c). Not part of its interface. */
#ifndef DIALOGUE_SUBSCRIBE_INT_H
#define DIALOGUE_SUBSCRIBE_INT_H

#include "subscribe.h"
#include "util.h"

#define SUBSCRIBE_HOUR 3600
#define SUBSCRIBE_DAY 86400

/* What one decision works with. */
struct subscribe_ctx {
	struct store *st;
	const struct config *cfg;
	const struct templates *t;
	const struct list_cfg *l;
	int64_t raw_id;    /* the message answered, 0 for the CLI */
	int64_t now;
	const char *ip;    /* the client that sent the message, "" when none */
	const char *quiet; /* no automatic answer, and why; NULL when allowed */
	int web;           /* asked on the web form: anyone may type any address,
			      so even an open list asks the address first */
	size_t queued;
	struct sbuf out;   /* the outcome: "join a@b to L: what happened, ..." */
	int notes;
};

/* Add one remark to C's outcome (", " between remarks). */
void subscribe_note(struct subscribe_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Log WHY and return STORE_ERR: a failure that is not the database's, after
 * which the batch is tried again like after a database error. */
int subscribe_fail(const char *why);

/* Queue BODY (a whole mail) from L-bounces@D to RCPTS. */
int subscribe_queue(struct subscribe_ctx *c, const char *body, size_t len,
		    const char *const *rcpts, size_t n);
/* Compose template NAME to TO (Reply-To REPLY_TO when set) and queue it;
 * *SENT says whether it went (not when it cannot be composed). */
int subscribe_send(struct subscribe_ctx *c, const char *name, const char *to,
		   const char *reply_to, const struct template_var *vars, size_t n, int *sent);
/* Send template NAME to TO with VARS. AUTOMATIC: an automatic reply, not
 * sent for a quiet message nor past auto_replies_per_day for TO (the
 * outcome says so). A STORE_E* only for a database failure. */
int subscribe_answer(struct subscribe_ctx *c, const char *name, const char *to,
		     const struct template_var *vars, size_t n, int automatic);
/* Store a new token for (C's list, ADDRESS, ACTION) and send its
 * confirmation mail, template TMPL, with Reply-To L-confirm+TOKEN@D.
 * AUTOMATIC (a request by mail): only within the per-address, per-IP and
 * auto-reply limits. *SENT says whether it went. */
int subscribe_confirmation(struct subscribe_ctx *c, const char *action, const char *tmpl,
			   const char *address, const char *name, const char *stakeholder,
			   int automatic, int *sent);

/* Is ADDRESS a member of C's list? STORE_OK with *IS, and its status in
 * STATUS[33] when STATUS is not NULL. */
int subscribe_member_status(struct subscribe_ctx *c, const char *address, int *is,
			    char *status);
/* Tell TO that the list is full (the "list-full" mail). */
int subscribe_list_full(struct subscribe_ctx *c, const char *to, int automatic);

/* A join asked for by ADDRESS (REQ_NAME, STAKEHOLDER may be NULL): the
 * confirmation, or the member added on an open list, or the answer saying
 * why not — always a mail, within the limits of automatic answers. */
int subscribe_join(struct subscribe_ctx *c, const char *addr, const char *req_name,
		   const char *stakeholder);
/* Spend the confirmation token stored under HASH (TOK as looked up) and
 * carry out its request. STORE_NOTFOUND when a racing confirmation spent
 * it first. */
int subscribe_carry_out(struct subscribe_ctx *c, const char *hash, const struct store_token *tok);

#endif
