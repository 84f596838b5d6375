/* template_mail: turning rendered text into a mail's body and headers
 * (wrapping, quoted-printable, RFC 2047 words, From, Date, Message-ID). */
#define _GNU_SOURCE /* memmem() */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "template_int.h"
#include "util.h"

/* ---- body text ---- */

static size_t columns(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static int has_url(const char *s, size_t n)
{
	for (size_t i = 0; i + 3 <= n; i++)
		if (!memcmp(s + i, "://", 3) || (i + 7 <= n && !ascii_strncasecmp(s + i, "mailto:", 7)))
			return 1;
	return 0;
}

/* Wrap line S at spaces to WRAP_COLS columns, continuation lines keeping
 * its indent. Lines with URLs stay whole: a broken link does not work. */
static void wrap_line(struct sbuf *out, const char *s, size_t n)
{
	size_t ind = 0, pos, col;

	if (columns(s, n) <= WRAP_COLS || has_url(s, n)) {
		sbuf_add(out, s, n);
		return;
	}
	while (ind < n && (s[ind] == ' ' || s[ind] == '\t'))
		ind++;
	sbuf_add(out, s, ind);
	pos = col = ind;
	if (ind > WRAP_COLS / 2)
		ind = 0;
	for (;;) {
		size_t i = pos, c = col, brk = (size_t)-1, end;

		while (i < n) {
			if (s[i] == ' ') {
				if (c > WRAP_COLS)
					break;
				brk = i;
			}
			c += ((unsigned char)s[i] & 0xc0) != 0x80;
			i++;
		}
		if (i == n && c <= WRAP_COLS)
			brk = n;
		else if (brk == (size_t)-1 || brk == pos)
			brk = i; /* one word longer than the line */
		for (end = brk; end > pos && s[end - 1] == ' '; end--)
			;
		sbuf_add(out, s + pos, end - pos);
		for (pos = brk; pos < n && s[pos] == ' '; pos++)
			;
		if (pos >= n)
			return;
		sbuf_addc(out, '\n');
		sbuf_add(out, s, ind);
		col = ind;
	}
}

/* Reflow: the lines of a paragraph (neither indented nor holding a URL)
 * are joined and wrapped again. A newline from inside a value (HARD_NL)
 * is kept: it is the sender's. */
void tmail_wrap_body(struct sbuf *out, const char *s, size_t len)
{
	const char *end = s + len;
	struct sbuf para = {0};
	int open = 0; /* PARA is a paragraph that may take the next line */

	sbuf_adds(&para, "");
	while (s < end) {
		const char *e = s;
		while (e < end && *e != '\n' && *e != HARD_NL)
			e++;
		size_t n = (size_t)(e - s);
		int join = n && *s != ' ' && *s != '\t' && !has_url(s, n);

		if (open && join) {
			while (para.len && para.buf[para.len - 1] == ' ')
				para.len--;
			sbuf_addc(&para, ' ');
		} else if (open) {
			wrap_line(out, para.buf, para.len);
			sbuf_addc(out, '\n');
			para.len = 0;
		}
		sbuf_add(&para, s, n);
		open = join && e < end && *e == '\n';
		if (!open) {
			wrap_line(out, para.buf, para.len);
			if (e < end)
				sbuf_addc(out, '\n');
			para.len = 0;
		}
		s = e + (e < end);
	}
	if (open) {
		wrap_line(out, para.buf, para.len);
		sbuf_addc(out, '\n');
	}
	sbuf_free(&para);
}

/* Can S go out as 7bit: ASCII, and no line longer than SMTP allows? */
int tmail_is_7bit(const char *s, size_t n)
{
	size_t line = 0;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return 0;
		line = s[i] == '\n' ? 0 : line + 1;
		if (line > LINE_MAX_7BIT)
			return 0;
	}
	return 1;
}

void tmail_add_crlf_lines(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			sbuf_addc(b, '\r');
		sbuf_addc(b, s[i]);
	}
	if (n && s[n - 1] != '\n')
		sbuf_add(b, "\r\n", 2);
}

/* RFC 2045 6.7 quoted-printable: lines of at most 76 characters with soft
 * breaks; '=', controls, 8-bit bytes and blanks at a line end encoded, and
 * "From " and "." at a line start too, for mbox files and careless relays. */
void tmail_add_qp(struct sbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int last = i + 1 == n || s[i + 1] == '\n';
		char enc[3];
		size_t k = 1;

		if (c == '\n') {
			sbuf_add(b, "\r\n", 2);
			col = 0;
			continue;
		}
		enc[0] = (char)c;
		if (c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
		    ((c == ' ' || c == '\t') && last) ||
		    (col == 0 && (c == '.' || (c == 'F' && n - i >= 5 && !memcmp(s + i, "From ", 5))))) {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			k = 3;
		}
		if (col + k > (last ? QP_COLS : QP_COLS - 1)) {
			sbuf_add(b, "=\r\n", 3);
			col = 0;
		}
		sbuf_add(b, enc, k);
		col += k;
	}
	if (n && s[n - 1] != '\n')
		sbuf_add(b, "\r\n", 2);
}

/* ---- headers ---- */

/* One clean line: blanks collapsed, trimmed, capped at a character edge. */
char *tmail_header_text(const char *s, size_t max)
{
	struct sbuf b = {0};
	size_t n = strlen(s), k, bad;

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f) {
			if (b.len && b.buf[b.len - 1] != ' ')
				sbuf_addc(&b, ' ');
			i++;
			continue;
		}
		k = c < 0x80 ? 1 : utf8_sequence((const unsigned char *)s + i, n - i, &bad);
		if (b.len + (k ? k : 3) > max)
			break;
		if (k)
			sbuf_add(&b, s + i, k);
		else
			sbuf_adds(&b, "\xef\xbf\xbd");
		i += k ? k : bad;
	}
	while (b.len && b.buf[b.len - 1] == ' ')
		b.buf[--b.len] = '\0';
	return sbuf_detach(&b);
}

/* Must S be RFC 2047-encoded: 8-bit, something that would read as an
 * encoded word, or a word too long to fold? */
static int needs_encoding(const char *s)
{
	size_t word = 0;
	for (; *s; s++) {
		if ((unsigned char)*s >= 0x80 || (s[0] == '=' && s[1] == '?'))
			return 1;
		word = *s == ' ' ? 0 : word + 1;
		if (word > 60)
			return 1;
	}
	return 0;
}

/* RFC 2047 B words of at most 36 bytes each (60 characters encoded), one
 * per folded line, never splitting a character. */
static void add_encoded_words(struct sbuf *b, const char *s)
{
	size_t n = strlen(s), i = 0;
	unsigned char enc[64];

	while (i < n) {
		size_t j = i, k;
		while (j < n) {
			k = utf8_sequence((const unsigned char *)s + j, n - j, NULL);
			k = k ? k : 1;
			if (j + k - i > 36)
				break;
			j += k;
		}
		if (i)
			sbuf_add(b, "\r\n ", 3);
		EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)(j - i));
		sbuf_printf(b, "=?UTF-8?B?%s?=", enc);
		i = j;
	}
}

/* Header NAME with unstructured text S (already one clean line). */
void tmail_add_text_header(struct sbuf *b, const char *name, const char *s)
{
	size_t col;

	sbuf_printf(b, "%s: ", name);
	if (needs_encoding(s)) {
		add_encoded_words(b, s);
	} else {
		col = strlen(name) + 2;
		for (const char *w = s; *w;) {
			size_t wl = strcspn(w, " ");
			if (w != s) {
				sbuf_adds(b, col + 1 + wl > WRAP_COLS ? "\r\n " : " ");
				col = col + 1 + wl > WRAP_COLS ? 1 : col + 1;
			}
			sbuf_add(b, w, wl);
			col += wl;
			w += wl + (w[wl] == ' ');
		}
	}
	sbuf_add(b, "\r\n", 2);
}

/* From: "Title" <addr>, the title quoted or encoded. */
void tmail_add_from(struct sbuf *b, const char *title, const char *addr)
{
	if (!*title) {
		sbuf_printf(b, "From: <%s>\r\n", addr);
	} else if (needs_encoding(title) || strlen(title) > 64) {
		sbuf_adds(b, "From: ");
		add_encoded_words(b, title);
		sbuf_printf(b, "\r\n <%s>\r\n", addr);
	} else {
		sbuf_adds(b, "From: \"");
		for (const char *p = title; *p; p++) {
			if (*p == '"' || *p == '\\')
				sbuf_addc(b, '\\');
			sbuf_addc(b, *p);
		}
		sbuf_printf(b, "\"%s<%s>\r\n", strlen(title) + strlen(addr) > 64 ? "\r\n " : " ",
			    addr);
	}
}

void tmail_add_date(struct sbuf *b, time_t t)
{
	char date[40];
	fmt_rfc5322_date((int64_t)t, date);
	sbuf_printf(b, "Date: %s\r\n", date);
}

void tmail_add_message_id(struct sbuf *b, const char *host)
{
	static unsigned counter;
	unsigned char r[16];
	size_t n = 0;

	if (RAND_bytes(r, sizeof(r)) != 1) {
		/* A Message-ID needs to be unique, not secret. */
		uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ ++counter;
		for (size_t i = 0; i < sizeof(r); i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			r[i] = (unsigned char)(x >> 56);
		}
	}
	sbuf_adds(b, "Message-ID: <");
	for (size_t i = 0; i < sizeof(r); i++)
		sbuf_printf(b, "%02x", r[i]);
	sbuf_addc(b, '@');
	for (const char *p = host; *p && n < 200; p++)
		if (tpl_name_char(*p) && *p != '_' && ++n)
			sbuf_addc(b, *p);
	sbuf_adds(b, n ? ">\r\n" : "localhost>\r\n");
}

/* ADDR as one shell word, for commands a moderator copies: a valid
 * address may hold ` $ ' and more. */
char *tmail_shell_word(const char *s)
{
	struct sbuf b = {0};

	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "@._+=-") == strlen(s))
		return xstrdup(s);
	sbuf_addc(&b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sbuf_adds(&b, "'\\''");
		else
			sbuf_addc(&b, *s);
	}
	sbuf_addc(&b, '\'');
	return sbuf_detach(&b);
}

/* ---- attached messages ---- */

static int contains(const char *hay, size_t n, const char *needle, size_t nl)
{
	return n >= nl && memmem(hay, n, needle, nl) != NULL;
}

void tmail_boundary(char out[TMAIL_BOUNDARY_LEN + 1], const char *text, size_t len,
		    const struct template_attachment *att, size_t n_att)
{
	static const char hex[] = "0123456789abcdef";
	static unsigned counter;
	/* "=_" never occurs in quoted-printable text; 128 random bits make a
	 * clash with an attached message all but impossible, and it is
	 * checked anyway. */
	for (int tries = 0;; tries++) {
		unsigned char r[16];
		if (RAND_bytes(r, sizeof r) != 1) {
			uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ ++counter;
			for (size_t i = 0; i < sizeof r; i++) {
				x = x * 6364136223846793005ULL + 1442695040888963407ULL;
				r[i] = (unsigned char)(x >> 56);
			}
		}
		memcpy(out, "=_dlg_", 6);
		for (size_t i = 0; i < sizeof r; i++) {
			out[6 + 2 * i] = hex[r[i] >> 4];
			out[7 + 2 * i] = hex[r[i] & 15];
		}
		out[TMAIL_BOUNDARY_LEN] = '\0';
		int clash = contains(text, len, out, TMAIL_BOUNDARY_LEN);
		for (size_t k = 0; k < n_att && !clash; k++)
			clash = contains(att[k].data, att[k].len, out, TMAIL_BOUNDARY_LEN);
		if (!clash || tries >= 8)
			return;
	}
}

/* Not 7bit: an 8-bit byte, a NUL or a line longer than SMTP allows. A
 * line that long would strictly make the part "binary", which no relay
 * without BINARYMIME takes; 8bit is what such a post travelled as. */
static int needs_8bit(const char *s, size_t n)
{
	size_t line = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80 || c == 0)
			return 1;
		line = c == '\n' || c == '\r' ? 0 : line + 1;
		if (line > LINE_MAX_7BIT)
			return 1;
	}
	return 0;
}

int tmail_attachments_8bit(const struct template_attachment *att, size_t n_att)
{
	for (size_t k = 0; k < n_att; k++)
		if (needs_8bit(att[k].data, att[k].len))
			return 1;
	return 0;
}

void tmail_add_rfc822_part(struct sbuf *b, const char *boundary,
			   const struct template_attachment *a)
{
	sbuf_printf(b, "\r\n--%s\r\nContent-Type: message/rfc822\r\n", boundary);
	if (a->description && *a->description) {
		char *d = tmail_header_text(a->description, 200);
		tmail_add_text_header(b, "Content-Description", d);
		free(d);
	}
	if (needs_8bit(a->data, a->len))
		sbuf_adds(b, "Content-Transfer-Encoding: 8bit\r\n");
	sbuf_adds(b, "Content-Disposition: inline\r\n\r\n");
	/* Bare CR and bare LF become CRLF, as SMTP carries them. */
	const char *s = a->data;
	size_t start = 0;
	for (size_t i = 0; i < a->len; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			continue;
		sbuf_add(b, s + start, i - start);
		sbuf_add(b, "\r\n", 2);
		if (s[i] == '\r' && i + 1 < a->len && s[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	sbuf_add(b, s + start, a->len - start);
	if (a->len == 0 || (s[a->len - 1] != '\n' && s[a->len - 1] != '\r'))
		sbuf_add(b, "\r\n", 2);
}
