/* test_store: the store against a real SQLite database in a fresh
 * temporary directory. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "testdb.h"
#include "testutil.h"
#include "util.h"

static char tmpdir[256];

static void test_open_migrate(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st)
		goto out;
	CHECK_INT(store_user_version(st), STORE_SCHEMA_VERSION);
	char err[256];
	CHECK_INT(store_check(st, err, sizeof err), STORE_OK);
	CHECK_STR(store_errmsg(st), "");
	store_close(st);
	CHECK_INT(testdb_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);

	/* Reopening an up-to-date database changes nothing. */
	st = testdb_open(path);
	if (st)
		CHECK_INT(store_user_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'archive_fts'"),
		  1);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'"), 1);
out:
	free(path);
}

static void test_open_refused(void)
{
	char err[512];

	/* Written by a newer program: refused, untouched. */
	char *path = testdb_path(tmpdir);
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE x(y); PRAGMA user_version = 99", NULL, NULL, NULL) ==
	      SQLITE_OK);
	sqlite3_close(db);
	err[0] = '\0';
	struct store *st = store_open(path, err, sizeof err);
	CHECK(st == NULL);
	CHECK(strstr(err, "newer") != NULL);
	CHECK(strstr(err, "99") != NULL);
	store_close(st);
	CHECK_INT(testdb_int(path, "PRAGMA user_version"), 99);
	free(path);

	/* The caller creates directories, the store says clearly it could not. */
	path = xasprintf("%s/no/such/dir/x.db", tmpdir);
	err[0] = '\0';
	st = store_open(path, err, sizeof err);
	CHECK(st == NULL);
	CHECK(strstr(err, "cannot open database") != NULL);
	CHECK(strstr(err, path) != NULL);
	free(path);

	/* Version 0 but not ours: the migration fails and says so. */
	path = testdb_path(tmpdir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "CREATE TABLE messages(x)", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	err[0] = '\0';
	st = store_open(path, err, sizeof err);
	CHECK(st == NULL);
	CHECK(strstr(err, "migration to schema 1") != NULL);
	CHECK(strstr(err, "already exists") != NULL);
	CHECK_INT(testdb_int(path, "PRAGMA user_version"), 0);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'members'"), 0);
	free(path);

	/* Not a database at all. */
	path = testdb_path(tmpdir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		for (int i = 0; i < 200; i++)
			fputs("this is not an SQLite database\n", f);
		fclose(f);
	}
	err[0] = '\0';
	st = store_open(path, err, sizeof err);
	CHECK(st == NULL);
	CHECK(strstr(err, path) != NULL);
	free(path);
}

static const char msg1[] = "From: a@example.org\r\nSubject: one\r\n\r\nbody\0with NUL\r\n";

static void test_intake_processing(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	struct store_rcpt r1[] = {{"dialogue@lists.example.org", "dialogue", "post", ""}};
	struct store_rcpt r2[] = {
		{"dialogue@lists.example.org", "dialogue", "post", ""},
		{"steering@lists.example.org", "steering", "post", NULL},
		{"steering-join@lists.example.org", "steering", "join", ""},
	};
	struct store_rcpt r3[] = {{"dialogue-confirm+tok@lists.example.org", "dialogue", "confirm",
				   "tok"}};
	struct store_incoming in[4] = {
		{"a@example.org", "mx.example.org", "192.0.2.1", r1, 1, msg1, sizeof msg1 - 1, 1000,
		 0},
		{"", NULL, NULL, r2, 3, "Subject: two\r\n\r\n", 16, 1001, 0},
		{"c@example.org", "h", "::1", r3, 1, "x", 1, 1002, 0},
		{"d@example.org", "h", "::1", r1, 1, NULL, 0, 1003, 0}, /* empty message */
	};
	CHECK_INT(store_accept_batch(st, in, 4), STORE_OK);
	CHECK(in[0].id > 0 && in[1].id > in[0].id && in[2].id > in[1].id && in[3].id > in[2].id);
	CHECK_INT(store_accept_batch(st, in, 0), STORE_OK);

	/* A batch that fails half way stores nothing. */
	struct store_rcpt bad[] = {{"x@lists.example.org", NULL, "post", ""}};
	struct store_incoming in_bad[2] = {
		{"ok@example.org", "h", "::1", r1, 1, "ok", 2, 1004, 0},
		{"bad@example.org", "h", "::1", bad, 1, "bad", 3, 1005, 0},
	};
	CHECK_INT(store_accept_batch(st, in_bad, 2), STORE_ERR);
	CHECK_INT(in_bad[0].id, 0);
	CHECK(strlen(store_errmsg(st)) > 0);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM messages"), 4);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM envelope_rcpts"), 6);

	struct store_pending *p;
	size_t n;
	CHECK_INT(store_pending_fetch(st, 1, 2, &p, &n), STORE_OK);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(p[0].id, in[0].id);
		CHECK_INT(p[0].len, sizeof msg1 - 1);
		CHECK(memcmp(p[0].raw, msg1, sizeof msg1 - 1) == 0);
		CHECK_INT(p[0].raw[p[0].len], 0);
		CHECK_INT(p[0].received, 1000);
		CHECK_INT(p[0].parse_attempts, 0);
		CHECK_INT(p[0].n_post_lists, 1);
		CHECK_STR(p[0].post_lists[0], "dialogue");
		CHECK_INT(p[1].n_post_lists, 2);
		if (p[1].n_post_lists == 2) {
			CHECK_STR(p[1].post_lists[0], "dialogue");
			CHECK_STR(p[1].post_lists[1], "steering");
		}
	}
	store_pending_free(p, n);

	CHECK_INT(store_pending_fetch(st, 1, 100, &p, &n), STORE_OK);
	CHECK_INT(n, 4);
	if (n == 4) {
		CHECK_INT(p[2].n_post_lists, 0);
		CHECK_INT(p[3].len, 0);
		CHECK_STR(p[3].raw, "");
	}
	store_pending_free(p, n);
	CHECK_INT(store_pending_fetch(st, 1, 0, &p, &n), STORE_OK);
	CHECK_INT(n, 0);
	CHECK(p == NULL);

	/* Counted attempts move messages from the fresh to the retry queue. */
	int64_t ids[] = {in[0].id, in[1].id};
	CHECK_INT(store_bump_attempts(st, ids, 2), STORE_OK);
	CHECK_INT(store_bump_attempts(st, ids, 1), STORE_OK);
	CHECK_INT(store_pending_fetch(st, 1, 100, &p, &n), STORE_OK);
	CHECK_INT(n, 2);
	if (n == 2)
		CHECK_INT(p[0].id, in[2].id);
	store_pending_free(p, n);
	CHECK_INT(store_pending_fetch(st, 0, 100, &p, &n), STORE_OK);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(p[0].id, in[0].id);
		CHECK_INT(p[0].parse_attempts, 2);
		CHECK_INT(p[1].parse_attempts, 1);
	}
	store_pending_free(p, n);

	/* Archive: message 1 to dialogue, message 2 to both lists but
	 * unparsable (poison); messages 3 and 4 archive nothing. */
	struct store_archive_entry e[] = {
		{"dialogue", in[0].id, "m1@example.org", "a@example.org", "Ann", "one", "", 999,
		 1000, "", "", "body", 0},
		{"dialogue", in[1].id, "m2@example.org", "", "", "", "", 0, 1001, NULL, NULL, NULL,
		 1},
		{"steering", in[1].id, "m2@example.org", "", "", "", "", 0, 1001, NULL, NULL, NULL,
		 1},
	};
	int64_t done[] = {in[0].id, in[1].id, in[2].id, in[3].id};
	CHECK_INT(store_archive_commit(st, e, 3, done, 4), STORE_OK);
	CHECK_INT(store_pending_fetch(st, 1, 100, &p, &n), STORE_OK);
	CHECK_INT(n, 0);
	store_pending_free(p, n);
	CHECK_INT(store_pending_fetch(st, 0, 100, &p, &n), STORE_OK);
	CHECK_INT(n, 0);
	store_pending_free(p, n);

	char *q = xasprintf("SELECT state = 'done' FROM messages WHERE id = %lld",
			    (long long)in[0].id);
	CHECK_INT(testdb_int(path, q), 1);
	free(q);
	q = xasprintf("SELECT state = 'poison' FROM messages WHERE id = %lld",
		      (long long)in[1].id);
	CHECK_INT(testdb_int(path, q), 1);
	free(q);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM envelope_rcpts WHERE state = 'done'"), 4);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM envelope_rcpts WHERE state = 'new'"), 2);
	/* The commit put synchronous back to FULL for the next intake. */
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM archive"), 3);

	long c;
	CHECK_INT(store_archive_count(st, "dialogue", &c), STORE_OK);
	CHECK_INT(c, 2);
	CHECK_INT(store_archive_count(st, "steering", &c), STORE_OK);
	CHECK_INT(c, 1);
	CHECK_INT(store_archive_count(st, "nosuch", &c), STORE_OK);
	CHECK_INT(c, 0);

	struct store_archived *a;
	CHECK_INT(store_archive_list(st, "dialogue", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_STR(a[0].message_id, "m2@example.org"); /* newest first */
		CHECK_INT(a[0].unparsed, 1);
		CHECK_STR(a[0].in_reply_to, "");
		CHECK_STR(a[1].from_name, "Ann");
		CHECK_INT(a[1].date, 999);
		CHECK_INT(a[1].received, 1000);
		CHECK_INT(a[1].thread_id, a[1].id);

		char *raw, *body;
		size_t len;
		CHECK_INT(store_archive_raw(st, a[1].id, &raw, &len, &body), STORE_OK);
		CHECK_INT(len, sizeof msg1 - 1);
		CHECK(raw && memcmp(raw, msg1, len) == 0);
		CHECK_STR(body, "body");
		free(raw);
		free(body);
		CHECK_INT(store_archive_raw(st, a[0].id, &raw, &len, NULL), STORE_OK);
		CHECK_INT(len, 16);
		free(raw);

		struct store_archived one;
		CHECK_INT(store_archive_get(st, a[1].id, &one), STORE_OK);
		CHECK_STR(one.subject, "one");
		CHECK_STR(one.list, "dialogue");
		store_archived_clear(&one);
	}
	store_archived_free(a, n);
	CHECK_INT(store_archive_list(st, "dialogue", 1, &a, &n), STORE_OK);
	CHECK_INT(n, 1);
	store_archived_free(a, n);

	struct store_archived none;
	CHECK_INT(store_archive_get(st, 424242, &none), STORE_NOTFOUND);
	char *raw = NULL;
	size_t len;
	CHECK_INT(store_archive_raw(st, 424242, &raw, &len, NULL), STORE_NOTFOUND);
	CHECK(raw == NULL);

	char err[256];
	CHECK_INT(store_check(st, err, sizeof err), STORE_OK);

	/* store_check notices a full-text index out of step with the archive. */
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
			   "INSERT INTO archive_fts(rowid, subject, from_text, body)"
			   " VALUES(9999, 'ghost', '', 'ghost')",
			   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	err[0] = '\0';
	CHECK_INT(store_check(st, err, sizeof err), STORE_ERR);
	CHECK(err[0] != '\0');
	CHECK_INT(store_archive_reindex(st), STORE_OK);
	CHECK_INT(store_check(st, err, sizeof err), STORE_OK);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM archive_fts WHERE archive_fts MATCH 'ghost'"),
		  0);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM archive_fts WHERE archive_fts MATCH 'body'"),
		  1);
	store_close(st);
	free(path);
}

/* Archive one message per call: raw message, then entry. */
static int64_t post(struct store *st, const char *list, const char *msgid, const char *irt,
		    const char *refs, const char *subject, const char *body)
{
	struct store_rcpt r = {"x@lists.example.org", list, "post", ""};
	struct store_incoming in = {"s@example.org", "h", "::1", &r, 1, body, strlen(body), 1, 0};
	if (store_accept_batch(st, &in, 1) != STORE_OK)
		return -1;
	struct store_archive_entry e = {list, in.id, msgid, "s@example.org", "Sender", subject,
					"", 0, 1, irt, refs, body, 0};
	if (store_archive_commit(st, &e, 1, &in.id, 1) != STORE_OK)
		return -1;
	return in.id;
}

static int64_t thread_of_msgid(struct store *st, const char *list, const char *msgid,
			       int64_t *id)
{
	struct store_archived *a;
	size_t n;
	int64_t t = -1;
	if (store_archive_list(st, list, 0, &a, &n) != STORE_OK)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].message_id, msgid) == 0) {
			t = a[i].thread_id;
			if (id)
				*id = a[i].id;
		}
	store_archived_free(a, n);
	return t;
}

/* MSGID starts a thread of its own: its id, or -1. */
static int64_t own_thread(struct store *st, const char *list, const char *msgid)
{
	int64_t id = 0;
	int64_t t = thread_of_msgid(st, list, msgid, &id);
	CHECK_INT(t, id);
	return t == id ? t : -1;
}

static void test_threading(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	int64_t root_id = 0;
	CHECK(post(st, "l", "root@x", "", "", "Root", "first") > 0);
	int64_t root = thread_of_msgid(st, "l", "root@x", &root_id);
	CHECK_INT(root, root_id);

	CHECK(post(st, "l", "r1@x", "root@x", "root@x", "Re: Root", "reply") > 0);
	CHECK_INT(thread_of_msgid(st, "l", "r1@x", NULL), root);
	/* In-Reply-To with angle brackets and space still finds the parent. */
	CHECK(post(st, "l", "r1b@x", " <root@x> ", "", "Re: Root", "reply") > 0);
	CHECK_INT(thread_of_msgid(st, "l", "r1b@x", NULL), root);
	/* References only, parent last, unknown ids around it. */
	CHECK(post(st, "l", "r2@x", "", "unknown@y root@x r1@x", "Re: Root", "deeper") > 0);
	CHECK_INT(thread_of_msgid(st, "l", "r2@x", NULL), root);
	CHECK(post(st, "l", "r3@x", "", "<root@x> <gone@y>", "Re: Root", "deeper") > 0);
	CHECK_INT(thread_of_msgid(st, "l", "r3@x", NULL), root);
	/* Unknown In-Reply-To falls back to References. */
	CHECK(post(st, "l", "r4@x", "gone@y", "r2@x", "Re: Root", "deeper") > 0);
	CHECK_INT(thread_of_msgid(st, "l", "r4@x", NULL), root);
	/* Orphans start their own thread. */
	CHECK(post(st, "l", "o1@x", "gone@y", "gone2@y gone3@y", "Re: lost", "orphan") > 0);
	CHECK(own_thread(st, "l", "o1@x") != root);
	/* Threads never cross lists. */
	CHECK(post(st, "other", "x1@x", "root@x", "root@x", "Re: Root", "elsewhere") > 0);
	CHECK(own_thread(st, "other", "x1@x") > 0);
	/* A reply to itself is an orphan, not a loop. */
	CHECK(post(st, "l", "self@x", "self@x", "self@x", "me", "me") > 0);
	CHECK(own_thread(st, "l", "self@x") > 0);

	/* Parent and child in one commit. */
	struct store_rcpt r = {"x@lists.example.org", "l", "post", ""};
	struct store_incoming in[2] = {{"s@x", "h", "::1", &r, 1, "p", 1, 1, 0},
				       {"s@x", "h", "::1", &r, 1, "c", 1, 1, 0}};
	CHECK_INT(store_accept_batch(st, in, 2), STORE_OK);
	struct store_archive_entry e[2] = {
		{"l", in[0].id, "bp@x", "", "", "batch", "", 0, 1, "", "", "p", 0},
		{"l", in[1].id, "bc@x", "", "", "Re: batch", "", 0, 1, "bp@x", "", "c", 0},
	};
	int64_t done[2] = {in[0].id, in[1].id};
	CHECK_INT(store_archive_commit(st, e, 2, done, 2), STORE_OK);
	int64_t bp = own_thread(st, "l", "bp@x");
	CHECK(bp > 0);
	CHECK_INT(thread_of_msgid(st, "l", "bc@x", NULL), bp);

	/* Committing the same (list, raw_id) again changes nothing: one row,
	 * one full-text entry. */
	long before, after;
	CHECK_INT(store_archive_count(st, "l", &before), STORE_OK);
	CHECK_INT(store_archive_commit(st, e, 2, done, 2), STORE_OK);
	CHECK_INT(store_archive_commit(st, e, 1, NULL, 0), STORE_OK);
	CHECK_INT(store_archive_count(st, "l", &after), STORE_OK);
	CHECK_INT(after, before);
	struct store_archived *a;
	size_t n;
	CHECK_INT(store_archive_search(st, "l", "batch", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 2);
	store_archived_free(a, n);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM archive_fts WHERE archive_fts MATCH 'batch'"),
		  2);
	char err[256];
	CHECK_INT(store_check(st, err, sizeof err), STORE_OK);

	/* A hostile References header does not take forever. */
	struct sbuf refs = {0};
	for (int i = 0; i < 100000; i++)
		sbuf_printf(&refs, "<r%d@spam> ", i);
	sbuf_adds(&refs, "<root@x>");
	time_t t0 = time(NULL);
	CHECK(post(st, "l", "spam@x", "", refs.buf, "spam", "spam") > 0);
	CHECK(time(NULL) - t0 < 5);
	sbuf_free(&refs);

	store_close(st);
	free(path);
}

static void test_search(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	CHECK(post(st, "l", "a@x", "", "", "Budget for the meeting", "we met at the café") > 0);
	CHECK(post(st, "l", "b@x", "", "", "Other things", "the budget was discussed, 日本語 too") >
	      0);
	CHECK(post(st, "l", "c@x", "", "", "Unrelated", "nothing AND OR NOT here (really)") > 0);
	CHECK(post(st, "m", "d@x", "", "", "Budget elsewhere", "budget") > 0);

	struct store_archived *a;
	size_t n;
	CHECK_INT(store_archive_search(st, "l", "budget", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 2);
	if (n == 2) /* a subject hit ranks above a body hit */
		CHECK_STR(a[0].message_id, "a@x");
	store_archived_free(a, n);
	CHECK_INT(store_archive_search(st, "l", "budget", 1, &a, &n), STORE_OK);
	CHECK_INT(n, 1);
	store_archived_free(a, n);
	/* Every word must occur; diacritics and case do not matter. */
	CHECK_INT(store_archive_search(st, "l", "BUDGET cafe", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 1);
	store_archived_free(a, n);
	CHECK_INT(store_archive_search(st, "l", "Sender", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 3);
	store_archived_free(a, n);
	CHECK_INT(store_archive_search(st, "l", "s@example.org", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 3);
	store_archived_free(a, n);
	CHECK_INT(store_archive_search(st, "l", "AND OR NOT", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 1);
	store_archived_free(a, n);

	static const char *const hostile[] = {
		"\"", "\"\"", "\"\"\"", "AND OR NOT", "AND", "OR", "NOT", "*", "budget*", "(", ")",
		") OR (", "NEAR(", "NEAR(a b, 2)", "subject:budget", "{subject body}: x", "-budget",
		"+", "^budget", "a\"b", "budget\" OR \"x", "ünïcödé", "日本語", "\xf0\x9f\x98\x80",
		"\xff\xfe broken utf8 \xc3", "", "   ", "\t\r\n", ":", "''", "\\", "%", "_", ";--",
		"col:", "a:b:c", "NEAR", "x NEAR y",
	};
	for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
		int rc = store_archive_search(st, "l", hostile[i], 0, &a, &n);
		if (rc != STORE_OK)
			fprintf(stderr, "query [%s]: %s\n", hostile[i], store_errmsg(st));
		CHECK_INT(rc, STORE_OK);
		store_archived_free(a, n);
	}
	CHECK_INT(store_archive_search(st, "l", "", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 0);
	CHECK(a == NULL);
	CHECK_INT(store_archive_search(st, "l", "日本語", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 1);
	store_archived_free(a, n);
	CHECK_INT(store_archive_search(st, "l", "(really)", 0, &a, &n), STORE_OK);
	CHECK_INT(n, 1);
	store_archived_free(a, n);
	/* Many words are fine (the tail is ignored). */
	struct sbuf q = {0};
	for (int i = 0; i < 1000; i++)
		sbuf_adds(&q, "budget ");
	CHECK_INT(store_archive_search(st, "l", q.buf, 0, &a, &n), STORE_OK);
	CHECK_INT(n, 2);
	store_archived_free(a, n);
	sbuf_free(&q);

	store_close(st);
	free(path);
}

static void test_members(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	struct store_member m = {.list = "steering", .address = "Bob@Example.org", .name = "Bob",
				 .stakeholder = "technical", .joined = 100, .term_ends = 500};
	CHECK_INT(store_member_add(st, &m, 2), STORE_OK);
	CHECK_INT(store_member_add(st, &m, 2), STORE_EXISTS);
	struct store_member m2 = m;
	m2.address = "bob@example.ORG";
	CHECK_INT(store_member_add(st, &m2, 0), STORE_EXISTS);
	m2.list = "dialogue"; /* another list is another membership */
	CHECK_INT(store_member_add(st, &m2, 0), STORE_OK);

	struct store_member g;
	CHECK_INT(store_member_get(st, "steering", "BOB@example.org", &g), STORE_OK);
	CHECK_STR(g.address, "Bob@Example.org");
	CHECK_STR(g.name, "Bob");
	CHECK_STR(g.stakeholder, "technical");
	CHECK_STR(g.status, "active");
	CHECK_STR(g.delivery, "each");
	CHECK_INT(g.moderated, 0);
	CHECK_INT(g.joined, 100);
	CHECK_INT(g.term_ends, 500);
	store_member_free(&g);
	CHECK_INT(store_member_get(st, "steering", "nobody@example.org", &g), STORE_NOTFOUND);
	store_member_free(&g);

	/* The cap counts active and pending members. */
	struct store_member m3 = {.list = "steering", .address = "amy@example.org",
				  .status = "pending"};
	CHECK_INT(store_member_add(st, &m3, 2), STORE_OK);
	struct store_member m4 = {.list = "steering", .address = "cy@example.org"};
	CHECK_INT(store_member_add(st, &m4, 2), STORE_FULL);
	CHECK_INT(store_member_add(st, &m3, 2), STORE_EXISTS);
	long c;
	CHECK_INT(store_member_count(st, "steering", &c), STORE_OK);
	CHECK_INT(c, 2);
	CHECK_INT(store_member_set(st, "steering", "amy@example.org", "status", "disabled"),
		  STORE_OK);
	CHECK_INT(store_member_count(st, "steering", &c), STORE_OK);
	CHECK_INT(c, 1);
	CHECK_INT(store_member_add(st, &m4, 2), STORE_OK);
	CHECK_INT(store_member_add(st, &m4, 0), STORE_EXISTS);

	struct store_member bad = {.list = "steering", .address = "z@example.org",
				   .delivery = "weekly"};
	CHECK_INT(store_member_add(st, &bad, 0), STORE_INVAL);
	bad.delivery = NULL;
	bad.address = "";
	CHECK_INT(store_member_add(st, &bad, 0), STORE_INVAL);

	struct store_member *v;
	size_t n;
	CHECK_INT(store_members_list(st, "steering", &v, &n), STORE_OK);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(v[0].address, "amy@example.org");
		CHECK_STR(v[0].status, "disabled");
		CHECK_STR(v[1].address, "Bob@Example.org");
		CHECK_STR(v[2].address, "cy@example.org");
		CHECK(v[2].joined > 0); /* 0 means now */
	}
	store_members_free(v, n);
	CHECK_INT(store_members_list(st, "nosuch", &v, &n), STORE_OK);
	CHECK_INT(n, 0);
	store_members_free(v, n);

	/* Settings. */
	const char *a = "bob@example.org";
	CHECK_INT(store_member_set(st, "steering", a, "delivery", "digest"), STORE_OK);
	CHECK_INT(store_member_set(st, "steering", a, "delivery", "hourly"), STORE_INVAL);
	CHECK_INT(store_member_set(st, "steering", a, "moderated", "YES"), STORE_OK);
	CHECK_INT(store_member_set(st, "steering", a, "moderated", "maybe"), STORE_INVAL);
	CHECK_INT(store_member_set(st, "steering", a, "name", "Robert \"Bob\" O'Neil"), STORE_OK);
	CHECK_INT(store_member_set(st, "steering", a, "stakeholder", "civil-society"), STORE_OK);
	CHECK_INT(store_member_set(st, "steering", a, "term_ends", "1800000000"), STORE_OK);
	CHECK_INT(store_member_set(st, "steering", a, "term_ends", "soon"), STORE_INVAL);
	CHECK_INT(store_member_set(st, "steering", a, "term_ends", "-5"), STORE_INVAL);
	CHECK_INT(store_member_set(st, "steering", a, "address", "x@y"), STORE_INVAL);
	CHECK_INT(store_member_set(st, "steering", a, "name; DROP TABLE members", "x"),
		  STORE_INVAL);
	CHECK_INT(store_member_set(st, "steering", a, "status", "x'); --"), STORE_INVAL);
	CHECK_INT(store_member_set(st, "steering", "nobody@x", "name", "N"), STORE_NOTFOUND);
	CHECK_INT(store_member_get(st, "steering", a, &g), STORE_OK);
	CHECK_STR(g.delivery, "digest");
	CHECK_INT(g.moderated, 1);
	CHECK_STR(g.name, "Robert \"Bob\" O'Neil");
	CHECK_STR(g.stakeholder, "civil-society");
	CHECK_INT(g.term_ends, 1800000000);
	store_member_free(&g);
	CHECK_INT(store_member_set(st, "steering", a, "moderated", "0"), STORE_OK);
	CHECK_INT(store_member_get(st, "steering", a, &g), STORE_OK);
	CHECK_INT(g.moderated, 0);
	store_member_free(&g);

	CHECK_INT(store_member_remove(st, "steering", "BOB@example.org"), STORE_OK);
	CHECK_INT(store_member_remove(st, "steering", a), STORE_NOTFOUND);
	CHECK_INT(store_member_get(st, "dialogue", a, &g), STORE_OK); /* other list untouched */
	store_member_free(&g);

	/* Inside a caller's transaction a failure undoes only its own part. */
	CHECK_INT(store_begin(st), STORE_OK);
	struct store_member i1 = {.list = "imp", .address = "i1@x"};
	struct store_member i2 = {.list = "imp", .address = "i2@x"};
	struct store_member i3 = {.list = "imp", .address = "i3@x"};
	CHECK_INT(store_member_add(st, &i1, 2), STORE_OK);
	CHECK_INT(store_member_add(st, &i1, 2), STORE_EXISTS);
	CHECK_INT(store_member_add(st, &i2, 2), STORE_OK);
	CHECK_INT(store_member_add(st, &i3, 2), STORE_FULL);
	CHECK_INT(store_commit(st), STORE_OK);
	CHECK_INT(store_member_count(st, "imp", &c), STORE_OK);
	CHECK_INT(c, 2);
	CHECK_INT(store_begin(st), STORE_OK);
	CHECK_INT(store_member_remove(st, "imp", "i1@x"), STORE_OK);
	CHECK_INT(store_member_add(st, &i3, 0), STORE_OK);
	store_rollback(st);
	CHECK_INT(store_member_count(st, "imp", &c), STORE_OK);
	CHECK_INT(c, 2);
	CHECK_INT(store_member_get(st, "imp", "i3@x", &g), STORE_NOTFOUND);
	store_member_free(&g);
	CHECK_INT(store_commit(st), STORE_ERR); /* no transaction */

	store_close(st);
	free(path);
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void test_busy(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st1 = testdb_open(path);
	struct store *st2 = testdb_open(path);
	if (!st1 || !st2)
		goto out;
	store_set_busy_timeout(st2, 200);
	struct store_rcpt r = {"x@lists.example.org", "l", "post", ""};
	struct store_incoming in = {"s@x", "h", "::1", &r, 1, "m", 1, 1, 0};
	CHECK_INT(store_accept_batch(st1, &in, 1), STORE_OK);

	CHECK_INT(store_begin(st1), STORE_OK);
	double t0 = now_ms();
	CHECK_INT(store_accept_batch(st2, &in, 1), STORE_BUSY);
	double waited = now_ms() - t0;
	CHECK(waited >= 150);
	CHECK(waited < 3000);
	CHECK(strstr(store_errmsg(st2), "locked") != NULL);
	struct store_member m = {.list = "l", .address = "a@x"};
	CHECK_INT(store_member_add(st2, &m, 0), STORE_BUSY);
	int64_t id = in.id;
	CHECK_INT(store_bump_attempts(st2, &id, 1), STORE_BUSY);
	struct store_archive_entry e = {"l", 1, "m@x", "", "", "", "", 0, 1, "", "", "", 0};
	CHECK_INT(store_archive_commit(st2, &e, 1, &id, 1), STORE_BUSY);
	/* Readers are not blocked by a writer in WAL mode. */
	struct store_pending *p;
	size_t n;
	CHECK_INT(store_pending_fetch(st2, 1, 10, &p, &n), STORE_OK);
	CHECK_INT(n, 1);
	store_pending_free(p, n);
	store_rollback(st1);

	/* Once the lock is gone the same connection works normally. */
	CHECK_INT(store_accept_batch(st2, &in, 1), STORE_OK);
	CHECK_INT(store_member_add(st2, &m, 0), STORE_OK);
	CHECK_INT(store_archive_commit(st2, &e, 1, &id, 1), STORE_OK);
	CHECK_INT(store_user_version(st2), STORE_SCHEMA_VERSION);
out:
	store_close(st1);
	store_close(st2);
	free(path);
}

struct each_ctx {
	struct store *st;
	int64_t last;
	int calls, stop_after, bad;
};

static int each_cb(void *arg, const struct store_archived *a, const char *raw, size_t len)
{
	struct each_ctx *c = arg;
	if (a->id <= c->last)
		c->bad++;
	c->last = a->id;
	if (strlen(raw) != len)
		c->bad++;
	/* Calling back into the store is allowed. */
	struct store_archived g;
	if (store_archive_get(c->st, a->id, &g) != STORE_OK || strcmp(g.subject, a->subject) != 0)
		c->bad++;
	store_archived_clear(&g);
	long cnt;
	if (store_archive_count(c->st, a->list, &cnt) != STORE_OK)
		c->bad++;
	return ++c->calls == c->stop_after;
}

static void test_each(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	for (int i = 0; i < 10; i++) {
		char id[32], body[32];
		snprintf(id, sizeof id, "e%d@x", i);
		snprintf(body, sizeof body, "message %d", i);
		CHECK(post(st, i % 3 ? "l" : "m", id, "", "", body, body) > 0);
	}
	struct each_ctx c = {st, 0, 0, 0, 0};
	CHECK_INT(store_archive_each(st, "l", each_cb, &c), STORE_OK);
	CHECK_INT(c.calls, 6);
	CHECK_INT(c.bad, 0);
	struct each_ctx c2 = {st, 0, 0, 2, 0};
	CHECK_INT(store_archive_each(st, "l", each_cb, &c2), STORE_OK);
	CHECK_INT(c2.calls, 2);
	struct each_ctx c3 = {st, 0, 0, 0, 0};
	CHECK_INT(store_archive_each(st, "nosuch", each_cb, &c3), STORE_OK);
	CHECK_INT(c3.calls, 0);
	store_close(st);
	free(path);
}

int main(void)
{
	if (testdb_mkdir(tmpdir, "test_store") < 0)
		return 1;
	log_set_level(LOG_LVL_WARN);
	test_open_migrate();
	test_open_refused();
	test_intake_processing();
	test_threading();
	test_search();
	test_members();
	test_busy();
	test_each();
	testdb_rmdir(tmpdir);
	return test_result();
}
