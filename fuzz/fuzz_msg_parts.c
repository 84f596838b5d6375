/* libFuzzer harness for msg_parts_list() and msg_parts_get(): any bytes
 * in; every listed attachment can be fetched, with the size listed and the
 * same description, its filename is safe, and there is nothing past the
 * last one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg_parts.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MSG_PARTS_NAME_MAX || strchr(s, '/') || strchr(s, '\\') ||
	    strchr(s, '"') || s[0] == '.' || s[0] == ' ')
		abort();
	for (size_t i = 0, k; i < n; i += k) {
		const unsigned char *p = (const unsigned char *)s + i;
		if ((k = utf8_sequence(p, n - i, NULL)) == 0 || p[0] < 0x20 || p[0] == 0x7F ||
		    (p[0] == 0xC2 && p[1] < 0xA0) ||
		    (p[0] == 0xE2 && p[1] == 0x80 && p[2] >= 0xA8 && p[2] <= 0xAE))
			abort();
	}
}

static void check_type(const char *t)
{
	const char *slash = strchr(t, '/');
	if (!slash || slash == t || !slash[1] || strchr(slash + 1, '/'))
		abort();
	for (; *t; t++)
		if ((unsigned char)*t <= ' ' || (unsigned char)*t >= 0x7F ||
		    (*t >= 'A' && *t <= 'Z'))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data;
	struct msg_part *p = NULL, info;
	size_t n = 0, dlen;
	char *d;

	if (msg_parts_list(raw, size, &p, &n) != 0 || n > MSG_PARTS_MAX || (n == 0) != (p == NULL))
		abort();
	for (size_t i = 0; i < n; i++) {
		check_name(p[i].filename);
		check_type(p[i].content_type);
		if (msg_parts_get(raw, size, i + 1, &d, &dlen, &info) != 0 || dlen != p[i].size ||
		    info.size != dlen || strcmp(info.filename, p[i].filename) != 0 ||
		    strcmp(info.content_type, p[i].content_type) != 0 || d[dlen] != '\0')
			abort();
		free(d);
		msg_part_clear(&info);
	}
	if (msg_parts_get(raw, size, n + 1, &d, &dlen, &info) != -1 || d != NULL)
		abort();
	msg_parts_free(p, n);
	return 0;
}
