/* wv: the values a page is rendered with — a tree of named texts, HTML
 * fragments and lists of nested views, built per request and freed after.
 * Lookups are linear: a view holds a few dozen names at most. */
#include "wv.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct wv *wv_new(void)
{
	return xcalloc(1, sizeof(struct wv));
}

void wv_free(struct wv *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		free(v->e[i].name);
		free(v->e[i].s);
		for (size_t j = 0; j < v->e[i].n_items; j++)
			wv_free(v->e[i].items[j]);
		free(v->e[i].items);
	}
	free(v->e);
	free(v);
}

static struct wv_entry *entry_in(const struct wv *v, const char *name)
{
	for (size_t i = v->n; i-- > 0;)
		if (!strcmp(v->e[i].name, name))
			return &v->e[i];
	return NULL;
}

/* The entry NAME of V, replacing a text or HTML value set before. */
static struct wv_entry *entry_set(struct wv *v, const char *name, enum wv_kind kind)
{
	struct wv_entry *e = entry_in(v, name);
	if (e && e->kind != WV_LIST && kind != WV_LIST) {
		free(e->s);
		e->s = NULL;
		e->kind = kind;
		return e;
	}
	if (e)
		return e;
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->e = xrealloc(v->e, v->cap * sizeof *v->e);
	}
	e = &v->e[v->n++];
	memset(e, 0, sizeof *e);
	e->name = xstrdup(name);
	e->kind = kind;
	return e;
}

void wv_text(struct wv *v, const char *name, const char *value)
{
	entry_set(v, name, WV_TEXT)->s = xstrdup(value ? value : "");
}

void wv_textf(struct wv *v, const char *name, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	entry_set(v, name, WV_TEXT)->s = s;
}

void wv_html(struct wv *v, const char *name, char *html)
{
	entry_set(v, name, WV_HTML)->s = html ? html : xstrdup("");
}

void wv_flag(struct wv *v, const char *name, int on)
{
	wv_text(v, name, on ? "yes" : "");
}

struct wv *wv_item(struct wv *v, const char *name)
{
	struct wv_entry *e = entry_set(v, name, WV_LIST);
	if (e->kind != WV_LIST) { /* was text: a list now */
		free(e->s);
		e->s = NULL;
		e->kind = WV_LIST;
	}
	struct wv *item = wv_new();
	item->parent = v;
	e->items = xrealloc(e->items, (e->n_items + 1) * sizeof *e->items);
	e->items[e->n_items++] = item;
	return item;
}

const struct wv_entry *wv_lookup(const struct wv *v, const char *name)
{
	for (; v; v = v->parent) {
		const struct wv_entry *e = entry_in(v, name);
		if (e)
			return e;
	}
	return NULL;
}

int wv_empty(const struct wv_entry *e)
{
	if (!e)
		return 1;
	if (e->kind == WV_LIST)
		return e->n_items == 0;
	return !e->s || !e->s[0];
}
