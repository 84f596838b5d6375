/* The relay client against a scripted SMTP server (smtp_client_testkit.h) in
 * the same libevent loop: pipelining and not, per-recipient results,
 * failures of every kind, connection reuse and limits, STARTTLS, and
 * dot-stuffing. SMTP_CLIENT_BENCH=N runs a throughput measurement with N
 * transactions against the fake relay in a child process, or against the
 * relay on 127.0.0.1:SMTP_CLIENT_BENCH_PORT (e.g. Postfix's smtp-sink). */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smtp_client.h"
#include "smtp_client_testkit.h"
#include "testutil.h"

/* ---- dot-stuffing and bodies ---- */

static void check_stuff(const char *raw, const char *want)
{
	size_t n;
	char *s = smtp_dot_stuff(raw, strlen(raw), &n);
	CHECK_STR(s, want);
	CHECK_INT(n, strlen(want));
	free(s);
}

static void test_dot_stuff(void)
{
	check_stuff("", "");
	check_stuff("a", "a\r\n");
	check_stuff(".", "..\r\n");
	check_stuff("a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n");
	check_stuff(".a\n..b\nc.\n", "..a\r\n...b\r\nc.\r\n");
	check_stuff("x\ry\r\n\r\nz", "x\r\ny\r\n\r\nz\r\n");
	check_stuff("\n\n", "\r\n\r\n");
	check_stuff("\r", "\r\n");
	check_stuff("a\r\r\n.", "a\r\n\r\n..\r\n");
	check_stuff(".\r.\n.", "..\r\n..\r\n..\r\n");
	size_t n;
	char *s = smtp_dot_stuff("a\0b\n", 4, &n);
	CHECK_INT(n, 5);
	CHECK(!memcmp(s, "a\0b\r\n", 5));
	free(s);

	struct smtp_body *b = body_of("x\n");
	CHECK_INT(b->refs, 1);
	smtp_body_ref(b);
	smtp_body_unref(b);
	CHECK_INT(b->refs, 1);
	smtp_body_unref(b);
}

/* ---- transactions ---- */

/* Three recipients (accepted, 451, 550) on a pipelining relay or not. */
static void test_mixed_rcpts(int pipelining)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = pipelining};
	fake_relay_start(&fr, base, &o);
	struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 0);
	struct smtp_body *b = body_of("Subject: hi\n\n.hidden\nbye");
	struct tx x;
	tx_init(&x, b, "list-bounces@lists.example", "a@x.example", "t451@x.example",
		"p550@x.example");
	submit(c, &x);
	CHECK(run_until(&x.done, 1, 5000));
	CHECK_INT(x.t.result.code, 250);
	CHECK_INT(x.t.rcpt_results[0].code, 250);
	CHECK_STR(x.t.rcpt_results[0].text, "2.0.0 Ok: queued");
	CHECK_INT(x.t.rcpt_results[1].code, 451);
	CHECK_STR(x.t.rcpt_results[1].text, "4.3.0 try again later");
	CHECK_INT(x.t.rcpt_results[2].code, 550);
	CHECK_STR(x.t.rcpt_results[2].text, "5.1.1 no such user 5.1.1 really");
	CHECK_INT(fr.n_msgs, 1);
	CHECK_STR(fr.msgs[0], "X-Copy: 1\r\nSubject: hi\r\n\r\n..hidden\r\nbye\r\n");
	const char *log = fr.log.buf;
	long p = find(log, "1: EHLO client.example", 0);
	p = find(log, "1: MAIL FROM:<list-bounces@lists.example>", p);
	p = find(log, "1: RCPT TO:<a@x.example>", p);
	p = find(log, "1: RCPT TO:<t451@x.example>", p);
	p = find(log, "1: RCPT TO:<p550@x.example>", p);
	p = find(log, "1: DATA", p);
	CHECK(p > 0);
	CHECK_INT(fr.grouped, pipelining ? 1 : 0);
	CHECK_INT(fr.ahead, 0);
	smtp_client_txn_clear(&x.t);
	smtp_client_free(c);
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

/* Final 552 after the data: accepted recipients get it, refused keep theirs. */
static void test_final_552(void)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = 1, .final = "552 5.3.4 message too big"};
	fake_relay_start(&fr, base, &o);
	struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 0);
	struct smtp_body *b = body_of("hello\n");
	struct tx x;
	tx_init(&x, b, "s@x.example", "a@x.example", "p550@x.example", "b@x.example");
	submit(c, &x);
	CHECK(run_until(&x.done, 1, 5000));
	CHECK_INT(x.t.result.code, 552);
	CHECK_INT(x.t.rcpt_results[0].code, 552);
	CHECK_STR(x.t.rcpt_results[0].text, "5.3.4 message too big");
	CHECK_INT(x.t.rcpt_results[1].code, 550);
	CHECK_INT(x.t.rcpt_results[2].code, 552);
	smtp_client_txn_clear(&x.t);
	smtp_client_free(c);
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

/* Two transactions on one connection: no RSET after a success, the next
 * MAIL rides with the final dot; RSET after a failure. */
static void test_reuse(int pipelining)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = pipelining};
	fake_relay_start(&fr, base, &o);
	struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 0);
	struct smtp_body *b = body_of("hello\n");
	struct tx x[4];
	tx_init(&x[0], b, "s@x.example", "a@x.example", NULL, NULL);
	tx_init(&x[1], b, "s@x.example", "b@x.example", NULL, NULL);
	tx_init(&x[2], b, "s@x.example", "p550@x.example", "t451@x.example", NULL);
	tx_init(&x[3], b, "s@x.example", "d@x.example", NULL, NULL);
	for (int i = 0; i < 4; i++)
		submit(c, &x[i]);
	CHECK_INT(smtp_client_busy(c), 4);
	int base_done = done_count;
	CHECK(run_until(&done_count, base_done + 4, 5000));
	CHECK_INT(smtp_client_busy(c), 0);
	CHECK_INT(x[0].t.result.code, 250);
	CHECK_INT(x[1].t.result.code, 250);
	/* no recipient: the first temporary refusal is the result */
	CHECK_INT(x[2].t.result.code, 451);
	CHECK_INT(x[2].t.rcpt_results[0].code, 550);
	CHECK_INT(x[2].t.rcpt_results[1].code, 451);
	CHECK_INT(x[3].t.result.code, 250);
	CHECK_INT(fr.n_conns, 1);
	CHECK_INT(fr.n_msgs, 3);
	const char *log = fr.log.buf;
	long m1 = find(log, "1: RCPT TO:<a@x.example>", 0);
	long m2 = find(log, "1: RCPT TO:<b@x.example>", m1);
	long m3 = find(log, "1: RCPT TO:<p550@x.example>", m2);
	long rs = find(log, "1: RSET", 0);
	long m4 = find(log, "1: RCPT TO:<d@x.example>", m3);
	CHECK(m1 > 0 && m2 > m1 && m3 > m2 && rs > m3 && m4 > rs);
	CHECK_INT(count(log, "RSET"), 1);
	/* pipelining: DATA goes out anyway and gets 554; without it, none */
	CHECK_INT(count(log, "DATA"), pipelining ? 4 : 3);
	if (pipelining) {
		CHECK_INT(fr.grouped, 4);
		CHECK(fr.after_dot >= 1);
	} else {
		CHECK_INT(fr.ahead, 0);
	}
	uint64_t txns, conns;
	smtp_client_stats(c, &txns, &conns);
	CHECK_INT(txns, 4);
	CHECK_INT(conns, 1);
	for (int i = 0; i < 4; i++)
		smtp_client_txn_clear(&x[i].t);
	smtp_client_free(c);
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

static int closed_port(void)
{
	struct fake_relay fr;
	struct fake_opts o = {0};
	fake_relay_start(&fr, base, &o);
	int port = fr.port;
	fake_relay_stop(&fr);
	return port;
}

static void test_refused(void)
{
	int port = closed_port();
	struct smtp_client *c = client(port, RELAY_TLS_NO, 2, 0);
	struct smtp_body *b = body_of("hello\n");
	struct tx x[5];
	for (int i = 0; i < 5; i++) {
		tx_init(&x[i], b, "s@x.example", "a@x.example", "b@x.example", NULL);
		submit(c, &x[i]);
	}
	int base_done = done_count;
	CHECK(run_until(&done_count, base_done + 5, 5000));
	char want[80];
	snprintf(want, sizeof want, "connect to 127.0.0.1:%d: Connection refused", port);
	for (int i = 0; i < 5; i++) {
		CHECK_INT(x[i].t.result.code, 0);
		CHECK_STR(x[i].t.result.text, want);
		CHECK_INT(x[i].t.rcpt_results[1].code, 0);
		CHECK_STR(x[i].t.rcpt_results[1].text, want);
		smtp_client_txn_clear(&x[i].t);
	}
	uint64_t txns, conns;
	smtp_client_stats(c, &txns, &conns);
	CHECK_INT(conns, 0);
	CHECK_INT(smtp_client_busy(c), 0);
	smtp_client_free(c);
	smtp_body_unref(b);
}

/* The relay hangs up at DATA: the transaction in flight fails, the queued
 * one gets another connection (the relay had accepted a MAIL) and fails
 * the same way; nothing spins. */
static void test_close_mid(void)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = 0, .close_on = "DATA"};
	fake_relay_start(&fr, base, &o);
	struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 0);
	struct smtp_body *b = body_of("hello\n");
	struct tx x[2];
	tx_init(&x[0], b, "s@x.example", "a@x.example", NULL, NULL);
	tx_init(&x[1], b, "s@x.example", "b@x.example", NULL, NULL);
	submit(c, &x[0]);
	submit(c, &x[1]);
	int base_done = done_count;
	CHECK(run_until(&done_count, base_done + 2, 5000));
	for (int i = 0; i < 2; i++) {
		CHECK_INT(x[i].t.result.code, 0);
		CHECK(find(x[i].t.result.text,
			   "connection closed while waiting for the reply to DATA", 0) > 0);
		CHECK_INT(x[i].t.rcpt_results[0].code, 0);
		smtp_client_txn_clear(&x[i].t);
	}
	CHECK_INT(fr.n_conns, 2);
	smtp_client_free(c);
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

/* 421 to a RCPT: that job gets 421 and the connection goes. */
static void test_421_rcpt(void)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = 1};
	fake_relay_start(&fr, base, &o);
	struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 0);
	struct smtp_body *b = body_of("hello\n");
	struct tx x;
	tx_init(&x, b, "s@x.example", "a@x.example", "c421@x.example", NULL);
	submit(c, &x);
	CHECK(run_until(&x.done, 1, 5000));
	CHECK_INT(x.t.result.code, 421);
	CHECK_STR(x.t.result.text, "4.3.2 closing");
	CHECK_INT(x.t.rcpt_results[0].code, 421);
	CHECK_INT(x.t.rcpt_results[1].code, 421);
	smtp_client_txn_clear(&x.t);
	smtp_client_free(c);
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

/* A failure before the relay said anything useful. */
static void expect_failure(const struct fake_opts *o, enum relay_tls tls, int64_t scale, int code,
			   const char *text)
{
	struct fake_relay fr;
	fake_relay_start(&fr, base, o);
	struct smtp_client *c = client(fr.port, tls, 1, scale);
	struct smtp_body *b = body_of("hello\n");
	struct tx x[2];
	int base_done = done_count;
	for (int i = 0; i < 2; i++) {
		tx_init(&x[i], b, "s@x.example", "a@x.example", NULL, NULL);
		submit(c, &x[i]);
	}
	int64_t t0 = now_ms();
	CHECK(run_until(&done_count, base_done + 2, 5000));
	for (int i = 0; i < 2; i++) {
		CHECK_INT(x[i].t.result.code, code);
		if (find(x[i].t.result.text, text, 0) < 0)
			fprintf(stderr, "  text \"%s\" lacks \"%s\"\n", x[i].t.result.text, text);
		CHECK(find(x[i].t.result.text, text, 0) >= 0);
		smtp_client_txn_clear(&x[i].t);
	}
	if (scale)
		CHECK(now_ms() - t0 < 20 * scale);
	CHECK_INT(fr.n_conns, 1); /* both fail with the one connection */
	smtp_client_free(c);
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

static void test_early_failures(void)
{
	struct fake_opts o421 = {.greeting = "421 4.3.2 busy, come back later"};
	expect_failure(&o421, RELAY_TLS_NO, 0, 421, "relay 127.0.0.1:");
	expect_failure(&o421, RELAY_TLS_NO, 0, 421, "greeting: 421 4.3.2 busy, come back later");
	struct fake_opts silent = {.silent = 1};
	expect_failure(&silent, RELAY_TLS_NO, 200, 0, "timed out waiting for the greeting");
	struct fake_opts junk = {.greeting = "hello there"};
	expect_failure(&junk, RELAY_TLS_NO, 0, 0, "protocol error from relay 127.0.0.1:");
	expect_failure(&junk, RELAY_TLS_NO, 0, 0, "malformed reply \"hello there\"");
	char longline[700];
	memset(longline, 'x', sizeof longline - 1);
	memcpy(longline, "220 ", 4);
	longline[sizeof longline - 1] = '\0';
	struct fake_opts longo = {.greeting = longline};
	expect_failure(&longo, RELAY_TLS_NO, 0, 0, "reply line longer than 512 octets");
	struct fake_opts mixed = {.greeting = "220-fake.example\r\n250 hello"};
	expect_failure(&mixed, RELAY_TLS_NO, 0, 0, "reply code changed within a reply");
	/* junk of every kind: whatever happens, done() comes and nothing breaks */
	srand(42);
	for (int round = 0; round < 40; round++) {
		static const char *const starts[] = {"", "220 ", "220-", "250-", "220 x\r\n250-"};
		char noise[800];
		size_t n = (size_t)snprintf(noise, sizeof noise, "%s", starts[round % 5]);
		size_t len = n + (size_t)(rand() % 700);
		while (n < len) {
			int r = rand() % 20;
			noise[n++] = r == 0 ? '\r' : r == 1 ? '\n' : (char)(1 + rand() % 255);
		}
		noise[n] = '\0';
		struct fake_opts jo = {.greeting = noise, .pipelining = round & 1};
		struct fake_relay fr;
		fake_relay_start(&fr, base, &jo);
		struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 300);
		struct smtp_body *b = body_of("hello\n");
		struct tx x;
		tx_init(&x, b, "s@x.example", "a@x.example", NULL, NULL);
		submit(c, &x);
		CHECK(run_until(&x.done, 1, 5000));
		smtp_client_txn_clear(&x.t);
		smtp_client_free(c);
		smtp_body_unref(b);
		fake_relay_stop(&fr);
	}
	struct fake_opts plain = {.pipelining = 1};
	expect_failure(&plain, RELAY_TLS_REQUIRED, 0, 0,
		       "does not offer STARTTLS ([delivery] tls = required)");
}

static void test_greeting_split_and_helo(void)
{
	for (int variant = 0; variant < 2; variant++) {
		struct fake_relay fr;
		struct fake_opts o = {.greet_split = variant == 0,
				      .pipelining = variant == 0,
				      .no_ehlo = variant == 1};
		fake_relay_start(&fr, base, &o);
		struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 0);
		struct smtp_body *b = body_of("hello\n");
		struct tx x[2];
		int base_done = done_count;
		for (int i = 0; i < 2; i++) {
			tx_init(&x[i], b, "s@x.example", "a@x.example", NULL, NULL);
			submit(c, &x[i]);
		}
		CHECK(run_until(&done_count, base_done + 2, 5000));
		CHECK_INT(x[0].t.result.code, 250);
		CHECK_INT(x[1].t.result.code, 250);
		if (variant == 0) {
			CHECK_INT(fr.grouped, 2); /* PIPELINING came in the split reply */
		} else {
			CHECK(find(fr.log.buf, "1: HELO client.example", 0) > 0);
			CHECK(find(fr.log.buf, "SIZE=", 0) < 0); /* no ESMTP, no parameters */
			CHECK_INT(fr.ahead, 0);
		}
		for (int i = 0; i < 2; i++)
			smtp_client_txn_clear(&x[i].t);
		smtp_client_free(c);
		smtp_body_unref(b);
		fake_relay_stop(&fr);
	}
}

static void test_parallel_limit(void)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = 1};
	fake_relay_start(&fr, base, &o);
	struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 2, 0);
	struct smtp_body *b = body_of("hello\n");
	struct tx x[6];
	int base_done = done_count;
	for (int i = 0; i < 6; i++) {
		tx_init(&x[i], b, "s@x.example", "a@x.example", NULL, NULL);
		submit(c, &x[i]);
	}
	CHECK(run_until(&done_count, base_done + 6, 5000));
	for (int i = 0; i < 6; i++) {
		CHECK_INT(x[i].t.result.code, 250);
		smtp_client_txn_clear(&x[i].t);
	}
	CHECK_INT(fr.n_conns, 2);
	CHECK_INT(fr.max_live, 2);
	CHECK_INT(fr.n_msgs, 6);
	smtp_client_free(c);
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

/* Idle connections QUIT after idle_timeout; smtp_client_free QUITs too. */
static void test_idle_quit(void)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = 1};
	fake_relay_start(&fr, base, &o);
	char p[16];
	snprintf(p, sizeof p, "%d", fr.port);
	struct smtp_client_opts co = {.host = "127.0.0.1",
				      .port = p,
				      .helo = "c.example",
				      .connections = 1,
				      .idle_timeout = 1};
	struct smtp_client *c = smtp_client_new(base, &co);
	struct smtp_body *b = body_of("hello\n");
	struct tx x;
	tx_init(&x, b, "s@x.example", "a@x.example", NULL, NULL);
	submit(c, &x);
	CHECK(run_until(&x.done, 1, 5000));
	int64_t t0 = now_ms();
	CHECK(run_until(&fr.n_quit, 1, 4000));
	CHECK(now_ms() - t0 > 500);
	run_for(50);
	CHECK_INT(fr.n_live, 0);
	/* a new job after the QUIT opens a new connection */
	smtp_client_txn_clear(&x.t);
	tx_init(&x, b, "s@x.example", "a@x.example", NULL, NULL);
	submit(c, &x);
	CHECK(run_until(&x.done, 1, 5000));
	CHECK_INT(x.t.result.code, 250);
	CHECK_INT(fr.n_conns, 2);
	smtp_client_txn_clear(&x.t);
	smtp_client_free(c); /* best-effort QUIT on the idle one */
	CHECK(run_until(&fr.n_quit, 2, 2000));
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

/* done() is never called from submit, may submit again, and free fails
 * what is left with "shutting down" before it returns. */
static void test_callbacks_and_free(void)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = 1};
	fake_relay_start(&fr, base, &o);
	struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 0);
	struct smtp_body *b = body_of("hello\n");
	struct tx x[3];
	tx_init(&x[0], b, "s@x.example", "a@x.example", NULL, NULL);
	tx_init(&x[1], b, "s@x.example", "b@x.example", NULL, NULL);
	x[0].again = &x[1];
	x[0].again_on = c;
	/* refused locally: still delivered from the loop, not from submit */
	tx_init(&x[2], b, "s@x.example", "bad\r\nRSET", NULL, NULL);
	submit(c, &x[0]);
	submit(c, &x[2]);
	CHECK(run_until(&x[1].done, 1, 5000));
	CHECK_INT(x[0].t.result.code, 250);
	CHECK_INT(x[1].t.result.code, 250);
	CHECK_INT(x[2].done, 1);
	CHECK_INT(x[2].t.result.code, 553);
	CHECK_INT(x[2].t.rcpt_results[0].code, 553);
	CHECK_INT(count(fr.log.buf, "bad"), 0);
	for (int i = 0; i < 3; i++)
		smtp_client_txn_clear(&x[i].t);
	smtp_client_free(c);
	fake_relay_stop(&fr);

	struct fake_opts so = {.silent = 1};
	fake_relay_start(&fr, base, &so);
	c = client(fr.port, RELAY_TLS_NO, 1, 0);
	tx_init(&x[0], b, "s@x.example", "a@x.example", NULL, NULL);
	tx_init(&x[1], b, "s@x.example", "b@x.example", NULL, NULL);
	submit(c, &x[0]);
	submit(c, &x[1]);
	run_for(50);
	CHECK_INT(x[0].done, 0);
	smtp_client_free(c);
	for (int i = 0; i < 2; i++) {
		CHECK_INT(x[i].done, 1);
		CHECK_INT(x[i].t.result.code, 0);
		CHECK_STR(x[i].t.result.text, "shutting down");
		CHECK_STR(x[i].t.rcpt_results[0].text, "shutting down");
		smtp_client_txn_clear(&x[i].t);
	}
	fake_relay_stop(&fr);

	/* a done() that frees the client */
	struct fake_opts po = {.pipelining = 1};
	fake_relay_start(&fr, base, &po);
	c = client(fr.port, RELAY_TLS_NO, 1, 0);
	for (int i = 0; i < 3; i++) {
		tx_init(&x[i], b, "s@x.example", "a@x.example", NULL, NULL);
		submit(c, &x[i]);
	}
	x[0].free_on_done = c;
	CHECK(run_until(&x[0].done, 1, 5000));
	CHECK_INT(x[0].t.result.code, 250);
	for (int i = 1; i < 3; i++) {
		CHECK_INT(x[i].done, 1);
		CHECK_INT(x[i].t.result.code, x[i].t.result.code == 250 ? 250 : 0);
	}
	for (int i = 0; i < 3; i++)
		smtp_client_txn_clear(&x[i].t);
	run_for(20);
	smtp_body_unref(b);
	fake_relay_stop(&fr);
}

static void test_size_limit(void)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = 1, .size = "100"};
	fake_relay_start(&fr, base, &o);
	struct smtp_client *c = client(fr.port, RELAY_TLS_NO, 1, 0);
	char big[300];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	struct smtp_body *b = body_of(big);
	struct smtp_body *small = body_of("hi\n");
	struct tx x[2];
	tx_init(&x[0], b, "s@x.example", "a@x.example", NULL, NULL);
	tx_init(&x[1], small, "s@x.example", "a@x.example", NULL, NULL);
	submit(c, &x[0]);
	submit(c, &x[1]);
	int base_done = done_count;
	CHECK(run_until(&done_count, base_done + 2, 5000));
	CHECK_INT(x[0].t.result.code, 552);
	CHECK_INT(x[1].t.result.code, 250);
	CHECK_INT(fr.n_mail, 1);
	for (int i = 0; i < 2; i++)
		smtp_client_txn_clear(&x[i].t);
	smtp_client_free(c);
	smtp_body_unref(b);
	smtp_body_unref(small);
	fake_relay_stop(&fr);
}

/* ---- STARTTLS ---- */

static char cert_path[64], other_cert_path[64];

/* Two transactions to a STARTTLS relay; returns the relay's log. */
static char *tls_run(SSL_CTX *sctx, const struct fake_opts *o, const char *host, enum relay_tls tls,
		     int code, const char *text, int *conns)
{
	struct fake_relay fr;
	fake_relay_start(&fr, base, o);
	fr.ssl = sctx;
	char p[16];
	snprintf(p, sizeof p, "%d", fr.port);
	struct smtp_client_opts co = {.host = host,
				      .port = p,
				      .helo = "c.example",
				      .tls = tls,
				      .connections = 1,
				      .idle_timeout = 30};
	struct smtp_client *c = smtp_client_new(base, &co);
	struct smtp_body *b = body_of("secret\n");
	struct tx x[2];
	int base_done = done_count;
	for (int i = 0; i < 2; i++) {
		tx_init(&x[i], b, "s@x.example", "a@x.example", NULL, NULL);
		submit(c, &x[i]);
	}
	CHECK(run_until(&done_count, base_done + 2, 5000));
	for (int i = 0; i < 2; i++) {
		CHECK_INT(x[i].t.result.code, code);
		if (find(x[i].t.result.text, text, 0) < 0)
			fprintf(stderr, "  text \"%s\" lacks \"%s\"\n", x[i].t.result.text, text);
		CHECK(find(x[i].t.result.text, text, 0) >= 0);
		smtp_client_txn_clear(&x[i].t);
	}
	int quits = fr.n_quit;
	smtp_client_free(c);
	if (code == 250)
		CHECK(run_until(&fr.n_quit, quits + 1, 2000)); /* QUIT inside TLS too */
	smtp_body_unref(b);
	*conns = fr.n_conns;
	char *log = sbuf_detach(&fr.log);
	fake_relay_stop(&fr);
	return log;
}

static void test_tls(void)
{
	SSL_CTX *sctx = fake_tls_ctx("DNS:localhost,IP:127.0.0.1", cert_path);
	SSL_CTX *other = fake_tls_ctx("DNS:relay.invalid", other_cert_path);
	int conns;
	struct fake_opts o = {.pipelining = 1, .starttls = 1};

	/* opportunistic: used, unverified, EHLO again inside */
	char *log = tls_run(sctx, &o, "127.0.0.1", RELAY_TLS_OPPORTUNISTIC, 250, "2.0.0", &conns);
	CHECK(find(log, "1: STARTTLS", 0) > 0);
	CHECK(find(log, "1T: EHLO c.example", 0) > 0);
	CHECK(find(log, "1T: MAIL FROM:<s@x.example>", 0) > 0);
	CHECK(find(log, "1: MAIL", 0) < 0);
	CHECK_INT(conns, 1);
	free(log);

	/* no TLS wanted: not used though offered */
	log = tls_run(sctx, &o, "127.0.0.1", RELAY_TLS_NO, 250, "2.0.0", &conns);
	CHECK(find(log, "STARTTLS", 0) < 0);
	free(log);

	/* required: a certificate nobody vouches for */
	log = tls_run(sctx, &o, "127.0.0.1", RELAY_TLS_REQUIRED, 0,
		      "certificate verification failed: self-signed certificate", &conns);
	CHECK(find(log, "MAIL", 0) < 0);
	CHECK_INT(conns, 1);
	free(log);

	/* required, and trusted: by name and by address */
	setenv("SSL_CERT_FILE", cert_path, 1);
	log = tls_run(sctx, &o, "localhost", RELAY_TLS_REQUIRED, 250, "2.0.0", &conns);
	CHECK(find(log, "T: MAIL FROM:<s@x.example>", 0) > 0);
	free(log);
	log = tls_run(sctx, &o, "127.0.0.1", RELAY_TLS_REQUIRED, 250, "2.0.0", &conns);
	free(log);
	/* trusted, but for another name */
	setenv("SSL_CERT_FILE", other_cert_path, 1);
	log = tls_run(other, &o, "127.0.0.1", RELAY_TLS_REQUIRED, 0,
		      "certificate verification failed: IP address mismatch", &conns);
	free(log);
	log = tls_run(other, &o, "localhost", RELAY_TLS_REQUIRED, 0,
		      "certificate verification failed: hostname mismatch", &conns);
	free(log);
	unsetenv("SSL_CERT_FILE");

	/* opportunistic, and the handshake fails: the jobs go again on a new
	 * connection without TLS */
	struct fake_opts garbage = {.pipelining = 1, .starttls = 1, .tls_garbage = 1};
	log = tls_run(sctx, &garbage, "127.0.0.1", RELAY_TLS_OPPORTUNISTIC, 250, "2.0.0", &conns);
	CHECK_INT(count(log, "STARTTLS"), 1);
	CHECK(find(log, "2: MAIL FROM:<s@x.example>", 0) > 0);
	CHECK_INT(conns, 2);
	free(log);
	log = tls_run(sctx, &garbage, "127.0.0.1", RELAY_TLS_REQUIRED, 0,
		      "TLS with relay 127.0.0.1:", &conns);
	free(log);

	/* a reply injected behind the 220 to STARTTLS */
	struct fake_opts inject = {.pipelining = 1, .starttls = 1, .tls_inject = 1};
	log = tls_run(sctx, &inject, "127.0.0.1", RELAY_TLS_REQUIRED, 0,
		      "relay sent data after its reply to STARTTLS", &conns);
	free(log);
	log = tls_run(sctx, &inject, "127.0.0.1", RELAY_TLS_OPPORTUNISTIC, 250, "2.0.0", &conns);
	CHECK_INT(conns, 2);
	free(log);

	SSL_CTX_free(sctx);
	SSL_CTX_free(other);
	unlink(cert_path);
	unlink(other_cert_path);
}

/* ---- throughput ---- */

/* N single-recipient transactions over 4 connections; prints the rate. */
static double throughput(int port, int n)
{
	struct smtp_client *c = client(port, RELAY_TLS_NO, 4, 0);
	struct sbuf post = {0};
	sbuf_adds(&post, "From: a@x.example\nSubject: bench\n\n");
	const char *size = getenv("SMTP_CLIENT_BENCH_SIZE"); /* body octets, default ~14 */
	for (long i = 0, want = size ? atol(size) : 0; i < want; i += 64)
		sbuf_adds(&post, "The quick brown fox jumps over the lazy dog, again and again.\n");
	sbuf_adds(&post, "A short post.\n");
	struct smtp_body *b = body_of(post.buf);
	sbuf_free(&post);
	struct tx *x = xcalloc((size_t)n, sizeof *x);
	int base_done = done_count;
	int64_t t0 = now_ms();
	for (int i = 0; i < n; i++) {
		tx_init(&x[i], b, "list-bounces@x.example", "member@y.example", NULL, NULL);
		submit(c, &x[i]);
	}
	CHECK(run_until(&done_count, base_done + n, 120000));
	int64_t ms = now_ms() - t0;
	int ok = 0;
	for (int i = 0; i < n; i++) {
		ok += x[i].t.result.code == 250;
		smtp_client_txn_clear(&x[i].t);
	}
	CHECK_INT(ok, n);
	uint64_t txns, conns;
	smtp_client_stats(c, &txns, &conns);
	CHECK_INT(conns, 4);
	smtp_client_free(c);
	smtp_body_unref(b);
	free(x);
	return ms > 0 ? n * 1000.0 / (double)ms : 0;
}

static void test_throughput(void)
{
	struct fake_relay fr;
	struct fake_opts o = {.pipelining = 1, .nolog = 1};
	fake_relay_start(&fr, base, &o);
	fprintf(stderr, "throughput, relay in this loop: %.0f transactions/s\n",
		throughput(fr.port, 2000));
	fake_relay_stop(&fr);

	const char *env = getenv("SMTP_CLIENT_BENCH");
	if (!env)
		return;
	int n = atoi(env);
	const char *ext = getenv("SMTP_CLIENT_BENCH_PORT"); /* e.g. Postfix's smtp-sink */
	if (ext && n > 0) {
		fprintf(stderr, "throughput, relay on port %s: %.0f transactions/s (%d)\n", ext,
			throughput(atoi(ext), n), n);
		return;
	}
	int fds[2];
	if (n <= 0 || pipe(fds) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		struct event_base *b = event_base_new();
		struct fake_opts so = {.pipelining = 1, .nolog = 1};
		fake_relay_start(&fr, b, &so);
		if (write(fds[1], &fr.port, sizeof fr.port) != sizeof fr.port)
			_exit(1);
		close(fds[1]);
		event_base_dispatch(b);
		_exit(0);
	}
	close(fds[1]);
	int port = -1;
	if (read(fds[0], &port, sizeof port) != sizeof port)
		port = -1;
	close(fds[0]);
	if (pid > 0 && port > 0)
		fprintf(stderr, "throughput, relay in another process: %.0f transactions/s (%d)\n",
			throughput(port, n), n);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (getenv("SMTP_CLIENT_DEBUG"))
		log_set_level(LOG_LVL_DEBUG);
	else
		log_set_level(LOG_LVL_ERR);
	base = event_base_new();
	struct event *ticker = event_new(base, -1, EV_PERSIST, tick, NULL);
	struct timeval tv = {0, 10000};
	event_add(ticker, &tv);

	test_dot_stuff();
	test_mixed_rcpts(1);
	test_mixed_rcpts(0);
	test_final_552();
	test_reuse(1);
	test_reuse(0);
	test_refused();
	test_close_mid();
	test_421_rcpt();
	test_early_failures();
	test_greeting_split_and_helo();
	test_parallel_limit();
	test_callbacks_and_free();
	test_size_limit();
	test_tls();
	test_idle_quit();
	test_throughput();

	event_free(ticker);
	event_base_free(base);
	return test_result();
}
