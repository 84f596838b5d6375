/* address: RFC 5321 Mailbox syntax (4.1.2), without SMTPUTF8.
 *
 * Stricter than the RFC in two ways, both on purpose: no whitespace even
 * inside a quoted local part, and no empty quoted local part. Such
 * addresses are legal but only ever seen in abuse, and they break every
 * line-oriented format we write (CSV export, the CLI, headers). */
#include "address.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define LOCAL_MAX 64
#define DOMAIN_MAX 255
#define LABEL_MAX 63

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext. */
static int is_atext(int c)
{
	return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int valid_dot_atom(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* Quoted-string whose qtextSMTP and quoted-pairSMTP exclude space (see top). */
static int valid_quoted(const char *s, size_t n)
{
	if (n < 3 || s[0] != '"' || s[n - 1] != '"')
		return 0;
	for (size_t i = 1; i < n - 1; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\\') {
			if (i + 1 >= n - 1)
				return 0;
			c = (unsigned char)s[++i];
			if (c <= 32 || c > 126)
				return 0;
		} else if (c <= 32 || c > 126 || c == '"') {
			return 0;
		}
	}
	return 1;
}

static int valid_local(const char *s, size_t n)
{
	if (n == 0 || n > LOCAL_MAX)
		return 0;
	if (s[0] == '"')
		return valid_quoted(s, n);
	return valid_dot_atom(s, n);
}

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]. */
static int valid_domain_name(const char *s, size_t n)
{
	size_t label = 0;

	if (n == 0 || n > DOMAIN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (is_alpha(c) || is_digit(c)) {
			label++;
		} else if (c == '-') {
			if (label == 0)
				return 0;
			label++;
		} else {
			return 0;
		}
		if (label > LABEL_MAX)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

int address_valid_domain(const char *s)
{
	return valid_domain_name(s, strlen(s));
}

/* "[1.2.3.4]" or "[IPv6:...]"; general (tagged) literals are refused. */
static int valid_literal(const char *s, size_t n)
{
	char buf[64];
	unsigned char addr[16];
	const char *body = s + 1;
	size_t len = n - 2;
	int family = AF_INET;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return 0;
	if (len > 5 && ascii_strncasecmp(body, "IPv6:", 5) == 0) {
		family = AF_INET6;
		body += 5;
		len -= 5;
	}
	if (len == 0 || len >= sizeof buf)
		return 0;
	memcpy(buf, body, len);
	buf[len] = '\0';
	/* inet_pton accepts exactly dotted-quad / RFC 4291 text, nothing looser. */
	return inet_pton(family, buf, addr) == 1;
}

static int valid_domain(const char *s, size_t n)
{
	if (n > 0 && s[0] == '[')
		return valid_literal(s, n);
	return valid_domain_name(s, n);
}

int address_valid(const char *s)
{
	if (!s)
		return 0;
	size_t n = strnlen(s, ADDRESS_MAX + 1);
	if (n == 0 || n > ADDRESS_MAX)
		return 0;
	const char *at = strrchr(s, '@');
	if (!at)
		return 0;
	return valid_local(s, (size_t)(at - s)) && valid_domain(at + 1, n - (size_t)(at - s) - 1);
}

char *address_normalize(const char *s)
{
	if (!address_valid(s))
		return NULL;
	char *copy = xstrdup(s);
	char *dom = strrchr(copy, '@') + 1;
	ascii_lower(dom);
	if (strncmp(dom, "[ipv6:", 6) == 0)
		memcpy(dom + 1, "IPv6", 4);
	return copy;
}

int address_split(const char *s, char **local, char **domain, char **buf)
{
	*local = *domain = *buf = NULL;
	if (!address_valid(s))
		return -1;
	char *copy = xstrdup(s);
	char *at = strrchr(copy, '@');
	*at = '\0';
	*local = copy;
	*domain = at + 1;
	*buf = copy;
	return 0;
}

char *address_verp_encode(const char *addr)
{
	char *local, *domain, *buf;

	if (address_split(addr, &local, &domain, &buf) < 0)
		return NULL;
	/* The result becomes part of a dot-atom local part (L-bounces+X@D), so
	 * quoted local parts and address literals cannot be carried. */
	char *out = NULL;
	if (local[0] != '"' && domain[0] != '[')
		out = xasprintf("%s=%s", local, domain);
	free(buf);
	return out;
}

char *address_verp_decode(const char *s)
{
	if (!s)
		return NULL;
	const char *eq = strrchr(s, '=');
	if (!eq || eq == s || eq[1] == '\0')
		return NULL;
	char *out = xstrdup(s);
	out[eq - s] = '@';
	if (!address_valid(out)) {
		free(out);
		return NULL;
	}
	return out;
}
