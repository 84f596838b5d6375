/* subscribe: a moderator's acts (dialoguectl) — invitations, and the
 * decision on requests waiting for approval — each with its mail, in one
 * transaction. */
#include "subscribe_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"

static int say(char *msg, size_t msglen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int say(char *msg, size_t msglen, int code, const char *fmt, ...)
{
	va_list ap;
	if (msg && msglen) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int store_code(struct store *st, int rc, char *msg, size_t msglen, const char *what)
{
	if (rc == STORE_BUSY)
		return say(msg, msglen, MEMBERSHIP_BUSY, "database is busy, try again");
	return say(msg, msglen, MEMBERSHIP_STORE, "%s: %s", what, store_errmsg(st));
}

static void cli_ctx(struct subscribe_ctx *c, struct store *st, const struct config *cfg,
		    const struct templates *t, const struct list_cfg *l)
{
	memset(c, 0, sizeof *c);
	c->st = st;
	c->cfg = cfg;
	c->t = t;
	c->l = l;
	c->now = now_epoch();
	c->ip = "";
}

/* End the transaction begun for a moderator's act: commit when RC (the
 * outcome of its writes) is STORE_OK, else (or when the commit fails) undo
 * every write, the queued mail included. */
static int in_tx(struct subscribe_ctx *c, int rc, char *msg, size_t msglen, const char *what)
{
	if (rc == STORE_OK && (rc = store_commit(c->st)) == STORE_OK)
		return MEMBERSHIP_OK;
	store_rollback(c->st);
	return store_code(c->st, rc, msg, msglen, what);
}

int subscribe_invite(struct store *st, const struct config *cfg, const struct templates *t,
		     const struct list_cfg *l, const char *address, const char *name,
		     const char *stakeholder, int64_t *expires, char *msg, size_t msglen)
{
	struct membership_new m = {.address = address, .name = name, .stakeholder = stakeholder};
	struct store_member row;
	char *addr;
	struct subscribe_ctx c;
	int rc = membership_check(l, &m, &row, &addr, msg, msglen);
	if (rc != MEMBERSHIP_OK)
		return rc;
	cli_ctx(&c, st, cfg, t, l);
	int is, src = store_begin(st);
	if (src != STORE_OK) {
		rc = store_code(st, src, msg, msglen, "inviting");
		goto out;
	}
	src = subscribe_member_status(&c, addr, &is, NULL);
	if (src == STORE_OK && is) {
		store_rollback(st);
		rc = say(msg, msglen, MEMBERSHIP_EXISTS, "%s is already a member of %s", addr,
			 l->name);
		goto out;
	}
	long n = 0;
	if (src == STORE_OK && l->max_members > 0)
		src = store_member_count(st, l->name, &n);
	if (src == STORE_OK && l->max_members > 0 && n >= l->max_members) {
		store_rollback(st);
		rc = say(msg, msglen, MEMBERSHIP_FULL,
			 "list %s is full: it has its maximum of %ld members", l->name,
			 l->max_members);
		goto out;
	}
	int sent = 0;
	if (src == STORE_OK)
		src = subscribe_confirmation(&c, "invite", "invite", addr, row.name,
					     row.stakeholder, 0, &sent);
	if (src == STORE_OK && !sent) {
		store_rollback(st);
		rc = say(msg, msglen, MEMBERSHIP_STORE, "the invitation could not be composed");
		goto out;
	}
	rc = in_tx(&c, src, msg, msglen, "inviting");
	if (rc == MEMBERSHIP_OK && expires)
		*expires = c.now + cfg->token_lifetime;
out:
	sbuf_free(&c.out);
	free(addr);
	return rc;
}

/* The pending member ADDRESS of L, checked: MEMBERSHIP_OK with the
 * normalised address in *ADDR (caller frees), or an error with MSG. */
static int pending_member(struct store *st, const struct list_cfg *l, const char *address,
			  char **addr, char *msg, size_t msglen)
{
	struct store_member m;
	*addr = membership_address(address, msg, msglen);
	if (!*addr)
		return MEMBERSHIP_BAD_ADDRESS;
	int rc = store_member_get(st, l->name, *addr, &m);
	if (rc == STORE_NOTFOUND)
		rc = say(msg, msglen, MEMBERSHIP_NOTFOUND, "%s is not a member of %s", *addr,
			 l->name);
	else if (rc != STORE_OK)
		rc = store_code(st, rc, msg, msglen, "reading the member");
	else {
		rc = strcmp(m.status, "pending") ? say(msg, msglen, MEMBERSHIP_BAD_VALUE,
						       "%s is not waiting for approval on %s "
						       "(status %s)",
						       *addr, l->name, m.status)
						 : MEMBERSHIP_OK;
		store_member_free(&m);
	}
	if (rc != MEMBERSHIP_OK) {
		free(*addr);
		*addr = NULL;
	}
	return rc;
}

int subscribe_approve(struct store *st, const struct config *cfg, const struct templates *t,
		      const struct list_cfg *l, const char *address, char *msg, size_t msglen)
{
	char *addr;
	struct subscribe_ctx c;
	int rc = pending_member(st, l, address, &addr, msg, msglen);
	if (rc != MEMBERSHIP_OK)
		return rc;
	cli_ctx(&c, st, cfg, t, l);
	int src = store_begin(st);
	long n = 0;
	if (src == STORE_OK && l->max_members > 0)
		src = store_member_count(st, l->name, &n);
	/* Pending members already count toward the cap; only a cap lowered
	 * since can leave this one over it. */
	if (src == STORE_OK && l->max_members > 0 && n > l->max_members) {
		src = store_member_remove(st, l->name, addr);
		if (src == STORE_OK)
			src = subscribe_list_full(&c, addr, 0);
		rc = in_tx(&c, src, msg, msglen, "refusing");
		if (rc == MEMBERSHIP_OK)
			rc = say(msg, msglen, MEMBERSHIP_FULL,
				 "list %s is full (max_members %ld): %s was told and removed",
				 l->name, l->max_members, addr);
		goto out;
	}
	if (src == STORE_OK)
		src = store_member_set(st, l->name, addr, "status", "active");
	if (src == STORE_OK) {
		const struct template_var vars[] = {{"address", addr}};
		src = subscribe_answer(&c, "approved", addr, vars, 1, 0);
	}
	rc = in_tx(&c, src, msg, msglen, "approving");
out:
	sbuf_free(&c.out);
	free(addr);
	return rc;
}

int subscribe_deny(struct store *st, const struct config *cfg, const struct templates *t,
		   const struct list_cfg *l, const char *address, const char *reason, char *msg,
		   size_t msglen)
{
	char *addr;
	struct subscribe_ctx c;
	int rc = pending_member(st, l, address, &addr, msg, msglen);
	if (rc != MEMBERSHIP_OK)
		return rc;
	cli_ctx(&c, st, cfg, t, l);
	int src = store_begin(st);
	if (src == STORE_OK)
		src = store_member_remove(st, l->name, addr);
	if (src == STORE_OK) {
		const struct template_var vars[] = {{"address", addr},
						    {"reason", reason ? reason : ""}};
		src = subscribe_answer(&c, "denied", addr, vars, 2, 0);
	}
	rc = in_tx(&c, src, msg, msglen, "denying");
	sbuf_free(&c.out);
	free(addr);
	return rc;
}
