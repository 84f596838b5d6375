/* store: archive queries (list, search, show, export). */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_int.h"
#include "util.h"

/* Words of a query searched for, at most: each one costs the ranking and
 * the index a pass, and eight say what anyone looks for. */
#define SEARCH_MAX_TERMS 8

void store_archived_clear(struct store_archived *a)
{
	if (!a)
		return;
	free(a->list);
	free(a->message_id);
	free(a->from_addr);
	free(a->from_name);
	free(a->subject);
	free(a->in_reply_to);
	free(a->mail_from);
	memset(a, 0, sizeof *a);
}

void store_archived_free(struct store_archived *a, size_t n)
{
	if (!a)
		return;
	for (size_t i = 0; i < n; i++)
		store_archived_clear(&a[i]);
	free(a);
}

void store_archived_from_row(sqlite3_stmt *s, struct store_archived *a)
{
	memset(a, 0, sizeof *a);
	a->id = sqlite3_column_int64(s, 0);
	a->list = store_col_dup(s, 1);
	a->message_id = store_col_dup(s, 2);
	a->from_addr = store_col_dup(s, 3);
	a->from_name = store_col_dup(s, 4);
	a->subject = store_col_dup(s, 5);
	a->date = sqlite3_column_int64(s, 6);
	a->received = sqlite3_column_int64(s, 7);
	a->thread_id = sqlite3_column_int64(s, 8);
	a->in_reply_to = store_col_dup(s, 9);
	a->unparsed = sqlite3_column_int(s, 10) != 0;
}

/* Every row of S (already bound) as an array. */
static int collect(struct store *st, sqlite3_stmt *s, const char *what,
		   struct store_archived **out, size_t *n)
{
	struct store_archived *v = NULL;
	size_t len = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		store_archived_from_row(s, &v[len++]);
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, what);
	sqlite3_reset(s);
	if (ret != STORE_OK) {
		store_archived_free(v, len);
		return ret;
	}
	*out = v;
	*n = len;
	return STORE_OK;
}

int store_archive_list(struct store *st, const char *list, long limit,
		       struct store_archived **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *s = store_sql(st, SQL_ARC_LIST,
				    "SELECT " ARC_COLS " FROM archive a WHERE a.list = ?"
				    " ORDER BY a.id DESC LIMIT ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	sqlite3_bind_int64(s, 2, limit > 0 ? limit : -1);
	return collect(st, s, "list archive", out, n);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Is WORD[0..n) among the words of Q before it already (ASCII case
 * folded)? A repeated word adds nothing to a search but its cost. */
static int seen_before(const char *q, const char *word, size_t n)
{
	for (const char *p = q; p < word;) {
		while (p < word && is_space(*p))
			p++;
		const char *s = p;
		while (p < word && !is_space(*p))
			p++;
		if ((size_t)(p - s) == n && p <= word && !ascii_strncasecmp(s, word, n))
			return 1;
	}
	return 0;
}

/* Every whitespace-separated word becomes a quoted string (a phrase of
 * whatever tokens it holds, '"' doubled), and the phrases are ANDed. So
 * operators, '*', '(', column filters and NEAR are searched as plain words.
 * Repeated words count once; at most SEARCH_MAX_TERMS are searched. */
char *store_fts_query(const char *q)
{
	struct sbuf b = {0};
	int terms = 0;
	const char *p = q;
	while (*p && terms < SEARCH_MAX_TERMS) {
		while (is_space(*p))
			p++;
		if (!*p)
			break;
		const char *w = p;
		while (*p && !is_space(*p))
			p++;
		if (seen_before(q, w, (size_t)(p - w)))
			continue;
		if (terms++)
			sbuf_addc(&b, ' ');
		sbuf_addc(&b, '"');
		for (const char *c = w; c < p; c++) {
			if (*c == '"')
				sbuf_addc(&b, '"');
			sbuf_addc(&b, *c);
		}
		sbuf_addc(&b, '"');
	}
	if (!terms) {
		sbuf_free(&b);
		return NULL;
	}
	return sbuf_detach(&b);
}

int store_archive_search(struct store *st, const char *list, const char *query, long limit,
			 struct store_archived **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	char *match = store_fts_query(query ? query : "");
	if (!match)
		return STORE_OK;
	sqlite3_stmt *s = store_sql(st, SQL_ARC_SEARCH,
				    "SELECT " ARC_COLS " FROM archive_fts"
				    " JOIN archive a ON a.id = archive_fts.rowid"
				    " WHERE archive_fts MATCH ? AND a.list = ?"
				    " ORDER BY " ARC_SEARCH_ORDER " LIMIT ?");
	if (!s) {
		free(match);
		return STORE_ERR;
	}
	sqlite3_bind_text(s, 1, match, -1, SQLITE_STATIC);
	store_bind_str(s, 2, list);
	sqlite3_bind_int64(s, 3, limit > 0 ? limit : -1);
	int rc = collect(st, s, "search archive", out, n);
	sqlite3_clear_bindings(s); /* MATCH pointed at memory freed now */
	free(match);
	return rc;
}

int store_archive_get(struct store *st, int64_t id, struct store_archived *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s =
		store_sql(st, SQL_ARC_GET, "SELECT " ARC_COLS " FROM archive a WHERE a.id = ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW)
		store_archived_from_row(s, out);
	else if (rc == SQLITE_DONE)
		ret = store_failf(st, STORE_NOTFOUND, "no archived message %lld", (long long)id);
	else
		ret = store_fail(st, rc, "get archived message");
	sqlite3_reset(s);
	return ret;
}

/* A NUL-terminated copy of blob column I (the length is exact regardless). */
static char *col_blob_dup(sqlite3_stmt *s, int i, size_t *len)
{
	const void *p = sqlite3_column_blob(s, i);
	size_t n = (size_t)sqlite3_column_bytes(s, i);
	char *r = xmalloc(n + 1);
	if (n)
		memcpy(r, p, n);
	r[n] = '\0';
	*len = n;
	return r;
}

int store_archive_raw(struct store *st, int64_t id, char **raw, size_t *len, char **body)
{
	*raw = NULL;
	*len = 0;
	if (body)
		*body = NULL;
	sqlite3_stmt *s = store_sql(st, SQL_ARC_RAW,
				    "SELECT m.raw, a.body FROM archive a"
				    " JOIN messages m ON m.id = a.raw_id WHERE a.id = ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW) {
		*raw = col_blob_dup(s, 0, len);
		if (body)
			*body = store_col_dup(s, 1);
	} else if (rc == SQLITE_DONE) {
		ret = store_failf(st, STORE_NOTFOUND, "no archived message %lld", (long long)id);
	} else {
		ret = store_fail(st, rc, "read archived message");
	}
	sqlite3_reset(s);
	return ret;
}

int store_archive_each(struct store *st, const char *list,
		       int (*fn)(void *arg, const struct store_archived *a, const char *raw,
				 size_t len),
		       void *arg)
{
	return store_archive_batch(st, list, 0, 0, fn, arg, NULL);
}

int store_archive_batch(struct store *st, const char *list, int64_t after, size_t max,
			int (*fn)(void *arg, const struct store_archived *a, const char *raw,
				  size_t len),
			void *arg, int64_t *last)
{
	/* A private statement, not a cached one: FN may call back into the
	 * store (even this function) while this one is still stepping. */
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db,
				    "SELECT " ARC_COLS ", m.raw, m.mail_from FROM archive a"
				    " JOIN messages m ON m.id = a.raw_id"
				    " WHERE a.list = ? AND a.id > ? ORDER BY a.id LIMIT ?",
				    -1, &s, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(s);
		return store_fail(st, rc, "prepare archive export");
	}
	store_bind_str(s, 1, list);
	sqlite3_bind_int64(s, 2, after);
	sqlite3_bind_int64(s, 3, max == 0 || max > INT64_MAX ? -1 : (sqlite3_int64)max);
	int ret = STORE_OK;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_archived a = {0};
		store_archived_from_row(s, &a);
		size_t len;
		char *raw = col_blob_dup(s, ARC_NCOLS, &len);
		a.mail_from = store_col_dup(s, ARC_NCOLS + 1);
		if (last)
			*last = a.id;
		int stop = fn(arg, &a, raw, len);
		free(raw);
		store_archived_clear(&a);
		if (stop)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = store_fail(st, rc, "archive export");
	sqlite3_finalize(s);
	return ret;
}

int store_archive_count(struct store *st, const char *list, long *out)
{
	int64_t v;
	int rc = store_list_int(st, SQL_ARC_COUNT, "SELECT count(*) FROM archive WHERE list = ?",
				list, &v, "count archive");
	*out = (long)v;
	return rc;
}

int store_archive_reindex(struct store *st)
{
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	rc = sqlite3_exec(st->db, "INSERT INTO archive_fts(archive_fts) VALUES('rebuild')", NULL,
			  NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = store_fail(st, rc, "rebuild full-text index");
		store_tx_rollback(st);
		return rc;
	}
	return store_tx_commit(st);
}
