/* message: the archive's view of an RFC 5322 message.
 *
 * libetpan parses the header fields, the MIME fields of each part, RFC 2047
 * words and transfer encodings. The walk over the MIME tree is our own:
 * libetpan's mailmime_parse() recurses without bound and rescans every
 * nested body, which a hostile message turns into a stack overflow or
 * quadratic time. Here depth, part count and decoded size are all capped.
 *
 * Everything runs on a lightly normalised copy of the input (see
 * normalize()); the synthetic Message-ID hashes the original bytes.
 * Charset and text decoding live in msg_text.c. */
#define _GNU_SOURCE /* memmem() */
#include "message.h"

#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>
#include <openssl/evp.h>

#include "msg_text.h"
#include "util.h"

#define BODY_MAX (1024 * 1024)    /* body_text, bytes of UTF-8 */
#define DECODE_MAX (8 * BODY_MAX) /* encoded bytes of one part we look at */
#define DEPTH_MAX 32
#define PARTS_MAX 1000
#define ID_MAX 998 /* RFC 5322 line length: no real msg-id is longer */
#define REFS_MAX 50
#define COMMENT_MAX 64 /* nesting of (comments) we let libetpan see */

/* ---- header fields ------------------------------------------------------- */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A msg-id without its brackets, or NULL when nothing usable is left. */
static char *clean_id(const char *s, size_t n)
{
	while (n && is_wsp(*s)) {
		s++;
		n--;
	}
	while (n && is_wsp(s[n - 1]))
		n--;
	if (n && *s == '<') {
		s++;
		n--;
	}
	if (n && s[n - 1] == '>')
		n--;
	if (n == 0 || n > ID_MAX || !msg_utf8_valid(s, n))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c == 0x7F || c == '<' || c == '>')
			return NULL;
	}
	return xstrndup(s, n);
}

/* Every "<...>" of a field libetpan could not parse; a lone token counts too. */
static void crude_ids(const char *v, clist *into, int max)
{
	const char *p = v;
	int n = 0;

	while (n < max && (p = strchr(p, '<')) != NULL) {
		const char *e = strchr(p, '>');
		if (!e)
			break;
		char *id = clean_id(p, (size_t)(e - p + 1));
		if (id && clist_append(into, id) < 0)
			free(id);
		else if (id)
			n++;
		p = e + 1;
	}
	if (n == 0 && !strchr(v, '<')) {
		char *id = clean_id(v, strlen(v));
		if (id && (!strchr(id, '@') || clist_append(into, id) < 0))
			free(id);
	}
}

static void set_ids(struct msg_info *m, clist *ids, int want_refs)
{
	struct sbuf b = {0};
	char **v = xcalloc((size_t)clist_count(ids) + 1, sizeof *v);
	int k = 0;

	for (clistiter *it = clist_begin(ids); it; it = clist_next(it)) {
		const char *raw = clist_content(it);
		if (raw && (v[k] = clean_id(raw, strlen(raw))) != NULL)
			k++;
		if (k && !want_refs)
			break;
	}
	for (int i = 0; i < k; i++) {
		/* Keep the thread root and the most recent ancestors. */
		if (i == 0 || i >= k - (REFS_MAX - 1)) {
			if (b.len)
				sbuf_addc(&b, ' ');
			sbuf_adds(&b, v[i]);
		}
		free(v[i]);
	}
	free(v);
	if (!b.len)
		return;
	if (want_refs)
		m->references = sbuf_detach(&b);
	else
		m->in_reply_to = sbuf_detach(&b);
}

static void free_strings(clist *l)
{
	for (clistiter *it = clist_begin(l); it; it = clist_next(it))
		free(clist_content(it));
	clist_free(l);
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* libetpan reads obsolete zone names wrongly ("UT" comes back as +0001);
 * RFC 5322 4.3 gives their offsets, and military letters count as -0000. */
static int zone_name(const char *raw, int *zone)
{
	static const struct {
		const char *name;
		int zone;
	} names[] = {{"EST", -500}, {"EDT", -400}, {"CST", -600}, {"CDT", -500},
		     {"MST", -700}, {"MDT", -600}, {"PST", -800}, {"PDT", -700}};
	size_t end = strlen(raw), start;

	for (;;) {
		while (end && is_wsp(raw[end - 1]))
			end--;
		if (!end || raw[end - 1] != ')')
			break;
		while (end && raw[end - 1] != '(')
			end--;
		if (end)
			end--;
	}
	for (start = end; start && !is_wsp(raw[start - 1]); start--)
		if (!((raw[start - 1] | 0x20) >= 'a' && (raw[start - 1] | 0x20) <= 'z'))
			return 0;
	if (start == end || end - start > 5)
		return 0;
	*zone = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (end - start == 3 && ascii_strncasecmp(raw + start, names[i].name, 3) == 0)
			*zone = names[i].zone;
	return 1;
}

static int64_t date_to_epoch(const struct mailimf_date_time *d, const char *raw)
{
	int64_t y = d->dt_year;
	int zone = d->dt_zone;

	if (y >= 0 && y < 50) /* RFC 5322 4.3: two-digit years */
		y += 2000;
	else if (y >= 50 && y < 1000)
		y += 1900;
	if (y < 1900 || y > 9999 || d->dt_month < 1 || d->dt_month > 12 || d->dt_day < 1 ||
	    d->dt_day > 31 || d->dt_hour < 0 || d->dt_hour > 23 || d->dt_min < 0 ||
	    d->dt_min > 59 || d->dt_sec < 0 || d->dt_sec > 60)
		return 0;
	int64_t t = days_from_civil(y, d->dt_month, d->dt_day) * 86400 + d->dt_hour * 3600 +
		    d->dt_min * 60 + d->dt_sec;
	if (raw)
		zone_name(raw, &zone);
	int az = zone < 0 ? -zone : zone;
	if (az <= 9959 && az % 100 < 60) {
		int64_t off = (az / 100) * 3600 + (az % 100) * 60;
		t -= zone < 0 ? -off : off;
	}
	return t;
}

/* Body of the first NAME field in H[0..n) (CRLF lines), unfolded, or NULL. */
static char *header_raw(const char *h, size_t n, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < n;) {
		const char *nlp = memchr(h + i, '\n', n - i);
		size_t eol = nlp ? (size_t)(nlp - h) + 1 : n;
		size_t p = i + nl;
		if (eol - i > nl && ascii_strncasecmp(h + i, name, nl) == 0) {
			while (p < eol && (h[p] == ' ' || h[p] == '\t'))
				p++;
			if (p < eol && h[p] == ':') {
				size_t end = eol;
				while (end < n && (h[end] == ' ' || h[end] == '\t')) {
					nlp = memchr(h + end, '\n', n - end);
					end = nlp ? (size_t)(nlp - h) + 1 : n;
				}
				return msg_clean_line(h + p + 1, end - p - 1);
			}
		}
		i = eol;
	}
	return NULL;
}

/* From a field libetpan could not parse: "Name <addr>" or a bare addr. */
static void crude_from(struct msg_info *m, const char *v)
{
	const char *lt = strchr(v, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt) {
		char *name = xstrndup(v, (size_t)(lt - v));
		str_trim(name);
		size_t n = strlen(name);
		if (n >= 2 && name[0] == '"' && name[n - 1] == '"') {
			memmove(name, name + 1, n - 2);
			name[n - 2] = '\0';
		}
		m->from_name = msg_decode_phrase(name);
		free(name);
		m->from_addr = clean_id(lt, (size_t)(gt - lt + 1));
	} else {
		size_t n = strcspn(v, " \t\r\n(");
		m->from_addr = clean_id(v, n);
	}
	if (m->from_addr && !strchr(m->from_addr, '@')) {
		free(m->from_addr);
		m->from_addr = NULL;
	}
}

static void take_mailbox(struct msg_info *m, struct mailimf_mailbox_list *ml)
{
	clistiter *it = ml ? clist_begin(ml->mb_list) : NULL;
	if (!it)
		return;
	struct mailimf_mailbox *mb = clist_content(it);
	if (mb->mb_addr_spec)
		m->from_addr = clean_id(mb->mb_addr_spec, strlen(mb->mb_addr_spec));
	if (mb->mb_display_name)
		m->from_name = msg_decode_phrase(mb->mb_display_name);
}

static int field_is(const struct mailimf_optional_field *f, const char *name)
{
	return ascii_strcasecmp(f->fld_name, name) == 0;
}

/* The envelope fields libetpan parsed, falling back to a crude reading of
 * fields it kept as optional because their syntax was broken. The first
 * occurrence of each field wins. */
static void take_fields(struct msg_info *m, struct mailimf_fields *fields)
{
	int got_date = 0, got_from = 0, got_irt = 0, got_refs = 0;

	for (clistiter *it = clist_begin(fields->fld_list); it; it = clist_next(it)) {
		struct mailimf_field *f = clist_content(it);
		struct mailimf_optional_field *o = f->fld_data.fld_optional_field;

		switch (f->fld_type) {
		case MAILIMF_FIELD_ORIG_DATE:
			if (!got_date++)
				m->date = date_to_epoch(f->fld_data.fld_orig_date->dt_date_time,
							m->date_header);
			break;
		case MAILIMF_FIELD_FROM:
			if (!got_from++)
				take_mailbox(m, f->fld_data.fld_from->frm_mb_list);
			break;
		case MAILIMF_FIELD_MESSAGE_ID:
			if (!m->message_id) {
				const char *v = f->fld_data.fld_message_id->mid_value;
				m->message_id = clean_id(v, strlen(v));
			}
			break;
		case MAILIMF_FIELD_IN_REPLY_TO:
			if (!got_irt++)
				set_ids(m, f->fld_data.fld_in_reply_to->mid_list, 0);
			break;
		case MAILIMF_FIELD_REFERENCES:
			if (!got_refs++)
				set_ids(m, f->fld_data.fld_references->mid_list, 1);
			break;
		case MAILIMF_FIELD_SUBJECT:
			if (!m->subject)
				m->subject = msg_decode_phrase(f->fld_data.fld_subject->sbj_value);
			break;
		case MAILIMF_FIELD_OPTIONAL_FIELD:
			if (field_is(o, "Date")) {
				got_date++;
			} else if (field_is(o, "From") && !got_from++) {
				crude_from(m, o->fld_value);
			} else if (field_is(o, "Message-ID") && !m->message_id) {
				clist *l = clist_new();
				crude_ids(o->fld_value, l, 1);
				if (clist_begin(l))
					m->message_id = xstrdup(clist_content(clist_begin(l)));
				free_strings(l);
			} else if ((field_is(o, "In-Reply-To") && !got_irt++) ||
				   (field_is(o, "References") && !got_refs++)) {
				int refs = field_is(o, "References");
				clist *l = clist_new();
				crude_ids(o->fld_value, l, refs ? 10000 : 1);
				set_ids(m, l, refs);
				free_strings(l);
			} else if (field_is(o, "Subject") && !m->subject) {
				m->subject = msg_decode_phrase(o->fld_value);
			}
			break;
		default:
			break;
		}
	}
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
};

static struct mailmime_content *mime_content(struct mailmime_fields *mf)
{
	for (clistiter *it = mf ? clist_begin(mf->fld_list) : NULL; it; it = clist_next(it)) {
		struct mailmime_field *f = clist_content(it);
		if (f->fld_type == MAILMIME_FIELD_TYPE)
			return f->fld_data.fld_content;
	}
	return NULL;
}

static int is_attachment(struct mailmime_fields *mf)
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
static const char *raw_field(struct mailimf_fields *f, const char *name)
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
static size_t header_len(const char *p, size_t n)
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
static void defuse_comments(char *s, size_t n)
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
	size_t idx = 0, hlen = header_len(p, n);
	char *h = xstrndup(p, hlen); /* a copy, to defuse */

	defuse_comments(h, hlen);
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
	walk_entity(w, p + idx, n - idx, mf, raw_field(f, "Content-Type"), in_digest, depth);
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
		if (!w->m->body_text)
			take_text(w->m, d, len, MAILMIME_MECHANISM_8BIT, NULL, 0);
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

/* DATA is the content of an entity whose MIME fields are MF and raw
 * Content-Type CTYPE (either may be NULL). */
static void walk_entity(struct walk *w, const char *data, size_t len,
			struct mailmime_fields *mf, const char *ctype, int in_digest, int depth)
{
	struct mailmime_content *ct = mime_content(mf);
	int enc = mf ? mailmime_transfer_encoding_get(mf) : MAILMIME_MECHANISM_8BIT;
	enum kind kind = ct ? classify(ct) : in_digest ? KIND_MESSAGE : KIND_PLAIN;
	const char *charset = ct ? mailmime_content_param_get(ct, "charset") : NULL;

	if (++w->parts > PARTS_MAX || depth > DEPTH_MAX) {
		w->m->parse_ok = 0;
		return;
	}
	/* The top-level body is the message's text even when marked attachment. */
	if (depth > 0 && (kind == KIND_PLAIN || kind == KIND_HTML) && is_attachment(mf))
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
		if (!w->m->body_text)
			take_text(w->m, data, len, enc, charset, 0);
		break;
	case KIND_HTML:
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
		} else if (!w->have_msg) {
			w->have_msg = 1;
			w->msg = data;
			w->msg_len = len;
			w->msg_depth = depth;
		}
		break;
	case KIND_OTHER:
		break;
	}
}

/* ---- the message --------------------------------------------------------- */

/* The copy libetpan and the walk read: bare CR becomes LF (libetpan takes
 * LF or CRLF but not CR), the header loses its NUL bytes (libetpan's
 * strings end there) and ends with a line break, and a leading mbox "From "
 * line goes. The body keeps its length so that raw UTF-16 parts survive. */
static char *normalize(const char *raw, size_t len, size_t *out_len)
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
		char c = raw[i];
		if (c == '\r' && (i + 1 == len || raw[i + 1] != '\n'))
			c = '\n';
		if (c == '\0' && in_header)
			continue;
		if (c == '\n' && bol)
			in_header = 0; /* the empty line */
		if (c != '\r')
			bol = c == '\n';
		n[o++] = c;
	}
	if (in_header && (o == 0 || n[o - 1] != '\n'))
		n[o++] = '\n'; /* libetpan needs it to end the last field */
	n[o] = '\0';
	*out_len = o;
	return n;
}

static char *synth_id(const char *raw, size_t len, const char *hostname)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[33];

	if (!EVP_Digest(raw, len, md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
		memset(md, 0, sizeof md);
	for (int i = 0; i < 16; i++) {
		hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
		hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
	}
	hex[32] = '\0';
	/* The hostname comes from our config, but an id must stay one token. */
	int ok = hostname && *hostname && strlen(hostname) < 256;
	for (const char *p = hostname; ok && *p; p++)
		ok = (unsigned char)*p > ' ' && (unsigned char)*p < 0x7F && !strchr("<>@", *p);
	return xasprintf("%s@%s", hex, ok ? hostname : "localhost");
}

static void fill(char **s)
{
	if (!*s)
		*s = xstrdup("");
}

void msg_parse(const char *raw, size_t len, const char *hostname, struct msg_info *out)
{
	struct mailimf_fields *fields = NULL;
	struct mailmime_fields *mf = NULL;
	struct walk w = {0};
	size_t nlen, idx = 0, hdr_start, hdr_end, body;

	memset(out, 0, sizeof *out);
	out->parse_ok = 1;
	if (!raw)
		len = 0;
	char *n = normalize(raw ? raw : "", len, &nlen);
	defuse_comments(n, header_len(n, nlen));

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
			out->parse_ok = 0;
		else
			idx = 0;
	}
	hdr_start = idx;
	if (mailimf_envelope_and_optional_fields_parse(n, nlen, &idx, &fields) != MAILIMF_NO_ERROR) {
		fields = NULL;
		idx = hdr_start;
	}
	hdr_end = idx;
	out->date_header = header_raw(n + hdr_start, hdr_end - hdr_start, "Date");
	if (mailimf_crlf_parse(n, nlen, &idx) == MAILIMF_NO_ERROR || idx >= nlen) {
		body = idx;
	} else {
		out->parse_ok = 0; /* no blank line: the rest is body */
		body = hdr_end;
	}
	if (!fields || !clist_begin(fields->fld_list))
		out->parse_ok = 0;

	if (fields) {
		take_fields(out, fields);
		if (mailmime_fields_parse(fields, &mf) != MAILIMF_NO_ERROR)
			mf = NULL;
		char *ctype = mime_content(mf) ? NULL
					       : header_raw(n + hdr_start, hdr_end - hdr_start,
							    "Content-Type");
		if (ctype)
			out->parse_ok = 0; /* present but unreadable */
		free(ctype);
	}
	w.m = out;
	walk_entity(&w, n + body, nlen - body, mf, raw_field(fields, "Content-Type"), 0, 0);
	while (!out->body_text) {
		if (w.have_html) {
			take_text(out, w.html, w.html_len, w.html_enc, w.html_charset, 1);
			break;
		}
		if (!w.have_msg)
			break;
		w.have_msg = 0;
		walk_part(&w, w.msg, w.msg_len, 0, w.msg_depth + 1);
	}
	free(w.html_charset);

	if (!out->message_id) {
		out->message_id = synth_id(raw ? raw : "", len, hostname);
		out->message_id_added = 1;
	}
	fill(&out->from_addr);
	fill(&out->from_name);
	fill(&out->subject);
	fill(&out->date_header);
	fill(&out->in_reply_to);
	fill(&out->references);
	fill(&out->body_text);

	if (mf)
		mailmime_fields_free(mf);
	if (fields)
		mailimf_fields_free(fields);
	free(n);
}

void msg_info_free(struct msg_info *m)
{
	if (!m)
		return;
	free(m->message_id);
	free(m->from_addr);
	free(m->from_name);
	free(m->subject);
	free(m->date_header);
	free(m->in_reply_to);
	free(m->references);
	free(m->body_text);
	memset(m, 0, sizeof *m);
}
