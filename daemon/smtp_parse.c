#include "smtp_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum smtp_line_check smtp_check_command_line(const char *line, size_t len)
{
	if (len == 0 || line[len - 1] != '\n')
		return SMTP_LINE_BARE_LF; /* caller always passes a LF-terminated line */
	if (len < 2 || line[len - 2] != '\r')
		return SMTP_LINE_BARE_LF;
	for (size_t i = 0; i + 2 < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == '\0')
			return SMTP_LINE_NUL;
		if (c == '\r')
			return SMTP_LINE_BARE_CR;
		if (c == '\n')
			return SMTP_LINE_BARE_LF;
		if (c >= 0x80 || (c < 0x20 && c != '\t') || c == 0x7f)
			return SMTP_LINE_NON_ASCII;
	}
	return SMTP_LINE_OK;
}

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{"HELO", SMTP_HELO}, {"EHLO", SMTP_EHLO}, {"MAIL", SMTP_MAIL},
	{"RCPT", SMTP_RCPT}, {"DATA", SMTP_DATA}, {"RSET", SMTP_RSET},
	{"NOOP", SMTP_NOOP}, {"QUIT", SMTP_QUIT}, {"VRFY", SMTP_VRFY},
	{"EXPN", SMTP_EXPN}, {"HELP", SMTP_HELP}, {"STARTTLS", SMTP_STARTTLS},
	{"XFORWARD", SMTP_XFORWARD},
};

enum smtp_verb smtp_parse_verb(const char *line, const char **arg)
{
	size_t n = strcspn(line, " ");
	*arg = line[n] ? line + n + 1 : line + n;
	for (size_t i = 0; i < sizeof verbs / sizeof *verbs; i++) {
		if (strlen(verbs[i].name) == n && !ascii_strncasecmp(line, verbs[i].name, n))
			return verbs[i].verb;
	}
	return SMTP_UNKNOWN;
}

/* Parse "<path>" at *P (after the keyword and colon); on success *P points
 * after the '>'. ADDR receives the mailbox without brackets or route. */
static enum smtp_path_result parse_path(const char **p, char *addr, int allow_null)
{
	const char *s = *p;
	while (*s == ' ')
		s++;
	if (*s != '<')
		return SMTP_PATH_SYNTAX;
	s++;
	/* The closing '>' is the first one outside a quoted local part. */
	const char *e = s;
	int quoted = 0;
	for (; *e; e++) {
		if (quoted && *e == '\\' && e[1]) {
			e++;
			continue;
		}
		if (*e == '"')
			quoted = !quoted;
		else if (*e == '>' && !quoted)
			break;
	}
	if (*e != '>')
		return SMTP_PATH_SYNTAX;
	const char *start = s;
	if (*start == '@') { /* source route: skip up to the ':' */
		const char *colon = memchr(start, ':', (size_t)(e - start));
		if (!colon)
			return SMTP_PATH_ADDRESS;
		start = colon + 1;
	}
	size_t n = (size_t)(e - start);
	if (n > ADDRESS_MAX)
		return SMTP_PATH_TOO_LONG;
	memcpy(addr, start, n);
	addr[n] = '\0';
	if (n == 0) {
		if (!allow_null || start != s)
			return SMTP_PATH_ADDRESS;
	} else if (!address_valid(addr)) {
		return SMTP_PATH_ADDRESS;
	}
	*p = e + 1;
	return SMTP_PATH_OK;
}

static const char *after_keyword(const char *arg, const char *kw)
{
	size_t n = strlen(kw);
	if (ascii_strncasecmp(arg, kw, n))
		return NULL;
	return arg + n;
}

enum smtp_path_result smtp_parse_mail(const char *arg, struct smtp_mail_args *out)
{
	out->addr[0] = '\0';
	out->size = -1;
	out->body = SMTP_BODY_7BIT;
	const char *p = after_keyword(arg, "FROM:");
	if (!p)
		return SMTP_PATH_SYNTAX;
	enum smtp_path_result r = parse_path(&p, out->addr, 1);
	if (r != SMTP_PATH_OK)
		return r;
	int seen_size = 0, seen_body = 0;
	while (*p) {
		if (*p != ' ')
			return SMTP_PATH_SYNTAX;
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, " ");
		if (!ascii_strncasecmp(p, "SIZE=", 5) && !seen_size) {
			char *end;
			errno = 0;
			if (p[5] < '0' || p[5] > '9')
				return SMTP_PATH_PARAM;
			long long v = strtoll(p + 5, &end, 10);
			if (errno || end != p + n)
				return SMTP_PATH_PARAM;
			out->size = v;
			seen_size = 1;
		} else if (!ascii_strncasecmp(p, "BODY=", 5) && !seen_body) {
			if (n == 9 && !ascii_strncasecmp(p + 5, "7BIT", 4))
				out->body = SMTP_BODY_7BIT;
			else if (n == 13 && !ascii_strncasecmp(p + 5, "8BITMIME", 8))
				out->body = SMTP_BODY_8BITMIME;
			else
				return SMTP_PATH_PARAM;
			seen_body = 1;
		} else {
			return SMTP_PATH_PARAM;
		}
		p += n;
	}
	return SMTP_PATH_OK;
}

enum smtp_path_result smtp_parse_rcpt(const char *arg, struct smtp_rcpt_args *out)
{
	out->addr[0] = '\0';
	const char *p = after_keyword(arg, "TO:");
	if (!p)
		return SMTP_PATH_SYNTAX;
	/* RFC 5321 4.1.1.3: "<Postmaster>" without a domain must be accepted;
	 * the caller adds the domain it stands for. */
	const char *q = p;
	while (*q == ' ')
		q++;
	if (!ascii_strncasecmp(q, "<postmaster>", 12)) {
		strcpy(out->addr, "postmaster");
		p = q + 12;
	} else {
		enum smtp_path_result r = parse_path(&p, out->addr, 0);
		if (r != SMTP_PATH_OK)
			return r;
	}
	while (*p == ' ')
		p++;
	return *p ? SMTP_PATH_PARAM : SMTP_PATH_OK;
}

int smtp_valid_helo(const char *arg)
{
	size_t n = strlen(arg);
	if (n == 0 || n > 255)
		return 0;
	if (arg[0] == '[')
		return arg[n - 1] == ']' && n > 2 && !strpbrk(arg + 1, "[ ");
	for (size_t i = 0; i < n; i++) {
		char c = arg[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_'))
			return 0;
	}
	return 1;
}

void smtp_data_begin(struct smtp_data *d, size_t max_size)
{
	sbuf_free(&d->buf);
	d->flags = 0;
	d->at_line_start = 1;
	d->line_len = 0;
	d->max_size = max_size;
}

int smtp_data_is_end(const struct smtp_data *d, const unsigned char *p, size_t n)
{
	return d->at_line_start && n == 3 && p[0] == '.' && p[1] == '\r' && p[2] == '\n';
}

void smtp_data_segment(struct smtp_data *d, const unsigned char *p, size_t n, int has_lf)
{
	int crlf = has_lf && n >= 2 && p[n - 2] == '\r';
	size_t text_len = has_lf ? (crlf ? n - 2 : n - 1) : n;
	if (has_lf && !crlf)
		d->flags |= SMTP_DATA_BARE_LF;
	if (memchr(p, '\0', n))
		d->flags |= SMTP_DATA_NUL;
	if (memchr(p, '\r', text_len))
		d->flags |= SMTP_DATA_BARE_CR;
	if (d->at_line_start)
		d->line_len = 0;
	d->line_len += n;
	if (d->line_len > SMTP_TEXT_LINE_MAX)
		d->flags |= SMTP_DATA_LONG_LINE;
	size_t skip = (d->at_line_start && n && p[0] == '.') ? 1 : 0;
	if (d->buf.len + n - skip > d->max_size)
		d->flags |= SMTP_DATA_TOO_BIG;
	if (d->flags)
		sbuf_free(&d->buf); /* refused: keep nothing, just find the end */
	else
		sbuf_add(&d->buf, p + skip, n - skip);
	d->at_line_start = crlf;
}

void smtp_data_free(struct smtp_data *d)
{
	sbuf_free(&d->buf);
}

int smtp_parse_reply_line(const char *line, size_t n, int *code, int *last, const char **text)
{
	if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
	    line[2] < '0' || line[2] > '9' || (n > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*last = n == 3 || line[3] == ' ';
	*text = n > 4 ? line + 4 : line + n;
	return 0;
}

void smtp_parse_ehlo(const char *text, struct smtp_ehlo_caps *caps)
{
	memset(caps, 0, sizeof *caps);
	const char *line = strchr(text, '\n'); /* the first line is the greeting */
	while (line) {
		line++;
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		size_t kw = strcspn(line, " \n");
		if (kw > n)
			kw = n;
#define IS(word) (kw == sizeof(word) - 1 && !ascii_strncasecmp(line, word, kw))
		if (IS("PIPELINING"))
			caps->pipelining = 1;
		else if (IS("STARTTLS"))
			caps->starttls = 1;
		else if (IS("8BITMIME"))
			caps->eightbitmime = 1;
		else if (IS("SMTPUTF8"))
			caps->smtputf8 = 1;
		else if (IS("SIZE")) {
			caps->size = 1;
			if (kw < n)
				caps->size_max = strtoull(line + kw + 1, NULL, 10);
		}
#undef IS
		line = end;
	}
}

int smtp_ip_listed(const char *ip, char *const *list, size_t n)
{
	unsigned char a[16], b[16];
	int fa = inet_pton(AF_INET, ip, a) == 1 ? AF_INET : inet_pton(AF_INET6, ip, a) == 1 ? AF_INET6 : 0;
	if (!fa)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (inet_pton(fa, list[i], b) == 1 && !memcmp(a, b, fa == AF_INET ? 4 : 16))
			return 1;
	return 0;
}
