/* config: a table-driven INI reader. Every key of every section is declared
 * once in the tables in config_keys.c with its type, so validation, defaults
 * and the "unknown key" check all follow from one place. This file reads the
 * lines and sections, applies defaults, checks the whole and answers
 * lookups. */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "address.h"
#include "util.h"

int config_fail(struct parser *p, const char *fmt, ...)
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
		if (config_set_value(p, base, &keys[i], keys[i].def) < 0)
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
		return apply_defaults(p, base, config_server_keys, seen);
	case SEC_DELIVERY:
		return apply_defaults(p, base, config_delivery_keys, seen);
	case SEC_HTTP:
		return apply_defaults(p, base, config_http_keys, seen);
	case SEC_LIST:
		return apply_defaults(p, base, config_list_keys, seen);
	}
	return 0;
}

static const struct key_def *section_keys(enum section sec)
{
	switch (sec) {
	case SEC_SERVER: return config_server_keys;
	case SEC_DELIVERY: return config_delivery_keys;
	case SEC_HTTP: return config_http_keys;
	case SEC_LIST: return config_list_keys;
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
		if (gethostname(host, sizeof host) < 0 || !config_valid_hostname(host))
			return config_fail(p,
					   "[server] hostname is not set and the system's is unusable");
		cfg->hostname = xstrdup(host);
	}
	if ((cfg->tls_certificate == NULL) != (cfg->tls_key == NULL))
		return config_fail(p, "tls_certificate and tls_key must be set together");
	if (cfg->n_listen == 0)
		return config_fail(p, "[server] listen: no address to listen on");
	if (cfg->n_lists == 0)
		return config_fail(p, "no [list NAME] section: nothing to serve");
	if (cfg->n_http_listen && !cfg->base_url) {
		/* Links in mail and the forms' origin check need the name people
		 * reach the site by: a wildcard address is no such name. */
		const char *h = cfg->http_listen[0].host;
		if (!strcmp(h, "0.0.0.0") || !strcmp(h, "::") || !strcmp(h, "*") || !*h)
			return config_fail(p, "[http] base_url must be set when listen is a wildcard "
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
			return config_fail(p, "[list %s] address '%s' is not valid", l->name,
					   l->address);
		l->local = xstrdup(local);
		l->domain = xstrdup(domain);
		free(buf);
		if (strchr(l->local, '+'))
			return config_fail(p, "[list %s] address must not contain '+' (used for tokens)",
					   l->name);
		if (!l->title)
			l->title = xstrdup(l->name);
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(cfg->lists[j].address, l->address))
				return config_fail(p, "[list %s] address %s is already used by list %s",
						   l->name, l->address, cfg->lists[j].name);
		}
		for (size_t g = 0; g < l->n_groups; g++)
			for (size_t h = 0; h < g; h++)
				if (!strcmp(l->stakeholder_groups[g], l->stakeholder_groups[h]))
					return config_fail(p, "[list %s] stakeholder group '%s' is listed twice",
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
					return config_fail(p, "[list %s] address %s clashes with list %s's %s address",
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
		config_fail(&p, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (strlen(text) != len) {
		config_fail(&p, "contains a NUL byte");
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
				config_fail(&p, "malformed section header");
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
					config_fail(&p, "section [%s] appears twice", name);
					goto fail;
				}
				*flag = 1;
				sec = name[0] == 's' ? SEC_SERVER : name[0] == 'd' ? SEC_DELIVERY : SEC_HTTP;
				base = cfg;
			} else if (!strncmp(name, "list", 4) && (name[4] == ' ' || name[4] == '\t')) {
				char *lname = str_trim(name + 5);
				if (!valid_list_name(lname)) {
					config_fail(&p, "list name '%s' must be lowercase letters, digits, '-', '_' or '.'",
						    lname);
					goto fail;
				}
				for (size_t i = 0; i < cfg->n_lists; i++) {
					if (!strcmp(cfg->lists[i].name, lname)) {
						config_fail(&p, "list '%s' is defined twice", lname);
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
				config_fail(&p, "unknown section [%s]", name);
				goto fail;
			}
			continue;
		}
		char *eq = strchr(line, '=');
		if (!eq) {
			config_fail(&p, "expected 'key = value'");
			goto fail;
		}
		*eq = '\0';
		char *key = str_trim(line);
		char *value = str_trim(eq + 1);
		if (sec == SEC_NONE) {
			config_fail(&p, "'%s' is outside any section", key);
			goto fail;
		}
		const struct key_def *keys = section_keys(sec);
		const struct key_def *k = find_key(keys, key);
		if (!k) {
			config_fail(&p, "unknown key '%s'", key);
			goto fail;
		}
		size_t idx = (size_t)(k - keys);
		if (seen[idx]) {
			config_fail(&p, "key '%s' is set twice in this section", key);
			goto fail;
		}
		seen[idx] = 1;
		if (config_set_value(&p, base, k, value) < 0)
			goto fail;
	}
	if (finish_section(&p, sec, base, seen) < 0)
		goto fail;
	/* Sections that never appeared still get their defaults. */
	memset(seen, 0, sizeof seen);
	p.line = 0;
	if ((!seen_server && apply_defaults(&p, cfg, config_server_keys, seen) < 0) ||
	    (!seen_delivery && apply_defaults(&p, cfg, config_delivery_keys, seen) < 0))
		goto fail;
	if (!seen_http && (!cfg->web_dir))
		cfg->web_dir = config_resolve_path(cfg, "web");
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
	config_free_words(l->moderators, l->n_moderators);
	config_free_words(l->stakeholder_groups, l->n_groups);
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
	config_free_words(cfg->xforward_hosts, cfg->n_xforward_hosts);
	config_free_words(cfg->http_proxies, cfg->n_http_proxies);
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

const char *config_list_title(const struct list_cfg *l)
{
	return l->title && *l->title ? l->title : l->name;
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
	return config_sub_names[p];
}

const char *config_post_policy_name(enum post_policy p)
{
	return config_post_names[p];
}

const char *config_nonmember_action_name(enum nonmember_action a)
{
	return config_nm_names[a];
}

const char *config_archive_name(enum archive_mode a)
{
	return config_archive_names[a];
}
