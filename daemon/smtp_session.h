/* smtp_session: what the SMTP server's modules share about a session.
 * Private to daemon/smtp_*.c; others use smtp_server.h. */
#ifndef DIALOGUE_SMTP_SESSION_H
#define DIALOGUE_SMTP_SESSION_H

#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <stdint.h>

#include "config.h"
#include "intake.h"
#include "smtp_parse.h"

/* Replies waiting to be written past which a session's commands wait. */
#define OUTPUT_HIGH_WATERMARK (64 * 1024)
#define OUTPUT_LOW_WATERMARK (16 * 1024)

/* Unprocessed input we buffer before we stop reading from a peer. */
#define INPUT_HIGH_WATERMARK (256 * 1024)

enum smtp_state {
	ST_INIT,          /* banner sent, EHLO/HELO expected */
	ST_READY,         /* greeted, no transaction */
	ST_MAIL,          /* MAIL accepted, no recipient yet */
	ST_RCPT,          /* at least one recipient */
	ST_DATA,          /* receiving the message */
	ST_COMMIT,        /* message handed to the intake, waiting for the commit */
	ST_TLS_HANDSHAKE, /* after 220 to STARTTLS */
	ST_CLOSING        /* last reply queued; freed once it is written */
};

struct smtp_session {
	struct smtp_server *srv;
	struct bufferevent *bev;
	enum smtp_state state;
	uint64_t id;
	char client_ip[INET6_ADDRSTRLEN];
	char helo[256];
	int esmtp;
	int tls;
	int errors;
	int skipping_line;          /* discarding the rest of an overlong command */
	struct intake_msg *tx;      /* the transaction being built */
	struct intake_msg *pending; /* handed to the intake, not yet committed */
	size_t rcpt_accepted;
	int output_blocked; /* commands wait until replies drain */
	int xforward_ok;    /* the peer is in xforward_hosts */
	char fwd_ip[INET6_ADDRSTRLEN]; /* XFORWARD ADDR for the next transaction, "" */
	struct smtp_data data;
	size_t data_counted; /* of data.buf.len, already in srv->data_bytes */
	size_t committing_bytes; /* of the message handed to the intake */
	struct event *linger_ev; /* TLS: waits for the socket to drain on close */
	int linger_ticks;
	struct smtp_session *prev, *next;
};

struct smtp_server {
	struct event_base *base;
	struct intake *intake;
	const struct config *cfg;
	SSL_CTX *tls;
	struct evconnlistener **listeners;
	size_t n_listeners;
	struct smtp_session *sessions;
	size_t n_sessions;
	uint64_t next_id;
	size_t data_bytes; /* DATA buffered in memory across all sessions */
	int shutting_down;
	struct event *shutdown_timer;
	struct event *accept_pause; /* listeners paused after accept() failed */
	void (*shutdown_done)(void *);
	void *shutdown_arg;
};

/* Every state change goes through here (and is logged at debug level). */
void smtp_session_enter(struct smtp_session *s, enum smtp_state st);
/* Queue one reply line (CRLF added). */
void smtp_reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A reply to a client mistake; closes the session after max_errors. */
void smtp_session_error(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Queue nothing more; the session is freed once its output is written. */
void smtp_session_close(struct smtp_session *s);
/* All sessions together buffer at most this much DATA in memory; past it
 * new messages get 452 4.3.1 and are retried later by their clients. */
#define SMTP_DATA_MEMORY_MAX ((size_t)512 * 1024 * 1024)
/* Keep srv->data_bytes in step with S's buffer after it changed. */
void smtp_data_account(struct smtp_session *s);

/* Forget the transaction being built. */
void smtp_tx_reset(struct smtp_session *s);
void smtp_set_timeout(struct smtp_session *s, int64_t secs);
/* Wrap the connection in TLS after "220 Ready to start TLS" (RFC 3207). */
void smtp_start_tls(struct smtp_session *s, SSL *ssl);

/* Run one command line (CRLF stripped) through the verb table. */
void smtp_command(struct smtp_session *s, char *line);

#endif
