/* libFuzzer harness for snippet.c: a mail body and a search query, both
 * from strangers. The input up to its first NUL is the query, the rest
 * the body. What comes out must be bounded, and its markers balanced:
 * every \x01 closed by a \x02 before the next one, none left open. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "snippet.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *nul = memchr(in, '\0', size);
	size_t qlen = nul ? (size_t)(nul - in) : size;
	char *query = xstrndup(in, qlen);
	const char *body = nul ? nul + 1 : "";
	size_t blen = nul ? size - qlen - 1 : 0;
	char *s = snippet_make(body, blen, query);
	size_t n = strlen(s);
	/* A window, two ellipses and a pair of markers per word in it. */
	if (n > 3 * 240 + 6)
		abort();
	int open = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\x01') {
			if (open)
				abort();
			open = 1;
		} else if (s[i] == '\x02') {
			if (!open)
				abort();
			open = 0;
		}
	}
	if (open)
		abort();
	free(s);
	free(query);
	return 0;
}
