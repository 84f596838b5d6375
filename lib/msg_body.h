/* msg_body: the MIME walk of the message module. Internal: the message
 * module's files (message.c, msg_body.c, msg_parts.c) include it;
 * everything else uses message.h or msg_parts.h. */
#ifndef DIALOGUE_MSG_BODY_H
#define DIALOGUE_MSG_BODY_H

#include <stddef.h>

#include <libetpan/libetpan.h>

#include "message.h"

/* RAW[0..len) as the parser wants it: bare CR becomes LF, the header
 * loses its NUL bytes and ends with a line break (libetpan needs one to
 * end the last field), a leading mbox "From " line goes. *out_len gets
 * the length; caller frees. */
char *msg_normalize(const char *raw, size_t len, size_t *out_len);
/* The header of a message as msg_normalize() made it (N is modified: see
 * msg_defuse_comments): its fields (NULL when unreadable) and their MIME
 * fields (NULL when none), where it starts and ends, where the body
 * starts, and CLEAN = 0 when it was not well formed (continuation lines
 * before the first field, no empty line after the last). Free with
 * msg_head_free. */
struct msg_head {
	struct mailimf_fields *fields;
	struct mailmime_fields *mf;
	size_t start, end, body;
	int clean;
};
void msg_read_head(char *n, size_t nlen, struct msg_head *h);
void msg_head_free(struct msg_head *h);

/* Does MF say Content-Disposition: attachment? */
int msg_is_attachment(struct mailmime_fields *mf);

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

/* A leaf of the MIME tree as msg_walk_body() meets it (for msg_parts.c). */
enum msg_leaf_kind {
	MSG_LEAF_TEXT,    /* text/plain or text/html the body could come from */
	MSG_LEAF_MESSAGE, /* an enclosed message/rfc822, not entered */
	MSG_LEAF_OTHER    /* anything else, text marked attachment included */
};
struct msg_leaf {
	const char *data; /* the content, still transfer-encoded */
	size_t len;
	struct mailimf_fields *fields; /* its header; NULL for the message's own */
	struct mailmime_fields *mf;    /* its MIME fields, or NULL */
	enum msg_leaf_kind kind;
	int in_digest; /* in a multipart/digest: the default type is message/rfc822 */
	int depth;     /* 0 for the message's own body */
};
typedef void msg_leaf_fn(void *ctx, const struct msg_leaf *leaf);
/* msg_find_body(), also calling LEAF(CTX, ...) (when not NULL) for each
 * leaf the walk meets, in MIME order, and setting *SRC (when not NULL) to
 * the content (a pointer into BODY) that body_text was taken from, or
 * NULL. Multiparts are entered and not reported; a message/rfc822 is
 * entered only when it is the whole body. */
void msg_walk_body(struct msg_info *m, const char *body, size_t len, struct mailmime_fields *mf,
		   const char *ctype, msg_leaf_fn *leaf, void *ctx, const char **src);

#endif
