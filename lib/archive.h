/* archive: turn committed raw messages into archived posts. Runs after the
 * commit, so a crash in the parser loses nothing; parse attempts are counted
 * first, so a message that crashes the parser is archived raw (flagged) once
 * it has used up its attempts instead of taking the daemon down forever. */
#ifndef DIALOGUE_ARCHIVE_H
#define DIALOGUE_ARCHIVE_H

#include <stddef.h>

#include "config.h"
#include "store.h"

#define ARCHIVE_MAX_PARSE_ATTEMPTS 3

/* Process up to MAX pending messages. Fresh messages go in batches; ones
 * that were already attempted (a crash happened while they were being
 * parsed) go one by one, so one poison message cannot blame its neighbours.
 * Returns the number processed (0 = nothing pending) or a STORE_E* < 0. */
int archive_process(struct store *st, const struct config *cfg, size_t max);

#endif
