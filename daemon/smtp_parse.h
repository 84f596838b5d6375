/* smtp_parse: the pure parts of the SMTP server, with no I/O, so they can be
 * unit-tested and fuzzed: command-line checks, verb lookup, MAIL/RCPT paths
 * and parameters. */
#ifndef DIALOGUE_SMTP_PARSE_H
#define DIALOGUE_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "address.h"
#include "util.h"

/* RFC 5321 4.5.3.1: command line 512 octets, text line 1000, both with CRLF. */
#define SMTP_CMD_LINE_MAX 512
#define SMTP_TEXT_LINE_MAX 1000

enum smtp_verb {
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_HELP,
	SMTP_STARTTLS,
	SMTP_XFORWARD,
	SMTP_UNKNOWN
};

enum smtp_line_check {
	SMTP_LINE_OK,
	SMTP_LINE_NUL,       /* contains a NUL byte */
	SMTP_LINE_BARE_CR,   /* CR not followed by LF */
	SMTP_LINE_BARE_LF,   /* ends in LF without CR */
	SMTP_LINE_NON_ASCII, /* 8-bit byte or other control character */
};

/* Check a command line of LEN bytes that ends with LF (included in LEN). */
enum smtp_line_check smtp_check_command_line(const char *line, size_t len);

/* Split a command (without CRLF, NUL-terminated) into its verb and the
 * argument text after the verb's separating space ("" when none).
 * *arg points into LINE. */
enum smtp_verb smtp_parse_verb(const char *line, const char **arg);

enum smtp_path_result {
	SMTP_PATH_OK,
	SMTP_PATH_SYNTAX,   /* 501 5.5.4: not "FROM:<...>" / "TO:<...>" */
	SMTP_PATH_ADDRESS,  /* 501 5.1.3 / 5.1.7: bad mailbox */
	SMTP_PATH_PARAM,    /* 555 5.5.4: unknown or malformed parameter */
	SMTP_PATH_TOO_LONG  /* 501 5.5.4 */
};

enum smtp_body_type { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_mail_args {
	char addr[ADDRESS_MAX + 1]; /* "" for the null reverse-path */
	int64_t size;               /* SIZE= or -1 */
	enum smtp_body_type body;
};

struct smtp_rcpt_args {
	char addr[ADDRESS_MAX + 1];
};

/* ARG is what follows "MAIL " / "RCPT ". RCPT TO:<Postmaster> (no
 * domain) gives the address "postmaster". A source route (<@a,@b:u@d>) is
 * accepted and dropped (RFC 5321 4.1.2, C.). A space after the colon is
 * tolerated as most MTAs do. */
enum smtp_path_result smtp_parse_mail(const char *arg, struct smtp_mail_args *out);
enum smtp_path_result smtp_parse_rcpt(const char *arg, struct smtp_rcpt_args *out);

/* Is numeric address IP one of LIST[0..n) (numeric addresses; compared
 * as binary addresses, so "::1" and "0:0::1" match)? */
int smtp_ip_listed(const char *ip, char *const *list, size_t n);

/* EHLO/HELO argument: a domain or an address literal, nothing else. */
int smtp_valid_helo(const char *arg);

/* ---- the client side: replies from the relay ---- */

/* Check one reply line (LINE[0..n), CRLF removed): a code 200-599, then
 * end, ' ' (last line) or '-' (more follow). Returns 0 with *code, *last
 * and *text (after the separator) set, or -1 when malformed. */
int smtp_parse_reply_line(const char *line, size_t n, int *code, int *last, const char **text);

/* What an EHLO reply offers. TEXT is the reply's lines joined by '\n'
 * without codes, the first being the server's greeting. */
struct smtp_ehlo_caps {
	unsigned pipelining : 1, starttls : 1, eightbitmime : 1, smtputf8 : 1, size : 1;
	uint64_t size_max; /* SIZE limit, 0 = none advertised */
};
void smtp_parse_ehlo(const char *text, struct smtp_ehlo_caps *caps);

/* Problems found in DATA; the message is refused at the final dot. */
enum smtp_data_flag {
	SMTP_DATA_TOO_BIG = 1,
	SMTP_DATA_LONG_LINE = 2,
	SMTP_DATA_BARE_LF = 4,
	SMTP_DATA_BARE_CR = 8,
	SMTP_DATA_NUL = 16,
	SMTP_DATA_NO_MEMORY = 32 /* set by the server: its memory budget is spent */
};

/* The DATA phase: checks each line and collects the message dot-unstuffed.
 * Only CRLF.CRLF ends the data; a bare LF never does, so a message boundary
 * cannot be smuggled past us. */
struct smtp_data {
	struct sbuf buf; /* the message so far; emptied once it is refused */
	int flags;       /* enum smtp_data_flag */
	int at_line_start;
	size_t line_len;
	size_t max_size;
};

void smtp_data_begin(struct smtp_data *d, size_t max_size);
/* Is the complete line P[0..n) (LF included) the terminating dot? */
int smtp_data_is_end(const struct smtp_data *d, const unsigned char *p, size_t n);
/* Take N bytes: a line ending in LF (HAS_LF) or a partial line that is
 * already too long; a partial line must not end with a CR. */
void smtp_data_segment(struct smtp_data *d, const unsigned char *p, size_t n, int has_lf);
void smtp_data_free(struct smtp_data *d);

#endif
