#include "token.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

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

int token_syntax_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
		if (n >= TOKEN_LEN)
			return 0;
	}
	return n == TOKEN_LEN;
}

int token_hash(const char *token, char out[TOKEN_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	out[0] = '\0';
	if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[TOKEN_HASH_LEN] = '\0';
	return 0;
}
