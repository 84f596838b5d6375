/* snippet: search-result excerpts, their markers and their bounds. */
#include <stdlib.h>
#include <string.h>

#include "snippet.h"
#include "testutil.h"
#include "util.h"

static char *snip(const char *text, const char *query)
{
	return snippet_make(text, strlen(text), query);
}

/* Every \x01 is followed by its \x02 before the next \x01, and the text is
 * valid UTF-8. */
static int well_formed(const char *s)
{
	int open = 0;
	for (const char *p = s; *p; p++) {
		if (*p == '\x01') {
			if (open)
				return 0;
			open = 1;
		} else if (*p == '\x02') {
			if (!open)
				return 0;
			open = 0;
		}
	}
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t len = utf8_sequence((const unsigned char *)s + i, n - i, NULL);
		if (!len)
			return 0;
		i += len;
	}
	return !open;
}

static void test_marks(void)
{
	char *s = snip("The Garden of commons: garden, gardens and GARDEN.", "garden");
	CHECK_STR(s, "The \x01Garden\x02 of commons: \x01garden\x02, gardens and \x01GARDEN\x02.");
	free(s);
	/* The query as the store passes it (store_fts_query): each term in
	 * double quotes, so a typed OR is a word searched for like any other.
	 * Each word is marked wherever it occurs, in any case, OR included;
	 * no quote, of the query or of the text, is ever inside a mark. */
	s = snip("one two or \"three\", OR two", "\"two\" \"three\" \"OR\"");
	CHECK_STR(s, "one \x01two\x02 \x01or\x02 \"\x01three\x02\", \x01OR\x02 \x01two\x02");
	free(s);
	/* A typed quote is doubled inside its term: still only the word. */
	s = snip("say \"hi\" there", "\"\"\"hi\"\"\"");
	CHECK_STR(s, "say \"\x01hi\x02\" there");
	free(s);
	/* No match in the body (it was in the subject): the start of the body. */
	s = snip("Nothing here.", "absent");
	CHECK_STR(s, "Nothing here.");
	free(s);
	s = snip("", "x");
	CHECK_STR(s, "");
	free(s);
	/* The body's own marker bytes never look like ours. */
	s = snip("fake \x01marker\x02 and real", "real");
	CHECK_STR(s, "fake  marker  and \x01real\x02");
	free(s);
}

static void test_window(void)
{
	struct sbuf b = {0};
	for (int i = 0; i < 200; i++)
		sbuf_adds(&b, "filler words here ");
	sbuf_adds(&b, "the needle is here ");
	for (int i = 0; i < 200; i++)
		sbuf_adds(&b, "more filler text ");
	char *s = snippet_make(b.buf, b.len, "needle");
	CHECK(strncmp(s, "...", 3) == 0);
	CHECK(strlen(s) > 3 && strcmp(s + strlen(s) - 3, "...") == 0);
	CHECK(strstr(s, "\x01needle\x02") != NULL);
	CHECK(strlen(s) < 300);
	CHECK(well_formed(s));
	free(s);
	sbuf_free(&b);

	/* Multi-byte text cut anywhere stays valid UTF-8. */
	struct sbuf u = {0};
	for (int i = 0; i < 300; i++)
		sbuf_adds(&u, "żółw ");
	sbuf_adds(&u, "Straße ");
	for (int i = 0; i < 300; i++)
		sbuf_adds(&u, "日本語 ");
	s = snippet_make(u.buf, u.len, "straße");
	CHECK(strstr(s, "\x01Straße\x02") != NULL);
	CHECK(well_formed(s));
	free(s);
	sbuf_free(&u);
}

/* A body of one word repeated, searched with that word many times: linear,
 * and only the start of the body is read. */
static void test_hostile(void)
{
	size_t n = 4 * 1024 * 1024;
	char *body = xmalloc(n + 1);
	for (size_t i = 0; i < n; i += 2) {
		body[i] = 'a';
		body[i + 1] = ' ';
	}
	body[n] = '\0';
	char *s = snippet_make(body, n, "a a a a a a a a a a a a a a a a a a a a a a a a a a a a");
	CHECK(well_formed(s));
	CHECK(strlen(s) < 1000);
	free(s);
	free(body);
}

int main(void)
{
	test_marks();
	test_window();
	test_hostile();
	return test_result();
}
