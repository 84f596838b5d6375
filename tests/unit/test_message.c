/* Unit tests for lib/message.c: crafted messages with exact expectations,
 * real messages from the corpus, and a sweep over every corpus file. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "message.h"
#include "testutil.h"
#include "util.h"

#define HOST "lists.example.org"

static struct msg_info parse_n(const char *raw, size_t len)
{
	struct msg_info m;
	msg_parse(raw, len, HOST, &m);
	return m;
}

static struct msg_info parse(const char *raw)
{
	return parse_n(raw, strlen(raw));
}

/* Independent of the parser's own checker: well-formed UTF-8, no NUL. */
static int utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s)
		return 0;
	while (*p) {
		int n;
		unsigned cp;
		if (*p < 0x80) {
			p++;
			continue;
		} else if ((*p & 0xE0) == 0xC0) {
			n = 1;
			cp = *p & 0x1F;
		} else if ((*p & 0xF0) == 0xE0) {
			n = 2;
			cp = *p & 0x0F;
		} else if ((*p & 0xF8) == 0xF0) {
			n = 3;
			cp = *p & 0x07;
		} else {
			return 0;
		}
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		p += n + 1;
	}
	return 1;
}

static int all_utf8(const struct msg_info *m)
{
	return utf8_ok(m->message_id) && utf8_ok(m->from_addr) && utf8_ok(m->from_name) &&
	       utf8_ok(m->subject) && utf8_ok(m->date_header) && utf8_ok(m->in_reply_to) &&
	       utf8_ok(m->references) && utf8_ok(m->body_text);
}

/* ---- crafted messages ---------------------------------------------------- */

static void test_basic(void)
{
	static const char *const forms[] = {
		/* LF, CRLF, bare CR: the same message */
		"From: \"Jos\xc3\xa9 Example\" <jose@example.org>\n"
		"To: list@example.org\n"
		"Subject: Hello\n  world\n"
		"Date: Tue, 1 Jul 2025 10:00:00 +0200\n"
		"Message-ID: <abc.123@example.org>\n"
		"In-Reply-To: <parent@example.org>\n"
		"References: <root@example.org>\n <parent@example.org>\n"
		"\n"
		"Body line 1\nBody line 2\n",
		"From: \"Jos\xc3\xa9 Example\" <jose@example.org>\r\n"
		"To: list@example.org\r\n"
		"Subject: Hello\r\n  world\r\n"
		"Date: Tue, 1 Jul 2025 10:00:00 +0200\r\n"
		"Message-ID: <abc.123@example.org>\r\n"
		"In-Reply-To: <parent@example.org>\r\n"
		"References: <root@example.org>\r\n <parent@example.org>\r\n"
		"\r\n"
		"Body line 1\r\nBody line 2\r\n",
		"From: \"Jos\xc3\xa9 Example\" <jose@example.org>\r"
		"To: list@example.org\r"
		"Subject: Hello\r  world\r"
		"Date: Tue, 1 Jul 2025 10:00:00 +0200\r"
		"Message-ID: <abc.123@example.org>\r"
		"In-Reply-To: <parent@example.org>\r"
		"References: <root@example.org>\r <parent@example.org>\r"
		"\r"
		"Body line 1\rBody line 2\r",
	};

	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		struct msg_info m = parse(forms[i]);
		CHECK_STR(m.message_id, "abc.123@example.org");
		CHECK_INT(m.message_id_added, 0);
		CHECK_STR(m.from_addr, "jose@example.org");
		CHECK_STR(m.from_name, "Jos\xc3\xa9 Example");
		CHECK_STR(m.subject, "Hello world");
		CHECK_STR(m.date_header, "Tue, 1 Jul 2025 10:00:00 +0200");
		CHECK_INT(m.date, 1751356800);
		CHECK_STR(m.in_reply_to, "parent@example.org");
		CHECK_STR(m.references, "root@example.org parent@example.org");
		CHECK_STR(m.body_text, "Body line 1\nBody line 2\n");
		CHECK_INT(m.parse_ok, 1);
		msg_info_free(&m);
	}
}

static void test_degenerate(void)
{
	struct msg_info m;

	/* Nothing at all. */
	m = parse_n("", 0);
	CHECK(all_utf8(&m));
	CHECK_STR(m.message_id, "e3b0c44298fc1c149afbf4c8996fb924@" HOST);
	CHECK_INT(m.message_id_added, 1);
	CHECK_STR(m.subject, "");
	CHECK_STR(m.body_text, "");
	CHECK_INT(m.parse_ok, 0);
	msg_info_free(&m);
	m = parse_n(NULL, 10);
	CHECK(all_utf8(&m) && m.message_id[0]);
	msg_info_free(&m);

	/* A header alone, with no final line break. */
	m = parse("Subject: only a header");
	CHECK_STR(m.subject, "only a header");
	CHECK_STR(m.body_text, "");
	CHECK_INT(m.parse_ok, 1);
	msg_info_free(&m);

	/* No empty line: the header ends at the first line that is not one. */
	m = parse("Subject: s\nFrom: a@example.org\nthis is not a header\nmore text");
	CHECK_STR(m.subject, "s");
	CHECK_STR(m.from_addr, "a@example.org");
	CHECK_STR(m.body_text, "this is not a header\nmore text\n");
	CHECK_INT(m.parse_ok, 0);
	msg_info_free(&m);

	/* No header at all. */
	m = parse("\nJust a body.\n");
	CHECK_STR(m.body_text, "Just a body.\n");
	CHECK_INT(m.message_id_added, 1);
	CHECK_INT(m.parse_ok, 0);
	msg_info_free(&m);

	/* An mbox "From " line before the header is skipped. */
	m = parse("From someone@example.org Mon Jan  1 00:00:00 2001\nSubject: mbox\n\nx\n");
	CHECK_STR(m.subject, "mbox");
	msg_info_free(&m);

	/* A first header line that is a continuation (seen in the wild). */
	m = parse(" \nSubject: after a blank line\n\nx\n");
	CHECK_STR(m.subject, "after a blank line");
	msg_info_free(&m);
}

static void test_nul_and_garbage(void)
{
	static const char raw[] = "Subj\0ect: a\0b\nFrom: \xff\xfe <x@example.org>\n"
				  "\nbo\0dy\0\n";
	struct msg_info m = parse_n(raw, sizeof raw - 1);
	CHECK(all_utf8(&m));
	CHECK_STR(m.subject, "ab");
	CHECK_STR(m.from_name, "\xc3\xbf\xc3\xbe"); /* windows-1252 */
	CHECK_STR(m.from_addr, "x@example.org");
	CHECK_STR(m.body_text, "body\n");
	msg_info_free(&m);

	/* 8-bit garbage in the header: windows-1252 unless it is UTF-8. */
	m = parse("Subject: caf\xe9 \x80 \x81\nFrom: Andr\xc3\xa9 <a@example.org>\n\nx\n");
	CHECK_STR(m.subject, "caf\xc3\xa9 \xe2\x82\xac \xc2\x81");
	CHECK_STR(m.from_name, "Andr\xc3\xa9");
	msg_info_free(&m);

	/* Mostly UTF-8 with one broken byte: the byte becomes U+FFFD. */
	m = parse("Subject: \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xd1\n\nx\n");
	CHECK_STR(m.subject, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xef\xbf\xbd");
	msg_info_free(&m);

	/* Controls in the header go; a tab is a blank. */
	m = parse("Subject: a\x01\x1b" "b\tc\x7f\n\nx\n");
	CHECK_STR(m.subject, "ab c");
	msg_info_free(&m);

	/* Pure binary noise: every field still valid. */
	char noise[4096];
	unsigned x = 12345;
	for (size_t i = 0; i < sizeof noise; i++) {
		x = x * 1103515245 + 12345;
		noise[i] = (char)(x >> 16);
	}
	m = parse_n(noise, sizeof noise);
	CHECK(all_utf8(&m) && m.message_id[0]);
	msg_info_free(&m);
}

static void test_rfc2047(void)
{
	static const struct {
		const char *hdr, *want;
	} cases[] = {
		{"=?koi8-r?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"},
		/* flufl.bounce simple_08: two encoded words, folded, joined */
		{"=?iso-8859-1?q?Sie_haben_die_Mailingliste_=22newsletter=22_ab?=\n"
		 " =?iso-8859-1?q?bestellt?=",
		 "Sie haben die Mailingliste \"newsletter\" abbestellt"},
		/* flufl.bounce dsn_10: encoded word between plain words */
		{"[lb] Probleme =?iso-8859-15?q?gel=F6st?=, Bugs gefunden",
		 "[lb] Probleme gel\xc3\xb6st, Bugs gefunden"},
		/* sisimai lhost-x5-01, the enclosed message */
		{"=?ISO-2022-JP?B?GyRCIVobKEJURVNUGyRCIVslYSE8JWslIiVJJWwlOSROM05HJxsoQg==?=",
		 "\xe3\x80\x90TEST\xe3\x80\x91\xe3\x83\xa1\xe3\x83\xbc\xe3\x83\xab\xe3\x82\xa2"
		 "\xe3\x83\x89\xe3\x83\xac\xe3\x82\xb9\xe3\x81\xae\xe7\xa2\xba\xe8\xaa\x8d"},
		{"=?UTF-8?B?44GT44KT44Gr44Gh44Gv?=",
		 "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf"},
		{"=?utf-8?q?caf=C3=A9?= au lait", "caf\xc3\xa9 au lait"},
		{"=?windows-1251?b?z/Do?=", "\xd0\x9f\xd1\x80\xd0\xb8"},
		/* Not an encoded word: kept as it is. */
		{"50% =?off", "50% =?off"},
		/* libetpan takes an unterminated word to the end of the field */
		{"a =?utf-8?q?broken b", "a broken b"},
		{"=?bogus-charset?q?x?= tail", "x tail"},
		{"=?bad x =?utf-8?q?=C3=A9?=", "=?bad x \xc3\xa9"},
		{"", ""},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *raw = xasprintf("Subject: %s\nFrom: =?utf-8?q?J=C3=B6rg?= <j@example.org>\n\nx\n",
				      cases[i].hdr);
		struct msg_info m = parse(raw);
		CHECK_STR(m.subject, cases[i].want);
		CHECK_STR(m.from_name, "J\xc3\xb6rg");
		CHECK(all_utf8(&m));
		msg_info_free(&m);
		free(raw);
	}

	/* A quoted display name holding an encoded word (sisimai lhost-x5-01). */
	struct msg_info m = parse("From: \"=?iso-2022-jp?B?TWFpbCBEZWxpdmVyeSBTdWJzeXN0ZW0=?=\" "
				  "<MAILER-DAEMON@example.co.jp>\n\nx\n");
	CHECK_STR(m.from_name, "Mail Delivery Subsystem");
	CHECK_STR(m.from_addr, "MAILER-DAEMON@example.co.jp");
	msg_info_free(&m);
}

static void test_ids(void)
{
	struct msg_info m, m2;

	/* Synthesised: SHA-256 of the raw bytes, stable, host appended. */
	m = parse("Subject: no id\n\nhello\n");
	CHECK_STR(m.message_id, "6c7b7d6e151e05a251c7570c8afaf21e@" HOST);
	CHECK_INT(m.message_id_added, 1);
	m2 = parse("Subject: no id\n\nhello!\n");
	CHECK(strcmp(m.message_id, m2.message_id) != 0);
	msg_info_free(&m);
	msg_info_free(&m2);
	msg_parse("x", 1, NULL, &m);
	CHECK(strstr(m.message_id, "@localhost") != NULL);
	msg_info_free(&m);
	msg_parse("x", 1, "bad host<>", &m);
	CHECK(strstr(m.message_id, "@localhost") != NULL);
	msg_info_free(&m);

	static const struct {
		const char *hdr, *want; /* want NULL: synthesised */
	} cases[] = {
		{"Message-ID: <a@b>", "a@b"},
		{"Message-Id:   <a.b-c+d@host.example>  ", "a.b-c+d@host.example"},
		{"Message-ID: no-brackets@example.org", "no-brackets@example.org"},
		{"Message-ID: <>", NULL},
		{"Message-ID:", NULL},
		{"Message-ID:    ", NULL},
		/* libetpan's reading of obsolete syntax: blanks in it go */
		{"Message-ID: <with space@example.org>", "withspace@example.org"},
		{"Message-ID: <a@b> trailing words", "a@b"},
		{"Message-ID: <\x01@b>", NULL},
		{"Message-ID: <first@x>\nMessage-ID: <second@x>", "first@x"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *raw = xasprintf("%s\nSubject: s\n\nbody\n", cases[i].hdr);
		m = parse(raw);
		if (cases[i].want) {
			CHECK_STR(m.message_id, cases[i].want);
			CHECK_INT(m.message_id_added, 0);
		} else {
			CHECK_INT(strlen(m.message_id), 32 + 1 + strlen(HOST));
			CHECK_INT(m.message_id_added, 1);
		}
		msg_info_free(&m);
		free(raw);
	}

	/* References: broken syntax still yields the ids; long chains keep
	 * the root and the 49 most recent. */
	m = parse("In-Reply-To: Your message of Monday <p@x> (comment)\n"
		  "References: <a@x> garbage <b@x> <c@x\n\nx\n");
	CHECK_STR(m.in_reply_to, "p@x");
	CHECK(strncmp(m.references, "a@x b@x", 7) == 0);
	msg_info_free(&m);

	struct sbuf b = {0}, want = {0};
	sbuf_adds(&b, "References:");
	for (int i = 0; i < 200; i++)
		sbuf_printf(&b, " <id%d@x>", i);
	sbuf_adds(&b, "\n\nx\n");
	sbuf_adds(&want, "id0@x");
	for (int i = 151; i < 200; i++)
		sbuf_printf(&want, " id%d@x", i);
	m = parse(b.buf);
	CHECK_STR(m.references, want.buf);
	msg_info_free(&m);
	sbuf_free(&b);
	sbuf_free(&want);
}

static void test_dates(void)
{
	static const struct {
		const char *hdr;
		int64_t want;
	} cases[] = {
		{"Tue, 1 Jul 2025 10:00:00 +0200", 1751356800},
		{"Tue, 6 Jun 00 03:20:11 UT", 960261611}, /* two-digit year, "UT" */
		{"Mon, 1 Jan 2001 00:00:00 EST", 978325200},
		{"1 Jan 2001 00:00:00 -0130", 978312600},
		{"Wed, 29 Feb 2012 12:00:00 PDT", 1330542000},
		{"Fri, 31 Dec 1999 23:59:60 +0000", 946684800},
		{"Tue, 1 Jul 2025 10:00:00 +0200 (CEST)", 1751356800},
		{"yesterday", 0},
		{"Tue, 45 Jul 2025 10:00:00 +0200", 0},
		{"", 0},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *raw = xasprintf("Date: %s\n\nx\n", cases[i].hdr);
		struct msg_info m = parse(raw);
		CHECK_INT(m.date, cases[i].want);
		CHECK_STR(m.date_header, cases[i].hdr);
		msg_info_free(&m);
		free(raw);
	}
}

static void test_bodies(void)
{
	static const struct {
		const char *raw, *want;
	} cases[] = {
		{"Content-Type: text/plain; charset=iso-8859-1\n"
		 "Content-Transfer-Encoding: quoted-printable\n\n"
		 "caf=E9 =\nsoft=3Dbreak, stray = sign, =ZZ\n",
		 "caf\xc3\xa9 soft=break, stray = sign, =ZZ\n"},
		{"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
		 "0J/RgNC40LLQtdGCLCDQvNC40YAhCg==\n",
		 "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80!\n"},
		/* "base64" that is plain text */
		{"Content-Transfer-Encoding: base64\n\nnot base64 at all\n", "not base64 at all\n"},
		{"Content-Type: text/plain; charset=\"koi8-r\"\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n",
		 "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82\n"},
		{"Content-Type: text/plain; charset=iso-2022-jp\n\n\x1b$BF|K\\8l\x1b(B\n",
		 "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n"},
		{"Content-Type: text/plain; charset=utf-8\n\nbad \xff byte\n",
		 "bad \xef\xbf\xbd byte\n"},
		{"Content-Type: text/html\n\n<html><head><style>p{}</style><script>x()</script></head>"
		 "<body><p>Hello &amp; welcome</p><div>line&nbsp;two&#33;</div><!-- c --></body></html>",
		 "Hello & welcome\nline\xc2\xa0two!\n"},
		{"Content-Type: text/html; charset=utf-8\n\n&#128512;&#x1F600;&#0;&bogus; a<b\n",
		 "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xef\xbf\xbd&bogus; a"},
		{"Content-Type: multipart/alternative; boundary=\"b\"\n\n"
		 "preamble\n--b\nContent-Type: text/html\n\n<p>html</p>\n"
		 "--b\nContent-Type: text/plain\n\nplain\n--b--\nepilogue\n",
		 "plain"},
		/* the text attachment is not the body */
		{"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		 "Content-Type: text/plain\nContent-Disposition: attachment; filename=a.txt\n\n"
		 "attached\n--b\nContent-Type: text/plain\n\nreal body\n--b--\n",
		 "real body"},
		/* a forward's own text before the enclosed message's */
		{"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		 "Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n"
		 "--b\nContent-Type: text/plain\n\nouter text\n--b--\n",
		 "outer text"},
		{"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		 "Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n--b--\n",
		 "inner text"},
		/* digest parts are messages */
		{"Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\ndigest one\n"
		 "--d--\n",
		 "digest one"},
		/* RFC 2231 boundary, folded quoted boundary, ";;" */
		{"Content-Type: multipart/mixed;\n boundary*=us-ascii''a%20b\n\n--a b\n\nx1\n--a b--\n",
		 "x1"},
		{"Content-Type: multipart/mixed; boundary=\"simple\n boundary\"\n\n"
		 "--simple boundary\n\nx2\n--simple boundary--\n",
		 "x2"},
		{"Content-Type: multipart/mixed;; boundary=foo\n\n--foo\n\nx3\n--foo--\n", "x3"},
		/* no boundary anywhere: read as text */
		{"Content-Type: multipart/mixed\n\nnot really multipart\n", "not really multipart\n"},
		{"Content-Type: multipart/mixed; boundary=zz\n\nno delimiters\n", "no delimiters\n"},
		/* an outer boundary that is a prefix of the inner one */
		{"Content-Type: multipart/mixed; boundary=ab\n\n--ab\n"
		 "Content-Type: multipart/alternative; boundary=abc\n\n--abc\n\ninner\n--abc--\n"
		 "--ab--\n",
		 "inner"},
		/* empty text parts do not count */
		{"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n\n--b\n\nsecond\n--b--\n",
		 "second"},
		{"Content-Type: image/png\n\nPNG\n", ""},
		/* raw UTF-16 survives: no NUL stripping or line-end rewriting */
		{"Content-Type: text/plain; charset=utf-16le\n\nh\0i\0", "hi"},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = strlen(cases[i].raw);
		if (strstr(cases[i].raw, "utf-16le"))
			len += 3; /* "\0i\0" after the "h" */
		struct msg_info m = parse_n(cases[i].raw, len);
		if (strcmp(m.body_text, cases[i].want) != 0)
			fprintf(stderr, "body case %zu\n", i);
		CHECK_STR(m.body_text, cases[i].want);
		CHECK(all_utf8(&m));
		msg_info_free(&m);
	}
}

static void test_limits(void)
{
	struct sbuf b = {0};
	struct msg_info m;

	/* Nesting far past the depth cap: no crash, broken, no text. */
	for (int i = 0; i < 5000; i++)
		sbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
	sbuf_adds(&b, "Content-Type: text/plain\n\ndeep\n");
	m = parse(b.buf);
	CHECK_STR(m.body_text, "");
	CHECK_INT(m.parse_ok, 0);
	msg_info_free(&m);
	sbuf_free(&b);

	/* ... while a few levels are fine. */
	for (int i = 0; i < 10; i++)
		sbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i);
	sbuf_adds(&b, "Content-Type: text/plain\n\nshallow\n");
	m = parse(b.buf);
	CHECK_STR(m.body_text, "shallow\n");
	msg_info_free(&m);
	sbuf_free(&b);

	/* Enclosed messages nested deeply. */
	for (int i = 0; i < 5000; i++)
		sbuf_adds(&b, "Content-Type: message/rfc822\n\n");
	sbuf_adds(&b, "\ntext\n");
	m = parse(b.buf);
	CHECK(all_utf8(&m));
	CHECK_INT(m.parse_ok, 0);
	msg_info_free(&m);
	sbuf_free(&b);

	/* Comments nested deeper than libetpan's recursion can take. */
	sbuf_adds(&b, "From: ");
	for (int i = 0; i < 300000; i++)
		sbuf_addc(&b, '(');
	sbuf_adds(&b, "\nSubject: still here\n\nx\n");
	m = parse(b.buf);
	CHECK_STR(m.subject, "still here");
	msg_info_free(&m);
	sbuf_free(&b);

	/* body_text stops at 1 MiB, on a character boundary. */
	sbuf_adds(&b, "Content-Type: text/plain; charset=utf-8\n\n");
	for (int i = 0; i < 1500000; i++)
		sbuf_adds(&b, "\xe2\x82\xac"); /* 3 bytes: 1 MiB is not a multiple */
	m = parse(b.buf);
	CHECK(strlen(m.body_text) <= 1024 * 1024);
	CHECK(strlen(m.body_text) > 1024 * 1024 - 3);
	CHECK(utf8_ok(m.body_text));
	msg_info_free(&m);
	sbuf_free(&b);
}

static void test_to_utf8(void)
{
	static const struct {
		const char *in, *charset, *want;
	} cases[] = {
		{"caf\xe9", "iso-8859-1", "caf\xc3\xa9"},
		{"\x80", "ISO-8859-1", "\xe2\x82\xac"}, /* read as windows-1252 */
		{"\xcf\xf0\xe8", "windows-1251", "\xd0\x9f\xd1\x80\xd0\xb8"},
		{"\xcf\xf0\xe8", " \"windows-1251\" ", "\xd0\x9f\xd1\x80\xd0\xb8"},
		{"\x83\x65\x83\x58\x83\x67", "Shift_JIS", "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88"},
		{"\x83", "shift_jis", "\xef\xbf\xbd"}, /* truncated sequence */
		{"a\xff" "b", "utf-8", "a\xef\xbf\xbd" "b"},
		{"\xed\xa0\x80", "utf-8", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
		{"\xc0\xaf", "utf8", "\xef\xbf\xbd\xef\xbf\xbd"},               /* overlong */
		{"caf\xc3\xa9", "x-unknown-charset", "caf\xc3\xa9"},
		{"caf\xe9", "x-unknown-charset", "caf\xc3\xa9"},
		{"caf\xe9", NULL, "caf\xc3\xa9"},
		{"caf\xe9", "", "caf\xc3\xa9"},
		{"caf\xe9", "us-ascii", "caf\xc3\xa9"},
		{"caf\xe9", "utf-8//IGNORE", "caf\xc3\xa9"}, /* no iconv suffixes */
		{"plain", "ascii", "plain"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *s = msg_to_utf8(cases[i].in, strlen(cases[i].in), cases[i].charset);
		CHECK_STR(s, cases[i].want);
		free(s);
	}
	char *s = msg_to_utf8("a\0b", 3, "utf-8");
	CHECK_STR(s, "ab");
	free(s);
	s = msg_to_utf8(NULL, 5, "utf-8");
	CHECK_STR(s, "");
	free(s);
	s = msg_to_utf8("\x1b$BF|K\\8l", 9, "iso-2022-jp"); /* no shift back */
	CHECK(utf8_ok(s) && strncmp(s, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 9) == 0);
	free(s);
}

/* ---- the corpus ---------------------------------------------------------- */

static const char *corpus;

static int load(const char *rel, struct msg_info *m)
{
	char *path = xasprintf("%s/%s", corpus, rel);
	size_t len;
	char *raw = read_file_all(path, &len);
	if (!raw) {
		fprintf(stderr, "FAIL: cannot read %s\n", path);
		test_failures++;
		free(path);
		return 0;
	}
	msg_parse(raw, len, HOST, m);
	free(raw);
	free(path);
	return 1;
}

static void test_corpus_messages(void)
{
	struct msg_info m;

	/* multipart/alternative, base64 UTF-8 text part */
	if (load("mime/clients-talon/android.eml", &m)) {
		CHECK_STR(m.subject, "Re: Test");
		CHECK_STR(m.from_addr, "bob@example.com");
		CHECK_STR(m.from_name, "Sergey Obykhov");
		CHECK_INT(m.date, 1333376530);
		CHECK_STR(m.message_id,
			  "CAEAsyCZ-sCHxZtoKyM3JmT5gSYpZd5GwY-cVNiV8H329zgJT4g@mail.gmail.com");
		CHECK_STR(m.body_text,
			  "Hello\n02.04.2012 14:20 \xd0\xbf\xd0\xbe\xd0\xbb\xd1\x8c\xd0\xb7\xd0\xbe"
			  "\xd0\xb2\xd0\xb0\xd1\x82\xd0\xb5\xd0\xbb\xd1\x8c \"bob@xxx.mailgun.org\" <\n"
			  "bob@xxx.mailgun.org> \xd0\xbd\xd0\xb0\xd0\xbf\xd0\xb8\xd1\x81\xd0\xb0\xd0\xbb"
			  ":\n\n> Hi\n>\n\n");
		CHECK_INT(m.parse_ok, 1);
		msg_info_free(&m);
	}
	/* UTF-8 base64 subject, quoted-printable UTF-8 body */
	if (load("mime/flanker/bilingual-simple.eml", &m)) {
		CHECK_STR(m.subject, "Simple text. How are you? \xd0\x9a\xd0\xb0\xd0\xba \xd1\x82"
				     "\xd1\x8b \xd0\xbf\xd0\xbe\xd0\xb6\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xb5"
				     "\xd1\x88\xd1\x8c?");
		CHECK(strncmp(m.body_text, "This line is in English\n\xd0\x90 \xd1\x8d\xd1\x82\xd0\xb0",
			      30) == 0);
		msg_info_free(&m);
	}
	/* plain text part before HTML with an embedded image */
	if (load("mime/dovecot/017.eml", &m)) {
		CHECK_STR(m.subject, "27 plaintext + (HTML + embedded image)");
		CHECK_STR(m.body_text, "Search for h\xc3\xa4h\xc3\xa4\n\n");
		CHECK_INT(m.date, 1514658960);
		msg_info_free(&m);
	}
	/* UTF-8 subject, no Message-ID: SHA-256 of the file */
	if (load("mime/dovecot/010.eml", &m)) {
		CHECK_STR(m.subject, "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf");
		CHECK_STR(m.message_id, "ca5a12c32f62b98768764d434d0e63d7@" HOST);
		CHECK_INT(m.message_id_added, 1);
		CHECK_STR(m.body_text, "\xe4\xba\xba\xe6\xa8\xa9\xe3\x81\xae\xe7\x84\xa1\xe8\xa6\x96"
				       "\xe5\x8f\x8a");
		msg_info_free(&m);
	}
	if (load("mime/rfc-examples/000.eml", &m)) {
		CHECK_STR(m.message_id, "c2584d07757b16b4f7d035dcc57d8d65@" HOST);
		CHECK_INT(m.message_id_added, 1);
		CHECK_STR(m.from_name, "Nathaniel Borenstein");
		CHECK_INT(m.date, 781571705);
		CHECK(strncmp(m.body_text, "... Some text appears here ...", 30) == 0);
		msg_info_free(&m);
	}
	/* ISO-2022-JP subject and quoted display name */
	if (load("bounces/x5/sisimai-lhost-x5-01.eml", &m)) {
		CHECK_STR(m.subject, "Returned mail: User unknown");
		CHECK_STR(m.from_name, "Mail Delivery Subsystem");
		CHECK_STR(m.from_addr, "MAILER-DAEMON@example.co.jp");
		CHECK_INT(m.date, 1444890142);
		msg_info_free(&m);
	}
	/* Broken MIME: an inner boundary equal to the outer one */
	if (load("mime/cpython/msg_15.txt", &m)) {
		CHECK_STR(m.message_id, "xxxx");
		CHECK_STR(m.body_text, "Some removed test. \n");
		CHECK_INT(m.parse_ok, 0);
		msg_info_free(&m);
	}
	/* Broken MIME: boundaries that are prefixes of each other */
	if (load("malformed/mime4j/boundary-name-clash.msg", &m)) {
		CHECK_STR(m.body_text, "Please see attachment for report Daily_Stats-2022-05-12-0700");
		msg_info_free(&m);
	}
	/* Broken MIME: text after the delimiters (mime4j's expectation) */
	if (load("malformed/mime4j/ending-boundaries.msg", &m)) {
		CHECK_STR(m.body_text, "first part\n");
		msg_info_free(&m);
	}
	/* A boundary ending in blanks; a near-miss line stays in the body */
	if (load("malformed/mime4j/weird-boundary.msg", &m)) {
		CHECK(strncmp(m.body_text, "Text body\n--0123456789", 21) == 0);
		CHECK(strstr(m.body_text, "should be part of the body.") != NULL);
		msg_info_free(&m);
	}
	/* A header that opens with a continuation line */
	if (load("malformed/enmime/bad-header-start.raw", &m)) {
		CHECK_STR(m.subject, "plain text");
		CHECK_STR(m.message_id, "07B7061D-2676-487E-942E-C341CE4D13DC@makita.skynet");
		CHECK_INT(m.parse_ok, 0);
		msg_info_free(&m);
	}
	/* The "UT" zone */
	if (load("mime/mimetools/re-fwd.msg", &m)) {
		CHECK_INT(m.date, 960261611);
		msg_info_free(&m);
	}
	/* The "infinite" nesting sample survives. */
	if (load("malformed/mimetools/infinite.msg", &m)) {
		CHECK(all_utf8(&m));
		msg_info_free(&m);
	}
}

/* The string value after the first "Text": following the top-level
 * subject header in a stalwart mail-parser .expected.json, or NULL. */
static char *json_subject(const char *json)
{
	/* Only the first part's headers: the message's own. */
	const char *h = strstr(json, "\"headers\"");
	const char *end = h ? strstr(h, "\"body\"") : NULL;
	const char *p = h ? strstr(h, "\"name\": \"subject\"") : NULL;
	if (!p || !end || p > end)
		return NULL;
	const char *v = strstr(p, "\"value\":");
	if (!v)
		return NULL;
	v += 8;
	while (*v == ' ' || *v == '\n' || *v == '{')
		v++;
	if (strncmp(v, "\"Text\": \"", 9) != 0)
		return NULL; /* not a plain string: not compared */
	v += 9;
	struct sbuf b = {0};
	while (*v && *v != '"') {
		if (*v != '\\') {
			sbuf_addc(&b, *v++);
			continue;
		}
		v++;
		switch (*v) {
		case 'n':
			sbuf_addc(&b, '\n');
			break;
		case 't':
			sbuf_addc(&b, '\t');
			break;
		case 'r':
			sbuf_addc(&b, '\r');
			break;
		case 'u': {
			unsigned cp = (unsigned)strtoul((char[]){v[1], v[2], v[3], v[4], 0}, NULL, 16);
			v += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && v[1] == '\\' && v[2] == 'u') {
				unsigned lo = (unsigned)strtoul((char[]){v[3], v[4], v[5], v[6], 0},
								 NULL, 16);
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				v += 6;
			}
			char u[4];
			int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
			static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
			for (int i = n - 1; i > 0; i--, cp >>= 6)
				u[i] = (char)(0x80 | (cp & 0x3F));
			u[0] = (char)(n == 1 ? cp : (lead[n] | cp));
			sbuf_add(&b, u, (size_t)n);
			break;
		}
		default:
			if (*v)
				sbuf_addc(&b, *v);
		}
		if (*v)
			v++;
	}
	return sbuf_detach(&b);
}

struct sweep {
	int files, compared, agreed;
};

static void sweep_file(struct sweep *s, const char *path)
{
	size_t len;
	char *raw = read_file_all(path, &len);
	if (!raw) {
		fprintf(stderr, "FAIL: cannot read %s\n", path);
		test_failures++;
		return;
	}
	struct msg_info m, again;
	msg_parse(raw, len, HOST, &m);
	msg_parse(raw, len, HOST, &again);
	s->files++;
	if (!all_utf8(&m) || !m.message_id[0])
		fprintf(stderr, "bad fields: %s\n", path);
	CHECK(all_utf8(&m));
	CHECK(m.message_id[0] != '\0');
	CHECK(strchr(m.message_id, ' ') == NULL);
	CHECK(strcmp(m.message_id, again.message_id) == 0);
	CHECK(strcmp(m.body_text, again.body_text) == 0);
	msg_info_free(&again);

	/* X.eml next to X.expected.json: compare the decoded subject. */
	size_t pl = strlen(path);
	if (pl > 4 && strcmp(path + pl - 4, ".eml") == 0) {
		char *jpath = xasprintf("%.*s.expected.json", (int)(pl - 4), path);
		char *json = read_file_all(jpath, NULL);
		char *want = json ? json_subject(json) : NULL;
		if (want) {
			s->compared++;
			if (strcmp(want, m.subject) == 0)
				s->agreed++;
			else
				fprintf(stderr, "subject differs from mail-parser: %s\n  ours   \"%s\"\n"
						"  theirs \"%s\"\n",
					path, m.subject, want);
		}
		free(want);
		free(json);
		free(jpath);
	}
	msg_info_free(&m);
	free(raw);
}

static void sweep_dir(struct sweep *s, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d) {
		fprintf(stderr, "FAIL: cannot open %s\n", dir);
		test_failures++;
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			sweep_dir(s, path);
		else if (S_ISREG(st.st_mode))
			sweep_file(s, path);
		free(path);
	}
	closedir(d);
}

static void test_corpus_sweep(void)
{
	static const char *const dirs[] = {"mime", "malformed", "bounces", "dkim"};
	struct sweep s = {0};

	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char *dir = xasprintf("%s/%s", corpus, dirs[i]);
		sweep_dir(&s, dir);
		free(dir);
	}
	fprintf(stderr, "corpus: %d files parsed; subject agrees with mail-parser on %d of %d\n",
		s.files, s.agreed, s.compared);
	/* ~400 files in the corpus; 21 of its expected subjects are plain
	 * strings and all 21 matched when this was written. Allow for the
	 * odd difference in whitespace, not for a broken decoder. */
	CHECK(s.files >= 300);
	CHECK(s.compared >= 15);
	CHECK(s.agreed * 10 >= s.compared * 9);
}

int main(void)
{
	test_basic();
	test_degenerate();
	test_nul_and_garbage();
	test_rfc2047();
	test_ids();
	test_dates();
	test_bodies();
	test_limits();
	test_to_utf8();

	struct stat st;
	corpus = getenv("DIALOGUE_CORPUS");
	if (!corpus || stat(corpus, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "DIALOGUE_CORPUS not set or absent: corpus checks skipped\n");
		return test_failures ? test_result() : TEST_SKIP;
	}
	test_corpus_messages();
	test_corpus_sweep();
	return test_result();
}
