/* config: a table-driven INI reader. Every key of every section is declared
 * once in the tables below with its type, so validation, defaults and the
 * "unknown key" check all follow from one place. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "util.h"

enum key_type {
	K_STRING,    /* any text */
	K_HOSTNAME,  /* a domain name */
	K_PATH,      /* resolved against the config's directory; "" = unset */
	K_SIZE,      /* int64_t bytes */
	K_DURATION,  /* int64_t seconds */
	K_LONG,      /* long within [min, max] */
	K_BOOL,      /* int */
	K_ENUM,      /* int, value index in names */
	K_WORDS,     /* char ** + size_t count, comma-separated */
	K_ADDRESSES, /* like K_WORDS, each a valid address */
	K_LISTEN,    /* struct listen_addr * + size_t count */
	K_ENDPOINT,  /* one struct listen_addr */
	K_DURATIONS, /* int64_t * + size_t count */
	K_ADDRESS,   /* one valid address, lowercased domain */
	K_IPS        /* like K_WORDS, each a numeric IPv4 or IPv6 address */
};

struct key_def {
	const char *name;
	enum key_type type;
	size_t off;
	size_t count_off; /* for list types */
	long min, max;
	const char *const *names; /* for K_ENUM */
	const char *def;          /* default, parsed like a config value; NULL = none */
};

static const char *const sub_names[] = {"open", "confirm", "approve", "closed", NULL};
static const char *const post_names[] = {"open", "members", "moderated", "announce", NULL};
static const char *const nm_names[] = {"accept", "hold", "reject", "discard", NULL};
static const char *const archive_names[] = {"public", "private", "none", NULL};
static const char *const tls_names[] = {"no", "opportunistic", "required", NULL};

#define C(f) offsetof(struct config, f)
#define L(f) offsetof(struct list_cfg, f)

static const struct key_def server_keys[] = {
	{"hostname", K_HOSTNAME, C(hostname), 0, 0, 0, NULL, NULL},
	{"listen", K_LISTEN, C(listen), C(n_listen), 0, 0, NULL, "127.0.0.1:2525"},
	{"database", K_PATH, C(database), 0, 0, 0, NULL, "dialogue.db"},
	{"secret_file", K_PATH, C(secret_file), 0, 0, 0, NULL, "secret"},
	{"max_message_size", K_SIZE, C(max_message_size), 0, 1024, 0, NULL, "25M"},
	{"max_connections", K_LONG, C(max_connections), 0, 1, 100000, NULL, "500"},
	{"tls_certificate", K_PATH, C(tls_certificate), 0, 0, 0, NULL, NULL},
	{"tls_key", K_PATH, C(tls_key), 0, 0, 0, NULL, NULL},
	{"command_timeout", K_DURATION, C(command_timeout), 0, 1, 0, NULL, "5m"},
	{"data_timeout", K_DURATION, C(data_timeout), 0, 1, 0, NULL, "10m"},
	{"max_errors", K_LONG, C(max_errors), 0, 1, 1000, NULL, "10"},
	{"max_rcpts", K_LONG, C(max_rcpts), 0, 1, 10000, NULL, "100"},
	{"token_lifetime", K_DURATION, C(token_lifetime), 0, 60, 0, NULL, "3d"},
	{"confirm_per_address_per_day", K_LONG, C(confirm_per_address_per_day), 0, 0, 100000,
	 NULL, "3"},
	{"confirm_per_ip_per_hour", K_LONG, C(confirm_per_ip_per_hour), 0, 0, 100000, NULL, "30"},
	{"auto_replies_per_day", K_LONG, C(auto_replies_per_day), 0, 0, 100000, NULL, "10"},
	{"templates", K_PATH, C(templates), 0, 0, 0, NULL, "templates"},
	{"xforward_hosts", K_IPS, C(xforward_hosts), C(n_xforward_hosts), 0, 0, NULL,
	 "127.0.0.1, ::1"},
	{NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

static const struct key_def delivery_keys[] = {
	{"relay", K_ENDPOINT, C(relay), 0, 0, 0, NULL, "127.0.0.1:25"},
	{"verp", K_BOOL, C(verp), 0, 0, 0, NULL, "yes"},
	{"max_recipients", K_LONG, C(max_recipients), 0, 1, 1000, NULL, "50"},
	{"connections", K_LONG, C(connections), 0, 1, 100, NULL, "4"},
	{"retry", K_DURATIONS, C(retry), C(n_retry), 0, 0, NULL, "5m, 15m, 1h, 4h"},
	{"give_up_after", K_DURATION, C(give_up_after), 0, 60, 0, NULL, "5d"},
	{"tls", K_ENUM, C(relay_tls), 0, 0, 0, tls_names, "opportunistic"},
	{NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

static const struct key_def http_keys[] = {
	{"listen", K_LISTEN, C(http_listen), C(n_http_listen), 0, 0, NULL, NULL},
	{"base_url", K_STRING, C(base_url), 0, 0, 0, NULL, NULL},
	{"web", K_PATH, C(web_dir), 0, 0, 0, NULL, "web"},
	{"trusted_proxies", K_IPS, C(http_proxies), C(n_http_proxies), 0, 0, NULL, ""},
	{NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

static const struct key_def list_keys[] = {
	{"address", K_ADDRESS, L(address), 0, 0, 0, NULL, NULL},
	{"title", K_STRING, L(title), 0, 0, 0, NULL, NULL},
	{"description", K_STRING, L(description), 0, 0, 0, NULL, ""},
	{"subscribe_policy", K_ENUM, L(subscribe_policy), 0, 0, 0, sub_names, "confirm"},
	{"post_policy", K_ENUM, L(post_policy), 0, 0, 0, post_names, "members"},
	{"nonmember_action", K_ENUM, L(nonmember_action), 0, 0, 0, nm_names, "hold"},
	{"archive", K_ENUM, L(archive), 0, 0, 0, archive_names, "public"},
	{"subject_prefix", K_STRING, L(subject_prefix), 0, 0, 0, NULL, ""},
	{"moderators", K_ADDRESSES, L(moderators), L(n_moderators), 0, 0, NULL, ""},
	{"max_members", K_LONG, L(max_members), 0, 0, 10000000, NULL, "0"},
	{"stakeholder_groups", K_WORDS, L(stakeholder_groups), L(n_groups), 0, 0, NULL, ""},
	{"term", K_DURATION, L(term), 0, 0, 0, NULL, "0"},
	{"moderate_new_members", K_BOOL, L(moderate_new_members), 0, 0, 0, NULL, "no"},
	{"max_post_size", K_SIZE, L(max_post_size), 0, 0, 0, NULL, "0"},
	{"max_post_recipients", K_LONG, L(max_post_recipients), 0, 0, 100000, NULL, "0"},
	{"hold_expire", K_DURATION, L(hold_expire), 0, 0, 0, NULL, "14d"},
	{NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

struct parser {
	struct config *cfg;
	const char *file;
	int line;
	char *err;
	size_t errlen;
};

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (p->line > 0)
		snprintf(p->err, p->errlen, "%s:%d: %s", p->file, p->line, msg);
	else
		snprintf(p->err, p->errlen, "%s: %s", p->file, msg);
	return -1;
}

int config_parse_size(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	uint64_t mult = 1;
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K': mult = 1024ULL; end++; break;
	case 'm': case 'M': mult = 1024ULL * 1024; end++; break;
	case 'g': case 'G': mult = 1024ULL * 1024 * 1024; end++; break;
	default:
		return -1;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v > (uint64_t)INT64_MAX / mult)
		return -1;
	*out = (int64_t)(v * mult);
	return 0;
}

int config_parse_duration(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	uint64_t mult;
	switch (*end) {
	case '\0':
		mult = (v == 0) ? 1 : 0; /* a bare number is ambiguous unless 0 */
		break;
	case 's': mult = 1; end++; break;
	case 'm': mult = 60; end++; break;
	case 'h': mult = 3600; end++; break;
	case 'd': mult = 86400; end++; break;
	case 'w': mult = 7 * 86400; end++; break;
	default:
		return -1;
	}
	if (*end || mult == 0 || v > (uint64_t)INT64_MAX / mult)
		return -1;
	*out = (int64_t)(v * mult);
	return 0;
}

static int valid_hostname(const char *s)
{
	size_t n = strlen(s), label = 0;
	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!(isalnum(c) || c == '-') || (c == '-' && label == 0) || ++label > 63)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* Split a comma-separated value into trimmed, non-empty words. */
static char **split_words(const char *v, size_t *n_out)
{
	char *copy = xstrdup(v);
	char **words = NULL;
	size_t n = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		str_trim(tok);
		if (!*tok)
			continue;
		words = xrealloc(words, (n + 1) * sizeof *words);
		words[n++] = xstrdup(tok);
	}
	free(copy);
	*n_out = n;
	return words;
}

static void free_words(char **w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

/* "host:port" or "[v6]:port"; listening on every address is "0.0.0.0:port" or "[::]:port". */
static int parse_endpoint(const char *s, struct listen_addr *out)
{
	const char *colon;
	char *host;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		host = xstrndup(s + 1, (size_t)(close - s - 1));
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		if (memchr(s, ':', (size_t)(colon - s))) /* bare IPv6 needs brackets */
			return -1;
		host = xstrndup(s, (size_t)(colon - s));
	}
	const char *port = colon + 1;
	char *end;
	long pn = strtol(port, &end, 10);
	if (!*port || *end || pn < 1 || pn > 65535 || !*host) {
		free(host);
		return -1;
	}
	out->host = host;
	out->port = xstrdup(port);
	return 0;
}

static char *resolve_path(const struct config *cfg, const char *v)
{
	if (v[0] == '/' || !cfg->dir[0])
		return xstrdup(v);
	return xasprintf("%s/%s", cfg->dir, v);
}

static int set_value(struct parser *p, void *base, const struct key_def *k, const char *v)
{
	char *field = (char *)base + k->off;
	switch (k->type) {
	case K_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		return 0;
	case K_HOSTNAME:
		if (!valid_hostname(v))
			return fail(p, "%s: '%s' is not a valid host name", k->name, v);
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		ascii_lower(*(char **)field);
		return 0;
	case K_PATH:
		free(*(char **)field);
		*(char **)field = *v ? resolve_path(p->cfg, v) : NULL;
		return 0;
	case K_SIZE: {
		int64_t n;
		if (config_parse_size(v, &n) < 0)
			return fail(p, "%s: '%s' is not a size (e.g. 512K, 25M, 1G)", k->name, v);
		if (k->min && n < k->min)
			return fail(p, "%s: %s is too small (at least %ld bytes)", k->name, v, k->min);
		*(int64_t *)field = n;
		return 0;
	}
	case K_DURATION: {
		int64_t n;
		if (config_parse_duration(v, &n) < 0)
			return fail(p, "%s: '%s' is not a duration (e.g. 30s, 5m, 1h, 3d)", k->name,
				    v);
		if (k->min && n < k->min)
			return fail(p, "%s: %s is too short (at least %ld seconds)", k->name, v,
				    k->min);
		*(int64_t *)field = n;
		return 0;
	}
	case K_LONG: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (!*v || *end || errno)
			return fail(p, "%s: '%s' is not a number", k->name, v);
		if (n < k->min || n > k->max)
			return fail(p, "%s: %ld is out of range (%ld to %ld)", k->name, n, k->min,
				    k->max);
		*(long *)field = n;
		return 0;
	}
	case K_BOOL:
		if (!ascii_strcasecmp(v, "yes") || !ascii_strcasecmp(v, "true") || !strcmp(v, "1") ||
		    !ascii_strcasecmp(v, "on"))
			*(int *)field = 1;
		else if (!ascii_strcasecmp(v, "no") || !ascii_strcasecmp(v, "false") ||
			 !strcmp(v, "0") || !ascii_strcasecmp(v, "off"))
			*(int *)field = 0;
		else
			return fail(p, "%s: '%s' is not yes or no", k->name, v);
		return 0;
	case K_ENUM:
		for (int i = 0; k->names[i]; i++) {
			if (!strcmp(v, k->names[i])) {
				*(int *)field = i;
				return 0;
			}
		}
		{
			struct sbuf b = {0};
			for (int i = 0; k->names[i]; i++)
				sbuf_printf(&b, "%s%s", i ? " | " : "", k->names[i]);
			fail(p, "%s: '%s' is not one of %s", k->name, v, b.buf);
			sbuf_free(&b);
		}
		return -1;
	case K_WORDS:
	case K_IPS:
	case K_ADDRESSES: {
		size_t n;
		char **w = split_words(v, &n);
		for (size_t i = 0; i < n && k->type == K_IPS; i++) {
			unsigned char buf[16];
			if (inet_pton(AF_INET, w[i], buf) != 1 && inet_pton(AF_INET6, w[i], buf) != 1) {
				fail(p, "%s: '%s' is not a numeric IP address", k->name, w[i]);
				free_words(w, n);
				return -1;
			}
		}
		for (size_t i = 0; i < n && k->type == K_ADDRESSES; i++) {
			char *norm = address_normalize(w[i]);
			if (!norm) {
				fail(p, "%s: '%s' is not a valid address", k->name, w[i]);
				free_words(w, n);
				return -1;
			}
			free(w[i]);
			w[i] = norm;
		}
		char ***words = (char ***)field;
		size_t *count = (size_t *)((char *)base + k->count_off);
		free_words(*words, *count);
		*words = w;
		*count = n;
		return 0;
	}
	case K_LISTEN: {
		size_t n;
		char **w = split_words(v, &n);
		struct listen_addr *la = n ? xcalloc(n, sizeof *la) : NULL;
		for (size_t i = 0; i < n; i++) {
			if (parse_endpoint(w[i], &la[i]) < 0) {
				fail(p, "%s: '%s' is not HOST:PORT or [IPV6]:PORT", k->name, w[i]);
				for (size_t j = 0; j < i; j++) {
					free(la[j].host);
					free(la[j].port);
				}
				free(la);
				free_words(w, n);
				return -1;
			}
		}
		free_words(w, n);
		struct listen_addr **dst = (struct listen_addr **)field;
		size_t *count = (size_t *)((char *)base + k->count_off);
		for (size_t j = 0; j < *count; j++) {
			free((*dst)[j].host);
			free((*dst)[j].port);
		}
		free(*dst);
		*dst = la;
		*count = n;
		return 0;
	}
	case K_ENDPOINT: {
		struct listen_addr la;
		if (parse_endpoint(v, &la) < 0)
			return fail(p, "%s: '%s' is not HOST:PORT or [IPV6]:PORT", k->name, v);
		struct listen_addr *dst = (struct listen_addr *)field;
		free(dst->host);
		free(dst->port);
		*dst = la;
		return 0;
	}
	case K_DURATIONS: {
		size_t n;
		char **w = split_words(v, &n);
		int64_t *d = n ? xcalloc(n, sizeof *d) : NULL;
		for (size_t i = 0; i < n; i++) {
			if (config_parse_duration(w[i], &d[i]) < 0 || d[i] <= 0) {
				fail(p, "%s: '%s' is not a duration (e.g. 5m, 1h)", k->name, w[i]);
				free(d);
				free_words(w, n);
				return -1;
			}
		}
		free_words(w, n);
		int64_t **dst = (int64_t **)field;
		free(*dst);
		*dst = d;
		*(size_t *)((char *)base + k->count_off) = n;
		if (n == 0)
			return fail(p, "%s: needs at least one duration", k->name);
		return 0;
	}
	case K_ADDRESS: {
		char *norm = address_normalize(v);
		if (!norm)
			return fail(p, "%s: '%s' is not a valid address", k->name, v);
		ascii_lower(norm); /* list addresses are matched case-insensitively */
		free(*(char **)field);
		*(char **)field = norm;
		return 0;
	}
	}
	return fail(p, "internal error: key type");
}

static const struct key_def *find_key(const struct key_def *keys, const char *name)
{
	for (; keys->name; keys++)
		if (!strcmp(keys->name, name))
			return keys;
	return NULL;
}

/* Apply defaults for keys not seen. SEEN is indexed like KEYS. */
static int apply_defaults(struct parser *p, void *base, const struct key_def *keys,
			  const unsigned char *seen)
{
	for (size_t i = 0; keys[i].name; i++) {
		if (seen[i] || !keys[i].def)
			continue;
		if (set_value(p, base, &keys[i], keys[i].def) < 0)
			return -1;
	}
	return 0;
}

enum section { SEC_NONE, SEC_SERVER, SEC_DELIVERY, SEC_HTTP, SEC_LIST };

#define MAX_KEYS 32

static int valid_list_name(const char *s)
{
	if (!*s || strlen(s) > 64)
		return 0;
	for (const char *c = s; *c; c++)
		if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '-' ||
		      *c == '_' || *c == '.'))
			return 0;
	return 1;
}

/* Strip an inline comment: '#' at the start or after whitespace. */
static void strip_comment(char *s)
{
	for (char *c = s; *c; c++) {
		if (*c == '#' && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			return;
		}
	}
}

static int finish_section(struct parser *p, enum section sec, void *base,
			  const unsigned char *seen)
{
	switch (sec) {
	case SEC_NONE:
		return 0;
	case SEC_SERVER:
		return apply_defaults(p, base, server_keys, seen);
	case SEC_DELIVERY:
		return apply_defaults(p, base, delivery_keys, seen);
	case SEC_HTTP:
		return apply_defaults(p, base, http_keys, seen);
	case SEC_LIST:
		return apply_defaults(p, base, list_keys, seen);
	}
	return 0;
}

static const struct key_def *section_keys(enum section sec)
{
	switch (sec) {
	case SEC_SERVER: return server_keys;
	case SEC_DELIVERY: return delivery_keys;
	case SEC_HTTP: return http_keys;
	case SEC_LIST: return list_keys;
	case SEC_NONE: break;
	}
	return NULL;
}

/* Cross-key checks once the whole file is read. */
static int validate(struct parser *p)
{
	struct config *cfg = p->cfg;
	p->line = 0;
	if (!cfg->hostname) {
		char host[256];
		if (gethostname(host, sizeof host) < 0 || !valid_hostname(host))
			return fail(p, "[server] hostname is not set and the system's is unusable");
		cfg->hostname = xstrdup(host);
	}
	if ((cfg->tls_certificate == NULL) != (cfg->tls_key == NULL))
		return fail(p, "tls_certificate and tls_key must be set together");
	if (cfg->n_listen == 0)
		return fail(p, "[server] listen: no address to listen on");
	if (cfg->n_lists == 0)
		return fail(p, "no [list NAME] section: nothing to serve");
	if (cfg->n_http_listen && !cfg->base_url) {
		/* Links in mail and the forms' origin check need the name people
		 * reach the site by: a wildcard address is no such name. */
		const char *h = cfg->http_listen[0].host;
		if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !strcmp(h, "*") || !*h)
			return fail(p, "[http] base_url must be set when listen is a wildcard "
				       "address (%s)",
				    *h ? h : "any");
		cfg->base_url = xasprintf(strchr(h, ':') ? "http://[%s]:%s" : "http://%s:%s", h,
					  cfg->http_listen[0].port);
	}
	for (size_t i = 0; i < cfg->n_lists; i++) {
		struct list_cfg *l = &cfg->lists[i];
		p->line = l->line;
		if (!l->address)
			l->address = xasprintf("%s@%s", l->name, cfg->hostname);
		char *local, *domain, *buf;
		if (address_split(l->address, &local, &domain, &buf) < 0)
			return fail(p, "[list %s] address '%s' is not valid", l->name, l->address);
		l->local = xstrdup(local);
		l->domain = xstrdup(domain);
		free(buf);
		if (strchr(l->local, '+'))
			return fail(p, "[list %s] address must not contain '+' (used for tokens)",
				    l->name);
		if (!l->title)
			l->title = xstrdup(l->name);
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(cfg->lists[j].address, l->address))
				return fail(p, "[list %s] address %s is already used by list %s",
					    l->name, l->address, cfg->lists[j].name);
		}
		for (size_t g = 0; g < l->n_groups; g++)
			for (size_t h = 0; h < g; h++)
				if (!strcmp(l->stakeholder_groups[g], l->stakeholder_groups[h]))
					return fail(p, "[list %s] stakeholder group '%s' is listed twice",
						    l->name, l->stakeholder_groups[g]);
	}
	/* A list's function addresses (L-join@D, ...) must not be another list's
	 * post address, or routing would be ambiguous. */
	static const char *const suffixes[] = {"-join", "-subscribe", "-leave", "-unsubscribe",
					       "-request", "-owner", "-bounces", "-confirm",
					       "-approve", "-reject", "-withdraw", NULL};
	for (size_t i = 0; i < cfg->n_lists; i++) {
		for (size_t j = 0; j < cfg->n_lists; j++) {
			const struct list_cfg *a = &cfg->lists[i], *b = &cfg->lists[j];
			size_t al = strlen(a->local);
			if (i == j || strcmp(a->domain, b->domain) || strncmp(b->local, a->local, al))
				continue;
			for (int s = 0; suffixes[s]; s++) {
				if (!strcmp(b->local + al, suffixes[s])) {
					p->line = b->line;
					return fail(p, "[list %s] address %s clashes with list %s's %s address",
						    b->name, b->address, a->name, suffixes[s] + 1);
				}
			}
		}
	}
	return 0;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg = xcalloc(1, sizeof *cfg);
	struct parser p = {cfg, path, 0, err, errlen};
	char *text = NULL;
	enum section sec = SEC_NONE;
	void *base = NULL;
	unsigned char seen[MAX_KEYS] = {0};
	int seen_server = 0, seen_delivery = 0, seen_http = 0;

	cfg->path = xstrdup(path);
	const char *slash = strrchr(path, '/');
	cfg->dir = slash ? xstrndup(path, (size_t)(slash - path + (slash == path))) : xstrdup("");

	size_t len;
	text = read_file_all(path, &len);
	if (!text) {
		fail(&p, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (strlen(text) != len) {
		fail(&p, "contains a NUL byte");
		goto fail;
	}

	char *save = NULL, *line;
	char *cursor = text;
	(void)save;
	while ((line = cursor) != NULL) {
		char *nl = strchr(cursor, '\n');
		if (nl) {
			*nl = '\0';
			cursor = nl + 1;
		} else {
			cursor = NULL;
			if (!*line)
				break;
		}
		p.line++;
		strip_comment(line);
		str_trim(line);
		if (!*line)
			continue;
		if (*line == '[') {
			char *close = strchr(line, ']');
			if (!close || close[1]) {
				fail(&p, "malformed section header");
				goto fail;
			}
			if (finish_section(&p, sec, base, seen) < 0)
				goto fail;
			memset(seen, 0, sizeof seen);
			*close = '\0';
			char *name = str_trim(line + 1);
			if (!strcmp(name, "server") || !strcmp(name, "delivery") ||
			    !strcmp(name, "http")) {
				int *flag = name[0] == 's' ? &seen_server
					    : name[0] == 'd' ? &seen_delivery
							     : &seen_http;
				if (*flag) {
					fail(&p, "section [%s] appears twice", name);
					goto fail;
				}
				*flag = 1;
				sec = name[0] == 's' ? SEC_SERVER : name[0] == 'd' ? SEC_DELIVERY : SEC_HTTP;
				base = cfg;
			} else if (!strncmp(name, "list", 4) && (name[4] == ' ' || name[4] == '\t')) {
				char *lname = str_trim(name + 5);
				if (!valid_list_name(lname)) {
					fail(&p, "list name '%s' must be lowercase letters, digits, '-', '_' or '.'",
					     lname);
					goto fail;
				}
				for (size_t i = 0; i < cfg->n_lists; i++) {
					if (!strcmp(cfg->lists[i].name, lname)) {
						fail(&p, "list '%s' is defined twice", lname);
						goto fail;
					}
				}
				cfg->lists = xrealloc(cfg->lists, (cfg->n_lists + 1) * sizeof *cfg->lists);
				struct list_cfg *l = &cfg->lists[cfg->n_lists++];
				memset(l, 0, sizeof *l);
				l->name = xstrdup(lname);
				l->line = p.line;
				sec = SEC_LIST;
				base = l;
			} else {
				fail(&p, "unknown section [%s]", name);
				goto fail;
			}
			continue;
		}
		char *eq = strchr(line, '=');
		if (!eq) {
			fail(&p, "expected 'key = value'");
			goto fail;
		}
		*eq = '\0';
		char *key = str_trim(line);
		char *value = str_trim(eq + 1);
		if (sec == SEC_NONE) {
			fail(&p, "'%s' is outside any section", key);
			goto fail;
		}
		const struct key_def *keys = section_keys(sec);
		const struct key_def *k = find_key(keys, key);
		if (!k) {
			fail(&p, "unknown key '%s'", key);
			goto fail;
		}
		size_t idx = (size_t)(k - keys);
		if (seen[idx]) {
			fail(&p, "key '%s' is set twice in this section", key);
			goto fail;
		}
		seen[idx] = 1;
		if (set_value(&p, base, k, value) < 0)
			goto fail;
	}
	if (finish_section(&p, sec, base, seen) < 0)
		goto fail;
	/* Sections that never appeared still get their defaults. */
	memset(seen, 0, sizeof seen);
	p.line = 0;
	if ((!seen_server && apply_defaults(&p, cfg, server_keys, seen) < 0) ||
	    (!seen_delivery && apply_defaults(&p, cfg, delivery_keys, seen) < 0))
		goto fail;
	if (!seen_http && (!cfg->web_dir))
		cfg->web_dir = resolve_path(cfg, "web");
	if (validate(&p) < 0)
		goto fail;
	free(text);
	return cfg;
fail:
	free(text);
	config_free(cfg);
	return NULL;
}

static void free_list(struct list_cfg *l)
{
	free(l->name);
	free(l->address);
	free(l->local);
	free(l->domain);
	free(l->title);
	free(l->description);
	free(l->subject_prefix);
	free_words(l->moderators, l->n_moderators);
	free_words(l->stakeholder_groups, l->n_groups);
}

static void free_endpoints(struct listen_addr *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].host);
		free(a[i].port);
	}
	free(a);
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->dir);
	free(cfg->hostname);
	free_endpoints(cfg->listen, cfg->n_listen);
	free(cfg->database);
	free(cfg->secret_file);
	free(cfg->tls_certificate);
	free(cfg->tls_key);
	free(cfg->templates);
	free_words(cfg->xforward_hosts, cfg->n_xforward_hosts);
	free_words(cfg->http_proxies, cfg->n_http_proxies);
	free(cfg->relay.host);
	free(cfg->relay.port);
	free(cfg->retry);
	free_endpoints(cfg->http_listen, cfg->n_http_listen);
	free(cfg->base_url);
	free(cfg->web_dir);
	for (size_t i = 0; i < cfg->n_lists; i++)
		free_list(&cfg->lists[i]);
	free(cfg->lists);
	free(cfg);
}

const char *config_default_path(void)
{
	const char *env = getenv("DIALOGUE_CONF");
	return (env && *env) ? env : "/etc/dialogue/dialogue.conf";
}

const struct list_cfg *config_find_list(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_lists; i++)
		if (!strcmp(cfg->lists[i].name, name))
			return &cfg->lists[i];
	return NULL;
}

int config_is_list_domain(const struct config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->n_lists; i++)
		if (!ascii_strcasecmp(cfg->lists[i].domain, domain))
			return 1;
	return 0;
}

int config_list_has_group(const struct list_cfg *l, const char *group)
{
	if (l->n_groups == 0)
		return 1;
	for (size_t i = 0; i < l->n_groups; i++)
		if (!strcmp(l->stakeholder_groups[i], group))
			return 1;
	return 0;
}

const char *config_sub_policy_name(enum sub_policy p)
{
	return sub_names[p];
}

const char *config_post_policy_name(enum post_policy p)
{
	return post_names[p];
}

const char *config_nonmember_action_name(enum nonmember_action a)
{
	return nm_names[a];
}

const char *config_archive_name(enum archive_mode a)
{
	return archive_names[a];
}
