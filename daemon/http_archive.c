/* http_archive: the pages people read — the lists, a list's threads, one
 * message with its attachments, and search. Every value from mail reaches
 * the page through the template's escaping or an html_* function. */
#include "http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "msg_parts.h"

#define THREADS_PER_PAGE 50
#define MSGS_PER_THREAD 100 /* shown under a thread on the list page */
#define HITS_PER_PAGE 20
#define MAX_DEPTH_SHOWN 8
#define MAX_PAGE 100000

/* ?page=N: 1 when absent; 0 when present but not a sane number. */
static long page_param(struct http_req *r)
{
	char v[16];
	int rc = http_param(r, 0, "page", v, sizeof v);
	if (rc == 0)
		return 1;
	char *end;
	long n = rc > 0 ? strtol(v, &end, 10) : 0;
	if (rc < 0 || *end || n < 1 || n > MAX_PAGE)
		return 0;
	return n;
}

static char *author_html(const char *name, const char *addr)
{
	struct sbuf b = {0};
	html_author(&b, name, addr);
	return sbuf_detach(&b);
}

/* The fields a message shows wherever it is listed. */
static void msg_fields(struct wv *v, const struct store_archived *a)
{
	char date[32], iso[32];
	int64_t t = http_msg_time(a);
	http_date_text(t, date);
	fmt_iso8601(t, iso);
	wv_textf(v, "id", "%lld", (long long)a->id);
	wv_text(v, "subject", a->subject && *a->subject ? a->subject : "(no subject)");
	wv_html(v, "author", author_html(a->from_name, a->from_addr));
	wv_text(v, "date", date);
	wv_text(v, "iso", iso);
}

/* "/L/?page=N&month=M" into a view value NAME. */
static void page_url(struct wv *v, const char *name, struct http_req *r, const char *sub,
		     const char *key, const char *val, long page)
{
	struct sbuf u = {0};
	http_list_path(&u, r->list);
	sbuf_addc(&u, '/');
	sbuf_adds(&u, sub);
	char sep = '?';
	if (val && *val) {
		sbuf_printf(&u, "%c%s=", sep, key);
		html_url_part(&u, val);
		sep = '&';
	}
	if (page > 1)
		sbuf_printf(&u, "%cpage=%ld", sep, page);
	wv_text(v, name, u.buf);
	sbuf_free(&u);
}

static void pager(struct wv *v, struct http_req *r, const char *sub, const char *key,
		  const char *val, long page, long pages)
{
	wv_flag(v, "paged", pages > 1);
	wv_textf(v, "page", "%ld", page);
	wv_textf(v, "pages", "%ld", pages);
	if (page > 1)
		page_url(v, "prev_url", r, sub, key, val, page - 1);
	if (page < pages)
		page_url(v, "next_url", r, sub, key, val, page + 1);
}

/* ---- / ---- */

void http_index(struct http_req *r)
{
	const struct config *cfg = r->hs->cfg;
	struct wv *v = http_view(r, "Mailing lists");
	struct sbuf etag = {0};
	sbuf_printf(&etag, "\"i-%s", r->hs->tag);
	for (size_t i = 0; i < cfg->n_lists; i++) {
		const struct list_cfg *l = &cfg->lists[i];
		if (!http_list_shown(l))
			continue;
		long members = 0, posts = 0;
		int64_t last = 0;
		if (store_member_count(r->hs->st, l->name, &members) != STORE_OK ||
		    store_archive_stats(r->hs->st, l->name, &posts, &last) != STORE_OK) {
			wv_free(v);
			sbuf_free(&etag);
			http_busy(r);
			return;
		}
		if (l->archive != ARCHIVE_PUBLIC)
			posts = 0;
		struct wv *it = wv_item(v, "lists");
		struct sbuf p = {0};
		html_url_part(&p, l->name);
		wv_text(it, "path", p.buf);
		sbuf_free(&p);
		wv_text(it, "title", config_list_title(l));
		wv_text(it, "description", l->description);
		wv_text(it, "address", l->address);
		wv_textf(it, "members", "%ld member%s", members, members == 1 ? "" : "s");
		wv_textf(it, "posts", "%ld message%s", posts, posts == 1 ? "" : "s");
		wv_flag(it, "can_join", l->subscribe_policy != SUB_CLOSED);
		sbuf_printf(&etag, "-%ld.%ld.%lld", members, posts, (long long)last);
	}
	sbuf_addc(&etag, '"');
	if (http_not_modified(r, etag.buf, 0) || http_send_cached(r, etag.buf, 0))
		wv_free(v);
	else
		http_page(r, 200, "index", v, etag.buf, 0);
	sbuf_free(&etag);
}

/* ---- /L/ ---- */

/* Show the messages of one thread (MSGS[0..n), oldest first) as a tree:
 * each reply under the message it answers, indented by its depth. */
static void thread_tree(struct wv *item, const struct store_archived *m, size_t n)
{
	size_t cap = n ? n : 1;
	size_t *parent = xcalloc(cap, sizeof *parent), *order = xcalloc(cap, sizeof *order);
	int *depth = xcalloc(cap, sizeof *depth);
	/* parent[i] = index of the message i answers (i itself for a root). */
	for (size_t i = 0; i < n; i++) {
		parent[i] = i;
		if (!m[i].in_reply_to || !*m[i].in_reply_to)
			continue;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(m[j].message_id, m[i].in_reply_to)) {
				parent[i] = j;
				break;
			}
	}
	/* Depth-first: a message, then its replies in order of arrival. Roots
	 * (the first message, and replies to messages not in the archive) at
	 * depth 0, or 1 when they are not the first. */
	size_t k = 0, *stack = xcalloc(cap, sizeof *stack), sp = 0;
	for (size_t root = n; root-- > 0;)
		if (parent[root] == root)
			stack[sp++] = root;
	while (sp > 0) {
		size_t i = stack[--sp];
		if (parent[i] == i)
			depth[i] = i == 0 ? 0 : 1;
		else
			depth[i] = depth[parent[i]] + 1;
		order[k++] = i;
		for (size_t c = n; c-- > i + 1;)
			if (parent[c] == i)
				stack[sp++] = c;
	}
	for (size_t x = 0; x < k; x++) {
		struct wv *mv = wv_item(item, "msgs");
		msg_fields(mv, &m[order[x]]);
		int d = depth[order[x]];
		wv_textf(mv, "depth", "%d", d > MAX_DEPTH_SHOWN ? MAX_DEPTH_SHOWN : d);
	}
	free(stack);
	free(parent);
	free(order);
	free(depth);
}

static int valid_month(const char *s)
{
	return strlen(s) == 7 && s[0] >= '1' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' &&
	       s[2] >= '0' && s[2] <= '9' && s[3] >= '0' && s[3] <= '9' && s[4] == '-' &&
	       ((s[5] == '0' && s[6] >= '1' && s[6] <= '9') ||
		(s[5] == '1' && s[6] >= '0' && s[6] <= '2'));
}

static void month_label(const char *month, char out[32])
{
	static const char *const names[] = {"January", "February", "March", "April",
					    "May", "June", "July", "August",
					    "September", "October", "November", "December"};
	int mo = (month[5] - '0') * 10 + (month[6] - '0');
	snprintf(out, 32, "%s %.4s", names[mo - 1], month);
}

static void add_months(struct http_req *r, struct wv *v, const char *current)
{
	struct store_month *months = NULL;
	size_t n = 0;
	if (store_archive_months(r->hs->st, r->list->name, &months, &n) != STORE_OK)
		return;
	size_t shown = 0;
	for (size_t i = 0; i < n; i++) {
		char label[32];
		/* A month is a set of threads started in it (what its page
		 * lists); one with replies only has nothing of its own. */
		if (!valid_month(months[i].month) || months[i].threads == 0)
			continue;
		shown++;
		struct wv *it = wv_item(v, "month_items");
		month_label(months[i].month, label);
		wv_text(it, "month", months[i].month);
		wv_text(it, "label", label);
		wv_textf(it, "count", "%ld", months[i].threads);
		wv_flag(it, "current", current && !strcmp(current, months[i].month));
	}
	wv_flag(v, "months", shown > 0);
	free(months);
}

void http_list_page(struct http_req *r)
{
	const char *title = config_list_title(r->list);
	struct wv *v = http_view(r, title);
	if (r->list->archive != ARCHIVE_PUBLIC) {
		http_page(r, 200, "list", v, NULL, 0);
		return;
	}
	char month[16] = "", state[96], etag[160];
	long page = page_param(r);
	int mrc = http_param(r, 0, "month", month, sizeof month);
	int64_t lastmod;
	if (page == 0 || mrc < 0 || (mrc > 0 && !valid_month(month))) {
		wv_free(v);
		http_not_found(r);
		return;
	}
	if (http_list_state(r, state, sizeof state, &lastmod) != STORE_OK) {
		wv_free(v);
		http_busy(r);
		return;
	}
	snprintf(etag, sizeof etag, "\"l-%s-%ld-%s\"", state, page, month);
	if (http_not_modified(r, etag, lastmod) || http_send_cached(r, etag, lastmod)) {
		wv_free(v);
		return;
	}
	struct store_thread *threads = NULL;
	struct store_archived *msgs = NULL;
	size_t n = 0, nm = 0;
	long total = 0;
	int rc = store_threads_page(r->hs->st, r->list->name, month[0] ? month : NULL,
				    (page - 1) * THREADS_PER_PAGE, THREADS_PER_PAGE, &threads, &n,
				    &total);
	int64_t *ids = xcalloc(n ? n : 1, sizeof *ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = threads[i].thread_id;
	if (rc == STORE_OK && n)
		rc = store_thread_messages(r->hs->st, r->list->name, ids, n, MSGS_PER_THREAD,
					   &msgs, &nm);
	free(ids);
	long pages = total > 0 ? (total + THREADS_PER_PAGE - 1) / THREADS_PER_PAGE : 1;
	if (rc != STORE_OK || page > pages) {
		store_threads_free(threads, n);
		store_archived_free(msgs, nm);
		wv_free(v);
		if (rc != STORE_OK)
			http_busy(r);
		else
			http_not_found(r);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct wv *it = wv_item(v, "thread_items");
		size_t first = 0;
		while (first < nm && msgs[first].thread_id != threads[i].thread_id)
			first++;
		size_t end = first;
		while (end < nm && msgs[end].thread_id == threads[i].thread_id)
			end++;
		thread_tree(it, msgs + first, end - first);
		wv_textf(it, "replies", "%ld message%s", threads[i].count,
			 threads[i].count == 1 ? "" : "s");
		wv_flag(it, "more", threads[i].count > (long)(end - first));
		wv_textf(it, "last_id", "%lld", (long long)threads[i].last_id);
	}
	wv_flag(v, "threads", n > 0);
	add_months(r, v, month[0] ? month : NULL);
	if (month[0]) {
		char label[32];
		month_label(month, label);
		wv_textf(v, "heading", "Threads started in %s", label);
		wv_flag(v, "month_filter", 1);
	} else {
		wv_text(v, "heading", "Latest threads");
	}
	pager(v, r, "", "month", month, page, pages);
	if (page > 1 || month[0])
		wv_textf(v, "title", "%s — %s, page %ld", title, month[0] ? month : "threads",
			 page);
	struct sbuf feed = {0};
	http_list_path(&feed, r->list);
	sbuf_adds(&feed, "/atom.xml");
	wv_text(v, "feed_url", feed.buf);
	sbuf_free(&feed);
	store_threads_free(threads, n);
	store_archived_free(msgs, nm);
	http_page(r, 200, "list", v, etag, lastmod);
}

/* ---- /L/m/ID ---- */

static void size_text(size_t n, char out[32])
{
	if (n < 1024)
		snprintf(out, 32, "%zu bytes", n);
	else if (n < 1024 * 1024)
		snprintf(out, 32, "%.1f KiB", n / 1024.0);
	else
		snprintf(out, 32, "%.1f MiB", n / (1024.0 * 1024.0));
}

static void add_attachments(struct wv *v, const char *raw, size_t len)
{
	struct msg_part *parts = NULL;
	size_t n = 0;
	msg_parts_list(raw, len, &parts, &n);
	for (size_t i = 0; i < n; i++) {
		char size[32];
		struct wv *it = wv_item(v, "att_items");
		wv_textf(it, "n", "%zu", i + 1);
		wv_text(it, "filename", parts[i].filename);
		wv_text(it, "type", parts[i].content_type);
		size_text(parts[i].size, size);
		wv_text(it, "size", size);
	}
	wv_flag(v, "attachments", n > 0);
	msg_parts_free(parts, n);
}

/* Archived message ID, when it is the request's list's (STORE_NOTFOUND
 * otherwise, whatever other list holds it). Without its body: a page
 * served from the cache, or a 304, needs none. */
static int message_of_list(struct http_req *r, int64_t id, struct store_archived *a)
{
	int rc = store_archive_get(r->hs->st, id, a);
	if (rc == STORE_OK && strcmp(a->list, r->list->name) != 0) {
		store_archived_clear(a);
		rc = STORE_NOTFOUND;
	}
	return rc;
}

static void reply_url(struct wv *v, const struct list_cfg *l, const struct store_archived *a)
{
	struct sbuf u = {0};
	sbuf_adds(&u, "mailto:");
	sbuf_adds(&u, l->address);
	sbuf_adds(&u, "?subject=");
	const char *s = a->subject ? a->subject : "";
	char *subj = ascii_strncasecmp(s, "re:", 3) ? xasprintf("Re: %s", s) : xstrdup(s);
	html_url_part(&u, subj);
	free(subj);
	if (a->message_id && *a->message_id) {
		char *mid = xasprintf("<%s>", a->message_id);
		sbuf_adds(&u, "&In-Reply-To=");
		html_url_part(&u, mid);
		free(mid);
	}
	wv_text(v, "reply_url", u.buf);
	sbuf_free(&u);
}

void http_message_page(struct http_req *r, int64_t id)
{
	struct store_archived a;
	char *body = NULL, *raw = NULL, state[96] = "", etag[200];
	size_t len = 0;
	int64_t prev = 0, next = 0, lastmod = 0;
	int rc = message_of_list(r, id, &a);
	if (rc == STORE_NOTFOUND) {
		http_not_found(r);
		return;
	}
	if (rc != STORE_OK) {
		http_busy(r);
		return;
	}
	rc = store_thread_neighbours(r->hs->st, r->list->name, a.thread_id, id, &prev, &next);
	if (rc == STORE_OK)
		rc = http_list_state(r, state, sizeof state, &lastmod);
	/* The page changes only when a message is archived (its thread links)
	 * or the site is reloaded: the list's state covers both. */
	snprintf(etag, sizeof etag, "\"m%lld-%s\"", (long long)id, state);
	if (rc == STORE_OK &&
	    (http_not_modified(r, etag, lastmod) || http_send_cached(r, etag, lastmod))) {
		store_archived_clear(&a);
		return;
	}
	/* One read of the stored message for its text and its attachments. */
	if (rc == STORE_OK)
		rc = store_archive_raw(r->hs->st, id, &raw, &len, &body);
	if (rc != STORE_OK) {
		store_archived_clear(&a);
		http_busy(r);
		return;
	}
	struct wv *v = http_view(r, a.subject && *a.subject ? a.subject : "(no subject)");
	msg_fields(v, &a);
	struct sbuf html = {0};
	html_body(&html, body ? body : "", body ? strlen(body) : 0);
	wv_html(v, "body", sbuf_detach(&html));
	wv_flag(v, "unparsed", a.unparsed);
	if (prev)
		wv_textf(v, "prev_id", "%lld", (long long)prev);
	if (next)
		wv_textf(v, "next_id", "%lld", (long long)next);
	reply_url(v, r->list, &a);
	add_attachments(v, raw, len);
	free(raw);
	free(body);
	store_archived_clear(&a);
	http_page(r, 200, "message", v, etag, lastmod);
}

/* ---- /L/m/ID/att/N ---- */

void http_attachment(struct http_req *r, int64_t id, long n)
{
	struct store_archived a;
	char *raw = NULL, *data = NULL;
	size_t len = 0, dlen = 0;
	struct msg_part info;
	int rc = message_of_list(r, id, &a);
	if (rc == STORE_OK)
		store_archived_clear(&a);
	char etag[64];
	snprintf(etag, sizeof etag, "\"a%lld-%ld\"", (long long)id, n);
	if (rc == STORE_OK && http_not_modified(r, etag, 0))
		return;
	if (rc == STORE_OK)
		rc = store_archive_raw(r->hs->st, id, &raw, &len, NULL);
	if (rc == STORE_OK && msg_parts_get(raw, len, (size_t)n, &data, &dlen, &info) < 0)
		rc = STORE_NOTFOUND;
	free(raw);
	if (rc != STORE_OK) {
		if (rc == STORE_NOTFOUND)
			http_not_found(r);
		else
			http_busy(r);
		return;
	}
	/* Never rendered by the browser: whatever the mail said it is, it is
	 * downloaded as bytes (no sniffing, no inline HTML or SVG). */
	http_attachment_header(r, info.filename);
	msg_part_clear(&info);
	struct sbuf b = {.buf = data, .len = dlen, .cap = dlen};
	http_send(r, 200, "application/octet-stream", &b, etag, 0);
}

/* ---- /L/search?q= ---- */

void http_search_page(struct http_req *r)
{
	char q[256] = "";
	long page = page_param(r);
	int qrc = http_param(r, 0, "q", q, sizeof q);
	struct wv *v = http_view(r, "Search");
	if (qrc < 0 || page == 0) {
		wv_free(v);
		http_notice(r, 400, "Bad request", "The search words are too long or malformed.",
			    NULL, NULL);
		return;
	}
	str_trim(q);
	wv_text(v, "q", q);
	wv_flag(v, "noindex", 1);
	if (!q[0]) {
		http_page(r, 200, "search", v, NULL, 0);
		return;
	}
	struct store_hit *hits = NULL;
	size_t n = 0;
	long total = 0;
	int rc = store_archive_search_page(r->hs->st, r->list->name, q,
					   (page - 1) * HITS_PER_PAGE, HITS_PER_PAGE, &hits, &n,
					   &total);
	if (rc != STORE_OK) {
		wv_free(v);
		http_busy(r);
		return;
	}
	wv_textf(v, "title", "Search: %s", q);
	wv_flag(v, "searched", 1);
	if (total == 0)
		wv_text(v, "total_text", "Nothing found.");
	else
		wv_textf(v, "total_text", "%ld message%s found.", total, total == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		struct wv *it = wv_item(v, "hit_items");
		msg_fields(it, &hits[i].a);
		struct sbuf s = {0};
		html_snippet(&s, hits[i].snippet ? hits[i].snippet : "");
		wv_html(it, "snippet", sbuf_detach(&s));
	}
	wv_flag(v, "hits", n > 0);
	long pages = total > 0 ? (total + HITS_PER_PAGE - 1) / HITS_PER_PAGE : 1;
	pager(v, r, "search", "q", q, page, pages);
	store_hits_free(hits, n);
	http_page(r, 200, "search", v, NULL, 0);
}
