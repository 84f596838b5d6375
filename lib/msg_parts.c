/* msg_parts: the attachments of an archived message.
 *
 * The MIME walk is msg_body.c's own (msg_walk_body()), run on the same
 * normalised copy msg_parse() reads, so the two agree on the structure and
 * on which part is the body shown: that one part is never an attachment.
 * Filenames are read here from the raw header values (RFC 2231 parameters,
 * which libetpan does not decode, and RFC 2047 words inside them). */
#define _GNU_SOURCE /* memmem() */
#include "msg_parts.h"

#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>

#include "message.h"
#include "msg_body.h"
#include "msg_text.h"
#include "util.h"

#define SEGS_MAX 64    /* RFC 2231 continuations of one parameter */
#define PARAM_MAX 4096 /* bytes of one parameter value we keep */
#define EXT_KEEP 16    /* bytes of a filename extension kept when truncating */

/* An attachment found by the walk, before decoding. */
struct cand {
	const char *data; /* into the normalised copy */
	size_t len;
	int enc;
	char *type;
	char *name; /* decoded, not yet sanitised; NULL when none */
};

struct collect {
	struct mailimf_fields *top; /* the message's header */
	struct cand *c;
	size_t n;
};

static int is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- parameters ---------------------------------------------------------- */

struct param {
	struct sbuf plain;          /* NAME=value */
	struct sbuf ext;            /* NAME*=charset'lang'%XX */
	struct sbuf seg[SEGS_MAX];  /* NAME*N= and NAME*N*= */
	unsigned char seg_ext[SEGS_MAX];
	int have_plain, have_ext;
	unsigned char have_seg[SEGS_MAX];
};

/* Which form of NAME the attribute A[0..n) is: 1 plain, 2 extended, 3
 * continuation (*seg, *ext set), 0 another parameter. */
static int attr_kind(const char *a, size_t n, const char *name, int *seg, int *ext)
{
	size_t nl = strlen(name);

	if (n < nl || ascii_strncasecmp(a, name, nl) != 0)
		return 0;
	if (n == nl)
		return 1;
	if (a[nl] != '*')
		return 0;
	if (n == nl + 1)
		return 2;
	size_t i = nl + 1;
	int v = 0, digits = 0;
	for (; i < n && a[i] >= '0' && a[i] <= '9' && digits < 3; i++, digits++)
		v = v * 10 + (a[i] - '0');
	if (!digits || (digits > 1 && a[nl + 1] == '0') || v >= SEGS_MAX)
		return 0;
	*ext = i < n && a[i] == '*';
	i += (size_t)*ext;
	if (i != n)
		return 0;
	*seg = v;
	return 3;
}

/* Read the parameters of header value V (after its first token). */
static void read_params(const char *v, const char *name, struct param *pr)
{
	const char *p = v;

	while (p && *p) {
		/* To the next ';' outside a quoted string. */
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (*p)
				p++;
			continue;
		}
		if (*p++ != ';')
			continue;
		while (is_wsp(*p))
			p++;
		const char *a = p;
		while (*p && *p != '=' && *p != ';' && *p != '"' && !is_wsp(*p))
			p++;
		size_t alen = (size_t)(p - a);
		while (is_wsp(*p))
			p++;
		if (*p != '=')
			continue;
		for (p++; is_wsp(*p); p++)
			;
		struct sbuf val = {0};
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (*p != '\r' && *p != '\n' && val.len < PARAM_MAX)
					sbuf_addc(&val, *p);
			}
			if (*p)
				p++;
		} else {
			/* A token; agents leave blanks in unquoted names, so read
			 * to the ';' and unfold. */
			size_t k = strcspn(p, ";");
			for (size_t j = 0; j < k && val.len < PARAM_MAX; j++)
				if (p[j] != '\r' && p[j] != '\n')
					sbuf_addc(&val, p[j]);
			while (val.len && is_wsp(val.buf[val.len - 1]))
				val.buf[--val.len] = '\0';
			p += k;
		}
		int seg = 0, ext = 0;
		struct sbuf *into = NULL;
		switch (attr_kind(a, alen, name, &seg, &ext)) {
		case 1:
			into = pr->have_plain ? NULL : &pr->plain;
			pr->have_plain = 1;
			break;
		case 2:
			into = pr->have_ext ? NULL : &pr->ext;
			pr->have_ext = 1;
			break;
		case 3:
			if (!pr->have_seg[seg]) {
				pr->have_seg[seg] = 1;
				pr->seg_ext[seg] = (unsigned char)ext;
				into = &pr->seg[seg];
			}
			break;
		default:
			break;
		}
		if (into && val.len)
			sbuf_add(into, val.buf, val.len);
		sbuf_free(&val);
	}
}

/* Append %XX-decoded S[0..n). */
static void add_pct(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && msg_hexval(s[i + 1]) >= 0 &&
		    msg_hexval(s[i + 2]) >= 0) {
			sbuf_addc(b, (char)(msg_hexval(s[i + 1]) * 16 + msg_hexval(s[i + 2])));
			i += 2;
		} else {
			sbuf_addc(b, s[i]);
		}
	}
}

/* Split an RFC 2231 "charset'lang'rest" value: the charset into CS (may
 * be empty), *REST past the second quote (or the whole value). */
static void split_ext(const char *v, size_t n, char cs[48], const char **rest, size_t *rest_n)
{
	const char *q1 = memchr(v, '\'', n);
	const char *q2 = q1 ? memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - v)) : NULL;

	cs[0] = '\0';
	if (!q2) {
		*rest = v;
		*rest_n = n;
		return;
	}
	size_t cl = (size_t)(q1 - v);
	if (cl < 48) {
		memcpy(cs, v, cl);
		cs[cl] = '\0';
	}
	*rest = q2 + 1;
	*rest_n = n - (size_t)(q2 + 1 - v);
}

/* The decoded UTF-8 value of parameter NAME of header value V, or NULL. */
static char *param_get(const char *v, const char *name)
{
	struct param *pr;
	struct sbuf bytes = {0};
	char cs[48] = "", *r = NULL;

	if (!v)
		return NULL;
	pr = xcalloc(1, sizeof *pr);
	read_params(v, name, pr);
	if (pr->have_ext && pr->ext.len) {
		const char *rest;
		size_t rn;
		split_ext(pr->ext.buf, pr->ext.len, cs, &rest, &rn);
		add_pct(&bytes, rest, rn);
		r = msg_to_utf8(bytes.buf ? bytes.buf : "", bytes.len, cs[0] ? cs : NULL);
	} else if (pr->have_seg[0]) {
		int any_ext = 0;
		for (int k = 0; k < SEGS_MAX && pr->have_seg[k]; k++) {
			const char *s = pr->seg[k].buf ? pr->seg[k].buf : "";
			size_t sn = pr->seg[k].len;
			if (!pr->seg_ext[k]) {
				sbuf_add(&bytes, s, sn);
				continue;
			}
			if (k == 0)
				split_ext(s, sn, cs, &s, &sn);
			add_pct(&bytes, s, sn);
			any_ext = 1;
		}
		if (any_ext)
			r = msg_to_utf8(bytes.buf ? bytes.buf : "", bytes.len, cs[0] ? cs : NULL);
		else if (bytes.len)
			r = msg_decode_phrase(bytes.buf);
	} else if (pr->have_plain && pr->plain.len) {
		r = msg_decode_phrase(pr->plain.buf);
	}
	sbuf_free(&bytes);
	sbuf_free(&pr->plain);
	sbuf_free(&pr->ext);
	for (int k = 0; k < SEGS_MAX; k++)
		sbuf_free(&pr->seg[k]);
	free(pr);
	if (r && !*r) {
		free(r);
		r = NULL;
	}
	return r;
}

/* ---- filenames and types ------------------------------------------------- */

/* Code points a filename never keeps: controls, line separators, and the
 * bidi marks that make "evil\u202Etxt.exe" read as "evilexe.txt". */
static int bad_cp(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0x061C || cp == 0x200E ||
	       cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0xFEFF;
}

static unsigned decode_cp(const unsigned char *s, size_t k)
{
	if (k == 1)
		return s[0];
	if (k == 2)
		return (unsigned)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
	if (k == 3)
		return (unsigned)(s[0] & 0x0F) << 12 | (unsigned)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
	return (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3F) << 12 |
	       (unsigned)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
}

/* NAME (UTF-8) as a safe download name, or NULL when nothing is left: no
 * directory part, no controls, no characters filesystems or the
 * Content-Disposition quoting trip on, no leading dots, at most
 * MSG_PARTS_NAME_MAX bytes with the extension kept. */
static char *sanitize_name(const char *name)
{
	struct sbuf b = {0};
	const char *base = name;

	if (!name)
		return NULL;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	const unsigned char *p = (const unsigned char *)base;
	for (size_t i = 0, n = strlen(base); i < n;) {
		size_t k = utf8_sequence(p + i, n - i, NULL);
		if (k == 0) {
			i++; /* cannot happen: the decoders give valid UTF-8 */
			continue;
		}
		unsigned cp = decode_cp(p + i, k);
		if (k == 1 && strchr("\"*:<>?|", (int)cp) && cp)
			sbuf_addc(&b, '_');
		else if (!bad_cp(cp))
			sbuf_add(&b, p + i, k);
		i += k;
	}
	char *s = b.buf ? b.buf : NULL;
	if (!s)
		return NULL;
	size_t start = 0, len = b.len;
	while (start < len && (s[start] == ' ' || s[start] == '.'))
		start++;
	while (len > start && (s[len - 1] == ' ' || s[len - 1] == '.'))
		len--;
	memmove(s, s + start, len - start);
	len -= start;
	s[len] = '\0';
	if (len > MSG_PARTS_NAME_MAX) {
		const char *dot = strrchr(s, '.');
		size_t ext = dot && len - (size_t)(dot - s) <= EXT_KEEP ? len - (size_t)(dot - s) : 0;
		size_t keep = MSG_PARTS_NAME_MAX - ext;
		while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
			keep--;
		memmove(s + keep, s + len - ext, ext);
		len = keep + ext;
		s[len] = '\0';
	}
	if (len == 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* A MIME token, lowercased, or NULL when empty or not a token. */
static char *token(const char *s)
{
	if (!s || !*s || strlen(s) > 100)
		return NULL;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7F ||
		    strchr("()<>@,;:\\\"/[]?=", *p))
			return NULL;
	char *t = xstrdup(s);
	ascii_lower(t);
	return t;
}

static char *type_of(struct mailmime_fields *mf, enum msg_leaf_kind kind)
{
	struct mailmime_content *ct = msg_mime_content(mf);
	const char *top = NULL;

	if (!ct || !ct->ct_type)
		return xstrdup(kind == MSG_LEAF_MESSAGE ? "message/rfc822" : "text/plain");
	if (ct->ct_type->tp_type == MAILMIME_TYPE_DISCRETE_TYPE &&
	    ct->ct_type->tp_data.tp_discrete_type) {
		struct mailmime_discrete_type *d = ct->ct_type->tp_data.tp_discrete_type;
		static const char *const names[] = {NULL, "text", "image", "audio", "video",
						    "application"};
		if (d->dt_type > 0 && d->dt_type < 6)
			top = names[d->dt_type];
		else if (d->dt_type == MAILMIME_DISCRETE_TYPE_EXTENSION)
			top = d->dt_extension;
	} else if (ct->ct_type->tp_type == MAILMIME_TYPE_COMPOSITE_TYPE &&
		   ct->ct_type->tp_data.tp_composite_type) {
		struct mailmime_composite_type *c = ct->ct_type->tp_data.tp_composite_type;
		if (c->ct_type == MAILMIME_COMPOSITE_TYPE_MESSAGE)
			top = "message";
		else if (c->ct_type == MAILMIME_COMPOSITE_TYPE_MULTIPART)
			top = "multipart";
		else if (c->ct_type == MAILMIME_COMPOSITE_TYPE_EXTENSION)
			top = c->ct_token;
	}
	char *t = token(top), *sub = token(ct->ct_subtype), *r;
	if (t && sub)
		r = xasprintf("%s/%s", t, sub);
	else
		r = xstrdup("application/octet-stream");
	free(t);
	free(sub);
	return r;
}

/* ---- the walk ------------------------------------------------------------ */

static void on_leaf(void *ctx, const struct msg_leaf *l)
{
	struct collect *c = ctx;

	/* One more than listed: the body may be among them. */
	if (c->n > MSG_PARTS_MAX || l->depth > MSG_PARTS_DEPTH)
		return;
	struct mailimf_fields *f = l->depth == 0 ? c->top : l->fields;
	char *name = param_get(msg_raw_field(f, "Content-Disposition"), "filename");
	if (!name)
		name = param_get(msg_raw_field(f, "Content-Type"), "name");
	if (l->kind == MSG_LEAF_TEXT && !name && !msg_is_attachment(l->mf))
		return;
	if (!c->c)
		c->c = xcalloc(MSG_PARTS_MAX + 1, sizeof *c->c);
	struct cand *k = &c->c[c->n++];
	k->data = l->data;
	k->len = l->len;
	k->enc = l->mf ? mailmime_transfer_encoding_get(l->mf) : MAILMIME_MECHANISM_8BIT;
	k->type = type_of(l->mf, l->kind);
	k->name = name;
}

static void free_cands(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->c[i].type);
		free(c->c[i].name);
	}
	free(c->c);
	c->c = NULL;
	c->n = 0;
}

/* The attachments of RAW into C, pointing into *NORM (caller frees). */
static void collect(const char *raw, size_t len, struct collect *c, char **norm)
{
	struct msg_head h;
	struct msg_info m;
	size_t nlen;
	const char *src = NULL;

	memset(c, 0, sizeof *c);
	memset(&m, 0, sizeof m);
	char *n = msg_normalize(raw ? raw : "", raw ? len : 0, &nlen);
	*norm = n;
	/* Read as msg_parse() reads it, so the body part is the same one. */
	msg_read_head(n, nlen, &h);
	c->top = h.fields;
	msg_walk_body(&m, n + h.body, nlen - h.body, h.mf, msg_raw_field(h.fields, "Content-Type"),
		      on_leaf, c, &src);
	c->top = NULL;
	msg_info_free(&m);
	msg_head_free(&h);

	for (size_t i = 0; src && i < c->n; i++) {
		if (c->c[i].data == src) {
			free(c->c[i].type);
			free(c->c[i].name);
			memmove(&c->c[i], &c->c[i + 1], (c->n - i - 1) * sizeof c->c[i]);
			c->n--;
			break;
		}
	}
	while (c->n > MSG_PARTS_MAX) {
		c->n--;
		free(c->c[c->n].type);
		free(c->c[c->n].name);
	}
}

/* ---- decoding ------------------------------------------------------------ */

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Base64, leniently: anything outside the alphabet is skipped, a partial
 * last group gives the bytes it holds, and '=' ends a group (so that
 * separately padded chunks, as some agents write them, decode too). Our
 * own rather than libetpan's decoder: with B NULL it only counts, so the
 * listing states exactly the size the download then sends. */
static size_t add_base64(struct sbuf *b, const char *s, size_t n)
{
	unsigned acc = 0;
	int bits = 0;
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);
		if (s[i] == '=') {
			acc = 0;
			bits = 0;
		}
		if (v < 0)
			continue;
		acc = (acc << 6 | (unsigned)v) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out++;
			if (b)
				sbuf_addc(b, (char)(acc >> bits & 0xFF));
		}
	}
	return out;
}

static char *decode(const struct cand *k, size_t *out_len)
{
	struct sbuf b = {0};

	if (k->enc == MAILMIME_MECHANISM_BASE64)
		add_base64(&b, k->data, k->len);
	else if (k->enc == MAILMIME_MECHANISM_QUOTED_PRINTABLE)
		msg_add_qp(&b, k->data, k->len);
	else
		sbuf_add(&b, k->data, k->len);
	*out_len = b.len;
	return sbuf_detach(&b);
}

/* The decoded size, without keeping the bytes when it can. */
static size_t decoded_size(const struct cand *k)
{
	size_t n;

	if (k->enc == MAILMIME_MECHANISM_BASE64)
		return add_base64(NULL, k->data, k->len);
	if (k->enc != MAILMIME_MECHANISM_QUOTED_PRINTABLE)
		return k->len;
	free(decode(k, &n));
	return n;
}

static void describe(const struct cand *k, size_t index, size_t size, struct msg_part *p)
{
	p->filename = sanitize_name(k->name);
	if (!p->filename)
		p->filename = xasprintf("attachment-%zu", index);
	p->content_type = xstrdup(k->type);
	p->size = size;
}

/* ---- the interface ------------------------------------------------------- */

int msg_parts_list(const char *raw, size_t len, struct msg_part **out, size_t *n)
{
	struct collect c;
	char *norm;

	collect(raw, len, &c, &norm);
	*out = NULL;
	*n = c.n;
	if (c.n) {
		*out = xcalloc(c.n, sizeof **out);
		for (size_t i = 0; i < c.n; i++)
			describe(&c.c[i], i + 1, decoded_size(&c.c[i]), &(*out)[i]);
	}
	free_cands(&c);
	free(norm);
	return 0;
}

void msg_part_clear(struct msg_part *p)
{
	free(p->filename);
	free(p->content_type);
	p->filename = p->content_type = NULL;
}

void msg_parts_free(struct msg_part *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++)
		msg_part_clear(&p[i]);
	free(p);
}

int msg_parts_get(const char *raw, size_t len, size_t index, char **data, size_t *data_len,
		  struct msg_part *info)
{
	struct collect c;
	char *norm;
	int r = -1;

	*data = NULL;
	*data_len = 0;
	memset(info, 0, sizeof *info);
	collect(raw, len, &c, &norm);
	if (index >= 1 && index <= c.n) {
		*data = decode(&c.c[index - 1], data_len);
		describe(&c.c[index - 1], index, *data_len, info);
		r = 0;
	}
	free_cands(&c);
	free(norm);
	return r;
}
