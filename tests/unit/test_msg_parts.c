/* Unit tests for msg_parts.c: attachments of hand-made messages, and a
 * sweep over the real-world corpus ($DIALOGUE_CORPUS). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "message.h"
#include "msg_parts.h"
#include "testutil.h"
#include "util.h"

/* LF text to CRLF, to run each case both ways. */
static char *crlf(const char *s, size_t *len)
{
	struct sbuf b = {0};
	for (; *s; s++) {
		if (*s == '\n')
			sbuf_addc(&b, '\r');
		sbuf_addc(&b, *s);
	}
	*len = b.len;
	return sbuf_detach(&b);
}

struct want {
	const char *filename;
	const char *type;
	const char *data;
	size_t size;
};

/* MSG has exactly the attachments W[0..n), in both line-end forms (sizes
 * are checked only for the LF form when DATA holds line breaks). */
static void expect(const char *what, const char *msg, const struct want *w, size_t n)
{
	for (int form = 0; form < 2; form++) {
		size_t len = strlen(msg);
		char *raw = form ? crlf(msg, &len) : xstrdup(msg);
		struct msg_part *p = NULL;
		size_t np = 99;

		CHECK_INT(msg_parts_list(raw, len, &p, &np), 0);
		if (np != n)
			fprintf(stderr, "%s (%s): %zu parts, want %zu\n", what, form ? "CRLF" : "LF",
				np, n);
		CHECK_INT(np, n);
		for (size_t i = 0; i < n && i < np; i++) {
			CHECK_STR(p[i].filename, w[i].filename);
			CHECK_STR(p[i].content_type, w[i].type);
			char *data = NULL;
			size_t dlen = 0;
			struct msg_part info;
			CHECK_INT(msg_parts_get(raw, len, i + 1, &data, &dlen, &info), 0);
			CHECK_INT(dlen, p[i].size);
			CHECK_STR(info.filename, p[i].filename);
			CHECK_STR(info.content_type, p[i].content_type);
			CHECK_INT(info.size, dlen);
			int has_nl = w[i].data && memchr(w[i].data, '\n', w[i].size) != NULL;
			if (w[i].data && (!form || !has_nl)) {
				CHECK_INT(dlen, w[i].size);
				CHECK(dlen == w[i].size && memcmp(data, w[i].data, dlen) == 0);
			}
			free(data);
			msg_part_clear(&info);
		}
		/* No attachment 0 or n+1; nothing to free then, but freeing is safe. */
		char *data = (char *)"x";
		size_t dlen = 7;
		struct msg_part info = {(char *)"junk", (char *)"junk", 3};
		CHECK_INT(msg_parts_get(raw, len, 0, &data, &dlen, &info), -1);
		CHECK(data == NULL && dlen == 0 && info.filename == NULL);
		msg_part_clear(&info);
		CHECK_INT(msg_parts_get(raw, len, np + 1, &data, &dlen, &info), -1);
		msg_part_clear(&info);
		msg_parts_free(p, np);
		free(raw);
	}
}

#define EXPECT(what, msg, ...)                                                     \
	do {                                                                       \
		static const struct want w_[] = {__VA_ARGS__};                    \
		expect(what, msg, w_, sizeof w_ / sizeof w_[0]);                   \
	} while (0)
#define EXPECT_NONE(what, msg) expect(what, msg, NULL, 0)

#define HDR "From: Ann <ann@example.org>\nSubject: parts\nMessage-ID: <p@example.org>\n" \
	    "MIME-Version: 1.0\n"

static void test_basic(void)
{
	EXPECT_NONE("plain", HDR "\nJust text.\n");
	EXPECT_NONE("empty", "");
	EXPECT_NONE("header only", HDR);

	EXPECT("rfc2231 base64",
	       HDR "Content-Type: multipart/mixed; boundary=\"b1\"\n\n"
		   "preamble\n--b1\nContent-Type: text/plain; charset=utf-8\n\nThe body.\n"
		   "--b1\nContent-Type: application/pdf\n"
		   "Content-Disposition: attachment;\n filename*=UTF-8''%E2%82%AC%20rates.pdf\n"
		   "Content-Transfer-Encoding: base64\n\nSGVs\nbG8sIFBERiEK\n--b1--\nepilogue\n",
	       {"\xE2\x82\xAC rates.pdf", "application/pdf", "Hello, PDF!\n", 12});

	EXPECT("rfc2231 continuations, latin-1",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
		   "Content-Type: Application/Octet-Stream\n"
		   "Content-Disposition: attachment; filename*0*=iso-8859-1'fr'caf%E9%20;\n"
		   " filename*2=\".txt\"; filename*1=\"menu\"; filename=\"fallback.txt\"\n\n"
		   "bytes\n--b--\n",
	       {"caf\xC3\xA9 menu.txt", "application/octet-stream", "bytes", 5});

	EXPECT("rfc2047 filename",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
		   "Content-Type: image/png; name=\"=?UTF-8?B?w6l0w6kucG5n?=\"\n"
		   "Content-Transfer-Encoding: base64\n\niVBORw0KGgoAAQ==\n--b--\n",
	       {"\xC3\xA9t\xC3\xA9.png", "image/png", "\x89PNG\r\n\x1a\n\x00\x01", 10});

	EXPECT("path traversal",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
		   "Content-Type: text/plain\n"
		   "Content-Disposition: attachment; filename=\"../../etc/passwd\"\n\n"
		   "root:x:0:0\n--b\n"
		   "Content-Type: application/x-msdownload\n"
		   "Content-Disposition: attachment; filename=\"C:\\\\Windows\\\\evil.exe\"\n\n"
		   "MZ\n--b\n"
		   "Content-Type: application/octet-stream; name=\"..\"\n\nx\n"
		   "--b\nContent-Type: application/octet-stream; name=my report.doc ; x=y\n\nd\n--b--\n",
	       {"passwd", "text/plain", "root:x:0:0", 10},
	       {"evil.exe", "application/x-msdownload", "MZ", 2},
	       {"attachment-3", "application/octet-stream", "x", 1},
	       {"my report.doc", "application/octet-stream", "d", 1});

	EXPECT("hostile names",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
		   "Content-Type: application/octet-stream;\n"
		   " name*=utf-8''a%0D%0AX-Evil%3A%201%00%22%3Cb%3E%E2%80%AEtxt.exe\n\n"
		   "1\n--b\nContent-Disposition: attachment; filename=\"  .hidden. \"\n\n2\n"
		   "--b\nContent-Disposition: attachment; filename=\"=?utf-8?q?=01=02?=\"\n\n3\n"
		   "--b--\n",
	       {"aX-Evil_ 1__b_txt.exe", "application/octet-stream", "1", 1},
	       {"hidden", "text/plain", "2", 1},
	       {"attachment-3", "text/plain", "3", 1});

	EXPECT("nested message/rfc822 and no filename",
	       HDR "Content-Type: multipart/mixed; boundary=outer\n\n"
		   "--outer\nContent-Type: text/plain\n\nSee the forward.\n"
		   "--outer\nContent-Type: message/rfc822\n\n"
		   "From: bob@example.net\nSubject: inner\n"
		   "Content-Type: multipart/mixed; boundary=inner\n\n"
		   "--inner\n\ninner text\n--inner\nContent-Type: image/gif\n\nGIF\n--inner--\n"
		   "--outer\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
		   "iVBORw0KGgoAAQ==\n--outer--\n",
	       {"attachment-1", "message/rfc822", NULL, 0},
	       {"attachment-2", "image/png", "\x89PNG\r\n\x1a\n\x00\x01", 10});

	EXPECT("quoted-printable, text with a name, inline text",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n"
		   "--b\nContent-Type: text/plain; charset=us-ascii\n\nfooter, not an attachment\n"
		   "--b\nContent-Type: text/x-diff\n\n--- a\n+++ b\n"
		   "--b\nContent-Type: text/plain; name=notes.txt\n"
		   "Content-Transfer-Encoding: quoted-printable\n\n"
		   "a=3Db=\nc =E2=82=AC\n--b--\n",
	       {"attachment-1", "text/x-diff", "--- a\n+++ b", 11},
	       {"notes.txt", "text/plain", "a=bc \xE2\x82\xAC", 8});
}

static void test_body_agreement(void)
{
	/* The body shown is never an attachment, whatever it is marked. */
	EXPECT_NONE("top-level text marked attachment",
		    HDR "Content-Type: text/plain\n"
			"Content-Disposition: attachment; filename=body.txt\n\nthe text\n");
	EXPECT("top-level pdf",
	       HDR "Content-Type: application/pdf; name=\"a.pdf\"\n"
		   "Content-Transfer-Encoding: base64\n\nSGVsbG8sIFBERiEK\n",
	       {"a.pdf", "application/pdf", "Hello, PDF!\n", 12});
	/* Text with a filename: the first one is the body, the second is not. */
	EXPECT("named text parts",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n"
		   "--b\nContent-Type: text/plain; name=one.txt\n"
		   "Content-Disposition: inline; filename=one.txt\n\nfirst\n"
		   "--b\nContent-Type: text/plain; name=two.txt\n"
		   "Content-Disposition: inline; filename=two.txt\n\nsecond\n--b--\n",
	       {"two.txt", "text/plain", "second", 6});
	/* Empty text/plain: the HTML is the body and not listed. */
	EXPECT_NONE("html body",
		    HDR "Content-Type: multipart/alternative; boundary=b\n\n"
			"--b\nContent-Type: text/plain\n\n \n"
			"--b\nContent-Type: text/html\n\n<p>hi</p>\n--b--\n");
	/* Text marked attachment is never the body. */
	EXPECT("text attachment first",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n"
		   "--b\nContent-Type: text/plain\nContent-Disposition: attachment\n\nlog\n"
		   "--b\nContent-Type: text/plain\n\nthe body\n--b--\n",
	       {"attachment-1", "text/plain", "log", 3});
	/* A forward with no words of its own: the body comes from inside the
	 * enclosed message, which is still listed whole. */
	EXPECT("forward only",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n"
		   "--b\nContent-Type: message/rfc822\n\nSubject: fw\n\nforwarded text\n--b--\n",
	       {"attachment-1", "message/rfc822", "Subject: fw\n\nforwarded text", 27});
	/* A top-level message/rfc822 is looked into. */
	EXPECT("top-level message/rfc822",
	       HDR "Content-Type: message/rfc822\n\nSubject: in\n"
		   "Content-Type: multipart/mixed; boundary=b\n\n"
		   "--b\n\ntext\n--b\nContent-Type: audio/ogg\n\nOgg\n--b--\n",
	       {"attachment-1", "audio/ogg", "Ogg", 3});
	/* Digest entries without a type are messages. */
	EXPECT("digest",
	       HDR "Content-Type: multipart/digest; boundary=d\n\n"
		   "--d\n\nSubject: one\n\n1\n--d\n\nSubject: two\n\n2\n--d--\n",
	       {"attachment-1", "message/rfc822", "Subject: one\n\n1", 15},
	       {"attachment-2", "message/rfc822", "Subject: two\n\n2", 15});

	/* And msg_parse() shows the text that was left out. */
	const char *m = HDR "Content-Type: multipart/mixed; boundary=b\n\n"
			    "--b\nContent-Type: text/plain; name=one.txt\n\nfirst\n"
			    "--b\nContent-Type: text/plain; name=two.txt\n\nsecond\n--b--\n";
	struct msg_info mi;
	msg_parse(m, strlen(m), "example.org", &mi);
	CHECK_STR(mi.body_text, "first");
	msg_info_free(&mi);
}

static void test_broken(void)
{
	EXPECT("no closing delimiter",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
		   "Content-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\n"
		   "UEsD\nBAo=\n",
	       {"a.zip", "application/zip", "PK\x03\x04\x0a", 5});
	EXPECT_NONE("no delimiter at all",
		    HDR "Content-Type: multipart/mixed; boundary=b\n\njust text\n");
	EXPECT_NONE("no boundary", HDR "Content-Type: multipart/mixed\n\njust text\n");
	EXPECT("bad base64",
	       HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
		   "Content-Type: image/gif\nContent-Transfer-Encoding: base64\n\n"
		   "!!SGV*sbG8=\nSGk=\n--b--\n",
	       {"attachment-1", "image/gif", "HelloHi", 7});
	/* An unreadable Content-Type makes the part text, as for msg_parse(). */
	EXPECT_NONE("bad type",
		    HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
			"Content-Type: image/\n\nx\n--b--\n");
	EXPECT("mbox From line, CR line ends",
	       "From ann@example.org Mon Nov 30 06:42:11 2026\rContent-Type: multipart/mixed;"
	       " boundary=b\r\r--b\r\rbody\r--b\rContent-Type: image/gif\r\rGIF89a\r--b--\r",
	       {"attachment-1", "image/gif", "GIF89a", 6});

	/* NUL bytes, a deep nest and many parts: bounded, no crash. */
	struct sbuf b = {0};
	sbuf_adds(&b, HDR "Content-Type: multipart/mixed; boundary=b0\n\n");
	for (int d = 1; d < 40; d++)
		sbuf_printf(&b, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", d - 1, d);
	sbuf_adds(&b, "--b39\nContent-Type: image/png\n\nPNG\n");
	struct msg_part *p;
	size_t n;
	msg_parts_list(b.buf, b.len, &p, &n);
	CHECK_INT(n, 0); /* deeper than MSG_PARTS_DEPTH */
	msg_parts_free(p, n);
	sbuf_free(&b);

	sbuf_adds(&b, HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n");
	for (int i = 0; i < 150; i++)
		sbuf_printf(&b, "--b\nContent-Type: image/png; name=\"p%d.png\"\n\nPNG%d\n", i, i);
	sbuf_adds(&b, "--b--\n");
	msg_parts_list(b.buf, b.len, &p, &n);
	CHECK_INT(n, MSG_PARTS_MAX);
	if (n == MSG_PARTS_MAX) {
		CHECK_STR(p[0].filename, "p0.png");
		CHECK_STR(p[99].filename, "p99.png");
		char *data;
		size_t dlen;
		struct msg_part info;
		CHECK_INT(msg_parts_get(b.buf, b.len, 100, &data, &dlen, &info), 0);
		CHECK(dlen == 5 && memcmp(data, "PNG99", 5) == 0);
		free(data);
		msg_part_clear(&info);
		CHECK_INT(msg_parts_get(b.buf, b.len, 101, &data, &dlen, &info), -1);
	}
	msg_parts_free(p, n);
	sbuf_free(&b);

	/* A name past 200 bytes keeps its extension and whole characters. */
	sbuf_adds(&b, HDR "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nbody\n--b\n"
			  "Content-Type: application/pdf; name=\"");
	for (int i = 0; i < 150; i++)
		sbuf_adds(&b, "\xC3\xA9");
	sbuf_adds(&b, ".pdf\"\n\n%PDF\n--b--\n");
	msg_parts_list(b.buf, b.len, &p, &n);
	CHECK_INT(n, 1);
	if (n == 1) {
		size_t l = strlen(p[0].filename);
		CHECK(l <= MSG_PARTS_NAME_MAX && l >= MSG_PARTS_NAME_MAX - 1);
		CHECK(strcmp(p[0].filename + l - 4, ".pdf") == 0);
		CHECK(strncmp(p[0].filename, "\xC3\xA9\xC3\xA9", 4) == 0);
		CHECK(((unsigned char)p[0].filename[l - 5] & 0xC0) == 0x80);
	}
	msg_parts_free(p, n);
	sbuf_free(&b);

	/* NUL bytes: dropped from the header, kept in the content. */
	static const char nul[] = "Subject: a\0b\nContent-Type: multipart/mixed; boundary=b\n\n"
				  "--b\n\nbody\0\n--b\nContent-Type: application/octet-stream\n\n"
				  "A\0B\n--b--\n";
	msg_parts_list(nul, sizeof nul - 1, &p, &n);
	CHECK_INT(n, 1);
	msg_parts_free(p, n);
	char *data;
	size_t dlen;
	struct msg_part info;
	CHECK_INT(msg_parts_get(nul, sizeof nul - 1, 1, &data, &dlen, &info), 0);
	CHECK(dlen == 3 && memcmp(data, "A\0B", 3) == 0);
	CHECK_INT(info.size, 3);
	free(data);
	msg_part_clear(&info);

	msg_parts_list(NULL, 0, &p, &n);
	CHECK(p == NULL && n == 0);
	msg_parts_free(NULL, 0);
}

/* ---- the corpus ---------------------------------------------------------- */

static const char *corpus;

struct sweep {
	int files, parts, named, with_parts;
};

static int clean_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MSG_PARTS_NAME_MAX || strchr(s, '/') || strchr(s, '\\') || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_sequence((const unsigned char *)s + i, n - i, NULL);
		if (k == 0 || (unsigned char)s[i] < 0x20 || s[i] == 0x7F || s[i] == '"')
			return 0;
		if (k == 2 && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] < 0xA0)
			return 0;
		i += k;
	}
	return 1;
}

static void sweep_file(struct sweep *s, const char *path)
{
	size_t len;
	char *raw = read_file_all(path, &len);
	struct msg_part *p = NULL;
	size_t n = 0;

	if (!raw) {
		fprintf(stderr, "FAIL: cannot read %s\n", path);
		test_failures++;
		return;
	}
	s->files++;
	CHECK_INT(msg_parts_list(raw, len, &p, &n), 0);
	CHECK(n <= MSG_PARTS_MAX);
	s->parts += (int)n;
	s->with_parts += n > 0;
	for (size_t i = 0; i < n; i++) {
		char *data = NULL;
		size_t dlen = 0;
		struct msg_part info;
		int ok = msg_parts_get(raw, len, i + 1, &data, &dlen, &info) == 0;
		if (!ok || dlen != p[i].size || strcmp(info.filename, p[i].filename) != 0)
			fprintf(stderr, "part %zu of %s differs\n", i + 1, path);
		CHECK(ok);
		CHECK_INT(dlen, p[i].size);
		CHECK(ok && strcmp(info.filename, p[i].filename) == 0);
		CHECK(ok && strcmp(info.content_type, p[i].content_type) == 0);
		if (!clean_name(p[i].filename))
			fprintf(stderr, "bad filename in %s: \"%s\"\n", path, p[i].filename);
		CHECK(clean_name(p[i].filename));
		CHECK(strchr(p[i].content_type, '/') != NULL);
		s->named += strncmp(p[i].filename, "attachment-", 11) != 0;
		free(data);
		msg_part_clear(&info);
	}
	char *data;
	size_t dlen;
	struct msg_part info;
	CHECK_INT(msg_parts_get(raw, len, n + 1, &data, &dlen, &info), -1);
	msg_parts_free(p, n);
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
		size_t pl = strlen(path);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			sweep_dir(s, path);
		else if (S_ISREG(st.st_mode) &&
			 !(pl > 5 && (strcmp(path + pl - 5, ".json") == 0 ||
				      strcmp(path + pl - 4, ".xml") == 0 ||
				      strcmp(path + pl - 4, ".tsv") == 0)))
			sweep_file(s, path);
		free(path);
	}
	closedir(d);
}

static void test_corpus(void)
{
	static const char *const dirs[] = {"mime", "malformed", "bounces", "dkim"};
	struct sweep s = {0};

	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		char *dir = xasprintf("%s/%s", corpus, dirs[i]);
		sweep_dir(&s, dir);
		free(dir);
	}
	fprintf(stderr, "corpus: %d files, %d with attachments, %d attachments (%d named)\n",
		s.files, s.with_parts, s.parts, s.named);
	/* ~390 messages; bounces carry their original as message/rfc822 or
	 * text/rfc822-headers, and mime/ has real attachments. */
	CHECK(s.files >= 300);
	CHECK(s.with_parts >= 100);
	CHECK(s.named >= 20);
}

int main(void)
{
	test_basic();
	test_body_agreement();
	test_broken();

	struct stat st;
	corpus = getenv("DIALOGUE_CORPUS");
	if (!corpus || stat(corpus, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "DIALOGUE_CORPUS not set or absent: corpus checks skipped\n");
		return test_failures ? test_result() : TEST_SKIP;
	}
	test_corpus();
	return test_result();
}
