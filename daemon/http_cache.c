/* http_cache: the last rendered pages, keyed by their ETag. A thread list
 * costs a few milliseconds to read and render and is the page everyone
 * opens; its ETag names the archive's state, so a page that is still
 * valid is found by its ETag alone, and a stale one is never asked for
 * again and ages out. Small and fixed: HTTP_CACHE_SLOTS pages at most. */
#include "http_int.h"

#include <stdlib.h>
#include <string.h>

#define HTTP_CACHE_SLOTS 32
#define HTTP_CACHE_MAX_PAGE (1024 * 1024)

struct http_cache_slot {
	char *key;
	char *body;
	size_t len;
	uint64_t used; /* when last served, in lookups */
};

struct http_cache {
	struct http_cache_slot slot[HTTP_CACHE_SLOTS];
	uint64_t clock;
};

static struct http_cache *cache_of(struct http_server *hs)
{
	if (!hs->cache)
		hs->cache = xcalloc(1, sizeof *hs->cache);
	return hs->cache;
}

const char *http_cache_get(struct http_server *hs, const char *key, size_t *len)
{
	struct http_cache *c = cache_of(hs);
	c->clock++;
	for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++) {
		struct http_cache_slot *s = &c->slot[i];
		if (s->key && !strcmp(s->key, key)) {
			s->used = c->clock;
			*len = s->len;
			return s->body;
		}
	}
	return NULL;
}

void http_cache_put(struct http_server *hs, const char *key, const char *body, size_t len)
{
	struct http_cache *c = cache_of(hs);
	if (len > HTTP_CACHE_MAX_PAGE)
		return;
	struct http_cache_slot *victim = &c->slot[0];
	for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++) {
		struct http_cache_slot *s = &c->slot[i];
		if (!s->key) {
			victim = s;
			break;
		}
		if (s->used < victim->used)
			victim = s;
	}
	free(victim->key);
	free(victim->body);
	victim->key = xstrdup(key);
	victim->body = xstrndup(body, len);
	victim->len = len;
	victim->used = ++c->clock;
}

void http_cache_clear(struct http_server *hs)
{
	if (!hs->cache)
		return;
	for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++) {
		free(hs->cache->slot[i].key);
		free(hs->cache->slot[i].body);
	}
	free(hs->cache);
	hs->cache = NULL;
}
