/* rewrite_int: what rewrite.c, rewrite_subject.c and rewrite_notice.c
 * share: a header-field scanner over raw bytes and a folding header writer.
 * Internal to the rewrite module. */
#ifndef DIALOGUE_REWRITE_INT_H
#define DIALOGUE_REWRITE_INT_H

#include <stddef.h>

#include "util.h"

/* Header lines are folded before this column when they can be. */
#define RW_FOLD_COL 78

/* One header field of the raw message: RAW[start..end) is every byte of it,
 * the name, its continuation lines and the final line end (if any). */
struct rw_field {
	size_t start;
	size_t end;
	size_t name_len;
	size_t value; /* first byte after the ':' */
};

/* Walks the header block. CRLF, LF and a lone CR all end a line. The block
 * ends at an empty line, at a line that is neither a field nor a
 * continuation (a message without the blank separator), or at the end of
 * the input; `body` is then where the body starts. A leading mbox "From "
 * line is skipped. Linear in the input, no allocation. */
struct rw_iter {
	const char *raw;
	size_t len;
	size_t pos;
	size_t body;
	int done;
};

void rw_iter_init(struct rw_iter *it, const char *raw, size_t len);
/* 1 and F filled for the next field, 0 at the end of the header block. */
int rw_next(struct rw_iter *it, struct rw_field *f);
/* Is F named NAME (ASCII case-insensitive)? */
int rw_field_is(const struct rw_iter *it, const struct rw_field *f, const char *name);
/* Does F's name start with PREFIX (case-insensitive)? */
int rw_field_has_prefix(const struct rw_iter *it, const struct rw_field *f, const char *prefix);
/* F's value unfolded (line ends removed, NUL as space), at most MAX bytes,
 * not trimmed. Caller frees. */
char *rw_field_value(const struct rw_iter *it, const struct rw_field *f, size_t max);

/* Length of the line end at S[i] (2 for CRLF, 1 for a lone CR or LF, else 0). */
size_t rw_eol(const char *s, size_t n, size_t i);
/* Append S[0..n) with every line end turned into CRLF. */
void rw_add_crlf(struct sbuf *b, const char *s, size_t n);

/* A header line being written: words separated by single spaces, folded
 * (CRLF SP) before a word that would pass RW_FOLD_COL. */
struct rw_fold {
	struct sbuf *b;
	size_t col;
	int words;
};

void rw_fold_begin(struct rw_fold *w, struct sbuf *b, const char *name);
void rw_fold_word(struct rw_fold *w, const char *s, size_t n);
/* UTF-8 text S[0..n) as RFC 2047 "=?UTF-8?B?...?=" words, each short
 * enough for one line and never splitting a UTF-8 sequence. */
void rw_fold_encoded(struct rw_fold *w, const char *s, size_t n);
/* A display phrase: atoms as they are, a quoted-string when it has
 * specials, encoded words when it is not printable ASCII. */
void rw_fold_phrase(struct rw_fold *w, const char *text);
void rw_fold_end(struct rw_fold *w);

/* 2*n lowercase hex digits of random bytes (OpenSSL RAND_bytes) into out,
 * NUL-terminated; out has room for 2*n+1. */
void rw_random_hex(char *out, size_t n);

#endif
