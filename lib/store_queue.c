/* store: the outbound queue and held posts. */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_int.h"
#include "util.h"

void store_relax_durability(struct store *st)
{
	sqlite3_stmt *s = store_sql(st, SQL_SYNC_NORMAL_ALWAYS, "PRAGMA synchronous=NORMAL");
	if (s && store_exec(st, s, "synchronous") == STORE_OK)
		st->relaxed = 1;
}

void store_strings_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int store_outbound_add(struct store *st, const struct store_outbound *o, int64_t *msg_id)
{
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	sqlite3_stmt *s = store_sql(st, SQL_OUT_MSG_INSERT,
				    "INSERT INTO outbound_msgs(list, kind, raw_id, mail_from, verp,"
				    " body, created) VALUES (?, ?, ?, ?, ?, ?, ?)");
	if (!s) {
		rc = STORE_ERR;
		goto fail;
	}
	store_bind_str(s, 1, o->list);
	store_bind_str(s, 2, o->kind);
	if (o->raw_id)
		sqlite3_bind_int64(s, 3, o->raw_id);
	else
		sqlite3_bind_null(s, 3);
	store_bind_str(s, 4, o->mail_from);
	sqlite3_bind_int(s, 5, o->verp ? 1 : 0);
	sqlite3_bind_blob64(s, 6, o->body ? o->body : "", o->len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, o->now);
	rc = store_exec(st, s, "queue message");
	if (rc != STORE_OK)
		goto fail;
	int64_t id = sqlite3_last_insert_rowid(st->db);
	for (size_t i = 0; i < o->n_rcpts; i++) {
		s = store_sql(st, SQL_OUT_INSERT,
			      "INSERT INTO outbound(msg_id, recipient, token, next_attempt, created,"
			      " updated) VALUES (?, ?, ?, ?, ?, ?)");
		if (!s) {
			rc = STORE_ERR;
			goto fail;
		}
		sqlite3_bind_int64(s, 1, id);
		store_bind_str(s, 2, o->rcpts[i]);
		store_bind_str_or_null(s, 3, o->tokens ? o->tokens[i] : NULL);
		sqlite3_bind_int64(s, 4, o->now);
		sqlite3_bind_int64(s, 5, o->now);
		sqlite3_bind_int64(s, 6, o->now);
		rc = store_exec(st, s, "queue recipient");
		if (rc != STORE_OK)
			goto fail;
	}
	rc = store_tx_commit(st);
	if (rc == STORE_OK && msg_id)
		*msg_id = id;
	return rc;
fail:
	store_tx_rollback(st);
	return rc;
}

int store_members_for_delivery(struct store *st, const char *list, char ***addrs,
			       char ***tokens, size_t *n)
{
	*addrs = NULL;
	*tokens = NULL;
	*n = 0;
	sqlite3_stmt *s = store_sql(st, SQL_OUT_MEMBERS,
				    "SELECT address, unsub_token FROM members WHERE list = ?"
				    " AND status = 'active' AND delivery = 'each' ORDER BY address");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			*addrs = xrealloc(*addrs, cap * sizeof **addrs);
			*tokens = xrealloc(*tokens, cap * sizeof **tokens);
		}
		(*addrs)[*n] = store_col_dup(s, 0);
		(*tokens)[*n] = sqlite3_column_type(s, 1) == SQLITE_NULL ? NULL : store_col_dup(s, 1);
		(*n)++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		store_strings_free(*addrs, *n);
		store_strings_free(*tokens, *n);
		*addrs = *tokens = NULL;
		*n = 0;
		return store_fail(st, rc, "members for delivery");
	}
	return STORE_OK;
}

void store_due_free(struct store_due *d, size_t n)
{
	if (!d)
		return;
	for (size_t i = 0; i < n; i++) {
		free(d[i].recipient);
		free(d[i].token);
	}
	free(d);
}

int store_outbound_claim(struct store *st, int64_t now, size_t max, struct store_due **out,
			 size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	sqlite3_stmt *s = store_sql(st, SQL_OUT_CLAIM_SELECT,
				    "SELECT id, msg_id, recipient, token, attempts, created"
				    " FROM outbound WHERE status IN ('queued', 'deferred')"
				    " AND next_attempt <= ? ORDER BY next_attempt, msg_id, id LIMIT ?");
	if (!s) {
		rc = STORE_ERR;
		goto fail;
	}
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	struct store_due *d = NULL;
	size_t n = 0, cap = 0;
	int step;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			d = xrealloc(d, cap * sizeof *d);
		}
		struct store_due *e = &d[n++];
		e->id = sqlite3_column_int64(s, 0);
		e->msg_id = sqlite3_column_int64(s, 1);
		e->recipient = store_col_dup(s, 2);
		e->token = sqlite3_column_type(s, 3) == SQLITE_NULL ? NULL : store_col_dup(s, 3);
		e->attempts = sqlite3_column_int(s, 4);
		e->created = sqlite3_column_int64(s, 5);
	}
	sqlite3_reset(s);
	if (step != SQLITE_DONE) {
		rc = store_fail(st, step, "claim due recipients");
		store_due_free(d, n);
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		s = store_sql(st, SQL_OUT_CLAIM_MARK,
			      "UPDATE outbound SET status = 'sending', updated = ? WHERE id = ?");
		if (!s) {
			rc = STORE_ERR;
			store_due_free(d, n);
			goto fail;
		}
		sqlite3_bind_int64(s, 1, now);
		sqlite3_bind_int64(s, 2, d[i].id);
		rc = store_exec(st, s, "mark sending");
		if (rc != STORE_OK) {
			store_due_free(d, n);
			goto fail;
		}
	}
	rc = store_tx_commit(st);
	if (rc != STORE_OK) {
		store_due_free(d, n);
		return rc;
	}
	*out = d;
	*n_out = n;
	return STORE_OK;
fail:
	store_tx_rollback(st);
	return rc;
}

void store_outbound_msg_clear(struct store_outbound_msg *m)
{
	if (!m)
		return;
	free(m->list);
	free(m->kind);
	free(m->mail_from);
	free(m->body);
	memset(m, 0, sizeof *m);
}

int store_outbound_msg_get(struct store *st, int64_t msg_id, struct store_outbound_msg *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = store_sql(st, SQL_OUT_MSG_GET,
				    "SELECT list, kind, mail_from, verp, body FROM outbound_msgs"
				    " WHERE id = ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, msg_id);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->id = msg_id;
		out->list = store_col_dup(s, 0);
		out->kind = store_col_dup(s, 1);
		out->mail_from = store_col_dup(s, 2);
		out->verp = sqlite3_column_int(s, 3);
		out->len = (size_t)sqlite3_column_bytes(s, 4);
		out->body = xmalloc(out->len + 1);
		if (out->len)
			memcpy(out->body, sqlite3_column_blob(s, 4), out->len);
		out->body[out->len] = '\0';
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return STORE_NOTFOUND;
	return store_fail(st, rc, "queued message");
}

int store_outbound_finish(struct store *st, const struct store_attempt *a, size_t n,
			  int64_t now)
{
	if (n == 0)
		return STORE_OK;
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *s = store_sql(st, SQL_OUT_FINISH,
					    "UPDATE outbound SET status = ?, attempts = attempts + 1,"
					    " next_attempt = ?, last_error = ?, updated = ?"
					    " WHERE id = ?");
		if (!s) {
			rc = STORE_ERR;
			break;
		}
		store_bind_str(s, 1, a[i].status);
		sqlite3_bind_int64(s, 2, a[i].next_attempt);
		store_bind_str(s, 3, a[i].last_error);
		sqlite3_bind_int64(s, 4, now);
		sqlite3_bind_int64(s, 5, a[i].id);
		rc = store_exec(st, s, "record delivery attempt");
		if (rc != STORE_OK)
			break;
	}
	if (rc == STORE_OK)
		return store_tx_commit(st);
	store_tx_rollback(st);
	return rc;
}

int store_outbound_recover(struct store *st, long *n)
{
	*n = 0;
	sqlite3_stmt *s = store_sql(st, SQL_OUT_RECOVER,
				    "UPDATE outbound SET status = 'queued' WHERE status = 'sending'");
	if (!s)
		return STORE_ERR;
	int rc = store_exec(st, s, "requeue interrupted deliveries");
	if (rc == STORE_OK)
		*n = (long)sqlite3_changes(st->db);
	return rc;
}

int store_outbound_next_due(struct store *st, int64_t *when)
{
	return store_list_int(st, SQL_OUT_NEXT_DUE,
			      "SELECT min(next_attempt) FROM outbound"
			      " WHERE status IN ('queued', 'deferred')",
			      NULL, when, "next due delivery");
}

void store_queue_entries_free(struct store_queue_entry *e, size_t n)
{
	if (!e)
		return;
	for (size_t i = 0; i < n; i++) {
		free(e[i].list);
		free(e[i].recipient);
		free(e[i].last_error);
		free(e[i].status);
	}
	free(e);
}

int store_queue_list(struct store *st, const char *list, int all, long limit,
		     struct store_queue_entry **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	/* A private statement: its shape depends on the filters. */
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(
		st->db,
		"SELECT o.id, m.list, o.recipient, o.attempts, o.next_attempt, o.last_error,"
		" o.status FROM outbound o JOIN outbound_msgs m ON m.id = o.msg_id"
		" WHERE (?1 IS NULL OR m.list = ?1)"
		" AND (?2 OR o.status NOT IN ('sent', 'cancelled'))"
		" ORDER BY o.id LIMIT ?3",
		-1, &s, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(s);
		return store_fail(st, rc, "prepare queue list");
	}
	store_bind_str_or_null(s, 1, list);
	sqlite3_bind_int(s, 2, all ? 1 : 0);
	sqlite3_bind_int64(s, 3, limit > 0 ? limit : -1);
	struct store_queue_entry *e = NULL;
	size_t n = 0, cap = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			e = xrealloc(e, cap * sizeof *e);
		}
		struct store_queue_entry *q = &e[n++];
		q->id = sqlite3_column_int64(s, 0);
		q->list = store_col_dup(s, 1);
		q->recipient = store_col_dup(s, 2);
		q->attempts = sqlite3_column_int(s, 3);
		q->next_attempt = sqlite3_column_int64(s, 4);
		q->last_error = store_col_dup(s, 5);
		q->status = store_col_dup(s, 6);
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "queue list");
	sqlite3_finalize(s);
	if (ret != STORE_OK) {
		store_queue_entries_free(e, n);
		return ret;
	}
	*out = e;
	*n_out = n;
	return STORE_OK;
}

int store_queue_retry(struct store *st, int64_t id, int64_t now, long *count)
{
	*count = 0;
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	sqlite3_stmt *s;
	if (id) {
		s = store_sql(st, SQL_OUT_RETRY_EXISTS, "SELECT 1 FROM outbound WHERE id = ?");
		if (!s) {
			rc = STORE_ERR;
			goto fail;
		}
		sqlite3_bind_int64(s, 1, id);
		int step = sqlite3_step(s);
		sqlite3_reset(s);
		if (step == SQLITE_DONE) {
			rc = store_failf(st, STORE_NOTFOUND, "no queue entry %lld", (long long)id);
			goto fail;
		}
		if (step != SQLITE_ROW) {
			rc = store_fail(st, step, "queue entry");
			goto fail;
		}
		s = store_sql(st, SQL_OUT_RETRY_ONE,
			      "UPDATE outbound SET status = 'queued', next_attempt = ?, updated = ?"
			      " WHERE id = ? AND status IN ('deferred', 'failed', 'queued')");
		if (!s) {
			rc = STORE_ERR;
			goto fail;
		}
		sqlite3_bind_int64(s, 1, now);
		sqlite3_bind_int64(s, 2, now);
		sqlite3_bind_int64(s, 3, id);
	} else {
		s = store_sql(st, SQL_OUT_RETRY_ALL,
			      "UPDATE outbound SET status = 'queued', next_attempt = ?, updated = ?"
			      " WHERE status IN ('deferred', 'failed', 'queued')");
		if (!s) {
			rc = STORE_ERR;
			goto fail;
		}
		sqlite3_bind_int64(s, 1, now);
		sqlite3_bind_int64(s, 2, now);
	}
	rc = store_exec(st, s, "retry queue entries");
	if (rc != STORE_OK)
		goto fail;
	*count = (long)sqlite3_changes(st->db);
	return store_tx_commit(st);
fail:
	store_tx_rollback(st);
	return rc;
}

int store_queue_counts(struct store *st, const char *list, long *queued, long *deferred,
		       long *failed)
{
	if (queued)
		*queued = 0;
	if (deferred)
		*deferred = 0;
	if (failed)
		*failed = 0;
	sqlite3_stmt *s = store_sql(st, SQL_OUT_COUNTS,
				    "SELECT o.status, count(*) FROM outbound o"
				    " JOIN outbound_msgs m ON m.id = o.msg_id"
				    " WHERE m.list = ? AND o.status NOT IN ('sent', 'cancelled')"
				    " GROUP BY o.status");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *status = (const char *)sqlite3_column_text(s, 0);
		long c = (long)sqlite3_column_int64(s, 1);
		if (!status)
			continue;
		if ((!strcmp(status, "queued") || !strcmp(status, "sending")) && queued)
			*queued += c;
		else if (!strcmp(status, "deferred") && deferred)
			*deferred = c;
		else if (!strcmp(status, "failed") && failed)
			*failed = c;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "queue counts");
}

int store_held_add(struct store *st, const char *list, int64_t raw_id, const char *reason,
		   const char *from_addr, const char *subject, int64_t received)
{
	sqlite3_stmt *s = store_sql(st, SQL_HELD_INSERT,
				    "INSERT OR IGNORE INTO held(list, raw_id, reason, from_addr,"
				    " subject, received) VALUES (?, ?, ?, ?, ?, ?)");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	sqlite3_bind_int64(s, 2, raw_id);
	store_bind_str(s, 3, reason);
	store_bind_str(s, 4, from_addr);
	store_bind_str(s, 5, subject);
	sqlite3_bind_int64(s, 6, received);
	return store_exec(st, s, "hold post");
}

int store_held_count(struct store *st, const char *list, long *out)
{
	int64_t v;
	int rc = store_list_int(st, SQL_HELD_COUNT,
				"SELECT count(*) FROM held WHERE list = ? AND status = 'held'", list,
				&v, "held count");
	*out = (long)v;
	return rc;
}
