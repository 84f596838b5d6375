/* config_keys: what keys exist and how their values are read. Every key of
 * every section is declared once in the tables below with its type, so
 * validation, defaults and the "unknown key" check all follow from one
 * place; config_set_value reads one value by its key's type. */
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "util.h"

const char *const config_sub_names[] = {"open", "confirm", "approve", "closed", NULL};
const char *const config_post_names[] = {"open", "members", "moderated", "announce", NULL};
const char *const config_nm_names[] = {"accept", "hold", "reject", "discard", NULL};
const char *const config_archive_names[] = {"public", "private", "none", NULL};
static const char *const tls_names[] = {"no", "opportunistic", "required", NULL};

#define C(f) offsetof(struct config, f)
#define L(f) offsetof(struct list_cfg, f)

const struct key_def config_server_keys[] = {
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

const struct key_def config_delivery_keys[] = {
	{"relay", K_ENDPOINT, C(relay), 0, 0, 0, NULL, "127.0.0.1:25"},
	{"verp", K_BOOL, C(verp), 0, 0, 0, NULL, "yes"},
	{"max_recipients", K_LONG, C(max_recipients), 0, 1, 1000, NULL, "50"},
	{"connections", K_LONG, C(connections), 0, 1, 100, NULL, "4"},
	{"retry", K_DURATIONS, C(retry), C(n_retry), 0, 0, NULL, "5m, 15m, 1h, 4h"},
	{"give_up_after", K_DURATION, C(give_up_after), 0, 60, 0, NULL, "5d"},
	{"tls", K_ENUM, C(relay_tls), 0, 0, 0, tls_names, "opportunistic"},
	{NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

const struct key_def config_http_keys[] = {
	{"listen", K_LISTEN, C(http_listen), C(n_http_listen), 0, 0, NULL, NULL},
	{"base_url", K_STRING, C(base_url), 0, 0, 0, NULL, NULL},
	{"web", K_PATH, C(web_dir), 0, 0, 0, NULL, "web"},
	{"trusted_proxies", K_IPS, C(http_proxies), C(n_http_proxies), 0, 0, NULL, ""},
	{NULL, 0, 0, 0, 0, 0, NULL, NULL},
};

const struct key_def config_list_keys[] = {
	{"address", K_ADDRESS, L(address), 0, 0, 0, NULL, NULL},
	{"title", K_STRING, L(title), 0, 0, 0, NULL, NULL},
	{"description", K_STRING, L(description), 0, 0, 0, NULL, ""},
	{"subscribe_policy", K_ENUM, L(subscribe_policy), 0, 0, 0, config_sub_names, "confirm"},
	{"post_policy", K_ENUM, L(post_policy), 0, 0, 0, config_post_names, "members"},
	{"nonmember_action", K_ENUM, L(nonmember_action), 0, 0, 0, config_nm_names, "hold"},
	{"archive", K_ENUM, L(archive), 0, 0, 0, config_archive_names, "public"},
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

struct unit {
	char c;
	uint64_t mult;
};

/* A decimal number with an optional unit letter from UNITS (ending with
 * {0, 0}); without one the multiplier is BARE, where 0 means a unit is
 * required (except for 0 itself). SUFFIXES are letters that may follow the
 * unit and mean nothing ("B" of "25MB"), NULL for none. */
static int parse_scaled(const char *s, const struct unit *units, uint64_t bare,
			const char *suffixes, int64_t *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	uint64_t mult = 0;
	int unit = 0;
	for (const struct unit *u = units; *end && u->c && !unit; u++)
		if (*end == u->c) {
			mult = u->mult;
			end++;
			unit = 1;
		}
	if (!unit)
		mult = bare ? bare : (v == 0);
	else if (*end && suffixes && strchr(suffixes, *end))
		end++;
	if (*end || mult == 0 || v > (uint64_t)INT64_MAX / mult)
		return -1;
	*out = (int64_t)(v * mult);
	return 0;
}

int config_parse_size(const char *s, int64_t *out)
{
	static const struct unit units[] = {
		{'k', 1024ULL}, {'K', 1024ULL}, {'m', 1024ULL * 1024}, {'M', 1024ULL * 1024},
		{'g', 1024ULL * 1024 * 1024}, {'G', 1024ULL * 1024 * 1024}, {0, 0}};
	return parse_scaled(s, units, 1, "bB", out);
}

int config_parse_duration(const char *s, int64_t *out)
{
	/* A bare number is ambiguous (seconds? days?) unless it is 0. */
	static const struct unit units[] = {{'s', 1},	  {'m', 60},	     {'h', 3600},
					    {'d', 86400}, {'w', 7 * 86400}, {0, 0}};
	return parse_scaled(s, units, 0, NULL, out);
}

int config_valid_hostname(const char *s)
{
	/* A host name is a domain name of at most 253 characters (RFC 1035's
	 * 255 octets on the wire). */
	return strlen(s) <= 253 && address_valid_domain(s);
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

void config_free_words(char **w, size_t n)
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

char *config_resolve_path(const struct config *cfg, const char *v)
{
	if (v[0] == '/' || !cfg->dir[0])
		return xstrdup(v);
	return xasprintf("%s/%s", cfg->dir, v);
}

int config_set_value(struct parser *p, void *base, const struct key_def *k, const char *v)
{
	char *field = (char *)base + k->off;
	switch (k->type) {
	case K_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		return 0;
	case K_HOSTNAME:
		if (!config_valid_hostname(v))
			return config_fail(p, "%s: '%s' is not a valid host name", k->name, v);
		free(*(char **)field);
		*(char **)field = xstrdup(v);
		ascii_lower(*(char **)field);
		return 0;
	case K_PATH:
		free(*(char **)field);
		*(char **)field = *v ? config_resolve_path(p->cfg, v) : NULL;
		return 0;
	case K_SIZE: {
		int64_t n;
		if (config_parse_size(v, &n) < 0)
			return config_fail(p, "%s: '%s' is not a size (e.g. 512K, 25M, 1G)", k->name, v);
		if (k->min && n < k->min)
			return config_fail(p, "%s: %s is too small (at least %ld bytes)", k->name, v, k->min);
		*(int64_t *)field = n;
		return 0;
	}
	case K_DURATION: {
		int64_t n;
		if (config_parse_duration(v, &n) < 0)
			return config_fail(p, "%s: '%s' is not a duration (e.g. 30s, 5m, 1h, 3d)",
					   k->name, v);
		if (k->min && n < k->min)
			return config_fail(p, "%s: %s is too short (at least %ld seconds)", k->name,
					   v, k->min);
		*(int64_t *)field = n;
		return 0;
	}
	case K_LONG: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (!*v || *end || errno)
			return config_fail(p, "%s: '%s' is not a number", k->name, v);
		if (n < k->min || n > k->max)
			return config_fail(p, "%s: %ld is out of range (%ld to %ld)", k->name, n,
					   k->min, k->max);
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
			return config_fail(p, "%s: '%s' is not yes or no", k->name, v);
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
			config_fail(p, "%s: '%s' is not one of %s", k->name, v, b.buf);
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
				config_fail(p, "%s: '%s' is not a numeric IP address", k->name,
					    w[i]);
				config_free_words(w, n);
				return -1;
			}
		}
		for (size_t i = 0; i < n && k->type == K_ADDRESSES; i++) {
			char *norm = address_normalize(w[i]);
			if (!norm) {
				config_fail(p, "%s: '%s' is not a valid address", k->name, w[i]);
				config_free_words(w, n);
				return -1;
			}
			free(w[i]);
			w[i] = norm;
		}
		char ***words = (char ***)field;
		size_t *count = (size_t *)((char *)base + k->count_off);
		config_free_words(*words, *count);
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
				config_fail(p, "%s: '%s' is not HOST:PORT or [IPV6]:PORT", k->name,
					    w[i]);
				for (size_t j = 0; j < i; j++) {
					free(la[j].host);
					free(la[j].port);
				}
				free(la);
				config_free_words(w, n);
				return -1;
			}
		}
		config_free_words(w, n);
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
			return config_fail(p, "%s: '%s' is not HOST:PORT or [IPV6]:PORT", k->name,
					   v);
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
				config_fail(p, "%s: '%s' is not a duration (e.g. 5m, 1h)", k->name,
					    w[i]);
				free(d);
				config_free_words(w, n);
				return -1;
			}
		}
		config_free_words(w, n);
		int64_t **dst = (int64_t **)field;
		free(*dst);
		*dst = d;
		*(size_t *)((char *)base + k->count_off) = n;
		if (n == 0)
			return config_fail(p, "%s: needs at least one duration", k->name);
		return 0;
	}
	case K_ADDRESS: {
		char *norm = address_normalize(v);
		if (!norm)
			return config_fail(p, "%s: '%s' is not a valid address", k->name, v);
		ascii_lower(norm); /* list addresses are matched case-insensitively */
		free(*(char **)field);
		*(char **)field = norm;
		return 0;
	}
	}
	return config_fail(p, "internal error: key type");
}
