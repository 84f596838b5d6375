/* subscribe: the decisions on mail — who joins, who leaves, which token
 * is good, what is answered and what is not (subscribe_apply). */
#include "subscribe_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"

/* How long spent or expired tokens are kept, so a late reply still gets
 * "expired" or "already used" rather than "unknown". */
#define TOKEN_KEEP (30 * SUBSCRIBE_DAY)

static int from_membership(int mrc)
{
	if (mrc == MEMBERSHIP_BUSY)
		return STORE_BUSY;
	return subscribe_fail("membership: database failure");
}

/* The member row of ADDRESS: STORE_OK with *is = 1 and STATUS copied
 * (when not NULL, room for 33), or *is = 0. */
int subscribe_member_status(struct subscribe_ctx *c, const char *address, int *is, char *status)
{
	struct store_member m;
	*is = 0;
	int rc = store_member_get(c->st, c->l->name, address, &m);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	*is = 1;
	if (status)
		snprintf(status, 33, "%s", m.status);
	store_member_free(&m);
	return STORE_OK;
}

/* Would the list's rules take ADDRESS (with NAME, dropped when it is not
 * acceptable text)? *use_name gets the name to store. On refusal, MSG. */
static int check_rules(const struct list_cfg *l, const char *address, const char *name,
		       const char *stakeholder, const char **use_name, char *msg, size_t msglen)
{
	struct store_member row;
	char *abuf;
	struct membership_new m = {.address = address, .name = name, .stakeholder = stakeholder};
	*use_name = name ? name : "";
	int rc = membership_check(l, &m, &row, &abuf, msg, msglen);
	free(abuf);
	if (rc == MEMBERSHIP_OK || !name || !*name)
		return rc;
	m.name = "";
	rc = membership_check(l, &m, &row, &abuf, msg, msglen);
	free(abuf);
	if (rc == MEMBERSHIP_OK)
		*use_name = "";
	return rc;
}

/* A new member's one-click unsubscribe token (RFC 8058), stored now so
 * every copy and page can name it. */
static int give_unsubscribe_token(struct subscribe_ctx *c, const char *address)
{
	char tok[TOKEN_LEN + 1];
	if (token_new(tok) < 0)
		return subscribe_fail("no random bytes for a token");
	char *addr = membership_address(address, NULL, 0);
	int rc = addr ? store_member_set_token(c->st, c->l->name, addr, tok) : STORE_OK;
	free(addr);
	return rc;
}

/* The "refused" mail. REASON is a sentence of the rules (membership.h),
 * or NULL for a closed list, whose template says so itself. */
static int refuse(struct subscribe_ctx *c, const char *to, const char *reason)
{
	char text[600] = "";
	if (reason && *reason) {
		/* The rules write "dialoguectl: ..." sentences; a mail wants one
		 * that starts and ends like a sentence. */
		snprintf(text, sizeof text, "%c%s.",
			 *reason >= 'a' && *reason <= 'z' ? *reason - 'a' + 'A' : *reason,
			 reason + 1);
	}
	const struct template_var vars[] = {{"address", to}, {"reason", text}};
	subscribe_note(c, "refused (%s)", reason ? reason : "closed list");
	return subscribe_answer(c, "refused", to, vars, 2, 1);
}

/* Why a join request cannot be taken, before any other check: NULL when
 * it can. A list with stakeholder groups takes only requests that name
 * one (the web form asks; a mail cannot). */
static const char *no_joins(const struct list_cfg *l, int invited, const char *stakeholder)
{
	if (invited)
		return NULL;
	if (l->subscribe_policy == SUB_CLOSED)
		return "";
	if (l->n_groups > 0 && (!stakeholder || !*stakeholder))
		return "its members are added by the people who run it, each with a "
		       "stakeholder group";
	return NULL;
}

int subscribe_list_full(struct subscribe_ctx *c, const char *to, int automatic)
{
	char max[32];
	snprintf(max, sizeof max, "%ld", c->l->max_members);
	const struct template_var vars[] = {{"address", to}, {"max_members", max}};
	subscribe_note(c, "list full (%ld members)", c->l->max_members);
	return subscribe_answer(c, "list-full", to, vars, 2, automatic);
}

static int already_member(struct subscribe_ctx *c, const char *to, const char *status)
{
	const struct template_var vars[] = {{"address", to}, {"status", status}};
	subscribe_note(c, "already a member (%s)", status);
	return subscribe_answer(c, "already-member", to, vars, 2, 1);
}

int subscribe_join(struct subscribe_ctx *c, const char *addr, const char *req_name,
		   const char *stakeholder)
{
	char status[33], msg[512];
	int is, rc;
	if (c->quiet) {
		subscribe_note(c, "ignored (%s)", c->quiet);
		return STORE_OK;
	}
	if ((rc = subscribe_member_status(c, addr, &is, status)) != STORE_OK)
		return rc;
	if (is)
		return already_member(c, addr, status);
	const char *why = no_joins(c->l, 0, stakeholder);
	if (why)
		return refuse(c, addr, *why ? why : NULL);
	const char *name;
	int mrc = check_rules(c->l, addr, req_name, stakeholder, &name, msg, sizeof msg);
	if (mrc != MEMBERSHIP_OK)
		return refuse(c, addr, msg);
	if (c->l->max_members > 0) {
		long n = 0;
		if ((rc = store_member_count(c->st, c->l->name, &n)) != STORE_OK)
			return rc;
		if (n >= c->l->max_members)
			return subscribe_list_full(c, addr, 1);
	}
	if (c->l->subscribe_policy != SUB_OPEN || c->web) {
		int sent;
		return subscribe_confirmation(c, "join", "confirm-join", addr, name, stakeholder,
					      1, &sent);
	}
	struct membership_new m = {.address = addr, .name = name, .stakeholder = stakeholder};
	mrc = membership_add(c->st, c->l, &m, msg, sizeof msg);
	if (mrc == MEMBERSHIP_FULL)
		return subscribe_list_full(c, addr, 1);
	if (mrc == MEMBERSHIP_EXISTS)
		return already_member(c, addr, "active");
	if (mrc == MEMBERSHIP_BAD_ADDRESS || mrc == MEMBERSHIP_BAD_VALUE)
		return refuse(c, addr, msg);
	if (mrc != MEMBERSHIP_OK)
		return from_membership(mrc);
	if ((rc = give_unsubscribe_token(c, addr)) != STORE_OK)
		return rc;
	subscribe_note(c, "member added (open list)");
	const struct template_var vars[] = {{"address", addr}, {"name", name}};
	return subscribe_answer(c, "welcome", addr, vars, 2, 1);
}

static int leave_request(struct subscribe_ctx *c, const struct subscribe_prep *prep)
{
	const char *addr = prep->address;
	int is, rc, sent;
	if (c->quiet) {
		subscribe_note(c, "ignored (%s)", c->quiet);
		return STORE_OK;
	}
	if ((rc = subscribe_member_status(c, addr, &is, NULL)) != STORE_OK)
		return rc;
	if (!is) {
		const struct template_var vars[] = {{"address", addr}};
		subscribe_note(c, "not a member");
		return subscribe_answer(c, "not-member", addr, vars, 1, 1);
	}
	return subscribe_confirmation(c, "leave", "confirm-leave", addr, NULL, NULL, 1, &sent);
}

static int help_request(struct subscribe_ctx *c, const struct subscribe_prep *prep,
			const char *unknown)
{
	if (c->quiet) {
		subscribe_note(c, "ignored (%s)", c->quiet);
		return STORE_OK;
	}
	const struct template_var vars[] = {{"address", prep->address}, {"command", unknown}};
	return subscribe_answer(c, "help", prep->address, vars, 2, 1);
}

/* The moderators of the list are told that ADDRESS waits for approval. */
static int notify_moderators(struct subscribe_ctx *c, const char *address, const char *name,
			     const char *stakeholder)
{
	const struct list_cfg *l = c->l;
	if (l->n_moderators == 0) {
		subscribe_note(c, "no moderator to tell");
		return STORE_OK;
	}
	/* The template writes the approve/deny commands itself, with the
	 * address quoted for a shell ({{address_shell}}): a valid address may
	 * hold ` $ | and a moderator pastes the line. */
	const struct template_var vars[] = {
		{"address", address},
		{"name", name},
		{"stakeholder", stakeholder},
	};
	int rc = STORE_OK;
	for (size_t i = 0; i < l->n_moderators && rc == STORE_OK; i++) {
		int sent;
		rc = subscribe_send(c, "moderator-pending", l->moderators[i], NULL, vars,
				    sizeof vars / sizeof vars[0], &sent);
	}
	if (rc == STORE_OK)
		subscribe_note(c, "%zu moderator(s) told", l->n_moderators);
	return rc;
}

/* A join or invitation token came back: add the member it names. */
static int complete_join(struct subscribe_ctx *c, const struct store_token *tok)
{
	char status[33], msg[512];
	int is, rc;
	if ((rc = subscribe_member_status(c, tok->address, &is, status)) != STORE_OK)
		return rc;
	if (is)
		return already_member(c, tok->address, status);
	int invited = !strcmp(tok->action, "invite");
	const char *why = no_joins(c->l, invited, tok->stakeholder);
	if (why)
		return refuse(c, tok->address, *why ? why : NULL);
	int approve = !invited && c->l->subscribe_policy == SUB_APPROVE;
	const char *name;
	int mrc = check_rules(c->l, tok->address, tok->name, tok->stakeholder, &name, msg,
			      sizeof msg);
	if (mrc == MEMBERSHIP_OK) {
		struct membership_new m = {
			.address = tok->address,
			.name = name,
			.stakeholder = tok->stakeholder,
			.status = approve ? "pending" : "active",
		};
		mrc = membership_add(c->st, c->l, &m, msg, sizeof msg);
	}
	if (mrc == MEMBERSHIP_FULL)
		return subscribe_list_full(c, tok->address, 1);
	if (mrc == MEMBERSHIP_EXISTS)
		return already_member(c, tok->address, "active");
	if (mrc == MEMBERSHIP_BAD_ADDRESS || mrc == MEMBERSHIP_BAD_VALUE)
		return refuse(c, tok->address, msg);
	if (mrc != MEMBERSHIP_OK)
		return from_membership(mrc);
	if ((rc = give_unsubscribe_token(c, tok->address)) != STORE_OK)
		return rc;
	const struct template_var vars[] = {{"address", tok->address}, {"name", name}};
	if (!approve) {
		subscribe_note(c, "member added");
		return subscribe_answer(c, "welcome", tok->address, vars, 2, 1);
	}
	subscribe_note(c, "waiting for a moderator's approval");
	rc = subscribe_answer(c, "pending-approval", tok->address, vars, 2, 1);
	if (rc == STORE_OK)
		rc = notify_moderators(c, tok->address, name, tok->stakeholder);
	return rc;
}

static int complete_leave(struct subscribe_ctx *c, const struct store_token *tok)
{
	char msg[512];
	int mrc = membership_remove(c->st, c->l, tok->address, msg, sizeof msg);
	const struct template_var vars[] = {{"address", tok->address}, {"name", tok->name}};
	if (mrc == MEMBERSHIP_NOTFOUND) {
		subscribe_note(c, "not a member");
		return subscribe_answer(c, "not-member", tok->address, vars, 1, 1);
	}
	if (mrc != MEMBERSHIP_OK)
		return mrc == MEMBERSHIP_BAD_ADDRESS ? STORE_OK : from_membership(mrc);
	subscribe_note(c, "member removed");
	return subscribe_answer(c, "goodbye", tok->address, vars, 2, 1);
}

/* WHY: unknown, already used, expired or not for this list. */
static int token_invalid(struct subscribe_ctx *c, const struct subscribe_prep *prep,
			 const char *token, const char *why)
{
	static const char *const sentences[][2] = {
		{"unknown", "We did not send this code, or it was changed on the way."},
		{"already used", "The code has already been used: each one works only once."},
		{"expired", "The code has expired."},
		{"not for this list", "The code is not for this list: it came with a mail "
				      "about another list."},
	};
	const char *reason = "";
	for (size_t i = 0; i < sizeof sentences / sizeof sentences[0]; i++)
		if (!strcmp(why, sentences[i][0]))
			reason = sentences[i][1];
	const struct template_var vars[] = {
		{"address", prep->address},
		{"token", token},
		{"reason", reason},
	};
	subscribe_note(c, "token %s", why);
	return subscribe_answer(c, "token-invalid", prep->address, vars, 3, 1);
}

int subscribe_token_lookup(struct store *st, const char *token, int64_t now,
			   char hash[TOKEN_HASH_LEN + 1], struct store_token *tok,
			   enum subscribe_token_state *state)
{
	*state = SUBSCRIBE_TOKEN_UNKNOWN;
	memset(tok, 0, sizeof *tok);
	/* Only the shape of our tokens can match: anything else is not looked
	 * up (and a hash of it would match nothing anyway). */
	if (!token_syntax_ok(token))
		return STORE_OK;
	if (token_hash(token, hash) < 0)
		return subscribe_fail("no SHA-256 for a token");
	int rc = store_token_get(st, hash, tok);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	/* A moderation token (approve, reject, withdraw) is no confirmation:
	 * here it is as good as unknown. */
	if (strcmp(tok->action, "join") && strcmp(tok->action, "leave") &&
	    strcmp(tok->action, "invite"))
		store_token_clear(tok);
	else if (tok->used)
		*state = SUBSCRIBE_TOKEN_USED;
	else if (tok->expires <= now)
		*state = SUBSCRIBE_TOKEN_EXPIRED;
	else
		*state = SUBSCRIBE_TOKEN_OK;
	return STORE_OK;
}

int subscribe_carry_out(struct subscribe_ctx *c, const char *hash, const struct store_token *tok)
{
	int rc = store_token_use(c->st, hash, c->now);
	if (rc != STORE_OK)
		return rc; /* STORE_NOTFOUND: spent by a racing confirmation */
	subscribe_note(c, "%s of %s", tok->action, tok->address);
	if (!strcmp(tok->action, "leave"))
		return complete_leave(c, tok);
	return complete_join(c, tok);
}

static int confirm(struct subscribe_ctx *c, const struct subscribe_prep *prep, const char *token)
{
	static const char *const why[] = {
		[SUBSCRIBE_TOKEN_UNKNOWN] = "unknown",
		[SUBSCRIBE_TOKEN_USED] = "already used",
		[SUBSCRIBE_TOKEN_EXPIRED] = "expired",
	};
	char hash[TOKEN_HASH_LEN + 1];
	struct store_token tok;
	enum subscribe_token_state state;
	int rc = subscribe_token_lookup(c->st, token, c->now, hash, &tok, &state);
	if (rc != STORE_OK)
		return rc;
	if (state == SUBSCRIBE_TOKEN_UNKNOWN)
		rc = token_invalid(c, prep, token, why[state]);
	else if (strcmp(tok.list, c->l->name) != 0)
		rc = token_invalid(c, prep, token, "not for this list");
	else if (state != SUBSCRIBE_TOKEN_OK)
		rc = token_invalid(c, prep, token, why[state]);
	else if ((rc = subscribe_carry_out(c, hash, &tok)) == STORE_NOTFOUND)
		rc = token_invalid(c, prep, token, "already used");
	store_token_clear(&tok);
	return rc;
}

/* Forward a mail to L-owner to the moderators, as it came, marked. */
static int forward_owner(struct subscribe_ctx *c, const struct store_pending *p,
			 const struct subscribe_prep *prep)
{
	const struct list_cfg *l = c->l;
	if (prep->forwarded) {
		subscribe_note(c, "not forwarded (forwarded by us before: a loop)");
		return STORE_OK;
	}
	if (l->n_moderators == 0) {
		subscribe_note(c, "no moderator to forward to");
		return STORE_OK;
	}
	struct sbuf b = {0};
	sbuf_printf(&b, "X-Dialogue-Forwarded: owner of %s\r\n", l->name);
	sbuf_add(&b, p->raw, p->len);
	int rc = subscribe_queue(c, b.buf, b.len, (const char *const *)l->moderators,
				 l->n_moderators);
	sbuf_free(&b);
	if (rc == STORE_OK)
		subscribe_note(c, "forwarded to %zu moderator(s)", l->n_moderators);
	return rc;
}

static void begin_outcome(struct subscribe_ctx *c, const struct subscribe_act *a,
			  const struct subscribe_prep *prep)
{
	const char *who = *prep->address ? prep->address : "<>";
	const char *name = a->list->name;
	c->notes = 0;
	c->out.len = 0;
	switch (a->kind) {
	case SUBSCRIBE_ACT_JOIN:
		sbuf_printf(&c->out, "join %s to %s: ", who, name);
		break;
	case SUBSCRIBE_ACT_LEAVE:
		sbuf_printf(&c->out, "leave %s from %s: ", who, name);
		break;
	case SUBSCRIBE_ACT_CONFIRM:
		sbuf_printf(&c->out, "confirm for %s from %s: ", name, who);
		break;
	case SUBSCRIBE_ACT_HELP:
		sbuf_printf(&c->out, "help request from %s to %s: ", who, name);
		break;
	case SUBSCRIBE_ACT_OWNER:
		sbuf_printf(&c->out, "owner mail from %s to %s: ", who, name);
		break;
	}
}

int subscribe_apply(struct store *st, const struct config *cfg, const struct templates *t,
		    const struct store_pending *p, struct subscribe_prep *prep, size_t *queued)
{
	*queued = 0;
	if (prep->n_acts == 0)
		return STORE_OK;
	struct templates *defaults = NULL;
	if (!t) {
		char err[256];
		t = defaults = template_load(NULL, err, sizeof err);
		if (!t) {
			log_err("subscribe: built-in templates: %s", err);
			return STORE_ERR;
		}
	}
	struct subscribe_ctx c = {
		.st = st,
		.cfg = cfg,
		.t = t,
		.raw_id = p->id,
		.now = now_epoch(),
		.ip = p->client_ip ? p->client_ip : "",
		.quiet = prep->quiet,
	};
	int rc = store_subs_purge(st, c.now - TOKEN_KEEP, c.now - 2 * SUBSCRIBE_DAY);
	for (size_t i = 0; i < prep->n_acts && rc == STORE_OK; i++) {
		struct subscribe_act *a = &prep->acts[i];
		c.l = a->list;
		begin_outcome(&c, a, prep);
		switch (a->kind) {
		case SUBSCRIBE_ACT_JOIN:
			rc = subscribe_join(&c, prep->address, prep->name, NULL);
			break;
		case SUBSCRIBE_ACT_LEAVE:
			rc = leave_request(&c, prep);
			break;
		case SUBSCRIBE_ACT_CONFIRM:
			rc = confirm(&c, prep, a->arg);
			break;
		case SUBSCRIBE_ACT_HELP:
			rc = help_request(&c, prep, a->arg);
			break;
		case SUBSCRIBE_ACT_OWNER:
			rc = forward_owner(&c, p, prep);
			break;
		}
		if (!c.notes)
			subscribe_note(&c, "nothing to do");
		free(a->outcome);
		a->outcome = xstrndup(c.out.buf, c.out.len);
	}
	sbuf_free(&c.out);
	template_free(defaults);
	if (rc == STORE_OK)
		*queued = c.queued;
	return rc;
}
