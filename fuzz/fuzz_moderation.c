/* libFuzzer harness for what moderation by mail reads from the network and
 * passes on: moderation_reply_reason() over a reply's body, and
 * template_compose_attached() with an arbitrary held message attached.
 *
 * Input: the reply body, a NUL, then the bytes of the attached message.
 * The reason must be text of one line of the body (no control character,
 * not a quote, trimmed, at most 500 bytes); the notice must be one mail with CRLF line ends whose
 * boundary delimits exactly the text part and the attachment. */
#define _GNU_SOURCE /* memmem() */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "moderation.h"
#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct templates *tpl;

static void check_reason(const char *body, const char *r)
{
	size_t n = strlen(r);
	if (n > 500 || r[0] == '>' || r[0] == ' ' || (n && r[n - 1] == ' '))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)r[i] < 0x20 || r[i] == 0x7f)
			abort();
	/* text of the body, with its controls read as blanks */
	char *flat = strdup(body);
	if (!flat)
		return;
	for (char *q = flat; *q; q++)
		if (((unsigned char)*q < 0x20 && *q != '\n') || *q == 0x7f)
			*q = ' ';
	if (n && !strstr(flat, r))
		abort();
	free(flat);
}

static void check_notice(const char *m, size_t len)
{
	const char *b = strstr(m, "boundary=\"");
	if (!b)
		abort();
	b += 10;
	size_t bl = strcspn(b, "\"");
	char delim[80];
	if (bl + 2 >= sizeof delim)
		abort();
	delim[0] = delim[1] = '-';
	memcpy(delim + 2, b, bl);
	size_t dl = bl + 2;
	size_t count = 0;
	for (const char *p = m; (p = memmem(p, len - (size_t)(p - m), delim, dl)); p += dl)
		count++;
	if (count != 3) /* the text, the attachment, the close */
		abort();
	for (size_t i = 0; i < len; i++)
		if ((m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) ||
		    (m[i] == '\r' && (i + 1 == len || m[i + 1] != '\n')))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct list_cfg list = {.name = "dialogue", .address = "dialogue@lists.example.org",
				       .local = "dialogue", .domain = "lists.example.org",
				       .title = "Dialogue"};
	static struct config cfg = {.hostname = "lists.example.org"};
	char err[256];

	if (!tpl && !(tpl = template_load(NULL, err, sizeof(err))))
		abort();
	char *copy = malloc(size + 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	size_t body_len = strlen(copy);
	char *r = moderation_reply_reason(copy);
	check_reason(copy, r);

	const char *att_data = body_len < size ? copy + body_len + 1 : "";
	size_t att_len = body_len < size ? size - body_len - 1 : 0;
	struct template_attachment att = {att_data, att_len, r};
	const struct template_var vars[] = {{"posts", copy}, {"count", "1"}, {"single", "yes"}};
	size_t len = 0;
	char *m = template_compose_attached(tpl, &cfg, &list, "moderator-notice", vars, 3,
					    "mod@example.org", NULL, NULL, &att, 1, &len);
	if (!m)
		abort();
	check_notice(m, len);
	free(m);
	free(r);
	free(copy);
	return 0;
}
