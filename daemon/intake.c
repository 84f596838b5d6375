#include "intake.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct intake {
	struct event_base *base;
	struct store *st;
	struct event *flush_ev;
	struct intake_msg *head, **tail;
	size_t n_queued;
	void (*after_commit)(void *);
	void *after_arg;
	uint64_t batches, messages;
};

static void intake_flush(evutil_socket_t fd, short what, void *arg);

struct intake *intake_new(struct event_base *base, struct store *st,
			  void (*after_commit)(void *arg), void *after_arg)
{
	struct intake *in = xcalloc(1, sizeof *in);
	in->base = base;
	in->st = st;
	in->tail = &in->head;
	in->after_commit = after_commit;
	in->after_arg = after_arg;
	in->flush_ev = event_new(base, -1, 0, intake_flush, in);
	if (!in->flush_ev) {
		log_err("intake: cannot create event");
		abort();
	}
	return in;
}

void intake_free(struct intake *in)
{
	if (!in)
		return;
	if (in->head)
		intake_flush(-1, 0, in);
	event_free(in->flush_ev);
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
	*in->tail = m;
	in->tail = &m->next;
	/* The flush runs once the loop has handled every other ready socket,
	 * so all messages finished in this turn share one transaction. */
	if (in->n_queued++ == 0)
		event_active(in->flush_ev, 0, 0);
}

size_t intake_pending(const struct intake *in)
{
	return in->n_queued;
}

void intake_stats(const struct intake *in, uint64_t *batches, uint64_t *messages)
{
	*batches = in->batches;
	*messages = in->messages;
}

static void intake_flush(evutil_socket_t fd, short what, void *arg)
{
	struct intake *in = arg;
	struct intake_msg *batch = in->head;
	size_t n = in->n_queued;
	in->head = NULL;
	in->tail = &in->head;
	in->n_queued = 0;
	if (!batch)
		return;

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
	else {
		in->batches++;
		in->messages += n;
	}
	i = 0;
	for (struct intake_msg *m = batch, *next; m; m = next, i++) {
		next = m->next;
		if (m->done)
			m->done(m->arg, rc == STORE_OK, inc[i].id);
		intake_msg_free(m);
	}
	free(inc);
	if (rc == STORE_OK && in->after_commit)
		in->after_commit(in->after_arg);
}
