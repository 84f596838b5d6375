/* moderation: a decision on a held post, carried out in one transaction
 * together with the held row's change of status. The row is read inside
 * the transaction (BEGIN IMMEDIATE: no other writer between the read and
 * the update), so two moderators deciding at once, or a decision by mail
 * racing one from the CLI, decide once: the second finds the post decided
 * and does nothing. */
#include "moderation_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "post.h"
#include "rewrite.h"
#include "subscribe.h"
#include "util.h"

/* Longest moderator's reason passed on to a poster, in bytes. */
#define MODERATION_REASON_MAX 2000

const char *moderation_action_name(enum moderation_action a)
{
	switch (a) {
	case MODERATION_APPROVE:
		return "approve";
	case MODERATION_REJECT:
		return "reject";
	case MODERATION_DISCARD:
		return "discard";
	case MODERATION_WITHDRAW:
		return "withdraw";
	case MODERATION_EXPIRE:
		return "expire";
	}
	return "unknown";
}

/* The held row's status after A. */
static const char *status_after(enum moderation_action a)
{
	switch (a) {
	case MODERATION_APPROVE:
		return "approved";
	case MODERATION_REJECT:
		return "rejected";
	case MODERATION_DISCARD:
		return "discarded";
	case MODERATION_WITHDRAW:
		return "withdrawn";
	case MODERATION_EXPIRE:
		return "expired";
	}
	return NULL;
}

int moderation_is_moderator(const struct list_cfg *l, const char *addr)
{
	if (!addr || !*addr)
		return 0;
	for (size_t i = 0; i < l->n_moderators; i++)
		if (!ascii_strcasecmp(l->moderators[i], addr))
			return 1;
	return 0;
}

void moderation_duration_text(int64_t secs, char *buf, size_t len)
{
	static const struct {
		int64_t unit;
		const char *name;
	} units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
		if (secs >= units[i].unit && secs % units[i].unit == 0) {
			int64_t n = secs / units[i].unit;
			snprintf(buf, len, "%lld %s%s", (long long)n, units[i].name,
				 n == 1 ? "" : "s");
			return;
		}
	snprintf(buf, len, "%lld seconds", (long long)secs);
}

/* Tell the poster of held post H (RAW[0..len)) about a decision: template
 * NAME, else the built-in reject notice with FALLBACK as its reason. Not
 * to an address that is not one, nor to automatic mail (the checks of
 * subscriptions: null sender, Auto-Submitted, reports, bulk, our own
 * addresses; the header is read without the parser, so a poison message
 * is checked too). *sent says whether a notice was queued. */
static int tell_poster(struct store *st, const struct config *cfg, const struct templates *tmpl,
		       const struct list_cfg *l, const struct store_held *h, const char *raw,
		       size_t len, const char *name, const struct template_var *vars,
		       size_t n_vars, const char *fallback, int *sent)
{
	const char *to = h->mail_from;
	*sent = 0;
	if (!to || !*to || !address_valid(to) ||
	    subscribe_quiet_reason(cfg, to, h->from_addr, raw, len, 0))
		return STORE_OK;
	size_t blen = 0;
	char *body = template_compose(tmpl, cfg, l, name, vars, n_vars, to, NULL, NULL, &blen);
	if (!body)
		body = rewrite_reject_notice(cfg, l, raw, len, to, fallback, &blen);
	if (!body)
		return STORE_OK;
	/* From L-bounces@D, as the list's other mails: a bounce of the notice
	 * comes back to the list's bounce handling, never to a person. */
	char *bounces = xasprintf("%s-bounces@%s", l->local, l->domain);
	struct store_outbound o = {
		.list = l->name,
		.kind = "notice",
		.raw_id = h->raw_id,
		.mail_from = bounces,
		.body = body,
		.len = blen,
		.rcpts = &to,
		.n_rcpts = 1,
		.now = now_epoch(),
	};
	int rc = store_outbound_add(st, &o, NULL);
	if (rc == STORE_OK)
		*sent = 1;
	free(bounces);
	free(body);
	return rc;
}

/* Everything of R but the status change, for post H of list L (NULL when
 * the list is no longer configured). Writes the account into MSG. */
static int carry_out(struct store *st, const struct config *cfg, const struct templates *tmpl,
		     const struct list_cfg *l, const struct store_held *h,
		     const struct moderation_request *r, char *msg, size_t msglen)
{
	char *raw = NULL;
	size_t len = 0, queued = 0;
	int sent = 0, cleared = 0, rc = STORE_OK;
	const char *verb = status_after(r->action);

	if (!l && (r->action == MODERATION_APPROVE || r->action == MODERATION_REJECT ||
		   r->action == MODERATION_EXPIRE)) {
		snprintf(msg, msglen, "post %lld: list %s is no longer configured",
			 (long long)h->id, h->list);
		return STORE_INVAL;
	}
	if (r->action != MODERATION_DISCARD && l) {
		rc = store_held_raw(st, h->id, &raw, &len);
		if (rc != STORE_OK)
			return rc;
	}

	char received[32], days[32], id[32], expire[64];
	fmt_iso8601(h->received, received);
	snprintf(id, sizeof id, "%lld", (long long)h->id);
	snprintf(days, sizeof days, "%lld",
		 l ? (long long)((l->hold_expire + 86399) / 86400) : 0LL);
	moderation_duration_text(l ? l->hold_expire : 0, expire, sizeof expire);
	const char *reason = r->reason ? r->reason : "";
	const struct template_var vars[] = {
		{"held_id", id},
		{"subject", h->subject},
		{"reason", reason},
		{"hold_reason", h->reason},
		{"received", received},
		{"poster", h->mail_from},
		{"hold_expire", expire},
		{"days", days},
	};
	const size_t n_vars = sizeof vars / sizeof vars[0];

	switch (r->action) {
	case MODERATION_APPROVE:
		rc = post_distribute(st, cfg, l, h->raw_id, h->received, raw, len, h->unparsed,
				     &queued);
		if (rc == STORE_OK && r->member_too && h->from_addr[0]) {
			int mrc = store_member_set(st, l->name, h->from_addr, "moderated", "0");
			if (mrc != STORE_OK && mrc != STORE_NOTFOUND)
				rc = mrc;
			cleared = mrc == STORE_OK;
		}
		if (rc == STORE_OK)
			snprintf(msg, msglen, "approved post %lld to %s: %zu cop%s queued%s",
				 (long long)h->id, l->name, queued, queued == 1 ? "y" : "ies",
				 !r->member_too ? ""
				 : cleared ? "; the poster is no longer moderated"
					   : "; the poster is not a member");
		break;
	case MODERATION_REJECT: {
		char *why = *reason ? xasprintf("a moderator rejected it: %s", reason)
				    : xstrdup("a moderator rejected it");
		rc = tell_poster(st, cfg, tmpl, l, h, raw, len, "post-rejected", vars, n_vars, why,
				 &sent);
		free(why);
		if (rc == STORE_OK)
			snprintf(msg, msglen, "rejected post %lld to %s: %s", (long long)h->id,
				 l->name, sent ? "the poster is told" : "nobody to tell");
		break;
	}
	case MODERATION_EXPIRE: {
		char *why = xasprintf("it was held for a moderator, and no decision came "
				      "within %s",
				      expire);
		rc = tell_poster(st, cfg, tmpl, l, h, raw, len, "post-expired", vars, n_vars, why,
				 &sent);
		free(why);
		if (rc == STORE_OK)
			snprintf(msg, msglen, "post %lld to %s expired: %s", (long long)h->id,
				 l->name, sent ? "the poster is told" : "nobody to tell");
		break;
	}
	case MODERATION_WITHDRAW:
		/* The poster asked (or someone holding the withdraw address did):
		 * a confirmation, so that a withdrawal they did not ask for is
		 * noticed. */
		if (l)
			rc = tell_poster(st, cfg, tmpl, l, h, raw, len, "post-withdrawn", vars,
					 n_vars, "it was withdrawn at your request", &sent);
		if (rc == STORE_OK)
			snprintf(msg, msglen, "withdrew post %lld to %s: %s", (long long)h->id,
				 h->list, sent ? "the poster is told" : "nobody to tell");
		break;
	case MODERATION_DISCARD:
		snprintf(msg, msglen, "%s post %lld to %s", verb, (long long)h->id, h->list);
		break;
	}
	free(raw);
	return rc;
}

enum moderation_result moderation_decide(struct store *st, const struct config *cfg,
					 const struct templates *tmpl,
					 const struct moderation_request *r, char *msg,
					 size_t msglen)
{
	struct store_held h;
	struct moderation_request req = *r;
	struct templates *own = NULL;
	char *reason = NULL;
	const char *status = status_after(r->action);
	enum moderation_result res = MODERATION_ERROR;
	char err[256];

	msg[0] = '\0';
	if (!status) {
		snprintf(msg, msglen, "unknown moderation action %d", (int)r->action);
		return MODERATION_ERROR;
	}
	if (!tmpl && (r->action == MODERATION_REJECT || r->action == MODERATION_EXPIRE ||
		      r->action == MODERATION_WITHDRAW)) {
		/* NULL means the built-in texts; a failed load still leaves the
		 * built-in reject notice. */
		own = template_load(NULL, err, sizeof err);
		tmpl = own;
	}
	if (r->reason) {
		/* What the poster is told and the record keeps: the moderator's
		 * words, trimmed, within reason. */
		reason = str_trim(xstrndup(r->reason, strnlen(r->reason, MODERATION_REASON_MAX)));
		req.reason = reason;
	}
	int rc = store_begin(st);
	if (rc != STORE_OK) {
		snprintf(msg, msglen, "post %lld: %s", (long long)r->held_id, store_errmsg(st));
		goto out;
	}
	rc = store_held_get(st, r->held_id, &h);
	if (rc == STORE_NOTFOUND) {
		snprintf(msg, msglen, "no held post %lld", (long long)r->held_id);
		res = MODERATION_NOTFOUND;
		goto rollback;
	}
	if (rc != STORE_OK) {
		snprintf(msg, msglen, "post %lld: %s", (long long)r->held_id, store_errmsg(st));
		goto rollback;
	}
	if (strcmp(h.status, "held") != 0) {
		snprintf(msg, msglen, "post %lld was already %s", (long long)h.id, h.status);
		store_held_clear(&h);
		res = MODERATION_ALREADY;
		goto rollback;
	}
	const struct list_cfg *l = config_find_list(cfg, h.list);
	rc = carry_out(st, cfg, tmpl, l, &h, &req, msg, msglen);
	if (rc == STORE_OK)
		rc = store_held_decide(st, h.id, status, r->by ? r->by : "",
				       r->action == MODERATION_REJECT ? req.reason : NULL,
				       now_epoch());
	long cancelled = 0;
	if (rc == STORE_OK)
		rc = store_held_cancel_mails(st, h.id, &cancelled);
	if (rc == STORE_OK && cancelled) {
		size_t used = strlen(msg);
		snprintf(msg + used, msglen - used, "; %ld unsent notice%s cancelled", cancelled,
			 cancelled == 1 ? "" : "s");
	}
	if (rc == STORE_OK)
		rc = store_commit(st);
	else
		store_rollback(st);
	if (rc != STORE_OK && rc != STORE_INVAL)
		snprintf(msg, msglen, "post %lld: %s", (long long)h.id, store_errmsg(st));
	store_held_clear(&h);
	if (rc == STORE_OK) {
		log_info("moderation: %s (by %s)", msg, r->by && *r->by ? r->by : "unknown");
		res = MODERATION_DONE;
	}
	goto out;
rollback:
	store_rollback(st);
out:
	template_free(own);
	free(reason);
	return res;
}

int moderation_expire_due(struct store *st, const struct config *cfg,
			  const struct templates *tmpl, const struct list_cfg *only, int64_t now,
			  size_t max, size_t *n, moderation_report_fn report, void *arg)
{
	int rc = STORE_OK;
	*n = 0;
	for (size_t k = 0; k < cfg->n_lists && rc == STORE_OK; k++) {
		const struct list_cfg *l = &cfg->lists[k];
		int64_t *ids = NULL;
		size_t m = 0;
		if ((only && only != l) || l->hold_expire <= 0)
			continue; /* hold_expire = 0: held until decided */
		if (max && *n >= max)
			break;
		rc = store_held_expired(st, l->name, now - l->hold_expire, max ? max - *n : 0, &ids,
					&m);
		for (size_t i = 0; i < m && rc == STORE_OK; i++) {
			char msg[512];
			struct moderation_request r = {
				.held_id = ids[i],
				.action = MODERATION_EXPIRE,
				.by = "expiry",
			};
			enum moderation_result res = moderation_decide(st, cfg, tmpl, &r, msg,
								       sizeof msg);
			if (report)
				report(arg, ids[i], res, msg);
			if (res == MODERATION_DONE)
				(*n)++;
			else if (res == MODERATION_ERROR)
				rc = STORE_ERR; /* the database is in trouble: stop here */
		}
		free(ids);
	}
	return rc;
}
