#include "token.h"

#include <openssl/rand.h>

int token_new(char out[TOKEN_LEN + 1])
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char r[17];
	out[0] = '\0';
	if (RAND_bytes(r, 16) != 1)
		return -1;
	r[16] = 0;
	/* 6 bits per character: 22 characters cover 132 bits, the last 4 zero */
	unsigned bits = 0, nbits = 0;
	size_t j = 0, i = 0;
	while (j < TOKEN_LEN) {
		if (nbits < 6) {
			bits = (bits << 8) | r[i++];
			nbits += 8;
		}
		out[j++] = alphabet[(bits >> (nbits - 6)) & 63];
		nbits -= 6;
	}
	out[TOKEN_LEN] = '\0';
	return 0;
}
