/* dialoguectl archive: list, show, search, export (mboxrd). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mbox.h"
#include "output.h"

#define ARCHIVE_DEFAULT_LIMIT 50

static int parse_limit(const char *s, long *limit)
{
	*limit = ARCHIVE_DEFAULT_LIMIT;
	if (s && cli_parse_long(s, limit) != 0)
		return cli_fail(EXIT_DATAERR, "--limit needs a number (0 = all)");
	return 0;
}

/* "Name <addr>" or "addr", for text output. */
static char *from_text(const struct store_archived *a)
{
	if (a->from_name && *a->from_name)
		return xasprintf("%s <%s>", a->from_name, a->from_addr);
	return xstrdup(a->from_addr && *a->from_addr ? a->from_addr : "-");
}

static int print_archived(struct ctl *c, struct store_archived *a, size_t n)
{
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_array_begin(&j);
		for (size_t i = 0; i < n; i++) {
			json_object_begin(&j);
			out_json_archived_fields(&j, &a[i]);
			json_object_end(&j);
		}
		json_array_end(&j);
		return out_json_end(&j);
	}
	struct out_table t;
	out_table_init(&t, 4, "ID", "DATE", "FROM", "SUBJECT");
	for (size_t i = 0; i < n; i++) {
		char id[24], date[32];
		snprintf(id, sizeof id, "%lld", (long long)a[i].id);
		out_date(a[i].date > 0 ? a[i].date : a[i].received, 0, date);
		char *from = from_text(&a[i]);
		out_table_row(&t, id, date, from, a[i].subject);
		free(from);
	}
	out_table_print(&t, stdout);
	return 0;
}

int cmd_archive_list(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const char *limit_s = NULL;
	const struct cli_opt opts[] = {{"--limit", &limit_s, NULL}, {NULL, NULL, NULL}};
	const struct list_cfg *l;
	struct store_archived *a = NULL;
	size_t n = 0;
	long limit;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, opts, pos, &npos, 1, 1)) != 0 ||
	    (rc = parse_limit(limit_s, &limit)) != 0 || (rc = ctl_list(c, pos[0], &l)) != 0 ||
	    (rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_archive_list(c->st, l->name, limit, &a, &n)) != 0) {
		rc = ctl_store_fail(c, rc, "listing the archive");
		goto out;
	}
	rc = print_archived(c, a, n);
out:
	if (a)
		store_archived_free(a, n);
	free(pos);
	return rc;
}

int cmd_archive_search(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const char *limit_s = NULL;
	const struct cli_opt opts[] = {{"--limit", &limit_s, NULL}, {NULL, NULL, NULL}};
	const struct list_cfg *l;
	struct store_archived *a = NULL;
	struct sbuf q = {0};
	size_t n = 0;
	long limit;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, opts, pos, &npos, 2, -1)) != 0 ||
	    (rc = parse_limit(limit_s, &limit)) != 0 || (rc = ctl_list(c, pos[0], &l)) != 0)
		goto out;
	/* Unquoted words on the command line form one query. */
	for (int i = 1; i < npos; i++)
		sbuf_printf(&q, "%s%s", i > 1 ? " " : "", pos[i]);
	if (!q.len || !*str_trim(q.buf)) {
		rc = cli_fail(EXIT_DATAERR, "empty search query");
		goto out;
	}
	if ((rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_archive_search(c->st, l->name, q.buf, limit, &a, &n)) != 0) {
		rc = ctl_store_fail(c, rc, "searching the archive");
		goto out;
	}
	rc = print_archived(c, a, n);
out:
	if (a)
		store_archived_free(a, n);
	sbuf_free(&q);
	free(pos);
	return rc;
}

static void text_header(const char *name, const char *value)
{
	char *v = out_clean(value ? value : "", value ? strlen(value) : 0, 0);
	printf("%-12s %s\n", name, *v ? v : "-");
	free(v);
}

int cmd_archive_show(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	int raw_flag = 0;
	const struct cli_opt opts[] = {{"--raw", NULL, &raw_flag}, {NULL, NULL, NULL}};
	struct store_archived a;
	int have_a = 0;
	char *raw = NULL, *body = NULL;
	size_t len = 0;
	long id;
	int npos, rc;

	memset(&a, 0, sizeof a);
	if ((rc = cli_args(c, argc, argv, opts, pos, &npos, 1, 1)) != 0)
		goto out;
	if (raw_flag && c->json) {
		rc = cli_usage_err(c, "--raw prints the message itself, not JSON");
		goto out;
	}
	if (cli_parse_long(pos[0], &id) != 0 || id <= 0) {
		rc = cli_fail(EXIT_DATAERR, "a message ID is a positive number");
		goto out;
	}
	if ((rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_archive_get(c->st, id, &a)) != 0) {
		if (rc == STORE_NOTFOUND)
			rc = cli_fail(EXIT_NOINPUT, "no such message: %ld", id);
		else
			rc = ctl_store_fail(c, rc, "reading the archive");
		goto out;
	}
	have_a = 1;
	if ((rc = store_archive_raw(c->st, id, &raw, &len, &body)) != 0) {
		rc = ctl_store_fail(c, rc, "reading the message");
		goto out;
	}
	if (raw_flag) {
		fwrite(raw, 1, len, stdout);
		goto out;
	}
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_object_begin(&j);
		out_json_archived_fields(&j, &a);
		json_kv_string(&j, "body", body ? body : "");
		json_object_end(&j);
		rc = out_json_end(&j);
		goto out;
	}
	char idline[96], date[32];
	snprintf(idline, sizeof idline, "%ld (list %s, thread %lld)", id, a.list,
		 (long long)a.thread_id);
	fmt_iso8601(a.date > 0 ? a.date : a.received, date);
	char *from = from_text(&a);
	char *mid = a.message_id && *a.message_id ? xasprintf("<%s>", a.message_id) : NULL;
	char *irt = a.in_reply_to && *a.in_reply_to ? xasprintf("<%s>", a.in_reply_to) : NULL;
	text_header("Message:", idline);
	text_header("Message-ID:", mid);
	text_header("From:", from);
	text_header("Date:", date);
	text_header("Subject:", a.subject);
	if (irt)
		text_header("In-Reply-To:", irt);
	free(from);
	free(mid);
	free(irt);
	fputc('\n', stdout);
	if (body && *body) {
		char *b = out_clean(body, strlen(body), 1);
		fputs(b, stdout);
		if (b[strlen(b) - 1] != '\n')
			fputc('\n', stdout);
		free(b);
	} else {
		fputs(a.unparsed ? "(this message could not be parsed: see archive show --raw)\n"
				 : "(no text body: see archive show --raw)\n",
		      stdout);
	}
out:
	if (have_a)
		store_archived_clear(&a);
	free(raw);
	free(body);
	free(pos);
	return rc;
}

struct export_state {
	FILE *f;
	long count;
	int failed;
};

static int export_one(void *arg, const struct store_archived *a, const char *raw, size_t len)
{
	struct export_state *x = arg;
	/* The envelope sender, as an MTA's mbox has it ("" for a bounce, which
	 * mbox_write writes as MAILER-DAEMON). */
	const char *sender = a->mail_from ? a->mail_from : a->from_addr;
	if (mbox_write(x->f, sender, a->received, raw, len) != 0) {
		x->failed = 1;
		return 1;
	}
	x->count++;
	return 0;
}

int cmd_archive_export(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const char *output = NULL;
	const struct cli_opt opts[] = {{"--output", &output, NULL}, {NULL, NULL, NULL}};
	const struct list_cfg *l;
	struct export_state x = {0};
	char *tmp = NULL;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, opts, pos, &npos, 1, 1)) != 0)
		goto out;
	if (output && (!*output || !strcmp(output, "-")))
		output = NULL;
	if (c->json && !output) {
		rc = cli_usage_err(c, "the export is mbox: --json needs --output FILE");
		goto out;
	}
	if ((rc = ctl_list(c, pos[0], &l)) != 0 || (rc = ctl_store(c)) != 0)
		goto out;
	if (output) {
		/* Write beside the target and rename, so a failed export never
		 * leaves a truncated mbox under the name asked for. */
		tmp = xasprintf("%s.XXXXXX", output);
		int fd = mkstemp(tmp);
		if (fd < 0) {
			rc = cli_fail(CLI_EXIT_CANTCREAT, "cannot create %s: %s", output,
				      strerror(errno));
			free(tmp);
			tmp = NULL;
			goto out;
		}
		mode_t mask = umask(0);
		umask(mask);
		fchmod(fd, 0666 & ~mask);
		x.f = fdopen(fd, "w");
		if (!x.f) {
			close(fd);
			rc = cli_fail(EXIT_IOERR, "cannot write %s: %s", output, strerror(errno));
			goto out;
		}
	} else {
		x.f = stdout;
	}
	rc = store_archive_each(c->st, l->name, export_one, &x);
	if (rc != 0) {
		rc = ctl_store_fail(c, rc, "reading the archive");
		goto out;
	}
	if (x.failed || fflush(x.f) != 0 || ferror(x.f)) {
		rc = cli_fail(EXIT_IOERR, "writing %s: %s", output ? output : "the output",
			      strerror(errno));
		goto out;
	}
	if (output) {
		int bad = fsync(fileno(x.f)) != 0;
		bad |= fclose(x.f) != 0;
		x.f = NULL;
		if (bad || rename(tmp, output) != 0) {
			rc = cli_fail(EXIT_IOERR, "writing %s: %s", output, strerror(errno));
			goto out;
		}
		free(tmp);
		tmp = NULL;
		if (c->json) {
			struct json j;
			out_json_begin(&j);
			json_object_begin(&j);
			json_kv_string(&j, "list", l->name);
			json_kv_string(&j, "output", output);
			json_kv_int(&j, "messages", x.count);
			json_object_end(&j);
			rc = out_json_end(&j);
		} else {
			printf("exported %ld message%s of %s to %s\n", x.count,
			       x.count == 1 ? "" : "s", l->name, output);
		}
	}
out:
	if (x.f && x.f != stdout)
		fclose(x.f);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(pos);
	return rc;
}
