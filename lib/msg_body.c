/* msg_body: the walk over a message's MIME tree that finds the text the
 * archive keeps (body_text), with depth, part count and decoded size all
 * capped. Internal to the message module (message.c, msg_body.c). */
#define _GNU_SOURCE /* memmem() */
#include "msg_body.h"

#include <stdlib.h>
#include <string.h>

#include "msg_text.h"
#include "util.h"

#define BODY_MAX (1024 * 1024)    /* body_text, bytes of UTF-8 */
#define DECODE_MAX (8 * BODY_MAX) /* encoded bytes of one part we look at */
#define DEPTH_MAX 32
#define PARTS_MAX 1000
#define COMMENT_MAX 64 /* nesting of (comments) we let libetpan see */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- bodies -------------------------------------------------------------- */

enum kind { KIND_PLAIN, KIND_HTML, KIND_MULTIPART, KIND_MESSAGE, KIND_OTHER };

struct walk {
	struct msg_info *m;
	int parts;
	int have_html; /* first text/html part, decoded only if no text/plain */
	const char *html;
	size_t html_len;
	int html_enc;
	char *html_charset;
	int have_msg; /* first message/rfc822 part not yet walked */
	const char *msg;
	size_t msg_len;
	int msg_depth;
	/* For msg_walk_body(): the leaf callback, the header of the part being
	 * walked, and where body_text came from. */
	msg_leaf_fn *leaf;
	void *leaf_ctx;
	struct mailimf_fields *fields;
	const char *src;
};

struct mailmime_content *msg_mime_content(struct mailmime_fields *mf)
{
	for (clistiter *it = mf ? clist_begin(mf->fld_list) : NULL; it; it = clist_next(it)) {
		struct mailmime_field *f = clist_content(it);
		if (f->fld_type == MAILMIME_FIELD_TYPE)
			return f->fld_data.fld_content;
	}
	return NULL;
}

int msg_is_attachment(struct mailmime_fields *mf)
{
	for (clistiter *it = mf ? clist_begin(mf->fld_list) : NULL; it; it = clist_next(it)) {
		struct mailmime_field *f = clist_content(it);
		if (f->fld_type == MAILMIME_FIELD_DISPOSITION && f->fld_data.fld_disposition &&
		    f->fld_data.fld_disposition->dsp_type &&
		    f->fld_data.fld_disposition->dsp_type->dsp_type ==
			    MAILMIME_DISPOSITION_TYPE_ATTACHMENT)
			return 1;
	}
	return 0;
}

static enum kind classify(struct mailmime_content *ct)
{
	const char *sub = ct->ct_subtype ? ct->ct_subtype : "";

	if (!ct->ct_type)
		return KIND_OTHER;
	if (ct->ct_type->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE) {
		struct mailmime_composite_type *c = ct->ct_type->tp_data.tp_composite_type;
		if (c && c->ct_type == MAILMIME_COMPOSITE_TYPE_MULTIPART)
			return KIND_MULTIPART;
		if (c && c->ct_type == MAILMIME_COMPOSITE_TYPE_MESSAGE &&
		    ascii_strcasecmp(sub, "rfc822") == 0)
			return KIND_MESSAGE;
		return KIND_OTHER;
	}
	struct mailmime_discrete_type *d = ct->ct_type->tp_data.tp_discrete_type;
	if (!d || d->dt_type != MAILMIME_DISCRETE_TYPE_TEXT)
		return KIND_OTHER;
	if (ascii_strcasecmp(sub, "html") == 0)
		return KIND_HTML;
	/* "text" alone comes back from libetpan as text/unknown. */
	if (ascii_strcasecmp(sub, "plain") == 0 || ascii_strcasecmp(sub, "unknown") == 0)
		return KIND_PLAIN;
	return KIND_OTHER;
}

/* The boundary parameter, read by hand from the raw Content-Type value
 * RAW: libetpan first decodes RFC 2047 words in the whole value and keeps
 * folding inside quoted strings, which mangles odd but real boundaries,
 * and it stops at ";;". Its own reading is the fallback. */
static char *boundary_of(const char *raw, struct mailmime_content *ct)
{
	struct sbuf b = {0};

	for (const char *p = raw; p && (p = strchr(p, ';')) != NULL;) {
		for (p++; is_wsp(*p); p++)
			;
		if (ascii_strncasecmp(p, "boundary", 8) != 0)
			continue;
		const char *q = p + 8;
		while (is_wsp(*q))
			q++;
		int ext = *q == '*'; /* RFC 2231: charset'language'%XX */
		q += ext;
		if (*q++ != '=')
			continue;
		while (is_wsp(*q))
			q++;
		if (*q != '"') {
			sbuf_add(&b, q, strcspn(q, "; \t\r\n"));
		} else {
			for (q++; *q && *q != '"'; q++) {
				if (*q == '\\' && q[1])
					q++;
				if (*q != '\r' && *q != '\n') /* unfold */
					sbuf_addc(&b, *q);
			}
		}
		if (ext && b.len) {
			char *v = strchr(b.buf, '\'');
			v = v ? strchr(v + 1, '\'') : NULL;
			size_t o = 0;
			for (v = v ? v + 1 : b.buf; *v; v++) {
				if (*v == '%' && msg_hexval(v[1]) >= 0 && msg_hexval(v[2]) >= 0) {
					b.buf[o++] = (char)(msg_hexval(v[1]) * 16 + msg_hexval(v[2]));
					v += 2;
				} else {
					b.buf[o++] = *v;
				}
			}
			b.len = o;
			b.buf[o] = '\0';
		}
		break;
	}
	if (!b.len) {
		const char *v = mailmime_content_param_get(ct, "boundary");
		size_t n = v ? strlen(v) : 0;
		if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
			sbuf_add(&b, v + 1, n - 2);
		else if (n)
			sbuf_add(&b, v, n);
	}
	if (b.len)
		return sbuf_detach(&b);
	sbuf_free(&b);
	return NULL;
}

/* A value of the first field NAME that libetpan kept unparsed. */
const char *msg_raw_field(struct mailimf_fields *f, const char *name)
{
	for (clistiter *it = f ? clist_begin(f->fld_list) : NULL; it; it = clist_next(it)) {
		struct mailimf_field *x = clist_content(it);
		if (x->fld_type == MAILIMF_FIELD_OPTIONAL_FIELD &&
		    ascii_strcasecmp(x->fld_data.fld_optional_field->fld_name, name) == 0)
			return x->fld_data.fld_optional_field->fld_value;
	}
	return NULL;
}

/* Base64 lines never hold inner blanks: a part labelled base64 that has
 * them is plain text with a wrong label. */
static int looks_base64(const char *s, size_t n)
{
	int in_line = 0, gap = 0;

	for (size_t i = 0; i < n && i < 65536; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			in_line = gap = 0;
		} else if (s[i] == ' ' || s[i] == '\t') {
			gap = in_line;
		} else {
			if (gap)
				return 0;
			in_line = 1;
		}
	}
	return 1;
}

/* Transfer- and charset-decode one text part into body_text. */
static void take_text(struct msg_info *m, const char *data, size_t len, int enc,
		      const char *charset, int html)
{
	struct sbuf u = {0}, t = {0}, out = {0};
	char *dec = NULL;
	size_t dlen = 0, idx = 0;

	if (len > DECODE_MAX)
		len = DECODE_MAX;
	if (enc == MAILMIME_MECHANISM_QUOTED_PRINTABLE) {
		msg_add_qp(&t, data, len);
		data = t.buf ? t.buf : "";
		len = t.len;
	} else if (enc == MAILMIME_MECHANISM_BASE64 && looks_base64(data, len)) {
		if (mailmime_part_parse(data, len, &idx, enc, &dec, &dlen) != MAILIMF_NO_ERROR)
			dec = NULL;
	}
	if (dec && dlen > 4 * BODY_MAX)
		dlen = 4 * BODY_MAX;
	msg_add_charset(&u, dec ? dec : data, dec ? dlen : len, charset);
	if (dec)
		mailmime_decoded_part_free(dec);
	sbuf_free(&t);
	if (html) {
		msg_add_html_text(&t, u.buf ? u.buf : "", u.len);
		sbuf_free(&u);
		u = t;
	}
	msg_add_clean(&out, u.buf ? u.buf : "", u.len < BODY_MAX + 4 ? u.len : BODY_MAX + 4,
		  MSG_CLEAN_BODY);
	sbuf_free(&u);
	if (out.len > BODY_MAX) {
		size_t n = BODY_MAX;
		while (n && ((unsigned char)out.buf[n] & 0xC0) == 0x80)
			n--;
		out.len = n;
		out.buf[n] = '\0';
	}
	/* An empty part does not stop the search for the text. */
	size_t k = 0;
	while (k < out.len && is_wsp(out.buf[k]))
		k++;
	if (k == out.len) {
		sbuf_free(&out);
		return;
	}
	free(m->body_text);
	m->body_text = sbuf_detach(&out);
}

/* Length of the header block at P: up to and including its empty line. */
size_t msg_header_len(const char *p, size_t n)
{
	for (size_t i = 0;;) {
		if (i < n && p[i] == '\n')
			return i + 1;
		if (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n')
			return i + 2;
		const char *e = i < n ? memchr(p + i, '\n', n - i) : NULL;
		if (!e)
			return n;
		i = (size_t)(e - p) + 1;
	}
}

/* libetpan parses nested comments by recursion, so "From: (((((..." a few
 * hundred thousand deep overflows the stack. Past COMMENT_MAX levels in one
 * field, '(' becomes a blank; no real header nests comments that deep. */
void msg_defuse_comments(char *s, size_t n)
{
	int depth = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n' && (i + 1 == n || (s[i + 1] != ' ' && s[i + 1] != '\t')))
			depth = 0;
		else if (s[i] == '\\')
			i++;
		else if (s[i] == '(' && ++depth > COMMENT_MAX)
			s[i] = ' ';
		else if (s[i] == ')' && depth > 0)
			depth--;
	}
}

static void walk_entity(struct walk *w, const char *data, size_t len,
			struct mailmime_fields *mf, const char *ctype, int in_digest, int depth);

/* One body part: its MIME header (if any), then its content. */
static void walk_part(struct walk *w, const char *p, size_t n, int in_digest, int depth)
{
	struct mailimf_fields *f = NULL;
	struct mailmime_fields *mf = NULL;
	size_t idx = 0, hlen = msg_header_len(p, n);
	char *h = xstrndup(p, hlen); /* a copy, to defuse */

	msg_defuse_comments(h, hlen);
	if (mailimf_optional_fields_parse(h, hlen, &idx, &f) != MAILIMF_NO_ERROR)
		f = NULL;
	if (mailimf_crlf_parse(h, hlen, &idx) != MAILIMF_NO_ERROR && idx < n) {
		/* No blank line after the part header: with no field at all the
		 * part is headerless text, else the header ran into the body. */
		if (f && clist_begin(f->fld_list))
			w->m->parse_ok = 0;
		else
			idx = 0;
	}
	if (f && mailmime_fields_parse(f, &mf) != MAILIMF_NO_ERROR)
		mf = NULL;
	struct mailimf_fields *outer = w->fields;
	w->fields = f;
	walk_entity(w, p + idx, n - idx, mf, msg_raw_field(f, "Content-Type"), in_digest, depth);
	w->fields = outer;
	if (mf)
		mailmime_fields_free(mf);
	if (f)
		mailimf_fields_free(f);
	free(h);
}

/* Does a delimiter line end well at Q: "--" for the last one, then a line
 * break or a blank? RFC 2046 lets any text follow; we want the blank, so
 * that an outer boundary which is a prefix of an inner one does not match
 * the inner delimiters. */
static int delim_tail(const char *d, size_t len, size_t q, int *close)
{
	*close = q + 1 < len && d[q] == '-' && d[q + 1] == '-';
	q += *close ? 2 : 0;
	return q == len || d[q] == '\r' || d[q] == '\n' || d[q] == ' ' || d[q] == '\t';
}

/* Start of the next delimiter line at or after FROM (a line start);
 * NEEDLE is "\n--BOUNDARY". *AFTER is where that line ends (past its line
 * break), *CLOSE whether it was the last one. memmem() keeps this linear
 * however many lines there are; hits cannot overlap, as the boundary holds
 * no line break. */
static int next_delim(const char *d, size_t len, size_t from, const char *needle, size_t nl,
		      size_t *at, size_t *after, int *close)
{
	size_t p = from, s;

	if (from == 0 && len >= nl - 1 && memcmp(d, needle + 1, nl - 1) == 0 &&
	    delim_tail(d, len, nl - 1, close))
		goto found;
	for (s = from > 0 ? from - 1 : 0; s < len; s = p) {
		const char *hit = memmem(d + s, len - s, needle, nl);
		if (!hit)
			return 0;
		p = (size_t)(hit - d) + 1;
		if (delim_tail(d, len, p + nl - 1, close))
			goto found;
	}
	return 0;
found:
	*at = p;
	const char *eol = memchr(d + p, '\n', len - p);
	*after = eol ? (size_t)(eol - d) + 1 : len;
	return 1;
}

static void walk_multipart(struct walk *w, const char *d, size_t len, const char *boundary,
			   int digest, int depth)
{
	char *needle = xasprintf("\n--%s", boundary);
	size_t nl = strlen(needle), at, after, next_at, next_after;
	int close, next_close;

	if (!next_delim(d, len, 0, needle, nl, &at, &after, &close)) {
		/* No delimiter at all: read the body as text, like most agents. */
		w->m->parse_ok = 0;
		if (!w->m->body_text) {
			take_text(w->m, d, len, MAILMIME_MECHANISM_8BIT, NULL, 0);
			if (w->m->body_text)
				w->src = d;
		}
		goto done;
	}
	while (!close && w->parts < PARTS_MAX) {
		size_t start = after, end;
		int more = next_delim(d, len, start, needle, nl, &next_at, &next_after,
				      &next_close);
		if (more) {
			/* The line break before a delimiter belongs to it. */
			end = next_at;
			end -= end > start && d[end - 1] == '\n';
			end -= end > start && d[end - 1] == '\r';
		} else {
			w->m->parse_ok = 0; /* no closing delimiter */
			end = len;
		}
		walk_part(w, d + start, end - start, digest, depth + 1);
		if (!more)
			break;
		after = next_after;
		close = next_close;
	}
done:
	free(needle);
}

/* Tell the msg_walk_body() caller about a leaf. */
static void report(struct walk *w, const char *data, size_t len, struct mailmime_fields *mf,
		   enum kind kind, int in_digest, int depth)
{
	if (!w->leaf)
		return;
	struct msg_leaf l = {data, len, w->fields, mf,
			     kind == KIND_PLAIN || kind == KIND_HTML ? MSG_LEAF_TEXT
			     : kind == KIND_MESSAGE		     ? MSG_LEAF_MESSAGE
								     : MSG_LEAF_OTHER,
			     in_digest, depth};
	w->leaf(w->leaf_ctx, &l);
}

/* DATA is the content of an entity whose MIME fields are MF and raw
 * Content-Type CTYPE (either may be NULL). */
static void walk_entity(struct walk *w, const char *data, size_t len,
			struct mailmime_fields *mf, const char *ctype, int in_digest, int depth)
{
	struct mailmime_content *ct = msg_mime_content(mf);
	int enc = mf ? mailmime_transfer_encoding_get(mf) : MAILMIME_MECHANISM_8BIT;
	enum kind kind = ct ? classify(ct) : in_digest ? KIND_MESSAGE : KIND_PLAIN;
	const char *charset = ct ? mailmime_content_param_get(ct, "charset") : NULL;

	if (++w->parts > PARTS_MAX || depth > DEPTH_MAX) {
		w->m->parse_ok = 0;
		return;
	}
	/* The top-level body is the message's text even when marked attachment. */
	if (depth > 0 && (kind == KIND_PLAIN || kind == KIND_HTML) && msg_is_attachment(mf))
		kind = KIND_OTHER;
	if (kind == KIND_MESSAGE &&
	    (enc == MAILMIME_MECHANISM_BASE64 || enc == MAILMIME_MECHANISM_QUOTED_PRINTABLE))
		kind = KIND_OTHER; /* forbidden by RFC 2046 5.2.1; not worth decoding */

	switch (kind) {
	case KIND_MULTIPART: {
		char *boundary = boundary_of(ctype, ct);
		if (boundary) {
			walk_multipart(w, data, len, boundary,
				       ct->ct_subtype && ascii_strcasecmp(ct->ct_subtype, "digest") == 0,
				       depth);
			free(boundary);
			break;
		}
		w->m->parse_ok = 0; /* without a boundary it can only be text */
	}
		/* fall through */
	case KIND_PLAIN:
		report(w, data, len, mf, KIND_PLAIN, in_digest, depth);
		if (!w->m->body_text) {
			take_text(w->m, data, len, enc, charset, 0);
			if (w->m->body_text)
				w->src = data;
		}
		break;
	case KIND_HTML:
		report(w, data, len, mf, kind, in_digest, depth);
		if (!w->have_html) {
			w->have_html = 1;
			w->html = data;
			w->html_len = len;
			w->html_enc = enc;
			w->html_charset = charset ? xstrdup(charset) : NULL;
		}
		break;
	case KIND_MESSAGE:
		/* An enclosed message's text counts only when the enclosing one
		 * has none: a forward's own words come first. */
		if (depth == 0) {
			walk_part(w, data, len, 0, depth + 1);
			break;
		}
		report(w, data, len, mf, kind, in_digest, depth);
		if (!w->have_msg) {
			w->have_msg = 1;
			w->msg = data;
			w->msg_len = len;
			w->msg_depth = depth;
		}
		break;
	case KIND_OTHER:
		report(w, data, len, mf, kind, in_digest, depth);
		break;
	}
}

/* ---- the message --------------------------------------------------------- */

/* The copy libetpan and the walk read: bare CR becomes LF (libetpan takes
 * LF or CRLF but not CR), the header loses its NUL bytes (libetpan's
 * strings end there) and ends with a line break, and a leading mbox "From "
 * line goes. The body keeps its length so that raw UTF-16 parts survive. */
void msg_walk_body(struct msg_info *m, const char *body, size_t len, struct mailmime_fields *mf,
		   const char *ctype, msg_leaf_fn *leaf, void *ctx, const char **src)
{
	struct walk w = {0};
	w.m = m;
	w.leaf = leaf;
	w.leaf_ctx = ctx;
	walk_entity(&w, body, len, mf, ctype, 0, 0);
	w.leaf = NULL; /* enclosed messages walked for their text are not leaves */
	while (!m->body_text) {
		if (w.have_html) {
			take_text(m, w.html, w.html_len, w.html_enc, w.html_charset, 1);
			if (m->body_text)
				w.src = w.html;
			break;
		}
		if (!w.have_msg)
			break;
		w.have_msg = 0;
		walk_part(&w, w.msg, w.msg_len, 0, w.msg_depth + 1);
	}
	free(w.html_charset);
	if (src)
		*src = w.src;
}

void msg_find_body(struct msg_info *m, const char *body, size_t len, struct mailmime_fields *mf,
		   const char *ctype)
{
	msg_walk_body(m, body, len, mf, ctype, NULL, NULL, NULL);
}

char *msg_normalize(const char *raw, size_t len, size_t *out_len)
{
	char *n = xmalloc(len + 2);
	size_t i = 0, o = 0;
	int in_header = 1, bol = 1;

	if (len >= 5 && memcmp(raw, "From ", 5) == 0) {
		while (i < len && raw[i] != '\n' && raw[i] != '\r')
			i++;
		i += i < len && raw[i] == '\r';
		i += i < len && raw[i] == '\n';
	}
	for (; i < len; i++) {
		if (!in_header) {
			/* The body only loses its bare CRs: copy the runs between. */
			const char *cr = memchr(raw + i, '\r', len - i);
			size_t k = cr ? (size_t)(cr - raw) : len;
			memcpy(n + o, raw + i, k - i);
			o += k - i;
			i = k;
			if (i == len)
				break;
		}
		char c = raw[i];
		if (c == '\r' && (i + 1 == len || raw[i + 1] != '\n'))
			c = '\n';
		if (c == '\0' && in_header)
			continue;
		if (c == '\n' && bol)
			in_header = 0;
		if (c != '\r')
			bol = c == '\n';
		n[o++] = c;
	}
	if (in_header && (o == 0 || n[o - 1] != '\n'))
		n[o++] = '\n';
	n[o] = '\0';
	*out_len = o;
	return n;
}

void msg_read_head(char *n, size_t nlen, struct msg_head *h)
{
	size_t idx = 0;
	memset(h, 0, sizeof *h);
	h->clean = 1;
	msg_defuse_comments(n, msg_header_len(n, nlen));

	/* A header that opens with a continuation line (or a line of blanks):
	 * skip those lines when a field follows, as other agents do. */
	while (idx < nlen && (n[idx] == ' ' || n[idx] == '\t')) {
		const char *e = memchr(n + idx, '\n', nlen - idx);
		idx = e ? (size_t)(e - n) + 1 : nlen;
	}
	if (idx > 0) {
		size_t k = idx;
		while (k < nlen && n[k] > ' ' && n[k] < 0x7F && n[k] != ':')
			k++;
		if (k > idx && k < nlen && n[k] == ':')
			h->clean = 0;
		else
			idx = 0;
	}
	h->start = idx;
	if (mailimf_envelope_and_optional_fields_parse(n, nlen, &idx, &h->fields) !=
	    MAILIMF_NO_ERROR) {
		h->fields = NULL;
		idx = h->start;
	}
	h->end = idx;
	if (mailimf_crlf_parse(n, nlen, &idx) == MAILIMF_NO_ERROR || idx >= nlen) {
		h->body = idx;
	} else {
		h->clean = 0; /* no blank line: the rest is body */
		h->body = h->end;
	}
	if (h->fields && mailmime_fields_parse(h->fields, &h->mf) != MAILIMF_NO_ERROR)
		h->mf = NULL;
}

void msg_head_free(struct msg_head *h)
{
	if (h->mf)
		mailmime_fields_free(h->mf);
	if (h->fields)
		mailimf_fields_free(h->fields);
	h->mf = NULL;
	h->fields = NULL;
}
