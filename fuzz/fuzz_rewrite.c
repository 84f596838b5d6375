/* libFuzzer harness for lib/rewrite*.c: any bytes in, as a message, a
 * subject and a token. Outputs must have CRLF line ends only, end with
 * CRLF, carry exactly one List-Id, and never let input bytes start a
 * header line of their own in what the list writes itself. The first byte
 * also picks the list settings, so every branch of the config is reached. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void crlf_only(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
			abort();
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			abort();
	}
}

/* A header value the list generated: line breaks only as folding. */
static void folded_only(const char *s)
{
	for (const char *p = strchr(s, '\r'); p; p = strchr(p + 1, '\r'))
		if (p[1] != '\n' || (p[2] != ' ' && p[2] != '\t'))
			abort();
	for (const char *p = strchr(s, '\n'); p; p = strchr(p + 1, '\n'))
		if (p == s || p[-1] != '\r')
			abort();
}

static size_t count_list_id(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] == '\r') /* the empty line: end of the header */
			break;
		if (n - i >= 8 && !ascii_strncasecmp(s + i, "List-Id:", 8))
			c++;
		const char *e = memchr(s + i, '\n', n - i);
		i = e ? (size_t)(e - s) + 1 : n;
	}
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct listen_addr http = {"127.0.0.1", "8080"};
	static const char *const titles[] = {"Dialogue on Internet Cooperation Evolution",
					     "Dialogue, \"quoted\" \\ list", "Caf\xc3\xa9 \xff", ""};
	static const char *const prefixes[] = {"[Dialogue]", "", "[Caf\xc3\xa9]", "a"};
	struct list_cfg l = {0};
	struct config cfg = {0};
	const char *raw = (const char *)data;
	unsigned flags = size ? data[0] : 0;

	l.name = "dialogue";
	l.address = "dialogue@lists.example.org";
	l.local = "dialogue";
	l.domain = "lists.example.org";
	l.title = (char *)titles[flags & 3];
	l.subject_prefix = (char *)prefixes[(flags >> 2) & 3];
	l.post_policy = (flags & 16) ? POST_ANNOUNCE : POST_MEMBERS;
	l.archive = (flags & 32) ? ARCHIVE_PRIVATE : ARCHIVE_PUBLIC;
	cfg.hostname = "lists.example.org";
	cfg.http_listen = &http;
	cfg.n_http_listen = (flags & 64) ? 0 : 1;
	cfg.base_url = (flags & 128) ? "https://lists.example.org/" : "http://127.0.0.1:8080";
	cfg.lists = &l;
	cfg.n_lists = 1;

	struct post_facts f = {0};
	char *from = NULL;
	rewrite_facts(raw, size, &l, &f, &from);
	if (!from || f.from_addr != from || strchr(from, '\r') || strchr(from, '\n'))
		abort();
	free(from);

	size_t n;
	char *out = rewrite_post(&cfg, &l, raw, size, (flags & 1) ? NULL : "id@fuzz", &n);
	crlf_only(out, n);
	if (n < 2 || memcmp(out + n - 2, "\r\n", 2) || count_list_id(out, n) != 1)
		abort();
	/* What we send out is a loop when it comes back. */
	rewrite_facts(out, n, &l, &f, &from);
	if (!f.has_own_list_id || !f.has_own_x_loop)
		abort();
	free(from);
	free(out);

	char *s = xstrndup(raw, size);
	char *subj = rewrite_subject(s, l.subject_prefix);
	if (l.subject_prefix[0]) {
		folded_only(subj);
		if (strlen(subj) > 64 * 1024)
			abort();
	}
	free(subj);

	char *head = rewrite_recipient_head(&cfg, &l, size > 40 ? s + size - 40 : s);
	crlf_only(head, strlen(head));
	if (strncmp(head, "List-Unsubscribe: ", 18) != 0)
		abort();
	free(head);

	out = rewrite_reject_notice(&cfg, &l, raw, size, s, s, &n);
	crlf_only(out, n);
	if (strlen(out) != n)
		abort();
	free(out);
	free(s);
	return 0;
}
