/* html: escaping for the web archive and the Atom feed, and the rendering
 * of a plain-text mail body (quotes folded, signature, links).
 *
 * The rule everywhere: the input is text, never markup. Every byte goes
 * through escape(); the only '<' in the output are our own tags. */
#include "html.h"

#include <stdlib.h>
#include <string.h>

#define REPLACEMENT "\xEF\xBF\xBD"

/* ---- escaping ------------------------------------------------------------ */

static const char *ascii_ref(unsigned char c, int xml)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '"':
		return "&quot;";
	case '\'':
		return xml ? "&apos;" : "&#39;";
	default:
		return NULL;
	}
}

/* ASCII bytes copied as they are. */
static int ascii_plain(unsigned char c, int xml)
{
	if (c >= 0x20 && c < 0x7F)
		return !ascii_ref(c, xml);
	return c == '\n' || c == '\t' || (xml && c == '\r');
}

static void escape(struct sbuf *b, const char *s, size_t n, int xml)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	if (!s)
		return;
	while (i < n) {
		size_t run = i;
		while (run < n && ascii_plain(p[run], xml))
			run++;
		if (run > i) {
			sbuf_add(b, p + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = p[i];
		if (c < 0x80) {
			const char *ref = ascii_ref(c, xml);
			if (ref)
				sbuf_adds(b, ref);
			/* else a control or DEL: dropped */
			i++;
			continue;
		}
		size_t bad = 1, k = utf8_sequence(p + i, n - i, &bad);
		if (k == 0) {
			sbuf_add(b, REPLACEMENT, 3);
			i += bad ? bad : 1;
			continue;
		}
		if (k == 2 && c == 0xC2 && p[i + 1] < 0xA0) {
			/* C1 control */
		} else if (xml && k == 3 && c == 0xEF && p[i + 1] == 0xBF && p[i + 2] >= 0xBE) {
			/* U+FFFE, U+FFFF: not XML characters */
		} else {
			sbuf_add(b, p + i, k);
		}
		i += k;
	}
	if (!b->buf)
		sbuf_add(b, "", 0); /* an empty result is still a string */
}

void html_escape(struct sbuf *b, const char *s, size_t n)
{
	escape(b, s, n, 0);
}

void html_escapes(struct sbuf *b, const char *s)
{
	if (s)
		escape(b, s, strlen(s), 0);
}

void html_xml_escape(struct sbuf *b, const char *s, size_t n)
{
	escape(b, s, n, 1);
}

/* ---- authors ------------------------------------------------------------- */

static int blank(const char *s)
{
	for (; s && *s; s++)
		if (*s != ' ' && *s != '\t')
			return 0;
	return 1;
}

void html_author(struct sbuf *b, const char *name, const char *addr)
{
	if (!blank(name) && !strchr(name, '@') && (!addr || ascii_strcasecmp(name, addr) != 0)) {
		html_escapes(b, name);
		return;
	}
	const char *at = addr ? strrchr(addr, '@') : NULL;
	size_t local = at ? (size_t)(at - addr) : addr ? strlen(addr) : 0;
	if (local)
		html_escape(b, addr, local);
	sbuf_adds(b, local ? "@\xE2\x80\xA6" : "\xE2\x80\xA6");
}

/* ---- bodies -------------------------------------------------------------- */

/* A byte that may stand in an href: printable ASCII but space " < > \ `. */
static int url_byte(unsigned char c)
{
	return c > 0x20 && c < 0x7F && c != '"' && c != '<' && c != '>' && c != '\\' && c != '`';
}

static int scheme_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '-' || c == '.';
}

/* Length of the http(s) URL at S[0..n), or 0 when there is none. */
static size_t url_at(const char *s, size_t n)
{
	size_t scheme;

	if (n >= 8 && ascii_strncasecmp(s, "https://", 8) == 0)
		scheme = 8;
	else if (n >= 7 && ascii_strncasecmp(s, "http://", 7) == 0)
		scheme = 7;
	else
		return 0;
	size_t end = scheme;
	while (end < n && url_byte((unsigned char)s[end]))
		end++;
	/* Trailing punctuation ends the sentence, not the URL; a closing
	 * bracket stays when the URL opened it. */
	size_t opens[2] = {0, 0}, closes[2] = {0, 0};
	for (size_t k = scheme; k < end; k++) {
		opens[0] += s[k] == '(';
		opens[1] += s[k] == '[';
		closes[0] += s[k] == ')';
		closes[1] += s[k] == ']';
	}
	while (end > scheme) {
		char c = s[end - 1];
		if (c == ')' || c == ']') {
			int k = c == ']';
			if (opens[k] >= closes[k])
				break;
			closes[k]--;
		} else if (!strchr(".,;:!?'\"", c)) {
			break;
		}
		end--;
	}
	return end > scheme ? end : 0;
}

/* Text with its URLs as links. */
static void add_linked(struct sbuf *b, const char *s, size_t n)
{
	size_t done = 0;

	for (size_t i = 0; i < n; i++) {
		if ((s[i] != 'h' && s[i] != 'H') || (i > 0 && scheme_byte((unsigned char)s[i - 1])))
			continue;
		size_t len = url_at(s + i, n - i);
		if (!len)
			continue;
		html_escape(b, s + done, i - done);
		sbuf_adds(b, "<a href=\"");
		html_escape(b, s + i, len);
		sbuf_adds(b, "\" rel=\"nofollow noopener noreferrer\">");
		html_escape(b, s + i, len);
		sbuf_adds(b, "</a>");
		i += len - 1;
		done = i + 1;
	}
	html_escape(b, s + done, n - done);
}

/* End of the line at P: past its '\n', or N. */
static size_t line_end(const char *s, size_t n, size_t p)
{
	const char *nl = memchr(s + p, '\n', n - p);
	return nl ? (size_t)(nl - s) + 1 : n;
}

static int quoted(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] == ' ')
		i++;
	return i < n && s[i] == '>';
}

void html_body(struct sbuf *b, const char *text, size_t n)
{
	size_t sig = n, i = 0;

	if (!text)
		n = 0;
	if (!b->buf)
		sbuf_add(b, "", 0);
	for (size_t p = 0; p < n; p = line_end(text, n, p)) {
		size_t e = line_end(text, n, p);
		size_t len = e - p - (text[e - 1] == '\n');
		if (len == 3 && memcmp(text + p, "-- ", 3) == 0) {
			sig = p;
			break;
		}
	}
	while (i < sig) {
		int q = quoted(text + i, sig - i);
		size_t end = i, lines = 0;
		while (end < sig && quoted(text + end, sig - end) == q) {
			end = line_end(text, sig, end);
			lines++;
		}
		if (q)
			sbuf_printf(b, "<details class=\"quote\"><summary>%zu quoted line%s</summary>",
				    lines, lines == 1 ? "" : "s");
		add_linked(b, text + i, end - i);
		if (q)
			sbuf_adds(b, "</details>");
		i = end;
	}
	if (sig < n) {
		sbuf_adds(b, "<span class=\"sig\">");
		add_linked(b, text + sig, n - sig);
		sbuf_adds(b, "</span>");
	}
}

void html_snippet(struct sbuf *b, const char *s)
{
	int open = 0;

	if (!b->buf)
		sbuf_add(b, "", 0);
	while (s && *s) {
		size_t k = strcspn(s, "\x01\x02");
		html_escape(b, s, k);
		s += k;
		if (*s == '\x01' && !open) {
			sbuf_adds(b, "<mark>");
			open = 1;
		} else if (*s == '\x02' && open) {
			sbuf_adds(b, "</mark>");
			open = 0;
		}
		if (*s)
			s++;
	}
	if (open)
		sbuf_adds(b, "</mark>");
}

/* ---- URLs and forms ------------------------------------------------------ */

void html_url_part(struct sbuf *b, const char *s)
{
	if (!b->buf)
		sbuf_add(b, "", 0);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			sbuf_addc(b, (char)c);
		else
			sbuf_printf(b, "%%%02X", c);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0, k; i < n; i += k)
		if ((k = utf8_sequence((const unsigned char *)s + i, n - i, NULL)) == 0)
			return 0;
	return 1;
}

/* Decode S[0..n) into OUT (OUTLEN > 0 bytes, NUL-terminated): its length,
 * or -1 when malformed or too long. */
static long form_decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			if (i + 2 >= n)
				return -1;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			i += 2;
		}
		if (c == '\0' || o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return (long)o;
}

int html_form_value(const char *body, size_t len, const char *name, char *out, size_t outlen)
{
	int r = 0;

	if (outlen)
		out[0] = '\0';
	if (!name)
		return 0;
	size_t nlen = strlen(name);
	char *key = xmalloc(nlen + 2);
	for (size_t p = 0; body && p < len;) {
		const char *amp = memchr(body + p, '&', len - p);
		size_t end = amp ? (size_t)(amp - body) : len;
		const char *eq = memchr(body + p, '=', end - p);
		size_t kend = eq ? (size_t)(eq - body) : end;
		if (end > p && form_decode(body + p, kend - p, key, nlen + 2) == (long)nlen &&
		    memcmp(key, name, nlen) == 0) {
			size_t v = eq ? kend + 1 : end;
			long got = outlen ? form_decode(body + v, end - v, out, outlen) : -1;
			r = got >= 0 && utf8_valid(out, (size_t)got) ? 1 : -1;
			if (r < 0 && outlen)
				out[0] = '\0';
			break;
		}
		p = end + 1;
	}
	free(key);
	return r;
}
