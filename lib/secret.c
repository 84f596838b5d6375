#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int create_secret(const char *path, char *err, size_t errlen)
{
	unsigned char key[SECRET_LEN];
	char hex[SECRET_LEN * 2 + 2];
	if (RAND_bytes(key, sizeof key) != 1) {
		snprintf(err, errlen, "%s: no random bytes available", path);
		return -1;
	}
	for (size_t i = 0; i < SECRET_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	hex[SECRET_LEN * 2] = '\n';
	hex[SECRET_LEN * 2 + 1] = '\0';
	/* O_EXCL: two processes starting at once must not both write a key. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		return -1;
	}
	ssize_t w = write(fd, hex, SECRET_LEN * 2 + 1);
	int ok = w == SECRET_LEN * 2 + 1 && fsync(fd) == 0;
	close(fd);
	if (!ok) {
		unlink(path);
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int secret_load(const char *path, int create, unsigned char out[SECRET_LEN], char *err,
		size_t errlen)
{
	if (create && access(path, F_OK) != 0 && create_secret(path, err, errlen) < 0)
		return -1;
	size_t len;
	char *text = read_file_all(path, &len);
	if (!text) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	str_trim(text);
	int rc = -1;
	if (strlen(text) != SECRET_LEN * 2) {
		snprintf(err, errlen, "%s: expected %d hex digits", path, SECRET_LEN * 2);
		goto out;
	}
	for (size_t i = 0; i < SECRET_LEN; i++) {
		int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "%s: expected %d hex digits", path, SECRET_LEN * 2);
			goto out;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	rc = 0;
out:
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}
