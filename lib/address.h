/* address: RFC 5321 mailbox syntax, checked and normalised. */
#ifndef DIALOGUE_ADDRESS_H
#define DIALOGUE_ADDRESS_H

#include <stddef.h>

/* Longest address we accept (RFC 5321 4.5.3.1.3 path limit). */
#define ADDRESS_MAX 254

/* Is S a syntactically valid "local@domain" (dot-atom or quoted-string
 * local part, domain name or address literal)? No angle brackets. */
int address_valid(const char *s);

/* Is S a domain name (labels of letters, digits and inner hyphens, at most
 * 63 each, 255 in all)? */
int address_valid_domain(const char *s);

/* Copy of S with the domain lowercased (the local part keeps its case,
 * RFC 5321 2.4); NULL when S is not valid. Caller frees. */
char *address_normalize(const char *s);

/* Split a valid address at its last '@': returns pointers into a copy the
 * caller frees via *buf. Returns 0, or -1 (all three set to NULL) when S
 * is not valid. */
int address_split(const char *s, char **local, char **domain, char **buf);

/* VERP encoding of a member address for L-bounces+ADDR@D: user@host
 * becomes user=host. NULL when ADDR is not valid or cannot be carried in a
 * dot-atom (quoted local part, address literal). Caller frees. */
char *address_verp_encode(const char *addr);
/* The inverse (splits at the last '='); NULL if the result would not be a
 * valid address. Caller frees. */
char *address_verp_decode(const char *s);

#endif
