/* html: text from mail and from users made safe for the web pages and the
 * Atom feed. Every function appends valid UTF-8 to an sbuf; none ever
 * passes markup through: the only tags in the output are the ones these
 * functions write themselves. */
#ifndef DIALOGUE_HTML_H
#define DIALOGUE_HTML_H

#include <stddef.h>

#include "util.h"

/* S[0..n) as HTML text or as a double-quoted attribute value: & < > " '
 * become references, invalid UTF-8 becomes U+FFFD, and NUL, the C0
 * controls but \n and \t, DEL and the C1 controls are dropped. */
void html_escape(struct sbuf *b, const char *s, size_t n);
/* The same for a NUL-terminated string (NULL appends nothing). */
void html_escapes(struct sbuf *b, const char *s);

/* An author as the archive shows it: the display name NAME, or, when it
 * is empty, holds an '@' or is the address, "user@…" from ADDR (never the
 * whole address); "…" when there is nothing to show. Either may be NULL. */
void html_author(struct sbuf *b, const char *name, const char *addr);

/* A plain-text mail body (UTF-8, LF lines) as HTML for a container styled
 * white-space: pre-wrap: the text with its line breaks; each run of quoted
 * lines ('>' after optional spaces) in <details class="quote"> with a
 * <summary> counting them; from a line "-- " on, <span class="sig">; http
 * and https URLs as links with rel="nofollow noopener noreferrer". Nothing
 * else becomes a link. Stripped of its tags and summaries, the output is
 * html_escape() of the text. */
void html_body(struct sbuf *b, const char *text, size_t n);

/* A search snippet where \x01 opens and \x02 closes a match: escaped text
 * with the matches in <mark>, always balanced (a \x01 inside a match and a
 * \x02 outside one are dropped; an open match is closed at the end). */
void html_snippet(struct sbuf *b, const char *s);

/* S[0..n) as XML 1.0 character data or attribute value (Atom): & < > " '
 * escaped, invalid UTF-8 becomes U+FFFD, and what XML does not allow (C0
 * controls but \t \n \r, U+FFFE, U+FFFF) dropped, as are DEL and C1. */
void html_xml_escape(struct sbuf *b, const char *s, size_t n);

/* S percent-encoded for a URL path segment or query value: all but the
 * unreserved characters (ALPHA DIGIT - . _ ~) become %XX. */
void html_url_part(struct sbuf *b, const char *s);

/* The value of the first field NAME in application/x-www-form-urlencoded
 * BODY[0..len) (also a query string without its '?'), '+' and %XX decoded,
 * into OUT (OUTLEN bytes, NUL-terminated): 1 when found, 0 when absent, -1
 * when its value is malformed (a bad %-escape, %00, invalid UTF-8) or does
 * not fit. Pairs whose name is malformed never match. */
int html_form_value(const char *body, size_t len, const char *name, char *out, size_t outlen);

#endif
