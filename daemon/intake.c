/* intake: a writer thread owns a second SQLite connection and commits
 * whatever sessions finished while its previous commit was in progress.
 * The event loop never waits for an fsync: it keeps serving every other
 * session, and the next batch fills up meanwhile (group commit). Results
 * come back to the loop through an event made active from the thread. */
#include "intake.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct intake {
	struct event_base *base;
	struct store *st; /* used by the writer thread only */
	struct event *done_ev;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	/* guarded by mu */
	struct intake_msg *queue, **queue_tail;
	struct intake_msg *done, **done_tail;
	size_t in_flight; /* queued + being committed + done but not reported */
	int stopping;
	/* loop thread only */
	void (*after_commit)(void *);
	void *after_arg;
	uint64_t batches, messages;
	int64_t acked; /* loop thread: highest id reported, 0 = none yet */
};

static void *writer_main(void *arg);
static void report_done(evutil_socket_t fd, short what, void *arg);

struct intake *intake_new(struct event_base *base, const char *db_path,
			  void (*after_commit)(void *arg), void *after_arg, char *err,
			  size_t errlen)
{
	struct intake *in = xcalloc(1, sizeof *in);
	in->base = base;
	in->queue_tail = &in->queue;
	in->done_tail = &in->done;
	in->after_commit = after_commit;
	in->after_arg = after_arg;
	in->st = store_open(db_path, err, errlen);
	if (!in->st)
		goto fail;
	in->done_ev = event_new(base, -1, 0, report_done, in);
	if (!in->done_ev) {
		snprintf(err, errlen, "intake: cannot create event");
		goto fail;
	}
	pthread_mutex_init(&in->mu, NULL);
	pthread_cond_init(&in->cond, NULL);
	if (pthread_create(&in->thread, NULL, writer_main, in) != 0) {
		snprintf(err, errlen, "intake: cannot start the writer thread");
		pthread_mutex_destroy(&in->mu);
		pthread_cond_destroy(&in->cond);
		goto fail;
	}
	return in;
fail:
	if (in->done_ev)
		event_free(in->done_ev);
	store_close(in->st);
	free(in);
	return NULL;
}

void intake_free(struct intake *in)
{
	if (!in)
		return;
	pthread_mutex_lock(&in->mu);
	in->stopping = 1; /* the thread commits what is queued, then exits */
	pthread_cond_signal(&in->cond);
	pthread_mutex_unlock(&in->mu);
	pthread_join(in->thread, NULL);
	report_done(-1, 0, in);
	event_free(in->done_ev);
	store_close(in->st);
	pthread_mutex_destroy(&in->mu);
	pthread_cond_destroy(&in->cond);
	free(in);
}

struct intake_msg *intake_msg_new(void)
{
	return xcalloc(1, sizeof(struct intake_msg));
}

void intake_msg_add_rcpt(struct intake_msg *m, const char *rcpt, const char *list,
			 const char *kind, const char *detail)
{
	m->rcpts = xrealloc(m->rcpts, (m->n_rcpts + 1) * sizeof *m->rcpts);
	struct store_rcpt *r = &m->rcpts[m->n_rcpts++];
	r->rcpt = xstrdup(rcpt);
	r->list = xstrdup(list);
	r->kind = xstrdup(kind);
	r->detail = xstrdup(detail);
}

void intake_msg_free(struct intake_msg *m)
{
	if (!m)
		return;
	free(m->mail_from);
	free(m->helo);
	free(m->client_ip);
	for (size_t i = 0; i < m->n_rcpts; i++) {
		free((char *)m->rcpts[i].rcpt);
		free((char *)m->rcpts[i].list);
		free((char *)m->rcpts[i].kind);
		free((char *)m->rcpts[i].detail);
	}
	free(m->rcpts);
	free(m->data);
	free(m);
}

void intake_submit(struct intake *in, struct intake_msg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&in->mu);
	*in->queue_tail = m;
	in->queue_tail = &m->next;
	in->in_flight++;
	pthread_cond_signal(&in->cond);
	pthread_mutex_unlock(&in->mu);
}

size_t intake_pending(struct intake *in)
{
	pthread_mutex_lock(&in->mu);
	size_t n = in->in_flight;
	pthread_mutex_unlock(&in->mu);
	return n;
}

int64_t intake_acknowledged(const struct intake *in, int64_t start)
{
	return in->acked ? in->acked : start;
}

void intake_stats(const struct intake *in, uint64_t *batches, uint64_t *messages)
{
	*batches = in->batches;
	*messages = in->messages;
}

/* Writer thread: take everything queued, commit it in one transaction,
 * hand the batch back. Only m->data, rcpts and envelope fields are read
 * here; the loop thread touches nothing of a submitted message but
 * ->done/->arg, which only it reads. */
static void *writer_main(void *arg)
{
	struct intake *in = arg;
	pthread_mutex_lock(&in->mu);
	for (;;) {
		while (!in->queue && !in->stopping)
			pthread_cond_wait(&in->cond, &in->mu);
		if (!in->queue && in->stopping)
			break;
		struct intake_msg *batch = in->queue;
		in->queue = NULL;
		in->queue_tail = &in->queue;
		pthread_mutex_unlock(&in->mu);

		size_t n = 0;
		for (struct intake_msg *m = batch; m; m = m->next)
			n++;
		struct store_incoming *inc = xcalloc(n, sizeof *inc);
		size_t i = 0;
		for (struct intake_msg *m = batch; m; m = m->next, i++) {
			inc[i].mail_from = m->mail_from;
			inc[i].helo = m->helo;
			inc[i].client_ip = m->client_ip;
			inc[i].rcpts = m->rcpts;
			inc[i].n_rcpts = m->n_rcpts;
			inc[i].data = m->data;
			inc[i].len = m->len;
			inc[i].received = m->received;
		}
		int rc = store_accept_batch(in->st, inc, n);
		if (rc != STORE_OK)
			log_err("intake: commit of %zu message(s) failed (%d): answering 451", n, rc);
		i = 0;
		struct intake_msg *last = NULL;
		for (struct intake_msg *m = batch; m; m = m->next, i++) {
			m->result_ok = rc == STORE_OK;
			m->result_id = inc[i].id;
			last = m;
		}
		free(inc);

		pthread_mutex_lock(&in->mu);
		*in->done_tail = batch;
		in->done_tail = &last->next;
		if (rc == STORE_OK) {
			in->batches++;
			in->messages += n;
		}
		event_active(in->done_ev, 0, 0);
	}
	pthread_mutex_unlock(&in->mu);
	return NULL;
}

/* Loop thread: answer the sessions whose messages are committed. */
static void report_done(evutil_socket_t fd, short what, void *arg)
{
	struct intake *in = arg;
	pthread_mutex_lock(&in->mu);
	struct intake_msg *list = in->done;
	in->done = NULL;
	in->done_tail = &in->done;
	pthread_mutex_unlock(&in->mu);
	int any_ok = 0;
	size_t n = 0;
	for (struct intake_msg *m = list, *next; m; m = next) {
		next = m->next;
		any_ok |= m->result_ok;
		if (m->result_ok && m->result_id > in->acked)
			in->acked = m->result_id;
		if (m->done)
			m->done(m->arg, m->result_ok, m->result_id);
		intake_msg_free(m);
		n++;
	}
	pthread_mutex_lock(&in->mu);
	in->in_flight -= n;
	pthread_mutex_unlock(&in->mu);
	if (any_ok && in->after_commit)
		in->after_commit(in->after_arg);
}
