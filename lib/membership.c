#include "membership.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "util.h"

static int say(char *msg, size_t msglen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int say(char *msg, size_t msglen, int code, const char *fmt, ...)
{
	va_list ap;
	if (msg && msglen) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* Map a store result; the message names what was being done. */
static int from_store(struct store *st, int rc, char *msg, size_t msglen, const char *what)
{
	switch (rc) {
	case STORE_OK:
		return MEMBERSHIP_OK;
	case STORE_BUSY:
		return say(msg, msglen, MEMBERSHIP_BUSY, "database is busy, try again");
	case STORE_NOTFOUND:
		return say(msg, msglen, MEMBERSHIP_NOTFOUND, "%s: not found", what);
	case STORE_INVAL:
		return say(msg, msglen, MEMBERSHIP_BAD_VALUE, "%s", store_errmsg(st));
	default:
		return say(msg, msglen, MEMBERSHIP_STORE, "%s: %s", what, store_errmsg(st));
	}
}

/* Valid UTF-8 without control characters: what may go into a name that
 * ends up in mail headers, CSV files and terminals. */
static int clean_text(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	while (*s) {
		unsigned char c = *s;
		size_t need;
		uint32_t cp;
		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		for (size_t i = 1; i <= need; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0; /* also stops at the NUL */
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		/* C1 controls (U+0080..U+009F) act on terminals too. */
		if (cp < 0xa0)
			return 0;
		s += need + 1;
	}
	return 1;
}

char *membership_address(const char *s, char *msg, size_t msglen)
{
	if (!s)
		s = "";
	char *tmp = xstrdup(s);
	char *p = str_trim(tmp);
	size_t n = strlen(p);
	if (n >= 2 && p[0] == '<' && p[n - 1] == '>') {
		p[n - 1] = '\0';
		p++;
	}
	char *norm = NULL;
	if (strlen(p) <= ADDRESS_MAX && address_valid(p))
		norm = address_normalize(p);
	if (!norm) {
		if (!clean_text(s) || strlen(s) > ADDRESS_MAX)
			say(msg, msglen, 0, "not a valid email address");
		else
			say(msg, msglen, 0, "'%s' is not a valid email address", s);
	}
	free(tmp);
	return norm;
}

/* L's spelling of GROUP, or NULL when L has no such group. */
static const char *find_group(const struct list_cfg *l, const char *group)
{
	for (size_t i = 0; i < l->n_groups; i++)
		if (!strcmp(l->stakeholder_groups[i], group))
			return l->stakeholder_groups[i];
	for (size_t i = 0; i < l->n_groups; i++)
		if (!ascii_strcasecmp(l->stakeholder_groups[i], group))
			return l->stakeholder_groups[i];
	return NULL;
}

static void groups_text(const struct list_cfg *l, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < l->n_groups && used < len; i++) {
		int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
				 l->stakeholder_groups[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* Resolve a stakeholder value for L: *out gets the value to store. */
static int check_stakeholder(const struct list_cfg *l, const char *g, const char **out,
			     char *msg, size_t msglen)
{
	char groups[512];

	if (!g)
		g = "";
	if (l->n_groups == 0) {
		if (strlen(g) > MEMBERSHIP_GROUP_MAX || !clean_text(g))
			return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
				   "stakeholder must be at most %d printable characters",
				   MEMBERSHIP_GROUP_MAX);
		*out = g;
		return MEMBERSHIP_OK;
	}
	groups_text(l, groups, sizeof groups);
	if (!*g)
		return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
			   "list %s needs a stakeholder group: one of %s", l->name, groups);
	const char *canon = find_group(l, g);
	if (!canon) {
		if (clean_text(g) && strlen(g) <= MEMBERSHIP_GROUP_MAX)
			return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
				   "'%s' is not a stakeholder group of list %s: one of %s", g,
				   l->name, groups);
		return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
			   "not a stakeholder group of list %s: one of %s", l->name, groups);
	}
	*out = canon;
	return MEMBERSHIP_OK;
}

static int check_name(const char *name, char *msg, size_t msglen)
{
	if (strlen(name) > MEMBERSHIP_NAME_MAX)
		return say(msg, msglen, MEMBERSHIP_BAD_VALUE, "name is longer than %d bytes",
			   MEMBERSHIP_NAME_MAX);
	if (!clean_text(name))
		return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
			   "name must be UTF-8 text without control characters");
	return MEMBERSHIP_OK;
}

static int valid_delivery(const char *d)
{
	return !strcmp(d, "each") || !strcmp(d, "digest") || !strcmp(d, "none");
}

int membership_check(const struct list_cfg *l, const struct membership_new *m,
		     struct store_member *out, char **addr_buf, char *msg, size_t msglen)
{
	const char *stakeholder = NULL;
	int rc;

	*addr_buf = NULL;
	memset(out, 0, sizeof *out);
	char *addr = membership_address(m->address, msg, msglen);
	if (!addr)
		return MEMBERSHIP_BAD_ADDRESS;
	const char *name = m->name ? m->name : "";
	if ((rc = check_name(name, msg, msglen)) != MEMBERSHIP_OK)
		goto fail;
	if ((rc = check_stakeholder(l, m->stakeholder, &stakeholder, msg, msglen)) !=
	    MEMBERSHIP_OK)
		goto fail;
	const char *delivery = m->delivery ? m->delivery : "each";
	if (!valid_delivery(delivery)) {
		rc = say(msg, msglen, MEMBERSHIP_BAD_VALUE,
			 "delivery must be each, digest or none");
		goto fail;
	}
	int64_t joined = m->joined > 0 ? m->joined : now_epoch();
	int64_t term_ends = m->term_ends;
	if (term_ends == 0 && l->term > 0)
		term_ends = joined + l->term;
	else if (term_ends < 0)
		term_ends = 0;

	out->list = l->name;
	out->address = addr;
	out->name = (char *)name;
	out->stakeholder = (char *)stakeholder;
	out->status = (char *)(m->status ? m->status : "active");
	out->delivery = (char *)delivery;
	/* moderate_new_members: a newcomer's first posts are read before they
	 * go out, whichever way they joined; held approve --member clears it. */
	out->moderated = m->moderated || l->moderate_new_members ? 1 : 0;
	out->joined = joined;
	out->term_ends = term_ends;
	*addr_buf = addr;
	return MEMBERSHIP_OK;
fail:
	free(addr);
	return rc;
}

int membership_add(struct store *st, const struct list_cfg *l, const struct membership_new *m,
		   char *msg, size_t msglen)
{
	struct store_member row;
	char *addr;
	int rc = membership_check(l, m, &row, &addr, msg, msglen);
	if (rc != MEMBERSHIP_OK)
		return rc;
	int src = store_member_add(st, &row, l->max_members);
	switch (src) {
	case STORE_OK:
		rc = MEMBERSHIP_OK;
		break;
	case STORE_EXISTS:
		rc = say(msg, msglen, MEMBERSHIP_EXISTS, "%s is already a member of %s", addr,
			 l->name);
		break;
	case STORE_FULL:
		rc = say(msg, msglen, MEMBERSHIP_FULL,
			 "list %s is full: it has its maximum of %ld members", l->name,
			 l->max_members);
		break;
	default:
		rc = from_store(st, src, msg, msglen, "adding a member");
	}
	free(addr);
	return rc;
}

int membership_remove(struct store *st, const struct list_cfg *l, const char *address,
		      char *msg, size_t msglen)
{
	char *addr = membership_address(address, msg, msglen);
	if (!addr)
		return MEMBERSHIP_BAD_ADDRESS;
	int src = store_member_remove(st, l->name, addr);
	int rc;
	if (src == STORE_NOTFOUND)
		rc = say(msg, msglen, MEMBERSHIP_NOTFOUND, "%s is not a member of %s", addr,
			 l->name);
	else
		rc = from_store(st, src, msg, msglen, "removing a member");
	free(addr);
	return rc;
}

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

/* N decimal digits at S; -1 if any is not a digit. */
static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int membership_parse_date(const char *s, int64_t *out)
{
	size_t n = strlen(s);
	int hh = 0, mm = 0, ss = 0;

	if (n != 10 && n != 20)
		return -1;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	if (y < 1970 || s[4] != '-' || s[7] != '-' || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo))
		return -1;
	if (n == 20) {
		hh = digits(s + 11, 2);
		mm = digits(s + 14, 2);
		ss = digits(s + 17, 2);
		if ((s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' ||
		    (s[19] != 'Z' && s[19] != 'z') || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
		    ss < 0 || ss > 60)
			return -1;
	}
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (int64_t)t;
	return 0;
}

int membership_check_setting(const struct list_cfg *l, const char *key, const char *value,
			     const char **store_key, char **store_value, char *msg,
			     size_t msglen)
{
	int rc;

	*store_value = NULL;
	if (!strcmp(key, "delivery")) {
		if (!valid_delivery(value))
			return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
				   "delivery must be each, digest or none");
		*store_key = "delivery";
		*store_value = xstrdup(value);
	} else if (!strcmp(key, "moderated")) {
		int v;
		if (!ascii_strcasecmp(value, "yes") || !ascii_strcasecmp(value, "true") ||
		    !strcmp(value, "1"))
			v = 1;
		else if (!ascii_strcasecmp(value, "no") || !ascii_strcasecmp(value, "false") ||
			 !strcmp(value, "0"))
			v = 0;
		else
			return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
				   "moderated must be yes or no");
		*store_key = "moderated";
		*store_value = xstrdup(v ? "1" : "0");
	} else if (!strcmp(key, "stakeholder")) {
		const char *g;
		if ((rc = check_stakeholder(l, value, &g, msg, msglen)) != MEMBERSHIP_OK)
			return rc;
		*store_key = "stakeholder";
		*store_value = xstrdup(g);
	} else if (!strcmp(key, "name")) {
		if ((rc = check_name(value, msg, msglen)) != MEMBERSHIP_OK)
			return rc;
		*store_key = "name";
		*store_value = xstrdup(value);
	} else if (!strcmp(key, "term_ends")) {
		int64_t t = 0;
		if (strcmp(value, "none") != 0 && strcmp(value, "") != 0 &&
		    membership_parse_date(value, &t) != 0)
			return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
				   "term_ends must be a date YYYY-MM-DD or none");
		*store_key = "term_ends";
		*store_value = xasprintf("%" PRId64, t);
	} else {
		if (clean_text(key) && strlen(key) < 64)
			return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
				   "unknown setting '%s': delivery, moderated, stakeholder, name "
				   "or term_ends",
				   key);
		return say(msg, msglen, MEMBERSHIP_BAD_VALUE,
			   "unknown setting: delivery, moderated, stakeholder, name or term_ends");
	}
	return MEMBERSHIP_OK;
}

int membership_set(struct store *st, const struct list_cfg *l, const char *address,
		   const char *key, const char *value, char *msg, size_t msglen)
{
	const char *skey;
	char *svalue;
	int rc = membership_check_setting(l, key, value, &skey, &svalue, msg, msglen);
	if (rc != MEMBERSHIP_OK)
		return rc;
	char *addr = membership_address(address, msg, msglen);
	if (!addr) {
		free(svalue);
		return MEMBERSHIP_BAD_ADDRESS;
	}
	int src = store_member_set(st, l->name, addr, skey, svalue);
	if (src == STORE_NOTFOUND)
		rc = say(msg, msglen, MEMBERSHIP_NOTFOUND, "%s is not a member of %s", addr,
			 l->name);
	else
		rc = from_store(st, src, msg, msglen, "changing a member");
	free(addr);
	free(svalue);
	return rc;
}

size_t membership_group_counts(const struct list_cfg *l, const struct store_member *m, size_t n,
			       long *counts)
{
	size_t missing = 0;
	for (size_t g = 0; g < l->n_groups; g++) {
		counts[g] = 0;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(m[i].status, "active") && m[i].stakeholder &&
			    !strcmp(m[i].stakeholder, l->stakeholder_groups[g]))
				counts[g]++;
		if (!counts[g])
			missing++;
	}
	return missing;
}

int membership_term_expiring(const struct store_member *m, int64_t now)
{
	return m->term_ends > 0 && m->term_ends <= now + MEMBERSHIP_TERM_WARNING;
}
