#include "archive.h"

#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "moderation.h"
#include "post.h"
#include "subscribe.h"
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

/* What the archive keeps of a message the parser must not see again. */
static void poison_info(const struct store_pending *p, const struct config *cfg,
			struct msg_info *mi)
{
	memset(mi, 0, sizeof *mi);
	char *mid = msg_raw_header(p->raw, p->len, "Message-ID");
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
	mi->from_name = msg_raw_header(p->raw, p->len, "From");
	char *subject = msg_raw_header(p->raw, p->len, "Subject");
	mi->subject = xasprintf("(unparsed) %s", subject);
	free(subject);
	mi->date_header = msg_raw_header(p->raw, p->len, "Date");
	mi->in_reply_to = xstrdup("");
	mi->references = xstrdup("");
	mi->body_text = xstrdup("");
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

/* Prepared decisions of one batch: N_POSTS entries per message. */
struct batch {
	struct post_prep *preps;
	size_t n;
};

static void batch_add(struct batch *b, const struct post_prep *prep)
{
	b->preps = xrealloc(b->preps, (b->n + 1) * sizeof *b->preps);
	b->preps[b->n++] = *prep;
}

/* Read and decide message P: every post to a configured list goes through
 * post_prepare(), the subscription addresses (join, leave, confirm,
 * request, owner) through subscribe_prepare(), the moderation addresses
 * (approve, reject, withdraw) through moderation_mail_prepare(); bounces
 * stay for their feature. */
static int prepare_message(struct store *st, const struct config *cfg,
			   const struct store_pending *p, const struct msg_info *mi, int poison,
			   struct batch *b, struct subscribe_prep *sub, struct moderation_mail *mod)
{
	for (size_t j = 0; j < p->n_post_lists; j++) {
		const struct list_cfg *l = config_find_list(cfg, p->post_lists[j]);
		if (!l) {
			log_warn("archive: message %lld: list %s is no longer configured; dropped",
				 (long long)p->id, p->post_lists[j]);
			continue;
		}
		struct post_prep prep;
		int rc = post_prepare(st, cfg, l, p, mi, poison, &prep);
		if (rc != STORE_OK)
			return rc;
		batch_add(b, &prep);
	}
	subscribe_prepare(cfg, p, mi, poison, sub);
	moderation_mail_prepare(cfg, p, mi, poison, mod);
	return STORE_OK;
}

/* Write what was decided for message P (its posts PREPS[0..n), its
 * subscription requests SUB and its moderation replies MOD) and mark it
 * processed. */
static int apply_message(struct store *st, const struct config *cfg,
			 const struct templates *tmpl, const struct store_pending *p,
			 const struct msg_info *mi, const struct post_prep *preps, size_t n,
			 struct subscribe_prep *sub, struct moderation_mail *mod, size_t *queued)
{
	int poison = p->parse_attempts >= ARCHIVE_MAX_PARSE_ATTEMPTS;
	int rc = STORE_OK;
	for (size_t k = 0; rc == STORE_OK && k < n; k++) {
		size_t q = 0;
		rc = post_apply(st, cfg, p, mi, &preps[k], &q);
		*queued += q;
		log_info("post %lld to %s: %s%s%s (%zu cop%s queued)", (long long)p->id,
			 preps[k].list->name, policy_action_name(preps[k].decision.action),
			 preps[k].decision.reason ? ": " : "",
			 preps[k].decision.reason ? preps[k].decision.reason : "", q,
			 q == 1 ? "y" : "ies");
	}
	if (rc == STORE_OK) {
		size_t q = 0;
		rc = subscribe_apply(st, cfg, tmpl, p, sub, &q);
		*queued += q;
	}
	if (rc == STORE_OK) {
		size_t q = 0;
		rc = moderation_mail_apply(st, cfg, tmpl, p, mod, &q);
		*queued += q;
	}
	if (rc == STORE_OK)
		rc = store_message_done(st, p->id, poison);
	if (rc == STORE_OK)
		rc = store_subs_rcpts_done(st, p->id);
	if (rc == STORE_OK)
		rc = store_moderation_rcpts_done(st, p->id);
	return rc;
}

int archive_process(struct store *st, const struct config *cfg, const struct templates *tmpl,
		    int64_t upto, size_t max, size_t *queued)
{
	struct store_pending *p = NULL;
	size_t n = 0;
	*queued = 0;
	int rc = store_pending_fetch_upto(st, 1, max, upto, &p, &n);
	if (rc == STORE_OK && n == 0)
		rc = store_pending_fetch_upto(st, 0, max, upto, &p, &n);
	if (rc != STORE_OK || n == 0)
		return rc;

	struct msg_info *infos = xcalloc(n, sizeof *infos);
	struct subscribe_prep *subs = xcalloc(n, sizeof *subs);
	struct moderation_mail *mods = xcalloc(n, sizeof *mods);
	size_t *first_prep = xcalloc(n + 1, sizeof *first_prep);
	struct batch b = {0};
	size_t parsed = 0;
	for (size_t i = 0; i < n && rc == STORE_OK; i++) {
		int poison = p[i].parse_attempts >= ARCHIVE_MAX_PARSE_ATTEMPTS;
		first_prep[i] = b.n;
		if (poison) {
			poison_info(&p[i], cfg, &infos[i]);
			log_warn("archive: message %lld archived raw and held (the parser failed on "
				 "it before)",
				 (long long)p[i].id);
		} else {
			/* Only the message being read is blamed if we die now. */
			rc = store_parse_begin(st, p[i].id);
			if (rc != STORE_OK)
				break;
			fault_injection(&p[i]);
			msg_parse(p[i].raw, p[i].len, cfg->hostname, &infos[i]);
		}
		parsed++;
		rc = prepare_message(st, cfg, &p[i], &infos[i], poison, &b, &subs[i], &mods[i]);
		first_prep[i + 1] = b.n;
	}
	if (rc == STORE_OK) {
		/* One transaction for the batch: each post is archived and queued
		 * exactly once, each subscription request decided once, together
		 * with their 'done' marks. Later requests of the batch see the
		 * members, tokens and counters of earlier ones. */
		rc = store_begin(st);
		size_t q = 0;
		for (size_t i = 0; rc == STORE_OK && i < parsed; i++) {
			/* Applying renders mails from what the message says: a
			 * crash here is this message's too, not the last one read. */
			rc = store_parse_begin(st, p[i].id);
			if (rc == STORE_OK)
				rc = apply_message(st, cfg, tmpl, &p[i], &infos[i],
						   b.preps + first_prep[i],
						   first_prep[i + 1] - first_prep[i], &subs[i],
						   &mods[i], &q);
		}
		if (rc == STORE_OK)
			rc = store_commit(st);
		else
			store_rollback(st);
		if (rc == STORE_OK) {
			*queued = q;
			for (size_t i = 0; i < parsed; i++) {
				subscribe_log(&subs[i]);
				moderation_mail_log(&mods[i]);
			}
		}
	}
	/* Done, or failed and to be retried: either way nobody is to blame. */
	if (store_parse_end(st) != STORE_OK)
		log_warn("archive: cannot clear the parse marker: %s", store_errmsg(st));
	for (size_t k = 0; k < b.n; k++)
		post_prep_clear(&b.preps[k]);
	free(b.preps);
	for (size_t i = 0; i < n; i++)
		subscribe_prep_clear(&subs[i]);
	free(subs);
	for (size_t i = 0; i < n; i++)
		moderation_mail_clear(&mods[i]);
	free(mods);
	for (size_t i = 0; i < parsed; i++)
		msg_info_free(&infos[i]);
	free(infos);
	free(first_prep);
	store_pending_free(p, n);
	if (rc != STORE_OK)
		*queued = 0;
	return rc == STORE_OK ? (int)n : rc;
}
