/* subscribe_web: joining and leaving through the website. The same
 * decisions as by mail (subscribe.c); only the way in differs. Each
 * request is one transaction, and its answer to the person is a mail or
 * nothing, so that the page itself never tells who is a member. */
#include "subscribe_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"

void subscribe_web_result_clear(struct subscribe_web_result *r)
{
	free(r->outcome);
	r->outcome = NULL;
}

static void web_ctx(struct subscribe_ctx *c, struct store *st, const struct config *cfg,
		    const struct templates *t, const struct list_cfg *l, const char *ip,
		    int64_t now)
{
	memset(c, 0, sizeof *c);
	c->st = st;
	c->cfg = cfg;
	c->t = t;
	c->l = l;
	c->now = now;
	c->ip = ip ? ip : "";
	c->web = 1;
}

/* Commit what C did when RC is STORE_OK, else roll back; the outcome goes
 * to R either way. */
static int finish(struct subscribe_ctx *c, int rc, struct subscribe_web_result *r)
{
	if (rc == STORE_OK)
		rc = store_commit(c->st);
	if (rc != STORE_OK)
		store_rollback(c->st);
	free(r->outcome);
	r->outcome = sbuf_detach(&c->out);
	return rc;
}

int subscribe_web_join(struct store *st, const struct config *cfg, const struct templates *t,
		       const struct list_cfg *l, const char *address, const char *name,
		       const char *stakeholder, const char *ip, int64_t now,
		       struct subscribe_web_result *r)
{
	struct membership_new m = {.address = address, .name = name, .stakeholder = stakeholder};
	struct store_member row;
	char *addr = NULL, msg[512];
	struct subscribe_ctx c;

	/* A typing mistake is told on the page, before any mail or counter:
	 * it says nothing about who is a member. */
	r->verdict = membership_check(l, &m, &row, &addr, msg, sizeof msg);
	if (r->verdict != MEMBERSHIP_OK) {
		free(addr);
		/* A name that is not acceptable is dropped, as by mail. */
		if (r->verdict != MEMBERSHIP_BAD_VALUE || !name || !*name)
			return STORE_OK;
		m.name = "";
		r->verdict = membership_check(l, &m, &row, &addr, msg, sizeof msg);
		if (r->verdict != MEMBERSHIP_OK) {
			free(addr);
			return STORE_OK;
		}
	}
	web_ctx(&c, st, cfg, t, l, ip, now);
	sbuf_printf(&c.out, "web join %s to %s from %s: ", addr, l->name, c.ip);
	int rc = store_begin(st);
	if (rc == STORE_OK)
		rc = subscribe_join(&c, addr, row.name, row.stakeholder);
	rc = finish(&c, rc, r);
	free(addr);
	return rc;
}

int subscribe_web_confirm(struct store *st, const struct config *cfg, const struct templates *t,
			  const char *token, const char *ip, int64_t now,
			  struct subscribe_web_result *r)
{
	char hash[TOKEN_HASH_LEN + 1];
	struct store_token tok;
	struct subscribe_ctx c;
	int rc = store_begin(st);
	if (rc != STORE_OK)
		return rc;
	rc = subscribe_token_lookup(st, token, now, hash, &tok, &r->state);
	const struct list_cfg *l =
		rc == STORE_OK && r->state == SUBSCRIBE_TOKEN_OK ? config_find_list(cfg, tok.list)
								  : NULL;
	if (rc != STORE_OK || !l) {
		/* A list removed from the config since the mail went out: its
		 * token leads nowhere. */
		if (rc == STORE_OK && r->state == SUBSCRIBE_TOKEN_OK)
			r->state = SUBSCRIBE_TOKEN_UNKNOWN;
		store_rollback(st);
		store_token_clear(&tok);
		return rc;
	}
	web_ctx(&c, st, cfg, t, l, ip, now);
	sbuf_printf(&c.out, "web confirm for %s: ", l->name);
	rc = subscribe_carry_out(&c, hash, &tok);
	if (rc == STORE_NOTFOUND) {
		r->state = SUBSCRIBE_TOKEN_USED;
		rc = STORE_OK;
	}
	store_token_clear(&tok);
	return finish(&c, rc, r);
}

int subscribe_web_one_click(struct store *st, const struct config *cfg, const struct templates *t,
			const struct list_cfg *l, const char *token, int64_t now,
			struct subscribe_web_result *r)
{
	struct store_member m;
	struct subscribe_ctx c;
	char msg[512];
	r->found = 0;
	int rc = store_begin(st);
	if (rc != STORE_OK)
		return rc;
	rc = store_member_by_token(st, l->name, token, &m);
	if (rc == STORE_NOTFOUND) {
		store_rollback(st);
		return STORE_OK;
	}
	if (rc != STORE_OK) {
		store_rollback(st);
		return rc;
	}
	r->found = 1;
	web_ctx(&c, st, cfg, t, l, "", now);
	sbuf_printf(&c.out, "one-click unsubscribe of %s from %s: ", m.address, l->name);
	int mrc = membership_remove(st, l, m.address, msg, sizeof msg);
	if (mrc == MEMBERSHIP_OK) {
		subscribe_note(&c, "member removed");
		const struct template_var vars[] = {{"address", m.address}, {"name", m.name}};
		rc = subscribe_answer(&c, "goodbye", m.address, vars, 2, 1);
	} else if (mrc == MEMBERSHIP_BUSY) {
		rc = STORE_BUSY;
	} else {
		rc = subscribe_fail("membership: database failure");
	}
	store_member_free(&m);
	return finish(&c, rc, r);
}
