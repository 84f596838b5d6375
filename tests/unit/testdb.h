/* testdb: reading and writing a test's database behind the store's back,
 * to see what it really stored or to age a row. */
#ifndef DIALOGUE_TESTDB_H
#define DIALOGUE_TESTDB_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "testutil.h"

/* The integer the one-row query SQL gives on the database at PATH, or -1. */
static inline __attribute__((unused)) int64_t testdb_int(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	int64_t v = -1;
	if (sqlite3_open(path, &h) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_finalize(s);
	} else {
		fprintf(stderr, "sql: %s: %s\n", sql, sqlite3_errmsg(h));
	}
	sqlite3_close(h);
	return v;
}

/* Run SQL on the database at PATH; a failure fails the test. */
static inline __attribute__((unused)) void testdb_exec(const char *path, const char *sql)
{
	sqlite3 *h;
	char *err = NULL;
	CHECK(sqlite3_open(path, &h) == SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sql: %s: %s\n", sql, err ? err : "?");
		CHECK(0);
	}
	sqlite3_free(err);
	sqlite3_close(h);
}

#endif
