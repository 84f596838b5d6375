/* store: subscriptions — confirmation tokens (kept hashed), the rate-limit
 * counters of the abuse guards, and the 'done' mark of the recipients the
 * subscription code handles. */
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_int.h"
#include "util.h"

void store_token_clear(struct store_token *t)
{
	if (!t)
		return;
	free(t->list);
	free(t->address);
	free(t->action);
	free(t->name);
	free(t->stakeholder);
	memset(t, 0, sizeof *t);
}

int store_token_add(struct store *st, const char *hash, const struct store_token *t)
{
	if (!hash || !*hash || !t->list || !t->address || !t->action)
		return store_failf(st, STORE_INVAL,
				   "a token needs a hash, a list, an address and an action");
	sqlite3_stmt *s = store_sql(st, SQL_TOKEN_INSERT,
				    "INSERT INTO sub_tokens(hash, list, address, action, name,"
				    " stakeholder, created, expires, held_id)"
				    " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, hash);
	store_bind_str(s, 2, t->list);
	store_bind_str(s, 3, t->address);
	store_bind_str(s, 4, t->action);
	store_bind_str(s, 5, t->name);
	store_bind_str(s, 6, t->stakeholder);
	sqlite3_bind_int64(s, 7, t->created);
	sqlite3_bind_int64(s, 8, t->expires);
	sqlite3_bind_int64(s, 9, t->held_id);
	return store_exec(st, s, "store token");
}

int store_token_get(struct store *st, const char *hash, struct store_token *out)
{
	memset(out, 0, sizeof *out);
	/* The hash is compared by SQL: a timing difference could at most tell
	 * a forger something about a digest, never about a token. */
	sqlite3_stmt *s = store_sql(st, SQL_TOKEN_GET,
				    "SELECT list, address, action, name, stakeholder, created,"
				    " expires, used, held_id FROM sub_tokens WHERE hash = ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, hash);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->list = store_col_dup(s, 0);
		out->address = store_col_dup(s, 1);
		out->action = store_col_dup(s, 2);
		out->name = store_col_dup(s, 3);
		out->stakeholder = store_col_dup(s, 4);
		out->created = sqlite3_column_int64(s, 5);
		out->expires = sqlite3_column_int64(s, 6);
		out->used = sqlite3_column_int64(s, 7);
		out->held_id = sqlite3_column_int64(s, 8);
	}
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return STORE_NOTFOUND;
	return store_fail(st, rc, "look up token");
}

int store_token_use(struct store *st, const char *hash, int64_t now)
{
	sqlite3_stmt *s = store_sql(st, SQL_TOKEN_USE,
				    "UPDATE sub_tokens SET used = ? WHERE hash = ? AND used = 0");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, now > 0 ? now : 1);
	store_bind_str(s, 2, hash);
	int rc = store_exec(st, s, "use token");
	if (rc == STORE_OK && sqlite3_changes(st->db) == 0)
		return store_failf(st, STORE_NOTFOUND, "token unknown or already used");
	return rc;
}

int store_rate_get(struct store *st, const char *kind, const char *key, int64_t win_start,
		   long *count)
{
	*count = 0;
	sqlite3_stmt *s = store_sql(st, SQL_RATE_GET,
				    "SELECT count FROM rate_limits"
				    " WHERE kind = ? AND key = ? AND win_start = ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, kind);
	store_bind_str(s, 2, key);
	sqlite3_bind_int64(s, 3, win_start);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*count = (long)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "rate limit");
}

int store_rate_bump(struct store *st, const char *kind, const char *key, int64_t win_start)
{
	sqlite3_stmt *s = store_sql(st, SQL_RATE_BUMP,
				    "INSERT INTO rate_limits(kind, key, win_start, count)"
				    " VALUES(?, ?, ?, 1) ON CONFLICT(kind, key, win_start)"
				    " DO UPDATE SET count = count + 1");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, kind);
	store_bind_str(s, 2, key);
	sqlite3_bind_int64(s, 3, win_start);
	return store_exec(st, s, "count for rate limit");
}

int store_subs_purge(struct store *st, int64_t tokens_before, int64_t windows_before)
{
	sqlite3_stmt *s =
		store_sql(st, SQL_TOKEN_PURGE, "DELETE FROM sub_tokens WHERE expires < ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, tokens_before);
	int rc = store_exec(st, s, "forget old tokens");
	if (rc != STORE_OK)
		return rc;
	s = store_sql(st, SQL_RATE_PURGE, "DELETE FROM rate_limits WHERE win_start < ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, windows_before);
	return store_exec(st, s, "forget old rate limits");
}

int store_subs_rcpts_done(struct store *st, int64_t message_id)
{
	sqlite3_stmt *s = store_sql(st, SQL_RCPT_SUBS_DONE,
				    "UPDATE envelope_rcpts SET state = 'done' WHERE message_id = ?"
				    " AND kind IN ('join', 'leave', 'confirm', 'request', 'owner')");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, message_id);
	return store_exec(st, s, "mark subscription recipients processed");
}
