/* smtp_client_conn: what the pool (smtp_client.c), one relay connection
 * (smtp_client_conn.c) and its transactions (smtp_client_txn.c) share. Private to
 * daemon/smtp_client*.c; everyone else uses smtp_client.h. */
#ifndef DIALOGUE_SMTP_CLIENT_CONN_H
#define DIALOGUE_SMTP_CLIENT_CONN_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "smtp_client.h"
#include "util.h"

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
#define SC_REPLY_LINE_MAX 512
/* A reply of more lines than this is garbage (EHLO lists ~20). */
#define SC_REPLY_LINES_MAX 100
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets. */
#define SC_PATH_MAX 256

/* What a connection waits for: the reply to the named command, or
 * nothing (IDLE). In the transaction states the reply belongs to the
 * oldest job in flight. */
enum sc_state {
	SC_CONNECTING, /* TCP connect in progress */
	SC_GREETING,   /* the 220 banner */
	SC_EHLO,
	SC_HELO, /* after EHLO got 5xx */
	SC_STARTTLS,
	SC_HANDSHAKE, /* TLS handshake after 220 to STARTTLS */
	SC_IDLE,      /* greeted, nothing in flight; idle timer runs */
	SC_RSET,
	SC_MAIL,
	SC_RCPT,
	SC_DATA, /* waiting for 354 */
	SC_DOT,  /* message written, waiting for the final reply */
	SC_QUIT
};

/* One submitted transaction on its way through the pool. */
struct sc_job {
	struct smtp_client_txn *t;
	size_t n_valid;    /* recipients for the relay (not refused locally) */
	size_t send_i;     /* index of the next recipient to write RCPT for */
	size_t reply_i;    /* index of the recipient whose RCPT reply is next */
	size_t rcpts_sent; /* RCPT commands written */
	size_t rcpts_replied;
	size_t accepted;   /* RCPTs answered 2xx */
	unsigned rset : 1; /* an RSET precedes its MAIL on the wire */
	unsigned mail_sent : 1;
	unsigned data_cmd : 1;  /* DATA written (pipelined with MAIL/RCPT) */
	unsigned data_sent : 1; /* message and final dot written */
	unsigned decided : 1;   /* t->result holds the outcome; further replies
				   to its pipelined commands are only consumed */
	struct sc_job *next;
};

struct sc_jobq {
	struct sc_job *head, *tail;
	size_t n;
};

struct sc_conn {
	struct smtp_client *c;
	uint64_t id;
	enum sc_state state;
	evutil_socket_t fd;      /* while connecting; then owned by bev */
	struct event *ev;        /* connect start / connect completion */
	struct addrinfo *ai;     /* address being tried (in c->ai) */
	struct bufferevent *bev; /* socket, or TLS filter over it */
	char peer[80];           /* "127.0.0.1:25" */
	char err[200];           /* the last connect error, for when all addresses fail */
	unsigned esmtp : 1, pipelining : 1, starttls : 1, eightbitmime : 1, smtputf8 : 1,
	    size_ext : 1;
	unsigned tls : 1;
	unsigned need_rset : 1;   /* the last transaction failed; RSET first */
	unsigned established : 1; /* the relay has accepted a MAIL here */
	uint64_t size_max;        /* SIZE limit, 0 = none advertised */
	/* the reply being read */
	int rp_code;
	size_t rp_lines;
	struct sbuf rp_text;  /* lines joined with '\n', codes stripped */
	struct sc_jobq queue; /* assigned, not started */
	struct sc_jobq fly;   /* commands written; the head's reply is next */
	struct sc_conn *prev, *next;
};

struct smtp_client {
	struct event_base *base;
	char *host, *port, *helo;
	enum relay_tls tls;
	size_t max_conns;
	int64_t idle_timeout;
	int64_t scale_ms;
	SSL_CTX *ssl_ctx;
	int tls_broken; /* opportunistic STARTTLS failed once: no more tries */
	struct addrinfo *ai;
	struct sc_conn *conns; /* live, including ones saying QUIT */
	size_t n_conns;        /* live ones not saying QUIT */
	struct sc_conn *dead;  /* closed inside their own callbacks; freed later */
	struct sc_jobq done;   /* finished, done() not yet called */
	struct event *done_ev;
	size_t busy;
	uint64_t n_txns, n_connects, next_id;
	struct smtp_body *scan_body; /* the last body checked for 8-bit bytes */
	int scan_8bit;
	int freeing;
	int draining;   /* smtp_client_drain(): no new transaction starts */
	int delivering; /* deliver_jobs() calls on the stack */
	int free_later; /* smtp_client_free ran inside a done() */
};

/* pool (smtp_client.c) */
void sc_jobq_push(struct sc_jobq *q, struct sc_job *j);
struct sc_job *sc_jobq_pop(struct sc_jobq *q);
/* Queue J for a connection: an idle one, a new one, or the least loaded. */
void sc_assign(struct smtp_client *c, struct sc_job *j);
/* Set one result (code and a copy of TEXT). */
void sc_result_set(struct smtp_result *r, int code, const char *text);
/* J is over: t->result (already set when J is decided, else CODE/TEXT)
 * goes to every recipient without a refusal of its own, and done() is
 * scheduled. */
void sc_job_finish(struct smtp_client *c, struct sc_job *j, int code, const char *text);
/* CONN has nothing to do: give it a job queued on a busier connection. */
void sc_conn_wants_work(struct sc_conn *conn);
/* Whether P may go into MAIL FROM:<P> or RCPT TO:<P> ("" only as sender). */
int sc_path_ok(const char *p, int sender);
/* Whether the message of J carries 8-bit bytes (for BODY=8BITMIME). */
int sc_job_8bit(struct smtp_client *c, const struct sc_job *j);
/* The timeout for the reply awaited in STATE, per RFC 5321 4.5.3.2. */
struct timeval sc_timeout(const struct smtp_client *c, enum sc_state st);

/* connection (smtp_client_conn.c) */
const char *sc_state_name(enum sc_state st);
/* Every state change goes through here: logged at debug level, and the
 * timeout for the awaited reply armed. */
void sc_conn_enter(struct sc_conn *conn, enum sc_state st);
/* Queue a command (the caller adds CRLF). */
void sc_conn_printf(struct sc_conn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Take CONN out of the pool: jobs in flight finish with CODE/TEXT, queued
 * ones too, or go back to the pool when REQUEUE. CONN's socket is closed
 * and the struct freed on the next turn of the loop: callers must only
 * return after this. */
void sc_conn_close(struct sc_conn *conn, int code, const char *text, int requeue);
/* sc_conn_close with a logged failure text; queued jobs move on only when
 * the relay had accepted a MAIL on CONN (so this cannot spin). */
void sc_conn_fail(struct sc_conn *conn, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A new connection; it starts connecting from the event loop. */
struct sc_conn *sc_conn_new(struct smtp_client *c);

/* transactions (smtp_client_txn.c) */
/* Start queued jobs if the connection can take them now. */
void sc_conn_pump(struct sc_conn *conn);
/* A complete reply in one of the transaction states (RSET .. DOT). */
void sc_txn_reply(struct sc_conn *conn, int code, const char *text);
/* smtp_client_free: QUIT (best effort, without waiting), fail every job
 * with TEXT, free CONN. */
void sc_conn_shutdown(struct sc_conn *conn, const char *text);
void sc_conn_free(struct sc_conn *conn);

#endif
