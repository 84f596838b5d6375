/* json: a small streaming JSON writer (RFC 8259). The caller emits values
 * in document order; the writer places commas and colons, escapes strings
 * and turns bytes that are not valid UTF-8 into U+FFFD, so any C string
 * (e.g. a subject from the network) can be written safely. */
#ifndef DIALOGUE_JSON_H
#define DIALOGUE_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define JSON_MAX_DEPTH 32

struct json {
	FILE *f;          /* output stream, or NULL when writing to buf */
	struct sbuf *buf; /* output buffer when f is NULL */
	int depth;
	/* Per level: 'o' object, 'a' array; and whether a value was written. */
	char kind[JSON_MAX_DEPTH];
	unsigned char count[JSON_MAX_DEPTH];
	int have_key;  /* inside an object: a key was written, its value is due */
	int done;      /* a complete top-level value was written */
	int misuse;    /* a call out of order (a bug in the caller) */
};

/* Write to F (not closed or flushed by the writer) or append to B. */
void json_init_file(struct json *j, FILE *f);
void json_init_sbuf(struct json *j, struct sbuf *b);

void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
/* Inside an object, before each value. */
void json_key(struct json *j, const char *key);

/* S NULL writes null. */
void json_string(struct json *j, const char *s);
/* LEN bytes, which may contain NUL (written as \u0000). */
void json_string_n(struct json *j, const char *s, size_t len);
void json_int(struct json *j, int64_t v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);

/* Key and value in one call. */
void json_kv_string(struct json *j, const char *key, const char *s);
void json_kv_int(struct json *j, const char *key, int64_t v);
void json_kv_bool(struct json *j, const char *key, int v);
void json_kv_null(struct json *j, const char *key);

/* 0 when exactly one complete, well-formed value has been written; -1 when
 * a call came out of order (nothing is aborted: misuse is only recorded). */
int json_finish(struct json *j);

#endif
