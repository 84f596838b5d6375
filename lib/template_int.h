/* template internals shared by template.c (loading, rendering, composing),
 * template_mail.c (body and header encoding) and template_text.c (the
 * built-in texts). Nothing outside lib/template*.c includes it. */
#ifndef DIALOGUE_TEMPLATE_INT_H
#define DIALOGUE_TEMPLATE_INT_H

#include <stddef.h>
#include <time.h>

#include "template.h"
#include "util.h"

#define TPL_FILE_MAX (64 * 1024)    /* a template file; more is a mistake */
#define TPL_VALUE_MAX (16 * 1024)   /* of one value, inserted */
#define TPL_BODY_MAX (1024 * 1024)  /* rendered body; the rest is dropped */
#define TPL_SUBJECT_MAX 400         /* bytes of rendered subject */
#define TPL_DEPTH 16                /* nested sections */
#define TPL_NAME_MAX 64
#define WRAP_COLS 78
#define QP_COLS 76
#define LINE_MAX_7BIT 998
#define HARD_NL '\x01' /* a newline from a value, while rendering */

enum {
	TPL_CONFIRM_JOIN,
	TPL_CONFIRM_LEAVE,
	TPL_INVITE,
	TPL_WELCOME,
	TPL_GOODBYE,
	TPL_REFUSED,
	TPL_HELP,
	TPL_ALREADY_MEMBER,
	TPL_NOT_MEMBER,
	TPL_TOKEN_INVALID,
	TPL_PENDING_APPROVAL,
	TPL_APPROVED,
	TPL_DENIED,
	TPL_MODERATOR_PENDING,
	TPL_LIST_FULL,
	TPL_MODERATOR_NOTICE,
	TPL_POST_HELD,
	TPL_POST_REJECTED,
	TPL_POST_EXPIRED,
	TPL_POST_WITHDRAWN,
	TPL_MODERATION_INVALID,
	TPL_COUNT
};
/* The built-in texts, the same as config/templates/NAME.txt. */
extern const char *const template_builtin_text[TPL_COUNT];

/* template.c: may C appear in a {{name}}? */
int tpl_name_char(char c);

/* template_mail.c */
void tmail_wrap_body(struct sbuf *out, const char *s, size_t len);
int tmail_is_7bit(const char *s, size_t n);
void tmail_add_crlf_lines(struct sbuf *b, const char *s, size_t n);
void tmail_add_qp(struct sbuf *b, const char *s, size_t n);
char *tmail_header_text(const char *s, size_t max);
void tmail_add_text_header(struct sbuf *b, const char *name, const char *s);
void tmail_add_from(struct sbuf *b, const char *title, const char *addr);
void tmail_add_date(struct sbuf *b, time_t t);
void tmail_add_message_id(struct sbuf *b, const char *host);
char *tmail_shell_word(const char *s);
/* A MIME boundary (TMAIL_BOUNDARY_LEN characters) found in neither TEXT
 * nor the attachments. */
#define TMAIL_BOUNDARY_LEN 38
void tmail_boundary(char out[TMAIL_BOUNDARY_LEN + 1], const char *text, size_t len,
		    const struct template_attachment *att, size_t n_att);
/* Does any attachment need 8bit (8-bit bytes, NUL, or a line over 998)? */
int tmail_attachments_8bit(const struct template_attachment *att, size_t n_att);
/* "--BOUNDARY" and A as a message/rfc822 part, CRLF-normalised. */
void tmail_add_rfc822_part(struct sbuf *b, const char *boundary,
			   const struct template_attachment *a);

#endif
