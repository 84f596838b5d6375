/* Unit tests for html.c: escaping, authors, bodies, snippets, forms. */
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "testutil.h"
#include "util.h"

static char *esc(const char *s, size_t n)
{
	struct sbuf b = {0};
	html_escape(&b, s, n);
	return sbuf_detach(&b);
}

static char *xesc(const char *s, size_t n)
{
	struct sbuf b = {0};
	html_xml_escape(&b, s, n);
	return sbuf_detach(&b);
}

static char *body(const char *s, size_t n)
{
	struct sbuf b = {0};
	html_body(&b, s, n);
	return sbuf_detach(&b);
}

static char *snip(const char *s)
{
	struct sbuf b = {0};
	html_snippet(&b, s);
	return sbuf_detach(&b);
}

static char *author(const char *name, const char *addr)
{
	struct sbuf b = {0};
	html_author(&b, name, addr);
	return sbuf_detach(&b);
}

static char *urlpart(const char *s)
{
	struct sbuf b = {0};
	html_url_part(&b, s);
	return sbuf_detach(&b);
}

#define CHECK_FN(fn, in, want)                  \
	do {                                    \
		char *got_ = fn;                \
		CHECK_STR(got_, want);          \
		(void)(in);                     \
		free(got_);                     \
	} while (0)

#define ESC(s, want) CHECK_FN(esc(s, sizeof(s) - 1), s, want)
#define XESC(s, want) CHECK_FN(xesc(s, sizeof(s) - 1), s, want)
#define BODY(s, want) CHECK_FN(body(s, sizeof(s) - 1), s, want)
#define SNIP(s, want) CHECK_FN(snip(s), s, want)
#define AUTHOR(n, a, want) CHECK_FN(author(n, a), n, want)

static void test_escape(void)
{
	ESC("", "");
	ESC("plain text", "plain text");
	ESC("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
	ESC("\"><img src=x onerror=alert(1)>",
	    "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
	ESC("' onmouseover='x", "&#39; onmouseover=&#39;x");
	ESC("a & b &amp; c", "a &amp; b &amp;amp; c");
	ESC("javascript:alert(1)", "javascript:alert(1)");
	/* NUL and controls go, \n and \t stay, \r goes. */
	ESC("a\0b\x01\x1f\x7f" "c\r\nd\te", "abc\nd\te");
	/* C1 controls (U+0080..U+009F) go, U+00A0 stays. */
	ESC("x\xC2\x80\xC2\x9F\xC2\xA0y", "x\xC2\xA0y");
	/* Broken UTF-8: lone continuation, truncated sequence, overlong '<',
	 * surrogate, past U+10FFFF; each maximal bad prefix is one U+FFFD. */
	ESC("\x80", "\xEF\xBF\xBD");
	ESC("a\xE2\x82", "a\xEF\xBF\xBD");
	ESC("\xC0\xBCscript", "\xEF\xBF\xBD\xEF\xBF\xBDscript");
	ESC("\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	ESC("\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
	ESC("\xE2\x82<", "\xEF\xBF\xBD&lt;");
	/* Valid UTF-8 passes, U+2028 and 4-byte sequences included. */
	ESC("caf\xC3\xA9 \xE2\x80\xA8 \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x80\xA8 \xF0\x9F\x98\x80");

	struct sbuf b = {0};
	html_escapes(&b, "<b>");
	html_escapes(&b, NULL);
	CHECK_STR(b.buf, "&lt;b&gt;");
	sbuf_free(&b);
	html_escapes(&b, "");
	CHECK(b.buf != NULL && b.len == 0);
	sbuf_free(&b);
}

static void test_xml(void)
{
	XESC("<feed>&\"'", "&lt;feed&gt;&amp;&quot;&apos;");
	XESC("a\tb\nc\rd", "a\tb\nc\rd");
	XESC("a\0b\x01\x0b\x0c\x1f\x7f" "c", "abc");
	/* U+FFFE and U+FFFF are not XML characters; U+FFFD and U+2028 are. */
	XESC("\xEF\xBF\xBE\xEF\xBF\xBF\xEF\xBF\xBD\xE2\x80\xA8", "\xEF\xBF\xBD\xE2\x80\xA8");
	XESC("\xC2\x85x", "x");
	XESC("\xFF<", "\xEF\xBF\xBD&lt;");
	XESC("]]><script>", "]]&gt;&lt;script&gt;");
}

static void test_author(void)
{
	AUTHOR("Ann Example", "ann@example.org", "Ann Example");
	AUTHOR("<script>x</script>", "a@b", "&lt;script&gt;x&lt;/script&gt;");
	AUTHOR("", "ann@example.org", "ann@\xE2\x80\xA6");
	AUTHOR(NULL, "ann@example.org", "ann@\xE2\x80\xA6");
	AUTHOR("  ", "ann@example.org", "ann@\xE2\x80\xA6");
	AUTHOR("ann@example.org", "ann@example.org", "ann@\xE2\x80\xA6");
	AUTHOR("ANN@EXAMPLE.ORG", "ann@example.org", "ann@\xE2\x80\xA6");
	/* A name that is some other address must not leak either. */
	AUTHOR("bob@example.net", "ann@example.org", "ann@\xE2\x80\xA6");
	AUTHOR("\"<x>\"@evil", "\"<x>\"@example.org", "&quot;&lt;x&gt;&quot;@\xE2\x80\xA6");
	AUTHOR("", "nobody", "nobody@\xE2\x80\xA6");
	AUTHOR("", "", "\xE2\x80\xA6");
	AUTHOR(NULL, NULL, "\xE2\x80\xA6");
	AUTHOR("", "@example.org", "\xE2\x80\xA6");
	char *s = author("", "ann@example.org");
	CHECK(strstr(s, "example") == NULL);
	free(s);
}

#define A(u) "<a href=\"" u "\" rel=\"nofollow noopener noreferrer\">" u "</a>"

static void test_body(void)
{
	BODY("", "");
	BODY("hello\nworld\n", "hello\nworld\n");
	BODY("<script>alert(1)</script>\n", "&lt;script&gt;alert(1)&lt;/script&gt;\n");
	BODY("a\0b\r\n", "ab\n");

	/* Quotes: each run folded, counted, text kept. */
	BODY("On Monday Ann wrote:\n> one\n>> two\n  > three\nmy answer\n",
	     "On Monday Ann wrote:\n<details class=\"quote\"><summary>3 quoted lines</summary>"
	     "&gt; one\n&gt;&gt; two\n  &gt; three\n</details>my answer\n");
	BODY("> only", "<details class=\"quote\"><summary>1 quoted line</summary>&gt; only</details>");
	BODY("> a\n\n> b\n",
	     "<details class=\"quote\"><summary>1 quoted line</summary>&gt; a\n</details>\n"
	     "<details class=\"quote\"><summary>1 quoted line</summary>&gt; b\n</details>");
	BODY("a > b\n", "a &gt; b\n");
	BODY("\t> tab is not a quote\n", "\t&gt; tab is not a quote\n");

	/* Signature: from the line "-- " on; "--" and "-- x" are not one. */
	BODY("text\n-- \nAnn\nhttp://ann.example/\n",
	     "text\n<span class=\"sig\">-- \nAnn\n" A("http://ann.example/") "\n</span>");
	BODY("text\n--\nAnn\n", "text\n--\nAnn\n");
	BODY("text\n-- x\n", "text\n-- x\n");
	BODY("-- ", "<span class=\"sig\">-- </span>");
	BODY("> q\n-- \n> not folded\n",
	     "<details class=\"quote\"><summary>1 quoted line</summary>&gt; q\n</details>"
	     "<span class=\"sig\">-- \n&gt; not folded\n</span>");
	BODY("a\n-- \nb\n-- \nc",
	     "a\n<span class=\"sig\">-- \nb\n-- \nc</span>");

	/* URLs. */
	BODY("see http://example.org/a?b=1&c=2 now\n",
	     "see " A("http://example.org/a?b=1&amp;c=2") " now\n");
	BODY("https://example.org/x.", A("https://example.org/x") ".");
	BODY("at https://example.org/x/!\n", "at " A("https://example.org/x/") "!\n");
	BODY("(see http://example.org/a)", "(see " A("http://example.org/a") ")");
	BODY("http://en.wikipedia.org/wiki/Foo_(bar)",
	     A("http://en.wikipedia.org/wiki/Foo_(bar)"));
	BODY("(http://en.wikipedia.org/wiki/Foo_(bar)).",
	     "(" A("http://en.wikipedia.org/wiki/Foo_(bar)") ").");
	BODY("http://[::1]:8080/]", A("http://[::1]:8080/") "]");
	BODY("<http://example.org/>", "&lt;" A("http://example.org/") "&gt;");
	BODY("\"http://example.org/\"", "&quot;" A("http://example.org/") "&quot;");
	BODY("'http://example.org/'", "&#39;" A("http://example.org/") "&#39;");
	BODY("HTTPS://EXAMPLE.ORG/", A("HTTPS://EXAMPLE.ORG/"));
	BODY("x http://a.example/\"onmouseover=\"alert(1)",
	     "x " A("http://a.example/") "&quot;onmouseover=&quot;alert(1)");
	BODY("http://a.example/`x", A("http://a.example/") "`x");
	BODY("http://a.example/\\x", A("http://a.example/") "\\x");
	BODY("http://a.example/caf\xC3\xA9", A("http://a.example/caf") "\xC3\xA9");
	BODY("http://a.example/'><script>", A("http://a.example/") "&#39;&gt;&lt;script&gt;");
	BODY("http://a.example/it's", A("http://a.example/it&#39;s"));
	BODY("> quoted http://q.example/\n",
	     "<details class=\"quote\"><summary>1 quoted line</summary>&gt; quoted "
	     A("http://q.example/") "\n</details>");
	/* Never a link: other schemes, bare scheme, scheme glued to a word. */
	BODY("javascript:alert(1)", "javascript:alert(1)");
	BODY("JaVaScRiPt:alert(document.cookie)//http", "JaVaScRiPt:alert(document.cookie)//http");
	BODY("data:text/html,<script>alert(1)</script>",
	     "data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;");
	BODY("vbscript:msgbox", "vbscript:msgbox");
	BODY("ftp://example.org/ mailto:a@b", "ftp://example.org/ mailto:a@b");
	BODY("http:// https://. http://", "http:// https://. http://");
	BODY("xhttp://example.org/", "xhttp://example.org/");
	BODY("javascript:http://example.org/", "javascript:" A("http://example.org/"));
	BODY("java\0script:alert(1)", "javascript:alert(1)");
	BODY("http\0://example.org/", "http://example.org/");
	BODY("http://example.org/a\nb", A("http://example.org/a") "\nb");
}

static void test_snippet(void)
{
	SNIP("", "");
	SNIP("plain", "plain");
	SNIP("a \x01match\x02 b", "a <mark>match</mark> b");
	SNIP("\x01<i>\x02", "<mark>&lt;i&gt;</mark>");
	SNIP("open \x01never closed", "open <mark>never closed</mark>");
	SNIP("stray\x02 close", "stray close");
	SNIP("\x01" "a\x01" "b\x02" "c\x02" "d", "<mark>ab</mark>cd");
	SNIP("\x02\x02\x01\x01x", "<mark>x</mark>");
	SNIP("\x01\x02", "<mark></mark>");
	SNIP("bad \xFF\x01\xE2\x02", "bad \xEF\xBF\xBD<mark>\xEF\xBF\xBD</mark>");
	struct sbuf b = {0};
	html_snippet(&b, NULL);
	CHECK(b.buf && b.len == 0);
	sbuf_free(&b);
}

static void test_url_part(void)
{
	char *s = urlpart("a b/c?d=e&f#g%~._-Z9");
	CHECK_STR(s, "a%20b%2Fc%3Fd%3De%26f%23g%25~._-Z9");
	free(s);
	s = urlpart("caf\xC3\xA9\"<>");
	CHECK_STR(s, "caf%C3%A9%22%3C%3E");
	free(s);
	s = urlpart("");
	CHECK_STR(s, "");
	free(s);
}

static void test_form(void)
{
	char out[16];
	const char *q = "a=1&b=%zz&c=x+y%21&a=2&d&e=&f=%41%4a%4A&=z";
	size_t n = strlen(q);

	CHECK_INT(html_form_value(q, n, "a", out, sizeof out), 1);
	CHECK_STR(out, "1"); /* the first of repeated names */
	CHECK_INT(html_form_value(q, n, "b", out, sizeof out), -1);
	CHECK_STR(out, "");
	CHECK_INT(html_form_value(q, n, "c", out, sizeof out), 1);
	CHECK_STR(out, "x y!");
	CHECK_INT(html_form_value(q, n, "d", out, sizeof out), 1);
	CHECK_STR(out, "");
	CHECK_INT(html_form_value(q, n, "e", out, sizeof out), 1);
	CHECK_STR(out, "");
	CHECK_INT(html_form_value(q, n, "f", out, sizeof out), 1);
	CHECK_STR(out, "AJJ");
	CHECK_INT(html_form_value(q, n, "", out, sizeof out), 1);
	CHECK_STR(out, "z");
	CHECK_INT(html_form_value(q, n, "g", out, sizeof out), 0);
	CHECK_STR(out, "");
	CHECK_INT(html_form_value(q, n, "A", out, sizeof out), 0);

	/* Names are decoded too; a malformed name never matches. */
	const char *r = "x%zz=1&csrf%5B%5D=2&my+name=3&csrf=ok";
	CHECK_INT(html_form_value(r, strlen(r), "csrf[]", out, sizeof out), 1);
	CHECK_STR(out, "2");
	CHECK_INT(html_form_value(r, strlen(r), "my name", out, sizeof out), 1);
	CHECK_STR(out, "3");
	CHECK_INT(html_form_value(r, strlen(r), "csrf", out, sizeof out), 1);
	CHECK_STR(out, "ok");
	CHECK_INT(html_form_value(r, strlen(r), "x", out, sizeof out), 0);

	/* Overlong: 15 bytes fit in 16, 16 do not. */
	const char *l = "v=123456789012345&w=1234567890123456&x=%31%32%33%34%35%36%37%38%39%30%31%32%33%34%35%36";
	CHECK_INT(html_form_value(l, strlen(l), "v", out, sizeof out), 1);
	CHECK_STR(out, "123456789012345");
	CHECK_INT(html_form_value(l, strlen(l), "w", out, sizeof out), -1);
	CHECK_INT(html_form_value(l, strlen(l), "x", out, sizeof out), -1);
	CHECK_INT(html_form_value(l, strlen(l), "v", out, 0), -1);

	/* Truncated escapes, NUL, bad UTF-8. */
	CHECK_INT(html_form_value("a=%4", 4, "a", out, sizeof out), -1);
	CHECK_INT(html_form_value("a=%", 3, "a", out, sizeof out), -1);
	CHECK_INT(html_form_value("a=x%00y", 7, "a", out, sizeof out), -1);
	CHECK_INT(html_form_value("a=%FF", 5, "a", out, sizeof out), -1);
	CHECK_INT(html_form_value("a=%C3%A9", 8, "a", out, sizeof out), 1);
	CHECK_STR(out, "\xC3\xA9");
	/* LEN bounds the input: nothing past it is read. */
	CHECK_INT(html_form_value("a=12&b=3", 4, "b", out, sizeof out), 0);
	CHECK_INT(html_form_value("a=12&b=3", 3, "a", out, sizeof out), 1);
	CHECK_STR(out, "1");
	CHECK_INT(html_form_value("", 0, "a", out, sizeof out), 0);
	CHECK_INT(html_form_value(NULL, 0, "a", out, sizeof out), 0);
	CHECK_INT(html_form_value("&&&", 3, "a", out, sizeof out), 0);
	/* RFC 8058 one-click body. */
	const char *oc = "List-Unsubscribe=One-Click";
	CHECK_INT(html_form_value(oc, strlen(oc), "List-Unsubscribe", out, sizeof out), 1);
	CHECK_STR(out, "One-Click");
}

int main(void)
{
	test_escape();
	test_xml();
	test_author();
	test_body();
	test_snippet();
	test_url_part();
	test_form();
	return test_result();
}
