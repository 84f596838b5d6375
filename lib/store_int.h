/* store internals shared by store.c, store_members.c and store_archive.c.
 * Not part of the store interface: nothing outside lib/store*.c includes it. */
#ifndef DIALOGUE_STORE_INT_H
#define DIALOGUE_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

/* One slot per SQL statement. The SQL text sits at the call site, next to
 * the code that binds and reads it; the slot only caches the prepared form. */
enum store_sql {
	SQL_BEGIN,
	SQL_COMMIT,
	SQL_ROLLBACK,
	SQL_SAVEPOINT,
	SQL_RELEASE,
	SQL_ROLLBACK_TO,
	SQL_SYNC_NORMAL,
	SQL_SYNC_FULL,

	SQL_MSG_INSERT,
	SQL_RCPT_INSERT,
	SQL_PENDING_FRESH,
	SQL_PENDING_RETRY,
	SQL_LAST_MESSAGE,
	SQL_BUMP,
	SQL_ARC_EXISTS,
	SQL_ARC_PARENT,
	SQL_ARC_INSERT,
	SQL_ARC_SET_THREAD,
	SQL_MSG_DONE,
	SQL_RCPT_DONE,

	SQL_MEM_LIST,
	SQL_MEM_GET,
	SQL_MEM_EXISTS,
	SQL_MEM_CAPCOUNT,
	SQL_MEM_INSERT,
	SQL_MEM_DELETE,
	SQL_MEM_SET_NAME,
	SQL_MEM_SET_STAKEHOLDER,
	SQL_MEM_SET_DELIVERY,
	SQL_MEM_SET_MODERATED,
	SQL_MEM_SET_STATUS,
	SQL_MEM_SET_TERM,
	SQL_MEM_SET_TOKEN,

	SQL_ARC_LIST,
	SQL_ARC_SEARCH,
	SQL_ARC_GET,
	SQL_ARC_RAW,
	SQL_ARC_COUNT,

	SQL_OUT_MSG_INSERT,
	SQL_OUT_INSERT,
	SQL_OUT_MEMBERS,
	SQL_OUT_CLAIM_SELECT,
	SQL_OUT_CLAIM_MARK,
	SQL_OUT_MSG_GET,
	SQL_OUT_FINISH,
	SQL_OUT_RECOVER,
	SQL_OUT_NEXT_DUE,
	SQL_OUT_RETRY_ONE,
	SQL_OUT_RETRY_ALL,
	SQL_OUT_RETRY_EXISTS,
	SQL_OUT_COUNTS,
	SQL_HELD_INSERT,
	SQL_HELD_COUNT,
	SQL_SYNC_NORMAL_ALWAYS,

	SQL_PENDING_RCPTS,
	SQL_RCPT_SUBS_DONE,
	SQL_TOKEN_INSERT,
	SQL_TOKEN_GET,
	SQL_TOKEN_USE,
	SQL_TOKEN_PURGE,
	SQL_RATE_GET,
	SQL_RATE_BUMP,
	SQL_RATE_PURGE,

	SQL_HELD_LIST,
	SQL_HELD_GET,
	SQL_HELD_RAW,
	SQL_HELD_DECIDE,
	SQL_HELD_EXPIRED,
	SQL_HELD_UNANNOUNCED,
	SQL_HELD_LAST_NOTICE,
	SQL_HELD_NOTIFIED,
	SQL_HELD_POSTER_TOLD,
	SQL_HELD_LINK_MAIL,
	SQL_HELD_CANCEL_MAILS,
	SQL_RCPT_MOD_DONE,

	SQL_ARC_THREAD_UPSERT,
	SQL_ARC_MONTH_BUMP,
	SQL_WEB_THREADS,
	SQL_WEB_THREADS_COUNT,
	SQL_WEB_THREADS_MONTH,
	SQL_WEB_THREADS_MONTH_COUNT,
	SQL_WEB_MONTHS,
	SQL_WEB_THREAD_MSGS,
	SQL_WEB_PREV,
	SQL_WEB_NEXT,
	SQL_WEB_SEARCH_IDS,
	SQL_WEB_SEARCH_HIT,
	SQL_WEB_GET_IN,
	SQL_WEB_STATS,
	SQL_WEB_MEMBER_TOKEN,

	SQL__COUNT
};

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[SQL__COUNT];
	int tx_depth; /* 0 none, 1 BEGIN IMMEDIATE, >1 nested savepoints */
	int relaxed;  /* store_relax_durability() was called */
	int busy_ms;  /* how long a locked database is waited for */
	int marker_fd; /* PATH.parsing, see store_parse_begin; -1 until used */
	int64_t deadline_ns; /* store_set_time_limit: CLOCK_MONOTONIC, 0 = none */
	char errmsg[512];
};

/* The cached statement for slot ID, prepared on first use, reset and with
 * bindings cleared. NULL (errmsg set) if it cannot be prepared. */
sqlite3_stmt *store_sql(struct store *st, enum store_sql id, const char *sql);

/* Record the connection's current error as "WHAT: sqlite message" and map
 * RC: busy/locked -> STORE_BUSY, unique constraint -> STORE_EXISTS,
 * anything else -> STORE_ERR (logged). */
int store_fail(struct store *st, int rc, const char *what);
/* Record a non-SQLite error. */
int store_failf(struct store *st, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Step S (bound; a one-row, one-column query) and read its integer into
 * *OUT (0 when the row is NULL, e.g. max() of no rows), then reset it. */
int store_query_int(struct store *st, sqlite3_stmt *s, int64_t *out, const char *what);
/* The same for a query with one bound text parameter, LIST (NULL: none). */
int store_list_int(struct store *st, enum store_sql slot, const char *sql, const char *list,
		   int64_t *out, const char *what);

/* Step S once expecting SQLITE_DONE, then reset it. */
int store_exec(struct store *st, sqlite3_stmt *s, const char *what);

/* Write transactions. The outermost is BEGIN IMMEDIATE (so a lock conflict
 * surfaces at the start, after the busy timeout, not at COMMIT); inner ones
 * are savepoints, so a function that fails inside a caller's transaction
 * (store_begin) undoes only its own work. */
int store_tx_begin(struct store *st);
int store_tx_commit(struct store *st);
void store_tx_rollback(struct store *st);

/* Relaxed durability (synchronous=NORMAL) for a commit whose work can be
 * redone from what is already durable. Only outside a caller's transaction;
 * returns whether it relaxed, to hand to store_sync_restore(). */
int store_sync_relax(struct store *st);
void store_sync_restore(struct store *st, int relaxed);

/* ---- archive rows, shared by store_archive.c and store_web.c ---- */

/* The columns store_archived_from_row reads, from "archive a"; a query may
 * add its own after them, from column ARC_NCOLS on. */
#define ARC_COLS                                                                              \
	"a.id, a.list, a.message_id, a.from_addr, a.from_name, a.subject, a.date, a.received," \
	" a.thread_id, a.in_reply_to, a.unparsed"
#define ARC_NCOLS 11
/* Search order, best match first. bm25 weights: a word in the subject says
 * more than one in From, which says more than one somewhere in the body. */
#define ARC_SEARCH_SCORE "bm25(archive_fts, 4.0, 2.0, 1.0)"
#define ARC_SEARCH_ORDER ARC_SEARCH_SCORE ", a.id DESC"

/* Fill A (all of it, zeroed first) from the ARC_COLS of the current row. */
void store_archived_from_row(sqlite3_stmt *s, struct store_archived *a);
/* User text -> an FTS5 MATCH expression that cannot be a syntax error
 * (see store_archive_search for the rules). NULL when the text has no
 * words; else the caller frees it. */
char *store_fts_query(const char *q);

/* Bind helpers: NULL strings bind as "" (store_bind_str) or SQL NULL. */
int store_bind_str(sqlite3_stmt *s, int idx, const char *v);
int store_bind_str_or_null(sqlite3_stmt *s, int idx, const char *v);
/* Column I as a fresh string ("" for NULL). */
char *store_col_dup(sqlite3_stmt *s, int i);

#endif
