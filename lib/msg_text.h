/* msg_text: bytes from mail to clean UTF-8, for message.c. Internal to the
 * message module; everything else uses message.h. Every function appends
 * valid UTF-8 to an sbuf or returns an allocated string the caller frees. */
#ifndef DIALOGUE_MSG_TEXT_H
#define DIALOGUE_MSG_TEXT_H

#include <stddef.h>

#include "util.h"

enum msg_clean {
	MSG_CLEAN_RAW,    /* drop NUL only */
	MSG_CLEAN_HEADER, /* one line: TAB becomes space, other controls go */
	MSG_CLEAN_BODY    /* LF line ends: CRLF and lone CR become LF */
};

/* Value of a hex digit, or -1. */
int msg_hexval(char c);

/* Is S[0..n) well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF)? */
int msg_utf8_valid(const char *s, size_t n);

/* Append S[0..n) with bad UTF-8 bytes replaced by U+FFFD, NUL dropped and
 * controls treated as MODE says. */
void msg_add_clean(struct sbuf *b, const char *s, size_t n, enum msg_clean mode);

/* Append text of unknown charset: kept when it is (mostly) UTF-8, else
 * read as windows-1252. Output is valid UTF-8. */
void msg_add_unknown(struct sbuf *b, const char *s, size_t n);

/* Append S[0..n) in CHARSET (a MIME label, may be NULL) converted to UTF-8;
 * may still hold bad bytes and controls, so finish with msg_add_clean(). */
void msg_add_charset(struct sbuf *b, const char *s, size_t n, const char *charset);

/* Append quoted-printable S[0..n) decoded; a stray '=' stays as it is. */
void msg_add_qp(struct sbuf *b, const char *s, size_t n);

/* Append a crude plain-text rendering of UTF-8 HTML S[0..n). */
void msg_add_html_text(struct sbuf *b, const char *s, size_t n);

/* Trimmed one-line UTF-8 copy of S[0..n). */
char *msg_clean_line(const char *s, size_t n);

/* RFC 2047-decode a phrase (Subject, display name) into one trimmed line of
 * UTF-8; raw 8-bit text is taken as UTF-8 or else windows-1252. */
char *msg_decode_phrase(const char *s);

#endif
