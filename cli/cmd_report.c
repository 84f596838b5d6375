/* dialoguectl report: a list's composition — members per stakeholder group
 * against its cap, the groups nobody represents, terms ending soon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "membership.h"
#include "output.h"

static int is_member(const struct store_member *m)
{
	return !strcmp(m->status, "active");
}

int cmd_report(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const struct list_cfg *l;
	struct store_member *m = NULL;
	size_t n = 0;
	long *counts = NULL;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 1, 1)) != 0 ||
	    (rc = ctl_list(c, pos[0], &l)) != 0 || (rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_members_list(c->st, l->name, &m, &n)) != 0) {
		rc = ctl_store_fail(c, rc, "listing members");
		goto out;
	}
	long members = 0;
	for (size_t i = 0; i < n; i++)
		members += is_member(&m[i]);
	counts = xcalloc(l->n_groups + 1, sizeof *counts);
	membership_group_counts(l, m, n, counts);
	int64_t now = now_epoch();

	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_object_begin(&j);
		json_kv_string(&j, "list", l->name);
		json_kv_int(&j, "members", members);
		json_kv_int(&j, "max_members", l->max_members);
		json_key(&j, "groups");
		json_object_begin(&j);
		for (size_t g = 0; g < l->n_groups; g++)
			json_kv_int(&j, l->stakeholder_groups[g], counts[g]);
		json_object_end(&j);
		json_key(&j, "missing_groups");
		json_array_begin(&j);
		for (size_t g = 0; g < l->n_groups; g++)
			if (!counts[g])
				json_string(&j, l->stakeholder_groups[g]);
		json_array_end(&j);
		json_key(&j, "expiring");
		json_array_begin(&j);
		for (size_t i = 0; i < n; i++)
			if (is_member(&m[i]) && membership_term_expiring(&m[i], now))
				out_json_member(&j, &m[i]);
		json_array_end(&j);
		json_object_end(&j);
		rc = out_json_end(&j);
		goto out;
	}
	printf("%s: %ld member%s", l->name, members, members == 1 ? "" : "s");
	if (l->max_members > 0)
		printf(" of at most %ld", l->max_members);
	printf("\n");
	if (l->n_groups) {
		printf("\nstakeholder groups:\n");
		for (size_t g = 0; g < l->n_groups; g++)
			printf("  %-20s %ld%s\n", l->stakeholder_groups[g], counts[g],
			       counts[g] ? "" : "   <- not represented");
	}
	int any = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_member(&m[i]) || !membership_term_expiring(&m[i], now))
			continue;
		if (!any++)
			printf("\nterms ending within 30 days:\n");
		char date[32];
		out_date(m[i].term_ends, 1, date);
		printf("  %-40s %s%s\n", m[i].address, date, m[i].term_ends < now ? " (ended)" : "");
	}
out:
	free(counts);
	store_members_free(m, n);
	free(pos);
	return rc;
}
