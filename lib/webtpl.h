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
#include "wv.h"

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

/* Render page NAME with V into OUT inside the layout. -1 when there is no
 * such page. V gains "content". */
int webtpl_render(const struct webtpl *t, const char *name, struct wv *v, struct sbuf *out);

#endif
