/* webtpl: the page templates — syntax, escaping, sections, errors, and the
 * shipped files being exactly the built-in copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "util.h"
#include "webtpl.h"

static char tmpdir[] = "/tmp/test_webtpl.XXXXXX";

/* Write every page of a web directory: LAYOUT, NOTICE and the rest as a
 * copy of NOTICE (so the directory is complete). */
static void write_dir(const char *layout, const char *notice)
{
	for (const char *const *n = webtpl_names(); *n; n++) {
		char path[256];
		snprintf(path, sizeof path, "%s/%s.html", tmpdir, *n);
		FILE *f = fopen(path, "w");
		fputs(!strcmp(*n, "layout") ? layout : notice, f);
		fclose(f);
	}
	char path[256];
	snprintf(path, sizeof path, "%s/style.css", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("body{}", f);
	fclose(f);
}

static char *render_with(const char *layout, const char *page, struct wv *v)
{
	char err[512];
	write_dir(layout, page);
	struct webtpl *t = webtpl_load(tmpdir, err, sizeof err);
	if (!t) {
		fprintf(stderr, "load: %s\n", err);
		wv_free(v);
		return NULL;
	}
	struct sbuf out = {0};
	CHECK_INT(webtpl_render(t, "notice", v, &out), 0);
	CHECK_INT(webtpl_render(t, "no-such-page", v, &out), -1);
	wv_free(v);
	webtpl_free(t);
	return sbuf_detach(&out);
}

static void test_escaping(void)
{
	struct wv *v = wv_new();
	wv_text(v, "title", "<script>alert(1)</script>");
	wv_text(v, "attr", "\" onmouseover=\"x");
	wv_html(v, "ours", xstrdup("<b>bold</b>"));
	char *s = render_with("<t>{{title}}</t>{{{content}}}",
			      "<a title=\"{{attr}}\">{{{title}}}</a>{{ours}}|{{{ours}}}", v);
	/* Text is escaped even in a triple tag; HTML of ours is never. */
	CHECK_STR(s, "<t>&lt;script&gt;alert(1)&lt;/script&gt;</t>"
		     "<a title=\"&quot; onmouseover=&quot;x\">&lt;script&gt;alert(1)&lt;/script&gt;</a>"
		     "<b>bold</b>|<b>bold</b>");
	free(s);
}

static void test_sections(void)
{
	struct wv *v = wv_new();
	wv_text(v, "list", "L");
	wv_flag(v, "yes", 1);
	wv_flag(v, "no", 0);
	for (int i = 1; i <= 3; i++) {
		struct wv *it = wv_item(v, "items");
		wv_textf(it, "n", "%d", i);
		if (i == 2)
			wv_text(it, "list", "inner");
	}
	char *s = render_with("{{{content}}}",
			      "{{#yes}}Y{{/yes}}{{#no}}N{{/no}}{{^no}}!N{{/no}}{{^absent}}A{{/absent}}"
			      "[{{#items}}{{n}}:{{list}};{{/items}}]{{^items}}none{{/items}}"
			      "{{#empty}}E{{/empty}}",
			      v);
	/* A name is looked up in the item first, then outward. */
	CHECK_STR(s, "Y!NA[1:L;2:inner;3:L;]");
	free(s);
}

static void load_error(const char *page, const char *want)
{
	char err[512] = "";
	write_dir("{{{content}}}", page);
	struct webtpl *t = webtpl_load(tmpdir, err, sizeof err);
	CHECK(t == NULL);
	CHECK(strstr(err, want) != NULL);
	if (!strstr(err, want))
		fprintf(stderr, "  error was: %s\n", err);
	webtpl_free(t);
}

static void test_errors(void)
{
	load_error("{{#a}}x", "never closed");
	load_error("{{/a}}", "closes no open section");
	load_error("{{#a}}{{/b}}", "closes no open section");
	load_error("line\n{{oops", ":2: unclosed tag");
	load_error("{{Bad Name}}", "bad name");
	load_error("{{}}", "bad name");
}

/* The source tree: DIALOGUE_SRC (ctest always sets it), else the tree this
 * file was compiled from (__FILE__ ends in tests/unit/test_webtpl.c), or
 * NULL when that is not known. Caller frees. */
static char *source_dir(void)
{
	const char *env = getenv("DIALOGUE_SRC");
	if (env && *env)
		return xstrdup(env);
	const char *file = __FILE__, *tail = "/tests/unit/test_webtpl.c";
	size_t fl = strlen(file), tl = strlen(tail);
	if (fl > tl && !strcmp(file + fl - tl, tail))
		return xstrndup(file, fl - tl);
	if (!strcmp(file, tail + 1))
		return xstrdup(".");
	return NULL;
}

/* The built-ins are the shipped files: loading config/web gives the same
 * tag as loading nothing from a directory without files. */
static void test_builtins(void)
{
	char err[512];
	struct webtpl *none = webtpl_load("/nonexistent-dir", err, sizeof err);
	CHECK(none != NULL);
	char *src = source_dir();
	if (!src) {
		fprintf(stderr,
			"test_builtins: DIALOGUE_SRC is not set and %s does not say where the"
			" source tree is: cannot compare the built-ins with config/web\n",
			__FILE__);
		CHECK(src != NULL);
	} else {
		char *dir = xasprintf("%s/config/web", src);
		/* A missing file would load as its built-in copy and compare
		 * equal: every one must be there. */
		int all = 1;
		for (const char *const *n = webtpl_names(); *n; n++) {
			char *path = xasprintf("%s/%s.html", dir, *n);
			struct stat sb;
			if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
				fprintf(stderr, "test_builtins: no %s\n", path);
				all = 0;
			}
			free(path);
		}
		char *css = xasprintf("%s/style.css", dir);
		struct stat sb;
		if (stat(css, &sb) != 0 || !S_ISREG(sb.st_mode)) {
			fprintf(stderr, "test_builtins: no %s\n", css);
			all = 0;
		}
		free(css);
		CHECK(all);
		struct webtpl *shipped = webtpl_load(dir, err, sizeof err);
		CHECK(shipped != NULL);
		if (!shipped)
			fprintf(stderr, "  load %s: %s\n", dir, err);
		if (shipped && none)
			CHECK_STR(webtpl_tag(shipped), webtpl_tag(none));
		webtpl_free(shipped);
		free(dir);
		free(src);
	}
	if (!none)
		return;
	/* Every page renders with no values at all. */
	for (const char *const *n = webtpl_names(); *n; n++) {
		struct wv *v = wv_new();
		struct sbuf out = {0};
		CHECK_INT(webtpl_render(none, *n, v, &out), 0);
		CHECK(out.len > 0 && strstr(out.buf, "<html") != NULL);
		sbuf_free(&out);
		wv_free(v);
	}
	size_t len = 0;
	CHECK(webtpl_css(none, &len) != NULL && len > 100);
	webtpl_free(none);
}

int main(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_escaping();
	test_sections();
	test_errors();
	test_builtins();
	for (const char *const *n = webtpl_names(); *n; n++) {
		char path[256];
		snprintf(path, sizeof path, "%s/%s.html", tmpdir, *n);
		unlink(path);
	}
	char path[256];
	snprintf(path, sizeof path, "%s/style.css", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return test_result();
}
