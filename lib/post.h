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

#endif
