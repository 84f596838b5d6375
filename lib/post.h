/* post: what happens to a post to a list once it is parsed — the policy
 * decision, and the rows that carry it out (archive and a copy queued for
 * every member, a held post, or a notice to the sender).
 *
 * Two steps. post_prepare() does everything that reads the message (header
 * facts, rewriting, the notice) and only reads the store: it runs while the
 * message is marked as "being parsed", so a crash in that code is blamed on
 * this message alone. post_apply() only writes rows, inside the caller's
 * transaction, so a post is distributed exactly once or not at all. */
#ifndef DIALOGUE_POST_H
#define DIALOGUE_POST_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "message.h"
#include "policy.h"
#include "store.h"

struct post_prep {
	const struct list_cfg *list;
	struct policy_decision decision;
	int unparsed;
	char *body; /* the copy for members (distribute), or the notice (reject) */
	size_t len;
};

/* Decide what to do with P (parsed as MI; UNPARSED for a poison message,
 * which is never read again: it is archived raw and held). */
int post_prepare(struct store *st, const struct config *cfg, const struct list_cfg *l,
		 const struct store_pending *p, const struct msg_info *mi, int unparsed,
		 struct post_prep *out);
/* Write what PREP decided. *queued gets the copies queued. */
int post_apply(struct store *st, const struct config *cfg, const struct store_pending *p,
	       const struct msg_info *mi, const struct post_prep *prep, size_t *queued);
void post_prep_clear(struct post_prep *prep);

/* The pieces of a distribution, shared with moderation (an approved held
 * post goes out exactly as if it had been distributed at once). Each
 * writes in the caller's transaction. */

/* Archive stored message RAW_ID (parsed as MI; UNPARSED: a poison message,
 * archived raw) in L, unless L's archive is none. An entry already there
 * for (L, RAW_ID) is kept. */
int post_archive(struct store *st, const struct list_cfg *l, int64_t raw_id, int64_t received,
		 const struct msg_info *mi, int unparsed);
/* Queue BODY (rewrite_post's copy of stored message RAW_ID) from
 * L-bounces@D for every active member of L with delivery=each, with their
 * one-click unsubscribe token (made on first use). *queued gets how many. */
int post_queue_copies(struct store *st, const struct config *cfg, const struct list_cfg *l,
		      int64_t raw_id, const char *body, size_t len, size_t *queued);
/* Distribute stored message RAW_ID (RAW[0..len), received RECEIVED) to L
 * now: parse it, archive it and queue the rewritten copy for the members.
 * UNPARSED: a poison message, never parsed again (archived when it was
 * held); its copy is rewritten from the raw bytes alone. */
int post_distribute(struct store *st, const struct config *cfg, const struct list_cfg *l,
		    int64_t raw_id, int64_t received, const char *raw, size_t len, int unparsed,
		    size_t *queued);

#endif
