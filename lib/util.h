/* util: allocation that never returns NULL, a growable string, logging. */
#ifndef DIALOGUE_UTIL_H
#define DIALOGUE_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* sysexits.h codes used by both programs. */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 64,
	EXIT_DATAERR = 65,
	EXIT_NOINPUT = 66,
	EXIT_UNAVAILABLE = 69,
	EXIT_SOFTWARE = 70,
	EXIT_IOERR = 74,
	EXIT_TEMPFAIL = 75,
	EXIT_CONFIG = 78
};

/* Out of memory is not recoverable for us: these abort with a message. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* A growable NUL-terminated byte string. Zero-initialise, append, then
 * take ownership of .buf or call sbuf_free(). */
struct sbuf {
	char *buf;
	size_t len;
	size_t cap;
};
void sbuf_add(struct sbuf *b, const void *data, size_t n);
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_addc(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *sbuf_detach(struct sbuf *b); /* returns "" (allocated) when empty */
void sbuf_free(struct sbuf *b);

/* Logging: one line per event on stderr, and syslog when log_use_syslog(). */
enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
void log_init(const char *ident, int use_syslog);
void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Case-insensitive ASCII helpers (locale-independent). */
int ascii_strcasecmp(const char *a, const char *b);
int ascii_strncasecmp(const char *a, const char *b, size_t n);
void ascii_lower(char *s);

/* Strip leading and trailing ASCII whitespace in place; returns s. */
char *str_trim(char *s);

/* Wall-clock seconds since the epoch. */
int64_t now_epoch(void);

/* Format an epoch as RFC 3339 UTC ("2026-11-30T06:42:11Z") into buf[32]. */
void fmt_iso8601(int64_t t, char buf[32]);

/* Length of the valid UTF-8 sequence at S (at most N bytes, N >= 1), or 0
 * when the bytes there are not one (no overlongs, surrogates or code
 * points past U+10FFFF); then *bad gets the length of the maximal invalid
 * prefix, to be replaced by one U+FFFD (Unicode 3.9). BAD may be NULL. */
size_t utf8_sequence(const unsigned char *s, size_t n, size_t *bad);

/* T as an RFC 5322 date in UTC ("Mon, 30 Nov 2026 06:42:11 +0000"),
 * independent of the locale, into buf[40]. */
void fmt_rfc5322_date(int64_t t, char buf[40]);

/* Read a whole file; returns NULL with errno set on failure. */
char *read_file_all(const char *path, size_t *len_out);

#endif
