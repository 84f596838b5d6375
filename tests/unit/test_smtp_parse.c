/* SMTP command parsing: line checks, verbs, MAIL/RCPT paths and params. */
#include <stdio.h>
#include <string.h>

#include "smtp_parse.h"
#include "testutil.h"

static enum smtp_line_check line(const char *s)
{
	return smtp_check_command_line(s, strlen(s));
}

static void test_lines(void)
{
	CHECK_INT(line("NOOP\r\n"), SMTP_LINE_OK);
	CHECK_INT(line("NOOP\n"), SMTP_LINE_BARE_LF);
	CHECK_INT(line("NO\rOP\r\n"), SMTP_LINE_BARE_CR);
	CHECK_INT(line("\r\n"), SMTP_LINE_OK);
	CHECK_INT(line("\n"), SMTP_LINE_BARE_LF);
	CHECK_INT(line("MAIL FROM:<h\xc3\xa9@x.org>\r\n"), SMTP_LINE_NON_ASCII);
	CHECK_INT(line("NOOP\x01\r\n"), SMTP_LINE_NON_ASCII);
	CHECK_INT(line("NOOP\tx\r\n"), SMTP_LINE_OK);
	CHECK_INT(smtp_check_command_line("NO\0OP\r\n", 7), SMTP_LINE_NUL);
	CHECK_INT(smtp_check_command_line("NOOP", 4), SMTP_LINE_BARE_LF);
}

static void test_verbs(void)
{
	const char *arg;
	CHECK_INT(smtp_parse_verb("EHLO client.example", &arg), SMTP_EHLO);
	CHECK_STR(arg, "client.example");
	CHECK_INT(smtp_parse_verb("ehlo x", &arg), SMTP_EHLO);
	CHECK_INT(smtp_parse_verb("QUIT", &arg), SMTP_QUIT);
	CHECK_STR(arg, "");
	CHECK_INT(smtp_parse_verb("StartTLS", &arg), SMTP_STARTTLS);
	CHECK_INT(smtp_parse_verb("QUITX", &arg), SMTP_UNKNOWN);
	CHECK_INT(smtp_parse_verb("", &arg), SMTP_UNKNOWN);
	CHECK_INT(smtp_parse_verb("MAIL FROM:<a@b.c>", &arg), SMTP_MAIL);
	CHECK_STR(arg, "FROM:<a@b.c>");
	CHECK_INT(smtp_parse_verb("AUTH PLAIN", &arg), SMTP_UNKNOWN);
}

static void test_mail(void)
{
	struct smtp_mail_args m;
	CHECK_INT(smtp_parse_mail("FROM:<alice@example.org>", &m), SMTP_PATH_OK);
	CHECK_STR(m.addr, "alice@example.org");
	CHECK_INT(m.size, -1);
	CHECK_INT(smtp_parse_mail("FROM:<>", &m), SMTP_PATH_OK);
	CHECK_STR(m.addr, "");
	CHECK_INT(smtp_parse_mail("from: <a@b.org> SIZE=1234 BODY=8BITMIME", &m), SMTP_PATH_OK);
	CHECK_INT(m.size, 1234);
	CHECK_INT(m.body, SMTP_BODY_8BITMIME);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org> body=7bit", &m), SMTP_PATH_OK);
	CHECK_INT(m.body, SMTP_BODY_7BIT);
	CHECK_INT(smtp_parse_mail("FROM:<@relay.org,@r2.org:a@b.org>", &m), SMTP_PATH_OK);
	CHECK_STR(m.addr, "a@b.org");
	CHECK_INT(smtp_parse_mail("FROM:<\"a>c\"@b.org>", &m), SMTP_PATH_OK);
	CHECK_STR(m.addr, "\"a>c\"@b.org");
	CHECK_INT(smtp_parse_mail("FROM:a@b.org", &m), SMTP_PATH_SYNTAX);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org", &m), SMTP_PATH_SYNTAX);
	CHECK_INT(smtp_parse_mail("TO:<a@b.org>", &m), SMTP_PATH_SYNTAX);
	CHECK_INT(smtp_parse_mail("FROM:<not an address>", &m), SMTP_PATH_ADDRESS);
	CHECK_INT(smtp_parse_mail("FROM:<a@>", &m), SMTP_PATH_ADDRESS);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org> SIZE=abc", &m), SMTP_PATH_PARAM);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org> SIZE=", &m), SMTP_PATH_PARAM);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org> SIZE=99999999999999999999999", &m),
		  SMTP_PATH_PARAM);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org> BODY=BINARYMIME", &m), SMTP_PATH_PARAM);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org> SMTPUTF8", &m), SMTP_PATH_PARAM);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org> SIZE=1 SIZE=2", &m), SMTP_PATH_PARAM);
	CHECK_INT(smtp_parse_mail("FROM:<a@b.org>x", &m), SMTP_PATH_SYNTAX);
	char longpath[600];
	memset(longpath, 'a', sizeof longpath);
	memcpy(longpath, "FROM:<", 6);
	strcpy(longpath + 560, "@b.org>");
	CHECK_INT(smtp_parse_mail(longpath, &m), SMTP_PATH_TOO_LONG);
}

static void test_rcpt(void)
{
	struct smtp_rcpt_args r;
	CHECK_INT(smtp_parse_rcpt("TO:<dialogue@lists.example.org>", &r), SMTP_PATH_OK);
	CHECK_STR(r.addr, "dialogue@lists.example.org");
	CHECK_INT(smtp_parse_rcpt("to: <x@y.org> ", &r), SMTP_PATH_OK);
	CHECK_INT(smtp_parse_rcpt("TO:<>", &r), SMTP_PATH_ADDRESS);
	CHECK_INT(smtp_parse_rcpt("TO:<x@y.org> NOTIFY=NEVER", &r), SMTP_PATH_PARAM);
	CHECK_INT(smtp_parse_rcpt("FROM:<x@y.org>", &r), SMTP_PATH_SYNTAX);
	CHECK_INT(smtp_parse_rcpt("TO:<Postmaster>", &r), SMTP_PATH_OK);
	CHECK_STR(r.addr, "postmaster");
	CHECK_INT(smtp_parse_rcpt("TO:<postmaster>x", &r), SMTP_PATH_PARAM);
	CHECK_INT(smtp_parse_rcpt("TO:<post>", &r), SMTP_PATH_ADDRESS);
}

static void test_helo(void)
{
	CHECK(smtp_valid_helo("mail.example.org"));
	CHECK(smtp_valid_helo("[127.0.0.1]"));
	CHECK(smtp_valid_helo("[IPv6:::1]"));
	CHECK(smtp_valid_helo("my_host"));
	CHECK(!smtp_valid_helo(""));
	CHECK(!smtp_valid_helo("two words"));
	CHECK(!smtp_valid_helo("<script>"));
}

/* Feed TEXT line by line as the server does; returns the flags and puts
 * the collected message in OUT (when not refused). */
static int feed(const char *text, size_t max, char *out, size_t outlen, int *ended)
{
	struct smtp_data d = {0};
	smtp_data_begin(&d, max);
	const unsigned char *p = (const unsigned char *)text;
	size_t len = strlen(text), pos = 0;
	*ended = 0;
	while (pos < len) {
		const unsigned char *lf = memchr(p + pos, '\n', len - pos);
		if (!lf)
			break;
		size_t n = (size_t)(lf - (p + pos)) + 1;
		if (smtp_data_is_end(&d, p + pos, n)) {
			*ended = 1;
			break;
		}
		smtp_data_segment(&d, p + pos, n, 1);
		pos += n;
	}
	snprintf(out, outlen, "%s", d.buf.buf ? d.buf.buf : "");
	int flags = d.flags;
	smtp_data_free(&d);
	return flags;
}

static void test_data(void)
{
	char out[2048];
	int ended;
	CHECK_INT(feed("Subject: a\r\n\r\n..dot\r\n.x\r\nbody\r\n.\r\n", 1000, out, sizeof out,
		       &ended), 0);
	CHECK(ended);
	CHECK_STR(out, "Subject: a\r\n\r\n.dot\r\nx\r\nbody\r\n");
	/* bare LF: refused, and "\n.\r\n" or ".\n" never ends the data */
	CHECK_INT(feed("a\nb\r\n", 1000, out, sizeof out, &ended), SMTP_DATA_BARE_LF);
	feed("a\n.\r\nmore\r\n", 1000, out, sizeof out, &ended);
	CHECK(!ended);
	feed("a\r\n.\nmore\r\n", 1000, out, sizeof out, &ended);
	CHECK(!ended);
	CHECK_INT(feed("a\rb\r\n", 1000, out, sizeof out, &ended), SMTP_DATA_BARE_CR);
	CHECK_INT(feed("0123456789\r\n", 5, out, sizeof out, &ended), SMTP_DATA_TOO_BIG);
	char longline[1100];
	memset(longline, 'x', sizeof longline);
	strcpy(longline + 999, "\r\n");
	CHECK_INT(feed(longline, 5000, out, sizeof out, &ended), SMTP_DATA_LONG_LINE);
	longline[998] = '\0';
	strcat(longline, "\r\n"); /* exactly 1000 octets with CRLF */
	CHECK_INT(feed(longline, 5000, out, sizeof out, &ended), 0);
}

static void test_replies(void)
{
	int code, last;
	const char *text;
	CHECK_INT(smtp_parse_reply_line("250 2.0.0 Ok", 12, &code, &last, &text), 0);
	CHECK_INT(code, 250);
	CHECK(last);
	CHECK_STR(text, "2.0.0 Ok");
	CHECK_INT(smtp_parse_reply_line("250-PIPELINING", 14, &code, &last, &text), 0);
	CHECK(!last);
	CHECK_INT(smtp_parse_reply_line("354", 3, &code, &last, &text), 0);
	CHECK(last);
	CHECK_STR(text, "");
	CHECK_INT(smtp_parse_reply_line("199 x", 5, &code, &last, &text), -1);
	CHECK_INT(smtp_parse_reply_line("25", 2, &code, &last, &text), -1);
	CHECK_INT(smtp_parse_reply_line("250x", 4, &code, &last, &text), -1);
	CHECK_INT(smtp_parse_reply_line("600 no", 6, &code, &last, &text), -1);

	struct smtp_ehlo_caps caps;
	smtp_parse_ehlo("relay.example Hello\nPIPELINING\nsize 1024\n8BITMIME\nSTARTTLS", &caps);
	CHECK(caps.pipelining && caps.starttls && caps.eightbitmime && caps.size);
	CHECK(!caps.smtputf8);
	CHECK_INT(caps.size_max, 1024);
	smtp_parse_ehlo("PIPELINING only a greeting", &caps);
	CHECK(!caps.pipelining);
	smtp_parse_ehlo("x\nPIPELININGX\nSTARTTLS extra", &caps);
	CHECK(!caps.pipelining && caps.starttls);
}

int main(void)
{
	test_replies();
	test_data();
	test_lines();
	test_verbs();
	test_mail();
	test_rcpt();
	test_helo();
	return test_result();
}
