/* smtp_load: a small SMTP load generator for bench/ingest. SESSIONS threads,
 * each one connection sending its share of MESSAGES messages of SIZE bytes
 * with MAIL/RCPT/DATA pipelined (RFC 2920). Cheap enough on the CPU that the
 * daemon, not the client, is what gets measured on a 2-core machine.
 *
 *   smtp_load HOST PORT RCPT MESSAGES SESSIONS SIZE [thread]
 * With "thread" every message has its own Message-ID and every tenth of a
 * session's starts a thread the next nine answer (for bench/web).
 * prints: "sent N accepted A refused R seconds S rate M/s" */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host, *port, *rcpt;
static long per_session, size;
static char *message;
static size_t message_len;
static int threaded;

struct result {
	long accepted, refused;
};

static int dial(void)
{
	struct addrinfo hints = {0}, *res;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res))
		return -1;
	int fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* Read N reply lines (last lines of multi-line replies); return the code
 * of the last one, or -1. */
struct conn {
	int fd;
	char buf[8192];
	size_t len;
};

static int reply(struct conn *c)
{
	for (;;) {
		char *nl;
		while ((nl = memchr(c->buf, '\n', c->len))) {
			size_t n = (size_t)(nl - c->buf) + 1;
			int code = atoi(c->buf);
			int last = n > 3 && c->buf[3] != '-';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			if (last)
				return code;
		}
		ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
		if (r <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void *session(void *arg)
{
	struct result *r = arg;
	struct conn c = {.fd = dial()};
	char cmd[512];
	if (c.fd < 0 || reply(&c) != 220)
		goto out;
	send_all(c.fd, "EHLO load.example\r\n", 19);
	if (reply(&c) != 250)
		goto out;
	int n = snprintf(cmd, sizeof cmd, "MAIL FROM:<load@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n",
			 rcpt);
	for (long i = 0; i < per_session; i++) {
		if (send_all(c.fd, cmd, (size_t)n) < 0)
			break;
		int a = reply(&c), b = reply(&c), d = reply(&c);
		if (a != 250 || b != 250 || d != 354) {
			r->refused++;
			if (d == 354) {
				send_all(c.fd, ".\r\n", 3);
				reply(&c);
			}
			continue;
		}
		if (threaded) {
			char head[512];
			long root = i - i % 10;
			int hn = snprintf(head, sizeof head,
					  "Message-ID: <s%p.%ld@load.example>\r\n"
					  "Subject: %sthread %ld of session %p\r\n",
					  (void *)r, i, i == root ? "" : "Re: ", root, (void *)r);
			if (i != root)
				hn += snprintf(head + hn, sizeof head - (size_t)hn,
					       "In-Reply-To: <s%p.%ld@load.example>\r\n", (void *)r,
					       root);
			if (send_all(c.fd, head, (size_t)hn) < 0)
				break;
		}
		if (send_all(c.fd, message, message_len) < 0)
			break;
		int e = reply(&c);
		if (e == 250)
			r->accepted++;
		else
			r->refused++;
	}
	send_all(c.fd, "QUIT\r\n", 6);
	reply(&c);
out:
	if (c.fd >= 0)
		close(c.fd);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 7 && !(argc == 8 && !strcmp(argv[7], "thread"))) {
		fprintf(stderr, "usage: smtp_load HOST PORT RCPT MESSAGES SESSIONS SIZE [thread]\n");
		return 64;
	}
	threaded = argc == 8;
	host = argv[1];
	port = argv[2];
	rcpt = argv[3];
	long messages = atol(argv[4]), sessions = atol(argv[5]);
	size = atol(argv[6]);
	if (sessions < 1 || messages < sessions || size < 200)
		return 64;
	per_session = messages / sessions;
	/* A plain message of SIZE bytes with 70-column lines, ending in CRLF.CRLF. */
	message = malloc((size_t)size + 200);
	int h = snprintf(message, 200, "From: Load Test <load@example.org>\r\nTo: %s\r\n%s\r\n",
			 rcpt, threaded ? "" : "Subject: load test\r\n");
	message_len = (size_t)h;
	static const char words[] = "lorem ipsum dolor sit amet consectetur adipiscing elit "
				    "sed do eiusmod tempor incididunt ut labore et dolore ma";
	while (message_len + 72 < (size_t)size) {
		memcpy(message + message_len, threaded ? words : "", threaded ? 70 : 0);
		if (!threaded)
			memset(message + message_len, 'x', 70);
		memcpy(message + message_len + 70, "\r\n", 2);
		message_len += 72;
	}
	memcpy(message + message_len, ".\r\n", 3);
	message_len += 3;

	pthread_t *t = calloc((size_t)sessions, sizeof *t);
	struct result *res = calloc((size_t)sessions, sizeof *res);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < sessions; i++)
		pthread_create(&t[i], NULL, session, &res[i]);
	long acc = 0, ref = 0;
	for (long i = 0; i < sessions; i++) {
		pthread_join(t[i], NULL);
		acc += res[i].accepted;
		ref += res[i].refused;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("sent %ld accepted %ld refused %ld seconds %.2f rate %.0f/s\n",
	       per_session * sessions, acc, ref, secs, (double)acc / secs);
	free(t);
	free(res);
	free(message);
	return acc == per_session * sessions ? 0 : 1;
}
