/* route: the address table of SPEC.md. A recipient is L@D itself, or
 * L-SUFFIX@D, or L-SUFFIX+DETAIL@D for the suffixes that carry a token or
 * a VERP-encoded member. */
#include "route.h"

#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "util.h"

struct suffix {
	const char *name;
	enum rcpt_kind kind;
	int detail; /* 0 none, 1 optional, 2 required */
};

static const struct suffix suffixes[] = {
	{"join", RCPT_JOIN, 0},       {"subscribe", RCPT_JOIN, 0},
	{"leave", RCPT_LEAVE, 0},     {"unsubscribe", RCPT_LEAVE, 0},
	{"confirm", RCPT_CONFIRM, 2}, {"request", RCPT_REQUEST, 0},
	{"owner", RCPT_OWNER, 0},     {"bounces", RCPT_BOUNCES, 1},
	{"approve", RCPT_APPROVE, 2}, {"reject", RCPT_REJECT, 2},
	{"withdraw", RCPT_WITHDRAW, 2},
};

static const char *const kind_names[] = {"post",    "join",   "leave",   "confirm",
					 "request", "owner",  "bounces", "approve",
					 "reject",  "withdraw"};

const char *route_kind_name(enum rcpt_kind k)
{
	return kind_names[k];
}

int route_kind_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof kind_names / sizeof *kind_names; i++)
		if (!strcmp(kind_names[i], name))
			return (int)i;
	return -1;
}

/* Match LOCAL (the recipient's local part, any case) against list L. */
static int match_list(const struct list_cfg *l, const char *local, struct route *out)
{
	size_t ll = strlen(l->local);
	if (ascii_strncasecmp(local, l->local, ll))
		return 0;
	const char *rest = local + ll;
	if (!*rest) {
		out->kind = RCPT_POST;
		return 1;
	}
	if (*rest != '-')
		return 0;
	rest++;
	const char *plus = strchr(rest, '+');
	size_t name_len = plus ? (size_t)(plus - rest) : strlen(rest);
	for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
		const struct suffix *s = &suffixes[i];
		if (strlen(s->name) != name_len || ascii_strncasecmp(rest, s->name, name_len))
			continue;
		const char *detail = plus ? plus + 1 : "";
		if ((plus && s->detail == 0) || (s->detail == 2 && !*detail) ||
		    strlen(detail) >= ROUTE_DETAIL_MAX)
			return 0;
		out->kind = s->kind;
		strcpy(out->detail, detail);
		return 1;
	}
	return 0;
}

enum route_result route_rcpt(const struct config *cfg, const char *addr, struct route *out)
{
	char *local, *domain, *buf;
	memset(out, 0, sizeof *out);
	if (!address_valid(addr) || address_split(addr, &local, &domain, &buf) < 0)
		return ROUTE_BAD_SYNTAX;
	enum route_result r = ROUTE_NOT_OURS;
	if (config_is_list_domain(cfg, domain)) {
		r = ROUTE_UNKNOWN_USER;
		/* RFC 5321 4.5.1: every domain we take mail for has a postmaster.
		 * Ours reaches the moderators of the domain's first list, like
		 * L-owner@D. */
		if (!ascii_strcasecmp(local, "postmaster")) {
			for (size_t i = 0; i < cfg->n_lists; i++) {
				if (ascii_strcasecmp(cfg->lists[i].domain, domain))
					continue;
				out->list = &cfg->lists[i];
				out->kind = RCPT_OWNER;
				free(buf);
				return ROUTE_OK;
			}
		}
		for (size_t i = 0; i < cfg->n_lists; i++) {
			const struct list_cfg *l = &cfg->lists[i];
			if (ascii_strcasecmp(l->domain, domain) || !match_list(l, local, out))
				continue;
			out->list = l;
			r = ROUTE_OK;
			break;
		}
	}
	free(buf);
	return r;
}

int route_is_list_address(const struct list_cfg *l, const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;
	size_t ll = strlen(l->local);
	if (!at || ascii_strcasecmp(at + 1, l->domain) != 0 || (size_t)(at - addr) < ll ||
	    ascii_strncasecmp(addr, l->local, ll) != 0)
		return 0;
	return addr + ll == at || addr[ll] == '-';
}

int route_is_own_address(const struct config *cfg, const char *addr)
{
	for (size_t i = 0; i < cfg->n_lists; i++)
		if (route_is_list_address(&cfg->lists[i], addr))
			return 1;
	return 0;
}
