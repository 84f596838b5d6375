#include "output.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

char *out_clean(const char *str, size_t len, int keep_lines)
{
	const unsigned char *s = (const unsigned char *)str;
	struct sbuf b = {0};
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		if (c < 0x20 || c == 0x7f) {
			if (keep_lines && (c == '\n' || c == '\t'))
				sbuf_addc(&b, (char)c);
			else if (!(keep_lines && c == '\r' && i + 1 < len && s[i + 1] == '\n'))
				sbuf_addc(&b, '?');
			i++;
			continue;
		}
		size_t n = utf8_sequence(s + i, len - i, NULL);
		if (n == 0) {
			sbuf_adds(&b, "\xef\xbf\xbd");
			i++;
		} else if (n == 2 && c == 0xc2 && s[i + 1] < 0xa0) {
			sbuf_addc(&b, '?'); /* C1 control */
			i += 2;
		} else {
			sbuf_add(&b, s + i, n);
			i += n;
		}
	}
	return sbuf_detach(&b);
}

/* Display width, counting each code point as one column. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void table_add(struct out_table *t, va_list ap)
{
	t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *t->cells);
	for (size_t i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);
		if (!s || !*s)
			s = "-";
		t->cells[t->nrows * t->ncols + i] = out_clean(s, strlen(s), 0);
	}
	t->nrows++;
}

void out_table_init(struct out_table *t, size_t ncols, ...)
{
	va_list ap;
	memset(t, 0, sizeof *t);
	t->ncols = ncols;
	va_start(ap, ncols);
	table_add(t, ap);
	va_end(ap);
}

void out_table_row(struct out_table *t, ...)
{
	va_list ap;
	va_start(ap, t);
	table_add(t, ap);
	va_end(ap);
}

void out_table_print(struct out_table *t, FILE *f)
{
	size_t *w = xcalloc(t->ncols, sizeof *w);
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t k = 0; k < t->ncols; k++) {
			size_t cw = width(t->cells[r * t->ncols + k]);
			if (cw > w[k])
				w[k] = cw;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t k = 0; k < t->ncols; k++) {
			const char *cell = t->cells[r * t->ncols + k];
			fputs(cell, f);
			if (k + 1 < t->ncols)
				fprintf(f, "%*s", (int)(w[k] - width(cell) + 2), "");
		}
		fputc('\n', f);
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
	memset(t, 0, sizeof *t);
}

void out_date(int64_t t, int date_only, char buf[32])
{
	if (t <= 0) {
		strcpy(buf, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm)) {
		strcpy(buf, "-");
		return;
	}
	strftime(buf, 32, date_only ? "%Y-%m-%d" : "%Y-%m-%d %H:%M", &tm);
}

void out_json_begin(struct json *j)
{
	json_init_file(j, stdout);
}

int out_json_end(struct json *j)
{
	fputc('\n', stdout);
	if (json_finish(j) != 0) {
		fputs("dialoguectl: internal error: malformed JSON output\n", stderr);
		return EXIT_SOFTWARE;
	}
	return 0;
}

void out_json_time(struct json *j, const char *key, int64_t t)
{
	char buf[32];
	if (t <= 0) {
		json_kv_null(j, key);
		return;
	}
	fmt_iso8601(t, buf);
	json_kv_string(j, key, buf);
}

/* "" is stored for "none": JSON says null. */
static void kv_opt_string(struct json *j, const char *key, const char *s)
{
	if (!s || !*s)
		json_kv_null(j, key);
	else
		json_kv_string(j, key, s);
}

void out_json_member(struct json *j, const struct store_member *m)
{
	json_object_begin(j);
	json_kv_string(j, "address", m->address);
	kv_opt_string(j, "name", m->name);
	kv_opt_string(j, "stakeholder", m->stakeholder);
	json_kv_string(j, "status", m->status);
	json_kv_string(j, "delivery", m->delivery);
	json_kv_bool(j, "moderated", m->moderated);
	out_json_time(j, "joined", m->joined);
	out_json_time(j, "term_ends", m->term_ends);
	json_kv_string(j, "list", m->list);
	json_object_end(j);
}

void out_json_archived_fields(struct json *j, const struct store_archived *a)
{
	json_key(j, "id");
	json_int(j, a->id);
	json_kv_string(j, "list", a->list);
	json_kv_string(j, "message_id", a->message_id);
	kv_opt_string(j, "from", a->from_addr);
	kv_opt_string(j, "from_name", a->from_name);
	json_kv_string(j, "subject", a->subject);
	out_json_time(j, "date", a->date > 0 ? a->date : a->received);
	json_kv_int(j, "thread_id", a->thread_id);
	kv_opt_string(j, "in_reply_to", a->in_reply_to);
	out_json_time(j, "received", a->received);
	json_kv_bool(j, "unparsed", a->unparsed);
}
