/* dialoguectl held: the moderation queue. Listing and showing read the
 * store; every decision goes through lib/moderation.c, the same code a
 * moderator's reply by mail runs. An approved post's copies are queued
 * here, in the decision's transaction; dialogued looks at the queue every
 * second, so they go out without the CLI talking to the daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "message.h"
#include "moderation.h"
#include "output.h"
#include "template.h"

/* Bytes of a --reason we accept (the poster gets it in a mail). */
#define HELD_REASON_MAX 2000

/* The raw value of the first header field NAME of RAW, unfolded, "" when
 * absent; the caller cleans it for the terminal. Reads the header block
 * only, with no parser: it works on a poison message too. */
static char *raw_field(const char *raw, size_t len, const char *name)
{
	size_t nl = strlen(name), i = 0;
	struct sbuf b = {0};

	while (i < len) {
		size_t e = i;
		while (e < len && raw[e] != '\n')
			e++;
		size_t end = e > i && raw[e - 1] == '\r' ? e - 1 : e;
		if (end == i)
			break;
		if (end - i > nl && raw[i + nl] == ':' && !ascii_strncasecmp(raw + i, name, nl)) {
			sbuf_add(&b, raw + i + nl + 1, end - i - nl - 1);
			/* continuation lines */
			while (e + 1 < len && (raw[e + 1] == ' ' || raw[e + 1] == '\t')) {
				size_t s = e + 1;
				e = s;
				while (e < len && raw[e] != '\n')
					e++;
				end = e > s && raw[e - 1] == '\r' ? e - 1 : e;
				sbuf_add(&b, raw + s, end - s);
			}
			break;
		}
		i = e + 1;
	}
	return str_trim(sbuf_detach(&b));
}

/* The held-message object of SPEC.md plus our extras, inside an object
 * the caller opens. */
static void json_held_fields(struct json *j, const struct store_held *h)
{
	json_kv_int(j, "id", h->id);
	json_kv_string(j, "list", h->list);
	if (h->from_addr[0])
		json_kv_string(j, "from", h->from_addr);
	else
		json_kv_null(j, "from");
	json_kv_string(j, "subject", h->subject);
	json_kv_string(j, "reason", h->reason);
	out_json_time(j, "received", h->received);
	json_kv_string(j, "status", h->status);
	if (h->mail_from[0])
		json_kv_string(j, "envelope_from", h->mail_from);
	else
		json_kv_null(j, "envelope_from");
	json_kv_int(j, "size", h->size);
	out_json_time(j, "decided", h->decided);
	if (h->decided_by[0])
		json_kv_string(j, "decided_by", h->decided_by);
	else
		json_kv_null(j, "decided_by");
	if (h->decision_reason[0])
		json_kv_string(j, "decision_reason", h->decision_reason);
	else
		json_kv_null(j, "decision_reason");
}

int cmd_held_list(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	int all = 0;
	const struct cli_opt opts[] = {{"--all", NULL, &all}, {NULL, NULL, NULL}};
	const struct list_cfg *l = NULL;
	struct store_held *h = NULL;
	size_t n = 0;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, opts, pos, &npos, 0, 1)) != 0)
		goto out;
	if ((npos == 1 && (rc = ctl_list(c, pos[0], &l)) != 0) || (rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_held_list(c->st, l ? l->name : NULL, all, &h, &n)) != 0) {
		rc = ctl_store_fail(c, rc, "listing held posts");
		goto out;
	}
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_array_begin(&j);
		for (size_t i = 0; i < n; i++) {
			json_object_begin(&j);
			json_held_fields(&j, &h[i]);
			json_object_end(&j);
		}
		json_array_end(&j);
		rc = out_json_end(&j);
		goto out;
	}
	struct out_table t;
	if (all)
		out_table_init(&t, 7, "ID", "LIST", "RECEIVED", "FROM", "SUBJECT", "REASON",
			       "STATUS");
	else
		out_table_init(&t, 6, "ID", "LIST", "RECEIVED", "FROM", "SUBJECT", "REASON");
	for (size_t i = 0; i < n; i++) {
		char id[24], date[32];
		snprintf(id, sizeof id, "%lld", (long long)h[i].id);
		out_date(h[i].received, 0, date);
		const char *from = h[i].from_addr[0] ? h[i].from_addr : h[i].mail_from;
		out_table_row(&t, id, h[i].list, date, from, h[i].subject, h[i].reason,
			      h[i].status);
	}
	out_table_print(&t, stdout);
out:
	store_held_free(h, n);
	free(pos);
	return rc;
}

static int parse_id(const char *s, int64_t *id)
{
	long v = 0;
	if (cli_parse_long(s, &v) != 0 || v <= 0)
		return cli_fail(EXIT_DATAERR, "'%s' is not a held post ID (a positive number)", s);
	*id = v;
	return 0;
}

static void text_line(const char *name, const char *value)
{
	char *v = out_clean(value ? value : "", value ? strlen(value) : 0, 0);
	printf("%-12s %s\n", name, *v ? v : "-");
	free(v);
}

/* What a moderator reads before deciding: the key header fields, the
 * reason and the text body (or, for a message the parser failed on, a
 * pointer to --raw). */
static int show_text(const struct store_held *h, const char *raw, size_t len,
		     const struct msg_info *mi)
{
	char line[160], when[32];
	snprintf(line, sizeof line, "%lld (list %s, %s)", (long long)h->id, h->list, h->status);
	text_line("Held post:", line);
	text_line("Reason:", h->reason);
	fmt_iso8601(h->received, when);
	text_line("Received:", when);
	snprintf(line, sizeof line, "%s (%lld octets)", h->mail_from[0] ? h->mail_from : "<>",
		 (long long)h->size);
	text_line("Envelope:", line);
	if (h->decided) {
		char *d;
		fmt_iso8601(h->decided, when);
		if (h->decision_reason[0])
			d = xasprintf("%s %s by %s: %s", h->status, when, h->decided_by,
				      h->decision_reason);
		else
			d = xasprintf("%s %s by %s", h->status, when, h->decided_by);
		text_line("Decided:", d);
		free(d);
	}
	fputc('\n', stdout);
	static const char *const fields[] = {"From", "To", "Cc", "Date", "Message-ID", NULL};
	for (size_t i = 0; fields[i]; i++) {
		char *v = raw_field(raw, len, fields[i]);
		char name[16];
		snprintf(name, sizeof name, "%s:", fields[i]);
		if (*v || i < 2)
			text_line(name, v);
		free(v);
	}
	if (mi) {
		text_line("Subject:", mi->subject);
	} else {
		char *v = raw_field(raw, len, "Subject");
		text_line("Subject:", v);
		free(v);
	}
	fputc('\n', stdout);
	if (!mi) {
		printf("(the parser failed on this message before: it is not read again; "
		       "held show --raw prints it)\n");
	} else if (mi->body_text[strspn(mi->body_text, " \t\r\n")]) {
		char *b = out_clean(mi->body_text, strlen(mi->body_text), 1);
		size_t n = strlen(b);
		while (n && (b[n - 1] == '\n' || b[n - 1] == ' ' || b[n - 1] == '\t'))
			n--;
		printf("%.*s\n", (int)n, b);
		free(b);
	} else {
		printf("(no text body)\n");
	}
	return 0;
}

int cmd_held_show(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	int raw_flag = 0;
	const struct cli_opt opts[] = {{"--raw", NULL, &raw_flag}, {NULL, NULL, NULL}};
	struct store_held h;
	struct msg_info mi;
	int have_h = 0, have_mi = 0;
	char *raw = NULL;
	size_t len = 0;
	int64_t id = 0;
	int npos, rc;

	memset(&h, 0, sizeof h);
	if ((rc = cli_args(c, argc, argv, opts, pos, &npos, 1, 1)) != 0)
		goto out;
	if (raw_flag && c->json) {
		rc = cli_usage_err(c, "--raw prints the message itself, not JSON");
		goto out;
	}
	if ((rc = parse_id(pos[0], &id)) != 0 || (rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_held_get(c->st, id, &h)) != 0) {
		if (rc == STORE_NOTFOUND)
			rc = cli_fail(EXIT_NOINPUT, "no held post %lld", (long long)id);
		else
			rc = ctl_store_fail(c, rc, "reading the held post");
		goto out;
	}
	have_h = 1;
	if ((rc = store_held_raw(c->st, id, &raw, &len)) != 0) {
		rc = ctl_store_fail(c, rc, "reading the held message");
		goto out;
	}
	if (raw_flag) {
		fwrite(raw, 1, len, stdout);
		goto out;
	}
	/* A poison message is never parsed again, here neither. */
	if (!h.unparsed) {
		msg_parse(raw, len, c->cfg->hostname, &mi);
		have_mi = 1;
	}
	if (!c->json) {
		rc = show_text(&h, raw, len, have_mi ? &mi : NULL);
		goto out;
	}
	struct json j;
	out_json_begin(&j);
	json_object_begin(&j);
	json_held_fields(&j, &h);
	static const char *const fields[][2] = {{"From", "from_header"},
						{"To", "to"},
						{"Cc", "cc"},
						{"Date", "date"},
						{"Message-ID", "message_id"}};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		char *v = raw_field(raw, len, fields[i][0]);
		json_kv_string(&j, fields[i][1], v);
		free(v);
	}
	json_kv_bool(&j, "unparsed", h.unparsed);
	if (have_mi)
		json_kv_string(&j, "body", mi.body_text);
	else
		json_kv_null(&j, "body");
	json_object_end(&j);
	rc = out_json_end(&j);
out:
	if (have_mi)
		msg_info_free(&mi);
	if (have_h)
		store_held_clear(&h);
	free(raw);
	free(pos);
	return rc;
}

/* The exit code for a failed decision: busy is temporary, the rest not. */
static int decide_fail(const char *msg)
{
	if (strstr(msg, "locked") || strstr(msg, "busy"))
		return cli_fail(EXIT_TEMPFAIL, "database is busy, try again: %s", msg);
	return cli_fail(EXIT_SOFTWARE, "%s", msg);
}

static const char *result_name(enum moderation_result r)
{
	switch (r) {
	case MODERATION_DONE:
		return "done";
	case MODERATION_ALREADY:
		return "already";
	case MODERATION_NOTFOUND:
		return "not_found";
	case MODERATION_ERROR:
		break;
	}
	return "error";
}

/* What a run of decisions prints: a line each, or one JSON array. */
struct report {
	struct ctl *c;
	struct json j;
	enum moderation_action action;
	int final; /* the exit code the decisions add */
	int stop;  /* a database failure: decide nothing more */
};

static void report_begin(struct report *r, struct ctl *c, enum moderation_action action)
{
	memset(r, 0, sizeof *r);
	r->c = c;
	r->action = action;
	if (c->json) {
		out_json_begin(&r->j);
		json_array_begin(&r->j);
	}
}

/* One decision: a post that does not exist is reported (exit 66); a post
 * decided before is a no-op reported as such (exit 0); a database failure
 * stops the run. */
static void report_one(void *arg, int64_t id, enum moderation_result res, const char *msg)
{
	struct report *r = arg;
	struct ctl *c = r->c;
	struct store_held h;
	int have = res != MODERATION_NOTFOUND && res != MODERATION_ERROR &&
		   store_held_get(c->st, id, &h) == STORE_OK;
	if (c->json) {
		json_object_begin(&r->j);
		json_kv_int(&r->j, "id", id);
		json_kv_string(&r->j, "action", moderation_action_name(r->action));
		json_kv_string(&r->j, "result", result_name(res));
		if (have) {
			json_kv_string(&r->j, "list", h.list);
			json_kv_string(&r->j, "status", h.status);
		} else {
			json_kv_null(&r->j, "list");
			json_kv_null(&r->j, "status");
		}
		json_kv_string(&r->j, "message", msg);
		json_object_end(&r->j);
	}
	if (have)
		store_held_clear(&h);
	switch (res) {
	case MODERATION_DONE:
		if (!c->json)
			printf("%s\n", msg);
		break;
	case MODERATION_ALREADY:
		if (!c->json)
			printf("%s: nothing done\n", msg);
		break;
	case MODERATION_NOTFOUND:
		cli_err("%s", msg);
		r->final = EXIT_NOINPUT;
		break;
	case MODERATION_ERROR:
		r->final = decide_fail(msg);
		r->stop = 1;
		break;
	}
}

static int report_end(struct report *r)
{
	int rc = 0;
	if (r->c->json) {
		json_array_end(&r->j);
		rc = out_json_end(&r->j);
	}
	return rc ? rc : r->final;
}

/* The templates for the poster's notices of ACTION (none needed: NULL). */
static int load_templates(struct ctl *c, enum moderation_action action, struct templates **t)
{
	char err[1024];
	*t = NULL;
	if (action != MODERATION_REJECT && action != MODERATION_EXPIRE &&
	    action != MODERATION_WITHDRAW)
		return 0;
	*t = template_load(c->cfg->templates, err, sizeof err);
	return *t ? 0 : cli_fail(EXIT_CONFIG, "templates: %s", err);
}

/* Decide IDS[0..n) in turn, each in its own transaction (see report_one). */
static int decide_all(struct ctl *c, enum moderation_action action, char **ids, int n,
		      const char *reason, int member_too)
{
	int64_t *v = xcalloc((size_t)n, sizeof *v);
	struct templates *t = NULL;
	struct report r;
	int rc = 0;

	for (int i = 0; i < n; i++)
		if ((rc = parse_id(ids[i], &v[i])) != 0)
			goto out;
	if ((rc = ctl_store(c)) != 0 || (rc = load_templates(c, action, &t)) != 0)
		goto out;
	report_begin(&r, c, action);
	for (int i = 0; i < n && !r.stop; i++) {
		char msg[512];
		struct moderation_request req = {
			.held_id = v[i],
			.action = action,
			.reason = reason,
			.member_too = member_too,
			.by = "cli",
		};
		enum moderation_result res =
			moderation_decide(c->st, c->cfg, t, &req, msg, sizeof msg);
		report_one(&r, v[i], res, msg);
	}
	rc = report_end(&r);
out:
	template_free(t);
	free(v);
	return rc;
}

int cmd_held_approve(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	int member = 0, npos;
	const struct cli_opt opts[] = {{"--member", NULL, &member}, {NULL, NULL, NULL}};
	int rc = cli_args(c, argc, argv, opts, pos, &npos, 1, -1);
	if (rc == 0)
		rc = decide_all(c, MODERATION_APPROVE, pos, npos, NULL, member);
	free(pos);
	return rc;
}

int cmd_held_reject(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const char *reason = NULL;
	int npos;
	const struct cli_opt opts[] = {{"--reason", &reason, NULL}, {NULL, NULL, NULL}};
	int rc = cli_args(c, argc, argv, opts, pos, &npos, 1, -1);
	if (rc == 0 && reason && strlen(reason) > HELD_REASON_MAX)
		rc = cli_fail(EXIT_DATAERR, "--reason is longer than %d bytes", HELD_REASON_MAX);
	if (rc == 0)
		rc = decide_all(c, MODERATION_REJECT, pos, npos, reason, 0);
	free(pos);
	return rc;
}

int cmd_held_discard(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	int npos;
	int rc = cli_args(c, argc, argv, NULL, pos, &npos, 1, -1);
	if (rc == 0)
		rc = decide_all(c, MODERATION_DISCARD, pos, npos, NULL, 0);
	free(pos);
	return rc;
}

/* What dialogued's periodic sweep does, by hand (or from cron): every post
 * held past its list's hold_expire expires and its poster is told. */
int cmd_held_expire(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const struct list_cfg *only = NULL;
	struct templates *t = NULL;
	struct report r;
	size_t n = 0;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 0, 1)) != 0)
		goto out;
	if ((npos == 1 && (rc = ctl_list(c, pos[0], &only)) != 0) || (rc = ctl_store(c)) != 0 ||
	    (rc = load_templates(c, MODERATION_EXPIRE, &t)) != 0)
		goto out;
	report_begin(&r, c, MODERATION_EXPIRE);
	int mrc = moderation_expire_due(c->st, c->cfg, t, only, now_epoch(), 0, &n, report_one,
					&r);
	/* A failed decision was reported; a failed search was not. */
	if (mrc != STORE_OK && !r.final)
		r.final = ctl_store_fail(c, mrc, "finding expired held posts");
	if (n == 0 && !r.final && !c->json)
		printf("no held post has expired\n");
	rc = report_end(&r);
out:
	template_free(t);
	free(pos);
	return rc;
}
