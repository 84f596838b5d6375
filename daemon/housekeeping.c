/* housekeeping: the sweep timer. Posts are held by the processor and
 * decided by the CLI or by mail; what this adds is time: a notice may wait
 * for the next minute, a post may outlive hold_expire. A timer rather than
 * a kick from the processor, because both depend on the clock, not on
 * arrivals. */
#include "housekeeping.h"

#include <stdlib.h>

#include "moderation.h"
#include "util.h"

/* How often the held queue is looked at: the first notice for a quiet
 * list goes out within MODERATION_NOTICE_SETTLE plus this. */
#define SWEEP_SECONDS 2
/* Expiry at least this often; more often when a list's hold_expire is
 * shorter, so a short one is kept about as well as a long one. */
#define EXPIRY_SECONDS 60
/* Posts expired per sweep: the rest follow at the next, so one sweep
 * never holds the loop for long. */
#define EXPIRY_BATCH 100

struct housekeeping {
	struct store *st;
	const struct config *cfg;
	const struct templates *tmpl;
	struct event *ev;      /* the periodic sweep */
	struct event *now_ev;  /* one sweep now, leaving the period as it is */
	int64_t next_expiry; /* 0: at the next sweep */
	void (*on_queued)(void *);
	void *on_queued_arg;
};

static int64_t expiry_interval(const struct config *cfg)
{
	int64_t every = EXPIRY_SECONDS;
	for (size_t i = 0; i < cfg->n_lists; i++)
		if (cfg->lists[i].hold_expire > 0 && cfg->lists[i].hold_expire < every)
			every = cfg->lists[i].hold_expire;
	return every < SWEEP_SECONDS ? SWEEP_SECONDS : every;
}

static void sweep(evutil_socket_t fd, short what, void *arg)
{
	struct housekeeping *h = arg;
	int64_t now = now_epoch();
	size_t queued = 0, expired = 0;
	if (!h->cfg)
		return;
	/* Failures are logged where they happen; the next sweep tries again. */
	moderation_announce(h->st, h->cfg, h->tmpl, now, &queued);
	if (now >= h->next_expiry) {
		int rc = moderation_expire_due(h->st, h->cfg, h->tmpl, NULL, now, EXPIRY_BATCH,
					       &expired, NULL, NULL);
		/* A full batch: more may be due, look again at the next sweep. */
		h->next_expiry = rc == STORE_OK && expired < EXPIRY_BATCH
					 ? now + expiry_interval(h->cfg)
					 : 0;
		if (expired)
			log_info("housekeeping: %zu held post(s) expired", expired);
	}
	if ((queued || expired) && h->on_queued)
		h->on_queued(h->on_queued_arg);
}

struct housekeeping *housekeeping_new(struct event_base *base, struct store *st, int priority,
				      void (*on_queued)(void *arg), void *arg)
{
	struct housekeeping *h = xcalloc(1, sizeof *h);
	h->st = st;
	h->on_queued = on_queued;
	h->on_queued_arg = arg;
	h->ev = event_new(base, -1, EV_PERSIST, sweep, h);
	h->now_ev = event_new(base, -1, 0, sweep, h);
	if (!h->ev || !h->now_ev) {
		log_err("housekeeping: cannot create the timer");
		abort();
	}
	event_priority_set(h->ev, priority);
	event_priority_set(h->now_ev, priority);
	struct timeval tv = {SWEEP_SECONDS, 0};
	event_add(h->ev, &tv);
	return h;
}

void housekeeping_set_config(struct housekeeping *h, const struct config *cfg,
			     const struct templates *tmpl)
{
	h->cfg = cfg;
	h->tmpl = tmpl;
	h->next_expiry = 0;
	event_active(h->now_ev, 0, 0);
}

void housekeeping_free(struct housekeeping *h)
{
	if (!h)
		return;
	event_free(h->ev);
	event_free(h->now_ev);
	free(h);
}
