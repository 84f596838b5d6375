/* test_store_web: the website's store queries (lib/store_web.c) and the
 * thread and month rows store_archive_add keeps, against a real SQLite
 * database in a fresh temporary directory. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h" /* st->db: what a query costs SQLite (test_scale) */
#include "testdb.h"
#include "testutil.h"
#include "util.h"

/* 2026-01-01, 2026-02-01 and 2026-03-01, 00:00:00 UTC. */
#define JAN 1767225600
#define FEB 1769904000
#define MAR 1772323200
#define DAY 86400

static char tmpdir[256];

/* Archive one post of LIST received at RECEIVED; its archive id, or -1. */
static int64_t post(struct store *st, const char *list, const char *msgid, const char *irt,
		    const char *subject, const char *body, int64_t received)
{
	struct store_rcpt r = {"x@lists.example.org", list, "post", ""};
	char *raw = xasprintf("Message-ID: <%s>\r\nSubject: %s\r\n\r\n%s\r\n", msgid, subject,
			      body);
	struct store_incoming in = {"env@example.org", "h", "::1", &r, 1, raw, strlen(raw),
				    received, 0};
	int64_t id = -1;
	if (store_accept_batch(st, &in, 1) != STORE_OK)
		goto out;
	struct store_archive_entry e = {.list = list,
					.raw_id = in.id,
					.message_id = msgid,
					.from_addr = "s@example.org",
					.from_name = "Sender",
					.subject = subject,
					.received = received,
					.in_reply_to = irt,
					.body = body};
	if (store_archive_commit(st, &e, 1, &in.id, 1) != STORE_OK)
		goto out;
	struct store_archived *a;
	size_t n;
	if (store_archive_list(st, list, 1, &a, &n) == STORE_OK && n == 1)
		id = a[0].id;
	store_archived_free(a, n);
out:
	free(raw);
	CHECK(id > 0);
	return id;
}

/* N posts of LIST in one intake batch and one archive commit, each its own
 * thread, received one minute apart from RECEIVED; subject "SUBJ i", body
 * "BODY i". */
static void bulk(struct store *st, const char *list, int n, const char *subj, const char *body,
		 int64_t received)
{
	struct store_rcpt r = {"x@lists.example.org", list, "post", ""};
	struct store_incoming *in = xcalloc((size_t)n, sizeof *in);
	struct store_archive_entry *e = xcalloc((size_t)n, sizeof *e);
	char **s = xcalloc((size_t)n * 3, sizeof *s);
	int64_t *done = xcalloc((size_t)n, sizeof *done);
	for (int i = 0; i < n; i++) {
		s[3 * i] = xasprintf("%s %d", subj, i);
		s[3 * i + 1] = xasprintf("%s %d", body, i);
		s[3 * i + 2] = xasprintf("b%d.%s@x", i, list);
		in[i] = (struct store_incoming){"env@example.org", "h", "::1", &r, 1,
						s[3 * i + 1], strlen(s[3 * i + 1]),
						received + 60 * i, 0};
	}
	CHECK_INT(store_accept_batch(st, in, (size_t)n), STORE_OK);
	for (int i = 0; i < n; i++) {
		e[i] = (struct store_archive_entry){.list = list,
						    .raw_id = in[i].id,
						    .message_id = s[3 * i + 2],
						    .from_addr = "b@x",
						    .subject = s[3 * i],
						    .received = received + 60 * i,
						    .body = s[3 * i + 1]};
		done[i] = in[i].id;
	}
	CHECK_INT(store_archive_commit(st, e, (size_t)n, done, (size_t)n), STORE_OK);
	for (int i = 0; i < 3 * n; i++)
		free(s[i]);
	free(s);
	free(in);
	free(e);
	free(done);
}

/* Turn the database at PATH back into schema 5: what an older dialogue
 * left behind, archive rows and all. */
static void make_v5(const char *path)
{
	testdb_exec(path, "DROP TABLE threads; DROP TABLE archive_months;"
			  " DROP INDEX members_token; DROP VIEW archive_fts_src;"
			  " CREATE VIEW archive_fts_src AS SELECT id, subject,"
			  " from_name || ' ' || from_addr AS from_text, body FROM archive;"
			  " PRAGMA user_version = 5");
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM sqlite_master"
				   " WHERE name IN ('threads', 'archive_months', 'members_token')"),
		  0);
}

#define THREADS_DUMP                                                                    \
	"SELECT group_concat(x, ';') FROM (SELECT list || ',' || thread_id || ',' ||"   \
	" subject || ',' || started || ',' || last_id || ',' || last_received || ',' ||" \
	" count AS x FROM threads ORDER BY list, thread_id)"
#define MONTHS_DUMP                                                               \
	"SELECT group_concat(x, ';') FROM (SELECT list || ',' || month || ',' || count" \
	" || ',' || threads AS x FROM archive_months ORDER BY list, month)"

/* Threads and months kept by store_archive_add equal what the migration
 * computes from the archive rows of a schema 5 database. */
static void test_migration(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	CHECK_INT(store_user_version(st), 6);
	int64_t r = post(st, "l", "r@x", "", "Root", "root", JAN + 14 * DAY);
	post(st, "l", "o@x", "", "Other", "other", JAN + 20 * DAY);
	post(st, "l", "r1@x", "r@x", "Re: Root", "reply one", FEB + 2 * DAY);
	int64_t r2 = post(st, "l", "r2@x", "r1@x", "Re: Root (changed)", "reply two",
			  FEB + 3 * DAY);
	post(st, "m", "m@x", "r@x", "Elsewhere", "other list", FEB - 1);
	store_close(st);

	char *threads = testdb_text(path, THREADS_DUMP);
	char *months = testdb_text(path, MONTHS_DUMP);
	char *want = xasprintf("l,%lld,Root,%d,%lld,%d,3", (long long)r, JAN + 14 * DAY,
			       (long long)r2, FEB + 3 * DAY);
	CHECK(threads && strstr(threads, want) != NULL);
	free(want);
	CHECK_STR(months, "l,2026-01,2,2;l,2026-02,2,0;m,2026-01,1,1");

	make_v5(path);
	st = testdb_open(path);
	if (!st)
		goto out;
	CHECK_INT(store_user_version(st), 6);
	char *threads5 = testdb_text(path, THREADS_DUMP);
	char *months5 = testdb_text(path, MONTHS_DUMP);
	CHECK_STR(threads5, threads);
	CHECK_STR(months5, months);
	free(threads5);
	free(months5);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM sqlite_master"
				   " WHERE name = 'members_token'"),
		  1);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM sqlite_master"
				   " WHERE name = 'archive_fts_src' AND sql LIKE '%char(1)%'"),
		  1);
	char err[256];
	CHECK_INT(store_check(st, err, sizeof err), STORE_OK);

	/* Upgraded, the archive goes on from there. */
	post(st, "l", "r3@x", "r2@x", "Re: Root", "reply three", MAR + DAY);
	struct store_thread *t;
	size_t n;
	long total;
	CHECK_INT(store_threads_page(st, "l", NULL, 0, 0, &t, &n, &total), STORE_OK);
	CHECK_INT(n, 2);
	CHECK_INT(total, 2);
	if (n == 2) {
		CHECK_INT(t[0].thread_id, r);
		CHECK_STR(t[0].subject, "Root");
		CHECK_INT(t[0].count, 4);
		CHECK_INT(t[0].started, JAN + 14 * DAY);
		CHECK_INT(t[0].last_received, MAR + DAY);
		CHECK_STR(t[1].subject, "Other");
		CHECK_INT(t[1].count, 1);
	}
	store_threads_free(t, n);
	store_close(st);

	/* An empty schema 5 database upgrades to empty tables. */
	char *empty = testdb_path(tmpdir);
	st = testdb_open(empty);
	store_close(st);
	make_v5(empty);
	st = testdb_open(empty);
	if (st)
		CHECK_INT(store_user_version(st), 6);
	store_close(st);
	CHECK_INT(testdb_int(empty, "SELECT count(*) FROM threads"), 0);
	CHECK_INT(testdb_int(empty, "SELECT count(*) FROM archive_months"), 0);
	free(empty);
out:
	free(threads);
	free(months);
	free(path);
}

/* A page of threads of LIST as the indices in IDS[0..n) of its threads,
 * in order ("8,7,6"; "?" for one not in IDS; "ERR" when the call fails). */
static const char *page(struct store *st, const char *list, const char *month, long offset,
			long limit, const int64_t *ids, size_t n, long *total)
{
	static char buf[256];
	struct store_thread *t;
	size_t got;
	buf[0] = '\0';
	if (store_threads_page(st, list, month, offset, limit, &t, &got, total) != STORE_OK)
		return "ERR";
	for (size_t i = 0; i < got; i++) {
		size_t j = 0;
		while (j < n && ids[j] != t[i].thread_id)
			j++;
		size_t len = strlen(buf);
		if (j < n)
			snprintf(buf + len, sizeof buf - len, "%s%zu", i ? "," : "", j);
		else
			snprintf(buf + len, sizeof buf - len, "%s?", i ? "," : "");
	}
	store_threads_free(t, got);
	return buf;
}

static void test_threads(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	struct store_thread *t;
	size_t n;
	long total = -1;
	CHECK_INT(store_threads_page(st, "l", NULL, 0, 50, &t, &n, &total), STORE_OK);
	CHECK_INT(n, 0);
	CHECK_INT(total, 0);
	store_threads_free(t, n);

	/* Seven threads, started on days 0..6 of January, then day 30 and
	 * 31 (the last second of January, the first of February). */
	int64_t id[9];
	char mid[32], subj[32];
	for (int i = 0; i < 7; i++) {
		snprintf(mid, sizeof mid, "t%d@x", i);
		snprintf(subj, sizeof subj, "Thread %d", i);
		id[i] = post(st, "l", mid, "", subj, "text", JAN + i * DAY);
	}
	id[7] = post(st, "l", "t7@x", "", "Thread 7", "text", FEB - 1);
	id[8] = post(st, "l", "t8@x", "", "Thread 8", "text", FEB);
	post(st, "other", "t9@x", "", "Other list", "text", JAN);

	/* Latest activity first, pages of three. */
	CHECK_STR(page(st, "l", NULL, 0, 3, id, 9, &total), "8,7,6");
	CHECK_INT(total, 9);
	CHECK_STR(page(st, "l", NULL, 3, 3, id, 9, &total), "5,4,3");
	CHECK_STR(page(st, "l", NULL, 6, 3, id, 9, &total), "2,1,0");
	CHECK_STR(page(st, "l", NULL, 9, 3, id, 9, &total), "");
	CHECK_INT(total, 9);
	CHECK_STR(page(st, "l", NULL, 0, 0, id, 9, &total), "8,7,6,5,4,3,2,1,0");

	/* A reply brings its thread to the front, counts and dates it; the
	 * subject stays the first message's. */
	int64_t rep = post(st, "l", "re1@x", "t1@x", "Re: Thread 1", "reply", MAR);
	int64_t rep2 = post(st, "l", "re2@x", "re1@x", "Re: Re: Thread 1", "reply", MAR + 5);
	CHECK(rep > id[8]);
	CHECK_STR(page(st, "l", NULL, 0, 0, id, 9, &total), "1,8,7,6,5,4,3,2,0");
	CHECK_INT(total, 9);
	CHECK_INT(store_threads_page(st, "l", NULL, 0, 2, &t, &n, &total), STORE_OK);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(t[0].thread_id, id[1]);
		CHECK_STR(t[0].subject, "Thread 1");
		CHECK_INT(t[0].count, 3);
		CHECK_INT(t[0].last_id, rep2);
		CHECK_INT(t[0].last_received, MAR + 5);
		CHECK_INT(t[0].started, JAN + DAY);
		CHECK_INT(t[1].count, 1);
		CHECK_INT(t[1].last_id, id[8]);
		CHECK_INT(t[1].last_received, FEB);
	}
	store_threads_free(t, n);

	/* The month filter: threads started in it, whenever they were
	 * active, ordered the same way; its bounds are exact (7 began on
	 * 2026-01-31T23:59:59Z, 8 a second later). */
	CHECK_STR(page(st, "l", "2026-01", 0, 50, id, 9, &total), "1,7,6,5,4,3,2,0");
	CHECK_INT(total, 8);
	CHECK_STR(page(st, "l", "2026-01", 2, 3, id, 9, &total), "6,5,4");
	CHECK_INT(total, 8);
	CHECK_STR(page(st, "l", "2026-02", 0, 50, id, 9, &total), "8");
	CHECK_INT(total, 1);
	/* Replies only in March: no thread started then. */
	CHECK_STR(page(st, "l", "2026-03", 0, 50, id, 9, &total), "");
	CHECK_INT(total, 0);
	CHECK_STR(page(st, "other", "2026-01", 0, 50, id, 9, &total), "?");
	CHECK_INT(total, 1);

	static const char *const bad[] = {"2026-13", "2026-00", "2026-1",  "26-01",
					  "2026-01-01", "2026/01", "x",	      "",
					  "2026-01' OR '1'='1", "２０２６-01"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		total = -1;
		CHECK_INT(store_threads_page(st, "l", bad[i], 0, 50, &t, &n, &total), STORE_INVAL);
		CHECK_INT(n, 0);
		CHECK_INT(total, 0);
		CHECK(t == NULL);
	}

	/* Months: newest first, counting messages (replies too). */
	struct store_month *m;
	CHECK_INT(store_archive_months(st, "l", &m, &n), STORE_OK);
	CHECK_INT(n, 3);
	if (n == 3) {
		CHECK_STR(m[0].month, "2026-03");
		CHECK_INT(m[0].count, 2);
		CHECK_INT(m[0].threads, 0); /* two replies, no new thread */
		CHECK_STR(m[1].month, "2026-02");
		CHECK_INT(m[1].count, 1);
		CHECK_INT(m[1].threads, 1);
		CHECK_STR(m[2].month, "2026-01");
		CHECK_INT(m[2].count, 8);
		CHECK_INT(m[2].threads, 8);
	}
	free(m);
	CHECK_INT(store_archive_months(st, "nosuch", &m, &n), STORE_OK);
	CHECK_INT(n, 0);
	free(m);

	/* Stats agree with counting the archive. */
	long count, counted;
	int64_t last;
	CHECK_INT(store_archive_stats(st, "l", &count, &last), STORE_OK);
	CHECK_INT(store_archive_count(st, "l", &counted), STORE_OK);
	CHECK_INT(count, counted);
	CHECK_INT(count, 11);
	CHECK_INT(last, rep2);
	CHECK_INT(store_archive_stats(st, "nosuch", &count, &last), STORE_OK);
	CHECK_INT(count, 0);
	CHECK_INT(last, 0);

	/* Archiving the same message again changes no count. */
	int64_t raw_id = testdb_int(path, "SELECT raw_id FROM archive WHERE message_id = 're1@x'");
	struct store_archive_entry again = {"l", raw_id, "re1@x", "", "", "Re: Thread 1", "", 0,
					    MAR, "t1@x", "", "reply", 0};
	CHECK_INT(store_archive_commit(st, &again, 1, &raw_id, 1), STORE_OK);
	CHECK_INT(testdb_int(path, "SELECT sum(count) FROM threads WHERE list = 'l'"), 11);
	CHECK_INT(testdb_int(path, "SELECT sum(count) FROM archive_months WHERE list = 'l'"), 11);
	CHECK_INT(testdb_int(path, "SELECT count FROM threads WHERE thread_id = (SELECT id FROM"
				   " archive WHERE message_id = 't1@x')"),
		  3);
	char err[256];
	CHECK_INT(store_check(st, err, sizeof err), STORE_OK);
	store_close(st);
	free(path);
}

static void test_thread_messages(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	/* Thread A: a0 <- a1 <- a2, a3, a4; thread B: b0 <- b1, interleaved. */
	int64_t a0 = post(st, "l", "a0@x", "", "A", "a0", JAN);
	int64_t b0 = post(st, "l", "b0@x", "", "B", "b0", JAN + 1);
	int64_t a1 = post(st, "l", "a1@x", "a0@x", "Re: A", "a1", JAN + 2);
	int64_t b1 = post(st, "l", "b1@x", "b0@x", "Re: B", "b1", JAN + 3);
	int64_t a2 = post(st, "l", "a2@x", "a1@x", "Re: A", "a2", JAN + 4);
	int64_t a3 = post(st, "l", "a3@x", "a0@x", "Re: A", "a3", JAN + 5);
	int64_t a4 = post(st, "l", "a4@x", "a2@x", "Re: A", "a4", JAN + 6);
	int64_t x0 = post(st, "x", "x0@x", "", "X", "x0", JAN + 7);

	/* Ordered by thread, then id, whatever order the ids come in; a
	 * repeated id counts once; other lists' threads are not there. */
	int64_t ids[] = {b0, a0, x0, b0, 999999};
	struct store_archived *v;
	size_t n;
	CHECK_INT(store_thread_messages(st, "l", ids, 5, 0, &v, &n), STORE_OK);
	CHECK_INT(n, 7);
	if (n == 7) {
		int64_t want[] = {a0, a1, a2, a3, a4, b0, b1};
		for (int i = 0; i < 7; i++)
			CHECK_INT(v[i].id, want[i]);
		CHECK_INT(v[1].thread_id, a0);
		CHECK_STR(v[1].in_reply_to, "a0@x");
		CHECK_STR(v[1].message_id, "a1@x");
		CHECK_STR(v[1].subject, "Re: A");
		CHECK_STR(v[1].from_name, "Sender");
		CHECK_STR(v[1].from_addr, "s@example.org");
		CHECK_INT(v[1].received, JAN + 2);
		CHECK(v[1].mail_from == NULL);
		CHECK_INT(v[6].thread_id, b0);
	}
	store_archived_free(v, n);

	/* The cap keeps each thread's first messages. */
	CHECK_INT(store_thread_messages(st, "l", ids, 5, 3, &v, &n), STORE_OK);
	CHECK_INT(n, 5);
	if (n == 5) {
		CHECK_INT(v[2].id, a2);
		CHECK_INT(v[3].id, b0);
		CHECK_INT(v[4].id, b1);
	}
	store_archived_free(v, n);
	CHECK_INT(store_thread_messages(st, "l", ids, 5, 1, &v, &n), STORE_OK);
	CHECK_INT(n, 2);
	store_archived_free(v, n);
	CHECK_INT(store_thread_messages(st, "l", ids, 0, 0, &v, &n), STORE_OK);
	CHECK_INT(n, 0);
	CHECK(v == NULL);
	CHECK_INT(store_thread_messages(st, "x", ids, 5, 0, &v, &n), STORE_OK);
	CHECK_INT(n, 1);
	store_archived_free(v, n);

	/* Neighbours within the thread, by id, never across threads. */
	int64_t prev = -1, next = -1;
	CHECK_INT(store_thread_neighbours(st, "l", a0, a1, &prev, &next), STORE_OK);
	CHECK_INT(prev, a0);
	CHECK_INT(next, a2);
	CHECK_INT(store_thread_neighbours(st, "l", a0, a0, &prev, &next), STORE_OK);
	CHECK_INT(prev, 0);
	CHECK_INT(next, a1);
	CHECK_INT(store_thread_neighbours(st, "l", a0, a4, &prev, &next), STORE_OK);
	CHECK_INT(prev, a3);
	CHECK_INT(next, 0);
	CHECK_INT(store_thread_neighbours(st, "l", b0, b0, &prev, &next), STORE_OK);
	CHECK_INT(prev, 0);
	CHECK_INT(next, b1);
	CHECK_INT(store_thread_neighbours(st, "x", a0, a1, &prev, &next), STORE_OK);
	CHECK_INT(prev, 0);
	CHECK_INT(next, 0);

	/* One message, with its body, only under its own list. */
	struct store_archived a;
	char *body = NULL;
	CHECK_INT(store_archive_get_in(st, "l", a3, &a, &body), STORE_OK);
	CHECK_STR(a.message_id, "a3@x");
	CHECK_STR(a.list, "l");
	CHECK_INT(a.thread_id, a0);
	CHECK_STR(body, "a3");
	store_archived_clear(&a);
	free(body);
	body = (char *)"untouched";
	CHECK_INT(store_archive_get_in(st, "x", a3, &a, &body), STORE_NOTFOUND);
	CHECK(body == NULL);
	CHECK_INT(store_archive_get_in(st, "l", 999999, &a, &body), STORE_NOTFOUND);
	CHECK(body == NULL);
	CHECK_INT(store_archive_get_in(st, "x", x0, &a, &body), STORE_OK);
	store_archived_clear(&a);
	free(body);
	store_close(st);
	free(path);
}

static int has_marked(const char *s, const char *word)
{
	char *want = xasprintf("\x01%s\x02", word);
	int r = s && strstr(s, want) != NULL;
	free(want);
	return r;
}

/* Markers come in pairs, 0x01 then 0x02, never nested. */
static int balanced(const char *s)
{
	int open = 0;
	for (; s && *s; s++) {
		if (*s == '\x01' && open++)
			return 0;
		if (*s == '\x02' && !open--)
			return 0;
	}
	return s && !open;
}

static void test_search_page(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	struct sbuf longb = {0};
	for (int i = 0; i < 200; i++)
		sbuf_printf(&longb, "filler%d ", i);
	sbuf_adds(&longb, "the Budget was discussed at length");
	for (int i = 0; i < 200; i++)
		sbuf_printf(&longb, " more%d", i);
	int64_t lng = post(st, "l", "long@x", "", "Long one", longb.buf, JAN);
	sbuf_free(&longb);
	post(st, "l", "subj@x", "", "Budget for 2026", "see the attachment", JAN + 1);
	post(st, "m", "m@x", "", "Budget", "budget budget", JAN + 2);
	bulk(st, "l", 30, "Routine", "budget line", JAN + 10);

	struct store_hit *h;
	size_t n;
	long total = -1;
	CHECK_INT(store_archive_search_page(st, "l", "budget", 0, 10, &h, &n, &total), STORE_OK);
	CHECK_INT(total, 32);
	CHECK_INT(n, 10);
	if (n == 10) {
		/* A subject hit ranks first; its body has no match: the
		 * snippet is the body's start, unmarked. */
		CHECK_STR(h[0].a.message_id, "subj@x");
		CHECK_STR(h[0].snippet, "see the attachment");
		CHECK(has_marked(h[1].snippet, "budget"));
		CHECK(balanced(h[1].snippet));
		CHECK_STR(h[1].a.list, "l");
	}
	/* The same hits in the same order as store_archive_search, page by
	 * page, none twice. */
	struct store_archived *all;
	size_t n_all;
	CHECK_INT(store_archive_search(st, "l", "budget", 0, &all, &n_all), STORE_OK);
	CHECK_INT(n_all, 32);
	size_t seen = 0;
	for (long off = 0; off < 40; off += 10) {
		store_hits_free(h, n);
		CHECK_INT(store_archive_search_page(st, "l", "budget", off, 10, &h, &n, &total),
			  STORE_OK);
		CHECK_INT(total, 32);
		for (size_t i = 0; i < n && seen < n_all; i++, seen++)
			CHECK_INT(h[i].a.id, all[seen].id);
	}
	CHECK_INT(seen, 32);
	store_archived_free(all, n_all);
	store_hits_free(h, n);

	/* A long body: a short window around the match, cut with "...". */
	CHECK_INT(store_archive_search_page(st, "l", "discussed budget", 0, 10, &h, &n, &total),
		  STORE_OK);
	CHECK_INT(total, 1);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK_INT(h[0].a.id, lng);
		CHECK(has_marked(h[0].snippet, "Budget"));
		CHECK(has_marked(h[0].snippet, "discussed"));
		CHECK(strncmp(h[0].snippet, "...", 3) == 0);
		CHECK(strlen(h[0].snippet) >= 3 &&
		      strcmp(h[0].snippet + strlen(h[0].snippet) - 3, "...") == 0);
		CHECK(strlen(h[0].snippet) < 300);
		CHECK(strstr(h[0].snippet, "filler0 ") == NULL);
	}
	store_hits_free(h, n);

	/* A body's own 0x01 and 0x02 bytes never pass for markers. */
	post(st, "l", "forge@x", "", "Forged", "\x01" "forged\x02 markers \x02 around\x01 zebra",
	     JAN + 3);
	CHECK_INT(store_archive_search_page(st, "l", "zebra", 0, 10, &h, &n, &total), STORE_OK);
	CHECK_INT(n, 1);
	if (n == 1) {
		CHECK(has_marked(h[0].snippet, "zebra"));
		CHECK(!has_marked(h[0].snippet, "forged"));
		CHECK(balanced(h[0].snippet));
		CHECK_STR(h[0].snippet, " forged  markers   around  \x01" "zebra\x02");
	}
	store_hits_free(h, n);
	char err[256];
	CHECK_INT(store_check(st, err, sizeof err), STORE_OK);

	/* Pages past the end, no words, other lists. */
	CHECK_INT(store_archive_search_page(st, "l", "budget", 100, 10, &h, &n, &total),
		  STORE_OK);
	CHECK_INT(n, 0);
	CHECK_INT(total, 32);
	store_hits_free(h, n);
	CHECK_INT(store_archive_search_page(st, "l", " \t ", 0, 10, &h, &n, &total), STORE_OK);
	CHECK_INT(n, 0);
	CHECK_INT(total, 0);
	CHECK(h == NULL);
	CHECK_INT(store_archive_search_page(st, "m", "budget", 0, 0, &h, &n, &total), STORE_OK);
	CHECK_INT(n, 1);
	CHECK_INT(total, 1);
	store_hits_free(h, n);

	static const char *const hostile[] = {
		"\"", "\"\"\"", "budget*", "*", "NEAR(", "NEAR(budget line, 2)", "-budget",
		"budget AND line", "AND", "OR NOT", "(", ") OR (", "subject:budget",
		"{subject body}: x", "budget\" OR \"x", "^budget", "a\"b", ":", "\\", ";--",
		"\xff\xfe broken \xc3", "NEAR(\"budget\" -line AND *",
	};
	for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
		int rc = store_archive_search_page(st, "l", hostile[i], 0, 10, &h, &n, &total);
		if (rc != STORE_OK)
			fprintf(stderr, "query [%s]: %s\n", hostile[i], store_errmsg(st));
		CHECK_INT(rc, STORE_OK);
		CHECK(total >= 0 && (size_t)total >= n);
		store_hits_free(h, n);
	}
	/* Operators are words: "budget AND line" needs all three. */
	CHECK_INT(store_archive_search_page(st, "l", "budget AND line", 0, 10, &h, &n, &total),
		  STORE_OK);
	CHECK_INT(total, 0);
	store_hits_free(h, n);

	/* The count stops at the cap. */
	bulk(st, "cap", STORE_SEARCH_COUNT_CAP + 50, "Cap", "needle here", FEB);
	CHECK_INT(store_archive_search_page(st, "cap", "needle", 0, 20, &h, &n, &total),
		  STORE_OK);
	CHECK_INT(total, STORE_SEARCH_COUNT_CAP);
	CHECK_INT(n, 20);
	if (n == 20)
		CHECK(has_marked(h[19].snippet, "needle"));
	store_hits_free(h, n);
	store_close(st);
	free(path);
}

static void test_member_by_token(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	struct store_member m = {.list = "l", .address = "Ann@Example.org", .name = "Ann"};
	CHECK_INT(store_member_add(st, &m, 0), STORE_OK);
	m.list = "k";
	CHECK_INT(store_member_add(st, &m, 0), STORE_OK);
	struct store_member b = {.list = "l", .address = "bob@example.org"};
	CHECK_INT(store_member_add(st, &b, 0), STORE_OK);
	CHECK_INT(store_member_set_token(st, "l", "ann@example.org", "tokAnn"), STORE_OK);
	CHECK_INT(store_member_set_token(st, "k", "ann@example.org", "tokAnnK"), STORE_OK);

	struct store_member g;
	CHECK_INT(store_member_by_token(st, "l", "tokAnn", &g), STORE_OK);
	CHECK_STR(g.address, "Ann@Example.org");
	CHECK_STR(g.list, "l");
	CHECK_STR(g.name, "Ann");
	CHECK_STR(g.status, "active");
	store_member_free(&g);
	/* A token is good for its own list only, and matched exactly. */
	CHECK_INT(store_member_by_token(st, "k", "tokAnn", &g), STORE_NOTFOUND);
	CHECK(g.address == NULL);
	CHECK_INT(store_member_by_token(st, "k", "tokAnnK", &g), STORE_OK);
	CHECK_STR(g.list, "k");
	store_member_free(&g);
	CHECK_INT(store_member_by_token(st, "l", "TOKANN", &g), STORE_NOTFOUND);
	CHECK_INT(store_member_by_token(st, "l", "tokAnn' OR '1'='1", &g), STORE_NOTFOUND);
	CHECK_INT(store_member_by_token(st, "l", "", &g), STORE_NOTFOUND);
	CHECK_INT(store_member_by_token(st, "l", NULL, &g), STORE_NOTFOUND);
	/* Bob has no token: NULL never matches. */
	CHECK_INT(store_member_by_token(st, "l", "%", &g), STORE_NOTFOUND);
	CHECK_INT(store_member_remove(st, "l", "ann@example.org"), STORE_OK);
	CHECK_INT(store_member_by_token(st, "l", "tokAnn", &g), STORE_NOTFOUND);
	store_close(st);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM pragma_index_list('members')"
				   " WHERE name = 'members_token'"),
		  1);
	free(path);
}

struct batch_ctx {
	int64_t last;
	int calls, bad, stop_at;
	unsigned char *seen; /* by archive id */
	size_t n_seen;
};

static int batch_cb(void *arg, const struct store_archived *a, const char *raw, size_t len)
{
	struct batch_ctx *c = arg;
	c->calls++;
	if (a->id <= c->last || a->id < 0 || (size_t)a->id >= c->n_seen)
		c->bad++;
	else if (c->seen[a->id]++)
		c->bad++;
	c->last = a->id;
	if (!a->mail_from || strcmp(a->mail_from, "env@example.org") != 0)
		c->bad++;
	if (strcmp(a->list, "big") != 0)
		c->bad++;
	/* bulk(): the raw message is the body text. */
	char *want = xasprintf("body %s", a->subject + 4);
	if (strlen(raw) != len || strcmp(raw, want) != 0)
		c->bad++;
	free(want);
	return c->stop_at && c->calls == c->stop_at;
}

static void test_batch(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	bulk(st, "big", 500, "big", "body", JAN);
	bulk(st, "small", 10, "small", "body", JAN);
	bulk(st, "big", 500, "big", "body", FEB);

	struct batch_ctx c = {0};
	c.n_seen = 2000;
	c.seen = xcalloc(c.n_seen, 1);
	int64_t after = 0;
	int batches = 0;
	for (;;) {
		int calls = c.calls;
		int64_t last = after;
		CHECK_INT(store_archive_batch(st, "big", after, 100, batch_cb, &c, &last),
			  STORE_OK);
		if (c.calls == calls) {
			CHECK_INT(last, after); /* unchanged when none */
			break;
		}
		CHECK(c.calls - calls <= 100);
		CHECK(last > after);
		after = last;
		if (++batches > 20)
			break;
	}
	CHECK_INT(batches, 10);
	CHECK_INT(c.calls, 1000);
	CHECK_INT(c.bad, 0);
	size_t once = 0;
	for (size_t i = 0; i < c.n_seen; i++)
		once += c.seen[i] == 1;
	CHECK_INT(once, 1000);
	free(c.seen);

	/* FN stops it early: *last is the last id FN saw. */
	struct batch_ctx s = {0};
	s.n_seen = 2000;
	s.seen = xcalloc(s.n_seen, 1);
	s.stop_at = 7;
	int64_t last = 0;
	CHECK_INT(store_archive_batch(st, "big", 0, 100, batch_cb, &s, &last), STORE_OK);
	CHECK_INT(s.calls, 7);
	CHECK_INT(last, s.last);
	free(s.seen);

	/* MAX 0: all of them in one go (store_archive_each). */
	struct batch_ctx e = {0};
	e.n_seen = 2000;
	e.seen = xcalloc(e.n_seen, 1);
	CHECK_INT(store_archive_batch(st, "big", 0, 0, batch_cb, &e, NULL), STORE_OK);
	CHECK_INT(e.calls, 1000);
	CHECK_INT(e.bad, 0);
	memset(e.seen, 0, e.n_seen);
	e.calls = 0;
	e.last = 0;
	CHECK_INT(store_archive_each(st, "big", batch_cb, &e), STORE_OK);
	CHECK_INT(e.calls, 1000);
	CHECK_INT(e.bad, 0);
	free(e.seen);
	store_close(st);
	free(path);
}

/* What SQLite did on a store's connection while a meter is attached:
 * virtual machine steps, steps of full scans (a table, or an index read
 * without a constraint), rows put into automatic indexes, the statement
 * that took the most steps and the first that scanned. Counted, not
 * timed: the same on any machine, under any load or sanitizer. */
struct meter {
	long long vm, fullscan, autoindex;
	long long worst_vm;
	char worst[200], scan[200];
};

static void meter_add(struct meter *m, sqlite3_stmt *s)
{
	long long vm = sqlite3_stmt_status(s, SQLITE_STMTSTATUS_VM_STEP, 1);
	long long full = sqlite3_stmt_status(s, SQLITE_STMTSTATUS_FULLSCAN_STEP, 1);
	long long autoidx = sqlite3_stmt_status(s, SQLITE_STMTSTATUS_AUTOINDEX, 1);
	const char *sql = sqlite3_sql(s);
	m->vm += vm;
	m->fullscan += full;
	m->autoindex += autoidx;
	if (vm > m->worst_vm) {
		m->worst_vm = vm;
		snprintf(m->worst, sizeof m->worst, "%s", sql ? sql : "?");
	}
	if ((full || autoidx) && !m->scan[0])
		snprintf(m->scan, sizeof m->scan, "%s", sql ? sql : "?");
}

/* Each statement's counters as it ends (reset, done or finalized): also
 * those that come and go within one call, FTS5's own included. */
static int meter_trace(unsigned type, void *arg, void *p, void *x)
{
	(void)x;
	if (type == SQLITE_TRACE_PROFILE)
		meter_add(arg, p);
	return 0;
}

static void meter_start(struct store *st, struct meter *m)
{
	/* Counters left from before (by statements an earlier call prepared)
	 * are not this call's: read, which clears them, and forgotten. */
	for (sqlite3_stmt *s = sqlite3_next_stmt(st->db, NULL); s; s = sqlite3_next_stmt(st->db, s))
		meter_add(m, s);
	memset(m, 0, sizeof *m);
	sqlite3_trace_v2(st->db, SQLITE_TRACE_PROFILE, meter_trace, m);
}

static void meter_stop(struct store *st, struct meter *m)
{
	sqlite3_trace_v2(st->db, 0, NULL, NULL);
	/* Whatever a statement still open did (none should be). */
	for (sqlite3_stmt *s = sqlite3_next_stmt(st->db, NULL); s; s = sqlite3_next_stmt(st->db, s))
		meter_add(m, s);
}

/* The most virtual machine steps one page query may take on the archive
 * below: a page reads at most a few thousand index entries (50 threads at
 * the deepest offset here, 20 messages of each of 50 threads, 1,000
 * search matches), while reading the list's 100,000 archive rows once,
 * however it is done (a scan, or every entry of an index on the list),
 * takes at least one step per row, and several in practice — the
 * calibration below checks that a scan exceeds this many times over. */
#define MAX_VM_STEPS 60000

/* The call that M measured did no full scan, built no automatic index and
 * stayed within MAX_VM_STEPS. */
static int cheap(const struct meter *m, const char *what)
{
	int ok = m->fullscan == 0 && m->autoindex == 0 && m->vm < MAX_VM_STEPS;
	if (!ok)
		fprintf(stderr,
			"scale: %s: %lld VM steps (at most %d; most in: %s), %lld in full"
			" scans, %lld rows in automatic indexes (first in: %s)\n",
			what, m->vm, MAX_VM_STEPS, m->worst, m->fullscan, m->autoindex,
			m->scan[0] ? m->scan : "none");
	return ok;
}

/* 100,000 messages in 10,000 threads over about three years, written
 * behind the store's back into a schema 5 database, upgraded, then what
 * each page query costs SQLite (see struct meter) on it. */
static void test_scale(void)
{
	char *path = testdb_path(tmpdir);
	struct store *st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	struct store_member m = {.list = "big", .address = "a@x"};
	CHECK_INT(store_member_add(st, &m, 0), STORE_OK);
	CHECK_INT(store_member_set_token(st, "big", "a@x", "tok"), STORE_OK);
	store_close(st);
	make_v5(path);
	testdb_exec(path,
		    "BEGIN;"
		    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
		    " WHERE i < 100000)"
		    " INSERT INTO messages(id, received, mail_from, size, raw, state)"
		    " SELECT i, 1767225600 + i * 1000, 'env@x', 3, 'raw', 'done' FROM n;"
		    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
		    " WHERE i < 100000)"
		    " INSERT INTO archive(id, list, raw_id, message_id, subject, received,"
		    " thread_id, body)"
		    " SELECT i, 'big', i, 'm' || i || '@x', 'subject ' || (i - (i - 1) % 10),"
		    " 1767225600 + i * 1000, i - (i - 1) % 10,"
		    " 'word' || (i % 100) || ' common text ' || i FROM n;"
		    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
		    " WHERE i < 5000)"
		    " INSERT INTO members(list, address, joined, unsub_token)"
		    " SELECT 'big', 'm' || i || '@x', 1, 't' || i FROM n;"
		    "COMMIT;");
	st = testdb_open(path);
	if (!st) {
		free(path);
		return;
	}
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM threads"), 10000);
	CHECK_INT(testdb_int(path, "SELECT count(*) FROM threads WHERE count <> 10"), 0);
	CHECK_INT(testdb_int(path, "SELECT sum(count) FROM archive_months"), 100000);
	CHECK_INT(testdb_int(path, "SELECT last_received - started FROM threads"
				   " WHERE thread_id = 11"),
		  9 * 1000);
	CHECK_INT(testdb_int(path, "SELECT last_id FROM threads WHERE thread_id = 11"), 20);

	/* Calibration: the meter sees a scan of the archive, and such a scan
	 * costs many times MAX_VM_STEPS (else the checks below could not
	 * fail). */
	struct meter cost;
	meter_start(st, &cost);
	CHECK(sqlite3_exec(st->db, "SELECT count(*) FROM archive WHERE body LIKE '%nowhere%'",
			   NULL, NULL, NULL) == SQLITE_OK);
	meter_stop(st, &cost);
	CHECK(cost.fullscan > 0);
	CHECK(cost.vm > 5LL * MAX_VM_STEPS);
	meter_start(st, &cost);
	CHECK(sqlite3_exec(st->db, "SELECT count(*) FROM archive WHERE list = 'big'"
				   " AND subject LIKE '%nowhere%'",
			   NULL, NULL, NULL) == SQLITE_OK);
	meter_stop(st, &cost);
	CHECK(cost.vm > 5LL * MAX_VM_STEPS);

	struct store_thread *t;
	size_t n;
	long total;
	int bad = 0;
	int64_t ids[50];
	/* Every page of the first twenty, the deepest reading the most. */
	for (int r = 0; r < 20; r++) {
		meter_start(st, &cost);
		bad += store_threads_page(st, "big", NULL, r * 50, 50, &t, &n, &total) !=
			       STORE_OK ||
		       n != 50 || total != 10000;
		meter_stop(st, &cost);
		CHECK(cheap(&cost, "store_threads_page"));
		for (size_t i = 0; i < n; i++)
			ids[i] = t[i].thread_id;
		store_threads_free(t, n);
	}
	for (int r = 0; r < 4; r++) {
		meter_start(st, &cost);
		bad += store_threads_page(st, "big", "2026-06", r * 50, 50, &t, &n, &total) !=
			       STORE_OK ||
		       n != 50 || total < 200;
		meter_stop(st, &cost);
		CHECK(cheap(&cost, "store_threads_page of a month"));
		store_threads_free(t, n);
	}
	{
		struct store_archived *v;
		meter_start(st, &cost);
		bad += store_thread_messages(st, "big", ids, 50, 20, &v, &n) != STORE_OK ||
		       n != 500;
		meter_stop(st, &cost);
		CHECK(cheap(&cost, "store_thread_messages"));
		store_archived_free(v, n);
	}
	for (int r = 0; r < 20; r++) {
		int64_t id = 1 + (r * 4999) % 100000, prev, next;
		struct store_archived a;
		char *body;
		meter_start(st, &cost);
		bad += store_archive_get_in(st, "big", id, &a, &body) != STORE_OK;
		bad += store_thread_neighbours(st, "big", a.thread_id, id, &prev, &next) !=
			       STORE_OK ||
		       (prev == 0 && next == 0);
		meter_stop(st, &cost);
		CHECK(cheap(&cost, "store_archive_get_in and store_thread_neighbours"));
		store_archived_clear(&a);
		free(body);
	}
	{
		long count;
		int64_t last;
		meter_start(st, &cost);
		bad += store_archive_stats(st, "big", &count, &last) != STORE_OK ||
		       count != 100000 || last != 100000;
		meter_stop(st, &cost);
		CHECK(cheap(&cost, "store_archive_stats"));
		struct store_month *mo;
		meter_start(st, &cost);
		bad += store_archive_months(st, "big", &mo, &n) != STORE_OK || n < 30;
		meter_stop(st, &cost);
		CHECK(cheap(&cost, "store_archive_months"));
		free(mo);
		struct store_member g;
		meter_start(st, &cost);
		bad += store_member_by_token(st, "big", "tok", &g) != STORE_OK;
		meter_stop(st, &cost);
		CHECK(cheap(&cost, "store_member_by_token"));
		store_member_free(&g);
	}
	/* A word in 1,000 messages: ranked, counted, a page of snippets. */
	for (int r = 0; r < 50; r += 7) {
		struct store_hit *h;
		meter_start(st, &cost);
		bad += store_archive_search_page(st, "big", "word7", r * 20, 20, &h, &n, &total) !=
			       STORE_OK ||
		       n != 20 || total != 1000 || !has_marked(h[0].snippet, "word7");
		meter_stop(st, &cost);
		CHECK(cheap(&cost, "store_archive_search_page"));
		store_hits_free(h, n);
	}
	CHECK_INT(bad, 0);
	store_close(st);
	free(path);
}

int main(void)
{
	if (testdb_mkdir(tmpdir, "test_store_web") < 0)
		return 1;
	log_set_level(LOG_LVL_WARN);
	test_migration();
	test_threads();
	test_thread_messages();
	test_search_page();
	test_member_by_token();
	test_batch();
	test_scale();
	testdb_rmdir(tmpdir);
	return test_result();
}
