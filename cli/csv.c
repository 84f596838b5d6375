#include "csv.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void csv_init(struct csv_reader *r, const char *data, size_t len)
{
	r->p = data;
	r->end = data + len;
	r->line = 1;
	if (len >= 3 && !memcmp(data, "\xef\xbb\xbf", 3))
		r->p += 3;
}

/* Consume a record end at r->p if there is one: 1 if consumed. */
static int eat_eol(struct csv_reader *r)
{
	if (r->p < r->end && *r->p == '\r') {
		r->p++;
		if (r->p < r->end && *r->p == '\n')
			r->p++;
		r->line++;
		return 1;
	}
	if (r->p < r->end && *r->p == '\n') {
		r->p++;
		r->line++;
		return 1;
	}
	return 0;
}

int csv_read(struct csv_reader *r, char **fields, size_t *n, long *line, char *err,
	     size_t errlen)
{
	struct sbuf f = {0};

	*n = 0;
	*line = r->line;
	if (r->p >= r->end)
		return 0;
	for (;;) {
		/* One field. */
		if (r->p < r->end && *r->p == '"') {
			r->p++;
			for (;;) {
				if (r->p >= r->end) {
					snprintf(err, errlen, "unterminated quoted field");
					goto fail;
				}
				char ch = *r->p++;
				if (ch == '"') {
					if (r->p < r->end && *r->p == '"') {
						r->p++;
						sbuf_addc(&f, '"');
						continue;
					}
					break;
				}
				if (ch == '\n')
					r->line++;
				else if (ch == '\r' && !(r->p < r->end && *r->p == '\n'))
					r->line++;
				if (ch == '\0') {
					*line = r->line;
					snprintf(err, errlen, "NUL byte");
					goto fail;
				}
				sbuf_addc(&f, ch);
				if (f.len > CSV_MAX_FIELD) {
					snprintf(err, errlen, "field too long");
					goto fail;
				}
			}
			if (r->p < r->end && *r->p != ',' && *r->p != '\r' && *r->p != '\n') {
				*line = r->line;
				snprintf(err, errlen, "text after a closing quote");
				goto fail;
			}
		} else {
			while (r->p < r->end && *r->p != ',' && *r->p != '\r' && *r->p != '\n') {
				if (*r->p == '"') {
					*line = r->line;
					snprintf(err, errlen,
						 "quote inside an unquoted field "
						 "(quote the whole field and double the quote)");
					goto fail;
				}
				if (*r->p == '\0') {
					*line = r->line;
					snprintf(err, errlen, "NUL byte");
					goto fail;
				}
				sbuf_addc(&f, *r->p++);
				if (f.len > CSV_MAX_FIELD) {
					snprintf(err, errlen, "field too long");
					goto fail;
				}
			}
		}
		if (*n >= CSV_MAX_FIELDS) {
			snprintf(err, errlen, "too many fields");
			goto fail;
		}
		fields[(*n)++] = sbuf_detach(&f);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		eat_eol(r);
		return 1;
	}
fail:
	sbuf_free(&f);
	for (size_t i = 0; i < *n; i++)
		free(fields[i]);
	*n = 0;
	return -1;
}

void csv_write_field(FILE *f, const char *s)
{
	size_t len = strlen(s);
	int quote = len && (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' ||
			    s[len - 1] == '\t');
	if (strpbrk(s, ",\"\r\n"))
		quote = 1;
	if (!quote) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}
