/* http: the web server's frame — listening, limits, routing a request to
 * its page, and the responses every page shares (security headers,
 * caching validators, the one 404). */
#include "http_int.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "html.h"
#include "smtp_parse.h"

/* Limits of a request: a form is small, nothing else has a body. */
#define MAX_HEADERS_SIZE 8192
#define MAX_BODY_SIZE 16384
#define REQUEST_TIMEOUT 30

static const char csp[] = "default-src 'none'; style-src 'self'; img-src 'self'; "
			  "form-action 'self'";

/* ---- responses ---- */

void http_security_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Security-Policy", csp);
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
}

static void http_time(int64_t t, char out[40])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm))
		out[0] = '\0';
}

static int64_t parse_http_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	return (int64_t)timegm(&tm);
}

static void validators(struct evhttp_request *req, const char *etag, int64_t lastmod)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	if (etag)
		evhttp_add_header(h, "ETag", etag);
	if (lastmod > 0) {
		char t[40];
		http_time(lastmod, t);
		evhttp_add_header(h, "Last-Modified", t);
	}
	if (etag || lastmod > 0)
		evhttp_add_header(h, "Cache-Control", "no-cache");
}

/* Does the If-None-Match list LIST hold ETAG (or "*")? */
static int etag_listed(const char *list, const char *etag)
{
	size_t n = strlen(etag);
	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return 1;
		if (!strncmp(p, "W/", 2))
			p += 2;
		if (!strncmp(p, etag, n) && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return 1;
		while (*p && *p != ',')
			p++;
	}
	return 0;
}

int http_not_modified(struct http_req *r, const char *etag, int64_t lastmod)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	const char *inm = evhttp_find_header(in, "If-None-Match");
	const char *ims = evhttp_find_header(in, "If-Modified-Since");
	int match;
	/* RFC 9110 13.2.2: If-None-Match wins; If-Modified-Since only
	 * without it. */
	if (inm && etag)
		match = etag_listed(inm, etag);
	else if (!inm && ims && lastmod > 0)
		match = parse_http_time(ims) >= lastmod;
	else
		return 0;
	if (!match)
		return 0;
	http_security_headers(r->req);
	validators(r->req, etag, lastmod);
	evhttp_send_reply(r->req, 304, "Not Modified", NULL);
	return 1;
}

static void send_bytes(struct http_req *r, int code, const char *type, const char *data,
		       size_t len, const char *etag, int64_t lastmod)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	http_security_headers(r->req);
	evhttp_add_header(h, "Content-Type", type);
	validators(r->req, etag, lastmod);
	struct evbuffer *buf = evbuffer_new();
	if (!r->head)
		evbuffer_add(buf, data ? data : "", len);
	else {
		/* HEAD: the length the GET would have. */
		char n[32];
		snprintf(n, sizeof n, "%zu", len);
		evhttp_add_header(h, "Content-Length", n);
	}
	const char *reason = code == 200 ? "OK" : code == 304 ? "Not Modified" : NULL;
	evhttp_send_reply(r->req, code, reason, buf);
	evbuffer_free(buf);
}

void http_send(struct http_req *r, int code, const char *type, struct sbuf *body,
	       const char *etag, int64_t lastmod)
{
	send_bytes(r, code, type, body->buf, body->len, etag, lastmod);
	sbuf_free(body);
}

static const char html_type[] = "text/html; charset=utf-8";

int http_send_cached(struct http_req *r, const char *etag, int64_t lastmod)
{
	size_t len;
	const char *body = http_cache_get(r->hs, etag, &len);
	if (!body)
		return 0;
	send_bytes(r, 200, html_type, body, len, etag, lastmod);
	return 1;
}

void http_page(struct http_req *r, int code, const char *name, struct wv *v, const char *etag,
	       int64_t lastmod)
{
	struct sbuf out = {0};
	if (webtpl_render(r->hs->web, name, v, &out) < 0) {
		log_err("http: no page template %s", name);
		sbuf_free(&out);
		sbuf_adds(&out, "internal error\n");
		code = 500;
		etag = NULL;
	}
	wv_free(v);
	if (etag && code == 200)
		http_cache_put(r->hs, etag, out.buf, out.len);
	http_send(r, code, html_type, &out, etag, lastmod);
}

void http_attachment_header(struct http_req *r, const char *name)
{
	struct sbuf b = {0};
	sbuf_adds(&b, "attachment; filename=\"");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		sbuf_addc(&b, (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') ? '_'
										   : (char)*p);
	sbuf_adds(&b, "\"; filename*=UTF-8''");
	html_url_part(&b, name);
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Disposition",
			  b.buf);
	sbuf_free(&b);
}

void http_list_path(struct sbuf *b, const struct list_cfg *l)
{
	sbuf_addc(b, '/');
	html_url_part(b, l->name);
}

void http_base(struct sbuf *b, const struct config *cfg)
{
	const char *base = cfg->base_url ? cfg->base_url : "";
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		n--;
	sbuf_add(b, base, n);
}

struct wv *http_view(struct http_req *r, const char *title)
{
	const struct config *cfg = r->hs->cfg;
	struct wv *v = wv_new();
	wv_text(v, "title", title);
	wv_text(v, "site", cfg->hostname);
	wv_text(v, "version", DIALOGUE_VERSION);
	const struct list_cfg *l = r->list;
	if (!l)
		return v;
	struct sbuf p = {0};
	html_url_part(&p, l->name);
	wv_text(v, "list_path", p.buf);
	sbuf_free(&p);
	wv_text(v, "list", l->name);
	wv_text(v, "list_title", config_list_title(l));
	wv_text(v, "description", l->description);
	wv_text(v, "address", l->address);
	wv_flag(v, "has_archive", l->archive == ARCHIVE_PUBLIC);
	wv_flag(v, "can_join", l->subscribe_policy != SUB_CLOSED);
	wv_flag(v, "needs_approval", l->subscribe_policy == SUB_APPROVE);
	return v;
}

void http_notice(struct http_req *r, int code, const char *heading, const char *message,
		 const char *back_url, const char *back_label)
{
	struct wv *v = http_view(r, heading);
	wv_text(v, "heading", heading);
	wv_text(v, "message", message);
	wv_text(v, "back_url", back_url);
	wv_text(v, "back_label", back_label);
	wv_flag(v, "noindex", 1);
	http_page(r, code, "notice", v, NULL, 0);
}

void http_busy(struct http_req *r)
{
	r->list = NULL; /* nothing about a list on an error page */
	http_notice(r, 503, "Please try again",
		    "The site could not answer just now. Please try again in a minute.", NULL,
		    NULL);
}

void http_not_found(struct http_req *r)
{
	r->list = NULL; /* the page must not differ for a private list */
	http_notice(r, 404, "Not found", "There is nothing at this address.", "/",
		    "All lists");
}

int http_param(struct http_req *r, int from_body, const char *name, char *out, size_t outlen)
{
	if (!from_body)
		return r->query ? html_form_value(r->query, strlen(r->query), name, out, outlen) : 0;
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	const char *body = (const char *)evbuffer_pullup(in, -1);
	return body ? html_form_value(body, len, name, out, outlen) : 0;
}

void http_date_text(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M UTC", &tm))
		out[0] = '\0';
}

int64_t http_msg_time(const struct store_archived *a)
{
	/* A Date more than a day ahead of our clock, or a month behind (mail
	 * delayed that long is rare), is a broken or lying client. */
	if (a->date > 0 && a->date < a->received + 86400 && a->date > a->received - 30 * 86400)
		return a->date;
	return a->received;
}

/* Last-Modified of a list's pages: when this process first saw the list
 * in its current STATE (an archive change or a reload), always later than
 * the state before; at the first sight after a start, the newest message's
 * arrival or the start. The arrival of the newest message alone can go
 * back (a held post approved late is archived with its arrival time), and
 * two changes within one second would share a date, so that a client
 * asking If-Modified-Since could be told nothing changed. Only a new state
 * costs a query. */
static int list_changed(struct http_req *r, const char *state, int64_t last_id,
			int64_t *changed)
{
	struct http_server *hs = r->hs;
	struct http_list_seen *seen = NULL;
	for (size_t i = 0; i < hs->n_seen && !seen; i++)
		if (!strcmp(hs->seen[i].list, r->list->name))
			seen = &hs->seen[i];
	if (seen && !strcmp(seen->state, state)) {
		*changed = seen->changed;
		return STORE_OK;
	}
	if (seen) {
		int64_t now = now_epoch();
		seen->changed = now > seen->changed ? now : seen->changed + 1;
	} else {
		int64_t since = hs->loaded;
		struct store_archived a;
		int rc = last_id ? store_archive_get(hs->st, last_id, &a) : STORE_NOTFOUND;
		if (rc == STORE_OK) {
			if (a.received > since)
				since = a.received;
			store_archived_clear(&a);
		} else if (rc != STORE_NOTFOUND) {
			return rc;
		}
		hs->seen = xrealloc(hs->seen, (hs->n_seen + 1) * sizeof *hs->seen);
		seen = &hs->seen[hs->n_seen++];
		seen->list = xstrdup(r->list->name);
		seen->state = NULL;
		seen->changed = since;
	}
	free(seen->state);
	seen->state = xstrdup(state);
	*changed = seen->changed;
	return STORE_OK;
}

int http_list_state(struct http_req *r, char *etag_part, size_t len, int64_t *lastmod)
{
	long count = 0;
	int64_t last = 0;
	int rc = store_archive_stats(r->hs->st, r->list->name, &count, &last);
	if (rc != STORE_OK)
		return rc;
	/* The list's name too: two empty lists have the same count and last
	 * id, and a page (or the cache) must never stand in for another's. */
	struct sbuf name = {0};
	html_url_part(&name, r->list->name);
	snprintf(etag_part, len, "%s-%ld-%lld-%s", name.buf, count, (long long)last, r->hs->tag);
	sbuf_free(&name);
	return list_changed(r, etag_part, last, lastmod);
}

/* ---- routing ---- */

static void req_free(struct http_req *r)
{
	for (size_t i = 0; i < r->n_segs; i++)
		free(r->segs[i]);
}

/* Split PATH into percent-decoded segments; -1 for a path we never serve
 * (too many segments, NUL or '/' hidden in a segment, dot segments). */
static int split_path(struct http_req *r, const char *path)
{
	if (!path || path[0] != '/')
		return -1;
	const char *p = path + 1;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || r->n_segs == HTTP_MAX_SEGS)
			return -1;
		char *raw = xstrndup(p, n);
		size_t dlen = 0;
		char *seg = evhttp_uridecode(raw, 0, &dlen);
		free(raw);
		if (!seg || dlen != strlen(seg) || strchr(seg, '/') || !strcmp(seg, ".") ||
		    !strcmp(seg, "..")) {
			free(seg);
			return -1;
		}
		r->segs[r->n_segs++] = seg;
		if (!e)
			return 0;
		p = e + 1;
		if (!*p)
			r->trailing_slash = 1;
	}
	return 0;
}

static int strtoid(const char *s, int64_t *out)
{
	char *end;
	if (!s[0] || s[0] == '0' || strlen(s) > 18)
		return -1;
	long long v = strtoll(s, &end, 10);
	if (*end || v <= 0)
		return -1;
	*out = v;
	return 0;
}

/* May the request's method go to a page (GET, HEAD) or, when FORM, a form
 * (and POST)? If not, 405 with the methods the address takes, from our
 * own code so that it carries the security headers (libevent's own 501
 * would not). */
static int method_allowed(struct http_req *r, int form)
{
	if (!r->other && (form || !r->post))
		return 1;
	evhttp_add_header(evhttp_request_get_output_headers(r->req), "Allow",
			  form ? "GET, HEAD, POST" : "GET, HEAD");
	http_notice(r, 405, "Method not allowed", "This address does not take that request.",
		    "/", "All lists");
	return 0;
}

static void send_css(struct http_req *r)
{
	size_t len;
	const char *css = webtpl_css(r->hs->web, &len);
	char etag[64];
	snprintf(etag, sizeof etag, "\"css-%s\"", r->hs->tag);
	if (http_not_modified(r, etag, r->hs->loaded))
		return;
	struct sbuf b = {0};
	sbuf_add(&b, css, len);
	http_send(r, 200, "text/css; charset=utf-8", &b, etag, r->hs->loaded);
}

/* The routes under /L/ (the list is public or takes joins). */
static void route_list(struct http_req *r)
{
	const char *a = r->n_segs > 1 ? r->segs[1] : NULL;
	const char *b = r->n_segs > 2 ? r->segs[2] : NULL;
	int archive = r->list->archive == ARCHIVE_PUBLIC;
	int64_t id;

	if (r->n_segs == 2 && !strcmp(a, "subscribe") && !r->trailing_slash) {
		if (method_allowed(r, 1))
			http_subscribe(r);
		return;
	}
	if (r->n_segs == 3 && !strcmp(a, "unsubscribe") && !r->trailing_slash) {
		if (method_allowed(r, 1))
			http_unsubscribe(r, b);
		return;
	}
	if (!method_allowed(r, 0))
		return;
	if (r->n_segs == 1) {
		if (!r->trailing_slash) { /* /L: the page is /L/ */
			struct sbuf loc = {0};
			http_list_path(&loc, r->list);
			sbuf_addc(&loc, '/');
			evhttp_add_header(evhttp_request_get_output_headers(r->req), "Location",
					  loc.buf);
			sbuf_free(&loc);
			http_notice(r, 301, "Moved", "The list's page has a slash at the end.",
				    NULL, NULL);
			return;
		}
		http_list_page(r);
		return;
	}
	if (!archive || r->trailing_slash) {
		http_not_found(r);
		return;
	}
	if (r->n_segs == 2 && !strcmp(a, "search"))
		http_search_page(r);
	else if (r->n_segs == 2 && !strcmp(a, "atom.xml"))
		http_atom(r);
	else if (r->n_segs == 2 && !strncmp(a, r->list->name, strlen(r->list->name)) &&
		 !strcmp(a + strlen(r->list->name), ".mbox"))
		http_mbox(r);
	else if (r->n_segs == 3 && !strcmp(a, "m") && strtoid(b, &id) == 0)
		http_message_page(r, id);
	else if (r->n_segs == 5 && !strcmp(a, "m") && strtoid(b, &id) == 0 &&
		 !strcmp(r->segs[3], "att")) {
		int64_t n;
		if (strtoid(r->segs[4], &n) == 0 && n < 1000)
			http_attachment(r, id, (long)n);
		else
			http_not_found(r);
	} else
		http_not_found(r);
}

/* A list the website shows: a public archive, or no archive but joins. A
 * private list is treated exactly like one that does not exist. */
int http_list_shown(const struct list_cfg *l)
{
	if (l->archive == ARCHIVE_PRIVATE)
		return 0;
	return l->archive != ARCHIVE_NONE || l->subscribe_policy != SUB_CLOSED;
}

static const struct list_cfg *web_list(const struct config *cfg, const char *name)
{
	const struct list_cfg *l = config_find_list(cfg, name);
	return l && http_list_shown(l) ? l : NULL;
}

static void dispatch(struct http_req *r)
{
	if (r->n_segs == 0) {
		if (method_allowed(r, 0))
			http_index(r);
		return;
	}
	if (r->n_segs == 1 && !strcmp(r->segs[0], "style.css") && !r->trailing_slash) {
		if (method_allowed(r, 0))
			send_css(r);
		return;
	}
	if (r->n_segs == 2 && !strcmp(r->segs[0], "confirm") && !r->trailing_slash) {
		if (method_allowed(r, 1))
			http_confirm(r, r->segs[1]);
		return;
	}
	/* A member of a private list has a one-click link too: the token is
	 * the authority there, and a wrong one gets the same 404 as anything
	 * else. */
	if (r->n_segs == 3 && !strcmp(r->segs[1], "unsubscribe") && !r->trailing_slash &&
	    (r->list = config_find_list(r->hs->cfg, r->segs[0])) != NULL) {
		if (method_allowed(r, 1))
			http_unsubscribe(r, r->segs[2]);
		return;
	}
	r->list = web_list(r->hs->cfg, r->segs[0]);
	if (!r->list) {
		http_not_found(r);
		return;
	}
	route_list(r);
}

/* Behind a proxy we trust ([http] trusted_proxies), the client is the
 * last address the proxy appended to X-Forwarded-For: the per-IP limit of
 * joins must count people, not nginx. Earlier entries are the client's
 * own claims and never believed. */
static void client_behind_proxy(struct http_req *r)
{
	const struct config *cfg = r->hs->cfg;
	if (!smtp_ip_listed(r->ip, cfg->http_proxies, cfg->n_http_proxies))
		return;
	const char *xff = evhttp_find_header(evhttp_request_get_input_headers(r->req),
					     "X-Forwarded-For");
	if (!xff)
		return;
	const char *last = strrchr(xff, ',');
	last = last ? last + 1 : xff;
	while (*last == ' ' || *last == '\t')
		last++;
	char ip[sizeof r->ip];
	snprintf(ip, sizeof ip, "%s", last);
	str_trim(ip);
	struct in6_addr a6;
	struct in_addr a4;
	if (inet_pton(AF_INET, ip, &a4) == 1 || inet_pton(AF_INET6, ip, &a6) == 1)
		memcpy(r->ip, ip, sizeof ip);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http_server *hs = arg;
	struct http_req r = {.hs = hs, .req = req};
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	r.head = cmd == EVHTTP_REQ_HEAD;
	r.post = cmd == EVHTTP_REQ_POST;
	r.other = !r.head && !r.post && cmd != EVHTTP_REQ_GET;

	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	if (conn) {
		char *host = NULL;
		ev_uint16_t port = 0;
		evhttp_connection_get_peer(conn, &host, &port);
		snprintf(r.ip, sizeof r.ip, "%s", host ? host : "");
	}
	client_behind_proxy(&r);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	if (!uri || split_path(&r, evhttp_uri_get_path(uri)) < 0) {
		http_not_found(&r);
		req_free(&r);
		return;
	}
	r.query = evhttp_uri_get_query(uri);
	store_set_time_limit(hs->st, HTTP_REQUEST_DB_MS);
	dispatch(&r);
	store_set_time_limit(hs->st, 0);
	req_free(&r);
}

/* ---- the server ---- */

struct http_server *http_server_new(struct event_base *base, struct store *st,
				    const unsigned char key[SECRET_LEN], void (*kick)(void *),
				    void *arg)
{
	struct http_server *hs = xcalloc(1, sizeof *hs);
	hs->base = base;
	hs->st = st;
	memcpy(hs->key, key, SECRET_LEN);
	hs->kick = kick;
	hs->kick_arg = arg;
	return hs;
}

void http_server_set_config(struct http_server *hs, const struct config *cfg,
			    const struct templates *mail, struct webtpl *web)
{
	hs->cfg = cfg;
	hs->mail = mail;
	if (web != hs->web) {
		webtpl_free(hs->web);
		hs->web = web;
	}
	hs->loaded = now_epoch();
	hs->generation++;
	http_cache_clear(hs);
	/* Pages show config values (titles, descriptions): a reload is a new
	 * generation, so no cached page outlives it. */
	snprintf(hs->tag, sizeof hs->tag, "%s-%llx-%u", webtpl_tag(web),
		 (unsigned long long)hs->loaded, hs->generation);
}

int http_server_listen(struct http_server *hs, char *err, size_t errlen)
{
	const struct config *cfg = hs->cfg;
	if (!cfg || cfg->n_http_listen == 0)
		return 0;
	hs->http = evhttp_new(hs->base);
	if (!hs->http) {
		snprintf(err, errlen, "http: cannot create the server");
		return -1;
	}
	evhttp_set_max_headers_size(hs->http, MAX_HEADERS_SIZE);
	evhttp_set_max_body_size(hs->http, MAX_BODY_SIZE);
	evhttp_set_timeout(hs->http, REQUEST_TIMEOUT);
	evhttp_set_allowed_methods(hs->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						     EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(hs->http, "text/html; charset=utf-8");
	evhttp_set_gencb(hs->http, on_request, hs);
	for (size_t i = 0; i < cfg->n_http_listen; i++) {
		const struct listen_addr *a = &cfg->http_listen[i];
		char *end;
		unsigned long port = strtoul(a->port, &end, 10);
		if (*end || port == 0 || port > 65535 ||
		    !evhttp_bind_socket_with_handle(hs->http, a->host, (ev_uint16_t)port)) {
			snprintf(err, errlen, "http: cannot listen on %s:%s", a->host, a->port);
			return -1;
		}
		log_info("http: listening on %s:%s", a->host, a->port);
	}
	return 0;
}

void http_server_free(struct http_server *hs)
{
	if (!hs)
		return;
	if (hs->http)
		evhttp_free(hs->http);
	http_streams_free(hs);
	http_cache_clear(hs);
	for (size_t i = 0; i < hs->n_seen; i++) {
		free(hs->seen[i].list);
		free(hs->seen[i].state);
	}
	free(hs->seen);
	webtpl_free(hs->web);
	free(hs);
}
