/* housekeeping: dialogued's periodic sweep of the held queue. Every few
 * seconds it announces newly held posts (moderation_announce: the
 * moderators' notices, batched, and the posters' mails), and about once a
 * minute it expires posts held past their list's hold_expire
 * (moderation_expire_due). Both start with one indexed query, so an idle
 * sweep costs next to nothing. */
#ifndef DIALOGUE_HOUSEKEEPING_H
#define DIALOGUE_HOUSEKEEPING_H

#include <event2/event.h>

#include "config.h"
#include "store.h"
#include "template.h"

struct housekeeping;

/* Sweep ST from BASE's loop at PRIORITY; ON_QUEUED (may be NULL) runs
 * after a sweep that queued mail. Nothing happens before the first
 * housekeeping_set_config, which sweeps at once. */
struct housekeeping *housekeeping_new(struct event_base *base, struct store *st, int priority,
				      void (*on_queued)(void *arg), void *arg);
/* Use CFG and TMPL (not owned; valid until the next call) from now on, and
 * sweep soon, expiry included: a changed hold_expire applies at once. */
void housekeeping_set_config(struct housekeeping *h, const struct config *cfg,
			     const struct templates *tmpl);
void housekeeping_free(struct housekeeping *h);

#endif
