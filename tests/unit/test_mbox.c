/* Unit tests for lib/mbox.c: the From line, >From quoting, line ends, and
 * a round trip through an independent mboxrd reader over the corpus. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mbox.h"

static int failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                            \
		}                                                              \
	} while (0)

static void check_str(const char *got, const char *want, int line)
{
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: FAIL:\n--- got\n%s\n--- want\n%s\n---\n", __FILE__, line,
			got, want);
		failures++;
	}
}
#define CHECK_STR(got, want) check_str((got), (want), __LINE__)

/* 2026-11-30T06:42:11Z */
#define T1 1796020931LL

static char *one(const char *sender, int64_t when, const char *raw)
{
	struct sbuf b = {0};
	mbox_append(&b, sender, when, raw, strlen(raw));
	return sbuf_detach(&b);
}

static void test_from_line(void)
{
	struct sbuf b = {0};
	mbox_from_line(&b, "alice@example.org", T1);
	CHECK_STR(b.buf, "From alice@example.org Mon Nov 30 06:42:11 2026");
	sbuf_free(&b);

	/* asctime pads the day of month with a space. */
	mbox_from_line(&b, "a@b", 0);
	CHECK_STR(b.buf, "From a@b Thu Jan  1 00:00:00 1970");
	sbuf_free(&b);

	static const char *bad[] = {NULL, "", "has space@x", "tab\t@x", "nl\n@x", "del\x7f@x"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		mbox_from_line(&b, bad[i], 0);
		CHECK_STR(b.buf, "From MAILER-DAEMON Thu Jan  1 00:00:00 1970");
		sbuf_free(&b);
	}
	char longs[300];
	memset(longs, 'x', sizeof longs - 1);
	longs[sizeof longs - 1] = '\0';
	mbox_from_line(&b, longs, 0);
	CHECK_STR(b.buf, "From MAILER-DAEMON Thu Jan  1 00:00:00 1970");
	sbuf_free(&b);

	/* Negative times do not crash and fall back to the epoch. */
	mbox_from_line(&b, "a@b", -5);
	CHECK_STR(b.buf, "From a@b Thu Jan  1 00:00:00 1970");
	sbuf_free(&b);
}

static void test_quoting(void)
{
	char *got = one("a@b", 0,
			"Subject: x\r\n"
			"\r\n"
			"From here\r\n"
			">From there\r\n"
			">>>From far\r\n"
			"From\r\n"
			"From:not a separator\r\n"
			" From indented\r\n"
			"Fromage\r\n"
			">> From spaced\r\n"
			"from lower\r\n");
	CHECK_STR(got, "From a@b Thu Jan  1 00:00:00 1970\n"
		       "Subject: x\n"
		       "\n"
		       ">From here\n"
		       ">>From there\n"
		       ">>>>From far\n"
		       "From\n"
		       "From:not a separator\n"
		       " From indented\n"
		       "Fromage\n"
		       ">> From spaced\n"
		       "from lower\n"
		       "\n");
	free(got);
}

static void test_line_ends(void)
{
	char *got = one("a@b", 0, "A: 1\nB: 2\r\n\r\nbody\rwith cr\nlast");
	CHECK_STR(got, "From a@b Thu Jan  1 00:00:00 1970\n"
		       "A: 1\nB: 2\n\nbody\rwith cr\nlast\n\n");
	free(got);

	got = one("a@b", 0, "");
	CHECK_STR(got, "From a@b Thu Jan  1 00:00:00 1970\n\n");
	free(got);

	/* "From " on the very first line of the message is quoted too. */
	got = one("a@b", 0, "From x Thu Jan  1 00:00:00 1970\nA: b\n\nbody\n");
	CHECK_STR(got, "From a@b Thu Jan  1 00:00:00 1970\n"
		       ">From x Thu Jan  1 00:00:00 1970\nA: b\n\nbody\n\n");
	free(got);

	/* Embedded NUL bytes are kept. */
	struct sbuf b = {0};
	mbox_append(&b, "a@b", 0, "x\0y\n", 4);
	CHECK(b.len == 34 + 5 && memcmp(b.buf + 34, "x\0y\n\n", 5) == 0);
	sbuf_free(&b);
}

/* ---- an mboxrd reader written independently of the writer ---- */

struct parsed {
	char *msgs[8];
	size_t lens[8];
	size_t n;
};

static int is_sep(const char *p, size_t n)
{
	return n >= 5 && memcmp(p, "From ", 5) == 0;
}

static void parse_mbox(const char *s, size_t len, struct parsed *out)
{
	struct sbuf cur = {0};
	int in = 0;
	size_t i = 0;
	memset(out, 0, sizeof *out);
	while (i < len) {
		const char *nl = memchr(s + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - s) : len;
		const char *line = s + i;
		size_t n = end - i;
		if (is_sep(line, n)) {
			if (in && out->n < 8) {
				/* Drop the blank line that ends every message. */
				if (cur.len && cur.buf[cur.len - 1] == '\n')
					cur.len--;
				out->lens[out->n] = cur.len;
				out->msgs[out->n++] = sbuf_detach(&cur);
			}
			sbuf_free(&cur);
			in = 1;
		} else {
			size_t k = 0;
			while (k < n && line[k] == '>')
				k++;
			if (k && is_sep(line + k, n - k)) {
				line++;
				n--;
			}
			sbuf_add(&cur, line, n);
			sbuf_addc(&cur, '\n');
		}
		i = nl ? end + 1 : len;
	}
	if (in && out->n < 8) {
		if (cur.len && cur.buf[cur.len - 1] == '\n')
			cur.len--;
		out->lens[out->n] = cur.len;
		out->msgs[out->n++] = sbuf_detach(&cur);
	}
	sbuf_free(&cur);
}

/* What the reader should give back: CRLF -> LF, a final LF added. */
static char *normalise(const char *raw, size_t len, size_t *nlen)
{
	struct sbuf b = {0};
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '\r' && i + 1 < len && raw[i + 1] == '\n')
			continue;
		sbuf_addc(&b, raw[i]);
	}
	if (len && (!b.len || b.buf[b.len - 1] != '\n'))
		sbuf_addc(&b, '\n');
	*nlen = b.len;
	return sbuf_detach(&b);
}

static int roundtrip(const char *raw, size_t len)
{
	static const char tricky[] = "Subject: t\n\nFrom x\n>From y\n";
	struct sbuf box = {0};
	struct parsed p;
	int ok = 1;

	/* Sandwich the message between two others to catch separator bugs. */
	mbox_append(&box, "a@b", T1, tricky, sizeof tricky - 1);
	mbox_append(&box, "c@d", T1, raw, len);
	mbox_append(&box, NULL, T1, tricky, sizeof tricky - 1);
	parse_mbox(box.buf, box.len, &p);
	if (p.n != 3) {
		ok = 0;
		goto out;
	}
	size_t nlen;
	char *want = normalise(raw, len, &nlen);
	ok = p.lens[1] == nlen && memcmp(p.msgs[1], want, nlen) == 0;
	ok = ok && p.lens[0] == sizeof tricky - 1 && p.lens[2] == sizeof tricky - 1;
	free(want);
out:
	for (size_t i = 0; i < p.n; i++)
		free(p.msgs[i]);
	sbuf_free(&box);
	return ok;
}

static void test_roundtrip_small(void)
{
	static const char *cases[] = {
		"A: b\r\n\r\nFrom me\r\n", "A: b\n\n>>From me\nend", "\n\n\n", "From \n",
		"x", "A: b\n\nbody\n\n\n",
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		if (!roundtrip(cases[i], strlen(cases[i]))) {
			fprintf(stderr, "roundtrip failed for case %zu\n", i);
			failures++;
		}
	}
}

static int walk(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		struct stat sb;
		if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			walk(path, count);
		} else if (strstr(e->d_name, ".expected") == NULL && !strstr(e->d_name, ".tsv") &&
			   !strstr(e->d_name, ".md")) {
			size_t len;
			char *raw = read_file_all(path, &len);
			if (raw) {
				if (!roundtrip(raw, len)) {
					fprintf(stderr, "roundtrip failed: %s\n", path);
					failures++;
				}
				(*count)++;
				free(raw);
			}
		}
		free(path);
	}
	closedir(d);
	return 0;
}

static void test_corpus(void)
{
	const char *dir = getenv("DIALOGUE_CORPUS");
	int count = 0;
	if (!dir || walk(dir, &count) != 0) {
		printf("test_mbox: corpus not found, skipping the corpus round trip\n");
		return;
	}
	printf("test_mbox: %d corpus messages round-tripped\n", count);
	CHECK(count > 0);
}

int main(void)
{
	test_from_line();
	test_quoting();
	test_line_ends();
	test_roundtrip_small();
	test_corpus();
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("test_mbox: ok\n");
	return 0;
}
