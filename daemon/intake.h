/* intake: durable acceptance with group commit. Sessions hand over finished
 * messages; a writer thread commits everything handed over while its
 * previous commit was running in one SQLite transaction (one fsync), and
 * only then is each session told, in the event loop, to answer 250. */
#ifndef DIALOGUE_INTAKE_H
#define DIALOGUE_INTAKE_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Called from the event loop once the batch holding the message is
 * committed (ok = 1, id = messages.id) or failed (ok = 0). */
typedef void (*intake_done_fn)(void *arg, int ok, int64_t id);

/* One message and its envelope. The session builds it during the SMTP
 * transaction and gives it to the intake, which owns and frees it. */
struct intake_msg {
	char *mail_from;
	char *helo;
	char *client_ip;
	struct store_rcpt *rcpts; /* every string field owned */
	size_t n_rcpts;
	char *data;
	size_t len;
	int64_t received;
	intake_done_fn done; /* NULL once the session went away */
	void *arg;
	int result_ok; /* set by the writer thread */
	int64_t result_id;
	struct intake_msg *next;
};

struct intake;

/* Open a connection of our own to DB_PATH for the writer thread. The base
 * must have threading enabled (evthread_use_pthreads() before creating it).
 * AFTER_COMMIT (may be NULL) runs in the loop after successful batches.
 * NULL with err set on failure. */
struct intake *intake_new(struct event_base *base, const char *db_path,
			  void (*after_commit)(void *arg), void *after_arg, char *err,
			  size_t errlen);
/* Commits what is queued, reports it, then frees. */
void intake_free(struct intake *in);

struct intake_msg *intake_msg_new(void);
void intake_msg_add_rcpt(struct intake_msg *m, const char *rcpt, const char *list,
			 const char *kind, const char *detail);
void intake_msg_free(struct intake_msg *m);

/* Take ownership of M and commit it with the current batch. */
void intake_submit(struct intake *in, struct intake_msg *m);

/* The highest message id whose outcome has been reported to its session
 * (its 250 is queued), or START when none yet. */
int64_t intake_acknowledged(const struct intake *in, int64_t start);

/* Messages submitted and not yet reported back. */
size_t intake_pending(struct intake *in);

/* Statistics for the log: batches committed and messages in them. */
void intake_stats(const struct intake *in, uint64_t *batches, uint64_t *messages);

#endif
