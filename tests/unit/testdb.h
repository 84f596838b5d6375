/* testdb: a test's databases — a fresh directory for them, opening one
 * through the store, and reading and writing it behind the store's back
 * to see what it really stored or to age a row. */
#ifndef DIALOGUE_TESTDB_H
#define DIALOGUE_TESTDB_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "store.h"
#include "testutil.h"
#include "util.h"

/* Make a fresh directory NAME.XXXXXX under $TMPDIR (else /tmp) in
 * DIR[256]; -1 (with a message) when it cannot be made. */
static inline __attribute__((unused)) int testdb_mkdir(char dir[256], const char *name)
{
	const char *base = getenv("TMPDIR");
	snprintf(dir, 256, "%s/%s.XXXXXX", base && *base ? base : "/tmp", name);
	if (mkdtemp(dir))
		return 0;
	perror("mkdtemp");
	return -1;
}

/* Remove DIR and everything in it. */
static inline __attribute__((unused)) void testdb_rmdir(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(cmd);
}

/* A database path in DIR not handed out before (caller frees). */
static inline __attribute__((unused)) char *testdb_path(const char *dir)
{
	static int seq;
	return xasprintf("%s/t%d.db", dir, ++seq);
}

/* store_open(PATH); a failure fails the test (and returns NULL). */
static inline __attribute__((unused)) struct store *testdb_open(const char *path)
{
	char err[512] = "";
	struct store *st = store_open(path, err, sizeof err);
	if (!st)
		fprintf(stderr, "store_open %s: %s\n", path, err);
	CHECK(st != NULL);
	return st;
}

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

/* The text the one-row query SQL gives on the database at PATH (caller
 * frees), or NULL. */
static inline __attribute__((unused)) char *testdb_text(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	char *v = NULL;
	if (sqlite3_open(path, &h) != SQLITE_OK)
		return NULL;
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
			v = xstrdup((const char *)sqlite3_column_text(s, 0));
		sqlite3_finalize(s);
	} else {
		fprintf(stderr, "sql: %s: %s\n", sql, sqlite3_errmsg(h));
	}
	sqlite3_close(h);
	return v;
}

#endif
