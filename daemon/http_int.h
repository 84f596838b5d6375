/* http_int: what the parts of the web server share (dispatch and
 * responses in http.c, the archive pages in http_archive.c, the forms in
 * http_forms.c, feeds and downloads in http_feed.c). Not an interface. */
#ifndef DIALOGUE_HTTP_INT_H
#define DIALOGUE_HTTP_INT_H

#include <event2/http.h>
#include <stdint.h>

#include "http.h"
#include "util.h"

#define HTTP_MAX_SEGS 6
/* The database time one request (or one mbox batch) may take: a page reads
 * in milliseconds; past this something is pathological, and the event loop
 * (mail too) must not wait for it. */
#define HTTP_REQUEST_DB_MS 1000

struct mbox_stream;
struct http_cache;

/* When the website first saw a list in its current state. */
struct http_list_seen {
	char *list;
	char *state;
	int64_t changed;
};

struct http_server {
	struct event_base *base;
	struct store *st;
	const struct config *cfg;
	const struct templates *mail;
	struct webtpl *web;
	unsigned char key[SECRET_LEN];
	void (*kick)(void *);
	void *kick_arg;
	struct evhttp *http;
	int64_t loaded;   /* when the config was (re)loaded: pages may change then */
	char tag[48];     /* templates and config generation, in every ETag */
	unsigned generation;
	struct mbox_stream *streams; /* downloads in progress */
	struct http_cache *cache;    /* rendered pages by ETag (http_cache.c) */
	size_t n_streams;
	struct http_list_seen *seen; /* per list: Last-Modified */
	size_t n_seen;
};

/* One request being answered. */
struct http_req {
	struct http_server *hs;
	struct evhttp_request *req;
	int head;                 /* HEAD: headers only */
	int post;
	int other;                /* PUT, DELETE, OPTIONS, PATCH: no route takes them */
	char *segs[HTTP_MAX_SEGS]; /* the path's segments, percent-decoded */
	size_t n_segs;
	int trailing_slash;
	const char *query;        /* raw query string, NULL when none */
	const struct list_cfg *list; /* the list the path names, when public */
	char ip[64];
};

/* ---- responses (http.c) ---- */

/* The common headers (security policy) on REQ's response. */
void http_security_headers(struct evhttp_request *req);
/* A page: NAME rendered with V (which gets the site-wide values), status
 * CODE; ETAG (may be NULL) and LASTMOD (0: none) for caching. V is freed. */
void http_page(struct http_req *r, int code, const char *name, struct wv *v, const char *etag,
	       int64_t lastmod);
/* A short page with a heading and one sentence, and a link back. */
void http_notice(struct http_req *r, int code, const char *heading, const char *message,
		 const char *back_url, const char *back_label);
/* The one "not found" page: the same bytes for an unknown list, a private
 * one and a missing message, so nothing leaks. */
void http_not_found(struct http_req *r);
/* 503: the database did not answer (busy, or past the request's time). */
void http_busy(struct http_req *r);
/* A body of type TYPE (a buffer we own: freed here) with CODE. */
void http_send(struct http_req *r, int code, const char *type, struct sbuf *body,
	       const char *etag, int64_t lastmod);
/* The page rendered before under ETAG, sent again (200): 1 when it was
 * in the cache. http_page() puts every page that has an ETag there. */
int http_send_cached(struct http_req *r, const char *etag, int64_t lastmod);
/* Answer 304 when the request's validators match ETAG/LASTMOD; 1 when it
 * did (nothing else may be sent). */
int http_not_modified(struct http_req *r, const char *etag, int64_t lastmod);
/* A new view with what every page shows (site, version, list fields when
 * the request names a list) and the page TITLE. */
struct wv *http_view(struct http_req *r, const char *title);
/* Content-Disposition: attachment naming NAME (an ASCII fallback and the
 * RFC 6266 filename* form), on R's response. */
void http_attachment_header(struct http_req *r, const char *name);
/* Does the website show list L (index, pages, join form)? */
int http_list_shown(const struct list_cfg *l);
/* Append "/L", the list's path, URL-encoded, to B. */
void http_list_path(struct sbuf *b, const struct list_cfg *l);
/* The site's base URL without a trailing slash. */
void http_base(struct sbuf *b, const struct config *cfg);
/* A query or form value NAME (from the query string when FROM_BODY is 0,
 * else from the POST body): 1 found, 0 absent, -1 malformed or longer
 * than OUTLEN - 1. */
int http_param(struct http_req *r, int from_body, const char *name, char *out, size_t outlen);
/* A date as pages show it ("2026-11-30 06:42 UTC"; datetime= attributes
 * take fmt_iso8601()). */
void http_date_text(int64_t t, char out[32]);
/* The time to show for a message: its Date when believable, else when we
 * received it. */
int64_t http_msg_time(const struct store_archived *a);
/* The list's archive state: an ETag part and the last change. */
int http_list_state(struct http_req *r, char *etag_part, size_t len, int64_t *lastmod);

/* ---- the page cache (http_cache.c) ---- */
const char *http_cache_get(struct http_server *hs, const char *key, size_t *len);
void http_cache_put(struct http_server *hs, const char *key, const char *body, size_t len);
void http_cache_clear(struct http_server *hs);

/* ---- the pages ---- */
void http_index(struct http_req *r);
void http_list_page(struct http_req *r);
void http_message_page(struct http_req *r, int64_t id);
void http_attachment(struct http_req *r, int64_t id, long n);
void http_search_page(struct http_req *r);
void http_atom(struct http_req *r);
void http_mbox(struct http_req *r);
void http_subscribe(struct http_req *r);
void http_confirm(struct http_req *r, const char *token);
void http_unsubscribe(struct http_req *r, const char *token);
/* Mbox downloads still running when the server goes away. */
void http_streams_free(struct http_server *hs);

#endif
