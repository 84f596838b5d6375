#include "post.h"

#include <stdlib.h>
#include <string.h>

#include "rewrite.h"
#include "subscribe.h"
#include "token.h"
#include "util.h"

static int is_moderator(const struct list_cfg *l, const char *addr)
{
	if (!addr || !*addr)
		return 0;
	for (size_t i = 0; i < l->n_moderators; i++)
		if (!ascii_strcasecmp(l->moderators[i], addr))
			return 1;
	return 0;
}

/* Is ADDR (any case) the list's bounce address or a VERP form of it? */
static int is_own_bounces(const struct list_cfg *l, const char *addr)
{
	char *want = xasprintf("%s-bounces", l->local);
	size_t wl = strlen(want);
	const char *at = strrchr(addr, '@');
	int own = at && !ascii_strcasecmp(at + 1, l->domain) && (size_t)(at - addr) >= wl &&
		  !ascii_strncasecmp(addr, want, wl) && (addr[wl] == '@' || addr[wl] == '+');
	free(want);
	return own;
}

/* Membership facts for ADDR; a lookup failure other than "not a member"
 * is returned so the caller retries later rather than misjudging. */
static int lookup_member(struct store *st, const char *list, const char *addr,
			 struct post_facts *f)
{
	if (!addr || !*addr || f->sender_is_member)
		return STORE_OK;
	struct store_member m;
	int rc = store_member_get(st, list, addr, &m);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	if (!strcmp(m.status, "active")) {
		f->sender_is_member = 1;
		f->sender_is_moderated = m.moderated;
	}
	store_member_free(&m);
	return STORE_OK;
}

int post_queue_copies(struct store *st, const struct config *cfg, const struct list_cfg *l,
		      int64_t raw_id, const char *body, size_t len, size_t *queued)
{
	char **addrs = NULL, **tokens = NULL;
	size_t n = 0;
	*queued = 0;
	int rc = store_members_for_delivery(st, l->name, &addrs, &tokens, &n);
	if (rc != STORE_OK)
		return rc;
	/* Every member gets a one-click unsubscribe token the first time a
	 * copy is made for them; it is what List-Unsubscribe's URL names. */
	for (size_t i = 0; i < n && rc == STORE_OK; i++) {
		if (tokens[i])
			continue;
		tokens[i] = xmalloc(TOKEN_LEN + 1);
		if (token_new(tokens[i]) < 0) {
			free(tokens[i]);
			tokens[i] = NULL;
			continue;
		}
		rc = store_member_set_token(st, l->name, addrs[i], tokens[i]);
	}
	if (rc == STORE_OK && n > 0) {
		char *bounces = xasprintf("%s-bounces@%s", l->local, l->domain);
		struct store_outbound o = {
			.list = l->name,
			.kind = "post",
			.raw_id = raw_id,
			.mail_from = bounces,
			.verp = cfg->verp,
			.body = body,
			.len = len,
			.rcpts = (const char *const *)addrs,
			.tokens = (const char *const *)tokens,
			.n_rcpts = n,
			.now = now_epoch(),
		};
		rc = store_outbound_add(st, &o, NULL);
		free(bounces);
	}
	if (rc == STORE_OK)
		*queued = n;
	store_strings_free(addrs, n);
	store_strings_free(tokens, n);
	return rc;
}

int post_archive(struct store *st, const struct list_cfg *l, int64_t raw_id, int64_t received,
		 const struct msg_info *mi, int unparsed)
{
	if (l->archive == ARCHIVE_NONE)
		return STORE_OK;
	struct store_archive_entry e = {
		.list = l->name,
		.raw_id = raw_id,
		.message_id = mi->message_id,
		.from_addr = mi->from_addr,
		.from_name = mi->from_name,
		.subject = mi->subject,
		.date_header = mi->date_header,
		.date = mi->date,
		.received = received,
		.in_reply_to = mi->in_reply_to,
		.references = mi->references,
		.body = mi->body_text,
		.unparsed = unparsed,
	};
	return store_archive_add(st, &e);
}

int post_distribute(struct store *st, const struct config *cfg, const struct list_cfg *l,
		    int64_t raw_id, int64_t received, const char *raw, size_t len, int unparsed,
		    size_t *queued)
{
	struct msg_info mi;
	char *body;
	size_t blen = 0;
	int rc = STORE_OK;

	*queued = 0;
	if (unparsed) {
		/* Archived raw when it was held; never parsed again. */
		body = rewrite_post(cfg, l, raw, len, NULL, &blen);
	} else {
		msg_parse(raw, len, cfg->hostname, &mi);
		rc = post_archive(st, l, raw_id, received, &mi, 0);
		body = rewrite_post(cfg, l, raw, len, mi.message_id_added ? mi.message_id : NULL,
				    &blen);
		msg_info_free(&mi);
	}
	if (rc == STORE_OK)
		rc = post_queue_copies(st, cfg, l, raw_id, body, blen, queued);
	free(body);
	return rc;
}

int post_prepare(struct store *st, const struct config *cfg, const struct list_cfg *l,
		 const struct store_pending *p, const struct msg_info *mi, int unparsed,
		 struct post_prep *out)
{
	memset(out, 0, sizeof *out);
	out->list = l;
	out->unparsed = unparsed;
	if (unparsed) {
		out->decision = (struct policy_decision){POLICY_HOLD, "message could not be parsed", 0};
		return STORE_OK;
	}
	struct post_facts f = {0};
	char *from_addr = NULL;
	rewrite_facts(p->raw, p->len, l, &f, &from_addr);
	f.envelope_from = p->mail_from;
	f.from_addr = from_addr;
	f.size = p->len;
	f.admin_command = policy_admin_command(mi->subject, 1) ||
			  policy_admin_command(mi->body_text, 0);
	f.from_own_bounces = is_own_bounces(l, p->mail_from);
	f.sender_is_moderator = is_moderator(l, from_addr) || is_moderator(l, p->mail_from);
	int rc = lookup_member(st, l->name, from_addr, &f);
	if (rc == STORE_OK)
		rc = lookup_member(st, l->name, p->mail_from, &f);
	if (rc == STORE_OK) {
		policy_decide(l, &f, &out->decision);
		if (out->decision.action == POLICY_DISTRIBUTE)
			out->body = rewrite_post(cfg, l, p->raw, p->len,
						 mi->message_id_added ? mi->message_id : NULL,
						 &out->len);
		else if (out->decision.action == POLICY_REJECT && out->decision.notify_sender &&
			 !subscribe_quiet_reason(cfg, p->mail_from, from_addr, p->raw, p->len, 0))
			out->body = rewrite_reject_notice(cfg, l, p->raw, p->len, p->mail_from,
							  out->decision.reason, &out->len);
	}
	free(from_addr);
	return rc;
}

int post_apply(struct store *st, const struct config *cfg, const struct store_pending *p,
	       const struct msg_info *mi, const struct post_prep *prep, size_t *queued)
{
	const struct list_cfg *l = prep->list;
	int rc = STORE_OK;
	*queued = 0;
	if (prep->decision.action == POLICY_DISTRIBUTE || prep->unparsed) {
		rc = post_archive(st, l, p->id, p->received, mi, prep->unparsed);
		if (rc != STORE_OK)
			return rc;
	}
	switch (prep->decision.action) {
	case POLICY_DISTRIBUTE:
		return post_queue_copies(st, cfg, l, p->id, prep->body, prep->len, queued);
	case POLICY_HOLD:
		return store_held_add(st, l->name, p->id, prep->decision.reason, mi->from_addr,
				      mi->subject, p->received);
	case POLICY_REJECT:
		if (!prep->body)
			return STORE_OK;
		{
			/* A forged sender must not turn the list into a mail cannon:
			 * notices share the daily allowance of automatic mail. */
			int64_t now = now_epoch();
			int ok = 0;
			rc = subscribe_auto_reply_ok(st, cfg, p->mail_from, now, &ok);
			if (rc != STORE_OK || !ok)
				return rc;
			rc = subscribe_auto_reply_count(st, p->mail_from, now);
			if (rc != STORE_OK)
				return rc;
			const char *rcpt = p->mail_from;
			/* RFC 3834: automatic answers go out with the null sender. */
			struct store_outbound o = {
				.list = l->name,
				.kind = "notice",
				.raw_id = p->id,
				.mail_from = "",
				.body = prep->body,
				.len = prep->len,
				.rcpts = &rcpt,
				.n_rcpts = 1,
				.now = now_epoch(),
			};
			rc = store_outbound_add(st, &o, NULL);
			if (rc == STORE_OK)
				*queued = 1;
		}
		return rc;
	case POLICY_DISCARD:
		return STORE_OK;
	}
	return STORE_OK;
}

void post_prep_clear(struct post_prep *prep)
{
	free(prep->body);
	memset(prep, 0, sizeof *prep);
}
