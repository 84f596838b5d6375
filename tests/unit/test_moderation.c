/* test_moderation: the hold rules of moderation (policy table rows, the
 * administrative-command test, the To/Cc facts read from a header) and
 * moderation_decide() on a real database: posts held through
 * archive_process(), then approved, rejected, discarded, withdrawn and
 * expired, each decided once. */
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
#include "policy.h"
#include "rewrite.h"
#include "store.h"
#include "testdb.h"
#include "testutil.h"
#include "util.h"

#define DOMAIN "lists.example.org"
#define LADDR "dialogue@" DOMAIN

/* ---- policy rows for the hold rules ---- */

enum { MEM = 1, MODD = 2, MODR = 4, ADMIN = 8, IMPLICIT = 16, FROMLIST = 32 };

struct row {
	int line;
	enum post_policy post;
	enum nonmember_action nm;
	int facts;
	long n_rcpts;
	size_t size;
	long max_rcpts;
	int64_t max_size;
	enum policy_action want;
	const char *reason; /* NULL: any */
};

#define R __LINE__
static const char R_ADMIN[] =
	"administrative request (subscribe, unsubscribe ...) sent to the list";
static const char R_IMPLICIT[] = "implicit destination: the list's address is not in To or Cc";
static const char R_RCPTS[] = "too many recipients in To and Cc";
static const char R_SIZE[] = "message is larger than the list's max_post_size";
static const char R_FROMLIST[] = "From: claims to be the list's own address";
static const char R_NM_HOLD[] = "post from a non-member";
static const char R_MEMBER_MOD[] = "member is moderated";

static const struct row rows[] = {
	/* each rule holds a member's post that would otherwise go out */
	{R, POST_MEMBERS, NM_HOLD, MEM | ADMIN, 1, 100, 0, 0, POLICY_HOLD, R_ADMIN},
	{R, POST_MEMBERS, NM_HOLD, MEM | IMPLICIT, 1, 100, 0, 0, POLICY_HOLD, R_IMPLICIT},
	{R, POST_MEMBERS, NM_HOLD, MEM, 11, 100, 10, 0, POLICY_HOLD, R_RCPTS},
	{R, POST_MEMBERS, NM_HOLD, MEM, 10, 100, 10, 0, POLICY_DISTRIBUTE, NULL},
	{R, POST_MEMBERS, NM_HOLD, MEM, 500, 100, 0, 0, POLICY_DISTRIBUTE, NULL},
	{R, POST_MEMBERS, NM_HOLD, MEM, 1, 1025, 0, 1024, POLICY_HOLD, R_SIZE},
	{R, POST_MEMBERS, NM_HOLD, MEM, 1, 1024, 0, 1024, POLICY_DISTRIBUTE, NULL},
	{R, POST_MEMBERS, NM_HOLD, MEM, 1, 1 << 30, 0, 0, POLICY_DISTRIBUTE, NULL},
	{R, POST_MEMBERS, NM_HOLD, MEM | FROMLIST, 1, 100, 0, 0, POLICY_HOLD, R_FROMLIST},
	/* the order among them: command, Bcc, recipients, size */
	{R, POST_OPEN, NM_ACCEPT, ADMIN | IMPLICIT, 99, 9999, 5, 10, POLICY_HOLD, R_ADMIN},
	{R, POST_OPEN, NM_ACCEPT, IMPLICIT, 99, 9999, 5, 10, POLICY_HOLD, R_IMPLICIT},
	{R, POST_OPEN, NM_ACCEPT, 0, 99, 9999, 5, 10, POLICY_HOLD, R_RCPTS},
	{R, POST_OPEN, NM_ACCEPT, 0, 1, 9999, 5, 10, POLICY_HOLD, R_SIZE},
	/* a non-member accepted is checked too */
	{R, POST_MEMBERS, NM_ACCEPT, ADMIN, 1, 100, 0, 0, POLICY_HOLD, R_ADMIN},
	/* who-may-post comes first: refusals stay refusals, holds keep their reason */
	{R, POST_MEMBERS, NM_REJECT, ADMIN | IMPLICIT, 1, 100, 0, 0, POLICY_REJECT, NULL},
	{R, POST_MEMBERS, NM_DISCARD, IMPLICIT, 1, 100, 0, 0, POLICY_DISCARD, NULL},
	{R, POST_MEMBERS, NM_HOLD, ADMIN, 1, 100, 0, 0, POLICY_HOLD, R_NM_HOLD},
	{R, POST_MEMBERS, NM_HOLD, MEM | MODD | IMPLICIT, 1, 100, 0, 0, POLICY_HOLD, R_MEMBER_MOD},
	/* moderators pass the content holds (an announcement by Bcc) ... */
	{R, POST_ANNOUNCE, NM_REJECT, MODR | IMPLICIT | ADMIN, 99, 9999, 5, 10, POLICY_DISTRIBUTE,
	 NULL},
	/* ... but a From claiming to be the list is held even then, and even
	 * on a list that refuses non-members */
	{R, POST_MEMBERS, NM_REJECT, MODR | FROMLIST, 1, 100, 0, 0, POLICY_HOLD, R_FROMLIST},
	{R, POST_MEMBERS, NM_REJECT, FROMLIST, 1, 100, 0, 0, POLICY_HOLD, R_FROMLIST},
};

static void test_policy_rows(void)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		struct list_cfg l = {0};
		struct post_facts f = {0};
		struct policy_decision d = {POLICY_DISTRIBUTE, NULL, -1};
		l.post_policy = r->post;
		l.nonmember_action = r->nm;
		l.max_post_recipients = r->max_rcpts;
		l.max_post_size = r->max_size;
		f.envelope_from = "a@example.org";
		f.from_addr = "a@example.org";
		f.sender_is_member = !!(r->facts & MEM);
		f.sender_is_moderated = !!(r->facts & MODD);
		f.sender_is_moderator = !!(r->facts & MODR);
		f.admin_command = !!(r->facts & ADMIN);
		f.implicit_destination = !!(r->facts & IMPLICIT);
		f.from_is_list = !!(r->facts & FROMLIST);
		f.n_recipients = r->n_rcpts;
		f.size = r->size;
		policy_decide(&l, &f, &d);
		test_checks++;
		if (d.action != r->want || !d.reason ||
		    (r->reason && strcmp(d.reason, r->reason))) {
			fprintf(stderr, "%s:%d: FAIL: got %s \"%s\", want %s \"%s\"\n", __FILE__,
				r->line, policy_action_name(d.action),
				d.reason ? d.reason : "(null)", policy_action_name(r->want),
				r->reason ? r->reason : "*");
			test_failures++;
		}
	}
}

/* ---- administrative commands ---- */

static void test_admin_commands(void)
{
	static const char *const subj_yes[] = {
		"unsubscribe", "  Unsubscribe  ", "UNSUBSCRIBE.", "subscribe", "join", "leave",
		"remove", "help", "unsubscribe me", "unsubscribe a@example.org",
		"remove <a@example.org>", "subscribe digest", "set digest on", "set delivery off",
		"[Dialogue] unsubscribe", "[Dialogue][x] leave!", "signoff", NULL};
	static const char *const subj_no[] = {
		"", "Re: unsubscribe", "Unsubscribe links in list mail", "help me understand this",
		"Please unsubscribe me", "join us at the meeting", "set", "set the agenda",
		"leave of absence", "helpful links", "subscribe me now please", "[Dialogue]",
		"Leave it be", "unsubscribe\r\nBcc: x", NULL};
	for (size_t i = 0; subj_yes[i]; i++)
		if (!policy_admin_command(subj_yes[i], 1)) {
			fprintf(stderr, "FAIL: subject \"%s\" is a command\n", subj_yes[i]);
			test_failures++;
		}
	for (size_t i = 0; subj_no[i]; i++)
		if (policy_admin_command(subj_no[i], 1)) {
			fprintf(stderr, "FAIL: subject \"%s\" is no command\n", subj_no[i]);
			test_failures++;
		}
	test_checks += 2;

	static const char *const body_yes[] = {
		"unsubscribe\n",
		"\n\n  unsubscribe  \r\n\r\n",
		"unsubscribe\n-- \nAlice\nPhone 123\n",
		"unsubscribe\n\nOn Monday, Bob wrote:\n> a post\n> more\n",
		"> quoted\nremove me\n", "help", NULL};
	static const char *const body_no[] = {
		"", "\n\n", "unsubscribe\nplease, I get too much mail\n",
		"I would like to unsubscribe.\n", "Hello.\n\nunsubscribe\n",
		"help\nI cannot find the archive\n", "-- \nunsubscribe\n", "> unsubscribe\n", NULL};
	for (size_t i = 0; body_yes[i]; i++)
		if (!policy_admin_command(body_yes[i], 0)) {
			fprintf(stderr, "FAIL: body \"%s\" is a command\n", body_yes[i]);
			test_failures++;
		}
	for (size_t i = 0; body_no[i]; i++)
		if (policy_admin_command(body_no[i], 0)) {
			fprintf(stderr, "FAIL: body \"%s\" is no command\n", body_no[i]);
			test_failures++;
		}
	test_checks += 2;
	CHECK(!policy_admin_command(NULL, 0));
	CHECK(!policy_admin_command(NULL, 1));
}

/* ---- header facts ---- */

static void facts(const char *hdr, struct post_facts *f)
{
	struct list_cfg l = {0};
	l.name = "dialogue";
	l.local = "dialogue";
	l.domain = DOMAIN;
	l.address = LADDR;
	char *raw = xasprintf("%s\r\nbody\r\n", hdr);
	char *from = NULL;
	memset(f, 0, sizeof *f);
	rewrite_facts(raw, strlen(raw), &l, f, &from);
	free(from);
	free(raw);
}

static void test_header_facts(void)
{
	struct post_facts f;

	facts("From: a@example.org\r\nTo: " LADDR "\r\n", &f);
	CHECK_INT(f.n_recipients, 1);
	CHECK_INT(f.implicit_destination, 0);
	CHECK_INT(f.from_is_list, 0);

	facts("From: a@example.org\r\nTo: b@example.org\r\n", &f);
	CHECK_INT(f.implicit_destination, 1);
	facts("From: a@example.org\r\n", &f);
	CHECK_INT(f.implicit_destination, 1);
	CHECK_INT(f.n_recipients, 0);
	facts("From: a@example.org\r\nTo: undisclosed-recipients:;\r\n", &f);
	CHECK_INT(f.implicit_destination, 1);
	CHECK_INT(f.n_recipients, 0);
	/* the list in Cc, in other case, with a display name; an L-*@D counts */
	facts("From: a@example.org\r\nTo: b@example.org\r\n"
	      "Cc: \"The List\" <DIALOGUE@Lists.Example.Org>\r\n",
	      &f);
	CHECK_INT(f.implicit_destination, 0);
	CHECK_INT(f.n_recipients, 2);
	facts("From: a@example.org\r\nTo: dialogue-request@" DOMAIN "\r\n", &f);
	CHECK_INT(f.implicit_destination, 0);
	/* other lists and look-alikes do not */
	facts("From: a@example.org\r\nTo: dialogues@" DOMAIN ", dialogue@example.org\r\n", &f);
	CHECK_INT(f.implicit_destination, 1);
	CHECK_INT(f.n_recipients, 2);
	/* commas in quotes and comments, groups, folding, several fields */
	facts("From: a@example.org\r\n"
	      "To: \"Doe, Jane\" <j@example.org>, (a, comment) k@example.org,\r\n"
	      "  team: x@example.org, y@example.org;, " LADDR "\r\n"
	      "Cc: z@example.org\r\nCc: w@example.org\r\n",
	      &f);
	CHECK_INT(f.n_recipients, 7);
	CHECK_INT(f.implicit_destination, 0);
	/* Bcc is not read */
	facts("From: a@example.org\r\nTo: b@example.org\r\nBcc: " LADDR "\r\n", &f);
	CHECK_INT(f.implicit_destination, 1);
	CHECK_INT(f.n_recipients, 1);
	/* From the list, or one of its addresses */
	facts("From: The List <" LADDR ">\r\nTo: " LADDR "\r\n", &f);
	CHECK_INT(f.from_is_list, 1);
	facts("From: dialogue-owner@" DOMAIN "\r\nTo: " LADDR "\r\n", &f);
	CHECK_INT(f.from_is_list, 1);
	facts("From: dialogue@example.org\r\nTo: " LADDR "\r\n", &f);
	CHECK_INT(f.from_is_list, 0);
	/* hostile values: unbalanced, nested, empty */
	facts("From: a@example.org\r\nTo: ((((((((((\"<<<,,,@@@\r\n", &f);
	CHECK(f.n_recipients >= 0);
	facts("From: a@example.org\r\nTo: <" LADDR ">>>,,,;;;:::\r\n", &f);
	CHECK_INT(f.implicit_destination, 0);
	CHECK_INT(f.n_recipients, 1);
	facts("From: a@example.org\r\nTo: <@relay.example:" LADDR ">\r\n", &f);
	CHECK_INT(f.implicit_destination, 0);
}

/* ---- moderation_decide on a real store ---- */

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

/* The newest outbound message to ADDR, or NULL. Caller frees. */
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

static int64_t mails_to(const char *addr)
{
	char *q = sqlite3_mprintf("SELECT count(*) FROM outbound WHERE recipient = %Q", addr);
	int64_t n = sql_int("%s", q);
	sqlite3_free(q);
	return n;
}

static int64_t last_held(void)
{
	return sql_int("SELECT max(id) FROM held");
}

/* Receive a post to LIST and process it; returns the held id (0 if not held). */
static int64_t post(const char *list, const char *mail_from, const char *from, const char *to,
		    const char *subject, const char *extra, int poison)
{
	char *text = xasprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%d.%d@test>\r\n"
			       "%s\r\nHello, a real post.\r\n",
			       from, to, subject, rand(), rand(), extra);
	char *rcpt = xasprintf("%s@" DOMAIN, list);
	struct store_rcpt r = {rcpt, list, "post", ""};
	struct store_incoming in = {
		.mail_from = mail_from,
		.helo = "client.example.net",
		.client_ip = "192.0.2.1",
		.rcpts = &r,
		.n_rcpts = 1,
		.data = text,
		.len = strlen(text),
		.received = now_epoch(),
	};
	int64_t before = last_held();
	CHECK_INT(store_accept_batch(st, &in, 1), STORE_OK);
	if (poison)
		CHECK_INT(store_bump_attempts(st, &in.id, 1), STORE_OK);
	size_t queued;
	int n;
	while ((n = archive_process(st, cfg, NULL, INT64_MAX, 64, &queued)) > 0)
		;
	CHECK(n == 0);
	free(text);
	free(rcpt);
	int64_t after = last_held();
	return after > before ? after : 0;
}

static enum moderation_result decide(int64_t id, enum moderation_action a, const char *reason,
				     int member_too, char *msg, size_t msglen)
{
	struct moderation_request r = {id, a, reason, member_too, "test"};
	return moderation_decide(st, cfg, NULL, &r, msg, msglen);
}

static void add_member(const char *list, const char *addr)
{
	char msg[256];
	struct membership_new m = {.address = addr, .stakeholder = NULL};
	int rc = membership_add(st, config_find_list(cfg, list), &m, msg, sizeof msg);
	if (rc != MEMBERSHIP_OK)
		fprintf(stderr, "add %s: %s\n", addr, msg);
	CHECK_INT(rc, MEMBERSHIP_OK);
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

static void test_decisions(void)
{
	char msg[512];
	const char *outsider = "outsider@example.net";

	add_member("dialogue", "m1@example.org");
	add_member("dialogue", "m2@example.org");
	add_member("dialogue", "m3@example.org");
	CHECK_INT(store_member_set(st, "dialogue", "m3@example.org", "delivery", "none"), STORE_OK);

	/* approve: archived and one copy per member with delivery=each */
	int64_t id = post("dialogue", outsider, outsider, LADDR, "a question", "", 0);
	CHECK(id > 0);
	CHECK_STR(status_of(id), "held");
	int64_t archived = sql_int("SELECT count(*) FROM archive");
	CHECK_INT(decide(id, MODERATION_APPROVE, NULL, 0, msg, sizeof msg), MODERATION_DONE);
	CHECK(strstr(msg, "approved post") && strstr(msg, "2 copies queued"));
	CHECK_STR(status_of(id), "approved");
	CHECK_INT(sql_int("SELECT count(*) FROM archive"), archived + 1);
	CHECK_INT(mails_to("m1@example.org"), 1);
	CHECK_INT(mails_to("m2@example.org"), 1);
	CHECK_INT(mails_to("m3@example.org"), 0);
	char *copy = last_mail_to("m1@example.org");
	CHECK(copy && strstr(copy, "Subject: [Dialogue] a question") &&
	      strstr(copy, "List-Id:") && strstr(copy, "Hello, a real post."));
	free(copy);
	CHECK_INT(sql_int("SELECT decided > 0 AND decided_by = 'test' FROM held WHERE id = %lld",
			  (long long)id),
		  1);
	/* a second decision, of any kind, changes nothing */
	CHECK_INT(decide(id, MODERATION_APPROVE, NULL, 0, msg, sizeof msg), MODERATION_ALREADY);
	CHECK_STR(msg, "post 1 was already approved");
	CHECK_INT(decide(id, MODERATION_REJECT, "no", 0, msg, sizeof msg), MODERATION_ALREADY);
	CHECK_INT(decide(id, MODERATION_DISCARD, NULL, 0, msg, sizeof msg), MODERATION_ALREADY);
	CHECK_INT(mails_to("m1@example.org"), 1);
	CHECK_INT(mails_to(outsider), 0);
	CHECK_INT(sql_int("SELECT count(*) FROM archive"), archived + 1);

	/* not there */
	CHECK_INT(decide(9999, MODERATION_APPROVE, NULL, 0, msg, sizeof msg),
		  MODERATION_NOTFOUND);
	CHECK_STR(msg, "no held post 9999");

	/* reject: the envelope sender is told, with the reason */
	const char *poster = "poster@example.net";
	id = post("dialogue", poster, "Someone <other@example.net>", LADDR, "spam?", "", 0);
	CHECK(id > 0);
	CHECK_INT(decide(id, MODERATION_REJECT, "  off topic here  ", 0, msg, sizeof msg),
		  MODERATION_DONE);
	CHECK_STR(status_of(id), "rejected");
	CHECK_INT(mails_to(poster), 1);
	CHECK_INT(mails_to("other@example.net"), 0);
	char *notice = last_mail_to(poster);
	CHECK(notice && strstr(notice, "off topic here") && strstr(notice, "Auto-Submitted:"));
	free(notice);
	CHECK_INT(sql_int("SELECT decision_reason = 'off topic here' FROM held WHERE id = %lld",
			  (long long)id),
		  1);
	CHECK_INT(decide(id, MODERATION_REJECT, "again", 0, msg, sizeof msg), MODERATION_ALREADY);
	CHECK_INT(mails_to(poster), 1);

	/* never to the null sender */
	int64_t before = sql_int("SELECT count(*) FROM outbound");
	id = post("dialogue", "", "bot@example.net", LADDR, "from nobody", "", 0);
	CHECK(id > 0);
	CHECK_INT(decide(id, MODERATION_REJECT, NULL, 0, msg, sizeof msg), MODERATION_DONE);
	CHECK(strstr(msg, "nobody to tell") != NULL);
	CHECK_INT(sql_int("SELECT count(*) FROM outbound"), before);

	/* discard: nothing goes anywhere; withdraw: the poster gets a
	 * confirmation, the members nothing */
	id = post("dialogue", poster, poster, LADDR, "discard me", "", 0);
	CHECK_INT(decide(id, MODERATION_DISCARD, NULL, 0, msg, sizeof msg), MODERATION_DONE);
	CHECK_STR(status_of(id), "discarded");
	CHECK_INT(mails_to(poster), 1);
	id = post("dialogue", poster, poster, LADDR, "withdraw me", "", 0);
	CHECK_INT(decide(id, MODERATION_WITHDRAW, NULL, 0, msg, sizeof msg), MODERATION_DONE);
	CHECK_STR(status_of(id), "withdrawn");
	CHECK(strstr(msg, "the poster is told") != NULL);
	CHECK_INT(mails_to(poster), 2);
	notice = last_mail_to(poster);
	CHECK(notice && strstr(notice, "withdrawn") && strstr(notice, "withdraw me"));
	free(notice);
	CHECK_INT(mails_to("m1@example.org"), 1);

	/* expire: the poster is told */
	id = post("dialogue", poster, poster, LADDR, "too slow", "", 0);
	int64_t *ids = NULL;
	size_t n = 0;
	CHECK_INT(store_held_expired(st, "dialogue", now_epoch() + 1, 0, &ids, &n), STORE_OK);
	CHECK(n >= 1 && ids[n - 1] == id);
	free(ids);
	CHECK_INT(store_held_expired(st, "dialogue", now_epoch() - 3600, 0, &ids, &n), STORE_OK);
	CHECK_INT(n, 0);
	free(ids);
	CHECK_INT(decide(id, MODERATION_EXPIRE, NULL, 0, msg, sizeof msg), MODERATION_DONE);
	CHECK_STR(status_of(id), "expired");
	CHECK_INT(mails_to(poster), 3);
	notice = last_mail_to(poster);
	CHECK(notice && strstr(notice, "14 days"));
	free(notice);

	/* approve --member: the moderated flag goes */
	add_member("dialogue", "new@example.org");
	CHECK_INT(store_member_set(st, "dialogue", "new@example.org", "moderated", "1"), STORE_OK);
	id = post("dialogue", "new@example.org", "new@example.org", LADDR, "first post", "", 0);
	CHECK(id > 0);
	struct store_held h;
	CHECK_INT(store_held_get(st, id, &h), STORE_OK);
	CHECK_STR(h.reason, "member is moderated");
	store_held_clear(&h);
	CHECK_INT(decide(id, MODERATION_APPROVE, NULL, 1, msg, sizeof msg), MODERATION_DONE);
	CHECK(strstr(msg, "no longer moderated") != NULL);
	struct store_member m;
	CHECK_INT(store_member_get(st, "dialogue", "new@example.org", &m), STORE_OK);
	CHECK_INT(m.moderated, 0);
	store_member_free(&m);
	CHECK_INT(post("dialogue", "new@example.org", "new@example.org", LADDR, "second", "", 0),
		  0);

	/* the content holds, through the processor */
	id = post("dialogue", "m1@example.org", "m1@example.org", "someone@example.org",
		  "bcc", "", 0);
	CHECK(id > 0);
	CHECK_INT(store_held_get(st, id, &h), STORE_OK);
	CHECK_STR(h.reason, R_IMPLICIT);
	store_held_clear(&h);
	id = post("dialogue", "m1@example.org", "m1@example.org", LADDR, "unsubscribe", "", 0);
	CHECK(id > 0);
	CHECK_INT(store_held_get(st, id, &h), STORE_OK);
	CHECK_STR(h.reason, R_ADMIN);
	store_held_clear(&h);
	id = post("dialogue", "m1@example.org", LADDR, LADDR, "forged", "", 0);
	CHECK(id > 0);
	CHECK_INT(store_held_get(st, id, &h), STORE_OK);
	CHECK_STR(h.reason, R_FROMLIST);
	store_held_clear(&h);

	/* a poison message is held unparsed and, approved, goes out without
	 * being parsed again */
	id = post("dialogue", poster, poster, LADDR, "poison", "", 1);
	CHECK(id > 0);
	CHECK_INT(store_held_get(st, id, &h), STORE_OK);
	CHECK_INT(h.unparsed, 1);
	store_held_clear(&h);
	int64_t m1 = mails_to("m1@example.org");
	CHECK_INT(decide(id, MODERATION_APPROVE, NULL, 0, msg, sizeof msg), MODERATION_DONE);
	CHECK_INT(mails_to("m1@example.org"), m1 + 1);

	/* listing */
	struct store_held *all = NULL;
	CHECK_INT(store_held_list(st, "dialogue", 0, &all, &n), STORE_OK);
	for (size_t i = 0; i < n; i++)
		CHECK_STR(all[i].status, "held");
	size_t waiting = n;
	store_held_free(all, n);
	long count = 0;
	CHECK_INT(store_held_count(st, "dialogue", &count), STORE_OK);
	CHECK_INT(count, (long)waiting);
	CHECK_INT(store_held_list(st, NULL, 1, &all, &n), STORE_OK);
	CHECK(n > waiting);
	store_held_free(all, n);
	CHECK_INT(store_held_decide(st, 1, "bogus", "x", NULL, 1), STORE_INVAL);
	CHECK_INT(store_held_decide(st, 1, "approved", "x", NULL, 1), STORE_NOTFOUND);
}

static void test_new_members_moderated(void)
{
	struct store_member m;
	add_member("newbies", "n1@example.org");
	CHECK_INT(store_member_get(st, "newbies", "n1@example.org", &m), STORE_OK);
	CHECK_INT(m.moderated, 1);
	store_member_free(&m);
	add_member("dialogue", "n1@example.org");
	CHECK_INT(store_member_get(st, "dialogue", "n1@example.org", &m), STORE_OK);
	CHECK_INT(m.moderated, 0);
	store_member_free(&m);
	/* and their first post is held */
	int64_t id = post("newbies", "n1@example.org", "n1@example.org", "newbies@" DOMAIN, "hi",
			  "", 0);
	CHECK(id > 0);
	/* too large and too many recipients, on a list that sets both */
	char pad[2048];
	memset(pad, 'x', sizeof pad - 1);
	pad[sizeof pad - 1] = '\0';
	char *big = xasprintf("X-Pad: %s", pad);
	CHECK_INT(store_member_set(st, "newbies", "n1@example.org", "moderated", "0"), STORE_OK);
	id = post("newbies", "n1@example.org", "n1@example.org", "newbies@" DOMAIN, "big", big, 0);
	free(big);
	struct store_held h;
	CHECK(id > 0 && store_held_get(st, id, &h) == STORE_OK);
	if (id > 0) {
		CHECK_STR(h.reason, R_SIZE);
		store_held_clear(&h);
	}
	id = post("newbies", "n1@example.org", "n1@example.org",
		  "newbies@" DOMAIN ", a@example.org, b@example.org, c@example.org", "many", "", 0);
	CHECK(id > 0 && store_held_get(st, id, &h) == STORE_OK);
	if (id > 0) {
		CHECK_STR(h.reason, R_RCPTS);
		store_held_clear(&h);
	}
	CHECK_INT(post("newbies", "n1@example.org", "n1@example.org",
		       "newbies@" DOMAIN ", a@example.org", "fine", "", 0),
		  0);
}

int main(void)
{
	test_policy_rows();
	test_admin_commands();
	test_header_facts();

	if (testdb_mkdir(tmpdir, "dlg-moderation") < 0)
		return 1;
	char *conf = xasprintf("%s/dialogue.conf", tmpdir);
	FILE *f = fopen(conf, "w");
	fputs("[server]\nhostname = " DOMAIN "\ndatabase = t.db\n"
	      "[list dialogue]\naddress = " LADDR "\ntitle = Dialogue\n"
	      "post_policy = members\nnonmember_action = hold\nsubject_prefix = [Dialogue]\n"
	      "moderators = mod@example.org\n"
	      "[list newbies]\naddress = newbies@" DOMAIN "\npost_policy = members\n"
	      "moderate_new_members = yes\nmax_post_size = 1K\nmax_post_recipients = 3\n",
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
		test_decisions();
		test_new_members_moderated();
		store_close(st);
	}
	config_free(cfg);
	testdb_rmdir(tmpdir);
	free(conf);
	free(db);
	return test_result();
}
