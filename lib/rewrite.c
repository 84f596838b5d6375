/* rewrite: the header of a post as it leaves the list, and the facts the
 * post policy reads from it. The header is scanned here field by field
 * over the raw bytes (not through libetpan's tree) so that every field we
 * keep goes out byte for byte: only line ends change, to CRLF. That keeps
 * DKIM signatures over untouched fields valid and never re-encodes what a
 * sender wrote. Everything is linear in the input: a hostile header can
 * make us slow only in proportion to its size, which SMTP already caps. */
#include "rewrite.h"
#include "route.h"
#include "rewrite_int.h"

#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>
#include <openssl/evp.h>

#include "address.h"
#include "msg_text.h"
#include "util.h"

#define VALUE_MAX (64 * 1024)  /* bytes of one field value we look into */
#define FROM_PARSE_MAX 8192    /* longer From values get the crude reading only */
#define ENC_CHUNK 42           /* bytes per encoded word: 56 base64 chars, 68 in all */

/* ---- scanning the header block ------------------------------------------- */

size_t rw_eol(const char *s, size_t n, size_t i)
{
	if (i >= n)
		return 0;
	if (s[i] == '\r')
		return (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
	return s[i] == '\n';
}

/* Offset of the first line end at or after I, or N. */
static size_t line_end(const char *s, size_t n, size_t i)
{
	while (i < n && s[i] != '\r' && s[i] != '\n')
		i++;
	return i;
}

void rw_add_crlf(struct sbuf *b, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t e = line_end(s, n, i);
		sbuf_add(b, s + i, e - i);
		if (e >= n)
			break;
		sbuf_add(b, "\r\n", 2);
		i = e + rw_eol(s, n, e);
	}
}

/* Offset of the ':' when S[p..e) starts a field (a name of printable ASCII
 * but ':', then optional WSP as RFC 5322 obs-syntax allows), else 0. */
static size_t field_colon(const char *s, size_t p, size_t e, size_t *name_len)
{
	size_t i = p;

	while (i < e && (unsigned char)s[i] > 32 && (unsigned char)s[i] < 127 && s[i] != ':')
		i++;
	*name_len = i - p;
	if (i == p)
		return 0;
	while (i < e && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return (i < e && s[i] == ':') ? i : 0;
}

void rw_iter_init(struct rw_iter *it, const char *raw, size_t len)
{
	size_t nl;

	memset(it, 0, sizeof(*it));
	it->raw = raw ? raw : "";
	it->len = raw ? len : 0;
	/* An mbox envelope line is not part of the message. */
	if (it->len >= 5 && memcmp(it->raw, "From ", 5) == 0) {
		size_t e = line_end(it->raw, it->len, 0);
		if (!field_colon(it->raw, 0, e, &nl))
			it->pos = e + rw_eol(it->raw, it->len, e);
	}
}

int rw_next(struct rw_iter *it, struct rw_field *f)
{
	const char *s = it->raw;
	size_t n = it->len, p = it->pos, nl;

	if (it->done)
		return 0;
	if (p >= n) {
		it->body = n;
		it->done = 1;
		return 0;
	}
	size_t e = line_end(s, n, p);
	if (e == p) {
		it->body = p + rw_eol(s, n, p);
		it->done = 1;
		return 0;
	}
	size_t colon = field_colon(s, p, e, &nl);
	if (!colon) {
		it->body = p;
		it->done = 1;
		return 0;
	}
	size_t end = e + rw_eol(s, n, e);
	while (end < n && (s[end] == ' ' || s[end] == '\t')) {
		e = line_end(s, n, end);
		end = e + rw_eol(s, n, e);
	}
	f->start = p;
	f->end = end;
	f->name_len = nl;
	f->value = colon + 1;
	it->pos = end;
	return 1;
}

int rw_field_is(const struct rw_iter *it, const struct rw_field *f, const char *name)
{
	size_t n = strlen(name);
	return f->name_len == n && ascii_strncasecmp(it->raw + f->start, name, n) == 0;
}

int rw_field_has_prefix(const struct rw_iter *it, const struct rw_field *f, const char *prefix)
{
	size_t n = strlen(prefix);
	return f->name_len >= n && ascii_strncasecmp(it->raw + f->start, prefix, n) == 0;
}

char *rw_field_value(const struct rw_iter *it, const struct rw_field *f, size_t max)
{
	size_t cap = f->end - f->value < max ? f->end - f->value : max;
	char *v = xmalloc(cap + 1);
	size_t o = 0;

	for (size_t i = f->value; i < f->end && o < cap; i++) {
		char c = it->raw[i];
		if (c == '\r' || c == '\n')
			continue;
		v[o++] = c ? c : ' ';
	}
	v[o] = '\0';
	return v;
}

/* Every byte of F, line ends as CRLF, a missing final line end added. */
static void add_field(struct sbuf *b, const struct rw_iter *it, const struct rw_field *f)
{
	rw_add_crlf(b, it->raw + f->start, f->end - f->start);
	char last = it->raw[f->end - 1];
	if (last != '\r' && last != '\n')
		sbuf_add(b, "\r\n", 2);
}

/* ---- writing folded header lines ----------------------------------------- */

void rw_fold_begin(struct rw_fold *w, struct sbuf *b, const char *name)
{
	w->b = b;
	sbuf_adds(b, name);
	sbuf_addc(b, ':');
	w->col = strlen(name) + 1;
	w->words = 0;
}

void rw_fold_word(struct rw_fold *w, const char *s, size_t n)
{
	if (w->words && w->col + 1 + n > RW_FOLD_COL) {
		sbuf_add(w->b, "\r\n ", 3);
		w->col = 1;
	} else {
		sbuf_addc(w->b, ' ');
		w->col++;
	}
	sbuf_add(w->b, s, n);
	w->col += n;
	w->words++;
}

/* How many bytes of S[0..n), at most MAX, end at a UTF-8 character
 * boundary; 0 when not even one character fits. Bytes that are not UTF-8
 * at all may be split anywhere. */
static size_t utf8_chunk(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--;
	if (k == 0 && max == ENC_CHUNK)
		return max; /* a run of continuation bytes: not UTF-8 */
	return k;
}

void rw_fold_encoded(struct rw_fold *w, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		/* Fill what is left of the current line before folding. */
		size_t room = w->col + 1 + 12 < RW_FOLD_COL ? RW_FOLD_COL - w->col - 1 - 12 : 0;
		size_t max = room / 4 * 3;
		if (max < 9 || max > ENC_CHUNK)
			max = ENC_CHUNK;
		size_t k = utf8_chunk(s + i, n - i, max);
		if (k == 0)
			k = utf8_chunk(s + i, n - i, ENC_CHUNK);
		char word[96];
		memcpy(word, "=?UTF-8?B?", 10);
		int m = EVP_EncodeBlock((unsigned char *)word + 10, (const unsigned char *)s + i,
					(int)k);
		memcpy(word + 10 + m, "?=", 2);
		rw_fold_word(w, word, 10 + (size_t)m + 2);
		i += k;
	}
}

static int is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Words of S separated by runs of spaces, each handed to rw_fold_word. */
static void fold_words(struct rw_fold *w, const char *s)
{
	while (*s) {
		while (*s == ' ')
			s++;
		size_t n = strcspn(s, " ");
		if (n)
			rw_fold_word(w, s, n);
		s += n;
	}
}

void rw_fold_phrase(struct rw_fold *w, const char *text)
{
	char *t = msg_clean_line(text, strlen(text));
	int ascii = strstr(t, "=?") == NULL, atoms = 1;

	for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
		if (*p < 0x20 || *p > 0x7e)
			ascii = 0;
		if (*p != ' ' && !is_atext(*p))
			atoms = 0;
	}
	if (!*t) {
		/* nothing to write */
	} else if (ascii && atoms) {
		fold_words(w, t);
	} else if (ascii) {
		/* FWS may fold a quoted-string, so its spaces are fold points. */
		struct sbuf q = {0};
		sbuf_addc(&q, '"');
		for (const char *p = t; *p; p++) {
			if (*p == '"' || *p == '\\')
				sbuf_addc(&q, '\\');
			if (*p == ' ' && p[1] == ' ')
				continue;
			sbuf_addc(&q, *p);
		}
		sbuf_addc(&q, '"');
		fold_words(w, q.buf);
		sbuf_free(&q);
	} else {
		rw_fold_encoded(w, t, strlen(t));
	}
	free(t);
}

void rw_fold_end(struct rw_fold *w)
{
	sbuf_add(w->b, "\r\n", 2);
}

/* ---- the list's own fields ----------------------------------------------- */

static int is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* S percent-encoded; KEEP lists further bytes that may stay as they are. */
static void add_url_part(struct sbuf *b, const char *s, const char *keep)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (is_unreserved(*p) || (keep && strchr(keep, *p)))
			sbuf_addc(b, (char)*p);
		else
			sbuf_printf(b, "%%%02X", *p);
	}
}

/* "<BASE/NAME/" (no closing bracket) when the web is configured, else 0. */
static int add_web_base(struct sbuf *b, const struct config *cfg, const struct list_cfg *l)
{
	if (!cfg || cfg->n_http_listen == 0 || !cfg->base_url || !cfg->base_url[0])
		return 0;
	char *base = xstrdup(cfg->base_url);
	size_t n = strlen(base);
	while (n > 0 && base[n - 1] == '/')
		base[--n] = '\0';
	sbuf_addc(b, '<');
	add_url_part(b, base, ":/?#[]@!$&'()*+,;=%");
	sbuf_addc(b, '/');
	add_url_part(b, l->name ? l->name : l->local, NULL);
	sbuf_addc(b, '/');
	free(base);
	return 1;
}

static void add_list_fields(struct sbuf *b, const struct config *cfg, const struct list_cfg *l)
{
	struct rw_fold w;

	rw_fold_begin(&w, b, "List-Id");
	if (l->title)
		rw_fold_phrase(&w, l->title);
	char *id = xasprintf("<%s.%s>", l->local, l->domain);
	rw_fold_word(&w, id, strlen(id));
	free(id);
	rw_fold_end(&w);

	/* RFC 2369 3.4: an announcement list says that posting is closed. */
	if (l->post_policy == POST_ANNOUNCE)
		sbuf_adds(b, "List-Post: NO (posting not allowed on this list)\r\n");
	else
		sbuf_printf(b, "List-Post: <mailto:%s>\r\n", l->address);
	sbuf_printf(b, "List-Help: <mailto:%s-request@%s?subject=help>\r\n", l->local, l->domain);
	sbuf_printf(b, "List-Subscribe: <mailto:%s-join@%s>\r\n", l->local, l->domain);
	if (l->archive == ARCHIVE_PUBLIC) {
		struct sbuf u = {0};
		if (add_web_base(&u, cfg, l)) {
			sbuf_addc(&u, '>');
			rw_fold_begin(&w, b, "List-Archive");
			rw_fold_word(&w, u.buf, u.len);
			rw_fold_end(&w);
		}
		sbuf_free(&u);
	}
	sbuf_adds(b, "Precedence: list\r\n");
	sbuf_printf(b, "X-Loop: %s\r\n", l->address);
}

char *rewrite_recipient_head(const struct config *cfg, const struct list_cfg *l,
			     const char *token)
{
	struct sbuf b = {0}, url = {0};
	struct rw_fold w;
	int one_click = 0;

	if (token && token[0] && add_web_base(&url, cfg, l)) {
		sbuf_adds(&url, "unsubscribe/");
		add_url_part(&url, token, NULL);
		sbuf_addc(&url, '>');
		one_click = 1;
	}
	char *mailto = xasprintf("<mailto:%s-leave@%s>%s", l->local, l->domain,
				 one_click ? "," : "");
	rw_fold_begin(&w, &b, "List-Unsubscribe");
	rw_fold_word(&w, mailto, strlen(mailto));
	if (one_click)
		rw_fold_word(&w, url.buf, url.len);
	rw_fold_end(&w);
	/* RFC 8058 3.1: one-click only ever names an HTTPS URI; a plain http
	 * URL (a test or a site behind no TLS) stays an ordinary link. */
	if (one_click && !ascii_strncasecmp(cfg->base_url, "https://", 8))
		sbuf_adds(&b, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
	free(mailto);
	sbuf_free(&url);
	return sbuf_detach(&b);
}

/* ---- facts ----------------------------------------------------------------- */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* S[0..n) trimmed equals WANT, ignoring ASCII case? */
static int trimmed_is(const char *s, size_t n, const char *want)
{
	while (n && is_wsp(*s))
		s++, n--;
	while (n && is_wsp(s[n - 1]))
		n--;
	return n == strlen(want) && ascii_strncasecmp(s, want, n) == 0;
}

/* Does a List-Id value name list L? Any <...> in it may hold the id (the
 * title before it is free text); a value without brackets is the id. */
static int list_id_names(const char *v, const struct list_cfg *l)
{
	char *id = xasprintf("%s.%s", l->local, l->domain);
	int hit = 0;
	const char *lt = strchr(v, '<');

	if (!lt)
		hit = trimmed_is(v, strlen(v), id);
	/* One pass: each '>' closes the nearest '<' before it, and the search
	 * goes on after that '>' ("<<<<...>" must not cost a scan per '<'). */
	while (lt && !hit) {
		const char *gt = strchr(lt, '>');
		if (!gt)
			break;
		const char *open = lt;
		for (const char *p = lt; p < gt; p++)
			if (*p == '<')
				open = p;
		hit = trimmed_is(open + 1, (size_t)(gt - open - 1), id);
		lt = strchr(gt + 1, '<');
	}
	free(id);
	return hit;
}

/* Does an X-Loop value name L's address? X-Loop has no fixed syntax, so
 * any word of it (split at spaces, brackets, commas) counts. */
static int x_loop_names(const char *v, const struct list_cfg *l)
{
	const char *delim = " \t<>(),;\"";
	size_t al = strlen(l->address);

	while (*v) {
		v += strspn(v, delim);
		size_t n = strcspn(v, delim);
		if (n == al && ascii_strncasecmp(v, l->address, n) == 0)
			return 1;
		v += n;
	}
	return 0;
}

/* Auto-Submitted (RFC 3834): anything but "no" marks machine-made mail;
 * comments and parameters after ';' do not count. */
static int auto_submitted_value(const char *v)
{
	struct sbuf b = {0};
	int depth = 0;

	for (const char *p = v; *p && *p != ';'; p++) {
		if (*p == '\\' && depth && p[1]) {
			p++;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')' && depth) {
			depth--;
		} else if (!depth) {
			sbuf_addc(&b, *p);
		}
	}
	int is_no = b.buf && trimmed_is(b.buf, b.len, "no");
	sbuf_free(&b);
	return !is_no;
}

/* The crude reading of a From value libetpan could not make sense of: the
 * text in the last <...>, or the first word when it has no brackets. */
static char *crude_from(const char *v)
{
	const char *lt = strrchr(v, '<');
	const char *gt = lt ? strchr(lt, '>') : NULL;

	if (lt && gt)
		return str_trim(xstrndup(lt + 1, (size_t)(gt - lt - 1)));
	v += strspn(v, " \t");
	return xstrndup(v, strcspn(v, " \t("));
}

/* A candidate address usable for a lookup and a log line, domain
 * lowercased, even when not RFC 5321-valid (quoted spaces, odd domains);
 * NULL when it is no address at all. Frees A. */
static char *usable_address(char *a)
{
	char *norm = address_normalize(a);
	if (norm) {
		free(a);
		return norm;
	}
	char *at = strrchr(a, '@');
	int ok = at && at != a && at[1] && strlen(a) <= ADDRESS_MAX;
	for (const unsigned char *p = (const unsigned char *)a; ok && *p; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			ok = 0;
	if (!ok) {
		free(a);
		return NULL;
	}
	ascii_lower(at);
	return a;
}

/* The addr-spec of the first mailbox of a From value, domain lowercased;
 * "" when there is none. */
static char *from_address(const char *v)
{
	size_t n = strlen(v), idx = 0;
	struct mailimf_mailbox_list *ml = NULL;
	char *a = NULL;

	if (n <= FROM_PARSE_MAX &&
	    mailimf_mailbox_list_parse(v, n, &idx, &ml) == MAILIMF_NO_ERROR && ml) {
		clistiter *it = clist_begin(ml->mb_list);
		struct mailimf_mailbox *mb = it ? clist_content(it) : NULL;
		if (mb && mb->mb_addr_spec)
			a = usable_address(str_trim(xstrdup(mb->mb_addr_spec)));
	}
	if (ml)
		mailimf_mailbox_list_free(ml);
	if (!a)
		a = usable_address(crude_from(v));
	return a ? a : xstrdup("");
}

/* What an address-list value (To, Cc) says about list L. */
struct rcpt_scan {
	const struct list_cfg *l;
	long count;
	int names_list;
	struct sbuf bare;  /* the element outside quotes, comments and <> */
	struct sbuf angle; /* inside the last <> of the element */
	int had_angle;
};

static void scan_element_end(struct rcpt_scan *r)
{
	char *a = NULL;

	if (r->had_angle) {
		const char *v = r->angle.buf ? r->angle.buf : "";
		const char *colon = strrchr(v, ':'); /* an obsolete source route */
		a = xstrdup(colon ? colon + 1 : v);
	} else if (r->bare.buf && strchr(r->bare.buf, '@')) {
		a = xstrdup(r->bare.buf);
	}
	if (a) {
		r->count++;
		a = usable_address(str_trim(a));
		if (a && route_is_list_address(r->l, a))
			r->names_list = 1;
		free(a);
	}
	sbuf_free(&r->bare);
	sbuf_free(&r->angle);
	r->had_angle = 0;
}

/* Count the addresses of an address-list value and see whether one is the
 * list's. A linear scan of our own rather than libetpan's recursive
 * parser, which a hostile value can drive deep: quotes, comments (nested),
 * <...> and groups ("name: a, b;") are understood, anything else is read
 * as well as it can be. */
static void scan_recipients(struct rcpt_scan *r, const char *v)
{
	int quoted = 0, in_angle = 0;
	long depth = 0;

	for (const char *p = v; *p; p++) {
		char c = *p;
		if ((quoted || depth) && c == '\\' && p[1]) {
			p++;
			if (quoted && in_angle)
				sbuf_addc(&r->angle, *p);
			continue;
		}
		if (quoted) {
			if (c == '"')
				quoted = 0;
			else if (in_angle)
				sbuf_addc(&r->angle, c);
			continue;
		}
		if (depth) {
			if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			continue;
		}
		if (c == '(') {
			depth = 1;
		} else if (c == '"') {
			quoted = 1;
		} else if (in_angle) {
			if (c == '>')
				in_angle = 0;
			else
				sbuf_addc(&r->angle, c);
		} else if (c == '<') {
			in_angle = 1;
			r->had_angle = 1;
			sbuf_free(&r->angle);
		} else if (c == ',' || c == ';') {
			scan_element_end(r);
		} else if (c == ':') {
			/* A group's display name is no address. */
			sbuf_free(&r->bare);
		} else {
			sbuf_addc(&r->bare, c);
		}
	}
	scan_element_end(r);
}

void rewrite_facts(const char *raw, size_t len, const struct list_cfg *l, struct post_facts *f,
		   char **from_addr)
{
	struct rw_iter it;
	struct rw_field fl;
	struct rcpt_scan rs = {.l = l};
	char *from = NULL;

	f->has_own_list_id = 0;
	f->has_own_x_loop = 0;
	f->auto_submitted = 0;
	rw_iter_init(&it, raw, len);
	while (rw_next(&it, &fl)) {
		int is_from = !from && rw_field_is(&it, &fl, "From");
		int is_id = rw_field_is(&it, &fl, "List-Id");
		int is_loop = rw_field_is(&it, &fl, "X-Loop");
		int is_auto = rw_field_is(&it, &fl, "Auto-Submitted");
		int is_rcpt = rw_field_is(&it, &fl, "To") || rw_field_is(&it, &fl, "Cc");
		if (!is_from && !is_id && !is_loop && !is_auto && !is_rcpt)
			continue;
		char *v = rw_field_value(&it, &fl, VALUE_MAX);
		if (is_from)
			from = from_address(v);
		else if (is_id && list_id_names(v, l))
			f->has_own_list_id = 1;
		else if (is_loop && x_loop_names(v, l))
			f->has_own_x_loop = 1;
		else if (is_auto && auto_submitted_value(v))
			f->auto_submitted = 1;
		else if (is_rcpt)
			scan_recipients(&rs, v);
		free(v);
	}
	if (!from)
		from = xstrdup("");
	f->n_recipients = rs.count;
	f->implicit_destination = !rs.names_list;
	f->from_is_list = *from && route_is_list_address(l, from);
	if (from_addr) {
		*from_addr = from;
		f->from_addr = from;
	} else {
		free(from);
		f->from_addr = "";
	}
}

/* ---- the post ------------------------------------------------------------- */

/* Fields that must not leave the list: blind copies, the envelope as seen
 * here, and everything that would contradict the list's own fields. */
static int dropped(const struct rw_iter *it, const struct rw_field *f, const struct list_cfg *l)
{
	static const char *const names[] = {"Bcc", "Resent-Bcc", "Return-Path", "Delivered-To",
					    "Errors-To", "Precedence", NULL};

	for (int i = 0; names[i]; i++)
		if (rw_field_is(it, f, names[i]))
			return 1;
	if (rw_field_has_prefix(it, f, "List-"))
		return 1;
	if (rw_field_is(it, f, "X-Loop")) {
		char *v = rw_field_value(it, f, VALUE_MAX);
		int own = x_loop_names(v, l);
		free(v);
		return own;
	}
	return 0;
}

static int blank(const char *s)
{
	return s[strspn(s, " \t")] == '\0';
}

/* Message-ID field for a post that had none: MESSAGE_ID (with or without
 * its brackets) cleaned of anything that could break the line. */
static void add_message_id(struct sbuf *b, const struct config *cfg, const struct list_cfg *l,
			   const char *message_id)
{
	struct sbuf id = {0};

	for (const unsigned char *p = (const unsigned char *)(message_id ? message_id : "");
	     *p; p++)
		if (*p > 0x20 && *p < 0x7f && *p != '<' && *p != '>')
			sbuf_addc(&id, (char)*p);
	if (!id.len) {
		char hex[33];
		rw_random_hex(hex, 16);
		sbuf_printf(&id, "%s@%s", hex, cfg && cfg->hostname ? cfg->hostname : l->domain);
	}
	sbuf_printf(b, "Message-ID: <%s>\r\n", id.buf);
	sbuf_free(&id);
}

static void add_subject(struct sbuf *b, const char *raw_value, const char *prefix)
{
	char *s = rewrite_subject(raw_value, prefix);
	sbuf_adds(b, "Subject: ");
	sbuf_adds(b, s);
	sbuf_add(b, "\r\n", 2);
	free(s);
}

char *rewrite_post(const struct config *cfg, const struct list_cfg *l, const char *raw,
		   size_t len, const char *message_id, size_t *out_len)
{
	struct sbuf b = {0};
	struct rw_iter it;
	struct rw_field f;
	const char *prefix = l->subject_prefix ? l->subject_prefix : "";
	int rewrite = !blank(prefix), have_subject = 0, have_id = 0;

	rw_iter_init(&it, raw, len);
	while (rw_next(&it, &f)) {
		if (dropped(&it, &f, l))
			continue;
		if (rewrite && rw_field_is(&it, &f, "Subject")) {
			/* A second Subject could show up without the prefix. */
			if (have_subject)
				continue;
			have_subject = 1;
			char *v = rw_field_value(&it, &f, VALUE_MAX);
			add_subject(&b, v, prefix);
			free(v);
			continue;
		}
		if (rw_field_is(&it, &f, "Message-ID")) {
			char *v = rw_field_value(&it, &f, VALUE_MAX);
			int skip = have_id || blank(v);
			free(v);
			if (skip)
				continue;
			have_id = 1;
		}
		add_field(&b, &it, &f);
	}
	if (rewrite && !have_subject)
		add_subject(&b, "", prefix);
	if (!have_id)
		add_message_id(&b, cfg, l, message_id);
	add_list_fields(&b, cfg, l);
	sbuf_add(&b, "\r\n", 2);

	size_t body = it.body < it.len ? it.body : it.len;
	rw_add_crlf(&b, it.raw + body, it.len - body);
	if (it.len > body && it.raw[it.len - 1] != '\r' && it.raw[it.len - 1] != '\n')
		sbuf_add(&b, "\r\n", 2);
	if (out_len)
		*out_len = b.len;
	return sbuf_detach(&b);
}
