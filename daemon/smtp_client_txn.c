/* smtp_client_txn: the transactions on one relay connection. With
 * PIPELINING a transaction is one write (RSET, MAIL, RCPTs, DATA), the
 * message a second one, and the next transaction's commands follow its
 * final dot (RFC 2920); without it, one command per round trip. Replies
 * belong to the oldest job in flight (conn->fly.head). */
#include "smtp_client_conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>

static size_t next_valid(const struct smtp_client_txn *t, size_t i)
{
	while (i < t->n_rcpts && !sc_path_ok(t->rcpts[i], 0))
		i++;
	return i;
}

static int addrs_8bit(const struct smtp_client_txn *t)
{
	for (const char *p = t->mail_from; *p; p++)
		if ((unsigned char)*p & 0x80)
			return 1;
	for (size_t i = 0; i < t->n_rcpts; i++)
		for (const char *p = t->rcpts[i]; p && *p; p++)
			if ((unsigned char)*p & 0x80)
				return 1;
	return 0;
}

static uint64_t message_size(const struct smtp_client_txn *t)
{
	return (uint64_t)t->head_len + (t->body ? t->body->len : 0) + 5;
}

static void send_mail(struct sc_conn *conn, struct sc_job *j)
{
	const struct smtp_client_txn *t = j->t;
	struct evbuffer *out = bufferevent_get_output(conn->bev);
	evbuffer_add_printf(out, "MAIL FROM:<%s>", t->mail_from);
	if (conn->size_ext)
		evbuffer_add_printf(out, " SIZE=%llu", (unsigned long long)message_size(t));
	if (conn->eightbitmime && sc_job_8bit(conn->c, j))
		evbuffer_add(out, " BODY=8BITMIME", 14);
	if (conn->smtputf8 && addrs_8bit(t))
		evbuffer_add(out, " SMTPUTF8", 9);
	evbuffer_add(out, "\r\n", 2);
	j->mail_sent = 1;
}

static void send_rcpt(struct sc_conn *conn, struct sc_job *j)
{
	j->send_i = next_valid(j->t, j->send_i);
	sc_conn_printf(conn, "RCPT TO:<%s>\r\n", j->t->rcpts[j->send_i]);
	j->send_i++;
	j->rcpts_sent++;
}

static void start_job(struct sc_conn *conn, struct sc_job *j)
{
	const struct smtp_client_txn *t = j->t;
	if (conn->size_max && message_size(t) > conn->size_max) {
		sc_job_finish(conn->c, j, 552,
			      "5.3.4 message exceeds the relay's size limit (not sent)");
		return;
	}
	if (conn->state == SC_IDLE && conn->need_rset) {
		sc_conn_printf(conn, "RSET\r\n");
		j->rset = 1;
		conn->need_rset = 0;
	}
	if (conn->pipelining) {
		send_mail(conn, j);
		while (j->rcpts_sent < j->n_valid)
			send_rcpt(conn, j);
		sc_conn_printf(conn, "DATA\r\n");
		j->data_cmd = 1;
	} else if (!j->rset) {
		send_mail(conn, j);
	}
	sc_jobq_push(&conn->fly, j);
	if (conn->state == SC_IDLE)
		sc_conn_enter(conn, j->rset ? SC_RSET : SC_MAIL);
}

void sc_conn_pump(struct sc_conn *conn)
{
	if (!conn->bev)
		return;
	while (conn->queue.head) {
		if (conn->state == SC_IDLE) {
			/* start it */
		} else if (conn->pipelining && conn->fly.tail && conn->fly.tail->data_sent) {
			/* RFC 2920: commands may follow the final dot */
		} else {
			break;
		}
		start_job(conn, sc_jobq_pop(&conn->queue));
	}
	if (conn->state == SC_IDLE && !conn->fly.head)
		sc_conn_wants_work(conn);
}

static void body_release(const void *data, size_t len, void *arg)
{
	smtp_body_unref(arg);
}

static void write_message(struct sc_conn *conn, struct sc_job *j)
{
	const struct smtp_client_txn *t = j->t;
	struct evbuffer *out = bufferevent_get_output(conn->bev);
	struct smtp_body *b = t->body;
	char last[2] = {0, 0};
	if (t->head_len) {
		evbuffer_add(out, t->head, t->head_len);
		last[1] = t->head[t->head_len - 1];
		last[0] = t->head_len > 1 ? t->head[t->head_len - 2] : 0;
	}
	if (b && b->len) {
		smtp_body_ref(b);
		if (evbuffer_add_reference(out, b->data, b->len, body_release, b) < 0) {
			smtp_body_unref(b);
			evbuffer_add(out, b->data, b->len);
		}
		last[0] = b->len > 1 ? b->data[b->len - 2] : last[1];
		last[1] = b->data[b->len - 1];
	}
	/* The dot must start a line even when the caller's text did not end one. */
	if ((t->head_len || (b && b->len)) && (last[0] != '\r' || last[1] != '\n'))
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
}

/* No recipient was accepted: the transaction's result is the first
 * temporary refusal (worth a retry), else the first refusal. */
static void decide_no_rcpt(struct sc_job *j)
{
	struct smtp_client_txn *t = j->t;
	struct smtp_result *pick = NULL;
	for (size_t i = 0; i < t->n_rcpts && !pick; i++)
		if (t->rcpt_results[i].code >= 0 && t->rcpt_results[i].code < 500)
			pick = &t->rcpt_results[i];
	for (size_t i = 0; i < t->n_rcpts && !pick; i++)
		if (t->rcpt_results[i].code >= 500)
			pick = &t->rcpt_results[i];
	if (pick)
		sc_result_set(&t->result, pick->code, pick->text);
	else
		sc_result_set(&t->result, 554, "5.5.1 no recipient accepted");
	j->decided = 1;
}

static void decide(struct sc_job *j, int code, const char *text)
{
	sc_result_set(&j->t->result, code, text);
	j->decided = 1;
}

/* The oldest job in flight has its outcome: finish it, go on with the next. */
static void job_done(struct sc_conn *conn, struct sc_job *j)
{
	sc_jobq_pop(&conn->fly);
	if (j->t->result.code / 100 != 2 && !conn->fly.head)
		conn->need_rset = 1;
	sc_job_finish(conn->c, j, 0, NULL);
	if (conn->fly.head) {
		sc_conn_enter(conn, conn->fly.head->rset ? SC_RSET : SC_MAIL);
		return;
	}
	sc_conn_enter(conn, SC_IDLE);
	sc_conn_pump(conn);
}

void sc_txn_reply(struct sc_conn *conn, int code, const char *text)
{
	struct sc_job *j = conn->fly.head;
	struct smtp_client_txn *t = j->t;
	if (code == 421) {
		/* The relay is closing; the reply is the outcome of this job. */
		if (!j->decided)
			decide(j, 421, text);
		sc_jobq_pop(&conn->fly);
		sc_job_finish(conn->c, j, 0, NULL);
		log_warn("smtp client: relay %s: 421 %s", conn->peer, text);
		sc_conn_close(conn, 421, text, conn->established);
		return;
	}
	switch (conn->state) {
	case SC_RSET:
		if (code / 100 != 2) {
			sc_conn_fail(conn, 0, "relay %s refused RSET: %d %s", conn->peer, code,
				     text);
			return;
		}
		j->rset = 0;
		if (!j->mail_sent)
			send_mail(conn, j);
		sc_conn_enter(conn, SC_MAIL);
		return;
	case SC_MAIL:
		if (code / 100 == 2)
			conn->established = 1;
		else
			decide(j, code, text);
		if (j->decided && !j->rcpts_sent) {
			job_done(conn, j);
			return;
		}
		j->reply_i = next_valid(t, 0);
		if (!j->rcpts_sent)
			send_rcpt(conn, j);
		sc_conn_enter(conn, SC_RCPT);
		return;
	case SC_RCPT:
		if (!j->decided) {
			sc_result_set(&t->rcpt_results[j->reply_i], code, text);
			if (code / 100 == 2)
				j->accepted++;
		}
		j->reply_i = next_valid(t, j->reply_i + 1);
		if (++j->rcpts_replied < j->rcpts_sent)
			return;
		if (!j->decided && j->rcpts_sent < j->n_valid) {
			send_rcpt(conn, j);
			return;
		}
		if (j->data_cmd) {
			sc_conn_enter(conn, SC_DATA);
			return;
		}
		if (!j->accepted) {
			decide_no_rcpt(j);
			job_done(conn, j);
			return;
		}
		sc_conn_printf(conn, "DATA\r\n");
		j->data_cmd = 1;
		sc_conn_enter(conn, SC_DATA);
		return;
	case SC_DATA:
		if (code == 354) {
			if (!j->decided && j->accepted) {
				write_message(conn, j);
			} else {
				/* RFC 2920 3.1: nobody to send to, but the relay
				 * wants data; an empty message ends it. */
				evbuffer_add(bufferevent_get_output(conn->bev), ".\r\n", 3);
				if (!j->decided)
					decide_no_rcpt(j);
			}
			j->data_sent = 1;
			sc_conn_enter(conn, SC_DOT);
			sc_conn_pump(conn);
			return;
		}
		if (!j->decided) {
			if (j->accepted)
				decide(j, code, text);
			else
				decide_no_rcpt(j);
		}
		job_done(conn, j);
		return;
	case SC_DOT:
		if (!j->decided)
			decide(j, code, text);
		job_done(conn, j);
		return;
	case SC_CONNECTING:
	case SC_GREETING:
	case SC_EHLO:
	case SC_HELO:
	case SC_STARTTLS:
	case SC_HANDSHAKE:
	case SC_IDLE:
	case SC_QUIT:
		break;
	}
	log_err("smtp client %llu: transaction reply in state %s", (unsigned long long)conn->id,
		sc_state_name(conn->state));
	abort();
}
