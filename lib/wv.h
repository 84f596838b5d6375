/* wv: the values a page is rendered with (lib/webtpl.c renders them): a
 * view holds named values — text (escaped when rendered), HTML our own
 * code made, and lists of nested views, each of which sees its own names
 * first, then its parent's. Built per request, freed with the root. */
#ifndef DIALOGUE_WV_H
#define DIALOGUE_WV_H

#include <stddef.h>

enum wv_kind { WV_TEXT, WV_HTML, WV_LIST };

struct wv;

struct wv_entry {
	char *name;
	enum wv_kind kind;
	char *s;           /* WV_TEXT, WV_HTML */
	struct wv **items; /* WV_LIST */
	size_t n_items;
};

struct wv {
	struct wv *parent;
	struct wv_entry *e;
	size_t n, cap;
};

struct wv *wv_new(void);
/* Frees V and everything under it. */
void wv_free(struct wv *v);
/* Text: escaped when rendered. Copies VALUE (NULL is ""). */
void wv_text(struct wv *v, const char *name, const char *value);
void wv_textf(struct wv *v, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* HTML made by our own code; V takes ownership of HTML (a malloc'd string). */
void wv_html(struct wv *v, const char *name, char *html);
/* A flag for sections: set means "yes". */
void wv_flag(struct wv *v, const char *name, int on);
/* Append an item to the list NAME and return it (owned by V). */
struct wv *wv_item(struct wv *v, const char *name);

/* The value NAME in V or the nearest view around it; NULL when none. */
const struct wv_entry *wv_lookup(const struct wv *v, const char *name);
/* Is E absent, an empty text, or an empty list? */
int wv_empty(const struct wv_entry *e);

#endif
