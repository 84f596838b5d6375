/* config internals shared by config.c (the INI reader, sections, defaults
 * and validation) and config_keys.c (what keys exist and how their values
 * are read). Not part of the config interface: nothing outside
 * lib/config*.c includes it. */
#ifndef DIALOGUE_CONFIG_INT_H
#define DIALOGUE_CONFIG_INT_H

#include <stddef.h>

#include "config.h"

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

/* The keys of each section, ended by an entry whose name is NULL. A key's
 * index in its table is its slot in config.c's "seen" array. */
extern const struct key_def config_server_keys[];
extern const struct key_def config_delivery_keys[];
extern const struct key_def config_http_keys[];
extern const struct key_def config_list_keys[];

/* The values of the K_ENUM keys, indexed like their enums, NULL-ended. */
extern const char *const config_sub_names[];
extern const char *const config_post_names[];
extern const char *const config_nm_names[];
extern const char *const config_archive_names[];

struct parser {
	struct config *cfg;
	const char *file;
	int line;
	char *err;
	size_t errlen;
};

/* Write "FILE:LINE: message" (or "FILE: message" when P has no line) to
 * P's error buffer and return -1. */
int config_fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read V as the value of key K into the struct at BASE (a struct config or
 * a struct list_cfg), replacing what was there. -1 (error written) on a bad
 * value. */
int config_set_value(struct parser *p, void *base, const struct key_def *k, const char *v);

/* Is S a syntactically valid domain name? */
int config_valid_hostname(const char *s);
/* V against the config's directory unless V is absolute; the caller frees. */
char *config_resolve_path(const struct config *cfg, const char *v);
/* Free N words from a K_WORDS-like value (W may be NULL when N is 0). */
void config_free_words(char **w, size_t n);

#endif
