/* test_modmail: moderation by mail on a real database — the reason read
 * from a reply, a template mail with attached messages, the sweep that
 * announces held posts (notices batched per list, the poster told once,
 * tokens stored hashed), replies to the approve, reject and withdraw
 * addresses run through archive_process(), expiry, and notices cancelled
 * when a post is decided before they went out. */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"
#include "config.h"
#include "membership.h"
#include "moderation.h"
#include "store.h"
#include "template.h"
#include "testdb.h"
#include "testutil.h"
#include "token.h"
#include "util.h"

#define DOMAIN "lists.example.org"
#define LADDR "dialogue@" DOMAIN
#define MOD "mod@example.org"
#define MOD2 "mod2@example.org"

/* ---- the reason in a reply ---- */

static void reason_is(const char *body, const char *want)
{
	char *got = moderation_reply_reason(body);
	if (strcmp(got, want))
		fprintf(stderr, "reply body:\n%s\n", body ? body : "(null)");
	CHECK_STR(got, want);
	free(got);
}

static void test_reply_reason(void)
{
	reason_is("Off topic.\n", "Off topic.");
	reason_is("\n\n   Off topic here.  \r\n\r\nMore text.\n", "Off topic here.");
	reason_is(NULL, "");
	reason_is("", "");
	reason_is("\n \n\t\n", "");
	/* a reply with nothing of the moderator's own */
	reason_is("On Mon, 30 Nov 2026, Dialogue wrote:\n> Held post 4\n> Reason: x\n", "");
	reason_is("On Mon, 30 Nov 2026 at 07:00, Dialogue on Internet Cooperation Evolution\n"
		  "<dialogue-owner@lists.example.org> wrote:\n\n> Held post 4\n",
		  "");
	/* top-posting: the first line, the attribution and quote skipped */
	reason_is("Spam, sorry.\n\nOn Mon, X wrote:\n> quoted\n", "Spam, sorry.");
	/* bottom-posting: below the quote */
	reason_is("On Mon, X wrote:\n> Held post 4\n>\n> Reason: x\n\nNot for this list.\n",
		  "Not for this list.");
	/* quoted lines of any depth, with or without a space */
	reason_is(">> a\n>b\n> c\nThe reason.\n", "The reason.");
	/* the signature and what follows are not the reason */
	reason_is("-- \nA Moderator\nmod@example.org\n", "");
	reason_is("\n--\nA Moderator\n", "");
	reason_is("Duplicate post.\n-- \nA Moderator\n", "Duplicate post.");
	/* Outlook: the original below a line of dashes or underscores */
	reason_is("-----Original Message-----\nFrom: Dialogue\n", "");
	reason_is("________________________________\nFrom: Dialogue\n", "");
	reason_is("Too long.\r\n\r\n-----Original Message-----\r\nFrom: x\r\n", "Too long.");
	/* a line ending in ':' that is not followed by a quote is text */
	reason_is("Reason:\nsee the list rules\n", "Reason:");
	/* controls are blanks, also the ones that hide a quote */
	reason_is("\x7f\r> quoted\n\x13Real\treason\r\n", "Real reason");
	/* a line starting with dashes that is not a separator */
	reason_is("--- please shorten it\n", "--- please shorten it");
	/* capped at a character boundary */
	char big[1200];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	char *r = moderation_reply_reason(big);
	CHECK_INT(strlen(r), 500);
	free(r);
	char utf[1100] = "";
	for (int i = 0; i < 300; i++)
		strcat(utf, "\xc3\xa4"); /* 2 bytes each: 600 */
	r = moderation_reply_reason(utf);
	CHECK_INT(strlen(r), 500);
	CHECK(((unsigned char)r[499] & 0xc0) != 0xc0); /* not a lead byte cut off */
	free(r);
}

/* ---- a store and a config ---- */

static char tmpdir[256];
static struct config *cfg;
static struct store *st;
static char *db;

static int64_t sql_int(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sql_int(const char *fmt, ...)
{
	char sql[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sql, sizeof sql, fmt, ap);
	va_end(ap);
	return testdb_int(db, sql);
}

static void sql_exec(const char *sql)
{
	testdb_exec(db, sql);
}

static int64_t mails_to(const char *addr)
{
	char *q = sqlite3_mprintf("SELECT count(*) FROM outbound WHERE recipient = %Q"
				  " AND status <> 'cancelled'",
				  addr);
	int64_t n = sql_int("%s", q);
	sqlite3_free(q);
	return n;
}

/* The newest mail to ADDR, or NULL. Caller frees. */
static char *last_mail_to(const char *addr)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	char *v = NULL;
	if (sqlite3_open(db, &h) != SQLITE_OK)
		return NULL;
	if (sqlite3_prepare_v2(h,
			       "SELECT m.body FROM outbound o"
			       " JOIN outbound_msgs m ON m.id = o.msg_id"
			       " WHERE o.recipient = ? ORDER BY o.id DESC LIMIT 1",
			       -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_text(s, 1, addr, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			v = xstrndup((const char *)sqlite3_column_blob(s, 0),
				     (size_t)sqlite3_column_bytes(s, 0));
		sqlite3_finalize(s);
	}
	sqlite3_close(h);
	return v;
}

/* The token after "PREFIX+" in TEXT (the first one past "Held post ID"
 * when ID > 0), or "". */
static void token_of(const char *text, int64_t id, const char *prefix, char out[TOKEN_LEN + 1])
{
	char *needle = xasprintf("%s+", prefix);
	char *post = xasprintf("Held post %lld\r\n", (long long)id);
	const char *p = text && id > 0 ? strstr(text, post) : text;
	p = p ? strstr(p, needle) : NULL;
	free(post);
	out[0] = '\0';
	if (p && strlen(p + strlen(needle)) >= TOKEN_LEN) {
		memcpy(out, p + strlen(needle), TOKEN_LEN);
		out[TOKEN_LEN] = '\0';
	}
	free(needle);
}

static const char *status_of(int64_t id)
{
	static char buf[32];
	struct store_held h;
	if (store_held_get(st, id, &h) != STORE_OK)
		return "(none)";
	snprintf(buf, sizeof buf, "%s", h.status);
	store_held_clear(&h);
	return buf;
}

/* Receive TEXT from MAIL_FROM for RCPT (list LIST, kind KIND, detail
 * DETAIL) and process it. */
static int64_t receive(const char *mail_from, const char *rcpt, const char *list,
		       const char *kind, const char *detail, const char *text, int64_t received)
{
	struct store_rcpt r = {rcpt, list, kind, detail};
	struct store_incoming in = {
		.mail_from = mail_from,
		.helo = "client.example.net",
		.client_ip = "192.0.2.1",
		.rcpts = &r,
		.n_rcpts = 1,
		.data = text,
		.len = strlen(text),
		.received = received ? received : now_epoch(),
	};
	CHECK_INT(store_accept_batch(st, &in, 1), STORE_OK);
	size_t queued;
	int n;
	while ((n = archive_process(st, cfg, NULL, INT64_MAX, 64, &queued)) > 0)
		;
	CHECK(n == 0);
	return in.id;
}

/* A post from FROM to LIST; returns the held id (0 if not held). */
static int64_t post(const char *list, const char *from, const char *subject, const char *extra,
		    int64_t received)
{
	char *text = xasprintf("From: %s\r\nTo: %s@" DOMAIN "\r\nCc: cc@example.org\r\n"
			       "Subject: %s\r\nDate: Mon, 30 Nov 2026 06:42:11 +0000\r\n"
			       "Message-ID: <%d.%d@test>\r\n%s\r\n"
			       "Body line one.\r\nBody line two.\r\n-- \r\nsig\r\n",
			       from, list, subject, rand(), rand(), extra);
	char *rcpt = xasprintf("%s@" DOMAIN, list);
	/* the envelope sender: the address in FROM */
	const char *lt = strchr(from, '<');
	char *sender = lt ? xstrndup(lt + 1, strcspn(lt + 1, ">")) : xstrdup(from);
	int64_t before = sql_int("SELECT coalesce(max(id), 0) FROM held");
	receive(sender, rcpt, list, "post", "", text, received);
	free(sender);
	int64_t after = sql_int("SELECT coalesce(max(id), 0) FROM held");
	free(text);
	free(rcpt);
	return after > before ? after : 0;
}

static size_t announce(int64_t now)
{
	size_t queued = 0;
	CHECK_INT(moderation_announce(st, cfg, NULL, now, &queued), STORE_OK);
	return queued;
}

/* A sweep far enough ahead that every list's next notice is due. */
static size_t announce_all(void)
{
	static int64_t later;
	if (!later)
		later = now_epoch() + 100000;
	later += 10 * MODERATION_NOTICE_INTERVAL;
	return announce(later);
}

/* A reply from FROM (envelope MAIL_FROM) to L-KIND+TOKEN@D with BODY. */
static void reply(const char *mail_from, const char *from, const char *list, const char *kind,
		  const char *token, const char *body)
{
	char *rcpt = xasprintf("%s-%s+%s@" DOMAIN, list, kind, token);
	char *text = xasprintf("From: %s\r\nTo: %s\r\nSubject: Re: Held for moderation\r\n"
			       "Message-ID: <%d.%d@client>\r\n\r\n%s",
			       from, rcpt, rand(), rand(), body);
	receive(mail_from, rcpt, list, kind, token, text, 0);
	free(text);
	free(rcpt);
}

static void add_member(const char *list, const char *addr)
{
	char msg[256];
	struct membership_new m = {.address = addr};
	CHECK_INT(membership_add(st, config_find_list(cfg, list), &m, msg, sizeof msg),
		  MEMBERSHIP_OK);
}

/* ---- template_compose_attached ---- */

static void test_attached(void)
{
	struct templates *t = template_load(NULL, NULL, 0);
	const struct list_cfg *l = config_find_list(cfg, "dialogue");
	CHECK(t != NULL && l != NULL);
	if (!t || !l)
		return;
	/* bare LF, bare CR and CRLF; an 8-bit byte in the second */
	static const char m1[] = "From: a@example.org\nSubject: one\n\nline\rline\r\nend";
	static const char m2[] = "From: b@example.org\r\nSubject: two\r\n\r\nGr\xc3\xbc\xc3\x9f"
				 "e\r\n";
	struct template_attachment att[] = {
		{m1, sizeof m1 - 1, "held post 1"},
		{m2, sizeof m2 - 1, NULL},
	};
	const struct template_var vars[] = {{"posts", "Held post 1"}, {"count", "2"}};
	size_t len = 0;
	char *raw = template_compose_attached(t, cfg, l, "moderator-notice", vars, 2, MOD, NULL,
					      NULL, att, 2, &len);
	CHECK(raw != NULL);
	if (raw) {
		CHECK(strstr(raw, "Content-Type: multipart/mixed;\r\n boundary=\"=_dlg_") != NULL);
		const char *b = strstr(raw, "boundary=\"") + 10;
		char boundary[64];
		snprintf(boundary, sizeof boundary, "--%.*s", (int)strcspn(b, "\""), b);
		int parts = 0;
		for (const char *p = raw; (p = strstr(p, boundary)); p += strlen(boundary))
			parts++;
		CHECK_INT(parts, 4); /* text, two messages, the close */
		CHECK(strstr(raw, "\r\nContent-Transfer-Encoding: 8bit\r\nAuto-Submitted:") !=
		      NULL);
		CHECK(strstr(raw, "Content-Type: message/rfc822\r\nContent-Description: held post 1"
				  "\r\nContent-Disposition: inline\r\n\r\nFrom: a@example.org\r\n"
				  "Subject: one\r\n\r\nline\r\nline\r\nend\r\n") != NULL);
		CHECK(strstr(raw, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit"
				  "\r\nContent-Disposition: inline\r\n\r\n"
				  "From: b@example.org\r\n") != NULL);
		/* every line ends in CRLF */
		for (size_t i = 0; i < len; i++)
			if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r')) {
				CHECK(0);
				break;
			}
		CHECK(len >= 4 && !memcmp(raw + len - 4, "--\r\n", 4));
		struct msg_info mi;
		msg_parse(raw, len, DOMAIN, &mi);
		CHECK(strstr(mi.body_text, "Held post 1") != NULL);
		msg_info_free(&mi);
	}
	free(raw);
	/* 7-bit attachments: no 8bit anywhere */
	raw = template_compose_attached(t, cfg, l, "moderator-notice", vars, 2, MOD, NULL, NULL,
					att, 1, &len);
	CHECK(raw && !strstr(raw, "8bit"));
	free(raw);
	/* none: the plain mail */
	raw = template_compose_attached(t, cfg, l, "post-held", NULL, 0, MOD, NULL, NULL, NULL, 0,
					&len);
	CHECK(raw && strstr(raw, "Content-Type: text/plain; charset=utf-8\r\n"));
	free(raw);
	struct template_attachment bad = {NULL, 3, NULL};
	CHECK(template_compose_attached(t, cfg, l, "post-held", NULL, 0, MOD, NULL, NULL, &bad, 1,
					&len) == NULL);
	template_free(t);
}

/* ---- the sweep ---- */

static void test_announce(void)
{
	int64_t now = now_epoch();
	add_member("dialogue", "m1@example.org");
	CHECK_INT(announce(now), 0); /* nothing held: nothing to do */

	int64_t id = post("dialogue", "Pat <pat@example.net>", "first question", "", now);
	CHECK(id > 0);
	/* The poster at once; the moderators once the post has settled. */
	CHECK_INT(announce(now), 1);
	CHECK_INT(mails_to("pat@example.net"), 1);
	CHECK_INT(mails_to(MOD), 0);
	char *m = last_mail_to("pat@example.net");
	CHECK(m && strstr(m, "awaits moderation") && strstr(m, "first question") &&
	      strstr(m, "post from a non-member") && strstr(m, "dialogue-withdraw+"));
	free(m);
	CHECK_INT(sql_int("SELECT poster_told > 0 AND notified = 0 FROM held WHERE id = %lld",
			  (long long)id),
		  1);
	CHECK_INT(sql_int("SELECT count(*) FROM sub_tokens WHERE action = 'withdraw'"
			  " AND held_id = %lld",
			  (long long)id),
		  1);
	CHECK_INT(announce(now + MODERATION_NOTICE_SETTLE), 2);
	CHECK_INT(mails_to(MOD), 1);
	CHECK_INT(mails_to(MOD2), 1);
	CHECK_INT(mails_to("pat@example.net"), 1); /* told once */
	m = last_mail_to(MOD2);
	CHECK(m && strstr(m, "To: " MOD2 "\r\n") && strstr(m, "multipart/mixed") &&
	      strstr(m, "message/rfc822") && strstr(m, "Body line two.") &&
	      strstr(m, "cc@example.org") && strstr(m, "post from a non-member") &&
	      !strstr(m, "      sig"));
	char approve[TOKEN_LEN + 1], reject[TOKEN_LEN + 1];
	token_of(m, id, "dialogue-approve", approve);
	token_of(m, id, "dialogue-reject", reject);
	free(m);
	CHECK(token_syntax_ok(approve) && token_syntax_ok(reject));
	/* stored hashed, bound to the post and the action */
	char hash[TOKEN_HASH_LEN + 1];
	token_hash(approve, hash);
	CHECK_INT(sql_int("SELECT count(*) FROM sub_tokens WHERE hash = '%s' AND action = 'approve'"
			  " AND held_id = %lld AND list = 'dialogue'",
			  hash, (long long)id),
		  1);
	CHECK_INT(sql_int("SELECT count(*) FROM sub_tokens WHERE hash = '%s'", approve), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM held_mails WHERE held_id = %lld", (long long)id),
		  3);
	CHECK_INT(announce(now + 10), 0); /* done: nothing again */

	/* Three more within the minute: they wait, then share one notice. */
	int64_t ids[3];
	for (int i = 0; i < 3; i++) {
		char subject[32];
		snprintf(subject, sizeof subject, "batch %d", i);
		ids[i] = post("dialogue", "Pat <pat@example.net>", subject, "", now + 20);
		CHECK(ids[i] > 0);
	}
	CHECK_INT(announce(now + 30), 3); /* three posters' mails */
	CHECK_INT(mails_to(MOD), 1);
	CHECK_INT(announce(now + 3 + MODERATION_NOTICE_INTERVAL - 1), 0);
	CHECK_INT(announce(now + 3 + MODERATION_NOTICE_INTERVAL), 2);
	CHECK_INT(mails_to(MOD), 2);
	m = last_mail_to(MOD);
	CHECK(m && strstr(m, "3 posts to Dialogue") && strstr(m, "batch 0") &&
	      strstr(m, "batch 2"));
	int n_att = 0;
	for (const char *p = m; p && (p = strstr(p, "message/rfc822")); p++)
		n_att++;
	CHECK_INT(n_att, 3);
	free(m);

	/* The null sender and automatic mail are held, never told. */
	int64_t before = mails_to("bot@example.net");
	int64_t id2 = post("dialogue", "bot@example.net", "bulk", "Precedence: bulk\r\n",
			   now + 100);
	CHECK(id2 > 0);
	announce(now + 100);
	CHECK_INT(mails_to("bot@example.net"), before);
	CHECK_INT(sql_int("SELECT poster_told > 0 FROM held WHERE id = %lld", (long long)id2), 1);
	/* the auto-reply allowance counts post-held mails */
	CHECK_INT(sql_int("SELECT sum(count) FROM rate_limits WHERE kind = 'auto-reply'"
			  " AND key = 'pat@example.net'"),
		  4);

	/* A list with no moderators: marked, nothing sent. */
	int64_t id3 = post("quiet", "x@example.net", "nobody reads", "", now);
	CHECK(id3 > 0);
	announce(now + 100);
	CHECK_INT(sql_int("SELECT notified > 0 FROM held WHERE id = %lld", (long long)id3), 1);
	announce_all(); /* the bulk post's notice: nothing left over */
	CHECK_INT(sql_int("SELECT count(*) FROM held WHERE notified = 0 OR poster_told = 0"), 0);
}

/* ---- replies ---- */

/* The reply addresses' tokens of post ID in the latest notice. */
static void notice_tokens(int64_t id, char approve[TOKEN_LEN + 1], char reject[TOKEN_LEN + 1])
{
	char *m = last_mail_to(MOD);
	token_of(m, id, "dialogue-approve", approve);
	token_of(m, id, "dialogue-reject", reject);
	free(m);
	CHECK(token_syntax_ok(approve) && token_syntax_ok(reject));
}

static void test_replies(void)
{
	int64_t now = now_epoch();
	char approve[TOKEN_LEN + 1], reject[TOKEN_LEN + 1];
	char msg[512];

	/* approve, from a moderator */
	int64_t id = post("dialogue", "ann@example.net", "approve me", "", now - 200);
	announce_all();
	notice_tokens(id, approve, reject);
	int64_t copies = mails_to("m1@example.org");
	/* a stranger first: refused, not spent */
	reply("stranger@example.net", "stranger@example.net", "dialogue", "approve", approve,
	      "ok\r\n");
	CHECK_STR(status_of(id), "held");
	CHECK_INT(mails_to("stranger@example.net"), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM envelope_rcpts WHERE state = 'new'"), 0);
	/* a moderator by From, another envelope sender */
	reply("bounce@relay.example", "The Mod <" MOD ">", "dialogue", "approve", approve,
	      "ok\r\n");
	CHECK_STR(status_of(id), "approved");
	CHECK_INT(mails_to("m1@example.org"), copies + 1);
	CHECK_INT(sql_int("SELECT decided_by = '" MOD "' FROM held WHERE id = %lld",
			  (long long)id),
		  1);
	/* again: spent, the moderator told */
	int64_t told = mails_to(MOD);
	reply(MOD, MOD, "dialogue", "approve", approve, "ok\r\n");
	CHECK_INT(mails_to(MOD), told + 1);
	char *m = last_mail_to(MOD);
	CHECK(m && strstr(m, "did not work") && strstr(m, "used already"));
	free(m);
	/* the reject address of a decided post: already approved */
	reply(MOD2, MOD2, "dialogue", "reject", reject, "no\r\n");
	m = last_mail_to(MOD2);
	CHECK(m && strstr(m, "already approved"));
	free(m);
	CHECK_INT(mails_to("m1@example.org"), copies + 1);

	/* reject by the envelope sender, with a reason below the quote */
	id = post("dialogue", "Bo <bo@example.net>", "reject me", "", now - 200);
	announce_all();
	notice_tokens(id, approve, reject);
	reply(MOD2, "Someone Else <else@example.net>", "dialogue", "reject", reject,
	      "On Monday, Dialogue wrote:\r\n> Held post\r\n\r\nNot for this list.\r\n"
	      "-- \r\nMod Two\r\n");
	CHECK_STR(status_of(id), "rejected");
	CHECK_INT(sql_int("SELECT decision_reason = 'Not for this list.' FROM held WHERE id = %lld",
			  (long long)id),
		  1);
	m = last_mail_to("bo@example.net");
	CHECK(m && strstr(m, "not accepted") && strstr(m, "Not for this list.") &&
	      !strstr(m, "Mod Two"));
	free(m);

	/* forged and wrong-action tokens: answered, nothing decided */
	id = post("dialogue", "cy@example.net", "forge me", "", now - 200);
	announce_all();
	notice_tokens(id, approve, reject);
	told = mails_to(MOD);
	char forged[TOKEN_LEN + 1];
	memcpy(forged, approve, sizeof forged);
	forged[0] = forged[0] == 'A' ? 'B' : 'A';
	reply(MOD, MOD, "dialogue", "approve", forged, "ok\r\n");
	reply(MOD, MOD, "dialogue", "approve", "not-a-token", "ok\r\n");
	reply(MOD, MOD, "dialogue", "approve", reject, "ok\r\n"); /* reject token, approve */
	reply(MOD, MOD, "quiet", "approve", approve, "ok\r\n");     /* another list */
	CHECK_STR(status_of(id), "held");
	/* "quiet" has no moderators: MOD is nobody there, so not answered */
	CHECK_INT(mails_to(MOD), told + 3);
	/* automatic mail decides nothing and is never answered, even with
	 * a good token from a moderator's address */
	reply(MOD, MOD, "dialogue", "approve", forged, "ok\r\n");
	CHECK_INT(mails_to(MOD), told + 4);
	char *auto_text = xasprintf("From: %s\r\nTo: x\r\nAuto-Submitted: auto-replied\r\n"
				    "Subject: Out of office\r\n\r\naway\r\n",
				    MOD);
	const char *toks[] = {forged, approve};
	for (int i = 0; i < 2; i++) {
		char *rcpt = xasprintf("dialogue-approve+%s@" DOMAIN, toks[i]);
		receive(MOD, rcpt, "dialogue", "approve", toks[i], auto_text, 0);
		free(rcpt);
	}
	free(auto_text);
	CHECK_INT(mails_to(MOD), told + 4);
	CHECK_STR(status_of(id), "held");
	char *rcpt;
	/* a confirmation address with a moderation token: unknown there */
	char *conf_text = xasprintf("From: %s\r\nSubject: Re: x\r\n\r\nyes\r\n", MOD);
	rcpt = xasprintf("dialogue-confirm+%s@" DOMAIN, approve);
	receive(MOD, rcpt, "dialogue", "confirm", approve, conf_text, 0);
	free(rcpt);
	free(conf_text);
	CHECK_STR(status_of(id), "held");
	CHECK_INT(sql_int("SELECT count(*) FROM members WHERE address = 'cy@example.net'"), 0);
	/* the real one still works: it was never spent */
	reply(MOD, MOD, "dialogue", "approve", approve, "ok\r\n");
	CHECK_STR(status_of(id), "approved");

	/* withdraw: the token is the proof, from any sender */
	id = post("dialogue", "di@example.net", "withdraw me", "", now - 200);
	announce_all();
	m = last_mail_to("di@example.net");
	char withdraw[TOKEN_LEN + 1];
	token_of(m, 0, "dialogue-withdraw", withdraw);
	free(m);
	CHECK(token_syntax_ok(withdraw));
	reply("other@example.net", "other@example.net", "dialogue", "withdraw", withdraw,
	      "please\r\n");
	CHECK_STR(status_of(id), "withdrawn");
	m = last_mail_to("di@example.net");
	CHECK(m && strstr(m, "has been withdrawn") && strstr(m, "withdraw me"));
	free(m);
	CHECK_INT(mails_to("other@example.net"), 0);
	reply("other@example.net", "other@example.net", "dialogue", "withdraw", withdraw,
	      "again\r\n");
	CHECK_INT(mails_to("other@example.net"), 1); /* spent: told */
	CHECK_INT(sql_int("SELECT count(*) FROM envelope_rcpts WHERE state = 'new'"), 0);

	/* A decision before the notice went out cancels it; a notice listing
	 * another post still waiting stays. */
	int64_t a = post("dialogue", "ea@example.net", "cancel a", "", now);
	int64_t b = post("dialogue", "eb@example.net", "cancel b", "", now);
	announce_all();
	int64_t cancelled = sql_int("SELECT count(*) FROM outbound WHERE status = 'cancelled'");
	CHECK_INT(sql_int("SELECT count(*) FROM outbound o JOIN held_mails h ON h.msg_id = o.msg_id"
			  " WHERE h.held_id = %lld AND o.recipient = '" MOD "'",
			  (long long)a),
		  1);
	struct moderation_request r = {.held_id = a, .action = MODERATION_DISCARD, .by = "test"};
	CHECK_INT(moderation_decide(st, cfg, NULL, &r, msg, sizeof msg), MODERATION_DONE);
	CHECK_INT(sql_int("SELECT count(*) FROM outbound WHERE status = 'cancelled'"),
		  cancelled + 1);
	CHECK(strstr(msg, "1 unsent notice cancelled") != NULL); /* the poster's */
	r.held_id = b;
	r.action = MODERATION_APPROVE;
	CHECK_INT(moderation_decide(st, cfg, NULL, &r, msg, sizeof msg), MODERATION_DONE);
	CHECK_INT(sql_int("SELECT count(*) FROM outbound WHERE status = 'cancelled'"),
		  cancelled + 4);
	long q = 0;
	CHECK_INT(store_queue_counts(st, "dialogue", &q, NULL, NULL), STORE_OK);
	struct store_queue_entry *e = NULL;
	size_t n = 0;
	CHECK_INT(store_queue_list(st, NULL, 0, 0, &e, &n), STORE_OK);
	for (size_t i = 0; i < n; i++)
		CHECK(strcmp(e[i].status, "cancelled") != 0);
	store_queue_entries_free(e, n);
}

/* ---- expiry ---- */

static void report(void *arg, int64_t id, enum moderation_result res, const char *msg)
{
	int *count = arg;
	(*count)++;
	CHECK_INT(res, MODERATION_DONE);
	CHECK(strstr(msg, "expired") != NULL);
}

static void test_expiry(void)
{
	int64_t now = now_epoch();
	int64_t old = post("dialogue", "old@example.net", "old one", "", now - 15 * 86400);
	int64_t fresh = post("dialogue", "new@example.net", "fresh one", "", now);
	int64_t forever = post("quiet", "q@example.net", "kept", "", now - 400 * 86400);
	CHECK(old > 0 && fresh > 0 && forever > 0);
	int count = 0;
	size_t n = 0;
	CHECK_INT(moderation_expire_due(st, cfg, NULL, NULL, now, 0, &n, report, &count),
		  STORE_OK);
	CHECK_INT(n, (size_t)1);
	CHECK_INT(count, 1);
	CHECK_STR(status_of(old), "expired");
	CHECK_STR(status_of(fresh), "held");
	CHECK_STR(status_of(forever), "held"); /* hold_expire = 0 */
	char *m = last_mail_to("old@example.net");
	CHECK(m && strstr(m, "has expired") && strstr(m, "14 days"));
	free(m);
	CHECK_INT(moderation_expire_due(st, cfg, NULL, NULL, now, 0, &n, NULL, NULL), STORE_OK);
	CHECK_INT(n, (size_t)0);
	/* MAX bounds one run */
	post("dialogue", "o1@example.net", "o1", "", now - 20 * 86400);
	post("dialogue", "o2@example.net", "o2", "", now - 20 * 86400);
	CHECK_INT(moderation_expire_due(st, cfg, NULL, NULL, now, 1, &n, NULL, NULL), STORE_OK);
	CHECK_INT(n, (size_t)1);
	CHECK_INT(moderation_expire_due(st, cfg, NULL, config_find_list(cfg, "quiet"), now, 0, &n,
					NULL, NULL),
		  STORE_OK);
	CHECK_INT(n, (size_t)0);
	CHECK_INT(moderation_expire_due(st, cfg, NULL, NULL, now, 0, &n, NULL, NULL), STORE_OK);
	CHECK_INT(n, (size_t)1);
	/* an expired post is not announced any more */
	sql_exec("UPDATE held SET notified = 0, poster_told = 0 WHERE status = 'expired'");
	int64_t before = mails_to(MOD);
	announce_all();
	CHECK_INT(mails_to(MOD), before + 1); /* only "fresh" */
	m = last_mail_to(MOD);
	CHECK(m && strstr(m, "fresh one") && !strstr(m, "old one"));
	free(m);
}

/* More posts than one notice holds: the rest wait for the next, and
 * only the tokens of the posts shown are kept. */
static void test_many(void)
{
	enum { N = 30 };
	announce_all();
	int64_t first = 0;
	struct sbuf body = {0};
	for (int i = 0; i < 20; i++)
		sbuf_printf(&body, "Line %d of a long post, with enough words to fill a line.\r\n",
			    i);
	for (int i = 0; i < N; i++) {
		char *text = xasprintf("From: many%d@example.net\r\nTo: " LADDR "\r\n"
				       "Subject: many %d\r\n\r\n%s",
				       i, i, body.buf);
		char *from = xasprintf("many%d@example.net", i);
		receive(from, LADDR, "dialogue", "post", "", text, 0);
		free(from);
		free(text);
	}
	sbuf_free(&body);
	first = sql_int("SELECT min(id) FROM held WHERE subject = 'many 0'");
	int64_t notices = mails_to(MOD);
	announce_all();
	CHECK_INT(mails_to(MOD), notices + 1);
	char *m = last_mail_to(MOD);
	int shown = 0;
	for (const char *p = m; p && (p = strstr(p, "\r\nHeld post ")); p++)
		shown++;
	CHECK(shown > 1 && shown < N);
	CHECK(m && strstr(m, "Held post ") && strstr(m, "many 0"));
	free(m);
	CHECK_INT(sql_int("SELECT count(*) FROM sub_tokens WHERE action = 'approve'"
			  " AND held_id >= %lld",
			  (long long)first),
		  shown);
	CHECK_INT(sql_int("SELECT count(*) FROM held WHERE id >= %lld AND notified > 0",
			  (long long)first),
		  shown);
	int rounds = 1;
	while (sql_int("SELECT count(*) FROM held WHERE id >= %lld AND notified = 0",
		       (long long)first) > 0 &&
	       rounds < N) {
		announce_all();
		rounds++;
	}
	CHECK(rounds > 1 && rounds < N);
	CHECK_INT(sql_int("SELECT count(*) FROM sub_tokens WHERE action = 'approve'"
			  " AND held_id >= %lld",
			  (long long)first),
		  N);
}

int main(void)
{
	test_reply_reason();

	if (testdb_mkdir(tmpdir, "dlg-modmail") < 0)
		return 1;
	char *conf = xasprintf("%s/dialogue.conf", tmpdir);
	FILE *f = fopen(conf, "w");
	fputs("[server]\nhostname = " DOMAIN "\ndatabase = t.db\n"
	      "[list dialogue]\naddress = " LADDR "\ntitle = Dialogue\n"
	      "post_policy = members\nnonmember_action = hold\nsubject_prefix = [Dialogue]\n"
	      "moderators = " MOD ", " MOD2 "\n"
	      "[list quiet]\naddress = quiet@" DOMAIN "\npost_policy = members\n"
	      "nonmember_action = hold\nhold_expire = 0\n",
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
		test_attached();
		test_announce();
		test_replies();
		test_expiry();
		test_many();
		store_close(st);
	}
	config_free(cfg);
	testdb_rmdir(tmpdir);
	free(conf);
	free(db);
	return test_result();
}
