/* libFuzzer: the SMTP command parser, line by line as the server sees it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[SMTP_CMD_LINE_MAX + 1];
	size_t start = 0;
	while (start < size) {
		const uint8_t *lf = memchr(data + start, '\n', size - start);
		size_t n = lf ? (size_t)(lf - (data + start)) + 1 : size - start;
		if (n <= SMTP_CMD_LINE_MAX) {
			memcpy(line, data + start, n);
			line[n] = '\0';
			if (smtp_check_command_line(line, n) == SMTP_LINE_OK) {
				line[n - 2] = '\0';
				const char *arg;
				struct smtp_mail_args m;
				struct smtp_rcpt_args r;
				switch (smtp_parse_verb(line, &arg)) {
				case SMTP_MAIL:
					smtp_parse_mail(arg, &m);
					break;
				case SMTP_RCPT:
					smtp_parse_rcpt(arg, &r);
					break;
				case SMTP_HELO:
				case SMTP_EHLO:
					smtp_valid_helo(arg);
					break;
				default:
					break;
				}
			}
		}
		start += n;
	}
	return 0;
}
