/* Unit tests for lib/rewrite*.c: the header of outgoing posts byte for
 * byte, the facts read for the post policy, the subject prefix, reject
 * notices, and every message of the corpus through all of it. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "msg_text.h"
#include "rewrite.h"
#include "testutil.h"
#include "util.h"

#define TITLE "Dialogue on Internet Cooperation Evolution"
#define LIST_FIELDS                                                             \
	"List-Id: " TITLE "\r\n <dialogue.lists.example.org>\r\n"                \
	"List-Post: <mailto:dialogue@lists.example.org>\r\n"                    \
	"List-Help: <mailto:dialogue-request@lists.example.org?subject=help>\r\n" \
	"List-Subscribe: <mailto:dialogue-join@lists.example.org>\r\n"          \
	"List-Archive: <http://127.0.0.1:8080/dialogue/>\r\n"                   \
	"Precedence: list\r\n"                                                  \
	"X-Loop: dialogue@lists.example.org\r\n"

static struct listen_addr http = {"127.0.0.1", "8080"};
static struct list_cfg list;
static struct config cfg;

static void setup(void)
{
	list.name = "dialogue";
	list.address = "dialogue@lists.example.org";
	list.local = "dialogue";
	list.domain = "lists.example.org";
	list.title = TITLE;
	list.subject_prefix = "[Dialogue]";
	list.post_policy = POST_MEMBERS;
	list.archive = ARCHIVE_PUBLIC;
	cfg.hostname = "lists.example.org";
	cfg.http_listen = &http;
	cfg.n_http_listen = 1;
	cfg.base_url = "http://127.0.0.1:8080/";
	cfg.lists = &list;
	cfg.n_lists = 1;
}

static char *post_n(const char *raw, size_t n, size_t *out_len)
{
	return rewrite_post(&cfg, &list, raw, n, "added@lists.example.org", out_len);
}

static char *post(const char *raw)
{
	size_t n;
	char *r = post_n(raw, strlen(raw), &n);
	CHECK_INT(strlen(r), n);
	return r;
}

/* Where NEEDLE[0..nn) first occurs in S[0..n), or NULL (memmem is GNU). */
static const char *find(const char *s, size_t n, const char *needle, size_t nn)
{
	for (size_t i = 0; nn <= n && i <= n - nn; i++)
		if (!memcmp(s + i, needle, nn))
			return s + i;
	return NULL;
}

/* The header block of OUT: up to the first empty line. */
static size_t header_len(const char *out, size_t n)
{
	for (size_t i = 0; i + 4 <= n; i++)
		if (!memcmp(out + i, "\r\n\r\n", 4))
			return i + 2;
	return n;
}

/* How many fields of the header of OUT are named NAME; also checks that
 * every line is a field or a continuation and ends with CRLF. */
static int count_fields(const char *out, size_t n, const char *name)
{
	size_t h = header_len(out, n), nl = strlen(name);
	int count = 0;

	for (size_t i = 0; i < h;) {
		const char *e = memchr(out + i, '\n', h - i);
		size_t end = e ? (size_t)(e - out) + 1 : h;
		CHECK(end >= i + 2 && out[end - 2] == '\r');
		if (out[i] != ' ' && out[i] != '\t') {
			const char *colon = memchr(out + i, ':', end - i);
			CHECK(colon != NULL && colon > out + i);
			if (end - i > nl && out[i + nl] == ':' && !ascii_strncasecmp(out + i, name, nl))
				count++;
		}
		i = end;
	}
	return count;
}

/* Only CRLF line ends anywhere in OUT. */
static int crlf_only(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
			return 0;
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			return 0;
	}
	return 1;
}

/* S with every line end (CRLF, LF, lone CR) as CRLF. */
static char *normalize(const char *s, size_t n, size_t *out_n)
{
	struct sbuf b = {0};
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			sbuf_add(&b, "\r\n", 2);
			if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
				i++;
		} else {
			sbuf_addc(&b, s[i]);
		}
	}
	*out_n = b.len;
	return sbuf_detach(&b);
}

/* A folded value back on one line (CRLF removed) and RFC 2047-decoded. */
static char *decode_value(const char *v)
{
	struct sbuf b = {0};
	for (; *v; v++)
		if (*v != '\r' && *v != '\n')
			sbuf_addc(&b, *v);
	char *r = msg_decode_phrase(b.buf ? b.buf : "");
	sbuf_free(&b);
	return r;
}

/* Folded lines of "Subject: V" stay within 78 columns, encoded words
 * within 75 characters. */
static void check_folding(const char *v)
{
	size_t col = 9;
	for (const char *p = v; *p; p++) {
		if (*p == '\r') {
			CHECK(p[1] == '\n' && p[2] == ' ');
			CHECK(col <= 78);
			col = 0;
			p++;
			continue;
		}
		col++;
	}
	CHECK(col <= 78);
	for (const char *p = strstr(v, "=?UTF-8?B?"), *q; p; p = strstr(q, "=?UTF-8?B?")) {
		q = strstr(p + 10, "?=");
		CHECK(q && q + 2 - p <= 75);
		if (!q)
			break;
	}
}

/* ---- rewrite_post ----------------------------------------------------------- */

static void test_post_basic(void)
{
	char *out = post("From: Alice <alice@Example.ORG>\r\n"
			 "To: dialogue@lists.example.org\r\n"
			 "Bcc: secret@example.org\r\n"
			 "Subject: Hello\r\n"
			 "Message-ID: <1@example.org>\r\n"
			 "List-Id: Other <other.example.org>\r\n"
			 "list-unsubscribe: <mailto:x@example.org>\r\n"
			 "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
			 "Precedence: bulk\r\n"
			 "Return-Path: <alice@example.org>\r\n"
			 "Delivered-To: dialogue@lists.example.org\r\n"
			 "Errors-To: alice@example.org\r\n"
			 "X-Loop: dialogue@lists.example.org\r\n"
			 "X-Loop: other@example.org\r\n"
			 "\r\n"
			 "Body line\r\n");
	CHECK_STR(out, "From: Alice <alice@Example.ORG>\r\n"
		       "To: dialogue@lists.example.org\r\n"
		       "Subject: [Dialogue] Hello\r\n"
		       "Message-ID: <1@example.org>\r\n"
		       "X-Loop: other@example.org\r\n" LIST_FIELDS "\r\n"
		       "Body line\r\n");
	free(out);
}

static void test_post_bytes_kept(void)
{
	/* Folded, 8-bit and oddly spaced fields go out as they came; LF line
	 * ends become CRLF, in the body too. */
	char *out = post("DKIM-Signature: v=1; a=rsa-sha256; d=example.org;\n"
			 "\tb=abc\n"
			 "  def\n"
			 "X-Name:   J\xc3\xb6rg \xff\n"
			 "Received : from x\n"
			 "Subject: Re: [Dialogue] x\n"
			 "\n"
			 "a\n"
			 "\n"
			 "b");
	CHECK_STR(out, "DKIM-Signature: v=1; a=rsa-sha256; d=example.org;\r\n"
		       "\tb=abc\r\n"
		       "  def\r\n"
		       "X-Name:   J\xc3\xb6rg \xff\r\n"
		       "Received : from x\r\n"
		       "Subject: [Dialogue] Re: x\r\n"
		       "Message-ID: <added@lists.example.org>\r\n" LIST_FIELDS "\r\n"
		       "a\r\n"
		       "\r\n"
		       "b\r\n");
	free(out);

	/* Bare CR line ends. */
	out = post("Subject: x\rFrom: a@b.c\r\rbody\r");
	CHECK_STR(out, "Subject: [Dialogue] x\r\nFrom: a@b.c\r\n"
		       "Message-ID: <added@lists.example.org>\r\n" LIST_FIELDS "\r\nbody\r\n");
	free(out);
}

static void test_post_odd_shapes(void)
{
	/* No blank line before the body: the first line that is no field
	 * starts it. */
	char *out = post("Subject: x\r\nThis is the body\r\nmore: text\r\n");
	CHECK_STR(out, "Subject: [Dialogue] x\r\n"
		       "Message-ID: <added@lists.example.org>\r\n" LIST_FIELDS "\r\n"
		       "This is the body\r\nmore: text\r\n");
	free(out);

	/* Header only, no final line end; no Subject, blank Message-ID. */
	out = post("From: a@b.c\r\nMessage-ID:  \r\nX-A: 1");
	CHECK_STR(out, "From: a@b.c\r\nX-A: 1\r\n"
		       "Subject: [Dialogue] (no subject)\r\n"
		       "Message-ID: <added@lists.example.org>\r\n" LIST_FIELDS "\r\n");
	free(out);

	/* Empty input, and an mbox envelope line. */
	out = post("");
	CHECK_STR(out, "Subject: [Dialogue] (no subject)\r\n"
		       "Message-ID: <added@lists.example.org>\r\n" LIST_FIELDS "\r\n");
	free(out);
	out = post("From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: x\n\nhi\n");
	CHECK_STR(out, "Subject: [Dialogue] x\r\n"
		       "Message-ID: <added@lists.example.org>\r\n" LIST_FIELDS "\r\nhi\r\n");
	free(out);

	/* Two Subjects, two Message-IDs: the first of each. */
	out = post("Subject: one\r\nMessage-ID: <a@b>\r\nSubject: two\r\n"
		   "Message-ID: <c@d>\r\n\r\n");
	CHECK_STR(out, "Subject: [Dialogue] one\r\nMessage-ID: <a@b>\r\n" LIST_FIELDS "\r\n");
	free(out);

	/* NUL bytes survive in the body and do not cut the header short. */
	static const char nul[] = "Subject: a\0b\r\nX: y\r\n\r\nx\0y\r\n";
	size_t n;
	out = post_n(nul, sizeof(nul) - 1, &n);
	static const char want_tail[] = "\r\n\r\nx\0y\r\n";
	CHECK(n > sizeof(want_tail) && !memcmp(out + n - (sizeof(want_tail) - 1), want_tail,
					       sizeof(want_tail) - 1));
	CHECK(find(out, n, "\r\nX: y\r\n", 8) != NULL);
	CHECK_INT(count_fields(out, n, "List-Id"), 1);
	free(out);
}

static void test_post_settings(void)
{
	/* Message-ID given with brackets or with junk. */
	size_t n;
	char *out = rewrite_post(&cfg, &list, "Subject: x\r\n\r\n", 14, "<id@h>", &n);
	CHECK(strstr(out, "\r\nMessage-ID: <id@h>\r\n") != NULL);
	free(out);
	out = rewrite_post(&cfg, &list, "Subject: x\r\n\r\n", 14, "id@h\r\nBcc: x@y", &n);
	CHECK(strstr(out, "\r\nMessage-ID: <id@hBcc:x@y>\r\n") != NULL);
	free(out);
	out = rewrite_post(&cfg, &list, "Subject: x\r\n\r\n", 14, NULL, &n);
	CHECK(strstr(out, "@lists.example.org>\r\n") != NULL);
	CHECK_INT(count_fields(out, n, "Message-ID"), 1);
	free(out);

	/* No prefix: the Subject field is left exactly as it was. */
	list.subject_prefix = "";
	out = post("Subject:  =?utf-8?q?Caf=C3=A9?= \r\nSubject: two\r\n\r\n");
	CHECK(strstr(out, "Subject:  =?utf-8?q?Caf=C3=A9?= \r\nSubject: two\r\n") == out);
	free(out);
	out = post("From: a@b.c\r\n\r\n");
	CHECK_INT(count_fields(out, strlen(out), "Subject"), 0);
	free(out);
	list.subject_prefix = "[Dialogue]";

	/* Without a public archive or without the web: no List-Archive. */
	list.archive = ARCHIVE_PRIVATE;
	out = post("Subject: x\r\n\r\n");
	CHECK(!strstr(out, "List-Archive"));
	free(out);
	list.archive = ARCHIVE_PUBLIC;
	cfg.n_http_listen = 0;
	out = post("Subject: x\r\n\r\n");
	CHECK(!strstr(out, "List-Archive"));
	free(out);
	cfg.n_http_listen = 1;

	/* An announcement list says posting is closed (RFC 2369 3.4). */
	list.post_policy = POST_ANNOUNCE;
	out = post("Subject: x\r\n\r\n");
	CHECK(strstr(out, "\r\nList-Post: NO (posting not allowed on this list)\r\n") != NULL);
	free(out);
	list.post_policy = POST_MEMBERS;

	/* Titles that need quoting or encoding, and none. */
	list.title = "Dialogue, \"the\" list";
	out = post("\r\n");
	CHECK(strstr(out, "\r\nList-Id: \"Dialogue, \\\"the\\\" list\" "
			  "<dialogue.lists.example.org>\r\n") != NULL);
	free(out);
	list.title = "Dialogue \xc3\xa9t\xc3\xa9";
	out = post("\r\n");
	CHECK(strstr(out, "\r\nList-Id: =?UTF-8?B?RGlhbG9ndWUgw6l0w6k=?= "
			  "<dialogue.lists.example.org>\r\n") != NULL);
	free(out);
	list.title = "";
	out = post("\r\n");
	CHECK(strstr(out, "\r\nList-Id: <dialogue.lists.example.org>\r\n") != NULL);
	free(out);
	list.title = TITLE;
}

static void test_recipient_head(void)
{
	char *h = rewrite_recipient_head(&cfg, &list, "tok_EN-1");
	/* http base: the link, but no one-click (RFC 8058 wants HTTPS) */
	CHECK_STR(h, "List-Unsubscribe: <mailto:dialogue-leave@lists.example.org>,\r\n"
		     " <http://127.0.0.1:8080/dialogue/unsubscribe/tok_EN-1>\r\n");
	free(h);
	h = rewrite_recipient_head(&cfg, &list, "a/b\r\n");
	CHECK(strstr(h, "/unsubscribe/a%2Fb%0D%0A>\r\n") != NULL);
	free(h);
	h = rewrite_recipient_head(&cfg, &list, NULL);
	CHECK_STR(h, "List-Unsubscribe: <mailto:dialogue-leave@lists.example.org>\r\n");
	free(h);
	cfg.n_http_listen = 0;
	h = rewrite_recipient_head(&cfg, &list, "tok");
	CHECK_STR(h, "List-Unsubscribe: <mailto:dialogue-leave@lists.example.org>\r\n");
	free(h);
	cfg.n_http_listen = 1;
	cfg.base_url = "https://lists.example.org";
	h = rewrite_recipient_head(&cfg, &list, "t");
	CHECK(strstr(h, " <https://lists.example.org/dialogue/unsubscribe/t>\r\n"
			"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n") != NULL);
	free(h);
	cfg.base_url = "http://127.0.0.1:8080/";
}

/* ---- rewrite_facts ---------------------------------------------------------- */

struct facts_row {
	const char *raw;
	const char *from;
	int list_id, x_loop, auto_sub;
};

static const struct facts_row facts_rows[] = {
	{"From: Alice <alice@Example.ORG>\r\n\r\n", "alice@example.org", 0, 0, 0},
	{"from: bob@EXAMPLE.org (Bob)\n\n", "bob@example.org", 0, 0, 0},
	{"From: \"Weird, <Name>\" <w@x.org>, c@d.e\r\n\r\n", "w@x.org", 0, 0, 0},
	{"From: J\xc3\xb6rg <J@X.DE>\r\n\r\n", "J@x.de", 0, 0, 0},
	{"From: Foo\r\n  <folded@Example.org>\r\n\r\n", "folded@example.org", 0, 0, 0},
	{"From: <<a@b.c>\r\n\r\n", "a@b.c", 0, 0, 0},
	{"From: undisclosed-recipients:;\r\n\r\n", "", 0, 0, 0},
	{"From: nobody\r\n\r\n", "", 0, 0, 0},
	{"To: x@y.z\r\n\r\nFrom: body@x.y\r\n", "", 0, 0, 0},
	{"From: first@a.b\r\nFrom: second@a.b\r\n\r\n", "first@a.b", 0, 0, 0},
	{"List-Id: anything <dialogue.lists.example.org>\r\n\r\n", "", 1, 0, 0},
	{"list-id: <DIALOGUE.Lists.Example.ORG>\r\n\r\n", "", 1, 0, 0},
	{"List-ID:   \"a <b>\"\r\n  <  dialogue.lists.example.org >\r\n\r\n", "", 1, 0, 0},
	{"List-Id: dialogue.lists.example.org\r\n\r\n", "", 1, 0, 0},
	{"List-Id: x <dialogue.lists.example.org.evil>\r\n\r\n", "", 0, 0, 0},
	{"List-Id: <steering.lists.example.org>\r\n\r\n", "", 0, 0, 0},
	{"List-Id: <other.x>\r\nList-Id: <dialogue.lists.example.org>\r\n\r\n", "", 1, 0, 0},
	{"X-Loop: dialogue@lists.example.org\r\n\r\n", "", 0, 1, 0},
	{"X-LOOP: <DIALOGUE@lists.example.org> (x)\r\n\r\n", "", 0, 1, 0},
	{"X-Loop: steering@lists.example.org\r\n\r\n", "", 0, 0, 0},
	{"X-Loop: xdialogue@lists.example.org\r\n\r\n", "", 0, 0, 0},
	{"Auto-Submitted: auto-replied\r\n\r\n", "", 0, 0, 1},
	{"Auto-Submitted: auto-generated; owner-email=\"a@b\"\r\n\r\n", "", 0, 0, 1},
	{"Auto-Submitted: no\r\n\r\n", "", 0, 0, 0},
	{"auto-submitted:  No (a human wrote this)\r\n\r\n", "", 0, 0, 0},
	{"Auto-Submitted: (c) NO ; x=y\r\n\r\n", "", 0, 0, 0},
	{"Auto-Submitted:\r\n\r\n", "", 0, 0, 1},
	{"Auto-Submitted: no\r\nAuto-Submitted: auto-notified\r\n\r\n", "", 0, 0, 1},
	{"", "", 0, 0, 0},
};

static void test_facts(void)
{
	for (size_t i = 0; i < sizeof(facts_rows) / sizeof(facts_rows[0]); i++) {
		const struct facts_row *r = &facts_rows[i];
		struct post_facts f = {0};
		char *from = NULL;

		f.sender_is_member = 1;
		rewrite_facts(r->raw, strlen(r->raw), &list, &f, &from);
		CHECK_STR(from, r->from);
		CHECK(f.from_addr == from);
		if (f.has_own_list_id != r->list_id || f.has_own_x_loop != r->x_loop ||
		    f.auto_submitted != r->auto_sub) {
			fprintf(stderr, "%s:%d: FAIL: facts of row %zu: %d %d %d\n", __FILE__,
				__LINE__, i, f.has_own_list_id, f.has_own_x_loop, f.auto_submitted);
			test_failures++;
		}
		CHECK_INT(f.sender_is_member, 1); /* the caller's fields stay */
		free(from);
	}
	struct post_facts f = {0};
	rewrite_facts("From: a@b.c\r\n\r\n", 15, &list, &f, NULL);
	CHECK_STR(f.from_addr, "");
}

/* ---- rewrite_subject -------------------------------------------------------- */

struct subject_row {
	const char *in, *want;
};

static const struct subject_row subject_rows[] = {
	{"x", "[Dialogue] x"},
	{"[Dialogue] Re: [Dialogue] x", "[Dialogue] Re: x"},
	{"Re: [Dialogue] x", "[Dialogue] Re: x"},
	{"RE: Re: x", "[Dialogue] Re: x"},
	{"Re: Re: [Dialogue] Re: x", "[Dialogue] Re: x"},
	{"AW: Sv: Antw: re: x", "[Dialogue] Re: x"},
	{"Re[2]: Re[10]:x", "[Dialogue] Re: x"},
	{"RE : [DIALOGUE]  x  ", "[Dialogue] Re: x"},
	{"[dialogue]x", "[Dialogue] x"},
	{"Fwd: [Dialogue] x", "[Dialogue] Fwd: x"},
	{"x [Dialogue] y [Dialogue]", "[Dialogue] x y"},
	{"Reply: x", "[Dialogue] Reply: x"},
	{"Re[: x", "[Dialogue] Re[: x"},
	{"Svar: x", "[Dialogue] Re: x"},
	{"x Re: y", "[Dialogue] x Re: y"},
	{"", "[Dialogue] (no subject)"},
	{"   ", "[Dialogue] (no subject)"},
	{"[Dialogue]", "[Dialogue] (no subject)"},
	{"Re:", "[Dialogue] Re: (no subject)"},
	{"=?iso-8859-1?q?Re=3A_=5BDialogue=5D_x?=", "[Dialogue] Re: x"},
	{"=?UTF-8?B?UmU6IFtEaWFsb2d1ZV0geA==?=", "[Dialogue] Re: x"},
	{" Hello\r\n world", "[Dialogue] Hello world"},
};

/* Subjects whose result is encoded: checked by decoding it back. */
static const struct subject_row encoded_rows[] = {
	{"=?UTF-8?Q?=5BDialogue=5D_Caf=C3=A9?=", "[Dialogue] Caf\xc3\xa9"},
	{"Re: =?iso-8859-1?q?=5BDialogue=5D_caf=E9?= ok", "[Dialogue] Re: caf\xc3\xa9 ok"},
	{"Caf\xc3\xa9 au lait", "[Dialogue] Caf\xc3\xa9 au lait"},
	{"Caf\xe9", "[Dialogue] Caf\xc3\xa9"},
	{"a =?bogus b", "[Dialogue] a =?bogus b"},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6\xe5\x90\x8d\xe3\x81\xa7"
	 "\xe3\x81\x99\xe3\x80\x82\xe9\x95\xb7\xe3\x81\x84\xe4\xbb\xb6\xe5\x90\x8d\xe3\x82\x92"
	 "\xe6\x8a\x98\xe3\x82\x8a\xe8\xbf\x94\xe3\x81\x97\xe3\x81\xbe\xe3\x81\x99\xe3\x80\x82"
	 "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6\xe5\x90\x8d\xe3\x81\xa7",
	 "[Dialogue] "
	 "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6\xe5\x90\x8d\xe3\x81\xa7"
	 "\xe3\x81\x99\xe3\x80\x82\xe9\x95\xb7\xe3\x81\x84\xe4\xbb\xb6\xe5\x90\x8d\xe3\x82\x92"
	 "\xe6\x8a\x98\xe3\x82\x8a\xe8\xbf\x94\xe3\x81\x97\xe3\x81\xbe\xe3\x81\x99\xe3\x80\x82"
	 "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe4\xbb\xb6\xe5\x90\x8d\xe3\x81\xa7"},
};

static void test_subject(void)
{
	for (size_t i = 0; i < sizeof(subject_rows) / sizeof(subject_rows[0]); i++) {
		char *s = rewrite_subject(subject_rows[i].in, "[Dialogue]");
		CHECK_STR(s, subject_rows[i].want);
		free(s);
	}
	for (size_t i = 0; i < sizeof(encoded_rows) / sizeof(encoded_rows[0]); i++) {
		char *s = rewrite_subject(encoded_rows[i].in, "[Dialogue]");
		CHECK(strncmp(s, "[Dialogue] ", 11) == 0);
		CHECK(strstr(s, "=?UTF-8?B?") != NULL);
		check_folding(s);
		char *d = decode_value(s);
		CHECK_STR(d, encoded_rows[i].want);
		free(d);
		free(s);
	}

	/* A long ASCII subject folds at spaces and unfolds to itself. */
	const char *longs = "a fairly long subject line that keeps going well past the "
			    "seventy-eight columns a header line should stay within, twice "
			    "over if possible";
	char *s = rewrite_subject(longs, "[Dialogue]");
	CHECK(strstr(s, "\r\n ") != NULL);
	CHECK(strstr(s, "=?") == NULL);
	check_folding(s);
	char *d = decode_value(s);
	CHECK(strncmp(d, "[Dialogue] ", 11) == 0 && !strcmp(d + 11, longs));
	free(d);
	free(s);

	/* A word too long for any line is encoded so it can be split. */
	char word[300];
	memset(word, 'w', sizeof(word) - 1);
	word[sizeof(word) - 1] = '\0';
	s = rewrite_subject(word, "[Dialogue]");
	check_folding(s);
	d = decode_value(s);
	CHECK(strncmp(d, "[Dialogue] ", 11) == 0 && !strcmp(d + 11, word));
	free(d);
	free(s);

	/* No prefix: the raw value, untouched. */
	s = rewrite_subject(" =?utf-8?q?x?= Re: ", "");
	CHECK_STR(s, " =?utf-8?q?x?= Re: ");
	free(s);
	s = rewrite_subject("x", NULL);
	CHECK_STR(s, "x");
	free(s);
	s = rewrite_subject(NULL, "[P]");
	CHECK_STR(s, "[P] (no subject)");
	free(s);
	s = rewrite_subject("Re: [p] x", " [P] ");
	CHECK_STR(s, "[P] Re: x");
	free(s);
}

/* ---- rewrite_reject_notice ------------------------------------------------- */

static void test_notice(void)
{
	const char *raw = "From: Mallory <m@example.org>\r\n"
			  "Subject: =?utf-8?q?hi=0D=0ABcc:_victim@example.org?=\r\n"
			  "Message-ID: <orig@example.org>\r\n"
			  "\r\n"
			  "SECRET BODY\r\n";
	size_t n;
	char *out = rewrite_reject_notice(&cfg, &list, raw, strlen(raw),
					  "m@example.org\r\nBcc: victim@example.org",
					  "only members may post to this list", &n);
	size_t h = header_len(out, n);

	CHECK_INT(strlen(out), n);
	CHECK(crlf_only(out, n));
	CHECK(!strstr(out, "SECRET BODY"));
	CHECK_INT(count_fields(out, n, "Bcc"), 0);
	CHECK_INT(count_fields(out, n, "From"), 1);
	CHECK_INT(count_fields(out, n, "To"), 1);
	CHECK_INT(count_fields(out, n, "Date"), 1);
	CHECK_INT(count_fields(out, n, "Message-ID"), 1);
	CHECK_INT(count_fields(out, n, "MIME-Version"), 1);
	CHECK(strstr(out, "From: " TITLE "\r\n <dialogue-owner@lists.example.org>\r\n") == out);
	CHECK(find(out, h, "\r\nTo: <m@example.orgBcc:victim@example.org>\r\n", 45) != NULL);
	CHECK(find(out, h, "\r\nAuto-Submitted: auto-replied\r\n", 32) != NULL);
	CHECK(find(out, h, "\r\nIn-Reply-To: <orig@example.org>\r\n", 35) != NULL);
	CHECK(find(out, h, "@lists.example.org>\r\n", 21) != NULL);
	CHECK(find(out, h, "\r\nContent-Type: multipart/mixed; boundary=", 42) != NULL);
	CHECK(find(out, h, " +0000\r\n", 8) != NULL);
	/* No line anywhere starts with the injected field. */
	CHECK(!strstr(out, "\nBcc:"));
	CHECK(strstr(out, "\r\n    only members may post to this list\r\n") != NULL);
	CHECK(strstr(out, "\r\n    Subject: hiBcc: victim@example.org\r\n") != NULL);
	CHECK(strstr(out, "<dialogue-owner@lists.example.org>.\r\n") != NULL);
	CHECK(strstr(out, "Content-Type: text/rfc822-headers\r\n") != NULL);
	CHECK(strstr(out, "Content-Transfer-Encoding: 7bit\r\n\r\nFrom: Mallory "
			  "<m@example.org>\r\n") != NULL);
	free(out);

	/* 8-bit subject and header: quoted-printable text, base64 header. */
	raw = "Subject: Caf\xc3\xa9\n\nbody";
	out = rewrite_reject_notice(&cfg, &list, raw, strlen(raw), "a@b.c", "line one\nline two",
				    &n);
	CHECK(crlf_only(out, n));
	CHECK(strstr(out, "Content-Transfer-Encoding: quoted-printable\r\n") != NULL);
	CHECK(strstr(out, "Subject: Caf=C3=A9\r\n") != NULL);
	CHECK(strstr(out, "    line one\r\n    line two\r\n") != NULL);
	CHECK(strstr(out, "Content-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogQ2Fmw6kNCg==\r\n"));
	free(out);

	/* Nothing usable at all. */
	out = rewrite_reject_notice(&cfg, &list, NULL, 0, "", NULL, &n);
	CHECK(crlf_only(out, n));
	CHECK(strstr(out, "\r\nTo: undisclosed-recipients:;\r\n") != NULL);
	CHECK(strstr(out, "(no reason given)") != NULL);
	free(out);
}

/* ---- the corpus -------------------------------------------------------------- */

static int corpus_files;

static int count_raw_subjects(const char *raw, size_t n)
{
	/* Count in the header as the test reads it: up to the first empty line. */
	int c = 0;
	for (size_t i = 0; i < n;) {
		const char *e = memchr(raw + i, '\n', n - i);
		size_t end = e ? (size_t)(e - raw) + 1 : n;
		if (end - i <= 2 && (raw[i] == '\r' || raw[i] == '\n'))
			break;
		if (end - i > 8 && !ascii_strncasecmp(raw + i, "subject:", 8))
			c++;
		i = end;
	}
	return c;
}

static void check_message(const char *path, const char *raw, size_t n)
{
	size_t on;
	char *out = post_n(raw, n, &on);
	int bad = test_failures;

	CHECK(crlf_only(out, on));
	CHECK(on >= 2 && !memcmp(out + on - 2, "\r\n", 2));
	CHECK_INT(count_fields(out, on, "List-Id"), 1);
	CHECK_INT(count_fields(out, on, "List-Post"), 1);
	CHECK_INT(count_fields(out, on, "List-Help"), 1);
	CHECK_INT(count_fields(out, on, "List-Subscribe"), 1);
	CHECK_INT(count_fields(out, on, "List-Archive"), 1);
	CHECK_INT(count_fields(out, on, "List-Unsubscribe"), 0);
	CHECK_INT(count_fields(out, on, "Precedence"), 1);
	CHECK_INT(count_fields(out, on, "Bcc"), 0);
	CHECK_INT(count_fields(out, on, "Message-ID"), 1);
	if (count_raw_subjects(raw, n) <= 1) {
		CHECK_INT(count_fields(out, on, "Subject"), 1);
		const char *subj = !strncmp(out, "Subject: [Dialogue] ", 20)
					   ? out
					   : find(out, header_len(out, on), "\nSubject: [Dialogue] ", 21);
		CHECK(subj != NULL);
		if (subj) {
			/* The value runs to the first line end not followed by WSP. */
			const char *v = subj + (subj == out ? 9 : 10), *e = v;
			while ((e = strstr(e, "\r\n")) && (e[2] == ' ' || e[2] == '\t'))
				e += 2;
			char *value = xstrndup(v, e ? (size_t)(e - v) : strlen(v));
			check_folding(value);
			free(value);
		}
	}

	/* The body after the first empty line comes out unchanged, at the end
	 * (a missing final line end added). */
	const char *body_at = NULL;
	for (size_t i = 0; i < n && !body_at; i++) {
		if (raw[i] != '\r' && raw[i] != '\n')
			continue;
		size_t j = i + (raw[i] == '\r' && i + 1 < n && raw[i + 1] == '\n' ? 2 : 1);
		if (j < n && (raw[j] == '\r' || raw[j] == '\n'))
			body_at = raw + j + (raw[j] == '\r' && j + 1 < n && raw[j + 1] == '\n' ? 2 : 1);
		i = j - 1;
	}
	if (body_at) {
		size_t bn;
		char *body = normalize(body_at, n - (size_t)(body_at - raw), &bn);
		if (bn && (bn < 2 || memcmp(body + bn - 2, "\r\n", 2))) {
			body = xrealloc(body, bn + 3);
			memcpy(body + bn, "\r\n", 3);
			bn += 2;
		}
		CHECK(bn <= on && !memcmp(out + on - bn, body, bn));
		free(body);
	}

	/* The list's own output is a loop to the policy. */
	struct post_facts f = {0};
	char *from = NULL;
	rewrite_facts(out, on, &list, &f, &from);
	CHECK(f.has_own_list_id && f.has_own_x_loop);
	free(from);
	rewrite_facts(raw, n, &list, &f, &from);
	free(from);

	size_t nn;
	char *notice = rewrite_reject_notice(&cfg, &list, raw, n, "sender@example.org",
					     "only members may post to this list", &nn);
	CHECK(crlf_only(notice, nn));
	CHECK_INT(count_fields(notice, nn, "Subject"), 1);
	free(notice);
	if (test_failures != bad)
		fprintf(stderr, "  ... in %s\n", path);
	free(out);
}

static void walk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = xasprintf("%s/%s", dir, e->d_name);
		struct stat st;
		const char *ext = strrchr(e->d_name, '.');
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			walk(p);
		} else if (S_ISREG(st.st_mode) &&
			   !(ext && (!strcmp(ext, ".json") || !strcmp(ext, ".xml") ||
				     !strcmp(ext, ".tsv") || !strcmp(ext, ".md") ||
				     !strcmp(ext, ".dns")))) {
			size_t n;
			char *raw = read_file_all(p, &n);
			if (raw) {
				check_message(p, raw, n);
				corpus_files++;
				free(raw);
			}
		}
		free(p);
	}
	closedir(d);
}

int main(void)
{
	setup();
	test_post_basic();
	test_post_bytes_kept();
	test_post_odd_shapes();
	test_post_settings();
	test_recipient_head();
	test_facts();
	test_subject();
	test_notice();

	const char *corpus = getenv("DIALOGUE_CORPUS");
	struct stat st;
	if (corpus && stat(corpus, &st) == 0) {
		walk(corpus);
		fprintf(stderr, "corpus: %d messages\n", corpus_files);
		CHECK(corpus_files > 100);
	} else {
		fprintf(stderr, "corpus not found: skipping that part\n");
	}
	return test_result();
}
