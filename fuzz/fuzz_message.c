/* libFuzzer harness for msg_parse(): any bytes in, every field must come
 * back non-NULL and valid UTF-8 without NUL, with a non-empty Message-ID. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
					 : (*p & 0xF8) == 0xF0			  ? 4
										  : 0;
		if (n == 0 || (n == 2 && *p < 0xC2) || (n == 4 && *p > 0xF4))
			return 0;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xC0) != 0x80)
				return 0;
		p += n;
	}
	return 1;
}

static void check(const char *s)
{
	if (!s || !valid_utf8(s))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_info m;

	msg_parse((const char *)data, size, "fuzz.example", &m);
	check(m.message_id);
	check(m.from_addr);
	check(m.from_name);
	check(m.subject);
	check(m.date_header);
	check(m.in_reply_to);
	check(m.references);
	check(m.body_text);
	if (!m.message_id[0] || strlen(m.body_text) > 1024 * 1024)
		abort();
	msg_info_free(&m);
	return 0;
}
