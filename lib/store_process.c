/* store: processing, the daemon's second stage: fetch what intake stored,
 * count parse attempts, archive and thread the results. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "store.h"
#include "store_int.h"
#include "util.h"

void store_pending_free(struct store_pending *p, size_t n)
{
	if (!p)
		return;
	for (size_t i = 0; i < n; i++) {
		free(p[i].raw);
		free(p[i].mail_from);
		free(p[i].client_ip);
		for (size_t j = 0; j < p[i].n_post_lists; j++)
			free(p[i].post_lists[j]);
		free(p[i].post_lists);
		for (size_t j = 0; j < p[i].n_rcpts; j++) {
			free(p[i].rcpts[j].rcpt);
			free(p[i].rcpts[j].list);
			free(p[i].rcpts[j].kind);
			free(p[i].rcpts[j].detail);
		}
		free(p[i].rcpts);
	}
	free(p);
}

/* Add LIST to P's post lists, kept sorted and without repeats. */
static void add_post_list(struct store_pending *p, const char *list)
{
	size_t at = 0;
	while (at < p->n_post_lists && strcmp(p->post_lists[at], list) < 0)
		at++;
	if (at < p->n_post_lists && !strcmp(p->post_lists[at], list))
		return;
	p->post_lists = xrealloc(p->post_lists, (p->n_post_lists + 1) * sizeof *p->post_lists);
	memmove(p->post_lists + at + 1, p->post_lists + at,
		(p->n_post_lists - at) * sizeof *p->post_lists);
	p->post_lists[at] = xstrdup(list);
	p->n_post_lists++;
}

static int pending_rcpts(struct store *st, struct store_pending *p)
{
	sqlite3_stmt *s = store_sql(st, SQL_PENDING_RCPTS,
				    "SELECT rcpt, list, kind, detail FROM envelope_rcpts"
				    " WHERE message_id = ? ORDER BY id");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, p->id);
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (p->n_rcpts == cap) {
			cap = cap ? cap * 2 : 2;
			p->rcpts = xrealloc(p->rcpts, cap * sizeof *p->rcpts);
		}
		struct store_pending_rcpt *r = &p->rcpts[p->n_rcpts++];
		r->rcpt = store_col_dup(s, 0);
		r->list = store_col_dup(s, 1);
		r->kind = store_col_dup(s, 2);
		r->detail = store_col_dup(s, 3);
		if (!strcmp(r->kind, "post"))
			add_post_list(p, r->list);
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "pending recipients");
	sqlite3_reset(s);
	return ret;
}

int store_pending_fetch(struct store *st, int fresh, size_t max, struct store_pending **out,
			size_t *n_out)
{
	return store_pending_fetch_upto(st, fresh, max, INT64_MAX, out, n_out);
}

int store_pending_fetch_upto(struct store *st, int fresh, size_t max, int64_t upto,
			     struct store_pending **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (max == 0)
		return STORE_OK;
	/* state = 'new' spelled out so the partial index applies. */
	sqlite3_stmt *s = fresh ? store_sql(st, SQL_PENDING_FRESH,
					    "SELECT id, parse_attempts, raw, received, mail_from,"
					    " client_ip FROM messages"
					    " WHERE state = 'new' AND parse_attempts = 0"
					    " AND id <= ? ORDER BY id LIMIT ?")
				: store_sql(st, SQL_PENDING_RETRY,
					    "SELECT id, parse_attempts, raw, received, mail_from,"
					    " client_ip FROM messages"
					    " WHERE state = 'new' AND parse_attempts > 0"
					    " AND id <= ? ORDER BY id LIMIT ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, upto);
	sqlite3_bind_int64(s, 2, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
	struct store_pending *p = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			p = xrealloc(p, cap * sizeof *p);
		}
		struct store_pending *e = &p[n++];
		memset(e, 0, sizeof *e);
		e->id = sqlite3_column_int64(s, 0);
		e->parse_attempts = sqlite3_column_int(s, 1);
		const void *blob = sqlite3_column_blob(s, 2);
		e->len = (size_t)sqlite3_column_bytes(s, 2);
		/* NUL-terminated as a convenience for parsers; len is exact. */
		e->raw = xmalloc(e->len + 1);
		if (e->len)
			memcpy(e->raw, blob, e->len);
		e->raw[e->len] = '\0';
		e->received = sqlite3_column_int64(s, 3);
		e->mail_from = store_col_dup(s, 4);
		e->client_ip = store_col_dup(s, 5);
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "pending messages");
	sqlite3_reset(s);
	for (size_t i = 0; ret == STORE_OK && i < n; i++)
		ret = pending_rcpts(st, &p[i]);
	if (ret != STORE_OK) {
		store_pending_free(p, n);
		return ret;
	}
	*out = p;
	*n_out = n;
	return STORE_OK;
}

int store_bump_attempts(struct store *st, const int64_t *ids, size_t n)
{
	if (n == 0)
		return STORE_OK;
	/* WAL with synchronous=NORMAL survives a crash of this process, which
	 * is what the count guards against; only a power cut could lose it,
	 * and then a message is merely parsed once more. */
	int relaxed = store_sync_relax(st);
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *s = store_sql(
			st, SQL_BUMP,
			"UPDATE messages SET parse_attempts = parse_attempts + 1 WHERE id = ?");
		if (!s) {
			rc = STORE_ERR;
			break;
		}
		sqlite3_bind_int64(s, 1, ids[i]);
		rc = store_exec(st, s, "count parse attempt");
		if (rc != STORE_OK)
			break;
	}
	if (rc == STORE_OK)
		rc = store_tx_commit(st);
	else
		store_tx_rollback(st);
out:
	store_sync_restore(st, relaxed);
	return rc;
}

/* The thread of an archived message of LIST whose Message-ID is ID, or 0. */
static int parent_thread(struct store *st, const char *list, const char *id, size_t idlen,
			 int64_t *thread)
{
	*thread = 0;
	if (idlen == 0)
		return STORE_OK;
	sqlite3_stmt *s = store_sql(st, SQL_ARC_PARENT,
				    "SELECT thread_id FROM archive"
				    " WHERE list = ? AND message_id = ?"
				    " ORDER BY id LIMIT 1");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	sqlite3_bind_text64(s, 2, id, idlen, SQLITE_STATIC, SQLITE_UTF8);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW)
		*thread = sqlite3_column_int64(s, 0);
	else if (rc != SQLITE_DONE)
		ret = store_fail(st, rc, "find parent");
	sqlite3_reset(s);
	return ret;
}

static int is_idsep(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '<' || c == '>' || c == ',';
}

/* References are oldest first: the last is the direct parent, so search
 * backwards. Bounded: a hostile header with a million ids must not turn one
 * commit into a million lookups; a real thread's last few hundred suffice. */
#define MAX_REFS_SEARCHED 200

static int thread_of(struct store *st, const struct store_archive_entry *e, int64_t *thread)
{
	const char *irt = e->in_reply_to ? e->in_reply_to : "";
	while (*irt && is_idsep(*irt))
		irt++;
	size_t irtlen = strlen(irt);
	while (irtlen && is_idsep(irt[irtlen - 1]))
		irtlen--;
	int rc = parent_thread(st, e->list, irt, irtlen, thread);
	if (rc != STORE_OK || *thread)
		return rc;

	const char *refs = e->references ? e->references : "";
	const char *end = refs + strlen(refs);
	for (int searched = 0; end > refs && searched < MAX_REFS_SEARCHED; searched++) {
		while (end > refs && is_idsep(end[-1]))
			end--;
		const char *start = end;
		while (start > refs && !is_idsep(start[-1]))
			start--;
		if (start == end)
			break;
		rc = parent_thread(st, e->list, start, (size_t)(end - start), thread);
		if (rc != STORE_OK || *thread)
			return rc;
		end = start;
	}
	return STORE_OK;
}

/* The website's thread and month rows (schema 6) for archive row ID of
 * THREAD, in the transaction that archives it, so they never drift from the
 * archive and a page never has to aggregate it. A new archive row's id is
 * above every other's (rowid is max + 1), so a reply is always its thread's
 * newest message: its id and time simply replace last_id and last_received.
 * The month is computed by SQLite, as the migration did, so both agree. */
static int index_pages(struct store *st, const struct store_archive_entry *e, int64_t id,
		       int64_t thread)
{
	sqlite3_stmt *s = store_sql(st, SQL_ARC_THREAD_UPSERT,
				    "INSERT INTO threads(list, thread_id, subject, started,"
				    " last_id, last_received, count)"
				    " VALUES(?1, ?2, ?3, ?4, ?5, ?4, 1)"
				    " ON CONFLICT(list, thread_id) DO UPDATE SET"
				    " count = count + 1, last_id = excluded.last_id,"
				    " last_received = excluded.last_received");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, e->list);
	sqlite3_bind_int64(s, 2, thread);
	store_bind_str(s, 3, e->subject);
	sqlite3_bind_int64(s, 4, e->received);
	sqlite3_bind_int64(s, 5, id);
	int rc = store_exec(st, s, "index thread");
	if (rc != STORE_OK)
		return rc;
	s = store_sql(st, SQL_ARC_MONTH_BUMP,
		      "INSERT INTO archive_months(list, month, count, threads)"
		      " VALUES(?, strftime('%Y-%m', ?, 'unixepoch'), 1, ?)"
		      " ON CONFLICT(list, month) DO UPDATE SET count = count + 1,"
		      " threads = threads + excluded.threads");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, e->list);
	sqlite3_bind_int64(s, 2, e->received);
	sqlite3_bind_int(s, 3, thread == id); /* a thread starts here */
	return store_exec(st, s, "index month");
}

static int archive_add(struct store *st, const struct store_archive_entry *e)
{
	sqlite3_stmt *s = store_sql(st, SQL_ARC_EXISTS,
				    "SELECT 1 FROM archive WHERE list = ? AND raw_id = ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, e->list);
	sqlite3_bind_int64(s, 2, e->raw_id);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return STORE_OK; /* archived by an earlier run: keep it once */
	if (rc != SQLITE_DONE)
		return store_fail(st, rc, "archive lookup");

	int64_t thread;
	int ret = thread_of(st, e, &thread);
	if (ret != STORE_OK)
		return ret;

	s = store_sql(st, SQL_ARC_INSERT,
		      "INSERT INTO archive(list, raw_id, message_id, from_addr, from_name, subject,"
		      " date, date_header, received, in_reply_to, refs, thread_id, unparsed, body)"
		      " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, e->list);
	sqlite3_bind_int64(s, 2, e->raw_id);
	store_bind_str(s, 3, e->message_id);
	store_bind_str(s, 4, e->from_addr);
	store_bind_str(s, 5, e->from_name);
	store_bind_str(s, 6, e->subject);
	sqlite3_bind_int64(s, 7, e->date);
	store_bind_str(s, 8, e->date_header);
	sqlite3_bind_int64(s, 9, e->received);
	store_bind_str(s, 10, e->in_reply_to);
	store_bind_str(s, 11, e->references);
	if (thread)
		sqlite3_bind_int64(s, 12, thread);
	else
		sqlite3_bind_null(s, 12);
	sqlite3_bind_int(s, 13, e->unparsed ? 1 : 0);
	store_bind_str(s, 14, e->body);
	ret = store_exec(st, s, "archive message");
	if (ret != STORE_OK)
		return ret;
	int64_t id = sqlite3_last_insert_rowid(st->db);

	if (!thread) {
		/* A thread is named after its first message. */
		s = store_sql(st, SQL_ARC_SET_THREAD,
			      "UPDATE archive SET thread_id = id WHERE id = ?");
		if (!s)
			return STORE_ERR;
		sqlite3_bind_int64(s, 1, id);
		ret = store_exec(st, s, "start thread");
		if (ret != STORE_OK)
			return ret;
		thread = id;
	}
	return index_pages(st, e, id, thread);
}

int store_archive_add(struct store *st, const struct store_archive_entry *e)
{
	/* The row, its thread mark and the website's rows stand or fall
	 * together, whether or not the caller holds a transaction (inside
	 * one this is a savepoint). */
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	rc = archive_add(st, e);
	if (rc == STORE_OK)
		rc = store_tx_commit(st);
	else
		store_tx_rollback(st);
	return rc;
}

int store_message_done(struct store *st, int64_t id, int poison)
{
	sqlite3_stmt *s = store_sql(st, SQL_MSG_DONE, "UPDATE messages SET state = ? WHERE id = ?");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_text(s, 1, poison ? "poison" : "done", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, id);
	int rc = store_exec(st, s, "mark message processed");
	if (rc != STORE_OK)
		return rc;
	s = store_sql(st, SQL_RCPT_DONE,
		      "UPDATE envelope_rcpts SET state = 'done'"
		      " WHERE message_id = ? AND kind = 'post'");
	if (!s)
		return STORE_ERR;
	sqlite3_bind_int64(s, 1, id);
	return store_exec(st, s, "mark recipients processed");
}

int store_archive_commit(struct store *st, const struct store_archive_entry *e, size_t n,
			 const int64_t *done_ids, size_t n_done)
{
	if (n == 0 && n_done == 0)
		return STORE_OK;
	/* The archive rows are derived from raw messages committed durably at
	 * intake, and the 'done' marks are in this same transaction: if a power
	 * cut loses this commit (WAL, synchronous=NORMAL), both vanish together
	 * and the messages are simply processed again. Skipping the fsync here
	 * keeps processing from halving intake throughput. */
	int relaxed = store_sync_relax(st);
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		goto out;
	rc = store_parse_end(st);
	for (size_t i = 0; i < n && rc == STORE_OK; i++)
		rc = store_archive_add(st, &e[i]);
	for (size_t i = 0; i < n_done && rc == STORE_OK; i++) {
		int poison = 0;
		for (size_t j = 0; j < n; j++)
			if (e[j].raw_id == done_ids[i] && e[j].unparsed)
				poison = 1;
		rc = store_message_done(st, done_ids[i], poison);
	}
	if (rc == STORE_OK)
		rc = store_tx_commit(st);
	else
		store_tx_rollback(st);
out:
	store_sync_restore(st, relaxed);
	return rc == STORE_EXISTS ? STORE_ERR : rc;
}

/* The marker is a file beside the database, not a row: it is written
 * before every message is parsed, and a write transaction per message would
 * contend with intake for the database lock. A write to the page cache
 * survives our own crash, which is all it guards against. */
static int marker_open(struct store *st)
{
	if (st->marker_fd >= 0)
		return 0;
	char *path = xasprintf("%s.parsing", st->path);
	st->marker_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int e = errno;
	free(path);
	if (st->marker_fd < 0)
		return store_failf(st, STORE_ERR, "parse marker %s.parsing: %s", st->path,
				   strerror(e));
	return 0;
}

static int marker_write(struct store *st, int64_t id)
{
	if (marker_open(st) < 0)
		return STORE_ERR;
	char buf[24];
	int n = snprintf(buf, sizeof buf, "%020lld\n", (long long)id);
	if (pwrite(st->marker_fd, buf, (size_t)n, 0) != n)
		return store_failf(st, STORE_ERR, "parse marker: %s", strerror(errno));
	return STORE_OK;
}

int store_parse_begin(struct store *st, int64_t id)
{
	return marker_write(st, id);
}

int store_parse_end(struct store *st)
{
	return marker_write(st, 0);
}

int store_parse_recover(struct store *st, int64_t *blamed)
{
	*blamed = 0;
	if (marker_open(st) < 0)
		return STORE_ERR;
	char buf[24] = {0};
	ssize_t n = pread(st->marker_fd, buf, sizeof buf - 1, 0);
	int64_t id = n > 0 ? (int64_t)strtoll(buf, NULL, 10) : 0;
	if (id <= 0)
		return STORE_OK;
	int rc = store_bump_attempts(st, &id, 1);
	if (rc == STORE_OK)
		rc = marker_write(st, 0);
	if (rc == STORE_OK)
		*blamed = id;
	return rc;
}

int store_last_message_id(struct store *st, int64_t *id)
{
	return store_list_int(st, SQL_LAST_MESSAGE, "SELECT max(id) FROM messages", NULL, id,
			      "last message id");
}
