/* smtp_server: the ESMTP listener and its sessions (RFC 5321, 1870, 2920,
 * 3207, 2034, 6152). Each session is a state machine driven by one I/O
 * function; finished messages go to the intake for a durable commit. */
#ifndef DIALOGUE_SMTP_SERVER_H
#define DIALOGUE_SMTP_SERVER_H

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stddef.h>

#include "config.h"
#include "intake.h"

struct smtp_server;

struct smtp_server *smtp_server_new(struct event_base *base, struct intake *in);

/* Use CFG (and TLS, NULL when STARTTLS is not offered) for every command
 * from now on. Neither is owned; both must outlive their use, which ends at
 * the next call. Sessions never keep pointers into a config. */
void smtp_server_set_config(struct smtp_server *srv, const struct config *cfg, SSL_CTX *tls);

/* Bind and listen on every [server] listen address; -1 with err set. */
int smtp_server_listen(struct smtp_server *srv, char *err, size_t errlen);

/* Stop accepting; idle sessions get 421 at once, a transaction in progress
 * may finish within GRACE seconds, then every session is closed. DONE runs
 * once no session is left. */
void smtp_server_shutdown(struct smtp_server *srv, int grace, void (*done)(void *), void *arg);

size_t smtp_server_sessions(const struct smtp_server *srv);

void smtp_server_free(struct smtp_server *srv);

#endif
