/* subscribe: reading a message — the commands of a mail to L-request, the
 * header facts that say whether it may be answered, and what it asks of
 * each list (subscribe_prepare). Nothing here touches the database. */
#include "route.h"
#include "subscribe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "membership.h"
#include "util.h"

/* ---- commands ---- */

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* The next blank-separated word of *S (advanced past it), or 0 at the end. */
static size_t next_word(const char **s, const char **word)
{
	const char *p = *s;
	while (*p && is_space(*p))
		p++;
	const char *w = p;
	while (*p && !is_space(*p))
		p++;
	*word = w;
	*s = p;
	return (size_t)(p - w);
}

static int word_is(const char *w, size_t n, const char *name)
{
	return strlen(name) == n && !ascii_strncasecmp(w, name, n);
}

static void set_token(struct subscribe_cmd *c, const char *w, size_t n)
{
	c->token[0] = '\0';
	if (n == TOKEN_LEN) {
		memcpy(c->token, w, n);
		c->token[n] = '\0';
		if (!token_syntax_ok(c->token))
			c->token[0] = '\0';
	}
}

/* LINE as exactly one command: a command word alone, or "confirm TOKEN".
 * Anything else (more words, other words) is not a command: 0. */
static int parse_line(const char *line, struct subscribe_cmd *c)
{
	const char *s = line, *w, *arg, *extra;
	size_t n = next_word(&s, &w);
	size_t an = next_word(&s, &arg);
	size_t xn = next_word(&s, &extra);
	if (n == 0 || xn != 0)
		return 0;
	memset(c, 0, sizeof *c);
	if (word_is(w, n, "confirm")) {
		if (an == 0)
			return 0;
		c->kind = SUBSCRIBE_CMD_CONFIRM;
		set_token(c, arg, an);
		return 1;
	}
	if (an != 0)
		return 0;
	if (word_is(w, n, "subscribe") || word_is(w, n, "join"))
		c->kind = SUBSCRIBE_CMD_JOIN;
	else if (word_is(w, n, "unsubscribe") || word_is(w, n, "leave"))
		c->kind = SUBSCRIBE_CMD_LEAVE;
	else if (word_is(w, n, "help"))
		c->kind = SUBSCRIBE_CMD_HELP;
	else
		return 0;
	return 1;
}

/* S past reply and forward prefixes ("Re:", "AW:", "Fwd:", "Re[2]:") and
 * "[list tags]", in any order and number. */
static const char *strip_subject(const char *s)
{
	static const char *const prefixes[] = {"re", "aw", "sv", "vs", "fw", "fwd", "wg",
					       "tr", "antw", "rif", "ref", NULL};
	for (;;) {
		while (is_space(*s))
			s++;
		if (*s == '[') {
			const char *close = strchr(s, ']');
			if (!close)
				return s;
			s = close + 1;
			continue;
		}
		size_t n = 0;
		while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z'))
			n++;
		size_t m = n;
		if (s[m] == '[' || s[m] == '(') { /* Re[2]: */
			char close = s[m] == '[' ? ']' : ')';
			m++;
			while (s[m] >= '0' && s[m] <= '9')
				m++;
			if (s[m] != close)
				return s;
			m++;
		}
		if (n == 0 || s[m] != ':')
			return s;
		int known = 0;
		for (int i = 0; prefixes[i]; i++)
			if (word_is(s, n, prefixes[i]))
				known = 1;
		if (!known)
			return s;
		s += m + 1;
	}
}

/* "confirm TOKEN" anywhere in S (a confirmation's own Subject, quoted in a
 * reply, reads "... confirm TOKEN"). */
static int find_confirm(const char *s, struct subscribe_cmd *c)
{
	const char *w;
	size_t n;
	while ((n = next_word(&s, &w)) != 0) {
		if (!word_is(w, n, "confirm"))
			continue;
		const char *save = s, *arg;
		size_t an = next_word(&s, &arg);
		if (an == TOKEN_LEN) {
			memset(c, 0, sizeof *c);
			c->kind = SUBSCRIBE_CMD_CONFIRM;
			set_token(c, arg, an);
			if (c->token[0])
				return 1;
		}
		s = save;
	}
	return 0;
}

/* TEXT (LEN bytes) into C->text, cut at a character boundary. */
static void set_text(struct subscribe_cmd *c, const char *text, size_t len)
{
	if (len > SUBSCRIBE_TEXT_MAX) {
		len = SUBSCRIBE_TEXT_MAX;
		while (len && ((unsigned char)text[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(c->text, text, len);
	c->text[len] = '\0';
}

static void add_cmd(struct subscribe_cmd *out, size_t *n, const struct subscribe_cmd *c)
{
	for (size_t i = 0; i < *n; i++)
		if (out[i].kind == c->kind && !strcmp(out[i].token, c->token))
			return;
	if (*n < SUBSCRIBE_MAX_CMDS)
		out[(*n)++] = *c;
}

size_t subscribe_parse_commands(const char *subject, const char *body,
				struct subscribe_cmd out[SUBSCRIBE_MAX_CMDS])
{
	struct subscribe_cmd c, help;
	size_t n = 0;
	int unknown = 0; /* help.text holds the first thing not understood */

	memset(&help, 0, sizeof help);
	help.kind = SUBSCRIBE_CMD_HELP;
	if (subject && *subject) {
		const char *s = strip_subject(subject);
		if (parse_line(s, &c) || find_confirm(subject, &c)) {
			add_cmd(out, &n, &c);
		} else if (*s) {
			set_text(&help, s, strlen(s));
			unknown = 1;
		}
	}
	const char *p = body ? body : "";
	int lines = 0;
	while (*p && lines < SUBSCRIBE_MAX_LINES) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *line = p;
		p = eol ? eol + 1 : p + len;
		while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' ||
			       line[len - 1] == '\t'))
			len--;
		if (len == 2 && line[0] == '-' && line[1] == '-')
			break; /* "-- ", the signature separator */
		while (len && is_space(*line)) {
			line++;
			len--;
		}
		if (!len || *line == '>')
			continue;
		lines++;
		/* Longer than any command: not one, and not worth copying. */
		char copy[128];
		int is_cmd = len < sizeof copy;
		if (is_cmd) {
			memcpy(copy, line, len);
			copy[len] = '\0';
			is_cmd = parse_line(copy, &c);
		}
		if (!is_cmd) {
			if (!unknown)
				set_text(&help, line, len);
			break;
		}
		add_cmd(out, &n, &c);
	}
	if (n == 0)
		add_cmd(out, &n, &help);
	return n;
}

/* ---- header facts ---- */

struct head_facts {
	int auto_submitted; /* Auto-Submitted other than "no" */
	int report;         /* a DSN or other report (multipart/report) */
	int bulk;           /* Precedence: bulk, junk or list */
	int own_loop;       /* X-Loop naming one of our lists */
	int forwarded;      /* X-Dialogue-Forwarded: we forwarded it once already */
};

/* The first word of V, lowercased, at most CAP-1 bytes, ending at blanks,
 * ';' or '(' . */
static void first_token(const char *v, char *buf, size_t cap)
{
	while (is_space(*v))
		v++;
	size_t i = 0;
	while (v[i] && !is_space(v[i]) && v[i] != ';' && v[i] != '(' && i + 1 < cap) {
		char ch = v[i];
		buf[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
		i++;
	}
	buf[i] = '\0';
}

static int names_our_list(const struct config *cfg, const char *v)
{
	for (size_t i = 0; i < cfg->n_lists; i++) {
		const char *a = cfg->lists[i].address;
		size_t al = strlen(a);
		for (const char *s = v; *s; s++)
			if (!ascii_strncasecmp(s, a, al))
				return 1;
	}
	return 0;
}

static void head_field(const struct config *cfg, const char *name, size_t nl, const char *v,
		       struct head_facts *h)
{
	char tok[64];
	if (word_is(name, nl, "Auto-Submitted")) {
		first_token(v, tok, sizeof tok);
		if (strcmp(tok, "no") != 0)
			h->auto_submitted = 1;
	} else if (word_is(name, nl, "Content-Type")) {
		first_token(v, tok, sizeof tok);
		if (!strcmp(tok, "multipart/report") || !strcmp(tok, "message/delivery-status"))
			h->report = 1;
	} else if (word_is(name, nl, "Precedence")) {
		first_token(v, tok, sizeof tok);
		if (!strcmp(tok, "bulk") || !strcmp(tok, "junk") || !strcmp(tok, "list"))
			h->bulk = 1;
	} else if (word_is(name, nl, "X-Loop")) {
		if (names_our_list(cfg, v))
			h->own_loop = 1;
	} else if (word_is(name, nl, "X-Dialogue-Forwarded")) {
		h->forwarded = 1;
	}
}

/* Longest unfolded field value looked at; the fields we read are short. */
#define FIELD_MAX 998

/* Scan the header of RAW without the MIME parser (it also runs for a
 * message the parser crashed on). Linear, bounded per field. */
static void head_scan(const struct config *cfg, const char *raw, size_t len,
		      struct head_facts *h)
{
	memset(h, 0, sizeof *h);
	size_t i = 0;
	char value[FIELD_MAX + 1];
	while (i < len) {
		size_t eol = i;
		while (eol < len && raw[eol] != '\n')
			eol++;
		size_t end = eol > i && raw[eol - 1] == '\r' ? eol - 1 : eol;
		if (end == i)
			return; /* the blank line: end of the header */
		size_t colon = i;
		while (colon < end && raw[colon] != ':' && raw[colon] > ' ' && raw[colon] < 0x7f)
			colon++;
		if (colon == i || colon >= end || raw[colon] != ':')
			return; /* not a field: the header ended without a blank line */
		const char *name = raw + i;
		size_t nl = colon - i;
		size_t vl = 0;
		size_t j = colon + 1;
		for (;;) {
			for (; j < end; j++)
				if (vl < FIELD_MAX)
					value[vl++] = raw[j] ? raw[j] : ' ';
			size_t next = eol + 1;
			if (next >= len || (raw[next] != ' ' && raw[next] != '\t'))
				break;
			eol = next;
			while (eol < len && raw[eol] != '\n')
				eol++;
			end = eol > next && raw[eol - 1] == '\r' ? eol - 1 : eol;
			j = next;
		}
		value[vl] = '\0';
		head_field(cfg, name, nl, value, h);
		i = eol + 1;
	}
}

/* Why no answer may go to the sender of a message with header facts H. */
static const char *quiet_reason(const struct config *cfg, const struct head_facts *h,
				const char *mail_from, const char *from_addr, int unparsed)
{
	if (unparsed)
		return "the message could not be read";
	if (!mail_from || !*mail_from)
		return "null sender";
	if (h->auto_submitted)
		return "auto-submitted";
	if (h->report)
		return "a delivery report";
	if (h->bulk)
		return "bulk precedence";
	if (h->own_loop || route_is_own_address(cfg, mail_from) ||
	    (from_addr && route_is_own_address(cfg, from_addr)))
		return "sent by one of our list addresses";
	return NULL;
}

const char *subscribe_quiet_reason(const struct config *cfg, const char *mail_from,
				   const char *from_addr, const char *raw, size_t len,
				   int unparsed)
{
	struct head_facts h;
	head_scan(cfg, raw ? raw : "", raw ? len : 0, &h);
	return quiet_reason(cfg, &h, mail_from, from_addr, unparsed);
}

/* ---- what the message asks ---- */

static void add_act(struct subscribe_prep *out, const struct list_cfg *l,
		    enum subscribe_act_kind kind, const char *arg)
{
	arg = arg ? arg : "";
	for (size_t i = 0; i < out->n_acts; i++) {
		const struct subscribe_act *a = &out->acts[i];
		if (a->list == l && a->kind == kind && !strcmp(a->arg, arg))
			return; /* L-join and L-subscribe in one message: once */
	}
	out->acts = xrealloc(out->acts, (out->n_acts + 1) * sizeof *out->acts);
	struct subscribe_act *a = &out->acts[out->n_acts++];
	memset(a, 0, sizeof *a);
	a->list = l;
	a->kind = kind;
	snprintf(a->arg, sizeof a->arg, "%s", arg);
}

static void add_commands(struct subscribe_prep *out, const struct list_cfg *l,
			 const struct msg_info *mi)
{
	struct subscribe_cmd cmds[SUBSCRIBE_MAX_CMDS];
	size_t n = subscribe_parse_commands(mi->subject, mi->body_text, cmds);
	for (size_t i = 0; i < n; i++) {
		switch (cmds[i].kind) {
		case SUBSCRIBE_CMD_JOIN:
			add_act(out, l, SUBSCRIBE_ACT_JOIN, NULL);
			break;
		case SUBSCRIBE_CMD_LEAVE:
			add_act(out, l, SUBSCRIBE_ACT_LEAVE, NULL);
			break;
		case SUBSCRIBE_CMD_CONFIRM:
			add_act(out, l, SUBSCRIBE_ACT_CONFIRM, cmds[i].token);
			break;
		case SUBSCRIBE_CMD_HELP:
			add_act(out, l, SUBSCRIBE_ACT_HELP, cmds[i].text);
			break;
		}
	}
}

/* The token of a mail to L-confirm+DETAIL: DETAIL, or the same token as
 * it stands in the Subject ("Re: confirm TOKEN") when a relay on the way
 * changed the case of the address. */
static const char *confirm_token(const char *detail, const struct msg_info *mi, int unparsed,
				 struct subscribe_cmd *c)
{
	if (!unparsed && find_confirm(mi->subject, c) && strcmp(c->token, detail) != 0 &&
	    !ascii_strcasecmp(c->token, detail))
		return c->token;
	return detail;
}

void subscribe_prepare(const struct config *cfg, const struct store_pending *p,
		       const struct msg_info *mi, int unparsed, struct subscribe_prep *out)
{
	memset(out, 0, sizeof *out);
	int any = 0;
	for (size_t i = 0; i < p->n_rcpts && !any; i++) {
		int k = route_kind_from_name(p->rcpts[i].kind);
		any = k == RCPT_JOIN || k == RCPT_LEAVE || k == RCPT_CONFIRM || k == RCPT_REQUEST ||
		      k == RCPT_OWNER;
	}
	out->address = xstrdup("");
	out->name = xstrdup("");
	if (!any)
		return;

	struct head_facts h;
	head_scan(cfg, p->raw, p->len, &h);
	out->forwarded = h.forwarded;

	/* The address asked about: the envelope sender, which is where
	 * bounces of our answer go, else the From of a null-sender mail. */
	const char *who = *p->mail_from ? p->mail_from : (unparsed ? "" : mi->from_addr);
	char *addr = *who ? membership_address(who, NULL, 0) : NULL;
	if (addr) {
		free(out->address);
		out->address = addr;
	}
	if (!unparsed && mi->from_name && *mi->from_name) {
		free(out->name);
		out->name = xstrdup(mi->from_name);
	}
	out->quiet = quiet_reason(cfg, &h, p->mail_from, unparsed ? NULL : mi->from_addr,
				  unparsed);
	if (!out->quiet && !*out->address)
		out->quiet = "no valid sender address";

	struct subscribe_cmd subject_cmd;
	for (size_t i = 0; i < p->n_rcpts; i++) {
		const struct store_pending_rcpt *r = &p->rcpts[i];
		int k = route_kind_from_name(r->kind);
		if (k != RCPT_JOIN && k != RCPT_LEAVE && k != RCPT_CONFIRM && k != RCPT_REQUEST &&
		    k != RCPT_OWNER)
			continue;
		const struct list_cfg *l = config_find_list(cfg, r->list);
		if (!l) {
			log_warn("subscribe: message %lld: list %s is no longer configured; "
				 "%s dropped",
				 (long long)p->id, r->list, r->rcpt);
			continue;
		}
		/* A poison message is never read again: only what the
		 * envelope says (a token, owner mail) can be acted on. */
		switch (k) {
		case RCPT_JOIN:
			if (!unparsed)
				add_act(out, l, SUBSCRIBE_ACT_JOIN, NULL);
			break;
		case RCPT_LEAVE:
			if (!unparsed)
				add_act(out, l, SUBSCRIBE_ACT_LEAVE, NULL);
			break;
		case RCPT_CONFIRM:
			add_act(out, l, SUBSCRIBE_ACT_CONFIRM,
				confirm_token(r->detail, mi, unparsed, &subject_cmd));
			break;
		case RCPT_REQUEST:
			if (!unparsed)
				add_commands(out, l, mi);
			break;
		case RCPT_OWNER:
			add_act(out, l, SUBSCRIBE_ACT_OWNER, NULL);
			break;
		}
	}
}

void subscribe_prep_clear(struct subscribe_prep *prep)
{
	for (size_t i = 0; i < prep->n_acts; i++)
		free(prep->acts[i].outcome);
	free(prep->acts);
	free(prep->address);
	free(prep->name);
	memset(prep, 0, sizeof *prep);
}

void subscribe_log(const struct subscribe_prep *prep)
{
	for (size_t i = 0; i < prep->n_acts; i++)
		if (prep->acts[i].outcome)
			log_info("%s", prep->acts[i].outcome);
}
