/* store: the one SQLite database. Owns every SQL statement of the project.
 * Opened once per process; WAL, busy timeout, schema migrated on open.
 * Functions return 0 on success and a negative STORE_E* on failure. */
#ifndef DIALOGUE_STORE_H
#define DIALOGUE_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 6

enum {
	STORE_OK = 0,
	STORE_ERR = -1,      /* SQLite error, logged */
	STORE_BUSY = -2,     /* locked by another process beyond the busy timeout */
	STORE_NOTFOUND = -3,
	STORE_EXISTS = -4,   /* unique constraint */
	STORE_FULL = -5,     /* a cap (max_members) would be exceeded */
	STORE_INVAL = -6     /* a bad key or value from the caller (errmsg says which) */
};

struct store;

/* Open (creating if needed) and migrate. On error returns NULL and writes
 * a message to err. */
struct store *store_open(const char *path, char *err, size_t errlen);
void store_close(struct store *st);
/* The last error as one line ("what: why"); "" before any. */
const char *store_errmsg(struct store *st);
/* Override the 5 s busy timeout (tests use a short one). */
void store_set_busy_timeout(struct store *st, int ms);
/* Interrupt any statement that runs past MS milliseconds from now (0: no
 * limit, the default): the web server's bound on one request, so that no
 * page can hold the event loop. An interrupted call fails (STORE_ERR). */
void store_set_time_limit(struct store *st, int ms);
int store_user_version(struct store *st); /* PRAGMA user_version */
/* PRAGMA quick_check, foreign_key_check and the full-text index's
 * integrity-check; 0 when ok, else ERR says what is wrong. */
int store_check(struct store *st, char *err, size_t errlen);

/* ---- intake (daemon) ---- */

struct store_rcpt {
	const char *rcpt; /* address as given */
	const char *list;
	const char *kind;   /* route_kind_name() */
	const char *detail; /* "" if none */
};

struct store_incoming {
	const char *mail_from; /* "" for the null sender */
	const char *helo;
	const char *client_ip;
	const struct store_rcpt *rcpts;
	size_t n_rcpts;
	const char *data; /* the message, dot-unstuffed, CRLF line ends */
	size_t len;
	int64_t received;
	int64_t id; /* out: messages.id */
};

/* Commit MSGS[0..n) in one transaction with synchronous=FULL: when this
 * returns 0 every message is on disk. On failure nothing is stored. */
int store_accept_batch(struct store *st, struct store_incoming *msgs, size_t n);

/* ---- processing (parse + archive) ---- */

struct store_pending_rcpt {
	char *rcpt;
	char *list;
	char *kind;   /* route_kind_name() */
	char *detail; /* token or VERP-encoded member; "" if none */
};

struct store_pending {
	int64_t id;
	char *mail_from; /* envelope sender, "" for the null sender */
	char *client_ip; /* "" when unknown */
	int parse_attempts; /* before this attempt */
	char *raw;          /* NUL-terminated; len is exact */
	size_t len;
	int64_t received;
	char **post_lists; /* lists this message is a post to, sorted, once each */
	size_t n_post_lists;
	struct store_pending_rcpt *rcpts; /* every recipient, in the order given */
	size_t n_rcpts;
};
/* Up to MAX messages in state 'new', oldest first; only those with
 * parse_attempts == 0 when FRESH is 1, only those with attempts > 0
 * otherwise. *n_out may be 0. Free with store_pending_free. */
int store_pending_fetch(struct store *st, int fresh, size_t max, struct store_pending **out,
			size_t *n_out);
/* The same, only messages with id <= UPTO: the daemon reads no message
 * whose 250 has not gone out yet, so a parser crash can never swallow an
 * acknowledgement (and a client's retry of it then crash us again). */
int store_pending_fetch_upto(struct store *st, int fresh, size_t max, int64_t upto,
			     struct store_pending **out, size_t *n_out);
/* The highest messages.id stored (0 when none). */
int store_last_message_id(struct store *st, int64_t *id);
void store_pending_free(struct store_pending *p, size_t n);
/* Count one more parse attempt for each id, committed before parsing so a
 * parser crash is remembered across restarts. */
int store_bump_attempts(struct store *st, const int64_t *ids, size_t n);
/* Record that message ID is being parsed now: one marker (a small file
 * beside the database, DATABASE.parsing), replaced each time, written
 * without an fsync: it guards against our own crash, not a power cut.
 * store_parse_end (and store_archive_commit) clear it. */
int store_parse_begin(struct store *st, int64_t id);
/* After a restart: if the previous process died while parsing a message,
 * count one parse attempt for that message alone and clear the marker.
 * *blamed receives its id, or 0 when no parse was in progress. */
int store_parse_recover(struct store *st, int64_t *blamed);

struct store_archive_entry {
	const char *list;
	int64_t raw_id;
	const char *message_id;
	const char *from_addr;
	const char *from_name;
	const char *subject;
	const char *date_header;
	int64_t date;
	int64_t received;
	const char *in_reply_to;
	const char *references;
	const char *body;
	int unparsed; /* 1 = poison message archived raw */
};
/* In one transaction: insert the entries (threading them by In-Reply-To /
 * References within the list; an entry already present for (list, raw_id)
 * is skipped) and mark messages DONE_IDS[0..n_done) processed: state 'poison'
 * when an entry for it has unparsed = 1, else 'done', and their post
 * recipients 'done'. NULL strings are stored as "". */
int store_archive_commit(struct store *st, const struct store_archive_entry *e, size_t n,
			 const int64_t *done_ids, size_t n_done);

/* The pieces of store_archive_commit, for callers composing their own
 * transaction: archive one entry (skipped when (list, raw_id) exists),
 * mark a message processed ('done', or 'poison' when archived unparsed),
 * and clear the parse marker of store_parse_begin. */
int store_archive_add(struct store *st, const struct store_archive_entry *e);
int store_message_done(struct store *st, int64_t id, int poison);
int store_parse_end(struct store *st);

/* Begin/commit/rollback for callers composing several calls (CLI import). */
int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);

/* ---- members ---- */

struct store_member {
	char *list;
	char *address;
	char *name;        /* "" when none */
	char *stakeholder; /* "" when none */
	char *status;      /* active | pending | ... */
	char *delivery;    /* each | digest | none */
	int moderated;
	int64_t joined;
	int64_t term_ends; /* 0 = none */
};
/* Frees the strings of one member (as filled by store_member_get), not M. */
void store_member_free(struct store_member *m);
/* Frees an array from store_members_list: every member and the array. */
void store_members_free(struct store_member *m, size_t n);

/* All members of LIST ordered by address; *n may be 0. */
int store_members_list(struct store *st, const char *list, struct store_member **out, size_t *n);
/* STORE_NOTFOUND if ADDRESS is not a member. Free with store_member_free. */
int store_member_get(struct store *st, const char *list, const char *address,
		     struct store_member *out);
/* Insert; status "" means active, delivery "" each, joined 0 now.
 * STORE_INVAL for a missing list/address or a bad delivery/status,
 * STORE_EXISTS if present (addresses compare case-insensitively),
 * STORE_FULL if MAX_MEMBERS > 0 and the list already has that many active
 * or pending members (checked in the same transaction). */
int store_member_add(struct store *st, const struct store_member *m, long max_members);
/* STORE_NOTFOUND if ADDRESS is not a member. */
int store_member_remove(struct store *st, const char *list, const char *address);
/* Update one column: key is name|stakeholder|delivery|moderated|status|term_ends.
 * delivery: each|digest|none; moderated: yes|no|true|false|on|off|1|0;
 * term_ends: epoch seconds, 0 = none. STORE_INVAL for a bad key or value,
 * STORE_NOTFOUND if ADDRESS is not a member. */
int store_member_set(struct store *st, const char *list, const char *address, const char *key,
		     const char *value);
/* Members that count toward max_members: status active or pending. */
int store_member_count(struct store *st, const char *list, long *out);
/* Give the member a one-click unsubscribe token (kept once set). */
int store_member_set_token(struct store *st, const char *list, const char *address,
			   const char *token);

/* ---- archive queries ---- */

struct store_archived {
	int64_t id;
	char *list;
	char *message_id;
	char *from_addr;
	char *from_name;
	char *subject;
	int64_t date; /* 0 unknown: use received */
	int64_t received;
	int64_t thread_id;
	char *in_reply_to;
	int unparsed;
	char *mail_from; /* envelope sender: store_archive_each only, else NULL */
};
/* Frees an array from store_archive_list/search: every entry and the array. */
void store_archived_free(struct store_archived *a, size_t n);
/* Frees the strings of one entry (as filled by store_archive_get), not A. */
void store_archived_clear(struct store_archived *a);

/* Newest first, at most LIMIT (0 = all). */
int store_archive_list(struct store *st, const char *list, long limit,
		       struct store_archived **out, size_t *n);
/* FTS5 over subject, from and body, best match (bm25) first, at most LIMIT
 * (0 = all). QUERY is user text: every word must occur (operators and
 * punctuation are plain words, never a syntax error); no words, no results. */
int store_archive_search(struct store *st, const char *list, const char *query, long limit,
			 struct store_archived **out, size_t *n);
/* STORE_NOTFOUND if there is no archived message ID. Free with
 * store_archived_clear. */
int store_archive_get(struct store *st, int64_t id, struct store_archived *out);
/* The stored bytes of archived message ID (NUL-terminated; *len is exact)
 * and, when BODY is not NULL, its stored body text. Caller frees both. */
int store_archive_raw(struct store *st, int64_t id, char **raw, size_t *len, char **body);
/* Call FN for every archived message of LIST, oldest first, with its raw
 * bytes (NUL-terminated, valid during the call); stops early when FN returns
 * non-zero. FN may call other store functions (reads). */
int store_archive_each(struct store *st, const char *list,
		       int (*fn)(void *arg, const struct store_archived *a, const char *raw,
				 size_t len),
		       void *arg);
int store_archive_count(struct store *st, const char *list, long *out);
/* Rebuild the full-text index from the archive (the repair when store_check
 * reports the index out of step). */
int store_archive_reindex(struct store *st);

/* ---- outbound queue (lib/store_queue.c) ---- */

/* One message to many recipients, queued in the caller's transaction (or
 * its own). TOKENS may be NULL, else one per recipient (NULL entries ok). */
struct store_outbound {
	const char *list;
	const char *kind;      /* "post" | "notice" */
	int64_t raw_id;        /* 0 when not from an accepted message */
	const char *mail_from; /* envelope sender; with verp, the base L-bounces@D */
	int verp;
	const char *body;      /* CRLF, not dot-stuffed */
	size_t len;
	const char *const *rcpts;
	const char *const *tokens;
	size_t n_rcpts;
	int64_t now;
};
int store_outbound_add(struct store *st, const struct store_outbound *o, int64_t *msg_id);

/* Active members of LIST whose delivery is "each", ordered by address;
 * tokens[i] is the member's unsubscribe token or NULL. Free both with
 * store_strings_free. */
int store_members_for_delivery(struct store *st, const char *list, char ***addrs,
			       char ***tokens, size_t *n);
void store_strings_free(char **v, size_t n);

/* A recipient due now, claimed for sending. */
struct store_due {
	int64_t id;
	int64_t msg_id;
	char *recipient;
	char *token; /* NULL when none */
	int attempts;
	int64_t created;
};
/* In one transaction: take up to MAX rows that are queued or deferred with
 * next_attempt <= NOW, oldest message first, and mark them 'sending'. */
int store_outbound_claim(struct store *st, int64_t now, size_t max, struct store_due **out,
			 size_t *n);
void store_due_free(struct store_due *d, size_t n);

struct store_outbound_msg {
	int64_t id;
	char *list;
	char *kind;
	char *mail_from;
	int verp;
	char *body;
	size_t len;
};
int store_outbound_msg_get(struct store *st, int64_t msg_id, struct store_outbound_msg *out);
void store_outbound_msg_clear(struct store_outbound_msg *m);

/* The outcome of one attempt for one row. */
struct store_attempt {
	int64_t id;
	const char *status; /* "sent" | "deferred" | "failed" */
	int64_t next_attempt;
	const char *last_error;
};
/* Record outcomes in one transaction (attempts + 1 for each). */
int store_outbound_finish(struct store *st, const struct store_attempt *a, size_t n,
			  int64_t now);
/* At start: rows left 'sending' by a previous process go back to
 * 'queued' (they may have been delivered: a possible duplicate, never a
 * loss). *n gets how many. */
int store_outbound_recover(struct store *st, long *n);
/* Earliest next_attempt of a waiting row, or 0 when none waits. */
int store_outbound_next_due(struct store *st, int64_t *when);

struct store_queue_entry {
	int64_t id;
	char *list;
	char *recipient;
	int attempts;
	int64_t next_attempt;
	char *last_error;
	char *status;
};
/* Rows not yet sent (queued, sending, deferred, failed), or every row when
 * ALL (also sent and cancelled: a notice about a post decided before it
 * went out); of LIST or every list when NULL; oldest first, at most LIMIT (0 =
 * no limit). */
int store_queue_list(struct store *st, const char *list, int all, long limit,
		     struct store_queue_entry **out, size_t *n);
void store_queue_entries_free(struct store_queue_entry *e, size_t n);
/* Deferred or failed rows (ID, or all when ID is 0) become queued, due NOW.
 * *count gets how many; STORE_NOTFOUND when ID names no such row. */
int store_queue_retry(struct store *st, int64_t id, int64_t now, long *count);
/* Counts of LIST's rows by state (NULL pointers skipped). */
int store_queue_counts(struct store *st, const char *list, long *queued, long *deferred,
		       long *failed);

/* ---- held posts ---- */
int store_held_add(struct store *st, const char *list, int64_t raw_id, const char *reason,
		   const char *from_addr, const char *subject, int64_t received);
/* Posts of LIST waiting for a moderator. */
int store_held_count(struct store *st, const char *list, long *out);

/* ---- moderation (lib/store_held.c) ---- */

/* One held post. Status: held | approved | rejected | discarded |
 * withdrawn | expired; everything but held is final. */
struct store_held {
	int64_t id;
	char *list;
	int64_t raw_id;    /* messages.id of the stored message */
	char *reason;      /* why it was held */
	char *from_addr;   /* From: address, "" when none */
	char *subject;
	int64_t received;
	char *status;
	int64_t decided;   /* when, 0 while held */
	char *decided_by;  /* "cli", a moderator's address, "expiry" ...; "" */
	char *decision_reason; /* reject: what the poster was told; "" */
	char *mail_from;   /* envelope sender of the message, "" for the null sender */
	int64_t size;      /* of the stored message, octets */
	int unparsed;      /* the message is a poison message (never parsed again) */
};
/* Frees the strings of H (as filled by store_held_get), not H. */
void store_held_clear(struct store_held *h);
/* Frees an array from store_held_list: every entry and the array. */
void store_held_free(struct store_held *h, size_t n);
/* Held posts of LIST (every list when NULL), oldest first; only those
 * still waiting (status held) unless ALL. *n may be 0. */
int store_held_list(struct store *st, const char *list, int all, struct store_held **out,
		    size_t *n);
/* STORE_NOTFOUND when there is no held post ID (in any status). */
int store_held_get(struct store *st, int64_t id, struct store_held *out);
/* The stored bytes of held post ID (NUL-terminated; *len is exact).
 * Caller frees. STORE_NOTFOUND when there is no held post ID. */
int store_held_raw(struct store *st, int64_t id, char **raw, size_t *len);
/* Record the decision on held post ID: status held -> STATUS (approved,
 * rejected, discarded, withdrawn or expired) with NOW, BY and REASON (may
 * be NULL). Only a post still held changes: STORE_NOTFOUND when there is
 * no such post or it was decided before, STORE_INVAL for a bad STATUS.
 * Call inside the transaction that carries the decision out. */
int store_held_decide(struct store *st, int64_t id, const char *status, const char *by,
		      const char *reason, int64_t now);
/* IDs of LIST's posts still held that were received before BEFORE, oldest
 * first, at most MAX (0 = all). Caller frees *ids. */
int store_held_expired(struct store *st, const char *list, int64_t before, size_t max,
		       int64_t **ids, size_t *n);

/* ---- moderation by mail (lib/store_held.c) ---- */

/* A held post whose moderators' notice or poster's mail is outstanding. */
struct store_held_todo {
	int64_t id;
	char *list;
	int64_t received;
	int notify;      /* the moderators' notice is not yet queued */
	int tell_poster; /* the poster is not yet dealt with */
};
void store_held_todo_free(struct store_held_todo *t, size_t n);
/* LIST's posts still held whose notice (notified = 0) or poster's mail
 * (poster_told = 0) is outstanding, oldest first; at most MAX (0 = all).
 * A partial index holds exactly these rows, so asking is cheap when there
 * are none. */
int store_held_todo(struct store *st, const char *list, size_t max,
		    struct store_held_todo **out, size_t *n);
/* When the latest notice for LIST was queued; 0 when none ever was. */
int store_held_last_notice(struct store *st, const char *list, int64_t *when);
/* Mark held post ID announced to its moderators / its poster dealt with
 * (told or not), at NOW. */
int store_held_set_notified(struct store *st, int64_t id, int64_t now);
int store_held_set_poster_told(struct store *st, int64_t id, int64_t now);
/* Queued mail MSG_ID (outbound_msgs) is about held post HELD_ID. */
int store_held_link_mail(struct store *st, int64_t held_id, int64_t msg_id);
/* After a decision on HELD_ID: the mails about it that are not yet sent
 * and whose posts are all decided will not be sent (their queued or
 * deferred recipients become 'cancelled'). *n gets how many recipients. */
int store_held_cancel_mails(struct store *st, int64_t held_id, long *n);
/* Mark message MESSAGE_ID's approve, reject and withdraw recipients
 * processed. */
int store_moderation_rcpts_done(struct store *st, int64_t message_id);

/* ---- subscriptions (lib/store_subs.c) ---- */

/* A confirmation token as stored; the token itself is never kept, only
 * its hash (token_hash), which is the key. */
struct store_token {
	char *list;
	char *address;
	char *action; /* join | leave | invite | approve | reject | withdraw */
	char *name;
	char *stakeholder;
	int64_t created;
	int64_t expires;
	int64_t used; /* 0 = not yet, else when */
	int64_t held_id; /* approve, reject, withdraw: the held post; else 0 */
};
/* Frees the strings of T (as filled by store_token_get), not T. */
void store_token_clear(struct store_token *t);
/* Store T under HASH (its used field is ignored: a new token is unused).
 * STORE_EXISTS if HASH is present. */
int store_token_add(struct store *st, const char *hash, const struct store_token *t);
/* STORE_NOTFOUND when no token has HASH. Free with store_token_clear. */
int store_token_get(struct store *st, const char *hash, struct store_token *out);
/* Spend the token: used = NOW, only if it was unused (STORE_NOTFOUND
 * otherwise), so it works once even with two racing confirmations. */
int store_token_use(struct store *st, const char *hash, int64_t now);

/* Rate limits in fixed windows: the count of (KIND, KEY) in the window
 * starting at WIN_START (0 when none yet), and one more. KEY is compared
 * exactly: lowercase addresses before. */
int store_rate_get(struct store *st, const char *kind, const char *key, int64_t win_start,
		   long *count);
int store_rate_bump(struct store *st, const char *kind, const char *key, int64_t win_start);
/* Forget tokens that expired before TOKENS_BEFORE and rate windows that
 * started before WINDOWS_BEFORE. */
int store_subs_purge(struct store *st, int64_t tokens_before, int64_t windows_before);
/* Mark message MESSAGE_ID's join, leave, confirm, request and owner
 * recipients processed (store_message_done marks the posts). */
int store_subs_rcpts_done(struct store *st, int64_t message_id);

/* The daemon's own connection: commits without fsync (WAL, synchronous =
 * NORMAL). Safe for everything the daemon writes after intake, which is
 * either derived again from the fsync'd raw message or, for queue states,
 * costs at most a duplicate copy after a power cut. */
void store_relax_durability(struct store *st);

/* ---- website (lib/store_web.c) ---- */

/* One thread of a list's archive: a row of the threads table, kept exact by
 * store_archive_add. Times are received (our clock), never the Date
 * header. */
struct store_thread {
	int64_t thread_id;   /* archive.id of its first message */
	char *subject;       /* its first message's subject */
	int64_t started;     /* received of its first message */
	int64_t last_received;
	int64_t last_id;     /* its newest message */
	long count;
};
void store_threads_free(struct store_thread *t, size_t n);
/* Threads of LIST with the latest activity first (last_id DESC), at most
 * LIMIT (0 = all) from OFFSET; when MONTH ("YYYY-MM", UTC) is not NULL only
 * threads started in that month, ordered the same way (STORE_INVAL for a
 * malformed MONTH). *total gets how many threads match. */
int store_threads_page(struct store *st, const char *list, const char *month, long offset,
		       long limit, struct store_thread **out, size_t *n, long *total);

struct store_month {
	char month[8]; /* "YYYY-MM", UTC, of received */
	long count;    /* messages */
	long threads;  /* threads started in the month */
};
/* Months of LIST with messages, newest first. Caller frees *out. */
int store_archive_months(struct store *st, const char *list, struct store_month **out,
			 size_t *n);

/* Every message of the threads THREAD_IDS[0..n_threads) of LIST, ordered by
 * thread_id then id; at most MAX_PER_THREAD (0 = all) per thread, the first
 * ones. Free with store_archived_free. */
int store_thread_messages(struct store *st, const char *list, const int64_t *thread_ids,
			  size_t n_threads, long max_per_thread, struct store_archived **out,
			  size_t *n);
/* The previous and next message (by id) of thread THREAD_ID of LIST around
 * ID; 0 when none. */
int store_thread_neighbours(struct store *st, const char *list, int64_t thread_id, int64_t id,
			    int64_t *prev, int64_t *next);

/* A search hit: the message and a snippet of its body of about 24 tokens,
 * matched terms between the bytes "\x01" and "\x02", "..." where the body
 * was cut. The caller escapes the snippet, then turns the markers into
 * markup. */
struct store_hit {
	struct store_archived a;
	char *snippet;
};
void store_hits_free(struct store_hit *h, size_t n);
/* store_archive_search's query and order, a page at a time: at most LIMIT
 * (0 = all) hits from OFFSET, ranked among the newest STORE_SEARCH_COUNT_CAP
 * matches (a word in every message must not score the whole archive).
 * *total gets the number of hits, counted up to the cap only. */
#define STORE_SEARCH_COUNT_CAP 1000
int store_archive_search_page(struct store *st, const char *list, const char *query,
			      long offset, long limit, struct store_hit **out, size_t *n,
			      long *total);
/* Archived message ID of LIST and its stored body text (caller frees
 * *body); STORE_NOTFOUND when there is no such message or it is another
 * list's. Free OUT with store_archived_clear. */
int store_archive_get_in(struct store *st, const char *list, int64_t id,
			 struct store_archived *out, char **body);
/* Up to MAX (0 = all) archived messages of LIST with id > AFTER, oldest
 * first, each passed to FN as store_archive_each does (raw bytes and
 * envelope sender); stops early when FN returns non-zero. *LAST (may be
 * NULL) gets the last id passed to FN, unchanged when none. Each call is its
 * own read, so an mbox can be streamed in batches without holding the
 * archive (or a read snapshot) the whole time. */
int store_archive_batch(struct store *st, const char *list, int64_t after, size_t max,
			int (*fn)(void *arg, const struct store_archived *a, const char *raw,
				  size_t len),
			void *arg, int64_t *last);
/* How many messages LIST's archive holds and its highest id (0, 0 when
 * empty), without counting rows: for ETags and the front page. */
int store_archive_stats(struct store *st, const char *list, long *count, int64_t *last_id);
/* The member of LIST whose one-click unsubscribe token is TOKEN;
 * STORE_NOTFOUND when none. Free with store_member_free. */
int store_member_by_token(struct store *st, const char *list, const char *token,
			  struct store_member *out);

#endif
