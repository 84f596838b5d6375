/* Unit tests for lib/policy.c: every branch of policy_decide() as one row
 * of a table, so a rule change shows up as a changed row. */
#include <stddef.h>

#include "policy.h"
#include "testutil.h"

enum { MEM = 1, MODD = 2, MODR = 4, LID = 8, XLOOP = 16, AUTO = 32, BNC = 64 };

struct row {
	int line;
	enum post_policy post;
	enum nonmember_action nm;
	const char *envelope; /* "" = null sender */
	int facts;            /* MEM | MODD | ... */
	enum policy_action want;
	const char *reason;   /* NULL: any non-empty text */
	int notify;
};

#define R __LINE__

static const char *const R_LISTID = "loop: message already carries this list's List-Id";
static const char *const R_XLOOP = "loop: message already carries this list's X-Loop";
static const char *const R_BOUNCE = "post from the list's own bounce address";
static const char *const R_AUTO = "Auto-Submitted message (auto-reply) not posted";
static const char *const R_ANNOUNCE = "only moderators post to this list";
static const char *const R_MODERATED = "list is moderated";
static const char *const R_MEMBER_MOD = "member is moderated";
static const char *const R_NM_HOLD = "post from a non-member";
static const char *const R_NM_REJECT = "only members may post to this list";
static const char *const R_NM_DISCARD = "post from a non-member discarded";

#define A "a@example.org"

static const struct row rows[] = {
	/* loop guards come before everything, moderators included */
	{R, POST_MEMBERS, NM_HOLD, A, MEM | LID, POLICY_DISCARD, NULL, 0},
	{R, POST_MEMBERS, NM_HOLD, A, MEM | XLOOP, POLICY_DISCARD, NULL, 0},
	{R, POST_MEMBERS, NM_HOLD, A, MEM | BNC, POLICY_DISCARD, NULL, 0},
	{R, POST_MEMBERS, NM_HOLD, A, MEM | AUTO, POLICY_DISCARD, NULL, 0},
	{R, POST_ANNOUNCE, NM_ACCEPT, A, MODR | LID, POLICY_DISCARD, NULL, 0},
	{R, POST_OPEN, NM_ACCEPT, A, MODR | XLOOP, POLICY_DISCARD, NULL, 0},
	{R, POST_OPEN, NM_ACCEPT, A, AUTO, POLICY_DISCARD, NULL, 0},
	{R, POST_MODERATED, NM_REJECT, "", BNC, POLICY_DISCARD, NULL, 0},
	{R, POST_MEMBERS, NM_REJECT, A, AUTO, POLICY_DISCARD, NULL, 0},

	/* announce: only moderators */
	{R, POST_ANNOUNCE, NM_ACCEPT, A, MODR, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_ANNOUNCE, NM_ACCEPT, A, MODR | MEM | MODD, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_ANNOUNCE, NM_ACCEPT, A, MEM, POLICY_HOLD, NULL, 0},
	{R, POST_ANNOUNCE, NM_ACCEPT, A, MEM | MODD, POLICY_HOLD, NULL, 0},
	{R, POST_ANNOUNCE, NM_REJECT, A, 0, POLICY_HOLD, NULL, 0},
	{R, POST_ANNOUNCE, NM_DISCARD, "", 0, POLICY_HOLD, NULL, 0},

	/* moderated: moderators pass, everyone else waits */
	{R, POST_MODERATED, NM_HOLD, A, MODR, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_MODERATED, NM_HOLD, A, MEM, POLICY_HOLD, NULL, 0},
	{R, POST_MODERATED, NM_ACCEPT, A, 0, POLICY_HOLD, NULL, 0},
	{R, POST_MODERATED, NM_REJECT, A, 0, POLICY_HOLD, NULL, 0},
	{R, POST_MODERATED, NM_DISCARD, A, MEM | MODD, POLICY_HOLD, NULL, 0},

	/* members */
	{R, POST_MEMBERS, NM_HOLD, A, MEM, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_MEMBERS, NM_REJECT, A, MODR, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_MEMBERS, NM_REJECT, A, MEM | MODR, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_MEMBERS, NM_HOLD, A, MEM | MODD, POLICY_HOLD, NULL, 0},
	{R, POST_MEMBERS, NM_ACCEPT, A, MEM | MODD, POLICY_HOLD, NULL, 0},
	{R, POST_MEMBERS, NM_HOLD, A, MEM | MODD | MODR, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_MEMBERS, NM_ACCEPT, A, 0, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_MEMBERS, NM_HOLD, A, 0, POLICY_HOLD, NULL, 0},
	{R, POST_MEMBERS, NM_REJECT, A, 0, POLICY_REJECT, NULL, 1},
	{R, POST_MEMBERS, NM_REJECT, "", 0, POLICY_REJECT, NULL, 0},
	{R, POST_MEMBERS, NM_DISCARD, A, 0, POLICY_DISCARD, NULL, 0},
	{R, POST_MEMBERS, NM_DISCARD, "", 0, POLICY_DISCARD, NULL, 0},
	/* the moderated flag means nothing without membership */
	{R, POST_MEMBERS, NM_HOLD, A, MODD, POLICY_HOLD, NULL, 0},
	{R, POST_MEMBERS, NM_ACCEPT, A, MODD, POLICY_DISTRIBUTE, NULL, 0},

	/* open: everyone, but a moderated member is still held */
	{R, POST_OPEN, NM_REJECT, A, 0, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_OPEN, NM_DISCARD, "", 0, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_OPEN, NM_HOLD, A, MEM, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_OPEN, NM_HOLD, A, MODR, POLICY_DISTRIBUTE, NULL, 0},
	{R, POST_OPEN, NM_HOLD, A, MEM | MODD, POLICY_HOLD, NULL, 0},
	{R, POST_OPEN, NM_ACCEPT, A, MEM | MODD | MODR, POLICY_DISTRIBUTE, NULL, 0},
};

/* Reasons are part of the contract (they reach logs, moderators and
 * senders), so the rows above that name a fixed reason are checked here. */
struct reason_row {
	enum post_policy post;
	enum nonmember_action nm;
	int facts;
	const char *const *reason;
};

static const struct reason_row reasons[] = {
	{POST_MEMBERS, NM_HOLD, MEM | LID | XLOOP | BNC | AUTO, &R_LISTID},
	{POST_MEMBERS, NM_HOLD, MEM | XLOOP | BNC | AUTO, &R_XLOOP},
	{POST_MEMBERS, NM_HOLD, MEM | BNC | AUTO, &R_BOUNCE},
	{POST_MEMBERS, NM_HOLD, MEM | AUTO, &R_AUTO},
	{POST_ANNOUNCE, NM_ACCEPT, MEM, &R_ANNOUNCE},
	{POST_ANNOUNCE, NM_ACCEPT, 0, &R_ANNOUNCE},
	{POST_MODERATED, NM_ACCEPT, MEM, &R_MODERATED},
	{POST_MODERATED, NM_ACCEPT, 0, &R_MODERATED},
	{POST_MEMBERS, NM_ACCEPT, MEM | MODD, &R_MEMBER_MOD},
	{POST_OPEN, NM_ACCEPT, MEM | MODD, &R_MEMBER_MOD},
	{POST_MEMBERS, NM_HOLD, 0, &R_NM_HOLD},
	{POST_MEMBERS, NM_REJECT, 0, &R_NM_REJECT},
	{POST_MEMBERS, NM_DISCARD, 0, &R_NM_DISCARD},
};

static void facts_of(int bits, const char *envelope, struct post_facts *f)
{
	f->envelope_from = envelope;
	f->from_addr = A;
	f->sender_is_member = !!(bits & MEM);
	f->sender_is_moderated = !!(bits & MODD);
	f->sender_is_moderator = !!(bits & MODR);
	f->has_own_list_id = !!(bits & LID);
	f->has_own_x_loop = !!(bits & XLOOP);
	f->auto_submitted = !!(bits & AUTO);
	f->from_own_bounces = !!(bits & BNC);
}

static void decide(enum post_policy post, enum nonmember_action nm, int bits,
		   const char *envelope, struct policy_decision *d)
{
	struct list_cfg l = {0};
	struct post_facts f = {0};

	l.post_policy = post;
	l.nonmember_action = nm;
	facts_of(bits, envelope, &f);
	d->action = POLICY_DISTRIBUTE; /* notify_sender -1 shows a missed write */
	d->reason = NULL;
	d->notify_sender = -1;
	policy_decide(&l, &f, d);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct policy_decision d;

		decide(r->post, r->nm, r->facts, r->envelope, &d);
		if (d.action != r->want || d.notify_sender != r->notify || !d.reason ||
		    !d.reason[0] || (r->reason && strcmp(d.reason, r->reason))) {
			fprintf(stderr, "%s:%d: FAIL: got %s notify=%d \"%s\", want %s notify=%d\n",
				__FILE__, r->line, policy_action_name(d.action), d.notify_sender,
				d.reason ? d.reason : "(null)", policy_action_name(r->want),
				r->notify);
			test_failures++;
		}
		test_checks++;
	}
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		struct policy_decision d;
		decide(reasons[i].post, reasons[i].nm, reasons[i].facts, A, &d);
		CHECK_STR(d.reason, *reasons[i].reason);
	}

	CHECK_STR(policy_action_name(POLICY_DISTRIBUTE), "distribute");
	CHECK_STR(policy_action_name(POLICY_HOLD), "hold");
	CHECK_STR(policy_action_name(POLICY_REJECT), "reject");
	CHECK_STR(policy_action_name(POLICY_DISCARD), "discard");
	return test_result();
}
