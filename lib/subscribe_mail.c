/* subscribe: the mails of subscriptions — composed from the templates,
 * queued from L-bounces@D, and counted against the abuse limits — and the
 * check that the templates can carry a token. */
#include "subscribe_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Rate-limit counters (store_rate_*), keyed by lowercase address or IP. */
#define RATE_CONFIRM_ADDR "confirm-address"
#define RATE_CONFIRM_IP "confirm-ip"
#define RATE_AUTO_REPLY "auto-reply"

int subscribe_fail(const char *why)
{
	log_err("subscribe: %s", why);
	return STORE_ERR;
}



void subscribe_note(struct subscribe_ctx *c, const char *fmt, ...)
{
	va_list ap;
	if (c->notes++)
		sbuf_adds(&c->out, ", ");
	char buf[512];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	sbuf_adds(&c->out, buf);
}

/* ---- counters ---- */

/* The counter key of KEY: lowercased, and for an address its "+detail"
 * dropped, so v+1@x, v+2@x ... all draw on v@x's allowance (one mailbox,
 * one budget). Caller frees. */
static char *counter_key(const char *key)
{
	/* An IPv6 client holds a whole /64 (SLAAC, privacy addresses): the
	 * network, not the address, is the one to count, or each request
	 * could come from a fresh address. */
	struct in6_addr a6;
	if (strchr(key, ':') && inet_pton(AF_INET6, key, &a6) == 1 &&
	    !IN6_IS_ADDR_V4MAPPED(&a6)) {
		char buf[INET6_ADDRSTRLEN + 4];
		memset(a6.s6_addr + 8, 0, 8);
		if (inet_ntop(AF_INET6, &a6, buf, sizeof buf)) {
			strcat(buf, "/64");
			return xstrdup(buf);
		}
	}
	char *k = xstrdup(key);
	ascii_lower(k);
	char *at = strrchr(k, '@');
	char *plus = at ? memchr(k, '+', (size_t)(at - k)) : NULL;
	if (plus && plus != k)
		memmove(plus, at, strlen(at) + 1);
	return k;
}

/* *ok = whether KEY is under LIMIT (0 = no limit) in the window of SPAN
 * seconds that holds NOW. */
static int counter_ok(struct store *st, const char *kind, const char *key, int64_t now,
		      int64_t span, long limit, int *ok)
{
	*ok = 1;
	if (limit <= 0 || !key || !*key)
		return STORE_OK;
	char *k = counter_key(key);
	long n = 0;
	int rc = store_rate_get(st, kind, k, now / span * span, &n);
	free(k);
	if (rc == STORE_OK && n >= limit)
		*ok = 0;
	return rc;
}

static int counter_bump(struct store *st, const char *kind, const char *key, int64_t now,
			int64_t span)
{
	if (!key || !*key)
		return STORE_OK;
	char *k = counter_key(key);
	int rc = store_rate_bump(st, kind, k, now / span * span);
	free(k);
	return rc;
}

static int rate_ok(struct subscribe_ctx *c, const char *kind, const char *key, int64_t span,
		   long limit, int *ok)
{
	return counter_ok(c->st, kind, key, c->now, span, limit, ok);
}

static int rate_bump(struct subscribe_ctx *c, const char *kind, const char *key, int64_t span)
{
	return counter_bump(c->st, kind, key, c->now, span);
}

int subscribe_auto_reply_ok(struct store *st, const struct config *cfg, const char *address,
			    int64_t now, int *ok)
{
	return counter_ok(st, RATE_AUTO_REPLY, address, now, SUBSCRIBE_DAY,
			  cfg->auto_replies_per_day, ok);
}

int subscribe_auto_reply_count(struct store *st, const char *address, int64_t now)
{
	return counter_bump(st, RATE_AUTO_REPLY, address, now, SUBSCRIBE_DAY);
}

/* ---- mails ---- */

/* Queue BODY from L-bounces@D (bounces of our own mail come back to us;
 * no VERP: one recipient, or moderators) to RCPTS. */
int subscribe_queue(struct subscribe_ctx *c, const char *body, size_t len, const char *const *rcpts,
		    size_t n)
{
	char *bounces = xasprintf("%s-bounces@%s", c->l->local, c->l->domain);
	struct store_outbound o = {
		.list = c->l->name,
		.kind = "notice",
		.raw_id = c->raw_id,
		.mail_from = bounces,
		.verp = 0,
		.body = body,
		.len = len,
		.rcpts = rcpts,
		.n_rcpts = n,
		.now = c->now,
	};
	int rc = store_outbound_add(c->st, &o, NULL);
	free(bounces);
	if (rc == STORE_OK)
		c->queued += n;
	return rc;
}

/* Compose template NAME to TO and queue it; *sent says whether it went. */
int subscribe_send(struct subscribe_ctx *c, const char *name, const char *to, const char *reply_to,
		   const struct template_var *vars, size_t n, int *sent)
{
	size_t len = 0;
	*sent = 0;
	char *m = template_compose(c->t, c->cfg, c->l, name, vars, n, to, reply_to, NULL, &len);
	if (!m) {
		log_err("subscribe: the %s mail to %s could not be composed", name, to);
		subscribe_note(c, "the %s mail could not be composed", name);
		return STORE_OK;
	}
	int rc = subscribe_queue(c, m, len, &to, 1);
	free(m);
	if (rc == STORE_OK)
		*sent = 1;
	return rc;
}

/* Send template NAME to TO. AUTOMATIC: an automatic reply, which is not
 * sent for a quiet message or past auto_replies_per_day for TO. */
int subscribe_answer(struct subscribe_ctx *c, const char *name, const char *to,
		     const struct template_var *vars, size_t n, int automatic)
{
	int ok = 1, sent = 0, rc;
	if (!to || !*to) {
		subscribe_note(c, "nobody to answer");
		return STORE_OK;
	}
	if (automatic && c->quiet) {
		subscribe_note(c, "not answered (%s)", c->quiet);
		return STORE_OK;
	}
	if (automatic) {
		rc = rate_ok(c, RATE_AUTO_REPLY, to, SUBSCRIBE_DAY, c->cfg->auto_replies_per_day,
			     &ok);
		if (rc != STORE_OK)
			return rc;
	}
	if (!ok) {
		subscribe_note(c, "not answered (%ld automatic replies to %s today)",
			       c->cfg->auto_replies_per_day, to);
		return STORE_OK;
	}
	if ((rc = subscribe_send(c, name, to, NULL, vars, n, &sent)) != STORE_OK)
		return rc;
	if (sent && automatic)
		rc = rate_bump(c, RATE_AUTO_REPLY, to, SUBSCRIBE_DAY);
	if (sent)
		subscribe_note(c, "%s mail sent", name);
	return rc;
}

/* "2026-12-03 07:41 UTC" into BUF[32]. */
static void human_time(int64_t t, char buf[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(buf, 32, "%Y-%m-%d %H:%M UTC", &tm))
		snprintf(buf, 32, "%lld", (long long)t);
}

/* Store a new token for (L, ADDRESS, ACTION) and send its confirmation
 * mail, template TMPL, Reply-To L-confirm+TOKEN@D. AUTOMATIC (a request
 * by mail): within the per-address, per-IP and auto-reply limits. */
int subscribe_confirmation(struct subscribe_ctx *c, const char *action, const char *tmpl,
			   const char *address, const char *name, const char *stakeholder,
			   int automatic, int *sent)
{
	const struct config *cfg = c->cfg;
	int ok = 1, rc = STORE_OK;
	*sent = 0;
	if (automatic) {
		if (c->quiet) {
			subscribe_note(c, "not answered (%s)", c->quiet);
			return STORE_OK;
		}
		rc = rate_ok(c, RATE_CONFIRM_ADDR, address, SUBSCRIBE_DAY,
			     cfg->confirm_per_address_per_day, &ok);
		if (rc == STORE_OK && !ok) {
			subscribe_note(c, "confirmation not sent (%ld sent to %s today)",
				       cfg->confirm_per_address_per_day, address);
			return STORE_OK;
		}
		if (rc == STORE_OK)
			rc = rate_ok(c, RATE_CONFIRM_IP, c->ip, SUBSCRIBE_HOUR,
				     cfg->confirm_per_ip_per_hour, &ok);
		if (rc == STORE_OK && !ok) {
			subscribe_note(c, "confirmation not sent (%ld requests from %s this hour)",
				       cfg->confirm_per_ip_per_hour, c->ip);
			return STORE_OK;
		}
		if (rc == STORE_OK)
			rc = rate_ok(c, RATE_AUTO_REPLY, address, SUBSCRIBE_DAY,
				     cfg->auto_replies_per_day, &ok);
		if (rc == STORE_OK && !ok) {
			subscribe_note(c, "confirmation not sent (%ld auto-replies to %s today)",
				       cfg->auto_replies_per_day, address);
			return STORE_OK;
		}
		if (rc != STORE_OK)
			return rc;
	}
	char tok[TOKEN_LEN + 1], hash[TOKEN_HASH_LEN + 1];
	if (token_new(tok) < 0 || token_hash(tok, hash) < 0)
		return subscribe_fail("no random bytes for a token");
	struct store_token row = {
		.list = (char *)c->l->name,
		.address = (char *)address,
		.action = (char *)action,
		.name = (char *)(name ? name : ""),
		.stakeholder = (char *)(stakeholder ? stakeholder : ""),
		.created = c->now,
		.expires = c->now + cfg->token_lifetime,
	};
	if ((rc = store_token_add(c->st, hash, &row)) != STORE_OK)
		return rc;
	char *confirm = xasprintf("%s-confirm+%s@%s", c->l->local, tok, c->l->domain);
	/* The link only when the website is on: a link that does not work is
	 * worse than none. Its page asks before it acts (scanners prefetch). */
	char *url = NULL;
	if (cfg->n_http_listen && cfg->base_url && cfg->base_url[0]) {
		size_t n = strlen(cfg->base_url);
		while (n > 0 && cfg->base_url[n - 1] == '/')
			n--;
		url = xasprintf("%.*s/confirm/%s", (int)n, cfg->base_url, tok);
	}
	char expires[32];
	human_time(row.expires, expires);
	const struct template_var vars[] = {
		{"token", tok},
		{"confirm_address", confirm},
		{"confirm_url", url ? url : ""},
		{"address", address},
		{"name", row.name},
		{"stakeholder", row.stakeholder},
		{"action", action},
		{"expires", expires},
	};
	rc = subscribe_send(c, tmpl, address, confirm, vars, sizeof vars / sizeof vars[0], sent);
	free(confirm);
	free(url);
	if (rc != STORE_OK || !*sent)
		return rc;
	subscribe_note(c, "confirmation sent");
	if (automatic) {
		rc = rate_bump(c, RATE_CONFIRM_ADDR, address, SUBSCRIBE_DAY);
		if (rc == STORE_OK)
			rc = rate_bump(c, RATE_CONFIRM_IP, c->ip, SUBSCRIBE_HOUR);
		if (rc == STORE_OK)
			rc = rate_bump(c, RATE_AUTO_REPLY, address, SUBSCRIBE_DAY);
	}
	return rc;
}

/* ---- template checks ---- */

int subscribe_check_templates(const struct templates *t, const struct config *cfg, char *err,
			      size_t errlen)
{
	static const char *const names[] = {"confirm-join", "confirm-leave", "invite"};
	static const char probe[] = "Probe0Token0Probe0Tok0"; /* TOKEN_LEN characters */
	if (cfg->n_lists == 0)
		return 0;
	const struct list_cfg *l = &cfg->lists[0];
	char *confirm = xasprintf("%s-confirm+%s@%s", l->local, probe, l->domain);
	const struct template_var vars[] = {{"token", probe}, {"confirm_address", confirm}};
	int rc = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0] && rc == 0; i++) {
		size_t len = 0;
		char *m = template_compose(t, cfg, l, names[i], vars, 2, "probe@example.org",
					   confirm, NULL, &len);
		if (!m) {
			snprintf(err, errlen, "%s/%s.txt: the %s mail cannot be composed",
				 cfg->templates ? cfg->templates : ".", names[i], names[i]);
			rc = -1;
			break;
		}
		struct msg_info mi;
		msg_parse(m, len, cfg->hostname, &mi);
		if (!strstr(mi.subject, probe)) {
			/* Only a file can lack it: the built-in texts have it. */
			snprintf(err, errlen,
				 "%s/%s.txt:1: the Subject must contain {{token}}, so that a "
				 "reply carries it",
				 cfg->templates ? cfg->templates : ".", names[i]);
			rc = -1;
		}
		msg_info_free(&mi);
		free(m);
	}
	free(confirm);
	return rc;
}
