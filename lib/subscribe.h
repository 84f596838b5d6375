/* subscribe: the rules of joining and leaving a list, applied the same way
 * by dialogued (mail to L-join, L-leave, L-request, L-confirm+TOKEN and
 * L-owner) and dialoguectl (members add --invite, approve, deny).
 *
 * Nobody is subscribed without their consent: a join or leave by mail only
 * sends a confirmation carrying a token (lib/token.c; stored hashed, single
 * use, bound to list, address and action, expiring after token_lifetime),
 * and the request is carried out when the token comes back. Nobody can use
 * a list to flood a third party: confirmations and automatic replies are
 * counted per address and per client IP, and mail that is automatic itself
 * (Auto-Submitted, null sender, DSNs, our own addresses) is never answered.
 *
 * Mail processing has two steps, like post.h. subscribe_prepare() reads the
 * message (commands, header facts) while it is marked as being parsed, and
 * touches no database. subscribe_apply() decides and writes inside the
 * caller's transaction, so each decision sees the ones before it (the rate
 * limits of a storm in one batch) and is carried out exactly once. */
#ifndef DIALOGUE_SUBSCRIBE_H
#define DIALOGUE_SUBSCRIBE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "message.h"
#include "route.h"
#include "store.h"
#include "template.h"
#include "token.h"

/* ---- commands to L-request ---- */

enum subscribe_cmd_kind {
	SUBSCRIBE_CMD_JOIN,    /* subscribe, join */
	SUBSCRIBE_CMD_LEAVE,   /* unsubscribe, leave */
	SUBSCRIBE_CMD_CONFIRM, /* confirm TOKEN */
	SUBSCRIBE_CMD_HELP     /* help, and what a mail with no command gets */
};

/* Body lines read for commands at most (non-empty, unquoted ones). */
#define SUBSCRIBE_MAX_LINES 10
/* Room for the commands of one mail: the Subject and the body lines. */
#define SUBSCRIBE_MAX_CMDS (SUBSCRIBE_MAX_LINES + 1)
/* Bytes of a command not understood that the help answer quotes. */
#define SUBSCRIBE_TEXT_MAX 64

struct subscribe_cmd {
	enum subscribe_cmd_kind kind;
	char token[TOKEN_LEN + 1]; /* CONFIRM: the token, "" when not shaped like one */
	char text[SUBSCRIBE_TEXT_MAX + 1]; /* HELP: what was not understood ("" when
					      help was asked for), cut short */
};

/* The commands of a mail to L-request with (decoded) SUBJECT and BODY
 * text (LF or CRLF lines; either may be NULL). The Subject counts after
 * reply prefixes ("Re:", "Aw:", "Fwd:" ...) and "[tags]" are dropped;
 * "confirm TOKEN" is also found anywhere in it. In the body, the first
 * non-empty lines count, at most SUBSCRIBE_MAX_LINES, up to the first line
 * that is not a command; quoted lines ('>') are skipped and a signature
 * line ("-- ") ends the search. Repeats are dropped. A mail with no
 * command gets HELP, with the first thing not understood (the Subject, else
 * the first body line) in its text. Writes 1..SUBSCRIBE_MAX_CMDS entries to OUT and
 * returns how many. */
size_t subscribe_parse_commands(const char *subject, const char *body,
				struct subscribe_cmd out[SUBSCRIBE_MAX_CMDS]);

/* ---- mail processing (dialogued) ---- */

enum subscribe_act_kind {
	SUBSCRIBE_ACT_JOIN,
	SUBSCRIBE_ACT_LEAVE,
	SUBSCRIBE_ACT_CONFIRM,
	SUBSCRIBE_ACT_HELP,
	SUBSCRIBE_ACT_OWNER
};

/* One thing a message asks of one list. */
struct subscribe_act {
	const struct list_cfg *list;
	enum subscribe_act_kind kind;
	char arg[ROUTE_DETAIL_MAX]; /* CONFIRM: the token as received; HELP: the
				       command not understood, "" when none */
	char *outcome;                /* subscribe_apply: one line for the log */
};

struct subscribe_prep {
	char *address;     /* who asks: envelope sender, else From; "" if no valid one */
	char *name;        /* From display name, "" when none */
	const char *quiet; /* why no answer may go back (static text), NULL if one may */
	int forwarded;     /* carries X-Dialogue-Forwarded: never forwarded again */
	struct subscribe_act *acts;
	size_t n_acts;
};

/* Read what message P (parsed as MI; UNPARSED for a poison message, of
 * which only the envelope and owner forwarding are used) asks of the lists
 * through its join, leave, confirm, request and owner recipients. Reads no
 * database; OUT->n_acts may be 0. */
void subscribe_prepare(const struct config *cfg, const struct store_pending *p,
		       const struct msg_info *mi, int unparsed, struct subscribe_prep *out);

/* Decide and carry out PREP inside the caller's transaction: members
 * added or removed, tokens stored and spent, counters counted, and the
 * answers composed from T (NULL: the built-in texts) queued. Each act's
 * outcome is filled for subscribe_log(). *queued gets the mails queued.
 * Returns a STORE_E* only for a database failure (then roll back). */
int subscribe_apply(struct store *st, const struct config *cfg, const struct templates *t,
		    const struct store_pending *p, struct subscribe_prep *prep, size_t *queued);

/* One log line per decision of PREP (after the commit). */
void subscribe_log(const struct subscribe_prep *prep);
void subscribe_prep_clear(struct subscribe_prep *prep);

/* Can T compose what subscriptions need? The confirmation and invitation
 * mails' Subject must carry the token ({{token}}), or a reply would not
 * show it. 0, or -1 with "FILE:LINE: what" in ERR. */
int subscribe_check_templates(const struct templates *t, const struct config *cfg, char *err,
			      size_t errlen);

/* ---- the guards other mail answers share (moderation's mails to posters) ---- */

/* Why no automatic mail may go to the sender of RAW[0..len) (envelope
 * sender MAIL_FROM, "" for the null sender; From address FROM_ADDR, may be
 * NULL or ""): a static phrase ("null sender", "auto-submitted", "a
 * delivery report", "bulk precedence", "sent by one of our list
 * addresses", "the message could not be read" when UNPARSED), or NULL
 * when one may. Reads the header without the MIME parser. */
const char *subscribe_quiet_reason(const struct config *cfg, const char *mail_from,
				   const char *from_addr, const char *raw, size_t len,
				   int unparsed);
/* The daily allowance of automatic mails to ADDRESS (auto_replies_per_day,
 * shared with every automatic answer): *ok = whether one more may go at
 * NOW. subscribe_auto_reply_count counts one that went. */
int subscribe_auto_reply_ok(struct store *st, const struct config *cfg, const char *address,
			    int64_t now, int *ok);
int subscribe_auto_reply_count(struct store *st, const char *address, int64_t now);

/* ---- a moderator's acts (dialoguectl) ----
 * Each runs in its own transaction (or the caller's) with its mail, and
 * returns a MEMBERSHIP_* code (membership.h) with one sentence in MSG. */

/* Invite ADDRESS to L: a confirmation mail ("invite") that adds them as
 * an active member, with NAME and STAKEHOLDER, when they answer. Refused
 * (MEMBERSHIP_EXISTS, _FULL, _BAD_*) when the member could not be added
 * now. *EXPIRES gets when the invitation lapses. */
int subscribe_invite(struct store *st, const struct config *cfg, const struct templates *t,
		     const struct list_cfg *l, const char *address, const char *name,
		     const char *stakeholder, int64_t *expires, char *msg, size_t msglen);
/* A pending member (subscribe_policy approve) becomes active and gets the
 * "approved" mail. When the list is over max_members the request is
 * refused instead: the person is removed and told ("list-full"), and
 * MEMBERSHIP_FULL returned. Not pending: MEMBERSHIP_BAD_VALUE. */
int subscribe_approve(struct store *st, const struct config *cfg, const struct templates *t,
		      const struct list_cfg *l, const char *address, char *msg, size_t msglen);
/* A pending member is removed and gets the "denied" mail with REASON
 * (may be NULL). Not pending: MEMBERSHIP_BAD_VALUE. */
int subscribe_deny(struct store *st, const struct config *cfg, const struct templates *t,
		   const struct list_cfg *l, const char *address, const char *reason, char *msg,
		   size_t msglen);

/* ---- the website (dialogued's HTTP pages) ---- */

enum subscribe_token_state {
	SUBSCRIBE_TOKEN_OK,
	SUBSCRIBE_TOKEN_UNKNOWN, /* never ours, changed, or not a confirmation */
	SUBSCRIBE_TOKEN_USED,
	SUBSCRIBE_TOKEN_EXPIRED
};
/* Look at confirmation TOKEN without spending it: *STATE, and unless it is
 * UNKNOWN the stored request in *TOK (free with store_token_clear) and its
 * key in HASH. Moderation tokens are UNKNOWN here. */
int subscribe_token_lookup(struct store *st, const char *token, int64_t now,
			   char hash[TOKEN_HASH_LEN + 1], struct store_token *tok,
			   enum subscribe_token_state *state);

/* What one web request did: a line for the log (caller frees). */
struct subscribe_web_result {
	int verdict;   /* MEMBERSHIP_OK, or _BAD_ADDRESS / _BAD_VALUE: the form
			  must be corrected (nothing was done) */
	enum subscribe_token_state state; /* confirm: the token's state */
	int found;     /* one-click: a member held the token */
	char *outcome; /* for the log */
};
void subscribe_web_result_clear(struct subscribe_web_result *r);

/* ADDRESS asks to join L on the web form (NAME, STAKEHOLDER may be "")
 * from client IP: the same as a mail to L-join, within the same limits
 * (per address, per IP, auto replies), answered by mail only, so the page
 * says the same for members and strangers. An address or stakeholder that
 * cannot be taken is refused before anything is done (R->verdict). In
 * its own transaction. A STORE_E* only for a database failure. */
int subscribe_web_join(struct store *st, const struct config *cfg, const struct templates *t,
		       const struct list_cfg *l, const char *address, const char *name,
		       const char *stakeholder, const char *ip, int64_t now,
		       struct subscribe_web_result *r);
/* The confirmation link was followed and its button pressed: spend TOKEN
 * and carry out its request exactly as a reply by mail does (R->state
 * says when the token is not good). In its own transaction. */
int subscribe_web_confirm(struct store *st, const struct config *cfg, const struct templates *t,
			  const char *token, const char *ip, int64_t now,
			  struct subscribe_web_result *r);
/* RFC 8058 one-click: the member of L whose unsubscribe token is TOKEN
 * leaves now (no confirmation: the POST is the confirmation) and gets the
 * goodbye mail. R->found = 0 when no member holds it. */
int subscribe_web_one_click(struct store *st, const struct config *cfg, const struct templates *t,
			const struct list_cfg *l, const char *token, int64_t now,
			struct subscribe_web_result *r);

#endif
