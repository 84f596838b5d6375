/* dialoguectl members: list, add, remove, set, import, export, and the
 * moderator's side of subscriptions: invite, pending, approve, deny. The
 * rules live in lib/membership.c and lib/subscribe.c; this file parses
 * arguments and prints. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "membership.h"
#include "output.h"
#include "subscribe.h"
#include "template.h"

static void text_member(const struct store_member *m)
{
	char joined[32], ends[32];
	char *name = out_clean(m->name, strlen(m->name), 0);
	char *group = out_clean(m->stakeholder, strlen(m->stakeholder), 0);
	char *addr = out_clean(m->address, strlen(m->address), 0);
	out_date(m->joined, 0, joined);
	out_date(m->term_ends, 1, ends);
	printf("address      %s\n"
	       "name         %s\n"
	       "stakeholder  %s\n"
	       "status       %s\n"
	       "delivery     %s\n"
	       "moderated    %s\n"
	       "joined       %s\n"
	       "term_ends    %s\n",
	       addr, *name ? name : "-", *group ? group : "-", m->status, m->delivery,
	       m->moderated ? "yes" : "no", joined, ends);
	free(name);
	free(group);
	free(addr);
}

/* Print member ADDR (normalised) of L as --json or text. */
static int show_member(struct ctl *c, const struct list_cfg *l, const char *addr)
{
	struct store_member m;
	int rc = store_member_get(c->st, l->name, addr, &m);
	if (rc != 0)
		return ctl_store_fail(c, rc, "reading the member back");
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		out_json_member(&j, &m);
		rc = out_json_end(&j);
	} else {
		text_member(&m);
	}
	store_member_free(&m);
	return rc;
}

/* Normalised ADDR, or NULL with the error reported (*rc = 65). */
static char *user_address(const char *s, int *rc)
{
	char msg[512];
	char *a = membership_address(s, msg, sizeof msg);
	if (!a)
		*rc = cli_fail(EXIT_DATAERR, "%s", msg);
	return a;
}

/* The members of the list named by the one positional argument. */
static int load_members(struct ctl *c, int argc, char **argv, const struct list_cfg **l,
			struct store_member **m, size_t *n)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	int npos, rc;
	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 1, 1)) == 0 &&
	    (rc = ctl_list(c, pos[0], l)) == 0 && (rc = ctl_store(c)) == 0 &&
	    (rc = store_members_list(c->st, (*l)->name, m, n)) != 0)
		rc = ctl_store_fail(c, rc, "listing members");
	free(pos);
	return rc;
}

/* The members whose status is STATUS (all when NULL) as a JSON array. */
static int json_members(const struct store_member *m, size_t n, const char *status)
{
	struct json j;
	out_json_begin(&j);
	json_array_begin(&j);
	for (size_t i = 0; i < n; i++)
		if (!status || !strcmp(m[i].status, status))
			out_json_member(&j, &m[i]);
	json_array_end(&j);
	return out_json_end(&j);
}

int cmd_members_list(struct ctl *c, int argc, char **argv)
{
	const struct list_cfg *l;
	struct store_member *m = NULL;
	size_t n = 0;
	int rc;

	if ((rc = load_members(c, argc, argv, &l, &m, &n)) != 0)
		goto out;
	if (c->json) {
		rc = json_members(m, n, NULL);
		goto out;
	}
	struct out_table t;
	out_table_init(&t, 8, "ADDRESS", "NAME", "STAKEHOLDER", "STATUS", "DELIVERY", "MODERATED",
		       "JOINED", "TERM ENDS");
	for (size_t i = 0; i < n; i++) {
		char joined[32], ends[32];
		out_date(m[i].joined, 1, joined);
		out_date(m[i].term_ends, 1, ends);
		out_table_row(&t, m[i].address, m[i].name, m[i].stakeholder, m[i].status,
			      m[i].delivery, m[i].moderated ? "yes" : "no", joined, ends);
	}
	out_table_print(&t, stdout);
out:
	store_members_free(m, n);
	return rc;
}

/* The mail templates of the config, checked as dialogued checks them. */
static int ctl_templates(struct ctl *c, struct templates **out)
{
	char err[768];
	*out = template_load(c->cfg->templates, err, sizeof err);
	if (!*out)
		return cli_fail(EXIT_CONFIG, "%s", err);
	if (subscribe_check_templates(*out, c->cfg, err, sizeof err) < 0) {
		template_free(*out);
		*out = NULL;
		return cli_fail(EXIT_CONFIG, "%s", err);
	}
	return 0;
}

static int invite_member(struct ctl *c, const struct list_cfg *l, const char *address,
			 const char *name, const char *group)
{
	struct templates *t;
	char msg[512];
	int64_t expires = 0;
	int rc = ctl_templates(c, &t);
	if (rc != 0)
		return rc;
	rc = subscribe_invite(c->st, c->cfg, t, l, address, name, group, &expires, msg,
			      sizeof msg);
	template_free(t);
	if (rc != MEMBERSHIP_OK)
		return ctl_membership_fail(rc, msg);
	char *addr = user_address(address, &rc);
	if (!addr)
		return rc;
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_object_begin(&j);
		json_kv_string(&j, "list", l->name);
		json_kv_string(&j, "address", addr);
		json_kv_bool(&j, "invited", 1);
		out_json_time(&j, "expires", expires);
		json_object_end(&j);
		rc = out_json_end(&j);
	} else {
		char when[32];
		char *shown = out_clean(addr, strlen(addr), 0);
		out_date(expires, 0, when);
		printf("invited %s to %s (the invitation is valid until %s UTC)\n", shown, l->name,
		       when);
		free(shown);
	}
	free(addr);
	return rc;
}

int cmd_members_add(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const char *name = NULL, *group = NULL;
	int invite = 0;
	const struct cli_opt opts[] = {
		{"--name", &name, NULL},
		{"--stakeholder", &group, NULL},
		{"--invite", NULL, &invite},
		{NULL, NULL, NULL},
	};
	const struct list_cfg *l;
	char msg[512];
	char *addr = NULL;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, opts, pos, &npos, 2, 2)) != 0)
		goto out;
	if ((rc = ctl_list(c, pos[0], &l)) != 0 || (rc = ctl_store(c)) != 0)
		goto out;
	if (invite) {
		rc = invite_member(c, l, pos[1], name, group);
		goto out;
	}
	struct membership_new m = {
		.address = pos[1],
		.name = name,
		.stakeholder = group,
	};
	if ((rc = membership_add(c->st, l, &m, msg, sizeof msg)) != MEMBERSHIP_OK) {
		rc = ctl_membership_fail(rc, msg);
		goto out;
	}
	if (!(addr = user_address(pos[1], &rc)))
		goto out;
	if (c->json) {
		rc = show_member(c, l, addr);
	} else {
		char *shown = out_clean(addr, strlen(addr), 0);
		printf("added %s to %s\n", shown, l->name);
		free(shown);
	}
out:
	free(addr);
	free(pos);
	return rc;
}

int cmd_members_pending(struct ctl *c, int argc, char **argv)
{
	const struct list_cfg *l;
	struct store_member *m = NULL;
	size_t n = 0;
	int rc;

	if ((rc = load_members(c, argc, argv, &l, &m, &n)) != 0)
		goto out;
	if (c->json) {
		rc = json_members(m, n, "pending");
		goto out;
	}
	struct out_table t;
	out_table_init(&t, 4, "ADDRESS", "NAME", "STAKEHOLDER", "ASKED");
	for (size_t i = 0; i < n; i++) {
		char asked[32];
		if (strcmp(m[i].status, "pending"))
			continue;
		out_date(m[i].joined, 0, asked);
		out_table_row(&t, m[i].address, m[i].name, m[i].stakeholder, asked);
	}
	out_table_print(&t, stdout);
out:
	store_members_free(m, n);
	return rc;
}

/* members approve / deny: REASON is NULL for approve. */
static int decide(struct ctl *c, int argc, char **argv, int approve)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const char *reason = NULL;
	const struct cli_opt opts[] = {
		{"--reason", &reason, NULL},
		{NULL, NULL, NULL},
	};
	const struct list_cfg *l;
	struct templates *t = NULL;
	char msg[512];
	char *addr = NULL;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, approve ? NULL : opts, pos, &npos, 2, 2)) != 0 ||
	    (rc = ctl_list(c, pos[0], &l)) != 0 || (rc = ctl_store(c)) != 0 ||
	    (rc = ctl_templates(c, &t)) != 0)
		goto out;
	if (!(addr = user_address(pos[1], &rc)))
		goto out;
	rc = approve ? subscribe_approve(c->st, c->cfg, t, l, addr, msg, sizeof msg)
		     : subscribe_deny(c->st, c->cfg, t, l, addr, reason, msg, sizeof msg);
	if (rc != MEMBERSHIP_OK) {
		rc = ctl_membership_fail(rc, msg);
		goto out;
	}
	if (approve && c->json) {
		rc = show_member(c, l, addr);
	} else if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_object_begin(&j);
		json_kv_string(&j, "list", l->name);
		json_kv_string(&j, "address", addr);
		json_kv_bool(&j, "denied", 1);
		json_object_end(&j);
		rc = out_json_end(&j);
	} else {
		char *shown = out_clean(addr, strlen(addr), 0);
		printf("%s %s for %s; they were told\n", approve ? "approved" : "denied", shown,
		       l->name);
		free(shown);
	}
out:
	template_free(t);
	free(addr);
	free(pos);
	return rc;
}

int cmd_members_approve(struct ctl *c, int argc, char **argv)
{
	return decide(c, argc, argv, 1);
}

int cmd_members_deny(struct ctl *c, int argc, char **argv)
{
	return decide(c, argc, argv, 0);
}

int cmd_members_remove(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const struct list_cfg *l;
	char msg[512];
	char *addr = NULL;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 2, 2)) != 0 ||
	    (rc = ctl_list(c, pos[0], &l)) != 0 || (rc = ctl_store(c)) != 0)
		goto out;
	if (!(addr = user_address(pos[1], &rc)))
		goto out;
	if ((rc = membership_remove(c->st, l, addr, msg, sizeof msg)) != MEMBERSHIP_OK) {
		rc = ctl_membership_fail(rc, msg);
		goto out;
	}
	char *shown = out_clean(addr, strlen(addr), 0);
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_object_begin(&j);
		json_kv_string(&j, "list", l->name);
		json_kv_string(&j, "address", addr);
		json_kv_bool(&j, "removed", 1);
		json_object_end(&j);
		rc = out_json_end(&j);
	} else {
		printf("removed %s from %s\n", shown, l->name);
	}
	free(shown);
out:
	free(addr);
	free(pos);
	return rc;
}

int cmd_members_set(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	char **keys = NULL;
	const struct list_cfg *l;
	char msg[512];
	char *addr = NULL;
	int npos, nset = 0, rc;

	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 3, -1)) != 0)
		goto out;
	nset = npos - 2;
	keys = xcalloc((size_t)nset, sizeof *keys);
	for (int i = 0; i < nset; i++) {
		const char *kv = pos[2 + i];
		const char *eq = strchr(kv, '=');
		if (!eq || eq == kv) {
			char *shown = out_clean(kv, strlen(kv), 0);
			rc = cli_fail(EXIT_DATAERR, "bad setting '%s': expected KEY=VALUE", shown);
			free(shown);
			goto out;
		}
		keys[i] = xstrndup(kv, (size_t)(eq - kv));
	}
	if ((rc = ctl_list(c, pos[0], &l)) != 0)
		goto out;
	/* Check every setting before changing any. */
	for (int i = 0; i < nset; i++) {
		const char *skey;
		char *sval;
		const char *value = strchr(pos[2 + i], '=') + 1;
		rc = membership_check_setting(l, keys[i], value, &skey, &sval, msg, sizeof msg);
		free(sval);
		if (rc != MEMBERSHIP_OK) {
			rc = ctl_membership_fail(rc, msg);
			goto out;
		}
	}
	if (!(addr = user_address(pos[1], &rc)) || (rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_begin(c->st)) != 0) {
		rc = ctl_store_fail(c, rc, "starting a transaction");
		goto out;
	}
	for (int i = 0; i < nset; i++) {
		const char *value = strchr(pos[2 + i], '=') + 1;
		rc = membership_set(c->st, l, addr, keys[i], value, msg, sizeof msg);
		if (rc != MEMBERSHIP_OK) {
			store_rollback(c->st);
			rc = ctl_membership_fail(rc, msg);
			goto out;
		}
	}
	if ((rc = store_commit(c->st)) != 0) {
		store_rollback(c->st);
		rc = ctl_store_fail(c, rc, "saving the changes");
		goto out;
	}
	rc = show_member(c, l, addr);
out:
	for (int i = 0; keys && i < nset; i++)
		free(keys[i]);
	free(keys);
	free(addr);
	free(pos);
	return rc;
}

/* ---- CSV import and export ---- */

struct import_row {
	long line;
	char *fields[3]; /* address, name, stakeholder */
};

static void rows_free(struct import_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 3; k++)
			free(rows[i].fields[k]);
	free(rows);
}

static int blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t')
			return 0;
	return 1;
}

/* Parse DATA into rows, skipping blank lines and an optional header.
 * Reports the first malformed line itself; returns 0 or EXIT_DATAERR. */
static int parse_rows(const char *label, const char *data, size_t len, struct import_row **out,
		      size_t *n_out)
{
	struct csv_reader r;
	struct import_row *rows = NULL;
	size_t n = 0, cap = 0;
	char *f[CSV_MAX_FIELDS];
	size_t nf;
	long line;
	char err[256];
	int first = 1, got;

	csv_init(&r, data, len);
	while ((got = csv_read(&r, f, &nf, &line, err, sizeof err)) == 1) {
		for (size_t k = 0; k < nf; k++)
			str_trim(f[k]);
		int skip = nf == 1 && blank(f[0]);
		if (!skip && first && !ascii_strcasecmp(f[0], "address"))
			skip = 1; /* the header line */
		if (!skip)
			first = 0;
		if (!skip && nf > 3) {
			for (size_t k = 0; k < nf; k++)
				free(f[k]);
			rows_free(rows, n);
			return cli_fail(EXIT_DATAERR,
					"%s:%ld: %zu fields, expected address,name,stakeholder",
					label, line, nf);
		}
		if (skip) {
			for (size_t k = 0; k < nf; k++)
				free(f[k]);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			rows = xrealloc(rows, cap * sizeof *rows);
		}
		rows[n].line = line;
		for (size_t k = 0; k < 3; k++)
			rows[n].fields[k] = k < nf ? f[k] : NULL;
		n++;
	}
	if (got < 0) {
		rows_free(rows, n);
		return cli_fail(EXIT_DATAERR, "%s:%ld: %s; nothing imported", label, line,
				err);
	}
	*out = rows;
	*n_out = n;
	return 0;
}

int cmd_members_import(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const struct list_cfg *l;
	struct import_row *rows = NULL;
	size_t n = 0, added = 0, skipped = 0;
	char *data = NULL;
	size_t len;
	char msg[512];
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 2, 2)) != 0 ||
	    (rc = ctl_list(c, pos[0], &l)) != 0)
		goto out;
	const char *path = pos[1];
	const char *label = strcmp(path, "-") ? path : "<stdin>";
	data = read_file_all(strcmp(path, "-") ? path : "/dev/stdin", &len);
	if (!data) {
		rc = cli_fail(EXIT_NOINPUT, "cannot read %s: %s", label, strerror(errno));
		goto out;
	}
	if ((rc = parse_rows(label, data, len, &rows, &n)) != 0)
		goto out;
	/* Every row must pass the list's rules before anything is written. */
	for (size_t i = 0; i < n; i++) {
		struct membership_new m = {
			.address = rows[i].fields[0],
			.name = rows[i].fields[1],
			.stakeholder = rows[i].fields[2],
		};
		struct store_member row;
		char *abuf;
		rc = membership_check(l, &m, &row, &abuf, msg, sizeof msg);
		free(abuf);
		if (rc != MEMBERSHIP_OK) {
			rc = cli_fail(EXIT_DATAERR, "%s:%ld: %s; nothing imported", label,
				      rows[i].line, msg);
			goto out;
		}
	}
	if ((rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_begin(c->st)) != 0) {
		rc = ctl_store_fail(c, rc, "starting a transaction");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct membership_new m = {
			.address = rows[i].fields[0],
			.name = rows[i].fields[1],
			.stakeholder = rows[i].fields[2],
		};
		rc = membership_add(c->st, l, &m, msg, sizeof msg);
		if (rc == MEMBERSHIP_EXISTS) {
			skipped++; /* already a member, or twice in the file */
			continue;
		}
		if (rc != MEMBERSHIP_OK) {
			store_rollback(c->st);
			if (rc == MEMBERSHIP_FULL || rc == MEMBERSHIP_BAD_ADDRESS ||
			    rc == MEMBERSHIP_BAD_VALUE)
				rc = cli_fail(EXIT_DATAERR, "%s:%ld: %s; nothing imported", label,
					      rows[i].line, msg);
			else
				rc = ctl_membership_fail(rc, msg);
			goto out;
		}
		added++;
	}
	if ((rc = store_commit(c->st)) != 0) {
		store_rollback(c->st);
		rc = ctl_store_fail(c, rc, "saving the import");
		goto out;
	}
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_object_begin(&j);
		json_kv_string(&j, "list", l->name);
		json_kv_int(&j, "imported", (int64_t)added);
		json_kv_int(&j, "skipped", (int64_t)skipped);
		json_object_end(&j);
		rc = out_json_end(&j);
	} else {
		printf("imported %zu member%s into %s", added, added == 1 ? "" : "s", l->name);
		if (skipped)
			printf(" (%zu already member%s, skipped)", skipped,
			       skipped == 1 ? "" : "s");
		printf("\n");
	}
out:
	rows_free(rows, n);
	free(data);
	free(pos);
	return rc;
}

int cmd_members_export(struct ctl *c, int argc, char **argv)
{
	const struct list_cfg *l;
	struct store_member *m = NULL;
	size_t n = 0;
	int rc;

	if ((rc = load_members(c, argc, argv, &l, &m, &n)) != 0)
		goto out;
	/* Only active members: exporting someone who never confirmed and
	 * importing them elsewhere would subscribe them without consent. */
	if (c->json) {
		rc = json_members(m, n, "active");
		goto out;
	}
	fputs("address,name,stakeholder\n", stdout);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(m[i].status, "active"))
			continue;
		csv_write_field(stdout, m[i].address);
		fputc(',', stdout);
		csv_write_field(stdout, m[i].name);
		fputc(',', stdout);
		csv_write_field(stdout, m[i].stakeholder);
		fputc('\n', stdout);
	}
out:
	store_members_free(m, n);
	return rc;
}
