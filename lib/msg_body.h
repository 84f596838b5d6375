/* msg_body: the MIME walk of the message module. Internal: only message.c
 * and msg_body.c include it; everything else uses message.h. */
#ifndef DIALOGUE_MSG_BODY_H
#define DIALOGUE_MSG_BODY_H

#include <stddef.h>

#include <libetpan/libetpan.h>

#include "message.h"

/* Length of the header block at P: up to and including its empty line. */
size_t msg_header_len(const char *p, size_t n);
/* Blank out '(' nested too deep for libetpan's recursive comment parser. */
void msg_defuse_comments(char *s, size_t n);
/* The Content-Type of MF, or NULL when absent or unreadable. */
struct mailmime_content *msg_mime_content(struct mailmime_fields *mf);
/* The raw value of optional field NAME in F, or NULL. */
const char *msg_raw_field(struct mailimf_fields *f, const char *name);
/* Set m->body_text from BODY[0..len) (the message after its header), whose
 * MIME fields are MF (may be NULL) and raw Content-Type CTYPE (may be NULL):
 * the first text/plain part, else HTML as text, else an enclosed message. */
void msg_find_body(struct msg_info *m, const char *body, size_t len, struct mailmime_fields *mf,
		   const char *ctype);

#endif
