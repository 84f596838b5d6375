/* http_forms: the pages that change something — join, confirm, and the
 * one-click unsubscribe. A GET only ever shows a button (mail scanners
 * follow links); the POST acts. Forms carry a CSRF token, an HMAC of the
 * site secret over the form's path and the day, so no cookie is needed. */
#define _GNU_SOURCE /* memmem(), strchrnul() */
#include "http_int.h"

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "membership.h"
#include "subscribe.h"
#include "token.h"

#define CSRF_WINDOW 86400

static void csrf_for(const struct http_server *hs, const char *path, int64_t window,
		     char out[32])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char msg[600];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	int n = snprintf(msg, sizeof msg, "csrf\n%s\n%lld", path, (long long)window);
	HMAC(EVP_sha256(), hs->key, SECRET_LEN, (const unsigned char *)msg,
	     (size_t)(n < 0 ? 0 : n), mac, &len);
	/* 22 characters of base64url: 132 bits. */
	for (int i = 0; i < 22; i++) {
		int bit = i * 6, byte = bit / 8, shift = bit % 8;
		unsigned v = ((unsigned)mac[byte] << 8 | mac[byte + 1]) >> (10 - shift);
		out[i] = b64[v & 63];
	}
	out[22] = '\0';
}

/* The path a form is for: the request's own (a form posts back to the
 * page that shows it), rebuilt from its decoded segments so that any
 * spelling of it gets the same token. */
static void form_path(const struct http_req *r, struct sbuf *b)
{
	for (size_t i = 0; i < r->n_segs; i++) {
		sbuf_addc(b, '/');
		html_url_part(b, r->segs[i]);
	}
}

/* The CSRF token of the form at R's path, today. */
static void csrf_make(const struct http_req *r, char out[32])
{
	struct sbuf path = {0};
	form_path(r, &path);
	csrf_for(r->hs, path.buf, now_epoch() / CSRF_WINDOW, out);
	sbuf_free(&path);
}

/* A form fetched today or yesterday is good; so is nothing else. */
static int csrf_ok(const struct http_server *hs, const char *path, const char *given)
{
	char want[32];
	int64_t w = now_epoch() / CSRF_WINDOW;
	if (strlen(given) != 22)
		return 0;
	for (int64_t k = w; k >= w - 1; k--) {
		csrf_for(hs, path, k, want);
		if (CRYPTO_memcmp(want, given, 22) == 0)
			return 1;
	}
	return 0;
}

/* A POST from a page of another site (where the browser says so) is
 * refused even with a token: forms are only ever sent from our pages. */
static int cross_site(struct http_req *r)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	/* The browser's own word, when it gives it, decides: it knows the
	 * page the form came from, whatever host name the site was opened by
	 * (a visitor on http://localhost of a site whose base_url says
	 * 127.0.0.1 is still on our page). */
	const char *site = evhttp_find_header(in, "Sec-Fetch-Site");
	if (site)
		return strcmp(site, "same-origin") && strcmp(site, "none");
	/* "Origin: null" is what a browser sends for our own forms, too: our
	 * pages say Referrer-Policy: no-referrer, which also blanks the
	 * Origin of a POST. Browsers that say so tell Sec-Fetch-Site (above);
	 * for the others a null origin proves nothing either way. */
	const char *origin = evhttp_find_header(in, "Origin");
	if (!origin || !strcmp(origin, "null"))
		return 0;
	struct sbuf base = {0};
	http_base(&base, r->hs->cfg);
	/* The origin is scheme://host[:port]: base_url up to its path. */
	const char *p = strstr(base.buf ? base.buf : "", "://");
	size_t n = p ? (size_t)(strchrnul(p + 3, '/') - base.buf) : base.len;
	int bad = strlen(origin) != n || ascii_strncasecmp(origin, base.buf, n);
	sbuf_free(&base);
	return bad;
}

/* Is the request from a browser? Browsers say where a POST comes from
 * (Sec-Fetch-Site, or at least Origin); a program (curl, a script, an MTA's
 * one-click) says neither. */
static int from_browser(struct http_req *r)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
	return evhttp_find_header(in, "Sec-Fetch-Site") || evhttp_find_header(in, "Origin");
}

/* May this POST act? Cross-site request forgery is a browser's doing, so a
 * browser's POST must carry the token of our form and come from our own
 * page; a program's POST needs no token (it could fetch the form as
 * easily: the token binds to nothing it holds), but a token it does send
 * must be good. On refusal answer 403 and return 0. */
static int post_allowed(struct http_req *r)
{
	char given[64] = "";
	int has = http_param(r, 1, "csrf", given, sizeof given);
	int ok = !cross_site(r);
	if (ok && (has != 0 || from_browser(r))) {
		struct sbuf path = {0};
		form_path(r, &path);
		ok = has > 0 && csrf_ok(r->hs, path.buf, given);
		sbuf_free(&path);
	}
	if (ok)
		return 1;
	http_notice(r, 403, "Form expired",
		    "This form is out of date or did not come from this site. Please reload "
		    "the page and try again.",
		    NULL, NULL);
	return 0;
}

static void kick(struct http_req *r)
{
	if (r->hs->kick)
		r->hs->kick(r->hs->kick_arg);
}

static void log_result(struct http_req *r, int rc, struct subscribe_web_result *res)
{
	if (rc == STORE_OK && res->outcome && *res->outcome)
		log_info("http: %s", res->outcome);
	else if (rc != STORE_OK)
		log_warn("http: request from %s failed: %s", r->ip, store_errmsg(r->hs->st));
	subscribe_web_result_clear(res);
}

/* ---- /L/subscribe ---- */

static void subscribe_form(struct http_req *r, int code, const char *error,
			   const char *address, const char *name, const char *group)
{
	const struct list_cfg *l = r->list;
	const char *title = config_list_title(l);
	struct wv *v = http_view(r, title);
	wv_textf(v, "title", "Join %s", title);
	char csrf[32];
	csrf_make(r, csrf);
	wv_text(v, "csrf", csrf);
	wv_text(v, "error", error);
	wv_text(v, "form_address", address);
	wv_text(v, "form_name", name);
	for (size_t i = 0; i < l->n_groups; i++) {
		struct wv *it = wv_item(v, "group_items");
		wv_text(it, "group", l->stakeholder_groups[i]);
		wv_flag(it, "selected", group && !ascii_strcasecmp(group, l->stakeholder_groups[i]));
	}
	wv_flag(v, "groups", l->n_groups > 0);
	wv_flag(v, "noindex", 1);
	http_page(r, code, "subscribe", v, NULL, 0);
}

void http_subscribe(struct http_req *r)
{
	const struct list_cfg *l = r->list;
	if (l->subscribe_policy == SUB_CLOSED) {
		http_not_found(r);
		return;
	}
	if (!r->post) {
		subscribe_form(r, 200, NULL, NULL, NULL, NULL);
		return;
	}
	if (!post_allowed(r))
		return;
	char address[300] = "", name[256] = "", group[80] = "";
	if (http_param(r, 1, "address", address, sizeof address) <= 0 ||
	    http_param(r, 1, "name", name, sizeof name) < 0 ||
	    http_param(r, 1, "stakeholder", group, sizeof group) < 0) {
		subscribe_form(r, 400, "Please give your email address.", address, name, group);
		return;
	}
	struct subscribe_web_result res = {0};
	int rc = subscribe_web_join(r->hs->st, r->hs->cfg, r->hs->mail, l, str_trim(address),
				    str_trim(name), str_trim(group), r->ip, now_epoch(), &res);
	if (rc == STORE_OK && res.verdict != MEMBERSHIP_OK) {
		const char *why = res.verdict == MEMBERSHIP_BAD_ADDRESS
					  ? "That is not an email address we can send to."
					  : "Please choose your stakeholder group.";
		subscribe_web_result_clear(&res);
		subscribe_form(r, 400, why, address, name, group);
		return;
	}
	log_result(r, rc, &res);
	if (rc != STORE_OK) {
		http_busy(r);
		return;
	}
	kick(r);
	/* The same words whoever asks: a member, a stranger, or an address
	 * past its limits all read this (and only the mailbox learns more). */
	struct sbuf back = {0};
	http_list_path(&back, r->list);
	sbuf_addc(&back, '/');
	http_notice(r, 200, "Check your mail",
		    "If this address can join, a mail is on its way to it: answer it, or follow "
		    "its link, to complete your request.",
		    back.buf, "Back to the list");
	sbuf_free(&back);
}

/* ---- /confirm/TOKEN ---- */

static void bad_token(struct http_req *r, enum subscribe_token_state state)
{
	if (state == SUBSCRIBE_TOKEN_UNKNOWN)
		http_notice(r, 404, "Link not valid",
			    "This confirmation link is not one of ours, or it was changed on the "
			    "way.",
			    "/", "All lists");
	else
		http_notice(r, 410, state == SUBSCRIBE_TOKEN_USED ? "Already done" : "Link expired",
			    state == SUBSCRIBE_TOKEN_USED
				    ? "This confirmation link has already been used: each works "
				      "once."
				    : "This confirmation link has expired. You can ask again.",
			    "/", "All lists");
}

static void confirm_page(struct http_req *r, const char *token, const struct store_token *tok,
			 const struct list_cfg *l)
{
	const char *title = config_list_title(l);
	int leave = !strcmp(tok->action, "leave");
	r->list = l;
	struct wv *v = http_view(r, leave ? "Confirm leaving" : "Confirm joining");
	wv_text(v, "heading", leave ? "Leave the list?" : "Join the list?");
	if (leave)
		wv_textf(v, "what", "%s will stop receiving %s.", tok->address, title);
	else
		wv_textf(v, "what", "%s will %s %s.", tok->address,
			 !strcmp(tok->action, "invite") ? "accept the invitation to"
			 : l->subscribe_policy == SUB_APPROVE ? "ask the moderators to join"
							      : "join",
			 title);
	wv_text(v, "button", leave ? "Yes, unsubscribe me" : "Yes, subscribe me");
	wv_text(v, "token", token);
	char csrf[32];
	csrf_make(r, csrf);
	wv_text(v, "csrf", csrf);
	wv_flag(v, "noindex", 1);
	http_page(r, 200, "confirm", v, NULL, 0);
}

void http_confirm(struct http_req *r, const char *token)
{
	if (!token_syntax_ok(token)) {
		bad_token(r, SUBSCRIBE_TOKEN_UNKNOWN);
		return;
	}
	if (!r->post) {
		char hash[TOKEN_HASH_LEN + 1];
		struct store_token tok;
		enum subscribe_token_state state;
		int rc = subscribe_token_lookup(r->hs->st, token, now_epoch(), hash, &tok, &state);
		const struct list_cfg *l =
			rc == STORE_OK && state == SUBSCRIBE_TOKEN_OK
				? config_find_list(r->hs->cfg, tok.list)
				: NULL;
		if (rc != STORE_OK)
			http_busy(r);
		else if (state != SUBSCRIBE_TOKEN_OK || !l)
			bad_token(r, l || state != SUBSCRIBE_TOKEN_OK ? state
								      : SUBSCRIBE_TOKEN_UNKNOWN);
		else
			confirm_page(r, token, &tok, l);
		store_token_clear(&tok);
		return;
	}
	if (!post_allowed(r))
		return;
	struct subscribe_web_result res = {0};
	int rc = subscribe_web_confirm(r->hs->st, r->hs->cfg, r->hs->mail, token, r->ip,
				       now_epoch(), &res);
	enum subscribe_token_state state = res.state;
	log_result(r, rc, &res);
	if (rc != STORE_OK) {
		http_busy(r);
		return;
	}
	if (state != SUBSCRIBE_TOKEN_OK) {
		bad_token(r, state);
		return;
	}
	kick(r);
	http_notice(r, 200, "Done",
		    "Your request has been carried out; a mail confirms what happened.", "/",
		    "All lists");
}

/* ---- /L/unsubscribe/TOKEN ---- */

/* RFC 8058: the POST carries "List-Unsubscribe=One-Click" (as a form,
 * urlencoded or multipart). Mail providers send exactly that, without
 * cookies or our CSRF token: the token in the URL is the authority. */
static int one_click_body(struct http_req *r)
{
	char v[32];
	if (http_param(r, 1, "List-Unsubscribe", v, sizeof v) > 0)
		return !strcmp(v, "One-Click");
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
	size_t len = evbuffer_get_length(in);
	const char *body = (const char *)evbuffer_pullup(in, -1);
	/* multipart/form-data: a part named List-Unsubscribe whose content is
	 * One-Click. */
	return body && memmem(body, len, "name=\"List-Unsubscribe\"", 23) &&
	       memmem(body, len, "One-Click", 9);
}

void http_unsubscribe(struct http_req *r, const char *token)
{
	const struct list_cfg *l = r->list;
	struct store_member m;
	/* The token first: until it names a member, every answer is the
	 * site's one 404 (a private list's name must not show). */
	int rc = token_syntax_ok(token) ? store_member_by_token(r->hs->st, l->name, token, &m)
					: STORE_NOTFOUND;
	if (rc == STORE_NOTFOUND) {
		http_not_found(r);
		return;
	}
	if (rc != STORE_OK) {
		http_busy(r);
		return;
	}
	if (!r->post) {
		struct wv *v = http_view(r, "Unsubscribe");
		wv_text(v, "token", token);
		wv_text(v, "address", m.address);
		wv_flag(v, "noindex", 1);
		store_member_free(&m);
		http_page(r, 200, "unsubscribe", v, NULL, 0);
		return;
	}
	store_member_free(&m);
	if (!one_click_body(r)) {
		http_notice(r, 400, "Bad request",
			    "An unsubscribe request says List-Unsubscribe=One-Click.", NULL, NULL);
		return;
	}
	struct subscribe_web_result res = {0};
	rc = subscribe_web_one_click(r->hs->st, r->hs->cfg, r->hs->mail, l, token, now_epoch(), &res);
	int found = res.found;
	log_result(r, rc, &res);
	if (rc != STORE_OK) {
		http_busy(r);
		return;
	}
	if (!found) { /* left by a request racing this one */
		http_not_found(r);
		return;
	}
	kick(r);
	http_notice(r, 200, "Unsubscribed", "You will receive no more mail from this list.", "/",
		    "All lists");
}
