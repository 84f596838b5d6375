/* moderation_mail: deciding by mail. A moderator replies to a notice's
 * L-approve+TOKEN@D or L-reject+TOKEN@D; a poster writes to the
 * L-withdraw+TOKEN@D of their post-held mail. The token says which post
 * and what to do; it is good once, for its list and its action only.
 *
 * Who may decide: for approve and reject, the reply's From or envelope
 * sender must be one of the list's moderators; anyone else is refused
 * (logged, never answered: an answer would tell a stranger about the
 * token, and could be aimed at a third party). For withdraw the token
 * itself is the proof, as only the poster was sent it. Automatic mail
 * (null sender, Auto-Submitted, reports, bulk, our own) decides nothing.
 * A token that does not work (forged, spent, expired, for another list or
 * action) is answered once ("moderation-invalid") within the
 * automatic-reply limits.
 *
 * Two steps, as for posts and subscriptions: moderation_mail_prepare()
 * reads the reply (who, which tokens, the reason) while the message is
 * marked as being parsed; moderation_mail_apply() decides inside the
 * processing transaction, through moderation_decide(), so a decision by
 * mail racing one from the CLI still decides once. */
#include "moderation_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"
#include "subscribe.h"
#include "token.h"
#include "util.h"

/* Bytes of a reject reason taken from a reply. */
#define REPLY_REASON_MAX 500
/* Lines an attribution ("On ... Dialogue <...> wrote:") may be wrapped to. */
#define ATTRIBUTION_LINES 3

/* ---- the reason in a reply ---- */

struct line {
	const char *s;
	size_t n;         /* without blanks at either end */
	const char *next; /* the following line */
};

static int is_blank(char c)
{
	return (unsigned char)c <= ' ' || c == 0x7f;
}

static void read_line(const char *p, struct line *l)
{
	const char *e = strchr(p, '\n');
	size_t n = e ? (size_t)(e - p) : strlen(p);
	l->next = e ? e + 1 : p + n;
	/* Blanks, CR and stray controls at either end are not text. */
	while (n && (is_blank(p[n - 1])))
		n--;
	while (n && is_blank(*p)) {
		p++;
		n--;
	}
	l->s = p;
	l->n = n;
}

/* Where the replier's own text ends: the signature ("-- ") or a line of
 * dashes or underscores that mail clients put above the quoted original
 * ("-----Original Message-----"). */
static int ends_own_text(const struct line *l)
{
	if (l->n == 2 && l->s[0] == '-' && l->s[1] == '-')
		return 1;
	return l->n >= 5 && (strspn(l->s, "-") >= 5 || strspn(l->s, "_") >= 5);
}

/* Is the line at P the start of an attribution: up to ATTRIBUTION_LINES
 * lines of text, the last ending in ':', then (after blank lines) a quoted
 * line? *after gets the first line past it. */
static int attribution(const char *p, const char **after)
{
	struct line l;
	int last_colon = 0;
	for (int k = 0; k < ATTRIBUTION_LINES && *p; k++) {
		read_line(p, &l);
		if (!l.n || l.s[0] == '>')
			break;
		last_colon = l.s[l.n - 1] == ':';
		p = l.next;
		*after = p;
		if (last_colon)
			break;
	}
	if (!last_colon)
		return 0;
	while (*p) {
		read_line(p, &l);
		if (l.n)
			return l.s[0] == '>';
		p = l.next;
	}
	return 0;
}

char *moderation_reply_reason(const char *body)
{
	const char *p = body ? body : "";
	while (*p) {
		struct line l;
		const char *after;
		read_line(p, &l);
		if (ends_own_text(&l))
			break;
		if (!l.n || l.s[0] == '>') {
			p = l.next;
			continue;
		}
		if (attribution(p, &after)) {
			p = after;
			continue;
		}
		size_t n = l.n;
		if (n > REPLY_REASON_MAX) {
			n = REPLY_REASON_MAX;
			while (n && ((unsigned char)l.s[n] & 0xc0) == 0x80)
				n--;
		}
		/* One line of text: a stray CR or other control inside it is
		 * a blank (the reason goes into a mail and the record). */
		char *r = xstrndup(l.s, n);
		for (char *q = r; *q; q++)
			if (is_blank(*q))
				*q = ' ';
		return str_trim(r);
	}
	return xstrdup("");
}

/* ---- reading a reply ---- */

static enum moderation_action action_of(int kind)
{
	return kind == RCPT_APPROVE ? MODERATION_APPROVE
	       : kind == RCPT_REJECT ? MODERATION_REJECT
				     : MODERATION_WITHDRAW;
}

void moderation_mail_prepare(const struct config *cfg, const struct store_pending *p,
			     const struct msg_info *mi, int unparsed, struct moderation_mail *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < p->n_rcpts; i++) {
		const struct store_pending_rcpt *r = &p->rcpts[i];
		int k = route_kind_from_name(r->kind);
		if (k != RCPT_APPROVE && k != RCPT_REJECT && k != RCPT_WITHDRAW)
			continue;
		const struct list_cfg *l = config_find_list(cfg, r->list);
		if (!l) {
			log_warn("moderation: message %lld: list %s is no longer configured; %s "
				 "dropped",
				 (long long)p->id, r->list, r->rcpt);
			continue;
		}
		int dup = 0;
		for (size_t j = 0; j < out->n && !dup; j++)
			dup = out->replies[j].list == l && out->replies[j].action == action_of(k) &&
			      !strcmp(out->replies[j].token, r->detail);
		if (dup)
			continue; /* the same address twice in one envelope */
		out->replies = xrealloc(out->replies, (out->n + 1) * sizeof *out->replies);
		struct moderation_reply *m = &out->replies[out->n++];
		memset(m, 0, sizeof *m);
		m->list = l;
		m->action = action_of(k);
		snprintf(m->token, sizeof m->token, "%s", r->detail);
	}
	/* Addresses as the membership rules write them; "" when unusable. A
	 * poison message is never read again: only its envelope counts. */
	char *a = *p->mail_from ? membership_address(p->mail_from, NULL, 0) : NULL;
	out->sender = a ? a : xstrdup("");
	a = !unparsed && *mi->from_addr ? membership_address(mi->from_addr, NULL, 0) : NULL;
	out->from_addr = a ? a : xstrdup("");
	out->reason = xstrdup("");
	if (out->n == 0)
		return;
	for (size_t j = 0; j < out->n && !unparsed; j++)
		if (out->replies[j].action == MODERATION_REJECT) {
			free(out->reason);
			out->reason = moderation_reply_reason(mi->body_text);
			break;
		}
	out->quiet = subscribe_quiet_reason(cfg, p->mail_from, out->from_addr, p->raw, p->len,
					    unparsed);
}

void moderation_mail_clear(struct moderation_mail *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->replies[i].outcome);
	free(m->replies);
	free(m->sender);
	free(m->from_addr);
	free(m->reason);
	memset(m, 0, sizeof *m);
}

void moderation_mail_log(const struct moderation_mail *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->replies[i].outcome)
			log_info("%s", m->replies[i].outcome);
}

/* ---- deciding ---- */

struct reply_ctx {
	struct store *st;
	const struct config *cfg;
	const struct templates *t;
	const struct store_pending *p;
	const struct moderation_mail *m;
	const struct list_cfg *l;
	int64_t now;
	size_t queued;
	struct sbuf out;
	int notes;
};

static void note(struct reply_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct reply_ctx *c, const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (c->notes++)
		sbuf_adds(&c->out, ", ");
	sbuf_adds(&c->out, buf);
}

/* Tell TO that their ACTION did not work, and WHY (a sentence): once,
 * never to automatic mail, within auto_replies_per_day. */
static int answer(struct reply_ctx *c, const char *to, enum moderation_action action,
		  const char *why, int64_t held_id)
{
	int ok = 1, rc;
	if (!to || !*to) {
		note(c, "nobody to answer");
		return STORE_OK;
	}
	if (c->m->quiet) {
		note(c, "not answered (%s)", c->m->quiet);
		return STORE_OK;
	}
	if ((rc = subscribe_auto_reply_ok(c->st, c->cfg, to, c->now, &ok)) != STORE_OK)
		return rc;
	if (!ok) {
		note(c, "not answered (%ld automatic replies to %s today)",
		     c->cfg->auto_replies_per_day, to);
		return STORE_OK;
	}
	char id[32] = "";
	if (held_id > 0)
		snprintf(id, sizeof id, "%lld", (long long)held_id);
	const struct template_var vars[] = {
		{"action", moderation_action_name(action)},
		{"reason", why},
		{"held_id", id},
	};
	size_t len = 0;
	char *body = template_compose(c->t, c->cfg, c->l, "moderation-invalid", vars,
				      sizeof vars / sizeof vars[0], to, NULL, NULL, &len);
	if (!body) {
		note(c, "the answer to %s could not be composed", to);
		return STORE_OK;
	}
	char *bounces = xasprintf("%s-bounces@%s", c->l->local, c->l->domain);
	struct store_outbound o = {
		.list = c->l->name,
		.kind = "notice",
		.raw_id = c->p->id,
		.mail_from = bounces,
		.body = body,
		.len = len,
		.rcpts = &to,
		.n_rcpts = 1,
		.now = c->now,
	};
	rc = store_outbound_add(c->st, &o, NULL);
	free(bounces);
	free(body);
	if (rc == STORE_OK)
		rc = subscribe_auto_reply_count(c->st, to, c->now);
	if (rc == STORE_OK) {
		c->queued++;
		note(c, "%s is told", to);
	}
	return rc;
}

/* A token that does not work: WHY is "unknown", "already used",
 * "expired" or "not for this list". */
static int token_invalid(struct reply_ctx *c, const char *to, enum moderation_action action,
			 const char *why)
{
	static const char *const sentences[][2] = {
		{"unknown", "the address is not one we made, or it was changed on the way"},
		{"already used", "the address has been used already, and works only once"},
		{"expired", "the address has expired"},
		{"not for this list", "the address is not for this list"},
	};
	const char *sentence = "";
	for (size_t i = 0; i < sizeof sentences / sizeof sentences[0]; i++)
		if (!strcmp(why, sentences[i][0]))
			sentence = sentences[i][1];
	note(c, "token %s", why);
	return answer(c, to, action, sentence, 0);
}

/* The moderator a reply comes from: its From, else its envelope sender,
 * when that is one of L's moderators; NULL otherwise. */
static const char *moderator_of(const struct list_cfg *l, const struct moderation_mail *m)
{
	if (moderation_is_moderator(l, m->from_addr))
		return m->from_addr;
	if (moderation_is_moderator(l, m->sender))
		return m->sender;
	return NULL;
}

static int decide_reply(struct reply_ctx *c, const struct moderation_reply *r)
{
	const struct moderation_mail *m = c->m;
	const char *action = moderation_action_name(r->action);
	const char *who;
	if (m->quiet) {
		/* An out-of-office answer or a bounce that found its way here
		 * decides nothing, whoever it claims to be from. */
		note(c, "ignored (%s)", m->quiet);
		return STORE_OK;
	}
	if (r->action == MODERATION_WITHDRAW) {
		who = *m->sender ? m->sender : m->from_addr;
	} else {
		who = moderator_of(c->l, m);
		if (!who) {
			/* Checked before the token, so that nothing about it is
			 * told, and it still works for a moderator. */
			note(c, "refused: %s is not a moderator of %s",
			     *m->from_addr ? m->from_addr : *m->sender ? m->sender : "<>",
			     c->l->name);
			return STORE_OK;
		}
	}
	char hash[TOKEN_HASH_LEN + 1];
	struct store_token tok;
	if (!token_syntax_ok(r->token))
		return token_invalid(c, who, r->action, "unknown");
	if (token_hash(r->token, hash) < 0) {
		log_err("moderation: no SHA-256 for a token");
		return STORE_ERR;
	}
	int rc = store_token_get(c->st, hash, &tok);
	if (rc == STORE_NOTFOUND)
		return token_invalid(c, who, r->action, "unknown");
	if (rc != STORE_OK)
		return rc;
	/* A token made for another action (an approve token sent to the
	 * reject address, a confirmation's) decides nothing. */
	if (strcmp(tok.action, action) != 0 || tok.held_id <= 0)
		rc = token_invalid(c, who, r->action, "unknown");
	else if (strcmp(tok.list, c->l->name) != 0)
		rc = token_invalid(c, who, r->action, "not for this list");
	else if (tok.used)
		rc = token_invalid(c, who, r->action, "already used");
	else if (tok.expires <= c->now)
		rc = token_invalid(c, who, r->action, "expired");
	else if ((rc = store_token_use(c->st, hash, c->now)) == STORE_NOTFOUND)
		rc = token_invalid(c, who, r->action, "already used");
	else if (rc == STORE_OK) {
		char msg[512];
		struct moderation_request req = {
			.held_id = tok.held_id,
			.action = r->action,
			.reason = r->action == MODERATION_REJECT ? m->reason : NULL,
			.by = who && *who ? who : "withdraw address",
		};
		enum moderation_result res = moderation_decide(c->st, c->cfg, c->t, &req, msg,
							       sizeof msg);
		switch (res) {
		case MODERATION_DONE:
			note(c, "%s", msg);
			c->queued++; /* copies or a notice: delivery is worth a look */
			break;
		case MODERATION_ALREADY: {
			note(c, "%s: nothing done", msg);
			char *why = xasprintf("%s, so nothing was done now", msg);
			rc = answer(c, who, r->action, why, tok.held_id);
			free(why);
			break;
		}
		case MODERATION_NOTFOUND:
			rc = token_invalid(c, who, r->action, "unknown");
			break;
		case MODERATION_ERROR:
			log_err("moderation: %s", msg);
			rc = STORE_ERR;
			break;
		}
	}
	store_token_clear(&tok);
	return rc;
}

int moderation_mail_apply(struct store *st, const struct config *cfg, const struct templates *t,
			  const struct store_pending *p, struct moderation_mail *m, size_t *queued)
{
	*queued = 0;
	if (m->n == 0)
		return STORE_OK;
	struct templates *own = NULL;
	if (!t) {
		char err[256];
		t = own = template_load(NULL, err, sizeof err);
		if (!t) {
			log_err("moderation: built-in templates: %s", err);
			return STORE_ERR;
		}
	}
	struct reply_ctx c = {.st = st, .cfg = cfg, .t = t, .p = p, .m = m, .now = now_epoch()};
	int rc = STORE_OK;
	for (size_t i = 0; i < m->n && rc == STORE_OK; i++) {
		struct moderation_reply *r = &m->replies[i];
		const char *who = *m->from_addr ? m->from_addr : *m->sender ? m->sender : "<>";
		c.l = r->list;
		c.notes = 0;
		c.out.len = 0;
		sbuf_printf(&c.out, "moderation: %s by mail from %s for %s: ",
			    moderation_action_name(r->action), who, r->list->name);
		rc = decide_reply(&c, r);
		free(r->outcome);
		r->outcome = xstrndup(c.out.buf, c.out.len);
	}
	sbuf_free(&c.out);
	template_free(own);
	if (rc == STORE_OK)
		*queued = c.queued;
	return rc;
}
