/* archive: turn committed raw messages into archived posts. Runs after the
 * commit, so a crash in the parser loses nothing. Before each message is
 * parsed, the store records which one it is; after a crash that message
 * (and only it) is counted as having failed, and once it has used up its
 * attempts it is archived raw and flagged, never parsed again: a poison
 * message never takes the daemon down twice. */
#ifndef DIALOGUE_ARCHIVE_H
#define DIALOGUE_ARCHIVE_H

#include <stddef.h>

#include "config.h"
#include "store.h"
#include "template.h"

#define ARCHIVE_MAX_PARSE_ATTEMPTS 1

/* Once at start: blame the message whose parse the previous process did
 * not survive. */
int archive_recover(struct store *st);

/* Process up to MAX pending messages with ids up to UPTO (the last one
 * acknowledged; INT64_MAX: all) in one transaction (TMPL words the
 * mails it answers with; NULL: the built-in texts): parse, then for
 * each post apply the list's policy (archive and queue copies, hold, or
 * answer). Returns the number processed (0 = nothing pending) or a
 * STORE_E* < 0; *queued gets the number of copies queued for delivery. */
int archive_process(struct store *st, const struct config *cfg, const struct templates *tmpl,
		    int64_t upto, size_t max, size_t *queued);

#endif
