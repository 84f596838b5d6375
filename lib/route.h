/* route: which list and which function a recipient address names
 * (the address table of SPEC.md). */
#ifndef DIALOGUE_ROUTE_H
#define DIALOGUE_ROUTE_H

#include "config.h"

enum rcpt_kind {
	RCPT_POST,
	RCPT_JOIN,
	RCPT_LEAVE,
	RCPT_CONFIRM,
	RCPT_REQUEST,
	RCPT_OWNER,
	RCPT_BOUNCES,
	RCPT_APPROVE,
	RCPT_REJECT,
	RCPT_WITHDRAW
};

enum route_result {
	ROUTE_OK,
	ROUTE_BAD_SYNTAX,   /* 501 5.1.3 */
	ROUTE_UNKNOWN_USER, /* 550 5.1.1: list domain, no such address */
	ROUTE_NOT_OURS      /* 550 5.7.1: relaying denied */
};

#define ROUTE_DETAIL_MAX 256

struct route {
	const struct list_cfg *list;
	enum rcpt_kind kind;
	char detail[ROUTE_DETAIL_MAX]; /* token, or VERP-encoded member; "" */
};

/* Classify ADDR (no angle brackets) against the lists of CFG. */
enum route_result route_rcpt(const struct config *cfg, const char *addr, struct route *out);

/* Is ADDR list L's own address, L@D or any L-...@D (existing or not)?
 * Case-insensitive. For loop and forgery checks, not for routing. */
int route_is_list_address(const struct list_cfg *l, const char *addr);
/* The same for any list of CFG. */
int route_is_own_address(const struct config *cfg, const char *addr);

/* "post", "join", ... as stored in the database; and back (-1 unknown). */
const char *route_kind_name(enum rcpt_kind k);
int route_kind_from_name(const char *name);

#endif
