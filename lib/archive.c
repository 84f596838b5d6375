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

int archive_process(struct store *st, const struct config *cfg, size_t max)
{
	struct store_pending *p = NULL;
	size_t n = 0;
	int rc = store_pending_fetch(st, 1, max, &p, &n);
	if (rc == STORE_OK && n == 0)
		rc = store_pending_fetch(st, 0, 1, &p, &n);
	if (rc != STORE_OK || n == 0)
		return rc;

	int64_t *ids = xcalloc(n, sizeof *ids);
	for (size_t i = 0; i < n; i++)
		ids[i] = p[i].id;
	rc = store_bump_attempts(st, ids, n);
	if (rc != STORE_OK)
		goto out;

	struct msg_info *infos = xcalloc(n, sizeof *infos);
	size_t n_entries = 0;
	for (size_t i = 0; i < n; i++)
		n_entries += p[i].n_post_lists;
	struct store_archive_entry *entries = xcalloc(n_entries ? n_entries : 1, sizeof *entries);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int poison = p[i].parse_attempts >= ARCHIVE_MAX_PARSE_ATTEMPTS;
		if (poison) {
			/* Do not parse it again: keep it raw, with a stable id only. */
			msg_parse("", 0, cfg->hostname, &infos[i]);
			free(infos[i].message_id);
			infos[i].message_id = xasprintf("unparsed.%lld@%s", (long long)p[i].id,
							 cfg->hostname);
			free(infos[i].subject);
			infos[i].subject = xstrdup("(message could not be parsed)");
			log_warn("archive: message %lld crashed the parser %d times; archived raw",
				 (long long)p[i].id, p[i].parse_attempts);
		} else {
			fault_injection(&p[i]);
			msg_parse(p[i].raw, p[i].len, cfg->hostname, &infos[i]);
		}
		fill_entries(&p[i], &infos[i], poison, entries + k);
		k += p[i].n_post_lists;
	}
	rc = store_archive_commit(st, entries, k, ids, n);
	for (size_t i = 0; i < n; i++)
		msg_info_free(&infos[i]);
	free(infos);
	free(entries);
out:
	free(ids);
	store_pending_free(p, n);
	return rc == STORE_OK ? (int)n : rc;
}
