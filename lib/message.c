/* message: the archive's view of an RFC 5322 message.
 *
 * libetpan parses the header fields, the MIME fields of each part, RFC 2047
 * words and transfer encodings. The walk over the MIME tree is our own
 * (msg_body.c): libetpan's mailmime_parse() recurses without bound and
 * rescans every nested body, which a hostile message turns into a stack
 * overflow or quadratic time.
 *
 * Everything runs on a lightly normalised copy of the input (see
 * msg_normalize()); the synthetic Message-ID hashes the original bytes.
 * Charset and text decoding live in msg_text.c. */
#define _GNU_SOURCE /* memmem() */
#include "message.h"

#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>
#include <openssl/evp.h>

#include "msg_body.h"
#include "msg_text.h"
#include "util.h"

#define ID_MAX 998 /* RFC 5322 line length: no real msg-id is longer */
#define REFS_MAX 50

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
	struct msg_head h;
	size_t nlen;

	memset(out, 0, sizeof *out);
	if (!raw)
		len = 0;
	char *n = msg_normalize(raw ? raw : "", len, &nlen);
	msg_read_head(n, nlen, &h);
	out->parse_ok = h.clean && h.fields && clist_begin(h.fields->fld_list);
	out->date_header = header_raw(n + h.start, h.end - h.start, "Date");
	if (h.fields) {
		take_fields(out, h.fields);
		char *ctype = msg_mime_content(h.mf) ? NULL
						 : header_raw(n + h.start, h.end - h.start,
							      "Content-Type");
		if (ctype)
			out->parse_ok = 0; /* present but unreadable */
		free(ctype);
	}
	msg_find_body(out, n + h.body, nlen - h.body, h.mf, msg_raw_field(h.fields, "Content-Type"));

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

	msg_head_free(&h);
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

/* Without libetpan: the poison path must not run the code that crashed. */
char *msg_raw_header(const char *raw, size_t len, const char *name)
{
	size_t nl = strlen(name);
	struct sbuf b = {0};
	size_t i = 0;
	while (i < len) {
		size_t eol = i;
		while (eol < len && raw[eol] != '\n')
			eol++;
		size_t line_end = (eol > i && raw[eol - 1] == '\r') ? eol - 1 : eol;
		if (line_end == i)
			break; /* end of the header */
		if (line_end - i > nl && raw[i + nl] == ':' && !ascii_strncasecmp(raw + i, name, nl)) {
			size_t j = i + nl + 1;
			for (;;) {
				for (; j < line_end && b.len < 998; j++) {
					unsigned char c = (unsigned char)raw[j];
					sbuf_addc(&b, (c >= 0x20 && c < 0x7f) || c == '\t' ? (char)c : '?');
				}
				/* continuation lines start with white space */
				size_t next = eol + 1;
				if (next >= len || (raw[next] != ' ' && raw[next] != '\t'))
					break;
				eol = next;
				while (eol < len && raw[eol] != '\n')
					eol++;
				line_end = (eol > next && raw[eol - 1] == '\r') ? eol - 1 : eol;
				j = next;
			}
			break;
		}
		i = eol + 1;
	}
	char *v = sbuf_detach(&b);
	return str_trim(v);
}
