/* token: unguessable random tokens (OpenSSL RAND_bytes, 128 bits). */
#ifndef DIALOGUE_TOKEN_H
#define DIALOGUE_TOKEN_H

#include <stddef.h>

/* Characters in a token from token_new: 128 bits in base64url, no padding. */
#define TOKEN_LEN 22

/* Write a new token and its terminating NUL to OUT[TOKEN_LEN + 1].
 * Returns -1 when no random bytes are available (then OUT is ""). */
int token_new(char out[TOKEN_LEN + 1]);

#endif
