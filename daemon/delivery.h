/* delivery: the outbound queue's scheduler. It claims due rows from the
 * store (marking them 'sending' in a transaction), turns them into SMTP
 * transactions for the relay (one per recipient with VERP, else up to
 * max_recipients), and records each recipient's outcome: sent, deferred
 * until the next retry, or failed. Outcomes are committed in batches, one
 * transaction per turn of the event loop, so a crash can at most repeat
 * the copies whose relay 250 was not yet recorded. */
#ifndef DIALOGUE_DELIVERY_H
#define DIALOGUE_DELIVERY_H

#include <event2/event.h>

#include "config.h"
#include "store.h"

struct delivery;

/* ST is the daemon's store connection (also used by the processor). Rows
 * a previous process left 'sending' are queued again. */
struct delivery *delivery_new(struct event_base *base, struct store *st);
/* Use CFG from now on; a changed relay, connections or tls setting
 * starts a new connection pool (the old one's work is retried). */
void delivery_set_config(struct delivery *d, const struct config *cfg);
/* New rows were queued: look now rather than at the next periodic check. */
void delivery_kick(void *d);
/* Graceful stop: claim nothing more, let transactions already talking to
 * the relay finish, queue the rest again, commit the outcomes; then DONE
 * runs (from the event loop). */
void delivery_drain(struct delivery *d, void (*done)(void *), void *arg);
/* Stop: unfinished transactions are abandoned and their rows queued again;
 * every outcome known is committed. */
void delivery_free(struct delivery *d);

#endif
