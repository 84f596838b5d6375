/* template: the mails dialogued writes itself (confirm, welcome, goodbye,
 * refused, help, already-member, not-member, invite, token-invalid,
 * pending-approval, moderator-notice, post-held, post-rejected ...). Each is a text file in the
 * [server] templates directory, loaded at start and on SIGHUP, with a
 * built-in default when the file is absent. A template is a Subject line,
 * a blank line, and a plain-text body; {{name}} is replaced by a variable.
 * Composed mails are complete RFC 5322 messages. */
#ifndef DIALOGUE_TEMPLATE_H
#define DIALOGUE_TEMPLATE_H

#include <stddef.h>

#include "config.h"

struct templates;

/* Load every known template from DIR (NULL or missing files: defaults).
 * A file that is not valid UTF-8 or has no Subject line is an error:
 * NULL with "FILE:LINE: what" in err. */
struct templates *template_load(const char *dir, char *err, size_t errlen);
void template_free(struct templates *t);

/* The names of every template, NULL-terminated (for docs and checks). */
const char *const *template_names(void);

/* Variables: NAME=VALUE pairs; unknown {{names}} render as "". Values are
 * inserted as they are (UTF-8 text; header injection is impossible since
 * the Subject is encoded and values never start header lines). */
struct template_var {
	const char *name;
	const char *value;
};

/* Compose template NAME for list L as a mail: From "L title" <L-owner@D>
 * (or FROM when set), To TO, Reply-To REPLY_TO when set, Subject and body
 * rendered with VARS plus the standard ones (list, list_title,
 * list_address, owner_address, request_address, join_address,
 * leave_address, hostname, base_url), Date, Message-ID, MIME-Version,
 * Content-Type text/plain; charset=utf-8 with quoted-printable when not
 * ASCII, Auto-Submitted: auto-replied, X-Loop: L@D, Precedence: list
 * (RFC 3834 friendly). CRLF line ends; NOT dot-stuffed. Caller frees. */
char *template_compose(const struct templates *t, const struct config *cfg,
		       const struct list_cfg *l, const char *name, const struct template_var *vars,
		       size_t n_vars, const char *to, const char *reply_to, const char *from,
		       size_t *out_len);

/* A message attached to a composed mail as message/rfc822. */
struct template_attachment {
	const char *data;        /* a whole message as received (any line ends) */
	size_t len;
	const char *description; /* Content-Description ("held post 12"); NULL: none */
};

/* template_compose, with the messages ATT[0..n_att) attached: the mail is
 * multipart/mixed, the rendered text its first part, then one
 * message/rfc822 part per attachment, its bytes unchanged but for line
 * ends (CRLF throughout), declared 8bit when it is not 7-bit clean (and
 * the whole mail with it). N_ATT 0 is template_compose. NULL as there,
 * or when an attachment has no data. Caller frees. */
char *template_compose_attached(const struct templates *t, const struct config *cfg,
				const struct list_cfg *l, const char *name,
				const struct template_var *vars, size_t n_vars, const char *to,
				const char *reply_to, const char *from,
				const struct template_attachment *att, size_t n_att,
				size_t *out_len);

/* Additions beyond the agreed interface (for tests, fuzzing and checks). */

/* The built-in text of template NAME, byte for byte the shipped file
 * config/templates/NAME.txt; NULL for an unknown name. */
const char *template_builtin(const char *name);

/* Replace template NAME in T by TEXT (LEN bytes in the file format; FILE
 * names it in errors). Returns 0, or -1 with "FILE:LINE: what" in err and
 * T unchanged. */
int template_set(struct templates *t, const char *name, const char *text, size_t len,
		 const char *file, char *err, size_t errlen);

#endif
