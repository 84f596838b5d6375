/* token: unguessable random tokens (OpenSSL RAND_bytes, 128 bits), and the
 * form in which they are stored: a SHA-256 digest, so that a copy of the
 * database does not hand out working tokens. */
#ifndef DIALOGUE_TOKEN_H
#define DIALOGUE_TOKEN_H

#include <stddef.h>

/* Characters in a token from token_new: 128 bits in base64url, no padding. */
#define TOKEN_LEN 22
/* Hex digits of a token hash (SHA-256). */
#define TOKEN_HASH_LEN 64

/* Write a new token and its terminating NUL to OUT[TOKEN_LEN + 1].
 * Returns -1 when no random bytes are available (then OUT is ""). */
int token_new(char out[TOKEN_LEN + 1]);

/* Is S shaped like a token from token_new (TOKEN_LEN base64url
 * characters)? Anything else cannot be one of ours. */
int token_syntax_ok(const char *s);

/* OUT[TOKEN_HASH_LEN + 1] gets SHA-256(TOKEN) in lowercase hex: what the
 * store keeps and looks tokens up by. Any string hashes (a forged token
 * simply matches nothing). Returns -1 only if the digest is unavailable. */
int token_hash(const char *token, char out[TOKEN_HASH_LEN + 1]);

#endif
