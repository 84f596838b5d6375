/* processor: runs archive_process() from the event loop after commits, at
 * a lower priority than network I/O so intake is never starved by it. */
#ifndef DIALOGUE_PROCESSOR_H
#define DIALOGUE_PROCESSOR_H

#include <event2/event.h>

#include "config.h"
#include "intake.h"
#include "store.h"
#include "template.h"

struct processor;

/* ON_QUEUED (may be NULL) runs after a run that queued copies for delivery. */
/* Messages are only read once their 250 is out (intake_acknowledged of
 * IN; those stored before the start are read at once). */
struct processor *processor_new(struct event_base *base, struct store *st, struct intake *in,
				int priority, void (*on_queued)(void *arg), void *arg);
/* Use CFG and TMPL (not owned; valid until the next call) from now on. */
void processor_set_config(struct processor *p, const struct config *cfg,
			  const struct templates *tmpl);
/* Schedule a run (cheap; many kicks before a run make one run). */
void processor_kick(void *p);
void processor_free(struct processor *p);

#endif
