/* smtp_client_testkit: for test_smtp_client.c. A scripted SMTP server
 * (the fake relay) on 127.0.0.1:0 in the caller's libevent loop, a
 * self-signed certificate for it, and helpers that submit transactions
 * and run the loop until they are done.
 *
 * The fake relay logs what it receives ("<conn>[T]: <line>", T on TLS)
 * and checks how the client wrote:
 * whether a pipelined MAIL arrived with its RCPTs and DATA, whether the
 * next MAIL followed a final dot, whether a non-pipelining client ever
 * sent ahead of a reply.
 *
 * Replies depend on the addresses: a recipient starting with "t451" gets
 * 451, "p550" gets 550, "c421" gets 421 and a close; a sender starting
 * with "reject" gets 550. Everything else is accepted. */
#ifndef DIALOGUE_SMTP_CLIENT_TESTKIT_H
#define DIALOGUE_SMTP_CLIENT_TESTKIT_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "smtp_client.h"
#include "testutil.h"
#include "util.h"

#define FAKE_MAX_MSGS 64

struct fake_opts {
	const char *greeting; /* default "220 fake.example ESMTP" */
	int greet_split;      /* greeting and EHLO reply in pieces, 30 ms apart */
	int silent;           /* never say anything */
	int pipelining;
	int starttls;         /* offer STARTTLS (needs fake_relay.ssl) */
	int tls_garbage;      /* after 220 to STARTTLS, send junk (30 ms later) */
	int tls_inject;       /* a line right behind the 220 to STARTTLS */
	int no_ehlo;          /* 502 to EHLO */
	const char *size;     /* "SIZE" argument, NULL: not offered */
	const char *final;    /* reply after the data, default 250 */
	const char *close_on; /* close when a command starts with this */
	int nolog;            /* benchmark: remember nothing */
};

struct fake_relay;

struct fake_sess {
	struct fake_relay *fr;
	struct bufferevent *bev;
	struct event *timer;
	int id;
	int tls;
	int in_data;
	int accepted;
	int split_step;
	struct sbuf msg;
	struct fake_sess *prev, *next;
};

struct fake_relay {
	struct event_base *base;
	struct evconnlistener *l;
	int port;
	struct fake_opts o;
	SSL_CTX *ssl;
	int n_conns, n_live, max_live;
	int n_quit, n_mail, n_msgs;
	int grouped;   /* pipelined MAILs whose RCPTs and DATA came along */
	int after_dot; /* MAILs that arrived with the previous final dot */
	int ahead;     /* a non-pipelining client sent before our reply */
	struct sbuf log;
	char *msgs[FAKE_MAX_MSGS];
	struct fake_sess *sessions;
};

static void fake_sess_free(struct fake_sess *s)
{
	s->fr->n_live--;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->fr->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	if (s->timer)
		event_free(s->timer);
	bufferevent_free(s->bev);
	sbuf_free(&s->msg);
	free(s);
}

static void fake_reply(struct fake_sess *s, const char *text)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	evbuffer_add(out, text, strlen(text));
	evbuffer_add(out, "\r\n", 2);
}

static void fake_log(struct fake_sess *s, const char *line, size_t n)
{
	if (s->fr->o.nolog)
		return;
	sbuf_printf(&s->fr->log, "%d%s: ", s->id, s->tls ? "T" : "");
	sbuf_add(&s->fr->log, line, n);
	sbuf_addc(&s->fr->log, '\n');
}

static void fake_read(struct bufferevent *bev, void *arg);
static void fake_event(struct bufferevent *bev, short what, void *arg);

/* Close once the output is out. */
static void fake_close_write(struct bufferevent *bev, void *arg)
{
	fake_sess_free(arg);
}

static void fake_close_after_write(struct fake_sess *s)
{
	bufferevent_setcb(s->bev, NULL, fake_close_write, fake_event, s);
	bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		fake_sess_free(s);
}

static void fake_ehlo_reply(struct fake_sess *s)
{
	struct fake_relay *fr = s->fr;
	if (fr->o.greet_split) {
		/* one reply over three reads */
		bufferevent_write(s->bev, "250-fake.example\r\n250-PIPE", 26);
		s->split_step = 2;
		struct timeval tv = {0, 30000};
		evtimer_add(s->timer, &tv);
		return;
	}
	struct sbuf b = {0};
	sbuf_adds(&b, "250-fake.example greets you\r\n");
	if (fr->o.pipelining)
		sbuf_adds(&b, "250-PIPELINING\r\n");
	if (fr->o.starttls && !s->tls)
		sbuf_adds(&b, "250-STARTTLS\r\n");
	if (fr->o.size)
		sbuf_printf(&b, "250-SIZE %s\r\n", fr->o.size);
	sbuf_adds(&b, "250 8BITMIME\r\n");
	bufferevent_write(s->bev, b.buf, b.len);
	sbuf_free(&b);
}

static void fake_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fake_sess *s = arg;
	if (s->split_step == 1) {
		bufferevent_write(s->bev, "0 fake.example ESMTP\r\n", 22);
		s->split_step = 0;
	} else if (s->split_step == 2) {
		bufferevent_write(s->bev, "LINING\r\n", 8);
		s->split_step = 3;
		struct timeval tv = {0, 30000};
		evtimer_add(s->timer, &tv);
	} else if (s->split_step == 3) {
		bufferevent_write(s->bev, "250 8BITMIME\r\n", 14);
		s->split_step = 0;
	} else if (s->split_step == 4) {
		bufferevent_write(s->bev, "\x16\x03\x01 this is not TLS at all\r\n", 28);
		s->split_step = 0;
		fake_close_after_write(s);
	}
}

static void fake_start_tls(struct fake_sess *s)
{
	SSL *ssl = SSL_new(s->fr->ssl);
	struct bufferevent *f = bufferevent_openssl_filter_new(
	    s->fr->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	s->bev = f;
	s->tls = 1;
	bufferevent_setcb(f, fake_read, NULL, fake_event, s);
	bufferevent_enable(f, EV_READ | EV_WRITE);
}

/* One command line (CRLF stripped). Returns 0 when S is gone. */
static int fake_command(struct fake_sess *s, char *line, struct evbuffer *in)
{
	struct fake_relay *fr = s->fr;
	if (fr->o.close_on && !strncmp(line, fr->o.close_on, strlen(fr->o.close_on))) {
		fake_sess_free(s);
		return 0;
	}
	if (!strncmp(line, "EHLO", 4)) {
		if (fr->o.no_ehlo)
			fake_reply(s, "502 5.5.2 what is EHLO");
		else
			fake_ehlo_reply(s);
	} else if (!strncmp(line, "HELO", 4)) {
		fake_reply(s, "250 fake.example");
	} else if (!strcmp(line, "STARTTLS")) {
		fake_reply(s, "220 2.0.0 Ready to start TLS");
		if (fr->o.tls_inject) {
			fake_reply(s, "250 2.0.0 injected");
		} else if (fr->o.tls_garbage) {
			s->split_step = 4;
			struct timeval tv = {0, 30000};
			evtimer_add(s->timer, &tv);
		} else {
			fake_start_tls(s);
			return 0; /* the old buffer is the filter's now */
		}
	} else if (!strncmp(line, "MAIL FROM:<", 11)) {
		fr->n_mail++;
		s->accepted = 0;
		struct evbuffer_ptr p = evbuffer_search(in, "DATA\r\n", 6, NULL);
		if (fr->o.pipelining && p.pos >= 0)
			fr->grouped++;
		if (!strncmp(line + 11, "reject", 6))
			fake_reply(s, "550 5.7.1 sender rejected");
		else
			fake_reply(s, "250 2.1.0 Ok");
	} else if (!strncmp(line, "RCPT TO:<", 9)) {
		const char *a = line + 9;
		if (!strncmp(a, "t451", 4)) {
			fake_reply(s, "451 4.3.0 try again later");
		} else if (!strncmp(a, "p550", 4)) {
			fake_reply(s, "550-5.1.1 no such user");
			fake_reply(s, "550 5.1.1 really");
		} else if (!strncmp(a, "c421", 4)) {
			fake_reply(s, "421 4.3.2 closing");
			fake_close_after_write(s);
			return 0;
		} else {
			s->accepted++;
			fake_reply(s, "250 2.1.5 Ok");
		}
	} else if (!strcmp(line, "DATA")) {
		if (s->accepted) {
			fake_reply(s, "354 go ahead");
			s->in_data = 1;
		} else {
			fake_reply(s, "554 5.5.1 no valid recipients");
		}
	} else if (!strcmp(line, "RSET")) {
		s->accepted = 0;
		fake_reply(s, "250 2.0.0 Ok");
	} else if (!strcmp(line, "QUIT")) {
		fr->n_quit++;
		fake_reply(s, "221 2.0.0 Bye");
		fake_close_after_write(s);
		return 0;
	} else {
		fake_reply(s, "500 5.5.2 what");
	}
	return 1;
}

static void fake_read(struct bufferevent *bev, void *arg)
{
	struct fake_sess *s = arg;
	struct fake_relay *fr = s->fr;
	struct evbuffer *in = bufferevent_get_input(bev);
	for (;;) {
		struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
		if (p.pos < 0)
			return;
		size_t n = (size_t)p.pos + 1;
		char *line = xmalloc(n + 1);
		evbuffer_remove(in, line, n);
		line[n] = '\0';
		if (s->in_data) {
			if (strcmp(line, ".\r\n")) {
				if (!fr->o.nolog)
					sbuf_add(&s->msg, line, n);
				free(line);
				continue;
			}
			free(line);
			s->in_data = 0;
			if (fr->n_msgs < FAKE_MAX_MSGS && !fr->o.nolog)
				fr->msgs[fr->n_msgs] = sbuf_detach(&s->msg);
			fr->n_msgs++;
			sbuf_free(&s->msg);
			if (evbuffer_search(in, "MAIL FROM:", 10, NULL).pos >= 0)
				fr->after_dot++;
			else if (!fr->o.pipelining && evbuffer_get_length(in))
				fr->ahead++;
			fake_reply(s, fr->o.final ? fr->o.final : "250 2.0.0 Ok: queued");
			continue;
		}
		line[n > 1 && line[n - 2] == '\r' ? n - 2 : n - 1] = '\0';
		fake_log(s, line, strlen(line));
		int alive = fake_command(s, line, in);
		free(line);
		if (!alive)
			return;
		if (!fr->o.pipelining && !s->in_data && evbuffer_get_length(in))
			fr->ahead++;
	}
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		fake_sess_free(arg);
}

static void fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			int socklen, void *arg)
{
	struct fake_relay *fr = arg;
	struct fake_sess *s = xcalloc(1, sizeof *s);
	s->fr = fr;
	s->id = ++fr->n_conns;
	if (++fr->n_live > fr->max_live)
		fr->max_live = fr->n_live;
	s->next = fr->sessions;
	if (fr->sessions)
		fr->sessions->prev = s;
	fr->sessions = s;
	s->bev = bufferevent_socket_new(fr->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->timer = evtimer_new(fr->base, fake_timer, s);
	bufferevent_setcb(s->bev, fake_read, NULL, fake_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	if (fr->o.silent)
		return;
	if (fr->o.greet_split) {
		bufferevent_write(s->bev, "22", 2);
		s->split_step = 1;
		struct timeval tv = {0, 30000};
		evtimer_add(s->timer, &tv);
		return;
	}
	const char *g = fr->o.greeting ? fr->o.greeting : "220 fake.example ESMTP";
	fake_reply(s, g);
	if (g[0] != '2')
		fake_close_after_write(s);
}

static void fake_relay_start(struct fake_relay *fr, struct event_base *base,
			     const struct fake_opts *o)
{
	memset(fr, 0, sizeof *fr);
	fr->base = base;
	fr->o = *o;
	struct sockaddr_in sin = {0};
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fr->l = evconnlistener_new_bind(base, fake_accept, fr,
					LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
					(struct sockaddr *)&sin, sizeof sin);
	if (!fr->l) {
		perror("fake relay: bind");
		exit(1);
	}
	struct sockaddr_in bound;
	socklen_t len = sizeof bound;
	getsockname(evconnlistener_get_fd(fr->l), (struct sockaddr *)&bound, &len);
	fr->port = ntohs(bound.sin_port);
}

static void fake_relay_stop(struct fake_relay *fr)
{
	while (fr->sessions)
		fake_sess_free(fr->sessions);
	evconnlistener_free(fr->l);
	sbuf_free(&fr->log);
	for (int i = 0; i < fr->n_msgs && i < FAKE_MAX_MSGS; i++)
		free(fr->msgs[i]);
}

/* A server context with a self-signed certificate for SAN (e.g.
 * "DNS:localhost,IP:127.0.0.1"), also written to a new file named in
 * PATH[64] so a client can be told to trust it (SSL_CERT_FILE). */
static SSL_CTX *fake_tls_ctx(const char *san, char *path)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pkey);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
				   -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, pkey, EVP_sha256());
	snprintf(path, 64, "/tmp/smtp_fake_relay_XXXXXX");
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	PEM_write_X509(f, x);
	fclose(f);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_use_certificate(ctx, x);
	SSL_CTX_use_PrivateKey(ctx, pkey);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ctx;
}

/* ---- the client side ---- */

static struct event_base *base;
static int in_submit;
static int done_count;

struct tx {
	struct smtp_client_txn t;
	const char *rcpts[8];
	int done;
	struct smtp_client *again_on; /* done() submits AGAIN there */
	struct tx *again;
	struct smtp_client *free_on_done;
};

static void tx_done(struct smtp_client_txn *t, void *arg)
{
	struct tx *x = arg;
	CHECK(!in_submit);
	CHECK(t->result.text != NULL);
	x->done++;
	done_count++;
	if (x->again) {
		struct tx *n = x->again;
		x->again = NULL;
		smtp_client_submit(x->again_on, &n->t);
	}
	if (x->free_on_done) {
		struct smtp_client *c = x->free_on_done;
		x->free_on_done = NULL;
		smtp_client_free(c);
	}
}

static struct smtp_body *body_of(const char *s)
{
	size_t n;
	char *d = smtp_dot_stuff(s, strlen(s), &n);
	return smtp_body_new(d, n);
}

/* RCPTS: NULL-terminated. */
static void tx_init(struct tx *x, struct smtp_body *b, const char *from, const char *r0,
		    const char *r1, const char *r2)
{
	memset(x, 0, sizeof *x);
	const char *r[3] = {r0, r1, r2};
	for (int i = 0; i < 3 && r[i]; i++)
		x->rcpts[x->t.n_rcpts++] = r[i];
	x->t.mail_from = from;
	x->t.rcpts = x->rcpts;
	x->t.head = "X-Copy: 1\r\n";
	x->t.head_len = strlen(x->t.head);
	x->t.body = b;
	x->t.done = tx_done;
	x->t.arg = x;
}

static void submit(struct smtp_client *c, struct tx *x)
{
	in_submit = 1;
	smtp_client_submit(c, &x->t);
	in_submit = 0;
	CHECK_INT(x->done, 0);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Run the loop until *COUNTER reaches WANT or MS pass. */
static int run_until(const int *counter, int want, int ms)
{
	int64_t deadline = now_ms() + ms;
	while (*counter < want) {
		if (now_ms() > deadline) {
			fprintf(stderr, "  (timed out waiting: %d of %d)\n", *counter, want);
			return 0;
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	return 1;
}

static void run_for(int ms)
{
	int never = 0;
	int64_t deadline = now_ms() + ms;
	while (now_ms() < deadline && !never)
		event_base_loop(base, EVLOOP_ONCE);
}

static struct smtp_client *client(int port, enum relay_tls tls, long conns, int64_t scale)
{
	char p[16];
	snprintf(p, sizeof p, "%d", port);
	struct smtp_client_opts o = {.host = "127.0.0.1",
				     .port = p,
				     .helo = "client.example",
				     .tls = tls,
				     .connections = conns,
				     .idle_timeout = 30,
				     .timeout_scale_ms = scale};
	return smtp_client_new(base, &o);
}

/* Offset of NEEDLE in HAY from FROM on, or -1. */
static long find(const char *hay, const char *needle, long from)
{
	if (!hay || from < 0)
		return -1;
	const char *p = strstr(hay + from, needle);
	return p ? p - hay : -1;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

#endif
