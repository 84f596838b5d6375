/* rewrite_subject: the list's subject prefix exactly once. The subject is
 * decoded to UTF-8 first, so a prefix hidden in an RFC 2047 word or
 * repeated by a reply chain is found like any other, and written back as
 * plain words where it is printable ASCII and as encoded words where not:
 * "[Dialogue] =?UTF-8?B?...?=" keeps the prefix visible to mail filters. */
#include "rewrite.h"
#include "rewrite_int.h"

#include <stdlib.h>
#include <string.h>

#include "msg_text.h"
#include "util.h"

/* A plain word longer than this could not be folded onto a line of its
 * own, so it is sent as encoded words, which can be split. */
#define PLAIN_WORD_MAX (RW_FOLD_COL - 2)

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* One pass over S dropping every occurrence of P (case-insensitive) with
 * the whitespace around it; what was on both sides stays one space apart.
 * Returns how many were dropped. */
static size_t strip_pass(struct sbuf *out, const char *s, const char *p)
{
	size_t n = strlen(s), pl = strlen(p), i = 0, hits = 0;
	int sep = 0;

	while (i < n) {
		if (n - i >= pl && ascii_strncasecmp(s + i, p, pl) == 0) {
			while (out->len && is_space(out->buf[out->len - 1]))
				out->buf[--out->len] = '\0';
			i += pl;
			while (i < n && is_space(s[i]))
				i++;
			sep = out->len > 0;
			hits++;
			continue;
		}
		if (sep) {
			sbuf_addc(out, ' ');
			sep = 0;
		}
		sbuf_addc(out, s[i++]);
	}
	return hits;
}

/* S without any P. Dropping one can join the text around it into a new
 * one only with odd prefixes ("a b" in "a a bb"), hence the few passes. */
static char *strip_prefix(char *s, const char *p)
{
	for (int pass = 0; pass < 8; pass++) {
		struct sbuf out = {0};
		size_t hits = strip_pass(&out, s, p);
		free(s);
		s = sbuf_detach(&out);
		if (!hits)
			break;
	}
	return s;
}

/* Length of one reply marker ("Re:", "AW:", "Re[2]:", "RE :") at S with the
 * spaces after it, or 0. */
static size_t reply_marker(const char *s)
{
	static const char *const words[] = {"re", "aw", "sv", "svar", "antw", NULL};

	for (int w = 0; words[w]; w++) {
		size_t j = strlen(words[w]);
		if (ascii_strncasecmp(s, words[w], j) != 0)
			continue;
		if (s[j] == '[') {
			size_t k = j + 1;
			while (s[k] >= '0' && s[k] <= '9')
				k++;
			if (k == j + 1 || s[k] != ']')
				continue;
			j = k + 1;
		}
		while (is_space(s[j]))
			j++;
		if (s[j] != ':')
			continue;
		j++;
		while (is_space(s[j]))
			j++;
		return j;
	}
	return 0;
}

/* Must this word travel as an encoded word? */
static int needs_encoding(const char *s, size_t n)
{
	if (n > PLAIN_WORD_MAX)
		return 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c > 0x7e)
			return 1;
		/* Text that looks like an encoded word would be decoded as one. */
		if (c == '=' && i + 1 < n && s[i + 1] == '?')
			return 1;
	}
	return 0;
}

/* T (UTF-8, one line) as a folded Subject value: plain words where they
 * can be, runs of the others as encoded words (the spaces inside a run go
 * into the encoding: a decoder drops those between encoded words). */
static char *encode_subject(const char *t)
{
	struct sbuf line = {0}, run = {0};
	struct rw_fold w;

	rw_fold_begin(&w, &line, "Subject");
	while (*t) {
		while (*t == ' ')
			t++;
		size_t n = strcspn(t, " ");
		if (!n)
			break;
		if (needs_encoding(t, n)) {
			if (run.len)
				sbuf_addc(&run, ' ');
			sbuf_add(&run, t, n);
		} else {
			if (run.len) {
				rw_fold_encoded(&w, run.buf, run.len);
				run.len = 0;
			}
			rw_fold_word(&w, t, n);
		}
		t += n;
	}
	if (run.len)
		rw_fold_encoded(&w, run.buf, run.len);
	sbuf_free(&run);
	/* The caller writes "Subject: ", which the writer counted too. */
	char *r = xstrdup(line.len > 9 ? line.buf + 9 : "");
	sbuf_free(&line);
	return r;
}

char *rewrite_subject(const char *subject, const char *prefix)
{
	if (!subject)
		subject = "";
	if (!prefix)
		return xstrdup(subject);
	char *p = str_trim(xstrdup(prefix));
	if (!*p) {
		free(p);
		return xstrdup(subject);
	}

	char *s = strip_prefix(msg_decode_phrase(subject), p);
	const char *rest = s;
	int reply = 0;
	for (size_t m; (m = reply_marker(rest)) > 0; rest += m)
		reply = 1;
	rest += strspn(rest, " \t");

	struct sbuf t = {0};
	sbuf_adds(&t, p);
	sbuf_addc(&t, ' ');
	if (reply)
		sbuf_adds(&t, "Re: ");
	sbuf_adds(&t, *rest ? rest : "(no subject)");
	char *r = encode_subject(t.buf);
	sbuf_free(&t);
	free(s);
	free(p);
	return r;
}
