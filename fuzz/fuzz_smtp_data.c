/* libFuzzer: the DATA reader (dot-unstuffing, line checks, end detection),
 * fed in arbitrary chunks the way the server cuts its input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data d = {0};
	smtp_data_begin(&d, 4096);
	size_t pos = 0;
	while (pos < size) {
		const uint8_t *lf = memchr(data + pos, '\n', size - pos);
		if (!lf) {
			/* a partial line is only taken once it is too long; keep a CR */
			size_t n = size - pos;
			if (n > SMTP_TEXT_LINE_MAX) {
				smtp_data_segment(&d, data + pos, n - 1, 0);
				pos += n - 1;
				continue;
			}
			break;
		}
		size_t n = (size_t)(lf - (data + pos)) + 1;
		if (smtp_data_is_end(&d, data + pos, n))
			break;
		smtp_data_segment(&d, data + pos, n, 1);
		pos += n;
	}
	/* What was kept is never bigger than the limit and never holds a bare LF. */
	if (d.buf.len > 4096 || (d.flags == 0 && d.buf.len && memchr(d.buf.buf, 0, d.buf.len)))
		__builtin_trap();
	smtp_data_free(&d);
	return 0;
}
