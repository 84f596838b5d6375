/* message: what the archive needs from an RFC 5322 message, read with
 * libetpan. Never fails on bad input: it returns what could be read. */
#ifndef DIALOGUE_MESSAGE_H
#define DIALOGUE_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

struct msg_info {
	char *message_id;   /* without <>; synthesised when absent (see below) */
	int message_id_added; /* 1 when the message had no usable Message-ID */
	char *from_addr;    /* addr-spec of the first From mailbox, or "" */
	char *from_name;    /* display name decoded to UTF-8, or "" */
	char *subject;      /* RFC 2047-decoded, UTF-8, unfolded, or "" */
	char *date_header;  /* raw Date field body, or "" */
	int64_t date;       /* epoch seconds from Date, 0 when unparsable */
	char *in_reply_to;  /* first msg-id of In-Reply-To without <>, or "" */
	char *references;   /* msg-ids of References without <>, space-separated, or "" */
	char *body_text;    /* first text/plain part (or the top-level text body),
	                       transfer- and charset-decoded to valid UTF-8, or "";
	                       attachments skipped, enclosed messages only if the
	                       message has no text of its own, else the first
	                       text/html part as crude text; LF line ends, at
	                       most 1 MiB */
	int parse_ok;       /* 0 when the header or MIME structure was broken */
};

/* Parse RAW[0..len). HOSTNAME is used to synthesise a stable Message-ID
 * ("<sha256-prefix>@hostname", the same for the same bytes) when the
 * message has none. Always fills every string field (never NULL). */
void msg_parse(const char *raw, size_t len, const char *hostname, struct msg_info *out);
void msg_info_free(struct msg_info *m);

/* The value of the first header field NAME of RAW[0..len), read without the
 * MIME parser (also safe on a message the parser failed on): unfolded,
 * trimmed, printable ASCII only (anything else becomes '?'), at most 998
 * octets; "" when absent. Caller frees. */
char *msg_raw_header(const char *raw, size_t len, const char *name);

/* Convert TEXT (LEN bytes) in CHARSET to UTF-8; invalid sequences become
 * U+FFFD. Unknown charsets are treated as windows-1252 when not valid UTF-8.
 * Caller frees. */
char *msg_to_utf8(const char *text, size_t len, const char *charset);

#endif
