/* tls: OpenSSL contexts for STARTTLS. */
#ifndef DIALOGUE_TLS_H
#define DIALOGUE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* A server context with CERT (PEM chain) and KEY; NULL with err set when
 * they cannot be loaded or do not match. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen);

#endif
