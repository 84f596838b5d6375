/* secret: the site's HMAC key (secret_file), created on first start. */
#ifndef DIALOGUE_SECRET_H
#define DIALOGUE_SECRET_H

#include <stddef.h>

#define SECRET_LEN 32

/* Read PATH (64 hex digits); when it does not exist and CREATE is set,
 * write a new random key with mode 0600 first. -1 with err set. */
int secret_load(const char *path, int create, unsigned char out[SECRET_LEN], char *err,
		size_t errlen);

#endif
