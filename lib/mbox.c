#include "mbox.h"

#include <string.h>
#include <time.h>

#define MBOX_SENDER_MAX 254

static int sender_usable(const char *s)
{
	if (!s || !*s || strlen(s) > MBOX_SENDER_MAX)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

void mbox_from_line(struct sbuf *out, const char *sender, int64_t when)
{
	/* asctime() is locale-free but obsolescent and not thread-safe:
	 * spell its format out. */
	static const char wday[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char mon[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)when;
	struct tm tm;

	if (when < 0 || !gmtime_r(&t, &tm)) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	sbuf_printf(out, "From %s %s %s %2d %02d:%02d:%02d %d",
		    sender_usable(sender) ? sender : "MAILER-DAEMON", wday[tm.tm_wday % 7],
		    mon[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		    tm.tm_year + 1900);
}

/* Does the line at P (N bytes, no line end) match ^>*From  ? */
static int needs_quote(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && p[i] == '>')
		i++;
	return n - i >= 5 && memcmp(p + i, "From ", 5) == 0;
}

void mbox_append(struct sbuf *out, const char *sender, int64_t when, const char *raw,
		 size_t len)
{
	mbox_from_line(out, sender, when);
	sbuf_addc(out, '\n');

	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(raw + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - raw) : len;
		size_t n = end - i;
		if (n && raw[end - 1] == '\r' && nl)
			n--; /* CRLF -> LF; a lone CR elsewhere stays */
		if (needs_quote(raw + i, n))
			sbuf_addc(out, '>');
		sbuf_add(out, raw + i, n);
		sbuf_addc(out, '\n');
		i = nl ? end + 1 : len;
	}
	sbuf_addc(out, '\n');
}

int mbox_write(FILE *f, const char *sender, int64_t when, const char *raw, size_t len)
{
	struct sbuf b = {0};
	mbox_append(&b, sender, when, raw, len);
	size_t w = fwrite(b.buf, 1, b.len, f);
	int ok = w == b.len && !ferror(f);
	sbuf_free(&b);
	return ok ? 0 : -1;
}
