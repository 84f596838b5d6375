/* webtpl: the HTML pages of the website, from small templates in the
 * [http] web directory (config/web/), loaded once at start and on SIGHUP;
 * a file that is absent falls back to the built-in copy of the shipped one.
 *
 * Syntax (a subset of mustache): {{name}} inserts a value HTML-escaped,
 * {{{name}}} inserts HTML the program itself produced (never text from
 * mail), {{#name}}...{{/name}} repeats for each item of a list or keeps its
 * content once when a value is set and not empty, {{^name}}...{{/name}}
 * keeps its content only when it is absent or empty. Inside a list item
 * names are looked up in the item first, then outward.
 *
 * Every page is rendered into the template "layout" as {{{content}}}. */
#ifndef DIALOGUE_WEBTPL_H
#define DIALOGUE_WEBTPL_H

#include <stddef.h>

#include "util.h"

struct webtpl;

/* The pages every web directory provides (and the built-ins cover). */
const char *const *webtpl_names(void);

/* Load every page (NAME.html) and style.css from DIR; missing files take
 * the built-in copy. A template with unbalanced sections is an error:
 * NULL with "FILE:LINE: what" in ERR. */
struct webtpl *webtpl_load(const char *dir, char *err, size_t errlen);
void webtpl_free(struct webtpl *t);
/* The stylesheet, and a short tag that changes whenever any template does
 * (part of every ETag, so a reload invalidates cached pages). */
const char *webtpl_css(const struct webtpl *t, size_t *len);
const char *webtpl_tag(const struct webtpl *t);

/* ---- the values a page is rendered with ---- */

struct wv;
struct wv *wv_new(void);
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

/* Render page NAME with V into OUT inside the layout. -1 when there is no
 * such page. V gains "content". */
int webtpl_render(const struct webtpl *t, const char *name, struct wv *v, struct sbuf *out);

#endif
