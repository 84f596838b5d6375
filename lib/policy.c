/* policy: the post rules of SPEC.md as one pure function. Loop guards come
 * first so that no policy setting can ever turn a loop into a post; then
 * moderators, who may always post; then the list's post_policy. */
#include "policy.h"

#include <stddef.h>

static void decide(struct policy_decision *out, enum policy_action a, const char *reason,
		   int notify)
{
	out->action = a;
	out->reason = reason;
	out->notify_sender = notify;
}

/* A rejection is explained to the sender, except to the null sender: a
 * notice to "<>" would bounce into the void or start a bounce loop. */
static int may_notify(const struct post_facts *f)
{
	return f->envelope_from && f->envelope_from[0];
}

static void nonmember(const struct list_cfg *l, const struct post_facts *f,
		      struct policy_decision *out)
{
	switch (l->nonmember_action) {
	case NM_ACCEPT:
		decide(out, POLICY_DISTRIBUTE, "post from a non-member accepted", 0);
		return;
	case NM_REJECT:
		decide(out, POLICY_REJECT, "only members may post to this list", may_notify(f));
		return;
	case NM_DISCARD:
		decide(out, POLICY_DISCARD, "post from a non-member discarded", 0);
		return;
	case NM_HOLD:
		break;
	}
	/* NM_HOLD, and any value a future config might add: keeping the post
	 * for a moderator loses nothing. */
	decide(out, POLICY_HOLD, "post from a non-member", 0);
}

void policy_decide(const struct list_cfg *l, const struct post_facts *f,
		   struct policy_decision *out)
{
	if (f->has_own_list_id) {
		decide(out, POLICY_DISCARD, "loop: message already carries this list's List-Id", 0);
		return;
	}
	if (f->has_own_x_loop) {
		decide(out, POLICY_DISCARD, "loop: message already carries this list's X-Loop", 0);
		return;
	}
	if (f->from_own_bounces) {
		decide(out, POLICY_DISCARD, "post from the list's own bounce address", 0);
		return;
	}
	if (f->auto_submitted) {
		decide(out, POLICY_DISCARD, "Auto-Submitted message (auto-reply) not posted", 0);
		return;
	}

	/* A moderator's word is final under every policy, even when the same
	 * address is also a member whose posts are moderated. */
	if (f->sender_is_moderator) {
		decide(out, POLICY_DISTRIBUTE, "post from a moderator", 0);
		return;
	}

	switch (l->post_policy) {
	case POST_ANNOUNCE:
		decide(out, POLICY_HOLD, "only moderators post to this list", 0);
		return;
	case POST_MODERATED:
		decide(out, POLICY_HOLD, "list is moderated", 0);
		return;
	case POST_MEMBERS:
	case POST_OPEN:
		break;
	}

	if (f->sender_is_member && f->sender_is_moderated) {
		decide(out, POLICY_HOLD, "member is moderated", 0);
		return;
	}
	if (l->post_policy == POST_OPEN) {
		decide(out, POLICY_DISTRIBUTE, f->sender_is_member ? "post from a member"
								    : "open list",
		       0);
		return;
	}
	if (l->post_policy == POST_MEMBERS && f->sender_is_member) {
		decide(out, POLICY_DISTRIBUTE, "post from a member", 0);
		return;
	}
	if (l->post_policy == POST_MEMBERS) {
		nonmember(l, f, out);
		return;
	}
	/* An unknown post_policy value: hold rather than guess. */
	decide(out, POLICY_HOLD, "list is moderated", 0);
}

const char *policy_action_name(enum policy_action a)
{
	switch (a) {
	case POLICY_DISTRIBUTE:
		return "distribute";
	case POLICY_HOLD:
		return "hold";
	case POLICY_REJECT:
		return "reject";
	case POLICY_DISCARD:
		return "discard";
	}
	return "unknown";
}
