/* smtp_client: an asynchronous SMTP client for the relay (RFC 5321, 2920
 * PIPELINING, 3207 STARTTLS, 1869 enhanced codes), on libevent
 * bufferevents. A client is a pool of up to N connections to one relay;
 * transactions queue until a connection is free, connections are reused
 * across transactions (RSET only after a failed one) and closed after an
 * idle period. Every connection is a switch on an enum state. */
#ifndef DIALOGUE_SMTP_CLIENT_H
#define DIALOGUE_SMTP_CLIENT_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* A message body shared by many transactions (one post, many copies):
 * dot-stuffed, CRLF line ends, WITHOUT the final ".\r\n". Reference
 * counted; freed when the last transaction using it is done. */
struct smtp_body {
	int refs;
	char *data;
	size_t len;
};
/* Take DATA (malloc'd, ownership passes) as a body with one reference. */
struct smtp_body *smtp_body_new(char *data, size_t len);
void smtp_body_ref(struct smtp_body *b);
void smtp_body_unref(struct smtp_body *b);

/* Dot-stuff and CRLF-normalise RAW (bare LF or CR become CRLF; a final
 * line without an end gets one): the form smtp_body and head expect. */
char *smtp_dot_stuff(const char *raw, size_t len, size_t *out_len);

/* Outcome of one recipient or of the whole transaction. code is the SMTP
 * reply code (250, 451, 550 ...), or 0 when no reply was had (connection
 * refused, reset, timeout, TLS failure): treat 0 as temporary. text is the
 * reply text (or a description of the failure), always set when done. */
struct smtp_result {
	int code;
	char *text;
};

struct smtp_client_txn {
	/* set by the caller; owned by the caller until done() */
	const char *mail_from;    /* "" for the null sender */
	const char *const *rcpts;
	size_t n_rcpts;
	const char *head;         /* per-copy header lines (dot-stuffed, CRLF), may be "" */
	size_t head_len;
	struct smtp_body *body;   /* one reference taken by submit, dropped when done */
	/* filled by the client before done() */
	struct smtp_result *rcpt_results; /* n_rcpts entries: the RCPT reply, or
					     for accepted recipients the final
					     reply after the data */
	struct smtp_result result;        /* the transaction: final reply after
					     the data, or the failure */
	/* called exactly once, from the event loop, never from inside submit */
	void (*done)(struct smtp_client_txn *t, void *arg);
	void *arg;
	/* private to the client */
	struct smtp_client_txn *next;
};

struct smtp_client_opts {
	const char *host; /* relay */
	const char *port;
	const char *helo; /* our EHLO name */
	enum relay_tls tls;
	long connections;         /* parallel connections, >= 1 */
	int64_t idle_timeout;     /* close an idle connection after this (s) */
	int64_t timeout_scale_ms; /* 0 = RFC 5321 4.5.3.2 timeouts; tests may
				     set e.g. 2000 for every timeout */
};

struct smtp_client;

struct smtp_client *smtp_client_new(struct event_base *base, const struct smtp_client_opts *o);
/* Queue T. The result arrives through t->done. */
void smtp_client_submit(struct smtp_client *c, struct smtp_client_txn *t);
/* Transactions queued or in progress. */
size_t smtp_client_busy(const struct smtp_client *c);
/* Free the results filled into T (not T itself). */
void smtp_client_txn_clear(struct smtp_client_txn *t);
/* Statistics: transactions completed, connections opened. */
void smtp_client_stats(const struct smtp_client *c, uint64_t *txns, uint64_t *connects);
/* Start no new transaction: those not yet begun get done() with code 0
 * "shutting down"; those already talking to the relay run to their end,
 * so a clean stop sends no copy twice. smtp_client_busy() tells when the
 * last one is done. */
void smtp_client_drain(struct smtp_client *c);
/* Close every connection (QUIT when idle). Transactions not finished get
 * done() with code 0 "shutting down" before this returns. */
void smtp_client_free(struct smtp_client *c);

#endif
