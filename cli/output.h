/* output: what dialoguectl prints. Text goes through out_clean so that
 * bytes from the network (subjects, names) cannot drive the terminal;
 * --json goes through lib/json with the field names of SPEC.md. */
#ifndef DIALOGUE_CLI_OUTPUT_H
#define DIALOGUE_CLI_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "json.h"
#include "store.h"

/* A copy of S[0..len) safe for a terminal: control characters become '?'
 * (TAB and LF are kept when KEEP_LINES), invalid UTF-8 becomes U+FFFD.
 * Caller frees. */
char *out_clean(const char *s, size_t len, int keep_lines);

/* A text table whose columns are padded to their widest cell. */
struct out_table {
	size_t ncols;
	size_t nrows; /* including the header row */
	char **cells; /* nrows x ncols cleaned copies */
};
/* NCOLS header strings follow. */
void out_table_init(struct out_table *t, size_t ncols, ...);
/* ncols cell strings follow (NULL prints as "-"). */
void out_table_row(struct out_table *t, ...);
/* Print and free. */
void out_table_print(struct out_table *t, FILE *f);

/* "2026-11-30" (DATE_ONLY) or "2026-11-30 06:42"; "-" for 0. */
void out_date(int64_t t, int date_only, char buf[32]);

/* Start writing JSON to stdout; out_json_end adds the newline and returns
 * 0, or EXIT_SOFTWARE when the writer was misused. */
void out_json_begin(struct json *j);
int out_json_end(struct json *j);

/* "key": "2026-11-30T06:42:11Z", or null for 0. */
void out_json_time(struct json *j, const char *key, int64_t t);
/* The objects of SPEC.md (plus "list"). */
void out_json_member(struct json *j, const struct store_member *m);
/* The fields of an archived message, inside an object the caller opens
 * (so "archive show" can add "body"). */
void out_json_archived_fields(struct json *j, const struct store_archived *a);

#endif
