/* membership: the rules for a list's members, applied the same way by
 * dialoguectl and dialogued: address syntax, stakeholder groups, the
 * max_members cap and membership terms. The store keeps the rows; this
 * module decides what may go into them.
 *
 * Every function returns MEMBERSHIP_OK or an error code, and on error
 * writes one human sentence without a trailing newline to MSG (for
 * "dialoguectl: MSG" or a reply mail). */
#ifndef DIALOGUE_MEMBERSHIP_H
#define DIALOGUE_MEMBERSHIP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

enum membership_err {
	MEMBERSHIP_OK = 0,
	MEMBERSHIP_BAD_ADDRESS, /* not a valid mailbox */
	MEMBERSHIP_BAD_VALUE,   /* name, stakeholder, setting or term refused */
	MEMBERSHIP_EXISTS,      /* already a member */
	MEMBERSHIP_NOTFOUND,    /* not a member */
	MEMBERSHIP_FULL,        /* max_members reached */
	MEMBERSHIP_BUSY,        /* database locked beyond the busy timeout */
	MEMBERSHIP_STORE        /* any other database failure */
};

/* Longest name and stakeholder we store, in bytes. */
#define MEMBERSHIP_NAME_MAX 200
#define MEMBERSHIP_GROUP_MAX 64

/* Use as term_ends to say "no term even if the list has one". */
#define MEMBERSHIP_NO_TERM (-1)

struct membership_new {
	const char *address;     /* as given; normalised before storing */
	const char *name;        /* NULL or "" for none */
	const char *stakeholder; /* NULL or "" for none; required when the list has groups */
	const char *status;      /* NULL: "active" */
	const char *delivery;    /* NULL: "each" */
	int moderated;
	int64_t joined;    /* 0: now */
	int64_t term_ends; /* 0: joined + the list's term (none without one);
	                      MEMBERSHIP_NO_TERM: none */
};

/* The normalised form of a user-typed address (surrounding blanks and one
 * pair of angle brackets are dropped), or NULL with MSG set when it is not
 * a valid mailbox. Caller frees. */
char *membership_address(const char *s, char *msg, size_t msglen);

/* Apply every rule that needs no database to M for list L: address, name,
 * stakeholder (a group of L, matched case-insensitively, and required
 * when L has groups), status, delivery. On success fills OUT with the
 * values to store: OUT->address is a fresh string in *ADDR_BUF (caller
 * frees), the other pointers borrow from M or L, joined and term_ends are
 * resolved. */
int membership_check(const struct list_cfg *l, const struct membership_new *m,
		     struct store_member *out, char **addr_buf, char *msg, size_t msglen);

/* Check M and add it to L, refusing when the list is at max_members.
 * Works inside a caller's store_begin() transaction (all-or-nothing
 * imports): on failure only this member's insert is undone. */
int membership_add(struct store *st, const struct list_cfg *l, const struct membership_new *m,
		   char *msg, size_t msglen);

int membership_remove(struct store *st, const struct list_cfg *l, const char *address,
		      char *msg, size_t msglen);

/* Is KEY=VALUE a setting membership_set() would accept for L?
 * KEY: delivery (each|digest|none), moderated (yes|no), stakeholder (a
 * group of L), name, term_ends (YYYY-MM-DD, an ISO-8601 UTC time, or
 * "none"). On success *STORE_KEY and *STORE_VALUE (a fresh string the
 * caller frees) get what store_member_set() takes. */
int membership_check_setting(const struct list_cfg *l, const char *key, const char *value,
			     const char **store_key, char **store_value, char *msg,
			     size_t msglen);

/* Change one setting of member ADDRESS of L (see membership_check_setting). */
int membership_set(struct store *st, const struct list_cfg *l, const char *address,
		   const char *key, const char *value, char *msg, size_t msglen);

/* Parse "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM:SSZ"; 0 or -1. */
int membership_parse_date(const char *s, int64_t *out);

/* Count the active members of each of L's groups into COUNTS[l->n_groups]
 * from the member rows M[0..n). Returns how many groups have none. */
size_t membership_group_counts(const struct list_cfg *l, const struct store_member *m, size_t n,
			       long *counts);

/* A report shows terms ending this soon. */
#define MEMBERSHIP_TERM_WARNING (30 * 86400)
/* Does M's term end within MEMBERSHIP_TERM_WARNING of NOW (or has it
 * ended already while M is still a member)? */
int membership_term_expiring(const struct store_member *m, int64_t now);

#endif
