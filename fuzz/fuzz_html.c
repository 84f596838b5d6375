/* libFuzzer harness for html.c: any bytes in, and what comes out must be
 * valid UTF-8 whose only tags are ours, well nested, with links to http(s)
 * only; with the tags (and summaries) taken out, what is left must be
 * exactly html_escape() of the input: nothing lost, nothing added.
 *
 * The input is used whole for html_body(), up to its first NUL for
 * html_snippet(), and as a form body for html_form_value(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void valid_utf8(const char *s, size_t n)
{
	for (size_t i = 0, k; i < n; i += k)
		if ((k = utf8_sequence((const unsigned char *)s + i, n - i, NULL)) == 0)
			abort();
}

/* No markup and no quote can come out of an escaper. */
static void inert(const char *s, size_t n, int xml)
{
	valid_utf8(s, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '<' || c == '>' || c == '"' || c == '\'' || c == 0x7F ||
		    (c < 0x20 && c != '\n' && c != '\t' && !(xml && c == '\r')))
			abort();
		if (c == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] < 0xA0)
			abort(); /* C1 */
		if (xml && c == 0xEF && i + 2 < n && (unsigned char)s[i + 1] == 0xBF &&
		    (unsigned char)s[i + 2] >= 0xBE)
			abort(); /* U+FFFE, U+FFFF */
		if (c == '&') {
			static const char *const refs[] = {"&amp;", "&lt;", "&gt;", "&quot;",
							   "&#39;", "&apos;"};
			int ok = 0;
			for (size_t k = 0; k < 6; k++)
				ok |= strncmp(s + i, refs[k], strlen(refs[k])) == 0;
			if (!ok)
				abort();
		}
	}
}

static int starts(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* Check the tags of html_body() or html_snippet() output S, and append its
 * text to T. */
static void check_markup(const char *s, struct sbuf *t, int snippet)
{
	int details = 0, span = 0, a = 0, mark = 0;
	const char *p = s;

	while (*p) {
		const char *lt = strchr(p, '<');
		size_t k = lt ? (size_t)(lt - p) : strlen(p);
		sbuf_add(t, p, k);
		if (!lt)
			break;
		p = lt;
		if (snippet) {
			if (starts(p, "<mark>") && !mark) {
				mark = 1;
				p += 6;
			} else if (starts(p, "</mark>") && mark) {
				mark = 0;
				p += 7;
			} else {
				abort();
			}
			continue;
		}
		if (starts(p, "<details class=\"quote\"><summary>") && !details && !span && !a) {
			p += strlen("<details class=\"quote\"><summary>");
			if (*p < '1' || *p > '9')
				abort();
			while (*p >= '0' && *p <= '9')
				p++;
			if (starts(p, " quoted lines</summary>"))
				p += strlen(" quoted lines</summary>");
			else if (starts(p, " quoted line</summary>"))
				p += strlen(" quoted line</summary>");
			else
				abort();
			details = 1;
		} else if (starts(p, "</details>") && details && !a) {
			details = 0;
			p += 10;
		} else if (starts(p, "<span class=\"sig\">") && !details && !span && !a) {
			span = 1;
			p += strlen("<span class=\"sig\">");
		} else if (starts(p, "</span>") && span && !a) {
			span = 0;
			p += 7;
		} else if (starts(p, "<a href=\"") && !a) {
			p += 9;
			if (ascii_strncasecmp(p, "http://", 7) != 0 &&
			    ascii_strncasecmp(p, "https://", 8) != 0)
				abort();
			size_t h = strcspn(p, "\"<> `\\");
			if (p[h] != '"' || !starts(p + h, "\" rel=\"nofollow noopener noreferrer\">"))
				abort();
			/* the link text is the href */
			const char *text = p + h + strlen("\" rel=\"nofollow noopener noreferrer\">");
			if (strncmp(text, p, h) != 0 || !starts(text + h, "</a>"))
				abort();
			a = 1;
			p = text;
		} else if (starts(p, "</a>") && a) {
			a = 0;
			p += 4;
		} else {
			abort();
		}
	}
	if (details || span || a || mark)
		abort();
	if (strstr(s, "<script") || strstr(s, "<img") || strstr(s, "<SCRIPT"))
		abort();
}

static void check_form(const char *body, size_t n, const char *name)
{
	char out[64];
	int r = html_form_value(body, n, name, out, sizeof out);
	if (r < -1 || r > 1)
		abort();
	if (r != 1 && out[0] != '\0')
		abort();
	if (r == 1) {
		size_t l = strnlen(out, sizeof out);
		if (l >= sizeof out)
			abort();
		valid_utf8(out, l);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct sbuf out = {0}, text = {0}, want = {0};

	/* the body */
	html_body(&out, in, size);
	valid_utf8(out.buf, out.len);
	if (strlen(out.buf) != out.len)
		abort();
	check_markup(out.buf, &text, 0);
	html_escape(&want, in, size);
	inert(want.buf, want.len, 0);
	if (text.len != want.len || (want.len && memcmp(text.buf, want.buf, want.len) != 0))
		abort();
	sbuf_free(&out);
	sbuf_free(&text);
	sbuf_free(&want);

	/* a snippet: the input to its first NUL */
	char *s = xstrndup(in, size);
	html_snippet(&out, s);
	valid_utf8(out.buf, out.len);
	check_markup(out.buf, &text, 1);
	/* the text between markers, each piece escaped on its own (a marker
	 * inside a broken UTF-8 sequence splits it) */
	for (const char *p = s; *p;) {
		size_t k = strcspn(p, "\x01\x02");
		html_escape(&want, p, k);
		p += k + (p[k] != '\0');
	}
	if (text.len != want.len || (want.len && memcmp(text.buf, want.buf, want.len) != 0))
		abort();
	sbuf_free(&out);
	sbuf_free(&text);
	sbuf_free(&want);

	/* XML */
	html_xml_escape(&out, in, size);
	inert(out.buf, out.len, 1);
	sbuf_free(&out);

	/* an author: the name up to the first NUL, the address after it */
	size_t nl = strlen(s);
	char *addr = xstrndup(nl < size ? in + nl + 1 : "", nl < size ? size - nl - 1 : 0);
	html_author(&out, s, addr);
	valid_utf8(out.buf, out.len);
	inert(out.buf, out.len, 0);
	/* an '@' only ever comes before the closing ellipsis: no domain shown */
	if (strchr(out.buf, '@') &&
	    (out.len < 4 || strcmp(out.buf + out.len - 4, "@\xE2\x80\xA6") != 0))
		abort();
	sbuf_free(&out);
	free(addr);

	/* URL parts */
	html_url_part(&out, s);
	for (size_t i = 0; i < out.len; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%",
			    out.buf[i]))
			abort();
	sbuf_free(&out);

	/* forms */
	check_form(in, size, "a");
	check_form(in, size, "csrf");
	check_form(in, size, "");
	check_form(in, size, s);
	free(s);
	return 0;
}
