/* store: held posts for moderation (reading the queue, the stored message,
 * and recording a decision). Holding a post is store_held_add in
 * store_queue.c, next to the rest of what a processed post writes. */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_int.h"
#include "util.h"

#define HELD_COLS                                                                          \
	"h.id, h.list, h.raw_id, h.reason, h.from_addr, h.subject, h.received, h.status,"  \
	" h.decided, h.decided_by, h.decision_reason, m.mail_from, m.size,"                 \
	" m.state = 'poison'"

static const char *const final_states[] = {"approved", "rejected", "discarded", "withdrawn",
					   "expired", NULL};

static void held_from_row(sqlite3_stmt *s, struct store_held *h)
{
	h->id = sqlite3_column_int64(s, 0);
	h->list = store_col_dup(s, 1);
	h->raw_id = sqlite3_column_int64(s, 2);
	h->reason = store_col_dup(s, 3);
	h->from_addr = store_col_dup(s, 4);
	h->subject = store_col_dup(s, 5);
	h->received = sqlite3_column_int64(s, 6);
	h->status = store_col_dup(s, 7);
	h->decided = sqlite3_column_int64(s, 8);
	h->decided_by = store_col_dup(s, 9);
	h->decision_reason = store_col_dup(s, 10);
	h->mail_from = store_col_dup(s, 11);
	h->size = sqlite3_column_int64(s, 12);
	h->unparsed = sqlite3_column_int(s, 13) != 0;
}

void store_held_clear(struct store_held *h)
{
	if (!h)
		return;
	free(h->list);
	free(h->reason);
	free(h->from_addr);
	free(h->subject);
	free(h->status);
	free(h->decided_by);
	free(h->decision_reason);
	free(h->mail_from);
	memset(h, 0, sizeof *h);
}

void store_held_free(struct store_held *h, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < n; i++)
		store_held_clear(&h[i]);
	free(h);
}

int store_held_list(struct store *st, const char *list, int all, struct store_held **out,
		    size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *s = store_sql(st, SQL_HELD_LIST,
				    "SELECT " HELD_COLS " FROM held h"
				    " JOIN messages m ON m.id = h.raw_id"
				    " WHERE (?1 IS NULL OR h.list = ?1)"
				    " AND (?2 OR h.status = 'held') ORDER BY h.received, h.id");
	if (!s)
		return STORE_ERR;
	store_bind_str_or_null(s, 1, list);
	sqlite3_bind_int(s, 2, all ? 1 : 0);
	struct store_held *v = NULL;
	size_t len = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		held_from_row(s, &v[len++]);
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "list held posts");
	sqlite3_reset(s);
	if (ret != STORE_OK) {
		store_held_free(v, len);
		return ret;
	}
	*out = v;
	*n = len;
	return STORE_OK;
}

int store_held_get(struct store *st, int64_t id, struct store_held *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = store_sql(st, SQL_HELD_GET,
				    "SELECT " HELD_COLS " FROM held h"
				    " JOIN messages m ON m.id = h.raw_id WHERE h.id = ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW)
		held_from_row(s, out);
	else if (rc == SQLITE_DONE)
		ret = store_failf(st, STORE_NOTFOUND, "no held post %lld", (long long)id);
	else
		ret = store_fail(st, rc, "read held post");
	sqlite3_reset(s);
	return ret;
}

int store_held_raw(struct store *st, int64_t id, char **raw, size_t *len)
{
	*raw = NULL;
	*len = 0;
	sqlite3_stmt *s = store_sql(st, SQL_HELD_RAW,
				    "SELECT m.raw FROM held h JOIN messages m ON m.id = h.raw_id"
				    " WHERE h.id = ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW) {
		const void *b = sqlite3_column_blob(s, 0);
		size_t n = (size_t)sqlite3_column_bytes(s, 0);
		*raw = xmalloc(n + 1);
		if (n)
			memcpy(*raw, b, n);
		(*raw)[n] = '\0';
		*len = n;
	} else if (rc == SQLITE_DONE) {
		ret = store_failf(st, STORE_NOTFOUND, "no held post %lld", (long long)id);
	} else {
		ret = store_fail(st, rc, "read held message");
	}
	sqlite3_reset(s);
	return ret;
}

int store_held_decide(struct store *st, int64_t id, const char *status, const char *by,
		      const char *reason, int64_t now)
{
	int known = 0;
	for (size_t i = 0; status && final_states[i]; i++)
		if (!strcmp(status, final_states[i]))
			known = 1;
	if (!known)
		return store_failf(st, STORE_INVAL, "bad decision '%s' for a held post",
				   status ? status : "");
	sqlite3_stmt *s = store_sql(st, SQL_HELD_DECIDE,
				    "UPDATE held SET status = ?, decided = ?, decided_by = ?,"
				    " decision_reason = ? WHERE id = ? AND status = 'held'");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, status);
	sqlite3_bind_int64(s, 2, now);
	store_bind_str(s, 3, by);
	store_bind_str(s, 4, reason);
	sqlite3_bind_int64(s, 5, id);
	int rc = store_exec(st, s, "decide held post");
	if (rc != STORE_OK)
		return rc;
	if (sqlite3_changes(st->db) == 0)
		return store_failf(st, STORE_NOTFOUND, "post %lld is not held", (long long)id);
	return STORE_OK;
}

int store_held_expired(struct store *st, const char *list, int64_t before, size_t max,
		       int64_t **ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	sqlite3_stmt *s = store_sql(st, SQL_HELD_EXPIRED,
				    "SELECT id FROM held WHERE status = 'held' AND list = ?"
				    " AND received < ? ORDER BY received, id LIMIT ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	sqlite3_bind_int64(s, 2, before);
	sqlite3_bind_int64(s, 3, max > 0 ? (sqlite3_int64)max : -1);
	int64_t *v = NULL;
	size_t len = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		v[len++] = sqlite3_column_int64(s, 0);
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "find expired held posts");
	sqlite3_reset(s);
	if (ret != STORE_OK) {
		free(v);
		return ret;
	}
	*ids = v;
	*n = len;
	return STORE_OK;
}

/* ---- moderation by mail ---- */

void store_held_todo_free(struct store_held_todo *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++)
		free(t[i].list);
	free(t);
}

int store_held_todo(struct store *st, const char *list, size_t max,
		    struct store_held_todo **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	/* The WHERE repeats held_unannounced's condition word for word: that
	 * is what lets SQLite answer from the partial index alone. */
	sqlite3_stmt *s = store_sql(st, SQL_HELD_UNANNOUNCED,
				    "SELECT id, list, received, notified = 0, poster_told = 0"
				    " FROM held INDEXED BY held_unannounced"
				    " WHERE list = ? AND status = 'held'"
				    " AND (notified = 0 OR poster_told = 0)"
				    " ORDER BY id LIMIT ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	sqlite3_bind_int64(s, 2, max > 0 ? (sqlite3_int64)max : -1);
	struct store_held_todo *v = NULL;
	size_t len = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_held_todo *t = &v[len++];
		t->id = sqlite3_column_int64(s, 0);
		t->list = store_col_dup(s, 1);
		t->received = sqlite3_column_int64(s, 2);
		t->notify = sqlite3_column_int(s, 3) != 0;
		t->tell_poster = sqlite3_column_int(s, 4) != 0;
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "held posts to announce");
	sqlite3_reset(s);
	if (ret != STORE_OK) {
		store_held_todo_free(v, len);
		return ret;
	}
	*out = v;
	*n = len;
	return STORE_OK;
}

int store_held_last_notice(struct store *st, const char *list, int64_t *when)
{
	return store_list_int(st, SQL_HELD_LAST_NOTICE,
			      "SELECT max(notified) FROM held WHERE list = ?", list, when,
			      "latest notice");
}

static int set_col(struct store *st, enum store_sql slot, const char *sql, int64_t id,
		   int64_t now, const char *what)
{
	sqlite3_stmt *s = store_sql(st, slot, sql);
	if (!s)
		return STORE_ERR;
	/* 0 means "not yet": a clock at the epoch must still mark. */
	sqlite3_bind_int64(s, 1, now > 0 ? now : 1);
	sqlite3_bind_int64(s, 2, id);
	return store_exec(st, s, what);
}

int store_held_set_notified(struct store *st, int64_t id, int64_t now)
{
	return set_col(st, SQL_HELD_NOTIFIED, "UPDATE held SET notified = ? WHERE id = ?", id, now,
		       "mark held post announced");
}

int store_held_set_poster_told(struct store *st, int64_t id, int64_t now)
{
	return set_col(st, SQL_HELD_POSTER_TOLD, "UPDATE held SET poster_told = ? WHERE id = ?",
		       id, now, "mark held post's poster told");
}

int store_held_link_mail(struct store *st, int64_t held_id, int64_t msg_id)
{
	sqlite3_stmt *s = store_sql(st, SQL_HELD_LINK_MAIL,
				    "INSERT OR IGNORE INTO held_mails(held_id, msg_id)"
				    " VALUES(?, ?)");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, held_id);
	sqlite3_bind_int64(s, 2, msg_id);
	return store_exec(st, s, "link mail to held post");
}

int store_held_cancel_mails(struct store *st, int64_t held_id, long *n)
{
	*n = 0;
	/* A notice listing several posts still matters while one of them
	 * waits; only the rows not yet handed to the relay can be stopped. */
	sqlite3_stmt *s = store_sql(
		st, SQL_HELD_CANCEL_MAILS,
		"UPDATE outbound SET status = 'cancelled', updated = ?2,"
		" last_error = 'not sent: the held post was decided'"
		" WHERE status IN ('queued', 'deferred') AND msg_id IN"
		" (SELECT hm.msg_id FROM held_mails hm WHERE hm.held_id = ?1 AND NOT EXISTS"
		"  (SELECT 1 FROM held_mails o JOIN held h ON h.id = o.held_id"
		"   WHERE o.msg_id = hm.msg_id AND h.status = 'held'))");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, held_id);
	sqlite3_bind_int64(s, 2, now_epoch());
	int rc = store_exec(st, s, "cancel mails about a decided post");
	if (rc == STORE_OK)
		*n = (long)sqlite3_changes(st->db);
	return rc;
}

int store_moderation_rcpts_done(struct store *st, int64_t message_id)
{
	sqlite3_stmt *s = store_sql(st, SQL_RCPT_MOD_DONE,
				    "UPDATE envelope_rcpts SET state = 'done' WHERE message_id = ?"
				    " AND kind IN ('approve', 'reject', 'withdraw')");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, message_id);
	return store_exec(st, s, "mark moderation recipients processed");
}
