/* msg_parts: the attachments of an archived message, for the web archive's
 * message page and its download links. Like msg_parse(), never fails on
 * bad input: a broken message has fewer attachments, or none. */
#ifndef DIALOGUE_MSG_PARTS_H
#define DIALOGUE_MSG_PARTS_H

#include <stddef.h>

#define MSG_PARTS_MAX 100 /* attachments listed */
#define MSG_PARTS_DEPTH 20 /* MIME nesting looked into */
#define MSG_PARTS_NAME_MAX 200 /* bytes of a filename */

struct msg_part {
	char *filename;     /* RFC 2047/2231-decoded UTF-8: the last path
	                       component, without controls, line separators or
	                       bidi marks, "*:<>?| as '_', no leading dots, at
	                       most 200 bytes (extension kept), never empty
	                       ("attachment-N", N its 1-based index) */
	char *content_type; /* "type/subtype" lowercase, as declared (the MIME
	                       default when undeclared) */
	size_t size;        /* decoded size in bytes */
};

/* The attachments of RAW[0..len) (a message as stored: CRLF or LF) in MIME
 * order: the leaf parts with Content-Disposition attachment, or with a
 * filename, or that are neither text/plain nor text/html (an enclosed
 * message/rfc822 is one attachment); never the part whose text msg_parse()
 * shows as the body. At most MSG_PARTS_MAX, none nested deeper than
 * MSG_PARTS_DEPTH. *out is NULL when *n is 0. Returns 0. Free with
 * msg_parts_free(*out, *n). */
int msg_parts_list(const char *raw, size_t len, struct msg_part **out, size_t *n);
/* Free a list from msg_parts_list(): every element's strings and the array. */
void msg_parts_free(struct msg_part *p, size_t n);
/* Free the strings of one element (as filled by msg_parts_get()), not P. */
void msg_part_clear(struct msg_part *p);

/* The decoded bytes (base64, quoted-printable, or as they are) of
 * attachment INDEX (1-based, as listed by msg_parts_list()) in *data
 * (allocated, NUL-terminated beyond *data_len; caller frees) and its
 * description in *info (free with msg_part_clear(info)). Returns 0, or
 * -1 when there is no such attachment (then nothing is allocated). */
int msg_parts_get(const char *raw, size_t len, size_t index, char **data, size_t *data_len,
		  struct msg_part *info);

#endif
