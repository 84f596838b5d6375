/* policy: the post rules of SPEC.md as one pure function. Loop guards come
 * first so that no policy setting can ever turn a loop into a post; then
 * moderators, who may always post; then the list's post_policy; then the
 * content holds, which can only keep back a post that would go out. */
#include "policy.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

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

/* Checks on what the post is rather than who sent it, for a post that
 * would otherwise go out: each catches a mistake (a command or a Bcc sent
 * to every member) or mail that does not belong on a list. */
static int content_hold(const struct list_cfg *l, const struct post_facts *f,
			struct policy_decision *out)
{
	if (f->admin_command) {
		decide(out, POLICY_HOLD,
		       "administrative request (subscribe, unsubscribe ...) sent to the list", 0);
		return 1;
	}
	if (f->implicit_destination) {
		decide(out, POLICY_HOLD,
		       "implicit destination: the list's address is not in To or Cc", 0);
		return 1;
	}
	if (l->max_post_recipients > 0 && f->n_recipients > l->max_post_recipients) {
		decide(out, POLICY_HOLD, "too many recipients in To and Cc", 0);
		return 1;
	}
	if (l->max_post_size > 0 && f->size > (uint64_t)l->max_post_size) {
		decide(out, POLICY_HOLD, "message is larger than the list's max_post_size", 0);
		return 1;
	}
	return 0;
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
	/* Members would see the list itself as the author: a forged From that
	 * may also slip past the member check. Never out without a look. */
	if (f->from_is_list) {
		decide(out, POLICY_HOLD, "From: claims to be the list's own address", 0);
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
	} else if (l->post_policy == POST_MEMBERS && f->sender_is_member) {
		decide(out, POLICY_DISTRIBUTE, "post from a member", 0);
	} else if (l->post_policy == POST_MEMBERS) {
		nonmember(l, f, out);
		if (out->action != POLICY_DISTRIBUTE)
			return;
	} else {
		/* An unknown post_policy value: hold rather than guess. */
		decide(out, POLICY_HOLD, "list is moderated", 0);
		return;
	}
	content_hold(l, f, out);
}

/* ---- administrative commands ---- */

static int blank_char(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Is S[0..n) (no line ends) one word equal to W, ignoring ASCII case? */
static int word_is(const char *s, size_t n, const char *w)
{
	return n == strlen(w) && !ascii_strncasecmp(s, w, n);
}

static int word_in(const char *s, size_t n, const char *const *words)
{
	for (size_t i = 0; words[i]; i++)
		if (word_is(s, n, words[i]))
			return 1;
	return 0;
}

#define CMD_MAX_WORDS 5

/* Is the line S[0..n) one command (see policy_admin_command)? */
static int command_line(const char *s, size_t n)
{
	static const char *const join[] = {"subscribe", "join", NULL};
	static const char *const leave[] = {"unsubscribe", "leave", "remove", "signoff", NULL};
	static const char *const join_args[] = {"me", "digest", "nodigest", NULL};
	static const char *const switches[] = {"on", "off", "yes", "no", NULL};
	const char *w[CMD_MAX_WORDS];
	size_t wl[CMD_MAX_WORDS], nw = 0;

	while (n && (blank_char(s[n - 1]) || s[n - 1] == '.' || s[n - 1] == '!'))
		n--;
	for (size_t i = 0; i < n;) {
		while (i < n && blank_char(s[i]))
			i++;
		if (i >= n)
			break;
		if (nw == CMD_MAX_WORDS)
			return 0;
		w[nw] = s + i;
		while (i < n && !blank_char(s[i]))
			i++;
		wl[nw] = (size_t)(s + i - w[nw]);
		nw++;
	}
	if (nw == 0)
		return 0;
	int addr = nw == 2 && memchr(w[1], '@', wl[1]) != NULL;
	if (word_is(w[0], wl[0], "help"))
		return nw == 1;
	if (word_is(w[0], wl[0], "set"))
		return nw >= 3 && nw <= 4 && word_in(w[nw - 1], wl[nw - 1], switches);
	if (word_in(w[0], wl[0], join))
		return nw == 1 || addr || (nw == 2 && word_in(w[1], wl[1], join_args));
	if (word_in(w[0], wl[0], leave))
		return nw == 1 || addr || (nw == 2 && word_is(w[1], wl[1], "me"));
	return 0;
}

static int subject_command(const char *s)
{
	/* "[Dialogue] unsubscribe": a list tag or two in front. */
	for (;;) {
		while (blank_char(*s))
			s++;
		if (*s != '[')
			break;
		const char *close = strchr(s, ']');
		if (!close)
			return 0;
		s = close + 1;
	}
	if (strpbrk(s, "\r\n"))
		return 0;
	return command_line(s, strlen(s));
}

static int body_command(const char *s)
{
	const char *cmd = NULL;
	size_t cmd_len = 0;

	while (*s) {
		size_t n = strcspn(s, "\n");
		const char *line = s;
		s += n;
		if (*s)
			s++;
		size_t e = n;
		while (e && blank_char(line[e - 1]))
			e--;
		size_t b = 0;
		while (b < e && blank_char(line[b]))
			b++;
		if (b == e || line[b] == '>')
			continue;
		/* The signature separator, "-- " (some clients drop the space). */
		if (b == 0 && e == 2 && line[0] == '-' && line[1] == '-')
			break;
		if (e - b >= 6 && !ascii_strncasecmp(line + e - 6, "wrote:", 6))
			continue;
		if (cmd)
			return 0; /* a second line of text: a real post */
		cmd = line + b;
		cmd_len = e - b;
	}
	return cmd && command_line(cmd, cmd_len);
}

int policy_admin_command(const char *text, int subject)
{
	if (!text)
		return 0;
	return subject ? subject_command(text) : body_command(text);
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
