/* mbox: the mboxrd format (RFC 4155 and the mboxrd convention of
 * qmail/mutt): each message starts with "From SENDER DATE" (DATE in
 * asctime form, UTC), every line matching ^>*From  gets one more '>', line
 * ends are LF, and each message is followed by an empty line. */
#ifndef DIALOGUE_MBOX_H
#define DIALOGUE_MBOX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

/* Append one message to OUT. SENDER is the envelope sender; NULL, empty,
 * or anything that cannot stand in a From line (whitespace, control bytes,
 * longer than 254 bytes) becomes MAILER-DAEMON. WHEN is the epoch time of
 * delivery. RAW may use CRLF, LF or mixed line ends and need not end with
 * one. */
void mbox_append(struct sbuf *out, const char *sender, int64_t when, const char *raw,
		 size_t len);

/* The same, written to F. Returns 0, or -1 when F reports an error. */
int mbox_write(FILE *f, const char *sender, int64_t when, const char *raw, size_t len);

/* The "From " separator line without its LF, e.g.
 * "From a@b.example Thu Nov 30 06:42:11 2026", into OUT. */
void mbox_from_line(struct sbuf *out, const char *sender, int64_t when);

#endif
