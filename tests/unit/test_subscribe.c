/* test_subscribe: token hashing, the commands read from a mail to
 * L-request, and the subscription rules run through archive_process()
 * against a real database (tokens, rate limits, quiet mail). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "config.h"
#include "store.h"
#include "subscribe.h"
#include "testdb.h"
#include "testutil.h"
#include "token.h"
#include "util.h"

static char tmpdir[256];

/* ---- tokens ---- */

static void test_token_hash(void)
{
	char h[TOKEN_HASH_LEN + 1];
	CHECK_INT(token_hash("abc", h), 0);
	CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK_INT(token_hash("", h), 0);
	CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1], ha[TOKEN_HASH_LEN + 1], hb[TOKEN_HASH_LEN + 1];
	CHECK_INT(token_new(a), 0);
	CHECK_INT(token_new(b), 0);
	CHECK_INT(strlen(a), TOKEN_LEN);
	CHECK(strcmp(a, b) != 0);
	CHECK(token_syntax_ok(a));
	CHECK_INT(token_hash(a, ha), 0);
	CHECK_INT(token_hash(b, hb), 0);
	CHECK_INT(strlen(ha), TOKEN_HASH_LEN);
	CHECK(strcmp(ha, hb) != 0);
	/* The hash is a function of the token alone. */
	CHECK_INT(token_hash(a, hb), 0);
	CHECK_STR(hb, ha);

	CHECK(token_syntax_ok("AAAAAAAAAAAAAAAAAAAAA-"));
	CHECK(token_syntax_ok("abcdefghij_0123456789Z"));
	CHECK(!token_syntax_ok("AAAAAAAAAAAAAAAAAAAAA"));   /* 21 */
	CHECK(!token_syntax_ok("AAAAAAAAAAAAAAAAAAAAAAA")); /* 23 */
	CHECK(!token_syntax_ok("AAAAAAAAAAAAAAAAAAAA+A"));
	CHECK(!token_syntax_ok("AAAAAAAAAAAAAAAAAAAA A"));
	CHECK(!token_syntax_ok(""));
}

/* ---- commands ---- */

#define TOK "Abcdefghij0123456789-_"

struct want {
	enum subscribe_cmd_kind kind;
	const char *token;
};

static void cmds(int line, const char *subject, const char *body, size_t n_want,
		 const struct want *want)
{
	struct subscribe_cmd out[SUBSCRIBE_MAX_CMDS];
	size_t n = subscribe_parse_commands(subject, body, out);
	test_checks++;
	int ok = n == n_want;
	for (size_t i = 0; ok && i < n; i++)
		ok = out[i].kind == want[i].kind &&
		     !strcmp(out[i].token, want[i].token ? want[i].token : "");
	if (!ok) {
		fprintf(stderr, "%s:%d: FAIL: commands of subject \"%s\": got %zu:", __FILE__,
			line, subject ? subject : "(null)", n);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %d/%s", (int)out[i].kind, out[i].token);
		fprintf(stderr, "\n");
		test_failures++;
	}
}

#define CMDS(subject, body, ...)                                                              \
	do {                                                                                  \
		const struct want w_[] = {__VA_ARGS__};                                       \
		cmds(__LINE__, subject, body, sizeof w_ / sizeof w_[0], w_);                  \
	} while (0)

#define JOIN {SUBSCRIBE_CMD_JOIN, NULL}
#define LEAVE {SUBSCRIBE_CMD_LEAVE, NULL}
#define HELP {SUBSCRIBE_CMD_HELP, NULL}
#define CONFIRM(t) {SUBSCRIBE_CMD_CONFIRM, t}

static void test_commands(void)
{
	/* The Subject. */
	CMDS("subscribe", "", JOIN);
	CMDS("  Join  ", NULL, JOIN);
	CMDS("UNSUBSCRIBE", "", LEAVE);
	CMDS("leave", "", LEAVE);
	CMDS("help", "", HELP);
	CMDS("confirm " TOK, "", CONFIRM(TOK));
	CMDS("Re: confirm " TOK, "", CONFIRM(TOK));
	CMDS("RE: Aw: [Dialogue] Fwd: subscribe", "", JOIN);
	CMDS("Re[2]: unsubscribe", "", LEAVE);
	/* A confirmation's own subject, replied to. */
	CMDS("Re: confirm " TOK " to join Dialogue on Internet Cooperation Evolution", "",
	     CONFIRM(TOK));
	CMDS("Re: Your confirmation: confirm " TOK, NULL, CONFIRM(TOK));
	/* Not a command: help. */
	CMDS("Hello there", "", HELP);
	CMDS("", "", HELP);
	CMDS(NULL, NULL, HELP);
	CMDS("subscribe me please", "", HELP);
	CMDS("Re: hello", "I would like to join your list.\n", HELP);
	/* A confirm with something that is not a token still is a confirm
	 * (answered as an invalid token). */
	CMDS("confirm nonsense", "", CONFIRM(""));

	/* The body: first lines, quoted text and signature skipped. */
	CMDS("", "subscribe\n", JOIN);
	CMDS("", "\r\n\r\n  subscribe  \r\n", JOIN);
	CMDS("", "> subscribe\n> help\nunsubscribe\n", LEAVE);
	CMDS("", "confirm " TOK "\nhelp\n", CONFIRM(TOK), HELP);
	CMDS("", "subscribe\nThanks!\nunsubscribe\n", JOIN);
	CMDS("", "-- \nsubscribe\n", HELP);
	CMDS("", "--\nsubscribe\n", HELP);
	CMDS("", "help\n-- \nAlice\nsubscribe\n", HELP);
	/* Subject and body together; repeats once. */
	CMDS("subscribe", "subscribe\nhelp\n", JOIN, HELP);
	CMDS("Re: confirm " TOK, "\n> We received a request\n> confirm " TOK "\n", CONFIRM(TOK));
	/* A reply quoting the confirmation, with the command on top. */
	CMDS("Re: something", "confirm " TOK "\n\nOn Mon, Nov 30, bob wrote:\n> confirm x\n",
	     CONFIRM(TOK));
	/* At most ten lines are read. */
	CMDS("", "help\nhelp\nhelp\nhelp\nhelp\nhelp\nhelp\nhelp\nhelp\nhelp\nsubscribe\n",
	     HELP);
	CMDS("", "join\njoin\njoin\njoin\njoin\njoin\njoin\njoin\njoin\nleave\nhelp\n", JOIN,
	     LEAVE);
	/* Long lines are not commands. */
	char longline[300];
	memset(longline, 'x', sizeof longline - 2);
	longline[sizeof longline - 2] = '\n';
	longline[sizeof longline - 1] = '\0';
	CMDS("", longline, HELP);
	/* ... but a long quoted line is skipped like any quoted line. */
	longline[0] = '>';
	char *quoted = xasprintf("%sjoin\n", longline);
	CMDS("", quoted, JOIN);
	free(quoted);

	/* What help quotes back: the first thing not understood. */
	struct subscribe_cmd out[SUBSCRIBE_MAX_CMDS];
	CHECK_INT(subscribe_parse_commands("Re: what is this?", "join\n", out), 1);
	CHECK_INT(out[0].kind, SUBSCRIBE_CMD_JOIN);
	CHECK_INT(subscribe_parse_commands("Re: what is this?", "", out), 1);
	CHECK_STR(out[0].text, "what is this?");
	CHECK_INT(subscribe_parse_commands("", "\n> quoted\n  sign me up  \r\nsubscribe\n", out),
		  1);
	CHECK_STR(out[0].text, "sign me up");
	CHECK_INT(subscribe_parse_commands("help", "", out), 1);
	CHECK_STR(out[0].text, "");
	/* Cut short, never inside a character. */
	char lng[70];
	memset(lng, 'a', 63);
	strcpy(lng + 63, "\xc3\xa9\xc3\xa9");
	subscribe_parse_commands(lng, NULL, out);
	CHECK_INT(strlen(out[0].text), 63);
}

/* ---- the rules, through archive_process ---- */

static struct config *cfg;
static struct store *st;
static char *db;

static int64_t sql_int(const char *sql)
{
	return testdb_int(db, sql);
}

static void sql_exec(const char *sql)
{
	testdb_exec(db, sql);
}

static int64_t mails_to(const char *addr)
{
	char *q = sqlite3_mprintf("SELECT count(*) FROM outbound WHERE recipient = %Q", addr);
	int64_t n = sql_int(q);
	sqlite3_free(q);
	return n;
}

/* Deliver one message to the store and process everything pending. */
static void receive(const char *mail_from, const char *ip, const char *rcpt, const char *list,
		    const char *kind, const char *detail, const char *text)
{
	struct store_rcpt r = {rcpt, list, kind, detail};
	struct store_incoming in = {
		.mail_from = mail_from,
		.helo = "client.example.net",
		.client_ip = ip,
		.rcpts = &r,
		.n_rcpts = 1,
		.data = text,
		.len = strlen(text),
		.received = now_epoch(),
	};
	CHECK_INT(store_accept_batch(st, &in, 1), STORE_OK);
	size_t queued;
	int n;
	while ((n = archive_process(st, cfg, NULL, INT64_MAX, 64, &queued)) > 0)
		;
	CHECK(n == 0);
}

static char *mail(const char *from, const char *subject, const char *extra)
{
	return xasprintf("From: %s\r\nTo: x@lists.example.org\r\nSubject: %s\r\n"
			 "Message-ID: <%lld.%d@test>\r\n%s\r\nHello.\r\n",
			 from, subject, (long long)now_epoch(), rand(), extra);
}

/* The token of the newest confirmation mail to ADDR, from its Reply-To. */
static char *last_token(const char *addr)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	char *tok = NULL;
	if (sqlite3_open(db, &h) != SQLITE_OK)
		return NULL;
	if (sqlite3_prepare_v2(h,
			       "SELECT m.body FROM outbound o JOIN outbound_msgs m ON m.id = o.msg_id"
			       " WHERE o.recipient = ? ORDER BY o.id DESC LIMIT 1",
			       -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, addr, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW) {
			const char *body = (const char *)sqlite3_column_blob(s, 0);
			size_t len = (size_t)sqlite3_column_bytes(s, 0);
			char *copy = xstrndup(body, len);
			char *p = strstr(copy, "-confirm+");
			if (p)
				tok = xstrndup(p + 9, TOKEN_LEN);
			free(copy);
		}
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return tok;
}

static int member_status(const char *addr, const char *status)
{
	char *q = sqlite3_mprintf("SELECT count(*) FROM members WHERE list = 'dialogue' AND"
				  " address = %Q AND status = %Q",
				  addr, status);
	int64_t n = sql_int(q);
	sqlite3_free(q);
	return n == 1;
}

static void confirm_by_address(const char *from, const char *token)
{
	char *rcpt = xasprintf("dialogue-confirm+%s@lists.example.org", token);
	char *m = mail(from, "Re: confirm", "");
	receive(from, "192.0.2.9", rcpt, "dialogue", "confirm", token, m);
	free(m);
	free(rcpt);
}

static void test_flow(void)
{
	const char *alice = "alice@example.net";
	char *m = mail("Alice Example <alice@example.net>", "please", "");
	receive(alice, "192.0.2.1", "dialogue-join@lists.example.org", "dialogue", "join", "", m);
	free(m);
	CHECK_INT(mails_to(alice), 1);
	CHECK_INT(sql_int("SELECT count(*) FROM members"), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM sub_tokens WHERE action = 'join'"), 1);
	/* Only the hash is stored. */
	CHECK_INT(sql_int("SELECT length(hash) FROM sub_tokens"), TOKEN_HASH_LEN);
	CHECK_INT(sql_int("SELECT count(*) FROM envelope_rcpts WHERE state = 'new'"), 0);

	char *tok = last_token(alice);
	CHECK(tok != NULL);
	if (!tok)
		return;
	char hash[TOKEN_HASH_LEN + 1];
	token_hash(tok, hash);
	char *q = sqlite3_mprintf("SELECT count(*) FROM sub_tokens WHERE hash = %Q", hash);
	CHECK_INT(sql_int(q), 1);
	sqlite3_free(q);

	/* Confirmed from another address: the token is the proof, and the
	 * member is the one asked. */
	confirm_by_address("someone@example.org", tok);
	CHECK(member_status(alice, "active"));
	CHECK_INT(sql_int("SELECT count(*) FROM members"), 1);
	CHECK_INT(sql_int("SELECT name = 'Alice Example' FROM members"), 1);
	CHECK_INT(sql_int("SELECT length(unsub_token) FROM members"), TOKEN_LEN);
	CHECK_INT(mails_to(alice), 2); /* the welcome */
	CHECK_INT(mails_to("someone@example.org"), 0);

	/* Reused: refused, answered to the sender. */
	confirm_by_address("someone@example.org", tok);
	CHECK_INT(mails_to("someone@example.org"), 1);
	CHECK_INT(sql_int("SELECT count(*) FROM members"), 1);

	/* The wrong list: not accepted, and the token not spent. */
	char *m2 = mail("bob@example.net", "join", "");
	receive("bob@example.net", "192.0.2.2", "dialogue-join@lists.example.org", "dialogue",
		"join", "", m2);
	free(m2);
	char *tb = last_token("bob@example.net");
	CHECK(tb != NULL);
	char *rcpt = xasprintf("other-confirm+%s@lists.example.org", tb ? tb : "x");
	m2 = mail("bob@example.net", "Re: confirm", "");
	receive("bob@example.net", "192.0.2.2", rcpt, "other", "confirm", tb ? tb : "x", m2);
	free(m2);
	free(rcpt);
	CHECK_INT(mails_to("bob@example.net"), 2); /* confirmation + token-invalid */
	CHECK(!member_status("bob@example.net", "active"));
	/* Expired. */
	sql_exec("UPDATE sub_tokens SET expires = CAST(strftime('%s', 'now') AS INTEGER) - 10"
		 " WHERE address = 'bob@example.net'");
	confirm_by_address("bob@example.net", tb ? tb : "x");
	CHECK(!member_status("bob@example.net", "active"));
	CHECK_INT(mails_to("bob@example.net"), 3);
	free(tb);

	/* Leave, confirmed through L-request. */
	m = mail(alice, "unsubscribe", "");
	receive(alice, "192.0.2.1", "dialogue-request@lists.example.org", "dialogue", "request",
		"", m);
	free(m);
	CHECK_INT(mails_to(alice), 3);
	char *tl = last_token(alice);
	CHECK(tl != NULL);
	char *subject = xasprintf("Re: confirm %s", tl ? tl : "x");
	m = mail(alice, subject, "");
	receive(alice, "192.0.2.1", "dialogue-request@lists.example.org", "dialogue", "request",
		"", m);
	free(m);
	free(subject);
	free(tl);
	CHECK_INT(sql_int("SELECT count(*) FROM members"), 0);
	CHECK_INT(mails_to(alice), 4); /* goodbye */
	free(tok);
}

static void test_limits(void)
{
	const char *victim = "victim@example.com";
	char *m0;
	/* A storm for one victim from one client: three confirmations. */
	for (int i = 0; i < 20; i++) {
		char *m = mail(victim, "subscribe", "");
		receive(victim, "198.51.100.7", "dialogue-join@lists.example.org", "dialogue",
			"join", "", m);
		free(m);
	}
	CHECK_INT(mails_to(victim), 3);

	/* One client on IPv6 holds a /64: thirty confirmations an hour from it
	 * (confirm_per_ip_per_hour), however many of its addresses it uses. */
	long sent = 0;
	for (int i = 0; i < 35; i++) {
		char who[64], ip[64];
		snprintf(who, sizeof who, "v6-%d@example.com", i);
		snprintf(ip, sizeof ip, "2001:db8:1:2:%x::%x", i, i + 1);
		char *j = mail(who, "subscribe", "");
		receive(who, ip, "dialogue-join@lists.example.org", "dialogue", "join", "", j);
		free(j);
		sent += mails_to(who);
	}
	CHECK_INT(sent, 30);
	/* ... while the next /64 has its own allowance. */
	m0 = mail("other-net@example.com", "subscribe", "");
	receive("other-net@example.com", "2001:db8:1:3::1", "dialogue-join@lists.example.org",
		"dialogue", "join", "", m0);
	free(m0);
	CHECK_INT(mails_to("other-net@example.com"), 1);

	/* Never answered: auto-submitted, null sender, a report, our own. */
	char *m = mail("auto@example.com", "subscribe", "Auto-Submitted: auto-replied\r\n");
	receive("auto@example.com", "198.51.100.8", "dialogue-join@lists.example.org", "dialogue",
		"join", "", m);
	free(m);
	CHECK_INT(mails_to("auto@example.com"), 0);
	m = mail("null@example.com", "subscribe", "");
	receive("", "198.51.100.8", "dialogue-join@lists.example.org", "dialogue", "join", "", m);
	free(m);
	CHECK_INT(mails_to("null@example.com"), 0);
	m = mail("dsn@example.com", "subscribe",
		 "Content-Type: multipart/report; report-type=delivery-status; b=x\r\n");
	receive("dsn@example.com", "198.51.100.8", "dialogue-join@lists.example.org", "dialogue",
		"join", "", m);
	free(m);
	CHECK_INT(mails_to("dsn@example.com"), 0);
	m = mail("dialogue-bounces@lists.example.org", "help", "");
	receive("dialogue-bounces@lists.example.org", "198.51.100.8",
		"dialogue-request@lists.example.org", "dialogue", "request", "", m);
	free(m);
	CHECK_INT(mails_to("dialogue-bounces@lists.example.org"), 0);
	/* "Auto-Submitted: no" is a person. */
	m = mail("person@example.com", "help", "Auto-Submitted: no\r\n");
	receive("person@example.com", "198.51.100.8", "dialogue-request@lists.example.org",
		"dialogue", "request", "", m);
	free(m);
	CHECK_INT(mails_to("person@example.com"), 1);

	/* At most auto_replies_per_day answers of any kind. */
	for (int i = 0; i < 15; i++) {
		m = mail("chatty@example.com", "help", "");
		receive("chatty@example.com", "198.51.100.9", "dialogue-request@lists.example.org",
			"dialogue", "request", "", m);
		free(m);
	}
	CHECK_INT(mails_to("chatty@example.com"), 10);

	/* Owner mail goes to the moderators, marked, and is not answered. */
	m = mail("chatty@example.com", "a question", "");
	receive("chatty@example.com", "198.51.100.9", "dialogue-owner@lists.example.org",
		"dialogue", "owner", "", m);
	free(m);
	CHECK_INT(mails_to("mod@example.org"), 1);
	CHECK_INT(mails_to("chatty@example.com"), 10);
	CHECK_INT(sql_int("SELECT count(*) FROM outbound_msgs WHERE instr(body,"
			  " 'X-Dialogue-Forwarded: owner of dialogue') = 1"),
		  1);
	/* ... but never what we forwarded before (a loop). */
	m = mail("chatty@example.com", "a question",
		 "X-Dialogue-Forwarded: owner of dialogue\r\n");
	receive("chatty@example.com", "198.51.100.9", "dialogue-owner@lists.example.org",
		"dialogue", "owner", "", m);
	free(m);
	CHECK_INT(mails_to("mod@example.org"), 1);
}

/* A relay that lowercased the confirm address: the token of the Subject. */
static void test_case_changed(void)
{
	const char *zed = "zed@example.net";
	char *m = mail(zed, "join", "");
	receive(zed, "192.0.2.3", "dialogue-join@lists.example.org", "dialogue", "join", "", m);
	free(m);
	char *tok = last_token(zed);
	CHECK(tok != NULL);
	if (!tok)
		return;
	char *lower = xstrdup(tok);
	ascii_lower(lower);
	if (strcmp(lower, tok) != 0) {
		char *rcpt = xasprintf("dialogue-confirm+%s@lists.example.org", lower);
		char *subject = xasprintf("Re: confirm %s to join", tok);
		m = mail(zed, subject, "");
		receive(zed, "192.0.2.3", rcpt, "dialogue", "confirm", lower, m);
		free(m);
		free(subject);
		free(rcpt);
		CHECK(member_status(zed, "active"));
	}
	free(lower);
	free(tok);
}

int main(void)
{
	test_token_hash();
	test_commands();

	if (testdb_mkdir(tmpdir, "dlg-subscribe") < 0)
		return 1;
	char *conf = xasprintf("%s/dialogue.conf", tmpdir);
	FILE *f = fopen(conf, "w");
	fputs("[server]\nhostname = lists.example.org\ndatabase = t.db\n"
	      "[list dialogue]\naddress = dialogue@lists.example.org\nsubscribe_policy = confirm\n"
	      "moderators = mod@example.org\n"
	      "[list other]\naddress = other@lists.example.org\n",
	      f);
	fclose(f);
	char err[512];
	cfg = config_load(conf, err, sizeof err);
	if (!cfg)
		fprintf(stderr, "%s\n", err);
	CHECK(cfg != NULL);
	if (cfg) {
		db = xstrdup(cfg->database);
		st = store_open(db, err, sizeof err);
		CHECK(st != NULL);
	}
	if (st) {
		log_set_level(getenv("VERBOSE") ? LOG_LVL_INFO : LOG_LVL_WARN);
		test_flow();
		test_limits();
		test_case_changed();
		store_close(st);
	}
	config_free(cfg);
	testdb_rmdir(tmpdir);
	free(conf);
	free(db);
	return test_result();
}
