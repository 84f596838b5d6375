#include "json.h"

#include <inttypes.h>
#include <string.h>

static void emit(struct json *j, const char *s, size_t n)
{
	if (j->f)
		fwrite(s, 1, n, j->f);
	else
		sbuf_add(j->buf, s, n);
}

static void emits(struct json *j, const char *s)
{
	emit(j, s, strlen(s));
}

void json_init_file(struct json *j, FILE *f)
{
	memset(j, 0, sizeof *j);
	j->f = f;
}

void json_init_sbuf(struct json *j, struct sbuf *b)
{
	memset(j, 0, sizeof *j);
	j->buf = b;
}

/* Called before every value: writes the separator the position needs and
 * refuses a value where none may go (second top-level value, object member
 * without a key). Returns 0 when the value may be written. */
static int value_prologue(struct json *j)
{
	if (j->misuse)
		return -1;
	if (j->depth == 0) {
		if (j->done) {
			j->misuse = 1;
			return -1;
		}
		return 0;
	}
	int d = j->depth - 1;
	if (j->kind[d] == 'o') {
		if (!j->have_key) {
			j->misuse = 1;
			return -1;
		}
		j->have_key = 0;
		return 0;
	}
	if (j->count[d])
		emit(j, ",", 1);
	j->count[d] = 1;
	return 0;
}

/* After a complete value at the current level. */
static void value_epilogue(struct json *j)
{
	if (j->depth == 0)
		j->done = 1;
}

void json_string_n(struct json *j, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;

	if (value_prologue(j))
		return;
	emit(j, "\"", 1);
	size_t run = 0; /* start of the pending run of bytes copied verbatim */
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		const char *esc = NULL;
		char ubuf[7];
		size_t adv = 1;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			i++;
			continue;
		}
		if (c >= 0x80) {
			size_t bad;
			size_t n = utf8_sequence(s + i, len - i, &bad);
			/* U+2028/U+2029 are valid JSON but end a line in
			 * JavaScript; escaping them keeps output embeddable. */
			if (n == 3 && c == 0xe2 && s[i + 1] == 0x80 &&
			    (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
				esc = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
				adv = 3;
			} else if (n) {
				i += n;
				continue;
			} else {
				esc = "\xef\xbf\xbd";
				adv = bad;
			}
		} else {
			switch (c) {
			case '"': esc = "\\\""; break;
			case '\\': esc = "\\\\"; break;
			case '\b': esc = "\\b"; break;
			case '\f': esc = "\\f"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\t': esc = "\\t"; break;
			default:
				ubuf[0] = '\\';
				ubuf[1] = 'u';
				ubuf[2] = '0';
				ubuf[3] = '0';
				ubuf[4] = hex[c >> 4];
				ubuf[5] = hex[c & 15];
				ubuf[6] = '\0';
				esc = ubuf;
			}
		}
		if (i > run)
			emit(j, str + run, i - run);
		emits(j, esc);
		i += adv;
		run = i;
	}
	if (i > run)
		emit(j, str + run, i - run);
	emit(j, "\"", 1);
	value_epilogue(j);
}

void json_string(struct json *j, const char *s)
{
	if (!s)
		json_null(j);
	else
		json_string_n(j, s, strlen(s));
}

void json_int(struct json *j, int64_t v)
{
	char tmp[32];
	if (value_prologue(j))
		return;
	int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
	emit(j, tmp, (size_t)n);
	value_epilogue(j);
}

void json_bool(struct json *j, int v)
{
	if (value_prologue(j))
		return;
	emits(j, v ? "true" : "false");
	value_epilogue(j);
}

void json_null(struct json *j)
{
	if (value_prologue(j))
		return;
	emits(j, "null");
	value_epilogue(j);
}

static void container_begin(struct json *j, char kind)
{
	if (value_prologue(j))
		return;
	if (j->depth >= JSON_MAX_DEPTH) {
		j->misuse = 1;
		return;
	}
	j->kind[j->depth] = kind;
	j->count[j->depth] = 0;
	j->depth++;
	emit(j, kind == 'o' ? "{" : "[", 1);
}

static void container_end(struct json *j, char kind)
{
	if (j->misuse)
		return;
	if (j->depth == 0 || j->kind[j->depth - 1] != kind || j->have_key) {
		j->misuse = 1;
		return;
	}
	j->depth--;
	emit(j, kind == 'o' ? "}" : "]", 1);
	value_epilogue(j);
}

void json_object_begin(struct json *j)
{
	container_begin(j, 'o');
}

void json_object_end(struct json *j)
{
	container_end(j, 'o');
}

void json_array_begin(struct json *j)
{
	container_begin(j, 'a');
}

void json_array_end(struct json *j)
{
	container_end(j, 'a');
}

void json_key(struct json *j, const char *key)
{
	if (j->misuse)
		return;
	int d = j->depth - 1;
	if (d < 0 || j->kind[d] != 'o' || j->have_key) {
		j->misuse = 1;
		return;
	}
	if (j->count[d])
		emit(j, ",", 1);
	j->count[d] = 1;
	/* Keys are strings like any other: reuse the escaping, which needs
	 * the writer to believe a value is due at this level. */
	j->have_key = 1;
	json_string(j, key ? key : "");
	if (j->misuse)
		return;
	emit(j, ":", 1);
	j->have_key = 1;
}

void json_kv_string(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_string(j, s);
}

void json_kv_int(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	json_int(j, v);
}

void json_kv_bool(struct json *j, const char *key, int v)
{
	json_key(j, key);
	json_bool(j, v);
}

void json_kv_null(struct json *j, const char *key)
{
	json_key(j, key);
	json_null(j);
}

int json_finish(struct json *j)
{
	if (j->misuse || j->depth != 0 || !j->done)
		return -1;
	if (j->f && ferror(j->f))
		return -1;
	return 0;
}
