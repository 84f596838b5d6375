/* moderation_int: what the parts of the moderation module share (the
 * decisions in moderation.c, the notices and poster mails of
 * moderation_notice.c, the replies by mail of moderation_mail.c). Not
 * part of its interface. */
#ifndef DIALOGUE_MODERATION_INT_H
#define DIALOGUE_MODERATION_INT_H

#include <stddef.h>
#include <stdint.h>

#include "moderation.h"

/* A duration as a person says it: "14 days", "1 hour", "90 seconds". */
void moderation_duration_text(int64_t secs, char *buf, size_t len);

/* Is ADDR (any case) one of L's moderators? */
int moderation_is_moderator(const struct list_cfg *l, const char *addr);

#endif
