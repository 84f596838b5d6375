#include "processor.h"

#include <stdlib.h>

#include "archive.h"
#include "util.h"

/* Messages per run: large enough to amortise the commit, small enough to
 * return to the network quickly. */
#define PROCESS_BATCH 64

struct processor {
	struct store *st;
	const struct config *cfg;
	const struct templates *tmpl;
	struct event *ev;
	struct event *retry_ev;
	void (*on_queued)(void *);
	void *on_queued_arg;
	struct intake *intake;
	int64_t start_id; /* the last message stored when the daemon started */
};

static void processor_run(evutil_socket_t fd, short what, void *arg)
{
	struct processor *p = arg;
	size_t queued = 0;
	int n = archive_process(p->st, p->cfg, p->tmpl,
				intake_acknowledged(p->intake, p->start_id), PROCESS_BATCH,
				&queued);
	if (queued && p->on_queued)
		p->on_queued(p->on_queued_arg);
	if (n < 0) {
		/* Busy or failing database: try again a little later. */
		log_warn("processor: archive run failed (%d), retrying in 1s", n);
		struct timeval tv = {1, 0};
		evtimer_add(p->retry_ev, &tv);
		return;
	}
	if (n > 0)
		processor_kick(p); /* more may be waiting */
}

struct processor *processor_new(struct event_base *base, struct store *st, struct intake *in,
				int priority, void (*on_queued)(void *arg), void *arg)
{
	struct processor *p = xcalloc(1, sizeof *p);
	p->st = st;
	p->intake = in;
	if (store_last_message_id(st, &p->start_id) != STORE_OK)
		p->start_id = INT64_MAX; /* then no cap: process what is there */
	p->on_queued = on_queued;
	p->on_queued_arg = arg;
	/* A timer, not event_active(): it fires after the next poll, when the
	 * sockets whose replies (250) were just queued have been written, so a
	 * parser crash cannot swallow an acknowledgement already earned. */
	p->ev = evtimer_new(base, processor_run, p);
	p->retry_ev = evtimer_new(base, processor_run, p);
	if (!p->ev || !p->retry_ev) {
		log_err("processor: cannot create events");
		abort();
	}
	event_priority_set(p->ev, priority);
	return p;
}

void processor_set_config(struct processor *p, const struct config *cfg,
			  const struct templates *tmpl)
{
	p->cfg = cfg;
	p->tmpl = tmpl;
}

void processor_kick(void *arg)
{
	struct processor *p = arg;
	static const struct timeval now = {0, 0};
	if (!evtimer_pending(p->ev, NULL))
		evtimer_add(p->ev, &now);
}

void processor_free(struct processor *p)
{
	if (!p)
		return;
	event_free(p->ev);
	event_free(p->retry_ev);
	free(p);
}

