/* msg_text: bytes from mail to clean UTF-8 — charsets, quoted-printable,
 * RFC 2047 phrases and a crude HTML-to-text. Part of the message module
 * (message.c does the structure); split out to keep each file readable. */
#define _GNU_SOURCE /* memmem() */
#include "msg_text.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>

#include "message.h"

#define PHRASE_MAX 8192 /* subject or display name before decoding */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int msg_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at S (at most N bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		need = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		need = 3;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		need = 4;
	else
		return 0;
	/* Overlongs, surrogates and code points past U+10FFFF. */
	if (s[0] == 0xE0)
		lo = 0xA0;
	else if (s[0] == 0xED)
		hi = 0x9F;
	else if (s[0] == 0xF0)
		lo = 0x90;
	else if (s[0] == 0xF4)
		hi = 0x8F;
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return need;
}

int msg_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

static void utf8_put(struct sbuf *b, unsigned cp)
{
	char c[4];
	size_t n;

	if (cp < 0x80) {
		c[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		c[0] = (char)(0xC0 | (cp >> 6));
		c[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		c[0] = (char)(0xE0 | (cp >> 12));
		c[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		c[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		c[0] = (char)(0xF0 | (cp >> 18));
		c[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		c[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		c[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	sbuf_add(b, c, n);
}

#define REPLACEMENT "\xEF\xBF\xBD"

/* Append S[0..n) to B as valid UTF-8: bad bytes become U+FFFD. */
void msg_add_clean(struct sbuf *b, const char *s, size_t n, enum msg_clean mode)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c >= 0x80) {
			size_t k = utf8_seq(p + i, n - i);
			if (k == 0) {
				sbuf_add(b, REPLACEMENT, 3);
				i++;
			} else {
				sbuf_add(b, p + i, k);
				i += k;
			}
			continue;
		}
		i++;
		if (c == 0)
			continue;
		if (mode == MSG_CLEAN_HEADER && (c < 0x20 || c == 0x7F)) {
			if (c == '\t')
				sbuf_addc(b, ' ');
			continue;
		}
		if (mode == MSG_CLEAN_BODY && c == '\r') {
			if (i < n && p[i] == '\n')
				continue;
			c = '\n';
		}
		sbuf_addc(b, (char)c);
	}
}

/* ---- charsets ------------------------------------------------------------ */

/* windows-1252 0x80..0x9F; the five holes map to the C1 controls, as the
 * WHATWG encoding standard does. */
static const unsigned short cp1252_c1[32] = {
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

static void add_cp1252(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80)
			sbuf_addc(b, (char)c);
		else if (c < 0xA0)
			utf8_put(b, cp1252_c1[c - 0x80]);
		else
			utf8_put(b, c);
	}
}

/* Text in an unknown or absent charset: UTF-8 if it mostly is (a stray bad
 * byte then becomes U+FFFD), else windows-1252, where valid multi-byte
 * UTF-8 sequences are rare. */
void msg_add_unknown(struct sbuf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t good = 0, bad = 0;

	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (k == 0) {
			bad++;
			i++;
		} else {
			good += k > 1;
			i += k;
		}
	}
	if (bad == 0 || good >= bad)
		msg_add_clean(b, s, n, MSG_CLEAN_RAW);
	else
		add_cp1252(b, s, n);
}

struct alias {
	const char *name;
	const char *iconv_name; /* NULL: treat as unknown; "1252": ours */
};

/* Labels seen in mail that glibc's iconv lacks or decodes too strictly. */
static const struct alias aliases[] = {
	{"us-ascii", NULL}, {"ascii", NULL}, {"ansi_x3.4-1968", NULL}, {"unknown", NULL},
	{"unknown-8bit", NULL}, {"x-unknown", NULL}, {"default", NULL}, {"8bit", NULL},
	{"x-user-defined", NULL}, {"iso-8859-1", "1252"}, {"iso8859-1", "1252"},
	{"iso_8859-1", "1252"}, {"latin1", "1252"}, {"l1", "1252"}, {"windows-1252", "1252"},
	{"cp1252", "1252"}, {"x-cp1252", "1252"}, {"gb2312", "GB18030"}, {"gbk", "GB18030"},
	{"x-gbk", "GB18030"}, {"cp936", "GB18030"}, {"euc-cn", "GB18030"},
	{"ks_c_5601-1987", "CP949"}, {"euc-kr", "CP949"}, {"windows-949", "CP949"},
	{"iso-8859-8-i", "ISO-8859-8"}, {"iso-8859-8-e", "ISO-8859-8"},
	{"iso-2022-jp", "ISO-2022-JP-2"}, {"shift_jis", "CP932"}, {"shift-jis", "CP932"},
	{"sjis", "CP932"}, {"x-sjis", "CP932"}, {"windows-31j", "CP932"}, {"big5", "BIG5-HKSCS"},
	{"unicode-1-1-utf-7", "UTF-7"}, {"tis-620", "CP874"}, {"windows-874", "CP874"},
	{"x-mac-roman", "MACINTOSH"},
};

/* Convert with iconv; -1 when iconv does not know the charset. */
static int add_iconv(struct sbuf *b, const char *s, size_t n, const char *charset)
{
	iconv_t cd = iconv_open("UTF-8", charset);
	char obuf[4096];
	char *in = (char *)s;
	size_t inleft = n;

	if (cd == (iconv_t)-1)
		return -1;
	while (inleft > 0) {
		char *o = obuf;
		size_t oleft = sizeof obuf;
		size_t r = iconv(cd, &in, &inleft, &o, &oleft);
		int err = errno;
		sbuf_add(b, obuf, (size_t)(o - obuf));
		if (r != (size_t)-1 || err == E2BIG)
			continue;
		sbuf_add(b, REPLACEMENT, 3);
		if (err != EILSEQ)
			break; /* EINVAL: truncated sequence at the end */
		in++;
		inleft--;
	}
	char *o = obuf;
	size_t oleft = sizeof obuf;
	iconv(cd, NULL, NULL, &o, &oleft); /* shift back to the initial state */
	sbuf_add(b, obuf, (size_t)(o - obuf));
	iconv_close(cd);
	return 0;
}

/* Append S[0..n) in CHARSET to B as UTF-8 (not yet cleaned). */
void msg_add_charset(struct sbuf *b, const char *s, size_t n, const char *charset)
{
	char name[48];
	size_t len = 0;

	if (charset) {
		while (*charset == ' ' || *charset == '\t' || *charset == '"')
			charset++;
		for (; charset[len] && len < sizeof name - 1; len++) {
			unsigned char c = (unsigned char)charset[len];
			if (c == '"' || c == ' ' || c == '\t' || c == ';')
				break;
			/* Keep iconv's own suffixes ("//IGNORE") and odd bytes out. */
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == ':'))
				goto unknown;
			name[len] = (char)c;
		}
		if (charset[len] && charset[len] != '"' && charset[len] != ' ' &&
		    charset[len] != '\t' && charset[len] != ';')
			goto unknown;
	}
	name[len] = '\0';
	if (len == 0)
		goto unknown;
	if (ascii_strcasecmp(name, "utf-8") == 0 || ascii_strcasecmp(name, "utf8") == 0) {
		sbuf_add(b, s, n); /* msg_add_clean() replaces what is not UTF-8 */
		return;
	}
	const char *conv = name;
	for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
		if (ascii_strcasecmp(name, aliases[i].name) == 0) {
			conv = aliases[i].iconv_name;
			break;
		}
	}
	if (!conv)
		goto unknown;
	if (strcmp(conv, "1252") == 0) {
		add_cp1252(b, s, n);
		return;
	}
	if (add_iconv(b, s, n, conv) == 0)
		return;
unknown:
	msg_add_unknown(b, s, n);
}

char *msg_to_utf8(const char *text, size_t len, const char *charset)
{
	struct sbuf raw = {0}, out = {0};

	if (!text)
		return xstrdup("");
	msg_add_charset(&raw, text, len, charset);
	msg_add_clean(&out, raw.buf ? raw.buf : "", raw.len, MSG_CLEAN_RAW);
	sbuf_free(&raw);
	return sbuf_detach(&out);
}

/* ---- header phrases ------------------------------------------------------ */

/* Trimmed, cleaned copy of S[0..n) for a one-line field. */
char *msg_clean_line(const char *s, size_t n)
{
	struct sbuf b = {0};
	msg_add_clean(&b, s, n, MSG_CLEAN_HEADER);
	char *r = sbuf_detach(&b);
	return str_trim(r);
}

/* RFC 2047 phrase (Subject, display name) to one line of UTF-8.
 * mailmime_encoded_phrase_parse() stops at the first "=?" that is not an
 * encoded word and gives up on a whole phrase when one word fails to
 * convert, so it is called again after such a point, which is copied raw. */
char *msg_decode_phrase(const char *s)
{
	struct sbuf b = {0}, in = {0};
	size_t idx = 0;

	/* Raw 8-bit text first becomes valid UTF-8, so libetpan converts it
	 * from UTF-8 without its '?' substitutions; encoded words are ASCII. */
	msg_add_unknown(&in, s, strnlen(s, PHRASE_MAX));
	s = in.buf ? in.buf : "";
	size_t len = in.len;

	while (idx < len) {
		size_t start = idx;
		char *dec = NULL;

		if (start > 0 && is_wsp(s[start]))
			sbuf_addc(&b, ' ');
		int r = mailmime_encoded_phrase_parse("utf-8", s, len, &idx, "utf-8", &dec);
		if (r == MAILIMF_NO_ERROR && dec) {
			sbuf_adds(&b, dec);
			free(dec);
		} else {
			free(dec);
			idx = start;
		}
		if (idx <= start) {
			/* Stuck: copy one word raw; its leading blank is the ' '
			 * added above. */
			size_t word = start, end;
			while (word < len && is_wsp(s[word]))
				word++;
			for (end = word; end < len && !is_wsp(s[end]); end++)
				;
			sbuf_add(&b, s + word, end - word);
			idx = end;
		}
	}
	char *r = msg_clean_line(b.buf ? b.buf : "", b.len);
	sbuf_free(&b);
	sbuf_free(&in);
	return r;
}

/* Quoted-printable, leniently: an "=" not followed by two hex digits or a
 * line break stays as it is (libetpan turns it into a control byte). */
void msg_add_qp(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i + 1;
		if (s[i] != '=') {
			size_t k = i;
			while (k < n && s[k] != '=')
				k++;
			sbuf_add(b, s + i, k - i);
			i = k - 1;
			continue;
		}
		while (j < n && (s[j] == ' ' || s[j] == '\t'))
			j++;
		j += j + 1 < n && s[j] == '\r' && s[j + 1] == '\n';
		if (j == n || s[j] == '\n') {
			i = j; /* soft line break */
		} else if (i + 2 < n && msg_hexval(s[i + 1]) >= 0 && msg_hexval(s[i + 2]) >= 0) {
			sbuf_addc(b, (char)(msg_hexval(s[i + 1]) * 16 + msg_hexval(s[i + 2])));
			i += 2;
		} else {
			sbuf_addc(b, '=');
		}
	}
}

static int html_entity(const char *s, size_t n, size_t *used, unsigned *cp)
{
	static const struct {
		const char *name;
		unsigned cp;
	} names[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'},
		     {"apos;", '\''}, {"nbsp;", 0xA0}, {"copy;", 0xA9}, {"mdash;", 0x2014},
		     {"ndash;", 0x2013}, {"hellip;", 0x2026}, {"rsquo;", 0x2019}};

	if (n > 1 && s[0] == '#') {
		unsigned v = 0;
		size_t i = 1;
		int hex = i < n && (s[i] == 'x' || s[i] == 'X');
		i += (size_t)hex;
		size_t digits = 0;
		for (; i < n && digits < 7; i++, digits++) {
			char c = s[i];
			int d = c >= '0' && c <= '9'			? c - '0'
				: hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
				: hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
							      : -1;
			if (d < 0)
				break;
			v = v * (hex ? 16 : 10) + (unsigned)d;
		}
		if (!digits || i >= n || s[i] != ';')
			return 0;
		*used = i + 1;
		*cp = (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) ? 0xFFFD : v;
		return 1;
	}
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
		size_t l = strlen(names[k].name);
		if (n >= l && memcmp(s, names[k].name, l) == 0) {
			*used = l;
			*cp = names[k].cp;
			return 1;
		}
	}
	return 0;
}

/* Crude HTML to text: tags out (block tags become line breaks), script and
 * style dropped, the common entities decoded. Only for display and search. */
void msg_add_html_text(struct sbuf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		if (s[i] == '&') {
			size_t used;
			unsigned cp;
			if (html_entity(s + i + 1, n - i - 1, &used, &cp)) {
				utf8_put(out, cp);
				i += used + 1;
			} else {
				sbuf_addc(out, '&');
				i++;
			}
			continue;
		}
		if (s[i] != '<') {
			sbuf_addc(out, s[i++]);
			continue;
		}
		const char *end;
		if (n - i >= 4 && memcmp(s + i, "<!--", 4) == 0) {
			end = memmem(s + i, n - i, "-->", 3);
			i = end ? (size_t)(end - s) + 3 : n;
			continue;
		}
		int closing = i + 1 < n && s[i + 1] == '/';
		const char *t = s + i + 1 + closing;
		size_t left = n - (size_t)(t - s);
		end = memchr(s + i, '>', n - i);
		size_t next = end ? (size_t)(end - s) + 1 : n;
		const char *skip_to = NULL;
		if (!closing) {
			if (left >= 6 && ascii_strncasecmp(t, "script", 6) == 0)
				skip_to = "</script";
			else if (left >= 5 && ascii_strncasecmp(t, "style", 5) == 0)
				skip_to = "</style";
		}
		if (skip_to) {
			size_t k = next, l = strlen(skip_to);
			while (k + l <= n && ascii_strncasecmp(s + k, skip_to, l) != 0)
				k++;
			end = k + l <= n ? memchr(s + k, '>', n - k) : NULL;
			next = end ? (size_t)(end - s) + 1 : n;
		} else if ((left >= 2 && (ascii_strncasecmp(t, "br", 2) == 0 ||
					  ascii_strncasecmp(t, "tr", 2) == 0 ||
					  ascii_strncasecmp(t, "li", 2) == 0)) ||
			   (left >= 1 && (t[0] == 'p' || t[0] == 'P')) ||
			   (left >= 3 && ascii_strncasecmp(t, "div", 3) == 0)) {
			if (out->len && out->buf[out->len - 1] != '\n')
				sbuf_addc(out, '\n');
		}
		i = next;
	}
}
