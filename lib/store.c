/* store: open, schema migrations, transactions and intake.
 * Processing is in store_process.c, members in store_members.c, archive
 * queries in store_archive.c. */
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_int.h"
#include "util.h"

/* Migration I takes the schema from version I to I + 1. Append only: a
 * released script is never edited, a change is a new script. The length of
 * this array must equal STORE_SCHEMA_VERSION. */
static const char *const migrations[] = {
	/* 1: intake, archive with full-text search, members. */
	"CREATE TABLE messages("
	" id INTEGER PRIMARY KEY,"
	" received INTEGER NOT NULL,"
	" mail_from TEXT NOT NULL,"
	" helo TEXT,"
	" client_ip TEXT,"
	" size INTEGER NOT NULL,"
	" raw BLOB NOT NULL,"
	" state TEXT NOT NULL DEFAULT 'new'," /* new | done | poison */
	" parse_attempts INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX messages_new ON messages(parse_attempts, id) WHERE state = 'new';"

	"CREATE TABLE envelope_rcpts("
	" id INTEGER PRIMARY KEY,"
	" message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,"
	" rcpt TEXT NOT NULL,"
	" list TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" detail TEXT NOT NULL DEFAULT '',"
	" state TEXT NOT NULL DEFAULT 'new');"
	"CREATE INDEX envelope_rcpts_message ON envelope_rcpts(message_id);"
	"CREATE INDEX envelope_rcpts_state ON envelope_rcpts(state, kind);"

	"CREATE TABLE archive("
	" id INTEGER PRIMARY KEY,"
	" list TEXT NOT NULL,"
	" raw_id INTEGER NOT NULL REFERENCES messages(id),"
	" message_id TEXT NOT NULL,"
	" from_addr TEXT NOT NULL DEFAULT '',"
	" from_name TEXT NOT NULL DEFAULT '',"
	" subject TEXT NOT NULL DEFAULT '',"
	" date INTEGER NOT NULL DEFAULT 0,"
	" date_header TEXT NOT NULL DEFAULT '',"
	" received INTEGER NOT NULL,"
	" in_reply_to TEXT NOT NULL DEFAULT '',"
	" refs TEXT NOT NULL DEFAULT '',"
	" thread_id INTEGER,"
	" unparsed INTEGER NOT NULL DEFAULT 0,"
	" body TEXT NOT NULL DEFAULT '',"
	" UNIQUE(list, raw_id));"
	"CREATE INDEX archive_list ON archive(list, id);"
	"CREATE INDEX archive_msgid ON archive(list, message_id);"
	"CREATE INDEX archive_thread ON archive(list, thread_id);"

	/* Full-text index with external content read through a view, so the
	 * body is stored once and "From" can be one column made of name and
	 * address. The triggers keep it exact: the 'delete' command must get
	 * the very values that were indexed, which the view's expression
	 * recomputes from the old row. INSERT INTO archive_fts(archive_fts)
	 * VALUES('rebuild') recreates the index from the archive. */
	"CREATE VIEW archive_fts_src AS SELECT id, subject,"
	" from_name || ' ' || from_addr AS from_text, body FROM archive;"
	"CREATE VIRTUAL TABLE archive_fts USING fts5(subject, from_text, body,"
	" content='archive_fts_src', content_rowid='id',"
	" tokenize='unicode61 remove_diacritics 2');"
	"CREATE TRIGGER archive_fts_ai AFTER INSERT ON archive BEGIN"
	" INSERT INTO archive_fts(rowid, subject, from_text, body)"
	" VALUES(new.id, new.subject, new.from_name || ' ' || new.from_addr, new.body);"
	" END;"
	"CREATE TRIGGER archive_fts_ad AFTER DELETE ON archive BEGIN"
	" INSERT INTO archive_fts(archive_fts, rowid, subject, from_text, body)"
	" VALUES('delete', old.id, old.subject, old.from_name || ' ' || old.from_addr,"
	" old.body);"
	" END;"
	"CREATE TRIGGER archive_fts_au AFTER UPDATE OF subject, from_name, from_addr, body"
	" ON archive BEGIN"
	" INSERT INTO archive_fts(archive_fts, rowid, subject, from_text, body)"
	" VALUES('delete', old.id, old.subject, old.from_name || ' ' || old.from_addr,"
	" old.body);"
	" INSERT INTO archive_fts(rowid, subject, from_text, body)"
	" VALUES(new.id, new.subject, new.from_name || ' ' || new.from_addr, new.body);"
	" END;"

	"CREATE TABLE members("
	" id INTEGER PRIMARY KEY,"
	" list TEXT NOT NULL,"
	" address TEXT NOT NULL COLLATE NOCASE,"
	" name TEXT NOT NULL DEFAULT '',"
	" stakeholder TEXT NOT NULL DEFAULT '',"
	" status TEXT NOT NULL DEFAULT 'active',"
	" delivery TEXT NOT NULL DEFAULT 'each',"
	" moderated INTEGER NOT NULL DEFAULT 0,"
	" joined INTEGER NOT NULL,"
	" term_ends INTEGER NOT NULL DEFAULT 0,"
	" unsub_token TEXT,"
	" UNIQUE(list, address));"

	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);",

	/* 2: the outbound queue and held posts. A post is stored once
	 * (outbound_msgs: the copy shared by every recipient) with one row
	 * per recipient; each row moves queued -> sending -> sent | deferred
	 * | failed, every move in a transaction. */
	"CREATE TABLE outbound_msgs("
	" id INTEGER PRIMARY KEY,"
	" list TEXT NOT NULL,"
	" kind TEXT NOT NULL," /* post | notice */
	" raw_id INTEGER REFERENCES messages(id),"
	" mail_from TEXT NOT NULL," /* envelope sender; the VERP base when verp */
	" verp INTEGER NOT NULL DEFAULT 0,"
	" body BLOB NOT NULL," /* CRLF, not dot-stuffed */
	" created INTEGER NOT NULL);"
	"CREATE TABLE outbound("
	" id INTEGER PRIMARY KEY,"
	" msg_id INTEGER NOT NULL REFERENCES outbound_msgs(id) ON DELETE CASCADE,"
	" recipient TEXT NOT NULL,"
	" token TEXT," /* the member's one-click unsubscribe token, or NULL */
	" status TEXT NOT NULL DEFAULT 'queued',"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_attempt INTEGER NOT NULL,"
	" last_error TEXT NOT NULL DEFAULT '',"
	" created INTEGER NOT NULL,"
	" updated INTEGER NOT NULL);"
	"CREATE INDEX outbound_due ON outbound(next_attempt, msg_id, id)"
	" WHERE status IN ('queued', 'deferred');"
	"CREATE INDEX outbound_sending ON outbound(status) WHERE status = 'sending';"
	"CREATE INDEX outbound_msg ON outbound(msg_id, status);"

	"CREATE TABLE held("
	" id INTEGER PRIMARY KEY,"
	" list TEXT NOT NULL,"
	" raw_id INTEGER NOT NULL REFERENCES messages(id),"
	" reason TEXT NOT NULL,"
	" from_addr TEXT NOT NULL DEFAULT '',"
	" subject TEXT NOT NULL DEFAULT '',"
	" received INTEGER NOT NULL,"
	" status TEXT NOT NULL DEFAULT 'held'," /* held | approved | rejected | discarded */
	" UNIQUE(list, raw_id));"
	"CREATE INDEX held_list ON held(list, status);",

	/* 3: subscriptions. A confirmation token is kept only as its SHA-256
	 * (hex), bound to a list, an address and an action; used is 0 until
	 * it is spent, then when. Rate limits count in fixed windows: one
	 * row per (kind, key, window start). */
	"CREATE TABLE sub_tokens("
	" id INTEGER PRIMARY KEY,"
	" hash TEXT NOT NULL UNIQUE,"
	" list TEXT NOT NULL,"
	" address TEXT NOT NULL,"
	" action TEXT NOT NULL," /* join | leave | invite */
	" name TEXT NOT NULL DEFAULT '',"
	" stakeholder TEXT NOT NULL DEFAULT '',"
	" created INTEGER NOT NULL,"
	" expires INTEGER NOT NULL,"
	" used INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX sub_tokens_expires ON sub_tokens(expires);"
	"CREATE TABLE rate_limits("
	" kind TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" win_start INTEGER NOT NULL,"
	" count INTEGER NOT NULL,"
	" PRIMARY KEY(kind, key, win_start)) WITHOUT ROWID;"
	"CREATE INDEX rate_limits_start ON rate_limits(win_start);",

	/* 4: moderation. A held post is decided once: its status moves from
	 * held to approved, rejected, discarded, withdrawn or expired in the
	 * transaction that carries the decision out, with when, by whom and
	 * (reject) the reason the poster was given. */
	"ALTER TABLE held ADD COLUMN decided INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE held ADD COLUMN decided_by TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE held ADD COLUMN decision_reason TEXT NOT NULL DEFAULT '';"
	"CREATE INDEX held_waiting ON held(received) WHERE status = 'held';",

	/* 5: moderation by mail. A moderation token (approve, reject,
	 * withdraw) names the held post it decides. A held post remembers
	 * when its moderators' notice was queued (notified; the latest per
	 * list paces the notices) and when its poster was dealt with
	 * (poster_told, told or not); the sweep looks only at posts with
	 * either still 0, through a partial index that stays empty when all
	 * is done. held_mails ties queued mail to the posts it is about, so
	 * a decision can stop a notice not yet sent. */
	"ALTER TABLE sub_tokens ADD COLUMN held_id INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE held ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE held ADD COLUMN poster_told INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX held_unannounced ON held(list, id)"
	" WHERE status = 'held' AND (notified = 0 OR poster_told = 0);"
	"CREATE INDEX held_notices ON held(list, notified);"
	"CREATE INDEX held_due ON held(list, received) WHERE status = 'held';"
	"CREATE TABLE held_mails("
	" held_id INTEGER NOT NULL REFERENCES held(id),"
	" msg_id INTEGER NOT NULL REFERENCES outbound_msgs(id) ON DELETE CASCADE,"
	" PRIMARY KEY(held_id, msg_id)) WITHOUT ROWID;"
	"CREATE INDEX held_mails_msg ON held_mails(msg_id);",

	/* 6: the website. A page of threads or the list of months must not
	 * aggregate the whole archive per request, so both are kept as rows,
	 * maintained by store_archive_add in the transaction that archives
	 * the message, and filled here from what is archived already. A
	 * thread is named and dated after its first message (whose id is the
	 * thread_id); last_received is that of the newest (highest id)
	 * message, which is what a bare column beside max() yields. Times are
	 * received, our clock: the Date header is the sender's to forge.
	 * members_token answers a one-click unsubscribe without a scan. */
	"CREATE TABLE threads("
	" list TEXT NOT NULL,"
	" thread_id INTEGER NOT NULL,"
	" subject TEXT NOT NULL,"
	" started INTEGER NOT NULL,"
	" last_id INTEGER NOT NULL,"
	" last_received INTEGER NOT NULL,"
	" count INTEGER NOT NULL,"
	" PRIMARY KEY(list, thread_id)) WITHOUT ROWID;"
	"CREATE INDEX threads_last ON threads(list, last_id);"
	"CREATE INDEX threads_started ON threads(list, started);"
	"INSERT INTO threads(list, thread_id, subject, started, last_id, last_received, count)"
	" SELECT a.list, a.thread_id, f.subject, f.received, max(a.id), a.received, count(*)"
	" FROM archive a JOIN archive f ON f.id = a.thread_id"
	" WHERE a.thread_id IS NOT NULL"
	" GROUP BY a.list, a.thread_id;"
	"CREATE TABLE archive_months("
	" list TEXT NOT NULL,"
	" month TEXT NOT NULL," /* 'YYYY-MM', UTC, of received */
	" count INTEGER NOT NULL,"
	" threads INTEGER NOT NULL DEFAULT 0," /* threads started in the month */
	" PRIMARY KEY(list, month)) WITHOUT ROWID;"
	"INSERT INTO archive_months(list, month, count, threads)"
	" SELECT list, strftime('%Y-%m', received, 'unixepoch'), count(*),"
	" sum(thread_id = id) FROM archive"
	" GROUP BY 1, 2;"
	"CREATE INDEX members_token ON members(unsub_token) WHERE unsub_token IS NOT NULL;"
	/* Search snippets mark matches with the bytes 0x01 and 0x02, which a
	 * body may hold too: the full-text index reads its content (for
	 * snippet()) with both as spaces, so every marker is ours. The
	 * tokenizer splits on either alike, so the indexed words and their
	 * offsets stay exactly what the triggers index. */
	"DROP VIEW archive_fts_src;"
	"CREATE VIEW archive_fts_src AS SELECT id, subject,"
	" from_name || ' ' || from_addr AS from_text,"
	" replace(replace(body, char(1), ' '), char(2), ' ') AS body FROM archive;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
	       "one migration per schema version");

/* The busy timeout; also how long opening waits for other processes. */
#define OPEN_BUSY_MS 5000

/* ---- helpers shared with store_members.c and store_archive.c ---- */

int store_failf(struct store *st, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->errmsg, sizeof st->errmsg, fmt, ap);
	va_end(ap);
	if (code == STORE_ERR)
		log_err("store: %s", st->errmsg);
	return code;
}

int store_fail(struct store *st, int rc, const char *what)
{
	int code;
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		code = STORE_BUSY;
		break;
	case SQLITE_CONSTRAINT:
		code = (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			       ? STORE_EXISTS
			       : STORE_ERR;
		break;
	default:
		code = STORE_ERR;
	}
	return store_failf(st, code, "%s: %s", what, sqlite3_errmsg(st->db));
}

sqlite3_stmt *store_sql(struct store *st, enum store_sql id, const char *sql)
{
	sqlite3_stmt *s = st->stmt[id];
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return s;
	}
	int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		store_fail(st, rc, "prepare");
		sqlite3_finalize(s);
		return NULL;
	}
	st->stmt[id] = s;
	return s;
}

int store_exec(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	int ret = rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : store_fail(st, rc, what);
	sqlite3_reset(s);
	return ret;
}

int store_bind_str(sqlite3_stmt *s, int idx, const char *v)
{
	return sqlite3_bind_text(s, idx, v ? v : "", -1, SQLITE_STATIC);
}

int store_bind_str_or_null(sqlite3_stmt *s, int idx, const char *v)
{
	if (!v)
		return sqlite3_bind_null(s, idx);
	return sqlite3_bind_text(s, idx, v, -1, SQLITE_STATIC);
}

char *store_col_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	if (!t)
		return xstrdup("");
	return xstrndup((const char *)t, (size_t)sqlite3_column_bytes(s, i));
}

int store_query_int(struct store *st, sqlite3_stmt *s, int64_t *out, const char *what)
{
	*out = 0;
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? STORE_OK : store_fail(st, rc, what);
}

int store_list_int(struct store *st, enum store_sql slot, const char *sql, const char *list,
		   int64_t *out, const char *what)
{
	*out = 0;
	sqlite3_stmt *s = store_sql(st, slot, sql);
	if (!s)
		return STORE_ERR;
	if (list)
		store_bind_str(s, 1, list);
	return store_query_int(st, s, out, what);
}

static int run(struct store *st, enum store_sql id, const char *sql, const char *what)
{
	sqlite3_stmt *s = store_sql(st, id, sql);
	return s ? store_exec(st, s, what) : STORE_ERR;
}

/* ---- transactions ---- */

int store_tx_begin(struct store *st)
{
	int rc;
	if (st->tx_depth == 0)
		rc = run(st, SQL_BEGIN, "BEGIN IMMEDIATE", "begin");
	else
		rc = run(st, SQL_SAVEPOINT, "SAVEPOINT store_sp", "savepoint");
	if (rc == STORE_OK)
		st->tx_depth++;
	return rc;
}

void store_tx_rollback(struct store *st)
{
	if (st->tx_depth <= 0)
		return;
	/* Some errors (busy, I/O, full disk) make SQLite roll the whole
	 * transaction back by itself; then there is nothing left to undo. */
	int active = !sqlite3_get_autocommit(st->db);
	if (st->tx_depth == 1 || !active) {
		if (active)
			run(st, SQL_ROLLBACK, "ROLLBACK", "rollback");
		st->tx_depth = 0;
		return;
	}
	run(st, SQL_ROLLBACK_TO, "ROLLBACK TO store_sp", "rollback to savepoint");
	run(st, SQL_RELEASE, "RELEASE store_sp", "release");
	st->tx_depth--;
}

int store_tx_commit(struct store *st)
{
	if (st->tx_depth <= 0)
		return store_failf(st, STORE_ERR, "commit without a transaction");
	if (sqlite3_get_autocommit(st->db)) {
		st->tx_depth = 0;
		return store_failf(st, STORE_ERR,
				   "transaction was rolled back by an earlier error");
	}
	int rc;
	if (st->tx_depth == 1)
		rc = run(st, SQL_COMMIT, "COMMIT", "commit");
	else
		rc = run(st, SQL_RELEASE, "RELEASE store_sp", "release");
	if (rc != STORE_OK) {
		/* A failed COMMIT leaves the transaction open; end it so the
		 * connection is usable and nothing half-done lingers. */
		char saved[sizeof st->errmsg];
		memcpy(saved, st->errmsg, sizeof saved);
		store_tx_rollback(st);
		memcpy(st->errmsg, saved, sizeof saved);
		return rc;
	}
	st->tx_depth--;
	return STORE_OK;
}

int store_begin(struct store *st)
{
	return store_tx_begin(st);
}

int store_commit(struct store *st)
{
	return store_tx_commit(st);
}

void store_rollback(struct store *st)
{
	store_tx_rollback(st);
}

int store_sync_relax(struct store *st)
{
	if (st->tx_depth != 0 || st->relaxed)
		return 0;
	return run(st, SQL_SYNC_NORMAL, "PRAGMA synchronous=NORMAL", "synchronous") == STORE_OK;
}

void store_sync_restore(struct store *st, int relaxed)
{
	if (relaxed)
		run(st, SQL_SYNC_FULL, "PRAGMA synchronous=FULL", "synchronous");
}

/* ---- open and migrate ---- */

/* SQLite's own busy timeout sleeps 1, 2, 5, 10 ... 100 ms between tries:
 * fine between processes, but the daemon's intake thread and event loop
 * hold the write lock for a millisecond or two at a time, and a 10 ms nap
 * behind one of them is what would cap intake. Poll briskly instead. */
static int busy_wait(void *arg, int count)
{
	struct store *st = arg;
	int64_t waited_us = count < 40 ? (int64_t)count * 50 : 2000 + (int64_t)(count - 40) * 500;
	if (waited_us >= (int64_t)st->busy_ms * 1000)
		return 0;
	usleep(count < 40 ? 50 : 500);
	return 1;
}

/* Step S, retrying while the database is busy, for up to the open-time busy
 * timeout. Needed where SQLite does not call the busy handler itself: the
 * switch to WAL while another process opens the same new database returns
 * SQLITE_BUSY at once. */
static int step_retry(sqlite3_stmt *s)
{
	int rc;
	for (int waited = 0;; waited += 10) {
		rc = sqlite3_step(s);
		if ((rc & 0xff) != SQLITE_BUSY || waited >= OPEN_BUSY_MS)
			return rc;
		sqlite3_reset(s);
		sqlite3_sleep(10);
	}
}

static int pragma_int(sqlite3 *db, const char *sql, int *out)
{
	sqlite3_stmt *s = NULL;
	*out = 0;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK) {
		rc = step_retry(s);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int(s, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

static int migrate(struct store *st, char *err, size_t errlen)
{
	int version = 0;
	int rc = pragma_int(st->db, "PRAGMA user_version", &version);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
		return -1;
	}
	if (version > STORE_SCHEMA_VERSION || version < 0) {
		snprintf(err, errlen,
			 "%s: database schema version %d is newer than this program supports (%d);"
			 " use a newer dialogue",
			 st->path, version, STORE_SCHEMA_VERSION);
		return -1;
	}
	while (version < STORE_SCHEMA_VERSION) {
		if (store_tx_begin(st) != STORE_OK) {
			snprintf(err, errlen, "%s: migration to schema %d: %s", st->path,
				 version + 1, st->errmsg);
			return -1;
		}
		/* Another process may have migrated while we waited for the
		 * write lock: decide again inside the transaction. */
		rc = pragma_int(st->db, "PRAGMA user_version", &version);
		if (rc != SQLITE_OK)
			goto fail;
		if (version >= STORE_SCHEMA_VERSION) {
			store_tx_rollback(st);
			break;
		}
		/* Static scripts and an integer: no user data reaches this SQL. */
		rc = sqlite3_exec(st->db, migrations[version], NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
		char sql[64];
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
		rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
		if (store_tx_commit(st) != STORE_OK) {
			snprintf(err, errlen, "%s: migration to schema %d: %s", st->path,
				 version + 1, st->errmsg);
			return -1;
		}
		log_info("store: %s migrated to schema version %d", st->path, version + 1);
		version++;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: migration to schema %d: %s", st->path, version + 1,
		 sqlite3_errmsg(st->db));
	store_tx_rollback(st);
	return -1;
}

static int configure(struct store *st, char *err, size_t errlen)
{
	static const char *const pragmas[] = {
		"PRAGMA synchronous=FULL",
		"PRAGMA foreign_keys=ON",
		/* Keep the WAL from staying at the size of its largest burst. */
		"PRAGMA journal_size_limit=67108864",
	};
	sqlite3_extended_result_codes(st->db, 1);
	st->busy_ms = OPEN_BUSY_MS;
	sqlite3_busy_handler(st->db, busy_wait, st);

	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = step_retry(s);
	if (rc == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(s, 0);
		if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
			snprintf(err, errlen, "%s: cannot use WAL journal mode (got %s)", st->path,
				 mode ? mode : "nothing");
			sqlite3_finalize(s);
			return -1;
		}
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", st->path, sqlite3_errmsg(st->db));
		sqlite3_finalize(s);
		return -1;
	}
	sqlite3_finalize(s);
	for (size_t i = 0; i < sizeof pragmas / sizeof pragmas[0]; i++) {
		s = NULL;
		rc = sqlite3_prepare_v2(st->db, pragmas[i], -1, &s, NULL);
		if (rc == SQLITE_OK)
			rc = step_retry(s);
		sqlite3_finalize(s);
		if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			rc = SQLITE_OK;
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s: %s", st->path, pragmas[i],
				 sqlite3_errmsg(st->db));
			return -1;
		}
	}
	return 0;
}

struct store *store_open(const char *path, char *err, size_t errlen)
{
	struct store *st = xcalloc(1, sizeof *st);
	st->path = xstrdup(path);
	st->marker_fd = -1;
	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
			 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	if (configure(st, err, errlen) < 0 || migrate(st, err, errlen) < 0)
		goto fail;
	return st;
fail:
	store_close(st);
	return NULL;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < SQL__COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	if (st->db && sqlite3_close(st->db) != SQLITE_OK)
		log_err("store: closing %s: %s", st->path, sqlite3_errmsg(st->db));
	if (st->marker_fd >= 0)
		close(st->marker_fd);
	free(st->path);
	free(st);
}

const char *store_errmsg(struct store *st)
{
	return st->errmsg;
}

void store_set_busy_timeout(struct store *st, int ms)
{
	st->busy_ms = ms;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Called by SQLite every few thousand steps of a statement: non-zero
 * interrupts it (SQLITE_INTERRUPT) once the deadline has passed. */
static int past_deadline(void *arg)
{
	struct store *st = arg;
	return st->deadline_ns && mono_ns() > st->deadline_ns;
}

void store_set_time_limit(struct store *st, int ms)
{
	if (ms <= 0) {
		st->deadline_ns = 0;
		sqlite3_progress_handler(st->db, 0, NULL, NULL);
		return;
	}
	st->deadline_ns = mono_ns() + (int64_t)ms * 1000000;
	sqlite3_progress_handler(st->db, 4000, past_deadline, st);
}

int store_user_version(struct store *st)
{
	int v = -1;
	if (pragma_int(st->db, "PRAGMA user_version", &v) != SQLITE_OK)
		return store_fail(st, sqlite3_errcode(st->db), "user_version");
	return v;
}

/* Rows of a checking pragma: the first one is "ok" when all is well (or
 * there are none, for foreign_key_check). */
static int check_rows(struct store *st, const char *sql, int none_ok, char *err, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
	int bad = 0;
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);
		if (none_ok || !t || strcmp(t, "ok") != 0) {
			snprintf(err, errlen, "%s: %s", sql, t ? t : "row");
			bad = 1;
		}
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		int code = store_fail(st, rc, sql);
		snprintf(err, errlen, "%s", st->errmsg);
		sqlite3_finalize(s);
		return code;
	}
	sqlite3_finalize(s);
	return bad ? store_failf(st, STORE_ERR, "%s", err) : STORE_OK;
}

int store_check(struct store *st, char *err, size_t errlen)
{
	int rc = check_rows(st, "PRAGMA quick_check", 0, err, errlen);
	if (rc == STORE_OK)
		rc = check_rows(st, "PRAGMA foreign_key_check", 1, err, errlen);
	if (rc == STORE_OK) {
		/* rank = 1 compares the index with the archive too, not only
		 * with itself. A write statement, though it changes nothing. */
		rc = sqlite3_exec(st->db,
				  "INSERT INTO archive_fts(archive_fts, rank)"
				  " VALUES('integrity-check', 1)",
				  NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			rc = store_fail(st, rc, "full-text index");
			snprintf(err, errlen, "%s%s", st->errmsg,
				 rc == STORE_ERR ? " (store_archive_reindex repairs it)" : "");
		}
	}
	if (rc == STORE_OK && errlen)
		err[0] = '\0';
	return rc;
}

/* ---- intake ---- */

static int insert_incoming(struct store *st, struct store_incoming *m)
{
	sqlite3_stmt *s = store_sql(st, SQL_MSG_INSERT,
				    "INSERT INTO messages(received, mail_from, helo, client_ip,"
				    " size, raw) VALUES(?, ?, ?, ?, ?, ?)");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, m->received);
	store_bind_str(s, 2, m->mail_from);
	store_bind_str_or_null(s, 3, m->helo);
	store_bind_str_or_null(s, 4, m->client_ip);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)m->len);
	/* A NULL blob pointer would bind SQL NULL; an empty message is "". */
	sqlite3_bind_blob64(s, 6, m->data ? m->data : "", m->data ? m->len : 0, SQLITE_STATIC);
	int rc = store_exec(st, s, "store message");
	if (rc != STORE_OK)
		return rc;
	m->id = sqlite3_last_insert_rowid(st->db);

	for (size_t j = 0; j < m->n_rcpts; j++) {
		const struct store_rcpt *r = &m->rcpts[j];
		s = store_sql(st, SQL_RCPT_INSERT,
			      "INSERT INTO envelope_rcpts(message_id, rcpt, list, kind, detail)"
			      " VALUES(?, ?, ?, ?, ?)");
		if (!s)
			return STORE_ERR;
		sqlite3_bind_int64(s, 1, m->id);
		store_bind_str_or_null(s, 2, r->rcpt);
		store_bind_str_or_null(s, 3, r->list);
		store_bind_str_or_null(s, 4, r->kind);
		store_bind_str(s, 5, r->detail);
		rc = store_exec(st, s, "store recipient");
		if (rc != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

int store_accept_batch(struct store *st, struct store_incoming *msgs, size_t n)
{
	if (n == 0)
		return STORE_OK;
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		goto fail_committed;
	for (size_t i = 0; i < n; i++) {
		rc = insert_incoming(st, &msgs[i]);
		if (rc != STORE_OK)
			goto fail;
	}
	rc = store_tx_commit(st);
	if (rc != STORE_OK)
		goto fail_committed;
	return STORE_OK;
fail:
	store_tx_rollback(st);
fail_committed:
	/* Ids of rows that do not exist must not be used. */
	for (size_t i = 0; i < n; i++)
		msgs[i].id = 0;
	return rc == STORE_EXISTS ? STORE_ERR : rc;
}
