/* http_feed: what programs read — the Atom feed (RFC 4287) of a list's
 * newest messages, and the whole archive as one mboxrd file, streamed in
 * batches so a big archive never sits in memory. */
#include "http_int.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "mbox.h"

#define FEED_ENTRIES 50
#define SUMMARY_CHARS 600
#define MBOX_BATCH 200
/* A batch ends past this many bytes (always at least one message), so a
 * download holds about this much whatever the messages' size. */
#define MBOX_BATCH_BYTES (256 * 1024)
/* Downloads at once: each keeps a connection and a batch in memory. */
#define MBOX_STREAMS_MAX 8

/* ---- /L/atom.xml ---- */

static void xml_el(struct sbuf *b, const char *tag, const char *text)
{
	sbuf_printf(b, "<%s>", tag);
	html_xml_escape(b, text ? text : "", text ? strlen(text) : 0);
	sbuf_printf(b, "</%s>\n", tag);
}

/* The first SUMMARY_CHARS bytes of TEXT, cut at a character boundary. */
static size_t summary_len(const char *text)
{
	size_t n = strlen(text);
	if (n <= SUMMARY_CHARS)
		return n;
	n = SUMMARY_CHARS;
	while (n > 0 && ((unsigned char)text[n] & 0xc0) == 0x80)
		n--;
	return n;
}

static void atom_entry(struct http_req *r, struct sbuf *b, const char *base,
		       const struct store_archived *a)
{
	char iso[32];
	char *body = NULL;
	struct store_archived full;
	if (store_archive_get_in(r->hs->st, r->list->name, a->id, &full, &body) == STORE_OK)
		store_archived_clear(&full);
	sbuf_adds(b, "<entry>\n");
	struct sbuf url = {0};
	sbuf_printf(&url, "%s/m/%lld", base, (long long)a->id);
	xml_el(b, "id", url.buf);
	xml_el(b, "title", a->subject && *a->subject ? a->subject : "(no subject)");
	fmt_iso8601(a->received, iso);
	xml_el(b, "updated", iso);
	fmt_iso8601(http_msg_time(a), iso);
	xml_el(b, "published", iso);
	/* The same shield against harvesters as the pages: a name, or
	 * user@… — never the address. */
	struct sbuf who = {0};
	html_author(&who, a->from_name, a->from_addr);
	sbuf_adds(b, "<author><name>");
	sbuf_add(b, who.buf ? who.buf : "", who.len); /* already escaped for markup */
	sbuf_adds(b, "</name></author>\n");
	sbuf_free(&who);
	sbuf_adds(b, "<link rel=\"alternate\" type=\"text/html\" href=\"");
	html_xml_escape(b, url.buf, url.len);
	sbuf_adds(b, "\"/>\n");
	sbuf_free(&url);
	if (body && *body) {
		sbuf_adds(b, "<summary type=\"text\">");
		html_xml_escape(b, body, summary_len(body));
		sbuf_adds(b, "</summary>\n");
	}
	free(body);
	sbuf_adds(b, "</entry>\n");
}

void http_atom(struct http_req *r)
{
	char state[96], etag[128], iso[32];
	int64_t lastmod;
	struct store_archived *a = NULL;
	size_t n = 0;
	if (http_list_state(r, state, sizeof state, &lastmod) != STORE_OK) {
		http_busy(r);
		return;
	}
	snprintf(etag, sizeof etag, "\"f-%s\"", state);
	if (http_not_modified(r, etag, lastmod))
		return;
	if (store_archive_list(r->hs->st, r->list->name, FEED_ENTRIES, &a, &n) != STORE_OK) {
		http_busy(r);
		return;
	}
	const struct list_cfg *l = r->list;
	struct sbuf base = {0}, b = {0};
	http_base(&base, r->hs->cfg);
	http_list_path(&base, l);
	sbuf_adds(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		      "<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
	sbuf_printf(&b, "<id>");
	html_xml_escape(&b, base.buf, base.len);
	sbuf_adds(&b, "/</id>\n");
	xml_el(&b, "title", config_list_title(l));
	if (l->description && *l->description)
		xml_el(&b, "subtitle", l->description);
	fmt_iso8601(n ? a[0].received : lastmod, iso);
	xml_el(&b, "updated", iso);
	sbuf_adds(&b, "<author><name>");
	html_xml_escape(&b, config_list_title(l), strlen(config_list_title(l)));
	sbuf_adds(&b, "</name></author>\n<link rel=\"self\" type=\"application/atom+xml\" href=\"");
	html_xml_escape(&b, base.buf, base.len);
	sbuf_adds(&b, "/atom.xml\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"");
	html_xml_escape(&b, base.buf, base.len);
	sbuf_printf(&b, "/\"/>\n<generator version=\"%s\">dialogue</generator>\n",
		    DIALOGUE_VERSION);
	for (size_t i = 0; i < n; i++)
		atom_entry(r, &b, base.buf, &a[i]);
	sbuf_adds(&b, "</feed>\n");
	sbuf_free(&base);
	store_archived_free(a, n);
	http_send(r, 200, "application/atom+xml; charset=utf-8", &b, etag, lastmod);
}

/* ---- /L/L.mbox ---- */

/* A download in progress: the next batch is read when the previous one
 * has left the output buffer, so memory stays at one batch. */
struct mbox_stream {
	struct http_server *hs;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	char *list;
	int64_t after;
	struct mbox_stream *next;
};

static void stream_unlink(struct mbox_stream *s)
{
	for (struct mbox_stream **p = &s->hs->streams; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			s->hs->n_streams--;
			break;
		}
	free(s->list);
	free(s);
}

/* The client went away mid-download. libevent detaches a request whose
 * reply is still being sent and leaves it to its owner (us) to free. */
static void on_stream_closed(struct evhttp_connection *conn, void *arg)
{
	struct mbox_stream *s = arg;
	if (!evhttp_request_get_connection(s->req))
		evhttp_request_free(s->req);
	stream_unlink(s);
}

static int add_mbox(void *arg, const struct store_archived *a, const char *raw, size_t len)
{
	struct sbuf *b = arg;
	mbox_append(b, a->mail_from, a->received, raw, len);
	return b->len >= MBOX_BATCH_BYTES;
}

static void stream_next(struct evhttp_connection *conn, void *arg)
{
	struct mbox_stream *s = arg;
	struct sbuf b = {0};
	int64_t last = s->after;
	store_set_time_limit(s->hs->st, HTTP_REQUEST_DB_MS);
	int rc = store_archive_batch(s->hs->st, s->list, s->after, MBOX_BATCH, add_mbox, &b,
				     &last);
	store_set_time_limit(s->hs->st, 0);
	if (rc != STORE_OK || last == s->after) {
		/* The end (or a failure we can no longer report in a status:
		 * the file ends short, and the log says why). */
		if (rc != STORE_OK)
			log_warn("http: mbox of %s cut short: %s", s->list,
				 store_errmsg(s->hs->st));
		sbuf_free(&b);
		evhttp_connection_set_closecb(s->conn, NULL, NULL);
		evhttp_send_reply_end(s->req);
		stream_unlink(s);
		return;
	}
	s->after = last;
	struct evbuffer *out = evbuffer_new();
	evbuffer_add(out, b.buf, b.len);
	sbuf_free(&b);
	evhttp_send_reply_chunk_with_cb(s->req, out, stream_next, s);
	evbuffer_free(out);
}

void http_mbox(struct http_req *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	http_security_headers(r->req);
	evhttp_add_header(h, "Content-Type", "application/mbox");
	http_attachment_header(r, r->segs[1]); /* the list's name + .mbox */
	if (r->head) {
		evhttp_send_reply(r->req, 200, "OK", NULL);
		return;
	}
	if (r->hs->n_streams >= MBOX_STREAMS_MAX) {
		evhttp_clear_headers(h);
		evhttp_add_header(h, "Retry-After", "60");
		http_busy(r);
		return;
	}
	struct mbox_stream *s = xcalloc(1, sizeof *s);
	s->hs = r->hs;
	s->req = r->req;
	s->conn = evhttp_request_get_connection(r->req);
	s->list = xstrdup(r->list->name);
	s->next = r->hs->streams;
	r->hs->streams = s;
	r->hs->n_streams++;
	evhttp_connection_set_closecb(s->conn, on_stream_closed, s);
	evhttp_send_reply_start(r->req, 200, "OK");
	stream_next(s->conn, s);
}

void http_streams_free(struct http_server *hs)
{
	while (hs->streams) {
		struct mbox_stream *s = hs->streams;
		evhttp_connection_set_closecb(s->conn, NULL, NULL);
		stream_unlink(s);
	}
}
