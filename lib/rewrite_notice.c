/* rewrite_notice: the mail a sender gets when a list refused a post. It
 * goes to whoever the envelope named, possibly a forged address, so it is
 * short and carries the original's header only, never its body: a notice
 * must not turn the list into a reflector for someone else's content.
 * Nothing copied from the original reaches our header: its subject is
 * decoded to one clean line and quoted in the text part only. */
#include "rewrite.h"
#include "rewrite_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "msg_text.h"
#include "util.h"

#define NOTICE_HEADER_MAX (16 * 1024) /* of the original's identifying fields we attach */
#define NOTICE_SUBJECT_MAX 200        /* bytes of the original subject quoted */
#define NOTICE_REASON_MAX 2000
#define QP_LINE 76

void rw_random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[64];

	if (n > sizeof(buf))
		n = sizeof(buf);
	if (RAND_bytes(buf, (int)n) != 1) {
		/* Uniqueness is all a Message-ID needs; keep going. */
		static unsigned counter;
		uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ ++counter;
		for (size_t i = 0; i < n; i++, x = x * 6364136223846793005ULL + 1442695040888963407ULL)
			buf[i] = (unsigned char)(x >> 56);
	}
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[buf[i] >> 4];
		out[2 * i + 1] = hex[buf[i] & 15];
	}
	out[2 * n] = '\0';
}

/* RFC 5322 date in UTC, without the locale's day and month names. */
static void add_date(struct sbuf *b, time_t t)
{
	char date[40];
	fmt_rfc5322_date((int64_t)t, date);
	sbuf_printf(b, "Date: %s\r\n", date);
}

/* S reduced to what may sit inside a header line: no controls, no
 * brackets, no spaces (it is an address or a msg-id). */
static char *header_token(const char *s, size_t max)
{
	struct sbuf b = {0};

	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && b.len < max; p++)
		if (*p > 0x20 && *p < 0x7f && *p != '<' && *p != '>')
			sbuf_addc(&b, (char)*p);
	return sbuf_detach(&b);
}

/* At most MAX bytes of UTF-8 S, cut at a character boundary. */
static void add_utf8_capped(struct sbuf *b, const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max) {
		sbuf_add(b, s, n);
		return;
	}
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	sbuf_add(b, s, max);
	sbuf_adds(b, "...");
}

/* Quoted-printable (RFC 2045 6.7) of text with CRLF line ends. */
static void add_qp(struct sbuf *b, const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
			sbuf_add(b, "\r\n", 2);
			col = 0;
			i++;
			continue;
		}
		int at_eol = i + 1 == n || s[i + 1] == '\r';
		int plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_eol);
		size_t w = plain ? 1 : 3;
		if (col + w > QP_LINE - 1) {
			sbuf_add(b, "=\r\n", 3);
			col = 0;
		}
		if (plain)
			sbuf_addc(b, (char)c);
		else
			sbuf_printf(b, "=%02X", c);
		col += w;
	}
}

/* Does text with CRLF line ends need an encoding to pass 7-bit SMTP? */
static int needs_cte(const char *s, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
			col = 0;
			i++;
			continue;
		}
		if (c >= 0x7f || (c < 0x20 && c != '\t') || ++col > 998)
			return 1;
	}
	return 0;
}

static void add_base64(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i += 57) {
		unsigned char out[80];
		size_t k = n - i < 57 ? n - i : 57;
		int m = EVP_EncodeBlock(out, (const unsigned char *)s + i, (int)k);
		sbuf_add(b, out, (size_t)m);
		sbuf_add(b, "\r\n", 2);
	}
}

/* The original's identifying header fields (CRLF, capped), its decoded
 * subject and its Message-ID when it has a usable one. */
static void read_original(const char *raw, size_t len, struct sbuf *head, char **subject,
			  char **msgid)
{
	struct rw_iter it;
	struct rw_field f;

	*subject = NULL;
	*msgid = NULL;
	rw_iter_init(&it, raw, len);
	while (rw_next(&it, &f)) {
		/* Only the fields that identify the message: a notice must not
		 * carry a forger's arbitrary headers back out to a third party. */
		int quoted = rw_field_is(&it, &f, "From") || rw_field_is(&it, &f, "To") ||
			     rw_field_is(&it, &f, "Cc") || rw_field_is(&it, &f, "Subject") ||
			     rw_field_is(&it, &f, "Date") || rw_field_is(&it, &f, "Message-ID");
		if (quoted && head->len < NOTICE_HEADER_MAX) {
			size_t n = f.end - f.start;
			size_t room = NOTICE_HEADER_MAX - head->len;
			rw_add_crlf(head, it.raw + f.start, n < room ? n : room);
			/* A field cut short or without a line end. */
			if (head->len < 2 || memcmp(head->buf + head->len - 2, "\r\n", 2) != 0)
				sbuf_add(head, "\r\n", 2);
		}
		if (!*subject && rw_field_is(&it, &f, "Subject")) {
			char *v = rw_field_value(&it, &f, 8192);
			*subject = msg_decode_phrase(v);
			free(v);
		} else if (!*msgid && rw_field_is(&it, &f, "Message-ID")) {
			char *v = rw_field_value(&it, &f, 1024);
			char *lt = strchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;
			if (lt && gt) {
				*gt = '\0';
				char *id = header_token(lt + 1, 900);
				if (strchr(id, '@'))
					*msgid = id;
				else
					free(id);
			}
			free(v);
		}
	}
}

/* The explanation, in CRLF lines. */
static void add_text(struct sbuf *t, const struct list_cfg *l, const char *reason,
		     const char *subject)
{
	char *title = msg_clean_line(l->title ? l->title : "", l->title ? strlen(l->title) : 0);

	sbuf_adds(t, "Hello,\r\n\r\nyour message to the mailing list\r\n    ");
	add_utf8_capped(t, title, NOTICE_SUBJECT_MAX);
	sbuf_printf(t, "%s<%s>\r\nwas not posted, for this reason:\r\n\r\n", title[0] ? " " : "",
		    l->address);

	/* The reason may be a moderator's own words over several lines. */
	const char *why = reason && reason[0] ? reason : "(no reason given)";
	char *r = xstrndup(why, strnlen(why, NOTICE_REASON_MAX));
	for (char *line = r; line;) {
		char *nl = strpbrk(line, "\r\n");
		char *next = nl ? nl + 1 + (nl[0] == '\r' && nl[1] == '\n') : NULL;
		char *clean = msg_clean_line(line, nl ? (size_t)(nl - line) : strlen(line));
		sbuf_printf(t, "    %s\r\n", clean);
		free(clean);
		line = next && *next ? next : NULL;
	}
	free(r);

	if (subject && subject[0]) {
		sbuf_adds(t, "\r\nYour message was:\r\n    Subject: ");
		add_utf8_capped(t, subject, NOTICE_SUBJECT_MAX);
		sbuf_adds(t, "\r\n");
	}
	sbuf_printf(t,
		    "\r\nIf you think this is a mistake, please write to the list owner at\r\n"
		    "<%s-owner@%s>.\r\n\r\n"
		    "The header of your message is attached; its body was not kept.\r\n",
		    l->local, l->domain);
	free(title);
}

char *rewrite_reject_notice(const struct config *cfg, const struct list_cfg *l, const char *raw,
			    size_t len, const char *to, const char *reason, size_t *out_len)
{
	struct sbuf b = {0}, head = {0}, text = {0};
	struct rw_fold w;
	char *subject, *msgid, id[33], boundary[25];
	const char *host = cfg && cfg->hostname ? cfg->hostname : l->domain;

	read_original(raw, len, &head, &subject, &msgid);
	rw_random_hex(id, 16);
	rw_random_hex(boundary, 12);

	rw_fold_begin(&w, &b, "From");
	if (l->title)
		rw_fold_phrase(&w, l->title);
	char *owner = xasprintf("<%s-owner@%s>", l->local, l->domain);
	rw_fold_word(&w, owner, strlen(owner));
	rw_fold_end(&w);
	free(owner);

	char *rcpt = header_token(to, 998);
	if (rcpt[0])
		sbuf_printf(&b, "To: <%s>\r\n", rcpt);
	else
		sbuf_adds(&b, "To: undisclosed-recipients:;\r\n");
	free(rcpt);

	char *subj = xasprintf("Your message to %s was not posted", l->address);
	rw_fold_begin(&w, &b, "Subject");
	for (char *p = subj, *sp; *p; p = sp + (*sp != '\0')) {
		sp = p + strcspn(p, " ");
		rw_fold_word(&w, p, (size_t)(sp - p));
	}
	rw_fold_end(&w);
	free(subj);

	add_date(&b, time(NULL));
	sbuf_printf(&b, "Message-ID: <%s@%s>\r\n", id, host);
	if (msgid)
		sbuf_printf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", msgid, msgid);
	sbuf_adds(&b, "Auto-Submitted: auto-replied\r\n");
	sbuf_printf(&b, "X-Loop: %s\r\n", l->address);
	sbuf_adds(&b, "MIME-Version: 1.0\r\n");
	sbuf_printf(&b, "Content-Type: multipart/mixed; boundary=\"=_dialogue_%s\"\r\n\r\n",
		    boundary);
	sbuf_adds(&b, "This is a message in MIME format.\r\n\r\n");

	add_text(&text, l, reason, subject);
	int qp = needs_cte(text.buf, text.len);
	sbuf_printf(&b, "--=_dialogue_%s\r\n", boundary);
	sbuf_printf(&b, "Content-Type: text/plain; charset=utf-8\r\n"
			"Content-Transfer-Encoding: %s\r\n\r\n",
		    qp ? "quoted-printable" : "7bit");
	if (qp)
		add_qp(&b, text.buf, text.len);
	else
		sbuf_add(&b, text.buf, text.len);

	int b64 = head.len && needs_cte(head.buf, head.len);
	sbuf_printf(&b, "\r\n--=_dialogue_%s\r\n", boundary);
	sbuf_printf(&b, "Content-Type: text/rfc822-headers\r\n"
			"Content-Disposition: inline\r\n"
			"Content-Transfer-Encoding: %s\r\n\r\n",
		    b64 ? "base64" : "7bit");
	if (b64)
		add_base64(&b, head.buf, head.len);
	else if (head.len)
		sbuf_add(&b, head.buf, head.len);
	sbuf_printf(&b, "\r\n--=_dialogue_%s--\r\n", boundary);

	free(subject);
	free(msgid);
	sbuf_free(&head);
	sbuf_free(&text);
	if (out_len)
		*out_len = b.len;
	return sbuf_detach(&b);
}
