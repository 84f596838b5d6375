/* store: the website's queries (threads, months, messages, search pages,
 * one-click unsubscribe). None reads the archive table beyond the rows it
 * returns: each is an index seek or a range of an index bounded by the
 * page, a thread, a month or a list's thread rows (counted for the pager),
 * so a page costs about the same with 100 messages as with 100,000. The
 * thread and month rows are kept by store_archive_add (store_process.c). */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "snippet.h"
#include "store_int.h"
#include "util.h"

#define THREAD_COLS "thread_id, subject, started, last_received, last_id, count"

void store_threads_free(struct store_thread *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++)
		free(t[i].subject);
	free(t);
}

void store_hits_free(struct store_hit *h, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < n; i++) {
		store_archived_clear(&h[i].a);
		free(h[i].snippet);
	}
	free(h);
}

/* LIMIT as SQLite takes it: 0 (the callers' "all") is -1, no limit. */
static sqlite3_int64 sql_limit(long limit)
{
	return limit > 0 ? (sqlite3_int64)limit : -1;
}

/* "YYYY-MM" with a month 01..12: the only month text that reaches SQL. */
static int valid_month(const char *m)
{
	for (int i = 0; i < 7; i++)
		if (i == 4 ? m[i] != '-' : !(m[i] >= '0' && m[i] <= '9'))
			return 0;
	if (m[7] != '\0')
		return 0;
	int mon = (m[5] - '0') * 10 + (m[6] - '0');
	return mon >= 1 && mon <= 12;
}

/* A growing array of SIZE-byte rows. */
struct rowbuf {
	char *v;
	size_t len, cap, size;
};

/* Step S (bound) to its end, appending one zeroed element to B per row for
 * ROW to fill, then reset S. On an error B keeps the rows read so far, for
 * the caller's own free function. */
static int rows(struct store *st, sqlite3_stmt *s, const char *what, struct rowbuf *b,
		void (*row)(sqlite3_stmt *s, void *elem))
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (b->len == b->cap) {
			b->cap = b->cap ? b->cap * 2 : 16;
			b->v = xrealloc(b->v, b->cap * b->size);
		}
		void *elem = b->v + b->len++ * b->size;
		memset(elem, 0, b->size);
		row(s, elem);
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, what);
	sqlite3_reset(s);
	return ret;
}

static void thread_row(sqlite3_stmt *s, void *elem)
{
	struct store_thread *t = elem;
	t->thread_id = sqlite3_column_int64(s, 0);
	t->subject = store_col_dup(s, 1);
	t->started = sqlite3_column_int64(s, 2);
	t->last_received = sqlite3_column_int64(s, 3);
	t->last_id = sqlite3_column_int64(s, 4);
	t->count = (long)sqlite3_column_int64(s, 5);
}

static void month_row(sqlite3_stmt *s, void *elem)
{
	struct store_month *m = elem;
	const unsigned char *t = sqlite3_column_text(s, 0);
	if (t)
		strncpy(m->month, (const char *)t, sizeof m->month - 1);
	m->count = (long)sqlite3_column_int64(s, 1);
	m->threads = (long)sqlite3_column_int64(s, 2);
}

static void archived_row(sqlite3_stmt *s, void *elem)
{
	store_archived_from_row(s, elem);
}

/* The month's bounds are computed by SQLite from the validated text, with
 * the same calendar that filled archive_months; as constants they leave
 * the (list, started) index usable, and only that month's threads are
 * sorted by activity. */
#define MONTH_RANGE                                                         \
	" started >= CAST(strftime('%s', ?2 || '-01') AS INTEGER)"        \
	" AND started < CAST(strftime('%s', ?2 || '-01', '+1 month') AS INTEGER)"

int store_threads_page(struct store *st, const char *list, const char *month, long offset,
		       long limit, struct store_thread **out, size_t *n, long *total)
{
	*out = NULL;
	*n = 0;
	*total = 0;
	if (month && !valid_month(month))
		return store_failf(st, STORE_INVAL, "bad month \"%.16s\" (want YYYY-MM)", month);
	sqlite3_stmt *s;
	/* The total from the month rows (threads started per month), not a
	 * count(*) of threads: that would read every thread of the list for
	 * each page shown. */
	if (month)
		s = store_sql(st, SQL_WEB_THREADS_MONTH_COUNT,
			      "SELECT coalesce(sum(threads), 0) FROM archive_months"
			      " WHERE list = ?1 AND month = ?2");
	else
		s = store_sql(st, SQL_WEB_THREADS_COUNT,
			      "SELECT coalesce(sum(threads), 0) FROM archive_months WHERE list = ?1");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	if (month)
		sqlite3_bind_text(s, 2, month, -1, SQLITE_STATIC);
	int64_t count;
	int rc = store_query_int(st, s, &count, "count threads");
	if (rc != STORE_OK)
		return rc;
	*total = (long)count;

	if (month)
		s = store_sql(st, SQL_WEB_THREADS_MONTH,
			      "SELECT " THREAD_COLS " FROM threads WHERE list = ?1 AND" MONTH_RANGE
			      " ORDER BY last_id DESC LIMIT ?3 OFFSET ?4");
	else
		s = store_sql(st, SQL_WEB_THREADS,
			      "SELECT " THREAD_COLS " FROM threads WHERE list = ?1"
			      " ORDER BY last_id DESC LIMIT ?3 OFFSET ?4");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	if (month)
		sqlite3_bind_text(s, 2, month, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, sql_limit(limit));
	sqlite3_bind_int64(s, 4, offset > 0 ? offset : 0);
	struct rowbuf b = {.size = sizeof **out};
	rc = rows(st, s, "list threads", &b, thread_row);
	if (rc != STORE_OK) {
		store_threads_free((struct store_thread *)b.v, b.len);
		return rc;
	}
	*out = (struct store_thread *)b.v;
	*n = b.len;
	return STORE_OK;
}

int store_archive_months(struct store *st, const char *list, struct store_month **out,
			 size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *s = store_sql(st, SQL_WEB_MONTHS,
				    "SELECT month, count, threads FROM archive_months WHERE list = ?"
				    " ORDER BY month DESC");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	struct rowbuf b = {.size = sizeof **out};
	int rc = rows(st, s, "list months", &b, month_row);
	if (rc != STORE_OK) {
		free(b.v);
		return rc;
	}
	*out = (struct store_month *)b.v;
	*n = b.len;
	return STORE_OK;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int store_thread_messages(struct store *st, const char *list, const int64_t *thread_ids,
			  size_t n_threads, long max_per_thread, struct store_archived **out,
			  size_t *n)
{
	*out = NULL;
	*n = 0;
	if (n_threads == 0)
		return STORE_OK;
	int64_t *ids = xmalloc(n_threads * sizeof *ids);
	memcpy(ids, thread_ids, n_threads * sizeof *ids);
	qsort(ids, n_threads, sizeof *ids, cmp_id);

	/* One seek per thread on archive(list, thread_id), whose entries are
	 * in id order: a page of 50 threads is 50 short range reads, however
	 * long the threads or the archive. */
	struct rowbuf b = {.size = sizeof **out};
	int rc = STORE_OK;
	for (size_t i = 0; i < n_threads && rc == STORE_OK; i++) {
		if (i > 0 && ids[i] == ids[i - 1])
			continue;
		sqlite3_stmt *s = store_sql(st, SQL_WEB_THREAD_MSGS,
					    "SELECT " ARC_COLS " FROM archive a"
					    " WHERE a.list = ? AND a.thread_id = ?"
					    " ORDER BY a.id LIMIT ?");
		if (!s) {
			rc = STORE_ERR;
			break;
		}
		store_bind_str(s, 1, list);
		sqlite3_bind_int64(s, 2, ids[i]);
		sqlite3_bind_int64(s, 3, sql_limit(max_per_thread));
		rc = rows(st, s, "thread messages", &b, archived_row);
	}
	free(ids);
	if (rc != STORE_OK) {
		store_archived_free((struct store_archived *)b.v, b.len);
		return rc;
	}
	*out = (struct store_archived *)b.v;
	*n = b.len;
	return STORE_OK;
}

/* max()/min() over the (list, thread_id) index narrowed by id: one seek. */
static int neighbour(struct store *st, enum store_sql slot, const char *sql, const char *list,
		     int64_t thread_id, int64_t id, int64_t *out)
{
	sqlite3_stmt *s = store_sql(st, slot, sql);
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	sqlite3_bind_int64(s, 2, thread_id);
	sqlite3_bind_int64(s, 3, id);
	return store_query_int(st, s, out, "thread neighbour");
}

int store_thread_neighbours(struct store *st, const char *list, int64_t thread_id, int64_t id,
			    int64_t *prev, int64_t *next)
{
	*prev = 0;
	*next = 0;
	int rc = neighbour(st, SQL_WEB_PREV,
			   "SELECT max(id) FROM archive"
			   " WHERE list = ? AND thread_id = ? AND id < ?",
			   list, thread_id, id, prev);
	if (rc != STORE_OK)
		return rc;
	return neighbour(st, SQL_WEB_NEXT,
			 "SELECT min(id) FROM archive"
			 " WHERE list = ? AND thread_id = ? AND id > ?",
			 list, thread_id, id, next);
}

/* Hit ID with its snippet, made from the start of its body by
 * snippet_make() (not FTS5's snippet(), whose cost a body full of one word
 * makes quadratic). */
static int search_hit(struct store *st, const char *match, const char *list, int64_t id,
		      struct store_hit *h)
{
	sqlite3_stmt *s = store_sql(st, SQL_WEB_SEARCH_HIT,
				    "SELECT " ARC_COLS ", substr(a.body, 1, ?3) FROM archive a"
				    " WHERE a.id = ?1 AND a.list = ?2");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	store_bind_str(s, 2, list);
	sqlite3_bind_int(s, 3, SNIPPET_SCAN_MAX);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW) {
		store_archived_from_row(s, &h->a);
		const char *body = (const char *)sqlite3_column_text(s, ARC_NCOLS);
		int blen = sqlite3_column_bytes(s, ARC_NCOLS);
		h->snippet = snippet_make(body ? body : "", body ? (size_t)blen : 0, match);
	} else if (rc == SQLITE_DONE) {
		/* Gone between the two reads (never, today: nothing deletes). */
		ret = STORE_NOTFOUND;
	} else {
		ret = store_fail(st, rc, "search snippet");
	}
	sqlite3_reset(s);
	return ret;
}

/* A match and its score. */
struct scored {
	int64_t id;
	double score;
};

static void scored_row(sqlite3_stmt *s, void *elem)
{
	struct scored *x = elem;
	x->id = sqlite3_column_int64(s, 0);
	x->score = sqlite3_column_double(s, 1);
}

/* store_archive_search's order: best score (lowest bm25) first, then the
 * newest. */
static int by_score(const void *pa, const void *pb)
{
	const struct scored *a = pa, *b = pb;
	if (a->score != b->score)
		return a->score < b->score ? -1 : 1;
	return a->id > b->id ? -1 : a->id < b->id;
}

/* The newest STORE_SEARCH_COUNT_CAP matches of LIST with their scores, in
 * ranking order; their number is the total a pager shows. One read, the
 * full-text index outermost (CROSS JOIN: left to itself the planner walks
 * the list's archive rows and probes the index for each), in rowid order
 * so that a word found in every message stops at the cap instead of
 * scoring the whole archive. */
static int search_matches(struct store *st, const char *match, const char *list,
			  struct scored **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *s = store_sql(st, SQL_WEB_SEARCH_IDS,
				    "SELECT a.id, " ARC_SEARCH_SCORE " FROM archive_fts"
				    " CROSS JOIN archive a ON a.id = archive_fts.rowid"
				    " WHERE archive_fts MATCH ?1 AND a.list = ?2"
				    " ORDER BY archive_fts.rowid DESC LIMIT ?3");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_text(s, 1, match, -1, SQLITE_STATIC);
	store_bind_str(s, 2, list);
	sqlite3_bind_int64(s, 3, STORE_SEARCH_COUNT_CAP);
	struct rowbuf b = {.size = sizeof **out};
	int rc = rows(st, s, "search archive", &b, scored_row);
	sqlite3_clear_bindings(s); /* MATCH points at the caller's memory */
	if (rc != STORE_OK) {
		free(b.v);
		return rc;
	}
	*out = (struct scored *)b.v;
	*n = b.len;
	if (*n > 1)
		qsort(*out, *n, sizeof **out, by_score);
	return STORE_OK;
}

int store_archive_search_page(struct store *st, const char *list, const char *query,
			      long offset, long limit, struct store_hit **out, size_t *n,
			      long *total)
{
	*out = NULL;
	*n = 0;
	*total = 0;
	char *match = store_fts_query(query ? query : "");
	if (!match)
		return STORE_OK;
	struct scored *all = NULL;
	size_t n_all = 0;
	int rc = search_matches(st, match, list, &all, &n_all);
	*total = (long)n_all;
	size_t from = offset > 0 ? (size_t)offset : 0;
	if (from > n_all)
		from = n_all;
	size_t n_ids = n_all - from;
	if (limit > 0 && (size_t)limit < n_ids)
		n_ids = (size_t)limit;
	struct store_hit *h = rc == STORE_OK && n_ids ? xcalloc(n_ids, sizeof *h) : NULL;
	size_t len = 0;
	for (size_t i = 0; h && i < n_ids && rc == STORE_OK; i++) {
		rc = search_hit(st, match, list, all[from + i].id, &h[len]);
		if (rc == STORE_OK)
			len++;
		else if (rc == STORE_NOTFOUND)
			rc = STORE_OK;
	}
	free(all);
	free(match);
	if (rc != STORE_OK) {
		store_hits_free(h, len);
		*total = 0;
		return rc;
	}
	*out = h;
	*n = len;
	return STORE_OK;
}

int store_archive_get_in(struct store *st, const char *list, int64_t id,
			 struct store_archived *out, char **body)
{
	memset(out, 0, sizeof *out);
	*body = NULL;
	sqlite3_stmt *s = store_sql(st, SQL_WEB_GET_IN,
				    "SELECT " ARC_COLS ", a.body FROM archive a"
				    " WHERE a.id = ? AND a.list = ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	store_bind_str(s, 2, list);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW) {
		store_archived_from_row(s, out);
		*body = store_col_dup(s, ARC_NCOLS);
	} else if (rc == SQLITE_DONE) {
		ret = store_failf(st, STORE_NOTFOUND, "no archived message %lld in %s",
				  (long long)id, list ? list : "");
	} else {
		ret = store_fail(st, rc, "get archived message");
	}
	sqlite3_reset(s);
	return ret;
}

int store_archive_stats(struct store *st, const char *list, long *count, int64_t *last_id)
{
	*count = 0;
	*last_id = 0;
	/* The count is the sum of the month rows (a few per year), not a
	 * count(*) of the archive; max(id) is one seek on archive(list, id). */
	sqlite3_stmt *s = store_sql(st, SQL_WEB_STATS,
				    "SELECT (SELECT coalesce(sum(count), 0) FROM archive_months"
				    " WHERE list = ?1),"
				    " (SELECT coalesce(max(id), 0) FROM archive WHERE list = ?1)");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW) {
		*count = (long)sqlite3_column_int64(s, 0);
		*last_id = sqlite3_column_int64(s, 1);
	} else {
		ret = store_fail(st, rc, "archive stats");
	}
	sqlite3_reset(s);
	return ret;
}

int store_member_by_token(struct store *st, const char *list, const char *token,
			  struct store_member *out)
{
	memset(out, 0, sizeof *out);
	if (!token || !*token)
		return store_failf(st, STORE_NOTFOUND, "no unsubscribe token");
	/* The address by the token (index members_token), then the member by
	 * the address, so a member is read one way only (store_member_get). */
	sqlite3_stmt *s = store_sql(st, SQL_WEB_MEMBER_TOKEN,
				    "SELECT address FROM members"
				    " WHERE unsub_token = ? AND list = ? LIMIT 1");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_text(s, 1, token, -1, SQLITE_STATIC);
	store_bind_str(s, 2, list);
	int rc = sqlite3_step(s);
	char *address = NULL;
	int ret = STORE_OK;
	if (rc == SQLITE_ROW)
		address = store_col_dup(s, 0);
	else if (rc == SQLITE_DONE)
		ret = store_failf(st, STORE_NOTFOUND, "no member of %s has that unsubscribe token",
				  list ? list : "");
	else
		ret = store_fail(st, rc, "member by token");
	sqlite3_reset(s);
	if (ret != STORE_OK)
		return ret;
	ret = store_member_get(st, list, address, out);
	free(address);
	return ret;
}
