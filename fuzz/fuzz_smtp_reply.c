/* libFuzzer: what the relay says back — reply lines and EHLO keywords, as
 * the client reads them (lines up to CRLF, joined texts for EHLO). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sbuf text = {0};
	size_t pos = 0;
	while (pos < size) {
		const uint8_t *lf = memchr(data + pos, '\n', size - pos);
		size_t n = lf ? (size_t)(lf - (data + pos)) : size - pos;
		size_t len = n && data[pos + n - 1] == '\r' ? n - 1 : n;
		char *line = xstrndup((const char *)data + pos, len);
		int code, last;
		const char *rest;
		if (smtp_parse_reply_line(line, strlen(line), &code, &last, &rest) == 0) {
			if (code < 200 || code > 599 || rest < line || rest > line + strlen(line))
				__builtin_trap();
			if (text.len)
				sbuf_addc(&text, '\n');
			sbuf_adds(&text, rest);
		}
		free(line);
		pos += n + 1;
	}
	struct smtp_ehlo_caps caps;
	smtp_parse_ehlo(text.buf ? text.buf : "", &caps);
	sbuf_free(&text);
	return 0;
}
