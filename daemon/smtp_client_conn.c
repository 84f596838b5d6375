/* smtp_client_conn: one connection to the relay: connect, greeting,
 * EHLO/HELO, STARTTLS, reading replies, timeouts and failures. A switch on
 * enum sc_state (what reply we wait for); every change goes through
 * sc_conn_enter(). Transactions are in smtp_client_txn.c. A connection
 * closed inside its own callback is parked on c->dead and freed on the
 * next turn of the loop. */
#include "smtp_client_conn.h"
#include "smtp_parse.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const state_names[] = {"connecting", "greeting", "ehlo", "helo", "starttls",
					  "handshake",  "idle",     "rset", "mail", "rcpt",
					  "data",       "dot",      "quit"};

/* What a timeout or a lost connection interrupted, for the failure text. */
static const char *const state_waits[] = {"connecting",
					  "the greeting",
					  "the reply to EHLO",
					  "the reply to HELO",
					  "the reply to STARTTLS",
					  "the TLS handshake",
					  "work",
					  "the reply to RSET",
					  "the reply to MAIL FROM",
					  "the reply to RCPT TO",
					  "the reply to DATA",
					  "the reply to the end of data",
					  "the reply to QUIT"};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_connect(struct sc_conn *conn);

const char *sc_state_name(enum sc_state st)
{
	return state_names[st];
}

void sc_conn_enter(struct sc_conn *conn, enum sc_state st)
{
	if (conn->state == st)
		return;
	log_debug("smtp client %llu: %s -> %s", (unsigned long long)conn->id,
		  state_names[conn->state], state_names[st]);
	conn->state = st;
	if (conn->bev) {
		struct timeval rd = sc_timeout(conn->c, st);
		/* RFC 5321 4.5.3.2.5: each data block within 3 minutes. */
		struct timeval wr = sc_timeout(conn->c, SC_MAIL);
		if (!conn->c->scale_ms)
			wr.tv_sec = 3 * 60;
		bufferevent_set_timeouts(conn->bev, &rd, &wr);
	}
}

void sc_conn_printf(struct sc_conn *conn, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(conn->bev), fmt, ap);
	va_end(ap);
}

void sc_conn_close(struct sc_conn *conn, int code, const char *text, int requeue)
{
	struct smtp_client *c = conn->c;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		c->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	if (conn->state != SC_QUIT)
		c->n_conns--;
	conn->prev = NULL;
	conn->next = c->dead;
	c->dead = conn;
	event_active(c->done_ev, EV_READ, 0);
	if (conn->bev) {
		bufferevent_free(conn->bev);
		conn->bev = NULL;
	}
	if (conn->ev) {
		event_free(conn->ev);
		conn->ev = NULL;
	}
	if (conn->fd >= 0) {
		close(conn->fd);
		conn->fd = -1;
	}
	log_debug("smtp client %llu: closed", (unsigned long long)conn->id);
	struct sc_job *j;
	while ((j = sc_jobq_pop(&conn->fly)))
		sc_job_finish(c, j, code, text);
	while ((j = sc_jobq_pop(&conn->queue))) {
		if (requeue)
			sc_assign(c, j);
		else
			sc_job_finish(c, j, code, text);
	}
}

/* Queued jobs fail too unless the relay had accepted a MAIL here: then
 * the failure is about this connection, not the relay, and they move on.
 * Each such round costs at least the job that was in flight. */
void sc_conn_fail(struct sc_conn *conn, int code, const char *fmt, ...)
{
	char text[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	log_warn("smtp client: %s", text);
	sc_conn_close(conn, code, text, conn->established);
}

/* ---- connecting ---- */

static void conn_start_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sc_conn *conn = arg;
	struct smtp_client *c = conn->c;
	if (!c->ai) {
		/* Resolved once per client: the relay is near and rarely moves. */
		struct addrinfo hints = {0};
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_ADDRCONFIG;
		int gai = getaddrinfo(c->host, c->port, &hints, &c->ai);
		if (gai) {
			c->ai = NULL;
			sc_conn_fail(conn, 0, "connect to %s: %s", conn->peer,
				     gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
			return;
		}
	}
	conn->ai = c->ai;
	conn_connect(conn);
}

struct sc_conn *sc_conn_new(struct smtp_client *c)
{
	struct sc_conn *conn = xcalloc(1, sizeof *conn);
	conn->c = c;
	conn->id = ++c->next_id;
	conn->state = SC_CONNECTING;
	conn->fd = -1;
	snprintf(conn->peer, sizeof conn->peer, "%s:%s", c->host, c->port);
	/* Connect from the loop: no DNS and no failure inside submit. */
	conn->ev = evtimer_new(c->base, conn_start_cb, conn);
	if (!conn->ev) {
		log_err("smtp client: cannot create an event");
		abort();
	}
	struct timeval now = {0, 0};
	evtimer_add(conn->ev, &now);
	conn->next = c->conns;
	if (c->conns)
		c->conns->prev = conn;
	c->conns = conn;
	c->n_conns++;
	return conn;
}

static void conn_connected(struct sc_conn *conn)
{
	struct smtp_client *c = conn->c;
	event_free(conn->ev);
	conn->ev = NULL;
	conn->bev = bufferevent_socket_new(c->base, conn->fd, BEV_OPT_CLOSE_ON_FREE);
	if (!conn->bev) {
		sc_conn_fail(conn, 0, "connect to %s: cannot create a bufferevent", conn->peer);
		return;
	}
	conn->fd = -1;
	c->n_connects++;
	bufferevent_setcb(conn->bev, conn_read_cb, NULL, conn_event_cb, conn);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
	log_debug("smtp client %llu: connected to %s", (unsigned long long)conn->id, conn->peer);
	sc_conn_enter(conn, SC_GREETING);
}

static void conn_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sc_conn *conn = arg;
	int err = ETIMEDOUT;
	if (!(what & EV_TIMEOUT)) {
		socklen_t len = sizeof err;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (!err) {
			conn_connected(conn);
			return;
		}
	}
	snprintf(conn->err, sizeof conn->err, "connect to %s: %s", conn->peer, strerror(err));
	close(conn->fd);
	conn->fd = -1;
	conn->ai = conn->ai->ai_next;
	if (!conn->ai) {
		sc_conn_fail(conn, 0, "%s", conn->err);
		return;
	}
	conn_connect(conn);
}

static void format_peer(struct sc_conn *conn, const struct addrinfo *ai)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, serv, sizeof serv,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(conn->peer, sizeof conn->peer, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, serv);
}

/* Try the addresses from conn->ai on; the last error fails the connection. */
static void conn_connect(struct sc_conn *conn)
{
	struct smtp_client *c = conn->c;
	for (; conn->ai; conn->ai = conn->ai->ai_next) {
		struct addrinfo *ai = conn->ai;
		format_peer(conn, ai);
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(conn->err, sizeof conn->err, "connect to %s: %s", conn->peer,
				 strerror(errno));
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		conn->fd = fd;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			conn_connected(conn);
			return;
		}
		if (errno == EINPROGRESS) {
			event_free(conn->ev);
			conn->ev = event_new(c->base, fd, EV_WRITE, conn_connect_cb, conn);
			if (!conn->ev) {
				log_err("smtp client: cannot create an event");
				abort();
			}
			struct timeval tv = sc_timeout(c, SC_CONNECTING);
			event_add(conn->ev, &tv);
			return;
		}
		snprintf(conn->err, sizeof conn->err, "connect to %s: %s", conn->peer,
			 strerror(errno));
		close(fd);
		conn->fd = -1;
	}
	sc_conn_fail(conn, 0, "%s", conn->err[0] ? conn->err : "connect: no address");
}

/* ---- TLS ---- */

static SSL_CTX *tls_ctx(struct smtp_client *c)
{
	if (c->ssl_ctx)
		return c->ssl_ctx;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (c->tls == RELAY_TLS_REQUIRED) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			log_warn("smtp client: cannot load the system's CA certificates");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		/* Opportunistic TLS: any encryption beats none (RFC 7435). */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	ERR_clear_error();
	c->ssl_ctx = ctx;
	return ctx;
}

static int is_ip_literal(const char *host)
{
	struct in6_addr a;
	return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
}

static void conn_ready(struct sc_conn *conn);

/* STARTTLS did not work out. Required: the connection and its jobs fail.
 * Opportunistic: remember it, so later connections go without TLS, and
 * hand the jobs (none has started) back to the pool. */
static void tls_failed(struct sc_conn *conn, const char *why)
{
	struct smtp_client *c = conn->c;
	if (c->tls == RELAY_TLS_REQUIRED) {
		sc_conn_fail(conn, 0, "TLS with relay %s failed: %s ([delivery] tls = required)",
			     conn->peer, why);
		return;
	}
	c->tls_broken = 1;
	log_warn("smtp client: TLS with relay %s failed: %s; later connections go without TLS",
		 conn->peer, why);
	sc_conn_close(conn, 0, why, 1);
}

static void start_tls(struct sc_conn *conn)
{
	struct smtp_client *c = conn->c;
	SSL_CTX *ctx = tls_ctx(c);
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	if (!ssl) {
		ERR_clear_error();
		tls_failed(conn, "cannot create a TLS context");
		return;
	}
	if (!is_ip_literal(c->host))
		SSL_set_tlsext_host_name(ssl, c->host);
	if (c->tls == RELAY_TLS_REQUIRED && SSL_set1_host(ssl, c->host) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		tls_failed(conn, "cannot set the host name to verify");
		return;
	}
	/* The socket's own timeouts would fire under the filter. */
	bufferevent_set_timeouts(conn->bev, NULL, NULL);
	struct bufferevent *f = bufferevent_openssl_filter_new(
	    c->base, conn->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (!f) {
		/* Only out of memory; the socket's state is unknown now. */
		log_err("smtp client: cannot create a TLS bufferevent");
		abort();
	}
	conn->bev = f;
	bufferevent_setcb(f, conn_read_cb, NULL, conn_event_cb, conn);
	bufferevent_enable(f, EV_READ | EV_WRITE);
	sc_conn_enter(conn, SC_HANDSHAKE);
}

static void tls_error_text(struct sc_conn *conn, short what, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
	/* Unverified (opportunistic) sessions have a result too: ignore it. */
	long vr =
	    ssl && conn->c->tls == RELAY_TLS_REQUIRED ? SSL_get_verify_result(ssl) : X509_V_OK;
	unsigned long e, first = 0;
	while ((e = bufferevent_get_openssl_error(conn->bev)))
		if (!first)
			first = e;
	int sock_err = EVUTIL_SOCKET_ERROR();
	if (vr != X509_V_OK) {
		snprintf(buf, len, "certificate verification failed: %s",
			 X509_verify_cert_error_string(vr));
	} else if (first) {
		char tmp[256];
		ERR_error_string_n(first, tmp, sizeof tmp);
		snprintf(buf, len, "%s", tmp);
	} else if (what & BEV_EVENT_TIMEOUT) {
		snprintf(buf, len, "timed out in the handshake");
	} else if (what & BEV_EVENT_EOF) {
		snprintf(buf, len, "connection closed in the handshake");
	} else {
		snprintf(buf, len, "handshake failed: %s",
			 sock_err ? evutil_socket_error_to_string(sock_err) : "unknown error");
	}
	ERR_clear_error();
}

/* ---- greeting ---- */

static void send_ehlo(struct sc_conn *conn)
{
	conn->esmtp = conn->pipelining = conn->starttls = conn->eightbitmime = 0;
	conn->smtputf8 = conn->size_ext = 0;
	conn->size_max = 0;
	sc_conn_printf(conn, "EHLO %s\r\n", conn->c->helo);
	sc_conn_enter(conn, SC_EHLO);
}

static void parse_ehlo(struct sc_conn *conn)
{
	struct smtp_ehlo_caps caps;
	smtp_parse_ehlo(conn->rp_text.buf ? conn->rp_text.buf : "", &caps);
	conn->esmtp = 1;
	conn->pipelining = caps.pipelining;
	conn->starttls = caps.starttls;
	conn->eightbitmime = caps.eightbitmime;
	conn->smtputf8 = caps.smtputf8;
	conn->size_ext = caps.size;
	conn->size_max = caps.size_max;
}

static void after_hello(struct sc_conn *conn)
{
	struct smtp_client *c = conn->c;
	int want_tls =
	    c->tls == RELAY_TLS_REQUIRED || (c->tls == RELAY_TLS_OPPORTUNISTIC && !c->tls_broken);
	if (want_tls && !conn->tls) {
		if (conn->starttls) {
			sc_conn_printf(conn, "STARTTLS\r\n");
			sc_conn_enter(conn, SC_STARTTLS);
			return;
		}
		if (c->tls == RELAY_TLS_REQUIRED) {
			sc_conn_fail(conn, 0,
				     "relay %s does not offer STARTTLS ([delivery] tls = required)",
				     conn->peer);
			return;
		}
	}
	conn_ready(conn);
}

static void conn_ready(struct sc_conn *conn)
{
	log_debug("smtp client %llu: ready (%s%s%s)", (unsigned long long)conn->id,
		  conn->esmtp ? "ESMTP" : "SMTP", conn->pipelining ? ", PIPELINING" : "",
		  conn->tls ? ", TLS" : "");
	sc_conn_enter(conn, SC_IDLE);
	sc_conn_pump(conn);
}

/* ---- replies ---- */

static void sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			*s = '?';
}

/* Read one reply line from IN into conn->rp_*. Returns 1 when a reply is
 * complete, 0 when more input is needed, -1 on garbage (WHY set). */
static int read_reply(struct sc_conn *conn, struct evbuffer *in, char *why, size_t whylen)
{
	for (;;) {
		size_t eol_len = 0;
		struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		if (p.pos < 0) {
			/* Measure before parsing: no end in sight is too long. */
			if (evbuffer_get_length(in) > SC_REPLY_LINE_MAX) {
				snprintf(why, whylen, "reply line longer than %d octets",
					 SC_REPLY_LINE_MAX);
				return -1;
			}
			return 0;
		}
		size_t n = (size_t)p.pos;
		if (n + 2 > SC_REPLY_LINE_MAX) {
			snprintf(why, whylen, "reply line longer than %d octets",
				 SC_REPLY_LINE_MAX);
			return -1;
		}
		char line[SC_REPLY_LINE_MAX + 1];
		evbuffer_remove(in, line, n);
		evbuffer_drain(in, eol_len);
		line[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if (!line[i])
				line[i] = '?';
		int code = 0, last = 0;
		const char *rest;
		int ok = smtp_parse_reply_line(line, n, &code, &last, &rest) == 0;
		if (ok && conn->rp_lines && code != conn->rp_code) {
			sanitize(line);
			snprintf(why, whylen, "reply code changed within a reply: \"%.60s\"", line);
			return -1;
		}
		if (!ok) {
			sanitize(line);
			snprintf(why, whylen, "malformed reply \"%.60s\"", line);
			return -1;
		}
		if (++conn->rp_lines > SC_REPLY_LINES_MAX) {
			snprintf(why, whylen, "reply of more than %d lines", SC_REPLY_LINES_MAX);
			return -1;
		}
		conn->rp_code = code;
		if (conn->rp_lines > 1)
			sbuf_addc(&conn->rp_text, '\n');
		char *text = line + (rest - line);
		sanitize(text);
		sbuf_adds(&conn->rp_text, text);
		if (last)
			return 1;
	}
}

/* The reply text on one line, for results and logs. */
static const char *flat_text(struct sc_conn *conn)
{
	if (!conn->rp_text.buf)
		sbuf_adds(&conn->rp_text, "");
	for (char *s = conn->rp_text.buf; *s; s++)
		if (*s == '\n')
			*s = ' ';
	return conn->rp_text.buf;
}

static void conn_reply(struct sc_conn *conn)
{
	struct smtp_client *c = conn->c;
	int code = conn->rp_code;
	switch (conn->state) {
	case SC_GREETING:
		if (code == 220) {
			send_ehlo(conn);
			return;
		}
		sc_conn_fail(conn, code == 421 ? 421 : 0, "relay %s greeting: %d %s", conn->peer,
			     code, flat_text(conn));
		return;
	case SC_EHLO:
		if (code / 100 == 2) {
			parse_ehlo(conn);
			after_hello(conn);
			return;
		}
		if (code / 100 == 5) {
			sc_conn_printf(conn, "HELO %s\r\n", c->helo);
			sc_conn_enter(conn, SC_HELO);
			return;
		}
		sc_conn_fail(conn, code == 421 ? 421 : 0, "relay %s refused EHLO: %d %s",
			     conn->peer, code, flat_text(conn));
		return;
	case SC_HELO:
		if (code / 100 == 2) {
			after_hello(conn);
			return;
		}
		sc_conn_fail(conn, code == 421 ? 421 : 0, "relay %s refused HELO: %d %s",
			     conn->peer, code, flat_text(conn));
		return;
	case SC_STARTTLS:
		if (code == 220) {
			/* Anything after the 220 was sent in the clear and could
			 * be injected (CVE-2011-0411 style): refuse it. */
			if (evbuffer_get_length(bufferevent_get_input(conn->bev))) {
				tls_failed(conn, "relay sent data after its reply to STARTTLS");
				return;
			}
			start_tls(conn);
			return;
		}
		if (code != 421 && c->tls == RELAY_TLS_OPPORTUNISTIC) {
			log_info(
			    "smtp client: relay %s refused STARTTLS (%d %s); going on without TLS",
			    conn->peer, code, flat_text(conn));
			conn_ready(conn);
			return;
		}
		sc_conn_fail(conn, code == 421 ? 421 : 0, "relay %s refused STARTTLS: %d %s%s",
			     conn->peer, code, flat_text(conn),
			     c->tls == RELAY_TLS_REQUIRED ? " ([delivery] tls = required)" : "");
		return;
	case SC_IDLE:
		if (code == 421) {
			log_info("smtp client: relay %s closes an idle connection: %s", conn->peer,
				 flat_text(conn));
			sc_conn_close(conn, 421, flat_text(conn), 1);
			return;
		}
		sc_conn_fail(conn, 0, "protocol error from relay %s: unexpected reply %d %s",
			     conn->peer, code, flat_text(conn));
		return;
	case SC_RSET:
	case SC_MAIL:
	case SC_RCPT:
	case SC_DATA:
	case SC_DOT:
		sc_txn_reply(conn, code, flat_text(conn));
		return;
	case SC_QUIT:
		sc_conn_close(conn, 0, "", 0);
		return;
	case SC_CONNECTING:
	case SC_HANDSHAKE:
		sc_conn_fail(conn, 0, "protocol error from relay %s: unexpected reply %d",
			     conn->peer, code);
		return;
	}
	log_err("smtp client %llu: unknown state %d", (unsigned long long)conn->id,
		(int)conn->state);
	abort();
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct sc_conn *conn = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	/* Stop once the connection closed or moved under a TLS filter. */
	while (conn->bev == bev) {
		char why[200];
		int r = read_reply(conn, in, why, sizeof why);
		if (r == 0)
			return;
		if (r < 0) {
			sc_conn_fail(conn, 0, "protocol error from relay %s: %s", conn->peer, why);
			return;
		}
		conn_reply(conn);
		conn->rp_lines = 0;
		conn->rp_code = 0;
		conn->rp_text.len = 0;
		if (conn->rp_text.buf)
			conn->rp_text.buf[0] = '\0';
	}
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sc_conn *conn = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (conn->state == SC_HANDSHAKE) {
			SSL *ssl = bufferevent_openssl_get_ssl(bev);
			conn->tls = 1;
			log_info("smtp client: TLS with relay %s: %s, %s", conn->peer,
				 ssl ? SSL_get_version(ssl) : "?",
				 ssl ? SSL_get_cipher_name(ssl) : "?");
			send_ehlo(conn); /* RFC 3207 4.2: forget what was learnt */
		}
		return;
	}
	if (conn->state == SC_HANDSHAKE) {
		char why[300];
		tls_error_text(conn, what, why, sizeof why);
		tls_failed(conn, why);
		return;
	}
	if (conn->state == SC_QUIT) {
		sc_conn_close(conn, 0, "", 0);
		return;
	}
	int idle = conn->state == SC_IDLE && !conn->fly.head && !conn->queue.head;
	if (what & BEV_EVENT_TIMEOUT) {
		if (idle) {
			conn->c->n_conns--; /* a new job may open another one now */
			sc_conn_printf(conn, "QUIT\r\n");
			sc_conn_enter(conn, SC_QUIT);
			bufferevent_enable(bev, EV_READ); /* a timeout disabled it */
			return;
		}
		sc_conn_fail(conn, 0, "relay %s: timed out waiting for %s", conn->peer,
			     state_waits[conn->state]);
		return;
	}
	if (idle) {
		log_debug("smtp client %llu: relay closed the idle connection",
			  (unsigned long long)conn->id);
		sc_conn_close(conn, 0, "", 1);
		return;
	}
	int err = EVUTIL_SOCKET_ERROR();
	unsigned long e, first = 0;
	while ((e = bufferevent_get_openssl_error(bev)))
		if (!first)
			first = e;
	ERR_clear_error();
	if ((what & BEV_EVENT_ERROR) && first) {
		char tls_err[256];
		ERR_error_string_n(first, tls_err, sizeof tls_err);
		sc_conn_fail(conn, 0, "relay %s: TLS error while waiting for %s: %s", conn->peer,
			     state_waits[conn->state], tls_err);
	} else if ((what & BEV_EVENT_ERROR) && err)
		sc_conn_fail(conn, 0, "relay %s: %s while waiting for %s", conn->peer,
			     evutil_socket_error_to_string(err), state_waits[conn->state]);
	else
		sc_conn_fail(conn, 0, "relay %s: connection closed while waiting for %s",
			     conn->peer, state_waits[conn->state]);
}

/* ---- shutdown ---- */

/* A bufferevent's output cannot be drained by hand (its start is frozen):
 * copy what is there to the socket once, without waiting. */
static void flush_now(struct bufferevent *bev)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t n = evbuffer_get_length(out);
	const unsigned char *p = n ? evbuffer_pullup(out, (ev_ssize_t)n) : NULL;
	if (p && send(bufferevent_getfd(bev), p, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("smtp client: QUIT: %s", strerror(errno));
}

void sc_conn_shutdown(struct sc_conn *conn, const char *text)
{
	struct smtp_client *c = conn->c;
	if (conn->bev && conn->state == SC_IDLE && !conn->fly.head && !conn->queue.head) {
		/* Best effort: no wait for the 221. */
		struct bufferevent *under = bufferevent_get_underlying(conn->bev);
		if (!under) {
			evbuffer_add(bufferevent_get_output(conn->bev), "QUIT\r\n", 6);
			flush_now(conn->bev);
		} else {
			SSL *ssl = bufferevent_openssl_get_ssl(conn->bev);
			if (ssl && SSL_write(ssl, "QUIT\r\n", 6) > 0)
				flush_now(under);
			ERR_clear_error();
		}
	}
	struct sc_job *j;
	while ((j = sc_jobq_pop(&conn->fly)))
		sc_job_finish(c, j, 0, text);
	while ((j = sc_jobq_pop(&conn->queue)))
		sc_job_finish(c, j, 0, text);
	sc_conn_free(conn);
}

void sc_conn_free(struct sc_conn *conn)
{
	if (conn->bev)
		bufferevent_free(conn->bev);
	if (conn->ev)
		event_free(conn->ev);
	if (conn->fd >= 0)
		close(conn->fd);
	sbuf_free(&conn->rp_text);
	free(conn);
}
