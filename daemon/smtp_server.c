/* smtp_server: sessions are a switch on enum smtp_state; every state change
 * goes through session_enter() and every reply through reply(). Input is
 * measured before it is parsed: no peer can grow a buffer past a line (in
 * commands) or max_message_size (in DATA). */
#include "smtp_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtp_session.h"
#include "util.h"

static const char *const state_names[] = {"init", "ready", "mail", "rcpt", "data",
					  "commit", "tls-handshake", "closing"};

static void session_io_read(struct bufferevent *bev, void *arg);
static void session_io_write(struct bufferevent *bev, void *arg);
static void session_io_event(struct bufferevent *bev, short what, void *arg);
static void session_process(struct smtp_session *s);
static void session_free(struct smtp_session *s);
static void session_finish_close(struct smtp_session *s);
static size_t pending_output(struct smtp_session *s);

void smtp_session_enter(struct smtp_session *s, enum smtp_state st)
{
	if (s->state == st)
		return;
	log_debug("smtp %llu: %s -> %s", (unsigned long long)s->id, state_names[s->state],
		  state_names[st]);
	s->state = st;
}

static void reply_v(struct smtp_session *s, const char *fmt, va_list ap)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\r\n", 2);
}

void smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_v(s, fmt, ap);
	va_end(ap);
}

void smtp_set_timeout(struct smtp_session *s, int64_t secs)
{
	struct timeval tv = {(time_t)secs, 0};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Queue the last reply; the session is freed once it has been written. */
void smtp_session_close(struct smtp_session *s)
{
	smtp_session_enter(s, ST_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
}

void smtp_data_account(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;
	srv->data_bytes = srv->data_bytes - s->data_counted + s->data.buf.len;
	s->data_counted = s->data.buf.len;
	if (srv->data_bytes > SMTP_DATA_MEMORY_MAX && s->state == ST_DATA && !s->data.flags) {
		/* Shed this message rather than grow without bound. */
		s->data.flags |= SMTP_DATA_NO_MEMORY;
		smtp_data_free(&s->data);
		smtp_data_account(s);
	}
}

void smtp_tx_reset(struct smtp_session *s)
{
	intake_msg_free(s->tx);
	s->tx = NULL;
	s->rcpt_accepted = 0;
	smtp_data_free(&s->data);
	smtp_data_account(s);
}

/* A client mistake: answer, and end the session after too many of them so
 * a confused or hostile peer cannot keep a slot forever. */
void smtp_session_error(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	reply_v(s, fmt, ap);
	va_end(ap);
	if (++s->errors >= s->srv->cfg->max_errors) {
		log_info("smtp %llu: %s: too many errors, closing", (unsigned long long)s->id,
			 s->client_ip);
		smtp_reply(s, "421 4.7.0 %s Too many errors, closing connection", s->srv->cfg->hostname);
		smtp_session_close(s);
	}
}

void smtp_start_tls(struct smtp_session *s, SSL *ssl)
{
	struct bufferevent *tls_bev = bufferevent_openssl_filter_new(
		s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
		BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!tls_bev) {
		SSL_free(ssl);
		smtp_session_close(s);
		return;
	}
	smtp_tx_reset(s);
	s->bev = tls_bev;
	bufferevent_setcb(s->bev, session_io_read, session_io_write, session_io_event, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH_WATERMARK);
	bufferevent_setwatermark(s->bev, EV_WRITE, OUTPUT_LOW_WATERMARK, 0);
	smtp_set_timeout(s, s->srv->cfg->command_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	smtp_session_enter(s, ST_TLS_HANDSHAKE);
}

/* ---- reading ---- */

/* Take one command line from IN. Returns 1 when a line was consumed (and
 * handled), 0 when more input is needed. */
static int read_command(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
	size_t avail = evbuffer_get_length(in);
	if (lf.pos < 0) {
		if (avail > SMTP_CMD_LINE_MAX) {
			/* Measure before parsing: drop it now, answer at its end. */
			evbuffer_drain(in, avail);
			s->skipping_line = 1;
		}
		return 0;
	}
	size_t n = (size_t)lf.pos + 1;
	if (s->skipping_line || n > SMTP_CMD_LINE_MAX) {
		evbuffer_drain(in, n);
		s->skipping_line = 0;
		smtp_session_error(s, "500 5.5.2 Line too long (limit is %d octets)", SMTP_CMD_LINE_MAX);
		return 1;
	}
	char line[SMTP_CMD_LINE_MAX + 1];
	evbuffer_remove(in, line, n);
	line[n] = '\0';
	switch (smtp_check_command_line(line, n)) {
	case SMTP_LINE_OK:
		break;
	case SMTP_LINE_NUL:
		smtp_session_error(s, "500 5.5.2 NUL byte in command");
		return 1;
	case SMTP_LINE_BARE_CR:
		smtp_session_error(s, "500 5.5.2 Bare CR in command; lines must end with CRLF");
		return 1;
	case SMTP_LINE_BARE_LF:
		smtp_session_error(s, "500 5.5.2 Bare LF in command; lines must end with CRLF");
		return 1;
	case SMTP_LINE_NON_ASCII:
		smtp_session_error(s, "500 5.5.2 Invalid character in command");
		return 1;
	}
	line[n - 2] = '\0';
	smtp_command(s, line);
	return 1;
}

static void data_done(struct smtp_session *s);

/* Consume DATA input. Returns 1 when the final dot was seen. */
static int read_data(struct smtp_session *s, struct evbuffer *in)
{
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (!avail)
			return 0;
		struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
		if (lf.pos < 0) {
			/* No line end yet: keep a partial line buffered unless it is
			 * already too long to be a valid line. Keep its last byte,
			 * which may be the CR of a CRLF. */
			if (avail <= SMTP_TEXT_LINE_MAX)
				return 0;
			size_t n = avail - 1;
			const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);
			smtp_data_segment(&s->data, p, n, 0);
			evbuffer_drain(in, n);
			continue;
		}
		size_t n = (size_t)lf.pos + 1;
		const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);
		if (smtp_data_is_end(&s->data, p, n)) {
			evbuffer_drain(in, n);
			return 1;
		}
		smtp_data_segment(&s->data, p, n, 1);
		evbuffer_drain(in, n);
	}
}

static void commit_done(void *arg, int ok, int64_t id);

static void data_done(struct smtp_session *s)
{
	const struct config *cfg = s->srv->cfg;
	smtp_set_timeout(s, cfg->command_timeout);
	int f = s->data.flags;
	if (f) {
		if (f & SMTP_DATA_NO_MEMORY)
			smtp_reply(s, "452 4.3.1 Insufficient system storage, try again later");
		else if (f & SMTP_DATA_TOO_BIG)
			smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit of %lld bytes",
			      (long long)cfg->max_message_size);
		else if (f & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR))
			smtp_reply(s, "554 5.6.0 Message refused: bare CR or LF; lines must end with CRLF");
		else if (f & SMTP_DATA_NUL)
			smtp_reply(s, "554 5.6.0 Message refused: NUL byte in message");
		else
			smtp_reply(s, "554 5.6.0 Message refused: a line is longer than %d octets",
			      SMTP_TEXT_LINE_MAX);
		log_info("smtp %llu: %s: message refused (flags %d)", (unsigned long long)s->id,
			 s->client_ip, f);
		smtp_tx_reset(s);
		smtp_session_enter(s, ST_READY);
		return;
	}
	struct intake_msg *m = s->tx;
	s->tx = NULL;
	s->rcpt_accepted = 0;
	m->helo = xstrdup(s->helo);
	/* Behind an MTA that forwards its client (XFORWARD), the rate limits
	 * and the trace must see that client, not the MTA. */
	m->client_ip = xstrdup(s->fwd_ip[0] ? s->fwd_ip : s->client_ip);
	s->fwd_ip[0] = '\0';
	m->len = s->data.buf.len;
	m->data = sbuf_detach(&s->data.buf);
	/* The bytes stay in the memory budget until their commit answers. */
	s->committing_bytes = s->data_counted;
	s->data_counted = 0;
	m->received = now_epoch();
	m->done = commit_done;
	m->arg = s;
	s->pending = m;
	/* No more input until the commit answers: replies stay in order and a
	 * pipelining client cannot queue unbounded data meanwhile. */
	bufferevent_disable(s->bev, EV_READ);
	smtp_session_enter(s, ST_COMMIT);
	intake_submit(s->srv->intake, m);
}

static void commit_done(void *arg, int ok, int64_t id)
{
	struct smtp_session *s = arg;
	s->pending = NULL;
	s->srv->data_bytes -= s->committing_bytes;
	s->committing_bytes = 0;
	if (ok) {
		smtp_reply(s, "250 2.0.0 Ok: queued as %lld", (long long)id);
		log_info("smtp %llu: %s: accepted message %lld", (unsigned long long)s->id,
			 s->client_ip, (long long)id);
	} else {
		smtp_reply(s, "451 4.3.0 Temporary storage failure, try again later");
	}
	smtp_session_enter(s, ST_READY);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/* Run the state machine over whatever input is buffered. Frees S when it
 * has closed and its last reply is written: callers must not touch S after. */
static void session_process(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	for (;;) {
		switch (s->state) {
		case ST_INIT:
		case ST_READY:
		case ST_MAIL:
		case ST_RCPT:
			/* A pipelining client that does not read its replies must
			 * not make us buffer them without end: stop taking its
			 * commands until the output drains (session_io_write). */
			if (pending_output(s) > OUTPUT_HIGH_WATERMARK) {
				s->output_blocked = 1;
				bufferevent_disable(s->bev, EV_READ);
				goto out;
			}
			if (!read_command(s, in))
				goto out;
			continue;
		case ST_DATA: {
			int end = read_data(s, in);
			smtp_data_account(s);
			if (!end)
				goto out;
			data_done(s);
			smtp_data_account(s);
			continue;
		}
		case ST_COMMIT:
		case ST_TLS_HANDSHAKE:
		case ST_CLOSING:
			goto out;
		}
		log_err("smtp %llu: unknown state %d", (unsigned long long)s->id, (int)s->state);
		abort();
	}
out:
	if (s->state == ST_CLOSING)
		session_finish_close(s);
	else if (s->srv->shutting_down && s->state == ST_READY &&
		 evbuffer_get_length(in) == 0) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down", s->srv->cfg->hostname);
		smtp_session_close(s);
	}
}

/* ---- I/O callbacks: all three funnel into the state machine ---- */

static void session_io_read(struct bufferevent *bev, void *arg)
{
	session_process(arg);
}

/* A TLS filter hands its records to the socket bufferevent below it; the
 * last reply (221, 421) is only out once that one is empty too. */
static size_t pending_output(struct smtp_session *s)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	if (under)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

static void session_linger(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	if (pending_output(s) == 0 || ++s->linger_ticks > 200) {
		session_free(s);
		return;
	}
	struct timeval tv = {0, 10000};
	evtimer_add(s->linger_ev, &tv);
}

/* Free a closing session once its last reply has left. */
static void session_finish_close(struct smtp_session *s)
{
	if (pending_output(s) == 0) {
		session_free(s);
		return;
	}
	if (!bufferevent_get_underlying(s->bev))
		return; /* the write callback fires once the output drains */
	if (!s->linger_ev)
		s->linger_ev = evtimer_new(s->srv->base, session_linger, s);
	struct timeval tv = {0, 10000};
	evtimer_add(s->linger_ev, &tv);
}

static void session_io_write(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	if (s->state == ST_CLOSING) {
		session_finish_close(s);
		return;
	}
	if (s->output_blocked && pending_output(s) <= OUTPUT_LOW_WATERMARK) {
		s->output_blocked = 0;
		if (s->state != ST_COMMIT && s->state != ST_TLS_HANDSHAKE)
			bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

static void session_io_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == ST_TLS_HANDSHAKE) {
			/* RFC 3207 4.2: forget everything learnt before TLS. */
			s->tls = 1;
			s->esmtp = 0;
			s->helo[0] = '\0';
			smtp_session_enter(s, ST_INIT);
			log_info("smtp %llu: %s: TLS established", (unsigned long long)s->id,
				 s->client_ip);
			session_process(s);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == ST_CLOSING) {
			session_free(s);
			return;
		}
		log_info("smtp %llu: %s: timeout in state %s", (unsigned long long)s->id,
			 s->client_ip, state_names[s->state]);
		smtp_reply(s, "421 4.4.2 %s Timeout exceeded, closing connection", s->srv->cfg->hostname);
		smtp_tx_reset(s);
		smtp_session_close(s);
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e;
		while ((e = bufferevent_get_openssl_error(bev)))
			log_info("smtp %llu: %s: TLS error: %s", (unsigned long long)s->id,
				 s->client_ip, ERR_reason_error_string(e));
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (s->state == ST_DATA)
			log_info("smtp %llu: %s: connection lost during DATA", (unsigned long long)s->id,
				 s->client_ip);
		session_free(s);
	}
}

/* ---- sessions and listeners ---- */

static void session_free(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;
	if (s->pending)
		s->pending->done = NULL; /* the commit goes on; nobody to tell */
	srv->data_bytes -= s->committing_bytes;
	smtp_tx_reset(s);
	if (s->linger_ev)
		event_free(s->linger_ev);
	if (s->bev)
		bufferevent_free(s->bev);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->n_sessions--;
	log_debug("smtp %llu: closed", (unsigned long long)s->id);
	free(s);
	if (srv->shutting_down && srv->n_sessions == 0 && srv->shutdown_done) {
		void (*done)(void *) = srv->shutdown_done;
		srv->shutdown_done = NULL;
		done(srv->shutdown_arg);
	}
}

static void format_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  (socklen_t)len);
	else
		snprintf(buf, len, "unknown");
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int socklen, void *arg)
{
	struct smtp_server *srv = arg;
	const struct config *cfg = srv->cfg;
	char ip[INET6_ADDRSTRLEN];
	format_ip(sa, ip, sizeof ip);
	if (srv->shutting_down || srv->n_sessions >= (size_t)cfg->max_connections) {
		/* A best-effort line on a fresh socket: it fits any send buffer. */
		char msg[300];
		int n = snprintf(msg, sizeof msg, "421 4.7.0 %s Too many connections, try again later\r\n",
				 cfg->hostname);
		if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("smtp: send to refused %s: %s", ip, strerror(errno));
		log_warn("smtp: refusing %s: %zu connections (max_connections)", ip,
			 srv->n_sessions);
		evutil_closesocket(fd);
		return;
	}
	struct bufferevent *bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		evutil_closesocket(fd);
		return;
	}
	struct smtp_session *s = xcalloc(1, sizeof *s);
	s->srv = srv;
	s->bev = bev;
	s->id = ++srv->next_id;
	s->state = ST_INIT;
	snprintf(s->client_ip, sizeof s->client_ip, "%s", ip);
	s->xforward_ok = smtp_ip_listed(ip, cfg->xforward_hosts, cfg->n_xforward_hosts);
	s->next = srv->sessions;
	if (srv->sessions)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->n_sessions++;
	bufferevent_setcb(bev, session_io_read, session_io_write, session_io_event, s);
	bufferevent_setwatermark(bev, EV_READ, 0, INPUT_HIGH_WATERMARK);
	bufferevent_setwatermark(bev, EV_WRITE, OUTPUT_LOW_WATERMARK, 0);
	smtp_set_timeout(s, cfg->command_timeout);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	log_info("smtp %llu: connect from %s", (unsigned long long)s->id, ip);
	smtp_reply(s, "220 %s ESMTP dialogue", cfg->hostname);
}

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_server *srv = arg;
	if (srv->shutting_down)
		return;
	for (size_t i = 0; i < srv->n_listeners; i++)
		evconnlistener_enable(srv->listeners[i]);
}

static void on_listener_error(struct evconnlistener *l, void *arg)
{
	struct smtp_server *srv = arg;
	int err = EVUTIL_SOCKET_ERROR();
	/* EMFILE and friends: the pending connection stays in the kernel's
	 * queue, so accept() would fail again at once. Pause all listeners
	 * for a second instead of spinning (one log line per pause). */
	log_err("smtp: accept failed: %s; pausing new connections for 1s",
		evutil_socket_error_to_string(err));
	for (size_t i = 0; i < srv->n_listeners; i++)
		evconnlistener_disable(srv->listeners[i]);
	if (!srv->accept_pause)
		srv->accept_pause = evtimer_new(srv->base, resume_accepting, srv);
	struct timeval tv = {1, 0};
	evtimer_add(srv->accept_pause, &tv);
}

struct smtp_server *smtp_server_new(struct event_base *base, struct intake *in)
{
	struct smtp_server *srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->intake = in;
	return srv;
}

void smtp_server_set_config(struct smtp_server *srv, const struct config *cfg, SSL_CTX *tls)
{
	srv->cfg = cfg;
	srv->tls = tls;
}

int smtp_server_listen(struct smtp_server *srv, char *err, size_t errlen)
{
	const struct config *cfg = srv->cfg;
	for (size_t i = 0; i < cfg->n_listen; i++) {
		const struct listen_addr *la = &cfg->listen[i];
		struct addrinfo hints = {0}, *res = NULL;
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		int gai = getaddrinfo(la->host, la->port, &hints, &res);
		if (gai) {
			snprintf(err, errlen, "listen %s:%s: %s", la->host, la->port, gai_strerror(gai));
			return -1;
		}
		struct evconnlistener *l = evconnlistener_new_bind(
			srv->base, on_accept, srv,
			LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511,
			res->ai_addr, (int)res->ai_addrlen);
		int e = errno;
		freeaddrinfo(res);
		if (!l) {
			snprintf(err, errlen, "listen %s:%s: %s", la->host, la->port, strerror(e));
			return -1;
		}
		evconnlistener_set_error_cb(l, on_listener_error);
		srv->listeners = xrealloc(srv->listeners,
					  (srv->n_listeners + 1) * sizeof *srv->listeners);
		srv->listeners[srv->n_listeners++] = l;
		log_info("smtp: listening on %s:%s", la->host, la->port);
	}
	return 0;
}

static void shutdown_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_server *srv = arg;
	log_info("smtp: grace period over, closing %zu session(s)", srv->n_sessions);
	for (struct smtp_session *s = srv->sessions, *next; s; s = next) {
		next = s->next;
		if (s->state == ST_COMMIT)
			continue; /* its commit answers within this loop turn */
		session_free(s);
	}
}

void smtp_server_shutdown(struct smtp_server *srv, int grace, void (*done)(void *), void *arg)
{
	srv->shutting_down = 1;
	srv->shutdown_done = done;
	srv->shutdown_arg = arg;
	for (size_t i = 0; i < srv->n_listeners; i++)
		evconnlistener_disable(srv->listeners[i]);
	for (struct smtp_session *s = srv->sessions, *next; s; s = next) {
		next = s->next;
		switch (s->state) {
		case ST_DATA:
		case ST_COMMIT:
		case ST_TLS_HANDSHAKE:
		case ST_CLOSING:
			break; /* let it finish */
		case ST_INIT:
		case ST_READY:
		case ST_MAIL:
		case ST_RCPT:
			smtp_reply(s, "421 4.3.2 %s Service shutting down", srv->cfg->hostname);
			smtp_tx_reset(s);
			smtp_session_close(s);
			break;
		}
	}
	if (srv->n_sessions == 0) {
		srv->shutdown_done = NULL;
		done(arg);
		return;
	}
	struct timeval tv = {grace, 0};
	srv->shutdown_timer = evtimer_new(srv->base, shutdown_deadline, srv);
	evtimer_add(srv->shutdown_timer, &tv);
}

size_t smtp_server_sessions(const struct smtp_server *srv)
{
	return srv->n_sessions;
}

void smtp_server_free(struct smtp_server *srv)
{
	if (!srv)
		return;
	while (srv->sessions)
		session_free(srv->sessions);
	for (size_t i = 0; i < srv->n_listeners; i++)
		evconnlistener_free(srv->listeners[i]);
	free(srv->listeners);
	if (srv->shutdown_timer)
		event_free(srv->shutdown_timer);
	if (srv->accept_pause)
		event_free(srv->accept_pause);
	free(srv);
}
