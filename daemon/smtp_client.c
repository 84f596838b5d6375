/* smtp_client: the pool. Jobs are assigned to a connection when they are
 * submitted (an idle one, a new one while under the limit, else the least
 * loaded); a connection that runs dry takes queued work from a busier one.
 * Every done() goes through one deferred event, so it never runs inside
 * smtp_client_submit and a done() may submit again. The protocol of one
 * connection is in smtp_client_conn.c. */
#include "smtp_client.h"

#include <event2/event.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_client_conn.h"
#include "util.h"

/* ---- bodies and dot-stuffing ---- */

struct smtp_body *smtp_body_new(char *data, size_t len)
{
	struct smtp_body *b = xmalloc(sizeof *b);
	b->refs = 1;
	b->data = data;
	b->len = len;
	return b;
}

void smtp_body_ref(struct smtp_body *b)
{
	b->refs++;
}

void smtp_body_unref(struct smtp_body *b)
{
	if (!b || --b->refs > 0)
		return;
	free(b->data);
	free(b);
}

char *smtp_dot_stuff(const char *raw, size_t len, size_t *out_len)
{
	/* A line of k octets and a 1-2 octet end grows to at most k + 3
	 * (dot, CRLF), and only when k >= 1: never past twice its size. */
	char *out = xmalloc(2 * len + 3);
	size_t o = 0;
	int bol = 1;
	for (size_t i = 0; i < len; i++) {
		char ch = raw[i];
		if (bol && ch == '.')
			out[o++] = '.';
		bol = 0;
		if (ch == '\r' || ch == '\n') {
			if (ch == '\r' && i + 1 < len && raw[i + 1] == '\n')
				i++;
			out[o++] = '\r';
			out[o++] = '\n';
			bol = 1;
			continue;
		}
		out[o++] = ch;
	}
	if (!bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o] = '\0';
	*out_len = o;
	return xrealloc(out, o + 1);
}

/* ---- job queues and results ---- */

void sc_jobq_push(struct sc_jobq *q, struct sc_job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
}

struct sc_job *sc_jobq_pop(struct sc_jobq *q)
{
	struct sc_job *j = q->head;
	if (!j)
		return NULL;
	q->head = j->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	j->next = NULL;
	return j;
}

void sc_result_set(struct smtp_result *r, int code, const char *text)
{
	char *copy = xstrdup(text ? text : "");
	free(r->text);
	r->code = code;
	r->text = copy;
}

int sc_path_ok(const char *p, int sender)
{
	if (!p)
		return 0;
	size_t n = strlen(p);
	if (n == 0)
		return sender;
	if (n > SC_PATH_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		/* Control characters would let an address end the command. */
		if (ch < 0x20 || ch == 0x7f)
			return 0;
	}
	return 1;
}

static int has_8bit(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] & 0x80)
			return 1;
	return 0;
}

int sc_job_8bit(struct smtp_client *c, const struct sc_job *j)
{
	const struct smtp_client_txn *t = j->t;
	if (t->head_len && has_8bit(t->head, t->head_len))
		return 1;
	struct smtp_body *b = t->body;
	if (!b)
		return 0;
	/* The copies of one post come in a row: scan its body once. The
	 * reference we keep stops the address from being reused meanwhile. */
	if (b != c->scan_body) {
		smtp_body_unref(c->scan_body);
		smtp_body_ref(b);
		c->scan_body = b;
		c->scan_8bit = has_8bit(b->data, b->len);
	}
	return c->scan_8bit;
}

static void deliver(evutil_socket_t fd, short what, void *arg);

static void free_dead(struct smtp_client *c)
{
	while (c->dead) {
		struct sc_conn *conn = c->dead;
		c->dead = conn->next;
		sc_conn_free(conn);
	}
}

void sc_job_finish(struct smtp_client *c, struct sc_job *j, int code, const char *text)
{
	struct smtp_client_txn *t = j->t;
	if (!j->decided) {
		sc_result_set(&t->result, code, text);
		j->decided = 1;
	}
	/* Unanswered and accepted recipients share the transaction's fate;
	 * refused ones keep their own reply. */
	for (size_t i = 0; i < t->n_rcpts; i++) {
		struct smtp_result *r = &t->rcpt_results[i];
		if (r->code < 0 || (r->code >= 200 && r->code < 300))
			sc_result_set(r, t->result.code, t->result.text);
	}
	log_debug("smtp client: transaction from <%s> (%zu recipient(s)): %d %s", t->mail_from,
		  t->n_rcpts, t->result.code, t->result.text);
	sc_jobq_push(&c->done, j);
	if (!c->freeing)
		event_active(c->done_ev, EV_READ, 0);
}

static void client_destroy(struct smtp_client *c);

/* Call done() for the jobs finished before this call: a done() that
 * submits a job failing at once does not loop here; that one goes on the
 * next turn. A done() may even free the client: then what is left is
 * delivered by smtp_client_free and the outermost call here frees C. */
static void deliver_jobs(struct smtp_client *c)
{
	size_t n = c->done.n;
	c->delivering++;
	while (n-- && !c->free_later) {
		struct sc_job *j = sc_jobq_pop(&c->done);
		if (!j)
			break;
		struct smtp_client_txn *t = j->t;
		smtp_body_unref(t->body);
		free(j);
		c->busy--;
		c->n_txns++;
		t->done(t, t->arg);
	}
	if (--c->delivering == 0 && c->free_later)
		client_destroy(c);
}

static void deliver(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	free_dead(c);
	deliver_jobs(c);
}

/* ---- assignment ---- */

/* Connections saying QUIT take no more work and do not count. */
static int conn_live(const struct sc_conn *conn)
{
	return conn->state != SC_QUIT;
}

void sc_assign(struct smtp_client *c, struct sc_job *j)
{
	if (c->freeing || c->draining) {
		sc_job_finish(c, j, 0, "shutting down");
		return;
	}
	struct sc_conn *best = NULL;
	for (struct sc_conn *conn = c->conns; conn; conn = conn->next) {
		if (conn_live(conn) && conn->state == SC_IDLE && !conn->queue.n && !conn->fly.n) {
			best = conn;
			break;
		}
	}
	if (!best && c->n_conns < c->max_conns)
		best = sc_conn_new(c);
	if (!best) {
		size_t load = (size_t)-1;
		for (struct sc_conn *conn = c->conns; conn; conn = conn->next) {
			if (!conn_live(conn))
				continue;
			size_t l = conn->queue.n + conn->fly.n;
			if (l < load) {
				load = l;
				best = conn;
			}
		}
	}
	if (!best) /* every connection is saying QUIT */
		best = sc_conn_new(c);
	sc_jobq_push(&best->queue, j);
	sc_conn_pump(best);
}

void sc_conn_wants_work(struct sc_conn *conn)
{
	struct smtp_client *c = conn->c;
	struct sc_conn *victim = NULL;
	if (c->draining)
		return;
	for (struct sc_conn *o = c->conns; o; o = o->next)
		if (o != conn && conn_live(o) && o->queue.n &&
		    (!victim || o->queue.n > victim->queue.n))
			victim = o;
	if (!victim)
		return;
	sc_jobq_push(&conn->queue, sc_jobq_pop(&victim->queue));
	sc_conn_pump(conn);
}

struct timeval sc_timeout(const struct smtp_client *c, enum sc_state st)
{
	struct timeval tv = {0, 0};
	if (st == SC_IDLE) {
		if (c->idle_timeout > 0)
			tv.tv_sec = (time_t)c->idle_timeout;
		else
			tv.tv_usec = 1000; /* QUIT as soon as nothing else happens */
		return tv;
	}
	if (c->scale_ms > 0) {
		tv.tv_sec = (time_t)(c->scale_ms / 1000);
		tv.tv_usec = (suseconds_t)(c->scale_ms % 1000) * 1000;
		return tv;
	}
	switch (st) {
	case SC_CONNECTING:
		tv.tv_sec = 60; /* not in RFC 5321; a relay is near */
		break;
	case SC_DATA:
		tv.tv_sec = 2 * 60;
		break;
	case SC_DOT:
		tv.tv_sec = 10 * 60;
		break;
	case SC_IDLE: /* handled above */
	case SC_GREETING:
	case SC_EHLO:
	case SC_HELO:
	case SC_STARTTLS:
	case SC_HANDSHAKE:
	case SC_RSET:
	case SC_MAIL:
	case SC_RCPT:
	case SC_QUIT:
		tv.tv_sec = 5 * 60;
		break;
	}
	return tv;
}

/* ---- the public interface ---- */

static int helo_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 255)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

struct smtp_client *smtp_client_new(struct event_base *base, const struct smtp_client_opts *o)
{
	struct smtp_client *c = xcalloc(1, sizeof *c);
	c->base = base;
	c->host = xstrdup(o->host && *o->host ? o->host : "127.0.0.1");
	c->port = xstrdup(o->port && *o->port ? o->port : "25");
	c->helo = xstrdup(helo_ok(o->helo) ? o->helo : "localhost");
	c->tls = o->tls;
	c->max_conns = o->connections > 0 ? (size_t)o->connections : 1;
	c->idle_timeout = o->idle_timeout;
	c->scale_ms = o->timeout_scale_ms;
	c->done_ev = event_new(base, -1, 0, deliver, c);
	if (!c->done_ev) {
		log_err("smtp client: cannot create an event");
		abort();
	}
	return c;
}

void smtp_client_submit(struct smtp_client *c, struct smtp_client_txn *t)
{
	struct sc_job *j = xcalloc(1, sizeof *j);
	j->t = t;
	t->next = NULL;
	t->result.code = -1;
	t->result.text = NULL;
	t->rcpt_results = xcalloc(t->n_rcpts ? t->n_rcpts : 1, sizeof *t->rcpt_results);
	for (size_t i = 0; i < t->n_rcpts; i++)
		t->rcpt_results[i].code = -1;
	if (t->body)
		smtp_body_ref(t->body);
	c->busy++;

	if (c->freeing) {
		sc_job_finish(c, j, 0, "shutting down");
		return;
	}
	if (!sc_path_ok(t->mail_from, 1)) {
		sc_job_finish(c, j, 553, "5.1.7 invalid sender address (not sent to the relay)");
		return;
	}
	for (size_t i = 0; i < t->n_rcpts; i++) {
		if (sc_path_ok(t->rcpts[i], 0))
			j->n_valid++;
		else
			sc_result_set(&t->rcpt_results[i], 553,
				      "5.1.3 invalid recipient address (not sent to the relay)");
	}
	if (!j->n_valid) {
		if (t->n_rcpts)
			sc_job_finish(c, j, 553, "5.1.3 no valid recipient address");
		else
			sc_job_finish(c, j, 554, "5.5.1 no recipients");
		return;
	}
	sc_assign(c, j);
}

size_t smtp_client_busy(const struct smtp_client *c)
{
	return c->busy;
}

void smtp_client_txn_clear(struct smtp_client_txn *t)
{
	if (t->rcpt_results) {
		for (size_t i = 0; i < t->n_rcpts; i++)
			free(t->rcpt_results[i].text);
		free(t->rcpt_results);
		t->rcpt_results = NULL;
	}
	free(t->result.text);
	t->result.text = NULL;
	t->result.code = 0;
}

void smtp_client_stats(const struct smtp_client *c, uint64_t *txns, uint64_t *connects)
{
	if (txns)
		*txns = c->n_txns;
	if (connects)
		*connects = c->n_connects;
}

static void client_destroy(struct smtp_client *c)
{
	event_free(c->done_ev);
	if (c->ssl_ctx)
		SSL_CTX_free(c->ssl_ctx);
	if (c->ai)
		freeaddrinfo(c->ai);
	smtp_body_unref(c->scan_body);
	free(c->host);
	free(c->port);
	free(c->helo);
	free(c);
}

void smtp_client_drain(struct smtp_client *c)
{
	c->draining = 1;
	for (struct sc_conn *conn = c->conns; conn; conn = conn->next) {
		struct sc_job *j;
		while ((j = sc_jobq_pop(&conn->queue)))
			sc_job_finish(c, j, 0, "shutting down");
	}
}

void smtp_client_free(struct smtp_client *c)
{
	if (!c || c->freeing)
		return;
	c->freeing = 1;
	while (c->conns) {
		struct sc_conn *conn = c->conns;
		c->conns = conn->next;
		if (c->conns)
			c->conns->prev = NULL;
		sc_conn_shutdown(conn, "shutting down");
	}
	free_dead(c);
	/* A done() may submit again; those fail at once and land here too. */
	while (c->done.head)
		deliver_jobs(c);
	if (c->delivering) {
		c->free_later = 1; /* called from a done(): the caller frees C */
		return;
	}
	client_destroy(c);
}
