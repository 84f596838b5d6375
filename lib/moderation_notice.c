/* moderation_notice: telling people that a post is held — the list's
 * moderators (a notice with the post, the original attached and the reply
 * addresses that decide it) and the poster (once, with an address that
 * withdraws it). dialogued's sweep runs moderation_announce() every few
 * seconds; the held rows say what is still to be done, so a restart
 * neither repeats a mail nor forgets one.
 *
 * Batching: a list gets at most one notice per MODERATION_NOTICE_INTERVAL.
 * A notice lists every post held since the one before, each with its own
 * approve and reject address and its original attached (while the
 * attachments stay under ATTACH_MAX in total; the others are named, and
 * `dialoguectl held show ID --raw` prints them). The listing is one
 * template value, which the template engine caps at 16 KiB: the text
 * excerpt of each post shrinks when many share a notice, and posts that
 * do not fit wait for the next notice. */
#include "moderation_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "message.h"
#include "subscribe.h"
#include "token.h"
#include "util.h"

/* Held posts of one list looked at per sweep. */
#define TODO_BATCH 100
/* Bytes of the post listing in one notice (the template value cap is
 * 16 KiB; a little room is left for the cut mark). */
#define LISTING_MAX 15000
/* The text excerpt of a post: alone in its notice, or one of several. */
#define EXCERPT_ONE_BYTES 3000
#define EXCERPT_ONE_LINES 40
#define EXCERPT_MANY_BYTES 600
#define EXCERPT_MANY_LINES 8
/* Originals attached to one notice, in total. */
#define ATTACH_MAX (10 * 1024 * 1024)
/* Bytes of one header field shown in a notice. */
#define FIELD_MAX 300

/* One sweep's context. */
struct sweep {
	struct store *st;
	const struct config *cfg;
	const struct templates *t;
	int64_t now;
	size_t queued;
};

/* A held post, loaded for its mails. */
struct post {
	struct store_held h;
	char *raw;
	size_t len;
	struct msg_info mi;
	int parsed;       /* mi is filled (never for a poison message) */
	int tell, notify; /* what the sweep still owes it */
	char approve[TOKEN_LEN + 1];
	char reject[TOKEN_LEN + 1];
	int attached;
};

static void post_clear(struct post *p)
{
	store_held_clear(&p->h);
	free(p->raw);
	if (p->parsed)
		msg_info_free(&p->mi);
	memset(p, 0, sizeof *p);
}

/* Read post ID with its message; parsed unless it is a poison message,
 * which is never parsed again. */
static int post_load(struct sweep *w, int64_t id, struct post *p)
{
	memset(p, 0, sizeof *p);
	int rc = store_held_get(w->st, id, &p->h);
	if (rc == STORE_OK)
		rc = store_held_raw(w->st, id, &p->raw, &p->len);
	if (rc != STORE_OK)
		return rc;
	if (!p->h.unparsed) {
		msg_parse(p->raw, p->len, w->cfg->hostname, &p->mi);
		p->parsed = 1;
	}
	return STORE_OK;
}

/* How long a token of post H stays good: while the post can be waiting
 * (a day past its expiry, for a reply on its way), a year when posts never
 * expire; never less than token_lifetime. */
static int64_t token_expiry(const struct sweep *w, const struct list_cfg *l,
			    const struct store_held *h)
{
	int64_t until = l->hold_expire > 0 ? h->received + l->hold_expire + 86400
					    : w->now + 366 * 86400;
	if (until < w->now + w->cfg->token_lifetime)
		until = w->now + w->cfg->token_lifetime;
	return until;
}

/* Keep TOK (from token_new) as the token for ACTION on post H of L:
 * stored hashed, bound to the list, the action and the post. */
static int keep_token(struct sweep *w, const struct list_cfg *l, const struct store_held *h,
		      const char *action, const char *tok)
{
	char hash[TOKEN_HASH_LEN + 1];
	if (token_hash(tok, hash) < 0) {
		log_err("moderation: no SHA-256 for a token");
		return STORE_ERR;
	}
	struct store_token row = {
		.list = l->name,
		.address = h->mail_from,
		.action = (char *)action,
		.name = "",
		.stakeholder = "",
		.created = w->now,
		.expires = token_expiry(w, l, h),
		.held_id = h->id,
	};
	return store_token_add(w->st, hash, &row);
}

/* Queue BODY to RCPT from L-bounces@D (a bounce comes back to the list's
 * bounce handling, never to a person), tied to the posts IDS[0..n). */
static int queue_mail(struct sweep *w, const struct list_cfg *l, int64_t raw_id,
		      const char *body, size_t len, const char *rcpt, const int64_t *ids, size_t n)
{
	char *bounces = xasprintf("%s-bounces@%s", l->local, l->domain);
	struct store_outbound o = {
		.list = l->name,
		.kind = "notice",
		.raw_id = raw_id,
		.mail_from = bounces,
		.body = body,
		.len = len,
		.rcpts = &rcpt,
		.n_rcpts = 1,
		.now = w->now,
	};
	int64_t msg_id = 0;
	int rc = store_outbound_add(w->st, &o, &msg_id);
	free(bounces);
	for (size_t i = 0; i < n && rc == STORE_OK; i++)
		rc = store_held_link_mail(w->st, ids[i], msg_id);
	if (rc == STORE_OK)
		w->queued++;
	return rc;
}

/* ---- the poster ---- */

/* Tell the poster of P, once, that it waits (post-held), with its
 * withdraw address; or record why not. */
static int tell_poster(struct sweep *w, const struct list_cfg *l, struct post *p)
{
	const char *to = p->h.mail_from;
	const char *why = NULL;
	int ok = 1, rc;

	/* The header is read without the parser, so a poison message's
	 * Auto-Submitted counts too. */
	if (!*to)
		why = "null sender";
	else if (!address_valid(to))
		why = "no valid sender address";
	else
		why = subscribe_quiet_reason(w->cfg, to, p->h.from_addr, p->raw, p->len, 0);
	if (!why) {
		if ((rc = subscribe_auto_reply_ok(w->st, w->cfg, to, w->now, &ok)) != STORE_OK)
			return rc;
		if (!ok)
			why = "auto_replies_per_day reached";
	}
	if (why) {
		log_info("moderation: post %lld to %s: the poster is not told (%s)",
			 (long long)p->h.id, l->name, why);
		return store_held_set_poster_told(w->st, p->h.id, w->now);
	}
	char tok[TOKEN_LEN + 1], id[32], received[32], days[32], expire[64] = "";
	if (token_new(tok) < 0) {
		log_err("moderation: no random bytes for a token");
		return STORE_ERR;
	}
	if ((rc = keep_token(w, l, &p->h, "withdraw", tok)) != STORE_OK)
		return rc;
	char *withdraw = xasprintf("%s-withdraw+%s@%s", l->local, tok, l->domain);
	snprintf(id, sizeof id, "%lld", (long long)p->h.id);
	fmt_iso8601(p->h.received, received);
	snprintf(days, sizeof days, "%lld", (long long)((l->hold_expire + 86399) / 86400));
	if (l->hold_expire > 0)
		moderation_duration_text(l->hold_expire, expire, sizeof expire);
	const struct template_var vars[] = {
		{"held_id", id},
		{"subject", p->h.subject},
		{"reason", p->h.reason},
		{"hold_reason", p->h.reason},
		{"received", received},
		{"poster", to},
		{"hold_expire", expire},
		{"days", days},
		{"withdraw_address", withdraw},
	};
	size_t len = 0;
	char *body = template_compose(w->t, w->cfg, l, "post-held", vars,
				      sizeof vars / sizeof vars[0], to, NULL, NULL, &len);
	free(withdraw);
	if (!body) {
		log_err("moderation: post %lld to %s: the post-held mail to %s could not be "
			"composed",
			(long long)p->h.id, l->name, to);
		return store_held_set_poster_told(w->st, p->h.id, w->now);
	}
	rc = queue_mail(w, l, p->h.raw_id, body, len, to, &p->h.id, 1);
	free(body);
	if (rc == STORE_OK)
		rc = subscribe_auto_reply_count(w->st, to, w->now);
	if (rc == STORE_OK)
		rc = store_held_set_poster_told(w->st, p->h.id, w->now);
	if (rc == STORE_OK)
		log_info("moderation: post %lld to %s: %s is told it awaits moderation",
			 (long long)p->h.id, l->name, to);
	return rc;
}

/* ---- the moderators' notice ---- */

/* Field V as a notice shows it: one line, at most FIELD_MAX bytes. */
static void add_field(struct sbuf *b, const char *name, const char *v)
{
	if (!v || !*v)
		return;
	size_t n = strnlen(v, FIELD_MAX + 1);
	if (n > FIELD_MAX) {
		n = FIELD_MAX;
		while (n && ((unsigned char)v[n] & 0xc0) == 0x80)
			n--;
	}
	sbuf_printf(b, "    %-10s %.*s%s\n", name, (int)n, v, n < strlen(v) ? " [...]" : "");
}

/* The first MAX_LINES lines (about MAX_BYTES bytes) of TEXT, indented,
 * blank lines at either end and the signature dropped, marked when cut. */
static void add_excerpt(struct sbuf *b, const char *text, size_t max_bytes, size_t max_lines)
{
	const char *s = text;
	size_t lines = 0, bytes = 0, blank = 0, shown = 0;
	int cut = 0;

	while (*s) {
		const char *e = strchr(s, '\n');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		size_t show = n;
		while (show && (s[show - 1] == '\r' || s[show - 1] == ' ' || s[show - 1] == '\t'))
			show--;
		if (show == 2 && s[0] == '-' && s[1] == '-')
			break; /* "-- ": the signature follows */
		if (!show) {
			blank += shown > 0; /* kept only between lines of text */
		} else {
			if (lines >= max_lines || bytes >= max_bytes) {
				cut = 1;
				break;
			}
			if (bytes + show > max_bytes) {
				show = max_bytes - bytes;
				while (show && ((unsigned char)s[show] & 0xc0) == 0x80)
					show--;
				cut = 1;
			}
			for (; blank; blank--, lines++)
				sbuf_adds(b, "\n");
			sbuf_adds(b, "      ");
			sbuf_add(b, s, show);
			sbuf_addc(b, '\n');
			lines++;
			shown++;
			bytes += show + 1;
			if (cut)
				break;
		}
		s = e ? e + 1 : s + n;
	}
	if (cut)
		sbuf_adds(b, "      [...]\n");
	if (!shown)
		sbuf_adds(b, "      (no text)\n");
}

/* The listing of post P: its reason, key fields, reply addresses and the
 * start of its text. */
static void post_listing(struct sbuf *b, const struct list_cfg *l, const struct post *p,
			 int alone)
{
	char received[32];
	fmt_iso8601(p->h.received, received);
	sbuf_printf(b, "Held post %lld\n", (long long)p->h.id);
	add_field(b, "Reason:", p->h.reason);
	char *from, *subject;
	if (p->parsed && *p->mi.from_addr)
		from = *p->mi.from_name ? xasprintf("%s <%s>", p->mi.from_name, p->mi.from_addr)
					: xstrdup(p->mi.from_addr);
	else
		from = msg_raw_header(p->raw, p->len, "From");
	subject = p->parsed ? xstrdup(p->mi.subject) : msg_raw_header(p->raw, p->len, "Subject");
	static const char *const raw_fields[] = {"To", "Cc", "Date"};
	char *raw[3];
	for (size_t i = 0; i < 3; i++)
		raw[i] = msg_raw_header(p->raw, p->len, raw_fields[i]);
	add_field(b, "From:", *from ? from : "(none)");
	add_field(b, "To:", raw[0]);
	add_field(b, "Cc:", raw[1]);
	add_field(b, "Subject:", *subject ? subject : "(none)");
	add_field(b, "Date:", raw[2]);
	add_field(b, "Received:", received);
	add_field(b, "Sender:", *p->h.mail_from ? p->h.mail_from : "<> (none)");
	sbuf_printf(b, "\n    To approve it, reply to:\n        %s-approve+%s@%s\n", l->local,
		    p->approve, l->domain);
	sbuf_printf(b, "    To reject it, reply to (your first line is the reason):\n"
		       "        %s-reject+%s@%s\n\n",
		    l->local, p->reject, l->domain);
	if (!p->parsed)
		sbuf_adds(b, "      (the message could not be parsed; it is not read again)\n");
	else
		add_excerpt(b, p->mi.body_text, alone ? EXCERPT_ONE_BYTES : EXCERPT_MANY_BYTES,
			    alone ? EXCERPT_ONE_LINES : EXCERPT_MANY_LINES);
	for (size_t i = 0; i < 3; i++)
		free(raw[i]);
	free(from);
	free(subject);
}

/* The sentence about the attachments of a notice listing POSTS[0..n). */
static char *attached_note(const struct post *posts, size_t n)
{
	struct sbuf b = {0};
	size_t missing = 0;
	for (size_t i = 0; i < n; i++)
		missing += !posts[i].attached;
	if (missing == n) {
		sbuf_adds(&b, n == 1 ? "The original message is too large to attach here"
				     : "The original messages are too large to attach here");
	} else if (!missing) {
		sbuf_adds(&b, n == 1 ? "The original message is attached."
				     : "The original messages are attached, in the order above.");
		return sbuf_detach(&b);
	} else {
		sbuf_adds(&b, "The original messages are attached, in the order above, but for "
			      "held post");
		sbuf_adds(&b, missing == 1 ? "" : "s");
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if (posts[i].attached)
				continue;
			sbuf_printf(&b, "%s %lld", k++ ? "," : "", (long long)posts[i].h.id);
		}
		sbuf_adds(&b, ", too large to attach here");
	}
	sbuf_adds(&b, ": \"dialoguectl held show ID --raw\" prints one.");
	return sbuf_detach(&b);
}

/* Announce POSTS[0..n) (all still to be announced, oldest first) to L's
 * moderators: as many as fit in one notice; the rest wait. */
static int notify_moderators(struct sweep *w, const struct list_cfg *l, struct post *posts,
			     size_t n)
{
	int rc = STORE_OK;
	if (l->n_moderators == 0) {
		log_warn("moderation: %s has no moderators: %zu held post(s) are not announced",
			 l->name, n);
		for (size_t i = 0; i < n && rc == STORE_OK; i++)
			rc = store_held_set_notified(w->st, posts[i].h.id, w->now);
		return rc;
	}
	/* Tokens first, as the listing shows them; only those of the posts
	 * that fit in it are kept. */
	for (size_t i = 0; i < n; i++)
		if (token_new(posts[i].approve) < 0 || token_new(posts[i].reject) < 0) {
			log_err("moderation: no random bytes for a token");
			return STORE_ERR;
		}
	/* As many as the listing holds: the first always goes. */
	struct sbuf listing = {0};
	size_t k = 0;
	for (; k < n; k++) {
		struct sbuf one = {0};
		post_listing(&one, l, &posts[k], n == 1);
		if (k && listing.len + one.len + 1 > LISTING_MAX) {
			sbuf_free(&one);
			break;
		}
		if (k)
			sbuf_addc(&listing, '\n');
		sbuf_add(&listing, one.buf, one.len);
		sbuf_free(&one);
	}
	for (size_t i = 0; i < k && rc == STORE_OK; i++) {
		rc = keep_token(w, l, &posts[i].h, "approve", posts[i].approve);
		if (rc == STORE_OK)
			rc = keep_token(w, l, &posts[i].h, "reject", posts[i].reject);
	}
	if (rc != STORE_OK) {
		sbuf_free(&listing);
		return rc;
	}
	size_t budget = ATTACH_MAX;
	struct template_attachment *att = xcalloc(k, sizeof *att);
	char (*desc)[48] = xcalloc(k, sizeof *desc);
	int64_t *ids = xcalloc(k, sizeof *ids);
	size_t n_att = 0;
	for (size_t i = 0; i < k; i++) {
		ids[i] = posts[i].h.id;
		if (posts[i].len > budget)
			continue;
		budget -= posts[i].len;
		posts[i].attached = 1;
		snprintf(desc[n_att], sizeof desc[n_att], "held post %lld",
			 (long long)posts[i].h.id);
		att[n_att] = (struct template_attachment){posts[i].raw, posts[i].len, desc[n_att]};
		n_att++;
	}
	char count[32], id[32], approve[512] = "", reject[512] = "";
	snprintf(count, sizeof count, "%zu", k);
	snprintf(id, sizeof id, "%lld", (long long)posts[0].h.id);
	if (k == 1) {
		snprintf(approve, sizeof approve, "%s-approve+%s@%s", l->local, posts[0].approve,
			 l->domain);
		snprintf(reject, sizeof reject, "%s-reject+%s@%s", l->local, posts[0].reject,
			 l->domain);
	}
	char *note = attached_note(posts, k);
	/* The template's line ends the listing's last line. */
	while (listing.len && listing.buf[listing.len - 1] == '\n')
		listing.buf[--listing.len] = '\0';
	const char *listing_text = listing.buf ? listing.buf : "";
	/* Besides the listing, the facts of a lone post, for templates that
	 * want to word it themselves. */
	const struct template_var vars[] = {
		{"count", count},
		{"single", k == 1 ? "yes" : ""},
		{"posts", listing_text},
		{"attached", note},
		{"held_id", k == 1 ? id : ""},
		{"subject", k == 1 ? posts[0].h.subject : ""},
		{"reason", k == 1 ? posts[0].h.reason : ""},
		{"poster", k == 1 ? posts[0].h.mail_from : ""},
		{"approve_address", approve},
		{"reject_address", reject},
	};
	for (size_t m = 0; m < l->n_moderators && rc == STORE_OK; m++) {
		size_t len = 0;
		char *body = template_compose_attached(w->t, w->cfg, l, "moderator-notice", vars,
						       sizeof vars / sizeof vars[0],
						       l->moderators[m], NULL, NULL, att, n_att,
						       &len);
		if (!body) {
			log_err("moderation: the notice for %s to %s could not be composed",
				l->name, l->moderators[m]);
			continue;
		}
		rc = queue_mail(w, l, k == 1 ? posts[0].h.raw_id : 0, body, len, l->moderators[m],
				ids, k);
		free(body);
	}
	for (size_t i = 0; i < k && rc == STORE_OK; i++)
		rc = store_held_set_notified(w->st, ids[i], w->now);
	if (rc == STORE_OK) {
		struct sbuf which = {0};
		for (size_t i = 0; i < k; i++)
			sbuf_printf(&which, "%s%lld", i ? ", " : "", (long long)ids[i]);
		log_info("moderation: notice for %s to %zu moderator(s): %zu held post(s) (%s)%s",
			 l->name, l->n_moderators, k, which.buf,
			 k < n ? "; the rest next time" : "");
		sbuf_free(&which);
	}
	free(note);
	free(ids);
	free(desc);
	free(att);
	sbuf_free(&listing);
	return rc;
}

/* Is it time for L's next notice, the oldest post waiting for one having
 * been received at OLDEST? */
static int notice_due(struct sweep *w, const struct list_cfg *l, int64_t oldest, int *due)
{
	int64_t last = 0;
	*due = 0;
	int rc = store_held_last_notice(w->st, l->name, &last);
	if (rc != STORE_OK)
		return rc;
	/* A clock set back must not silence a list for as long. */
	if (last > 0 && w->now >= last && w->now - last < MODERATION_NOTICE_INTERVAL)
		return STORE_OK;
	*due = w->now - oldest >= MODERATION_NOTICE_SETTLE || oldest > w->now;
	return STORE_OK;
}

/* L's share of the sweep, in one transaction. */
static int announce_list(struct sweep *w, const struct list_cfg *l)
{
	struct store_held_todo *todo = NULL;
	struct post *posts = NULL;
	size_t n = 0, loaded = 0, n_notify = 0;
	int rc = store_held_todo(w->st, l->name, TODO_BATCH, &todo, &n);
	if (rc != STORE_OK || n == 0)
		goto out;
	int due = 0;
	int64_t oldest = 0;
	for (size_t i = 0; i < n; i++)
		if (todo[i].notify && (!oldest || todo[i].received < oldest))
			oldest = todo[i].received;
	if (oldest && (rc = notice_due(w, l, oldest, &due)) != STORE_OK)
		goto out;
	size_t work = 0;
	for (size_t i = 0; i < n; i++)
		work += todo[i].tell_poster || (due && todo[i].notify);
	if (!work)
		goto out; /* only posts waiting for the next notice */
	if ((rc = store_begin(w->st)) != STORE_OK)
		goto out;
	posts = xcalloc(n, sizeof *posts);
	for (size_t i = 0; i < n && rc == STORE_OK; i++) {
		if (!todo[i].tell_poster && !(due && todo[i].notify))
			continue;
		rc = post_load(w, todo[i].id, &posts[loaded]);
		if (rc != STORE_OK)
			break;
		posts[loaded].tell = todo[i].tell_poster;
		posts[loaded].notify = due && todo[i].notify;
		loaded++;
	}
	for (size_t i = 0; i < loaded && rc == STORE_OK; i++)
		if (posts[i].tell)
			rc = tell_poster(w, l, &posts[i]);
	/* The posts to announce, moved to the front in their order. */
	for (size_t i = 0; i < loaded; i++) {
		if (!posts[i].notify)
			continue;
		if (i != n_notify) {
			struct post tmp = posts[n_notify];
			posts[n_notify] = posts[i];
			posts[i] = tmp;
		}
		n_notify++;
	}
	if (rc == STORE_OK && n_notify)
		rc = notify_moderators(w, l, posts, n_notify);
	if (rc == STORE_OK)
		rc = store_commit(w->st);
	else
		store_rollback(w->st);
out:
	if (rc != STORE_OK)
		log_warn("moderation: announcing the held posts of %s: %s (tried again shortly)",
			 l->name, store_errmsg(w->st));
	for (size_t i = 0; i < loaded; i++)
		post_clear(&posts[i]);
	free(posts);
	store_held_todo_free(todo, n);
	return rc;
}

int moderation_announce(struct store *st, const struct config *cfg, const struct templates *tmpl,
			int64_t now, size_t *queued)
{
	struct templates *own = NULL;
	int first = STORE_OK;
	*queued = 0;
	if (!tmpl) {
		char err[256];
		tmpl = own = template_load(NULL, err, sizeof err);
		if (!tmpl) {
			log_err("moderation: built-in templates: %s", err);
			return STORE_ERR;
		}
	}
	struct sweep w = {.st = st, .cfg = cfg, .t = tmpl, .now = now};
	for (size_t k = 0; k < cfg->n_lists; k++) {
		size_t before = w.queued;
		int rc = announce_list(&w, &cfg->lists[k]);
		if (rc != STORE_OK) {
			w.queued = before; /* rolled back */
			if (first == STORE_OK)
				first = rc;
		}
	}
	template_free(own);
	*queued = w.queued;
	return first;
}
