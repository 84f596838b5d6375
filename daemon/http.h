/* http: the website — public archive, search, Atom feeds, mbox downloads,
 * and the join, confirm and one-click unsubscribe pages — served by
 * libevent's evhttp on the [http] listen addresses. Reads the store on the
 * event loop (indexed queries only); writes only for joins and leaves,
 * each one transaction. */
#ifndef DIALOGUE_HTTP_H
#define DIALOGUE_HTTP_H

#include <event2/event.h>
#include <stddef.h>

#include "config.h"
#include "secret.h"
#include "store.h"
#include "template.h"
#include "webtpl.h"

struct http_server;

/* KEY is the site secret (CSRF tokens); KICK(ARG) is called after a page
 * queued mail (the delivery wakes up). */
struct http_server *http_server_new(struct event_base *base, struct store *st,
				    const unsigned char key[SECRET_LEN], void (*kick)(void *),
				    void *arg);

/* Use CFG, the mail templates MAIL and the web templates WEB from now on.
 * CFG and MAIL are borrowed until the next call; WEB is owned (freed at the
 * next call or by http_server_free). */
void http_server_set_config(struct http_server *hs, const struct config *cfg,
			    const struct templates *mail, struct webtpl *web);

/* Bind every [http] listen address (none: the website is off). -1 with
 * ERR set. */
int http_server_listen(struct http_server *hs, char *err, size_t errlen);

void http_server_free(struct http_server *hs);

#endif
