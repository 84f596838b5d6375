/* Unit tests for lib/template.c: loading template files, rendering, and
 * composing complete RFC 5322 mails. Each composed mail is parsed back
 * here (header lines, RFC 2047 words, quoted-printable) so the checks are
 * on what a mail client would show, not on our own encoder's output. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "template.h"
#include "testutil.h"
#include "util.h"

#define TOKEN "Ab3dEf6hIj9kLm2nOp5q-_"
#define ANA "Ana Luc\xc3\xad" "a P\xc3\xa9rez"
#define URL "http://127.0.0.1:8080/confirm/" TOKEN

/* ---- a small mail parser ---- */

#define MAX_HDRS 32

struct mail {
	char *name[MAX_HDRS];
	char *value[MAX_HDRS]; /* unfolded; encoded words decoded */
	int n;
	char *body;            /* decoded, LF line ends */
	int qp;
	int ok;                /* CRLF everywhere, line limits kept */
};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int b64val(int c)
{
	const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = c ? strchr(a, c) : NULL;
	return p ? (int)(p - a) : -1;
}

/* RFC 2047: =?UTF-8?B?...?= words decoded, blanks between two words dropped. */
static char *decode_words(const char *s)
{
	struct sbuf b = {0};
	int after_word = 0;
	size_t word_end = 0;

	while (*s) {
		if (!strncmp(s, "=?UTF-8?B?", 10)) {
			const char *e = strstr(s + 10, "?=");
			unsigned acc = 0;
			int bits = 0;
			CHECK(e != NULL);
			if (!e)
				break;
			if (after_word) /* drop the blanks between two words */
				b.len = word_end;
			for (const char *p = s + 10; p < e; p++) {
				if (*p == '=')
					break;
				int v = b64val(*p);
				CHECK(v >= 0);
				acc = (acc << 6) | (unsigned)(v & 63);
				bits += 6;
				if (bits >= 8) {
					bits -= 8;
					sbuf_addc(&b, (char)((acc >> bits) & 0xff));
				}
			}
			s = e + 2;
			after_word = 1;
			word_end = b.len;
			continue;
		}
		if (*s != ' ')
			after_word = 0;
		sbuf_addc(&b, *s++);
	}
	return sbuf_detach(&b);
}

static char *decode_qp(const char *s, size_t n)
{
	struct sbuf b = {0};
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=' && i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
			i += 2;
		} else if (s[i] == '=' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			sbuf_addc(&b, (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
			i += 2;
		} else if (s[i] == '\r') {
			CHECK(s[i + 1] == '\n');
		} else {
			CHECK(s[i] != '=');
			sbuf_addc(&b, s[i]);
		}
	}
	return sbuf_detach(&b);
}

static void mail_free(struct mail *m)
{
	for (int i = 0; i < m->n; i++) {
		free(m->name[i]);
		free(m->value[i]);
	}
	free(m->body);
	memset(m, 0, sizeof(*m));
}

static const char *hdr(const struct mail *m, const char *name)
{
	for (int i = 0; i < m->n; i++)
		if (!ascii_strcasecmp(m->name[i], name))
			return m->value[i];
	return NULL;
}

static int utf8_ok(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_sequence((const unsigned char *)s + i, n - i, NULL);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

static int parse_mail(const char *raw, size_t len, struct mail *m)
{
	const char *sep = strstr(raw, "\r\n\r\n"), *p = raw;
	size_t line_start = 0;

	memset(m, 0, sizeof(*m));
	m->ok = 1;
	CHECK(sep != NULL);
	if (!sep)
		return -1;
	CHECK_INT(strlen(raw), len);
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			m->ok = 0; /* bare LF */
		if (raw[i] == '\r' && raw[i + 1] != '\n')
			m->ok = 0; /* bare CR */
		if (raw[i] == '\n') {
			if (i - line_start - 1 > 998)
				m->ok = 0;
			line_start = i + 1;
		}
		if ((unsigned char)raw[i] >= 0x80 || raw[i] == '\0')
			m->ok = 0; /* 8-bit: we promised 7bit or quoted-printable */
	}
	CHECK(len >= 2 && raw[len - 2] == '\r' && raw[len - 1] == '\n');
	while (p < sep + 2) {
		const char *e = strstr(p, "\r\n");
		if (*p == ' ' || *p == '\t') {
			CHECK(m->n > 0);
			if (!m->n)
				return -1;
			/* RFC 2047 6.2 wants lines with encoded words within 76 */
			if (strstr(p, "=?"))
				CHECK(e - p <= 76);
			char *v = xasprintf("%s%.*s", m->value[m->n - 1], (int)(e - p), p);
			free(m->value[m->n - 1]);
			m->value[m->n - 1] = v;
		} else {
			const char *c = memchr(p, ':', (size_t)(e - p));
			CHECK(c != NULL && m->n < MAX_HDRS);
			if (!c || m->n >= MAX_HDRS)
				return -1;
			for (const char *q = p; q < c; q++)
				CHECK(*q > 0x20 && *q < 0x7f);
			if (strstr(p, "=?") && strstr(p, "=?") < e)
				CHECK(e - p <= 76);
			m->name[m->n] = xstrndup(p, (size_t)(c - p));
			m->value[m->n++] = xstrndup(c + 1 + (c[1] == ' '), (size_t)(e - c - 1 - (c[1] == ' ')));
		}
		p = e + 2;
	}
	for (int i = 0; i < m->n; i++) {
		char *v = decode_words(m->value[i]);
		free(m->value[i]);
		m->value[i] = v;
		CHECK(utf8_ok(v));
	}
	const char *cte = hdr(m, "Content-Transfer-Encoding");
	const char *body = sep + 4;
	size_t blen = len - (size_t)(body - raw);
	m->qp = cte && !strcmp(cte, "quoted-printable");
	if (m->qp) {
		for (const char *q = body; *q;) {
			const char *e = strstr(q, "\r\n");
			CHECK(e != NULL && e - q <= 76);
			if (!e)
				break;
			CHECK(e == q || (e[-1] != ' ' && e[-1] != '\t'));
			q = e + 2;
		}
		m->body = decode_qp(body, blen);
	} else {
		CHECK(cte && !strcmp(cte, "7bit"));
		struct sbuf b = {0};
		for (size_t i = 0; i < blen; i++)
			if (body[i] != '\r')
				sbuf_addc(&b, body[i]);
		m->body = sbuf_detach(&b);
	}
	CHECK(utf8_ok(m->body));
	return 0;
}

/* ---- fixtures ---- */

static char *moderators[] = {"mod@example.org"};
static char *groups[] = {"technical", "civil-society", "business"};

static struct list_cfg dialogue = {
	.name = "dialogue", .address = "dialogue@lists.example.org", .local = "dialogue",
	.domain = "lists.example.org", .title = "Dialogue on Internet Cooperation Evolution",
	.description = "Open discussion on the evolution of Internet cooperation.",
	.subscribe_policy = SUB_CONFIRM, .post_policy = POST_MEMBERS, .archive = ARCHIVE_PUBLIC,
	.subject_prefix = "[Dialogue]", .moderators = moderators, .n_moderators = 1,
};

static struct list_cfg steering = {
	.name = "steering", .address = "steering@lists.example.org", .local = "steering",
	.domain = "lists.example.org", .title = "Dialogue \xe2\x80\x94 Coop\xc3\xa9ration",
	.subscribe_policy = SUB_CLOSED, .post_policy = POST_MEMBERS, .archive = ARCHIVE_PRIVATE,
	.subject_prefix = "[Steering]", .moderators = moderators, .n_moderators = 1,
	.max_members = 25, .stakeholder_groups = groups, .n_groups = 3, .term = 730 * 86400,
};

static struct config cfg = {
	.hostname = "lists.example.org", .base_url = "http://127.0.0.1:8080/",
};

static const struct template_var realistic[] = {
	{"token", TOKEN},
	{"confirm_url", URL},
	{"confirm_address", "dialogue-confirm+" TOKEN "@lists.example.org"},
	{"expires", "Thu, 3 Dec 2026 07:00:00 +0000"},
	{"address", "ana@example.net"},
	{"name", ANA},
	{"stakeholder", "civil-society"},
	{"reason", "The Steering Group is complete until the next term begins."},
	{"unsubscribe_url", "http://127.0.0.1:8080/dialogue/unsubscribe/" TOKEN},
	{"command", "subscrib"},
};
#define N_REALISTIC (sizeof(realistic) / sizeof(realistic[0]))

static char *compose(const struct templates *t, const struct list_cfg *l, const char *name,
		     const struct template_var *v, size_t n, struct mail *m)
{
	size_t len = 0;
	char *raw = template_compose(t, &cfg, l, name, v, n, "ana@example.net",
				     "dialogue-confirm+" TOKEN "@lists.example.org", NULL, &len);
	CHECK(raw != NULL);
	if (!raw)
		return NULL;
	CHECK(parse_mail(raw, len, m) == 0);
	CHECK(m->ok);
	return raw;
}

static void check_headers(const struct mail *m, const struct list_cfg *l)
{
	static const char *const allowed[] = {
		"Date", "From", "To", "Reply-To", "Subject", "Message-ID", "MIME-Version",
		"Content-Type", "Content-Transfer-Encoding", "Auto-Submitted", "X-Loop",
		"Precedence", NULL};
	for (int i = 0; i < m->n; i++) {
		int known = 0, times = 0;
		for (int k = 0; allowed[k]; k++)
			known |= !strcmp(m->name[i], allowed[k]);
		for (int k = 0; k < m->n; k++)
			times += !ascii_strcasecmp(m->name[i], m->name[k]);
		if (!known || times != 1)
			fprintf(stderr, "header %s (x%d)\n", m->name[i], times);
		CHECK(known && times == 1);
	}
	for (int k = 0; allowed[k]; k++)
		if (strcmp(allowed[k], "Reply-To"))
			CHECK(hdr(m, allowed[k]) != NULL);
	CHECK_STR(hdr(m, "To"), "ana@example.net");
	CHECK_STR(hdr(m, "MIME-Version"), "1.0");
	CHECK_STR(hdr(m, "Content-Type"), "text/plain; charset=utf-8");
	CHECK_STR(hdr(m, "Auto-Submitted"), "auto-replied");
	CHECK_STR(hdr(m, "Precedence"), "list");
	CHECK_STR(hdr(m, "X-Loop"), l->address);

	char *from = xasprintf("\"%s\" <%s-owner@%s>", l->title, l->local, l->domain);
	char *from_enc = xasprintf("%s <%s-owner@%s>", l->title, l->local, l->domain);
	const char *f = hdr(m, "From");
	CHECK(f && (!strcmp(f, from) || !strcmp(f, from_enc)));
	free(from);
	free(from_enc);

	const char *id = hdr(m, "Message-ID");
	CHECK(id && strlen(id) == strlen("<@lists.example.org>") + 32 && id[0] == '<' &&
	      strspn(id + 1, "0123456789abcdef") == 32 && !strcmp(id + 33, "@lists.example.org>"));
	const char *d = hdr(m, "Date"); /* "Thu, 3 Dec 2026 07:00:00 +0000" */
	CHECK(d && strlen(d) >= 30 && d[3] == ',' && !strcmp(d + strlen(d) - 6, " +0000"));
}

/* Body lines within 78 columns unless they carry a URL; no doubled blank
 * lines or leftovers of tags. */
static void check_body(const char *name, const char *body)
{
	CHECK(!strstr(body, "{{") && !strstr(body, "}}"));
	CHECK(!strstr(body, "\n\n\n"));
	CHECK(body[0] != '\n' && body[0] != '\0');
	CHECK(body[strlen(body) - 1] == '\n');
	for (const char *p = body; *p;) {
		const char *e = strchr(p, '\n');
		size_t cols = 0;
		for (const char *q = p; q < e; q++)
			cols += ((unsigned char)*q & 0xc0) != 0x80;
		char *line = xstrndup(p, (size_t)(e - p));
		if (cols > 78 && !strstr(line, "://")) {
			fprintf(stderr, "%s: long line: %s\n", name, line);
			CHECK(0);
		}
		free(line);
		p = e + 1;
	}
}

static void contains(const char *hay, const char *needle, const char *what)
{
	test_checks++;
	if (hay && strstr(hay, needle))
		return;
	fprintf(stderr, "FAIL: %s lacks \"%s\"\n", what, needle);
	test_failures++;
}

/* The same, with every run of blanks and newlines as one space: a
 * title may be wrapped. */
static void contains_words(const char *hay, const char *needle, const char *what)
{
	struct sbuf b = {0};
	for (const char *p = hay ? hay : ""; *p; p++)
		if (*p != ' ' && *p != '\n')
			sbuf_addc(&b, *p);
		else if (b.len && b.buf[b.len - 1] != ' ')
			sbuf_addc(&b, ' ');
	test_checks++;
	if (b.buf && strstr(b.buf, needle)) {
		sbuf_free(&b);
		return;
	}
	sbuf_free(&b);
	fprintf(stderr, "FAIL: %s lacks \"%s\" in:\n%s\n", what, needle, hay);
	test_failures++;
}

/* ---- tests ---- */

static void test_names(void)
{
	static const char *const want[] = {
		"confirm-join", "confirm-leave", "invite", "welcome", "goodbye", "refused", "help",
		"already-member", "not-member", "token-invalid", "pending-approval", "approved",
		"denied", "moderator-pending", "list-full", "moderator-notice", "post-held",
		"post-rejected", "post-expired", "post-withdrawn", "moderation-invalid", NULL};
	const char *const *n = template_names();
	int i;
	for (i = 0; want[i]; i++) {
		CHECK_STR(n[i], want[i]);
		CHECK(template_builtin(want[i]) != NULL);
	}
	CHECK(n[i] == NULL);
	CHECK(template_builtin("nope") == NULL);
}

/* $DIALOGUE_SRC (set by ctest), else this file's tree. */
static char *src_dir(void)
{
	const char *s = getenv("DIALOGUE_SRC");
	const char *f = __FILE__, *e = strstr(f, "/tests/unit/");
	if (s && *s)
		return xstrdup(s);
	return e ? xstrndup(f, (size_t)(e - f)) : xstrdup(".");
}

/* The shipped files are the built-in defaults, byte for byte. */
static void test_shipped_equal_builtin(void)
{
	char *src = src_dir();

	for (const char *const *n = template_names(); *n; n++) {
		char *path = xasprintf("%s/config/templates/%s.txt", src, *n);
		size_t len = 0;
		char *data = read_file_all(path, &len);
		if (!data)
			fprintf(stderr, "%s: %s\n", path, strerror(errno));
		CHECK(data != NULL);
		if (data && strcmp(data, template_builtin(*n))) {
			fprintf(stderr, "%s differs from the built-in default\n", path);
			CHECK(0);
		}
		free(data);
		free(path);
	}
	free(src);
}

static void test_every_template(const struct templates *t, const struct list_cfg *l)
{
	for (const char *const *n = template_names(); *n; n++) {
		struct mail m;
		char *raw = compose(t, l, *n, realistic, N_REALISTIC, &m);
		if (!raw)
			continue;
		check_headers(&m, l);
		check_body(*n, m.body);
		const char *subj = hdr(&m, "Subject");
		CHECK(subj && *subj);
		/* A non-ASCII title must travel encoded, and come back intact. */
		if (strstr(*n, "confirm") || !strcmp(*n, "invite"))
			contains(subj, "confirm " TOKEN, *n);
		if (strcmp(*n, "moderator-pending") && strcmp(*n, "help") && strcmp(*n, "list-full"))
			contains(subj, l->title, *n);
		int qp = l == &steering || !strcmp(*n, "welcome") || !strcmp(*n, "approved") ||
			 !strcmp(*n, "invite") || !strcmp(*n, "moderator-pending");
		if (m.qp != qp)
			fprintf(stderr, "%s: qp %d\n", *n, m.qp);
		CHECK(m.qp == qp);
		contains_words(m.body, l->title, *n);
		free(raw);
		mail_free(&m);
	}
}

static char *body_of(const struct templates *t, const struct list_cfg *l, const char *name,
		     const struct template_var *v, size_t n)
{
	struct mail m;
	char *raw = compose(t, l, name, v, n, &m);
	char *b = raw ? xstrdup(m.body) : xstrdup("");
	if (raw) {
		check_body(name, b);
		mail_free(&m);
	}
	free(raw);
	return b;
}

static void test_content(const struct templates *t)
{
	char *b = body_of(t, &dialogue, "confirm-join", realistic, N_REALISTIC);
	contains(b, "confirm " TOKEN, "confirm-join");
	contains(b, "dialogue-request@lists.example.org", "confirm-join");
	contains(b, URL, "confirm-join");
	contains(b, "Thu, 3 Dec 2026 07:00:00 +0000", "confirm-join");
	contains(b, "Reply to this message", "confirm-join");
	contains(b, "ignore", "confirm-join");
	free(b);

	/* Without a URL or an expiry, those sentences go, with their lines. */
	b = body_of(t, &dialogue, "confirm-join", realistic, 1);
	CHECK(!strstr(b, "open this page") && !strstr(b, "valid until"));
	free(b);

	b = body_of(t, &dialogue, "welcome", realistic, N_REALISTIC);
	contains(b, "    dialogue@lists.example.org\n", "welcome");
	contains(b, "dialogue-leave@lists.example.org", "welcome");
	contains(b, realistic[8].value, "welcome");
	contains(b, "dialogue-request@lists.example.org", "welcome");
	contains(b, "\"help\"", "welcome");
	contains(b, "http://127.0.0.1:8080/dialogue/", "welcome archive");
	contains(b, "Hello " ANA ",", "welcome");
	free(b);
	b = body_of(t, &steering, "welcome", NULL, 0);
	CHECK(!strstr(b, "archive") && !strstr(b, "open this page"));
	contains(b, "Hello,\n", "welcome without a name");
	free(b);

	b = body_of(t, &dialogue, "help", realistic, N_REALISTIC);
	contains(b, "    subscrib\n", "help");
	contains(b, "subscribe       join the list", "help");
	contains(b, "confirm CODE", "help");
	contains(b, "dialogue-join@lists.example.org", "help");
	contains(b, "dialogue-leave@lists.example.org", "help");
	contains(b, "dialogue-owner@lists.example.org", "help");
	free(b);
	b = body_of(t, &steering, "help", NULL, 0);
	CHECK(!strstr(b, "subscribe       join") && !strstr(b, "steering-join"));
	CHECK(!strstr(b, "did not understand"));
	contains(b, "Members of this list are added", "closed help");
	free(b);

	b = body_of(t, &steering, "moderator-pending", realistic, N_REALISTIC);
	contains(b, "dialoguectl members approve steering ana@example.net\n", "moderator-pending");
	contains(b, "dialoguectl members deny steering ana@example.net\n", "moderator-pending");
	contains(b, ANA, "moderator-pending");
	contains(b, "civil-society", "moderator-pending");
	contains(b, "25 members", "moderator-pending");
	free(b);
	/* a valid address can hold shell syntax: it is quoted for copying */
	struct template_var sh[] = {{"address", "a`reboot`'$x@example.org"}};
	b = body_of(t, &steering, "moderator-pending", sh, 1);
	contains(b, "approve steering 'a`reboot`'\\''$x@example.org'\n", "shell quoting");
	free(b);

	b = body_of(t, &steering, "list-full", realistic, N_REALISTIC);
	contains_words(b, "maximum of 25 members.", "list-full");
	free(b);

	b = body_of(t, &steering, "refused", realistic, N_REALISTIC);
	contains(b, realistic[7].value, "refused");
	contains(b, "steering-owner@lists.example.org", "refused");
	free(b);
	b = body_of(t, &steering, "refused", NULL, 0);
	contains(b, "does not take subscription requests", "refused, closed");
	free(b);
	b = body_of(t, &dialogue, "refused", NULL, 0);
	CHECK(!strstr(b, "does not take subscription requests"));
	free(b);

	struct template_var inv[] = {{"reason", "already used"}, {"token", TOKEN}};
	b = body_of(t, &dialogue, "token-invalid", inv, 2);
	contains(b, "(code " TOKEN "): already used.", "token-invalid");
	contains(b, "dialogue-join@lists.example.org", "token-invalid");
	free(b);
	b = body_of(t, &dialogue, "token-invalid", NULL, 0);
	contains_words(b, "confirmation for Dialogue on Internet Cooperation Evolution.",
		       "token-invalid");
	free(b);

	struct template_var den[] = {{"reason", "Please write to us first.\nSee you soon."}};
	b = body_of(t, &dialogue, "denied", den, 1);
	/* a multi-line value keeps the indent of the line it is on */
	contains(b, "    Please write to us first.\n    See you soon.\n", "denied");
	free(b);

	b = body_of(t, &dialogue, "goodbye", NULL, 0);
	contains(b, "dialogue-join@lists.example.org", "goodbye");
	free(b);
	b = body_of(t, &steering, "goodbye", NULL, 0);
	CHECK(!strstr(b, "steering-join"));
	free(b);
}

/* Nothing from a variable may start a header line. */
static void test_injection(const struct templates *t)
{
	static const char *const evil[] = {
		"x\r\nBcc: evil@x", "x\nBcc: evil@x", "x\rBcc: evil@x", "\r\n\r\nBcc: evil@x",
		"x\r\n Bcc: evil@x", "=?UTF-8?B?QmNjOiBldmlsQHgNCg==?=", ("x\x0b\x0c\x1b\x7f" "Bcc: evil@x"),
	};
	const char *names[] = {"token", "address", "name", "reason", "stakeholder", "command"};
	struct list_cfg bad = dialogue;

	bad.title = "Evil\r\nBcc: evil@x";
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		struct template_var v[6];
		for (int k = 0; k < 6; k++) {
			v[k].name = names[k];
			v[k].value = evil[i];
		}
		for (const char *const *n = template_names(); *n; n++) {
			for (int w = 0; w < 2; w++) {
				struct mail m;
				size_t len;
				char *raw = template_compose(t, &cfg, w ? &bad : &dialogue, *n, v, 6,
							     "ana@example.net", NULL, NULL, &len);
				CHECK(raw != NULL);
				if (!raw)
					continue;
				CHECK(parse_mail(raw, len, &m) == 0);
				CHECK(m.ok);
				CHECK(hdr(&m, "Bcc") == NULL);
				CHECK(m.n == 11);
				/* the encoded-word lookalike is itself encoded, not decoded
				 * into a header by a reader */
				CHECK(!strstr(hdr(&m, "Subject"), "\r") && !strstr(hdr(&m, "Subject"), "\n"));
				mail_free(&m);
				free(raw);
			}
		}
	}
	/* addresses are checked, not cleaned */
	size_t len;
	CHECK(!template_compose(t, &cfg, &dialogue, "help", NULL, 0, "a@b\r\nBcc: c@d", NULL,
				NULL, &len));
	CHECK(!template_compose(t, &cfg, &dialogue, "help", NULL, 0, "a@b", "x\nBcc: c@d", NULL,
				&len));
	CHECK(!template_compose(t, &cfg, &dialogue, "help", NULL, 0, "a@b", NULL, "not an address",
				&len));
	CHECK(!template_compose(t, &cfg, &dialogue, "no-such", NULL, 0, "a@b", NULL, NULL, &len));
	CHECK(!template_compose(t, &cfg, NULL, "help", NULL, 0, "a@b", NULL, NULL, &len));
	char *ok = template_compose(t, &cfg, &dialogue, "help", NULL, 0, "a@b", "", "x@y", &len);
	CHECK(ok && strstr(ok, "<x@y>\r\n") && !strstr(ok, "Reply-To"));
	free(ok);
}

/* A huge value is cut, never copied whole, and no line grows past 998. */
static void test_huge(const struct templates *t)
{
	size_t big = 8 * 1024 * 1024;
	char *v = xmalloc(big + 1);
	for (size_t i = 0; i < big; i++)
		v[i] = i % 7 ? (char)('a' + i % 26) : ' ';
	v[big] = '\0';
	char *longurl = xmalloc(100001);
	memcpy(longurl, "http://x/", 9);
	memset(longurl + 9, 'u', 100000 - 9);
	longurl[100000] = '\0';

	struct template_var vars[] = {{"reason", v}, {"name", v}, {"address", v},
				      {"confirm_url", longurl}, {"token", v}};
	for (const char *const *n = template_names(); *n; n++) {
		struct mail m;
		size_t len;
		char *raw = template_compose(t, &cfg, &steering, *n, vars, 5, "ana@example.net",
					     NULL, NULL, &len);
		CHECK(raw != NULL);
		if (!raw)
			continue;
		CHECK(len < 2 * 1024 * 1024);
		CHECK(parse_mail(raw, len, &m) == 0);
		CHECK(m.ok);
		mail_free(&m);
		free(raw);
	}
	/* an ASCII body with a line too long for 7bit goes quoted-printable,
	 * and the URL comes back whole (up to the value cap) */
	struct mail m;
	struct template_var u[] = {{"confirm_url", longurl}, {"token", TOKEN}};
	char *raw = compose(t, &dialogue, "confirm-join", u, 2, &m);
	CHECK(raw && m.qp);
	char *cut = xasprintf("\n        %.16384s [...]\n", longurl); /* the value cap */
	contains(m.body, cut, "qp url");
	free(cut);
	mail_free(&m);
	free(raw);

	/* a value that is not UTF-8 is repaired, in header and body */
	struct template_var bad[] = {{"address", "\xff\xfe\xc3"},
				     {"name", "A\xc0\xaf" "B\xed\xa0\x80"}};
	raw = compose(t, &dialogue, "moderator-pending", bad, 2, &m);
	contains(m.body, "A\xef\xbf\xbd\xef\xbf\xbd" "B", "repaired name");
	contains(hdr(&m, "Subject"), "\xef\xbf\xbd", "repaired subject");
	mail_free(&m);
	free(raw);
	free(longurl);
	free(v);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	fwrite(data, 1, len, f);
	fclose(f);
}

/* Write TEXT as DIR/welcome.txt and load DIR: the error, or "" when it loads. */
static void load_error(const char *dir, const char *text, size_t len, const char *want)
{
	char err[512] = "", *path = xasprintf("%s/welcome.txt", dir);

	if (len == (size_t)-1)
		len = strlen(text);
	write_file(path, text, len);
	struct templates *t = template_load(dir, err, sizeof(err));
	if (*want) {
		CHECK(t == NULL);
		char *full = xasprintf("%s/welcome.txt:%s", dir, want);
		if (strncmp(err, full, strlen(full))) {
			fprintf(stderr, "got \"%s\", want \"%s...\"\n", err, full);
			CHECK(0);
		}
		free(full);
	} else {
		if (!t)
			fprintf(stderr, "unexpected error: %s\n", err);
		CHECK(t != NULL);
	}
	template_free(t);
	unlink(path);
	free(path);
}

static void test_files(void)
{
	char err[512] = "";
	char dir[] = "/tmp/dialogue-tpl-XXXXXX";
	struct templates *t;

	t = template_load(NULL, err, sizeof(err));
	CHECK(t != NULL);
	template_free(t);
	t = template_load("/nonexistent/dialogue/templates", err, sizeof(err));
	CHECK(t != NULL);
	template_free(t);

	CHECK(mkdtemp(dir) != NULL);
	load_error(dir, "Hello\n\nbody\n", -1, "1: ");
	load_error(dir, "", -1, "1: ");
	load_error(dir, "Subject:   \n\nbody\n", -1, "1: ");
	load_error(dir, "Subject: hi\nbody\n", -1, "2: ");
	load_error(dir, "Subject: hi\n\nline 3\nline \xff 4\n", -1, "4: not valid UTF-8");
	load_error(dir, "Subject: hi\n\nl3\nl4\n\xc0\xaf\n", -1, "5: not valid UTF-8");
	load_error(dir, "Subject: hi\n\nl3\nnul\0here\n", 25, "4: control");
	load_error(dir, "Subject: hi\n\n{{#a}}\nx\n", -1, "3: {{#a}} is never closed");
	load_error(dir, "Subject: hi\n\nx\n{{/a}}\n", -1, "4: {{/a}} closes");
	load_error(dir, "Subject: hi {{#a}}\n\n{{/a}}\n", -1, "1: {{#a}} is never closed");
	load_error(dir, "Subject: hi\n\n{{#a}}{{#b}}{{/a}}{{/b}}\n", -1, "3: {{/a}} closes");
	/* fine: CRLF, a byte-order mark, "#" lines are text, unknown names */
	load_error(dir, "\xef\xbb\xbfSubject: hi\r\n\r\n# not a comment {{x}}\r\n", -1, "");
	load_error(dir, "subject: only a subject\n", -1, "");

	char *big = xmalloc(70000);
	memset(big, 'x', 70000);
	memcpy(big, "Subject: x\n\n", 12);
	load_error(dir, big, 70000, " larger than");
	free(big);

	/* a directory where a file should be is an error, not a default */
	char *sub = xasprintf("%s/help.txt", dir);
	CHECK(mkdir(sub, 0700) == 0);
	t = template_load(dir, err, sizeof(err));
	CHECK(t == NULL && strstr(err, "help.txt"));
	template_free(t);
	rmdir(sub);
	free(sub);

	/* a file replaces its default; the others stay */
	char *p = xasprintf("%s/goodbye.txt", dir);
	const char *bye = "Subject: Bye {{list}}\n\nBye from {{list_address}}{{nope}}.\n";
	write_file(p, bye, strlen(bye));
	t = template_load(dir, err, sizeof(err));
	CHECK(t != NULL);
	struct mail m;
	char *raw = t ? compose(t, &dialogue, "goodbye", NULL, 0, &m) : NULL;
	if (raw) {
		CHECK_STR(hdr(&m, "Subject"), "Bye dialogue");
		CHECK_STR(m.body, "Bye from dialogue@lists.example.org.\n");
		mail_free(&m);
		free(raw);
	}
	raw = t ? compose(t, &dialogue, "help", NULL, 0, &m) : NULL;
	if (raw) {
		CHECK_STR(hdr(&m, "Subject"), "Help for Dialogue on Internet Cooperation Evolution");
		mail_free(&m);
		free(raw);
	}
	template_free(t);
	unlink(p);
	free(p);
	rmdir(dir);

	/* the shipped directory loads and says what the defaults say */
	char *src = src_dir();
	char *shipped = xasprintf("%s/config/templates", src);
	struct templates *a = template_load(shipped, err, sizeof(err));
	struct templates *b = template_load(NULL, err, sizeof(err));
	CHECK(a && b);
	for (const char *const *n = template_names(); a && b && *n; n++) {
		struct mail ma, mb;
		char *ra = compose(a, &steering, *n, realistic, N_REALISTIC, &ma);
		char *rb = compose(b, &steering, *n, realistic, N_REALISTIC, &mb);
		if (ra && rb) {
			CHECK_STR(ma.body, mb.body);
			CHECK_STR(hdr(&ma, "Subject"), hdr(&mb, "Subject"));
		}
		if (ra)
			mail_free(&ma);
		if (rb)
			mail_free(&mb);
		free(ra);
		free(rb);
	}
	template_free(a);
	template_free(b);
	free(shipped);
	free(src);
}

static char *render(struct templates *t, const char *text, const struct template_var *v,
		    size_t n, char **subject)
{
	char err[256] = "";
	struct mail m;
	char *body = NULL;

	CHECK(template_set(t, "help", text, strlen(text), "test", err, sizeof(err)) == 0);
	char *raw = compose(t, &dialogue, "help", v, n, &m);
	if (raw) {
		body = xstrdup(m.body);
		if (subject)
			*subject = xstrdup(hdr(&m, "Subject"));
		mail_free(&m);
	}
	free(raw);
	return body ? body : xstrdup("");
}

static void test_render(void)
{
	char err[256];
	struct templates *t = template_load(NULL, err, sizeof(err));
	char *b, *s = NULL;
	struct template_var v[] = {{"a", "{{b}}"}, {"b", "B"}, {"e", ""}, {"list", "mine"}};

	/* values are never expanded again; unknown names are empty; the
	 * caller's variables come before the standard ones */
	b = render(t, "Subject: {{a}} {{zz}}\n\n[{{a}}][{{zz}}][{{ b }}][{{list}}]\n", v, 4, &s);
	CHECK_STR(b, "[{{b}}][][B][mine]\n");
	CHECK_STR(s, "{{b}}");
	free(b);
	free(s);

	/* sections, and lines holding only section tags vanish */
	b = render(t, "Subject: x{{#b}}y{{/b}}{{#e}}z{{/e}}\n\n1\n{{#e}}\nno\n{{/e}}\n"
		      "{{^e}}\nyes {{#b}}b{{/b}}{{^b}}n{{/b}}\n{{/e}}\n  {{#b}}  \nin\n{{/b}}\n2\n",
		   v, 4, &s);
	CHECK_STR(b, "1 yes b in 2\n");
	CHECK_STR(s, "xy");
	free(b);
	free(s);

	/* not tags: left as they are */
	b = render(t, "Subject: x\n\n{{ {{a b}} {{}} {{#}} {{b}\n{{{b}}}\n", v, 4, NULL);
	CHECK_STR(b, "{{ {{a b}} {{}} {{#}} {{b} {B}\n");
	free(b);

	/* wrapping at 78 columns, indent kept; URLs and long words left whole */
	b = render(t, "Subject: x\n\n  {{long}}\n{{url}}\n",
		   (struct template_var[]){{"long", "Bonjour \xc3\xa0 tous: aaaa bbbb cccc dddd "
						    "eeee ffff gggg hhhh iiii jjjj kkkk llll mmmm "
						    "nnnn oooo pppp qqqq rrrr ssss"},
					   {"url", "see https://example.org/a b c d e f g h i j k l m "
						   "n o p q r s t u v w x y z 1 2 3 4 5 6 7 8 9 0 1 2"}},
		   2, NULL);
	CHECK_STR(b, "  Bonjour \xc3\xa0 tous: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk "
		     "llll\n  mmmm nnnn oooo pppp qqqq rrrr ssss\n"
		     "see https://example.org/a b c d e f g h i j k l m n o p q r s t u v w x y z 1 "
		     "2 3 4 5 6 7 8 9 0 1 2\n");
	free(b);

	/* quoted-printable round trip of awkward bytes */
	b = render(t, "Subject: x\n\n{{v}}\n",
		   (struct template_var[]){{"v", "a=b \t\nFrom here\n.\nend with space \n"
						 "\xc3\xa9t\xc3\xa9 \xe2\x80\x94 caf\xc3\xa9"}},
		   1, NULL);
	CHECK_STR(b, "a=b \t\nFrom here\n.\nend with space \n\xc3\xa9t\xc3\xa9 \xe2\x80\x94 "
		     "caf\xc3\xa9\n");
	free(b);

	/* template_set refuses what template_load would, and keeps the old one */
	CHECK(template_set(t, "help", "nope", 4, "x.txt", err, sizeof(err)) < 0);
	CHECK(!strncmp(err, "x.txt:1: ", 9));
	CHECK(template_set(t, "nope", "Subject: x\n", 11, "x.txt", err, sizeof(err)) < 0);
	b = render(t, "Subject: still\n\nhere\n", NULL, 0, NULL);
	CHECK_STR(b, "here\n");
	free(b);
	template_free(t);
}

/* Deep or unbalanced sections in text that skipped the load check (the
 * fuzzer's way in) stay harmless. */
static void test_sections_unchecked(void)
{
	struct sbuf txt = {0};
	sbuf_adds(&txt, "Subject: x\n\n");
	for (int i = 0; i < 40; i++)
		sbuf_adds(&txt, "{{#b}}{{^e}}");
	sbuf_adds(&txt, "deep\n");
	char err[256];
	struct templates *t = template_load(NULL, err, sizeof(err));
	CHECK(template_set(t, "help", txt.buf, txt.len, "t", err, sizeof(err)) < 0);
	CHECK(strstr(err, "too deep") != NULL);
	template_free(t);
	sbuf_free(&txt);
}

int main(void)
{
	char err[256] = "";
	struct templates *t = template_load(NULL, err, sizeof(err));

	CHECK(t != NULL);
	if (!t)
		return test_result();
	test_names();
	test_shipped_equal_builtin();
	test_every_template(t, &dialogue);
	test_every_template(t, &steering);
	test_content(t);
	test_injection(t);
	test_huge(t);
	test_files();
	test_render();
	test_sections_unchecked();
	template_free(t);
	return test_result();
}
