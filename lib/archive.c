#include "archive.h"

#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "util.h"

/* Test hook: abort() while parsing a message containing this marker, so
 * the test suite can prove a poison message is survived. */
static void fault_injection(const struct store_pending *p)
{
	const char *marker = getenv("DIALOGUE_FAULT_PARSE_CRASH");
	if (!marker || !*marker)
		return;
	size_t ml = strlen(marker);
	for (size_t i = 0; i + ml <= p->len; i++)
		if (!memcmp(p->raw + i, marker, ml))
			abort();
}

/* The value of header NAME in RAW without the MIME parser: the poison path
 * must not run the code that crashed. Unfolded, printable ASCII only
 * (anything else becomes '?'), at most 998 octets; "" when absent. */
static char *raw_header(const char *raw, size_t len, const char *name)
{
	size_t nl = strlen(name);
	struct sbuf b = {0};
	size_t i = 0;
	while (i < len) {
		size_t eol = i;
		while (eol < len && raw[eol] != '\n')
			eol++;
		size_t line_end = (eol > i && raw[eol - 1] == '\r') ? eol - 1 : eol;
		if (line_end == i)
			break; /* end of the header */
		if (line_end - i > nl && raw[i + nl] == ':' && !ascii_strncasecmp(raw + i, name, nl)) {
			size_t j = i + nl + 1;
			for (;;) {
				for (; j < line_end && b.len < 998; j++) {
					unsigned char c = (unsigned char)raw[j];
					sbuf_addc(&b, (c >= 0x20 && c < 0x7f) || c == '\t' ? (char)c : '?');
				}
				/* continuation lines start with white space */
				size_t next = eol + 1;
				if (next >= len || (raw[next] != ' ' && raw[next] != '\t'))
					break;
				eol = next;
				while (eol < len && raw[eol] != '\n')
					eol++;
				line_end = (eol > next && raw[eol - 1] == '\r') ? eol - 1 : eol;
				j = next;
			}
			break;
		}
		i = eol + 1;
	}
	char *v = sbuf_detach(&b);
	return str_trim(v);
}

/* What the archive keeps of a message the parser must not see again. */
static void poison_info(const struct store_pending *p, const struct config *cfg,
			struct msg_info *mi)
{
	memset(mi, 0, sizeof *mi);
	char *mid = raw_header(p->raw, p->len, "Message-ID");
	size_t n = strlen(mid);
	if (n > 2 && mid[0] == '<' && mid[n - 1] == '>' && strcspn(mid + 1, "<> ") == n - 2) {
		mi->message_id = xstrndup(mid + 1, n - 2);
		free(mid);
	} else {
		free(mid);
		mi->message_id = xasprintf("unparsed.%lld@%s", (long long)p->id, cfg->hostname);
		mi->message_id_added = 1;
	}
	mi->from_addr = xstrdup("");
	mi->from_name = raw_header(p->raw, p->len, "From");
	char *subject = raw_header(p->raw, p->len, "Subject");
	mi->subject = xasprintf("(unparsed) %s", subject);
	free(subject);
	mi->date_header = raw_header(p->raw, p->len, "Date");
	mi->in_reply_to = xstrdup("");
	mi->references = xstrdup("");
	mi->body_text = xstrdup("");
}

static void fill_entries(const struct store_pending *p, const struct msg_info *mi, int unparsed,
			 struct store_archive_entry *e)
{
	for (size_t j = 0; j < p->n_post_lists; j++) {
		e[j] = (struct store_archive_entry){
			.list = p->post_lists[j],
			.raw_id = p->id,
			.message_id = mi->message_id,
			.from_addr = mi->from_addr,
			.from_name = mi->from_name,
			.subject = mi->subject,
			.date_header = mi->date_header,
			.date = mi->date,
			.received = p->received,
			.in_reply_to = mi->in_reply_to,
			.references = mi->references,
			.body = mi->body_text,
			.unparsed = unparsed,
		};
	}
}

int archive_recover(struct store *st)
{
	int64_t blamed;
	int rc = store_parse_recover(st, &blamed);
	if (rc == STORE_OK && blamed)
		log_warn("archive: message %lld was being parsed when the daemon died; it will be "
			 "archived raw instead of parsed again",
			 (long long)blamed);
	return rc;
}

int archive_process(struct store *st, const struct config *cfg, size_t max)
{
	struct store_pending *p = NULL;
	size_t n = 0;
	int rc = store_pending_fetch(st, 1, max, &p, &n);
	if (rc == STORE_OK && n == 0)
		rc = store_pending_fetch(st, 0, max, &p, &n);
	if (rc != STORE_OK || n == 0)
		return rc;

	int64_t *ids = xcalloc(n, sizeof *ids);
	struct msg_info *infos = xcalloc(n, sizeof *infos);
	size_t n_entries = 0, k = 0;
	for (size_t i = 0; i < n; i++)
		n_entries += p[i].n_post_lists;
	struct store_archive_entry *entries = xcalloc(n_entries ? n_entries : 1, sizeof *entries);
	size_t parsed = 0;
	for (size_t i = 0; i < n; i++) {
		int poison = p[i].parse_attempts >= ARCHIVE_MAX_PARSE_ATTEMPTS;
		if (poison) {
			poison_info(&p[i], cfg, &infos[i]);
			log_warn("archive: message %lld archived raw (parser failed on it before)",
				 (long long)p[i].id);
		} else {
			/* Only the message being parsed is blamed if we die now. */
			rc = store_parse_begin(st, p[i].id);
			if (rc != STORE_OK)
				break;
			fault_injection(&p[i]);
			msg_parse(p[i].raw, p[i].len, cfg->hostname, &infos[i]);
		}
		ids[i] = p[i].id;
		parsed++;
		fill_entries(&p[i], &infos[i], poison, entries + k);
		k += p[i].n_post_lists;
	}
	if (rc == STORE_OK)
		rc = store_archive_commit(st, entries, k, ids, parsed);
	for (size_t i = 0; i < parsed; i++)
		msg_info_free(&infos[i]);
	free(infos);
	free(entries);
	free(ids);
	store_pending_free(p, n);
	return rc == STORE_OK ? (int)n : rc;
}
