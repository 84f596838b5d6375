/* snippet: one pass over the text, word by word. */
#include "snippet.h"

#include <string.h>

#include "util.h"

#define WINDOW 240
#define BEFORE 60

struct word {
	const char *p;
	size_t n;
};

/* Letters and digits; every byte of a multi-byte UTF-8 character counts as
 * a letter, as FTS5's unicode61 tokenizer treats most of them. */
static int word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

static int lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int same_word(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* The words of QUERY, each once, at most SNIPPET_MAX_WORDS. */
static size_t query_words(const char *q, struct word *w)
{
	size_t n = 0;
	const char *p = q;
	while (*p && n < SNIPPET_MAX_WORDS) {
		while (*p && !word_byte((unsigned char)*p))
			p++;
		const char *s = p;
		while (*p && word_byte((unsigned char)*p))
			p++;
		if (p == s)
			break;
		size_t i = 0;
		while (i < n && !same_word(w[i].p, w[i].n, s, (size_t)(p - s)))
			i++;
		if (i == n)
			w[n++] = (struct word){s, (size_t)(p - s)};
	}
	return n;
}

static int is_query_word(const struct word *w, size_t nw, const char *s, size_t n)
{
	for (size_t i = 0; i < nw; i++)
		if (same_word(w[i].p, w[i].n, s, n))
			return 1;
	return 0;
}

/* Back up to the first byte of the UTF-8 character at OFF. */
static size_t char_start(const char *t, size_t off)
{
	while (off > 0 && ((unsigned char)t[off] & 0xc0) == 0x80)
		off--;
	return off;
}

static void add_plain(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sbuf_addc(b, s[i] == '\x01' || s[i] == '\x02' ? ' ' : s[i]);
}

char *snippet_make(const char *text, size_t len, const char *query)
{
	struct word w[SNIPPET_MAX_WORDS];
	size_t nw = query_words(query ? query : "", w);
	size_t scan = len < SNIPPET_SCAN_MAX ? len : SNIPPET_SCAN_MAX;

	/* The first word of the query in the text. */
	size_t first = 0;
	int found = 0;
	for (size_t i = 0; i < scan && nw && !found;) {
		if (!word_byte((unsigned char)text[i])) {
			i++;
			continue;
		}
		size_t s = i;
		while (i < scan && word_byte((unsigned char)text[i]))
			i++;
		if (is_query_word(w, nw, text + s, i - s)) {
			first = s;
			found = 1;
		}
	}
	size_t start = found && first > BEFORE ? char_start(text, first - BEFORE) : 0;
	size_t end = start + WINDOW < len ? char_start(text, start + WINDOW) : len;
	/* Start and end at word boundaries where one is near. */
	for (size_t k = 0; k < 20 && start > 0 && start < first && word_byte((unsigned char)text[start]);
	     k++)
		start++;
	start = char_start(text, start);
	for (size_t k = 0; k < 20 && end < len && end > start && word_byte((unsigned char)text[end]);
	     k++)
		end--;
	if (end < len)
		end = char_start(text, end);

	struct sbuf b = {0};
	if (start > 0)
		sbuf_adds(&b, "...");
	for (size_t i = start; i < end;) {
		if (!word_byte((unsigned char)text[i])) {
			size_t s = i;
			while (i < end && !word_byte((unsigned char)text[i]))
				i++;
			add_plain(&b, text + s, i - s);
			continue;
		}
		size_t s = i;
		while (i < end && word_byte((unsigned char)text[i]))
			i++;
		int mark = is_query_word(w, nw, text + s, i - s);
		if (mark)
			sbuf_addc(&b, '\x01');
		sbuf_add(&b, text + s, i - s);
		if (mark)
			sbuf_addc(&b, '\x02');
	}
	if (end < len)
		sbuf_adds(&b, "...");
	return sbuf_detach(&b);
}
