/* snippet: the few lines of a message shown under a search result, with
 * the words searched for marked. Made in C from the start of the body, in
 * time linear in what it reads: SQLite's FTS5 snippet() costs time that
 * grows with the square of the matches in a body, which a hostile post
 * can make minutes long. */
#ifndef DIALOGUE_SNIPPET_H
#define DIALOGUE_SNIPPET_H

#include <stddef.h>

/* Bytes of a body a snippet is looked for in, at most. */
#define SNIPPET_SCAN_MAX 65536
/* Words of a query that are marked, at most: the store searches 8 terms,
 * and a term ("e-mail") may hold more than one word. */
#define SNIPPET_MAX_WORDS 16

/* A window of about 240 bytes of TEXT[0..len) (UTF-8) around the first word
 * that is one of QUERY's (words are runs of letters and digits, compared
 * without ASCII case), with every such word inside it between the bytes
 * "\x01" and "\x02", "..." where the text was cut; the start of the text
 * when no word is found. Bytes 0x01 and 0x02 of TEXT become spaces, so
 * every marker is ours. Caller frees. */
char *snippet_make(const char *text, size_t len, const char *query);

#endif
