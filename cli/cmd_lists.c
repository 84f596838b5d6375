/* dialoguectl lists: every configured list with its counts from the store. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "membership.h"
#include "output.h"

struct list_counts {
	long members;
	long archived;
	long held;
	long queued, deferred, failed;
	long *group_counts; /* [n_groups] */
	size_t missing;
};

static int count_list(struct ctl *c, const struct list_cfg *l, struct list_counts *out)
{
	int rc;

	out->group_counts = NULL;
	out->missing = 0;
	if ((rc = store_member_count(c->st, l->name, &out->members)) != 0)
		return ctl_store_fail(c, rc, "counting members");
	if ((rc = store_archive_count(c->st, l->name, &out->archived)) != 0)
		return ctl_store_fail(c, rc, "counting archived messages");
	if ((rc = store_held_count(c->st, l->name, &out->held)) != 0)
		return ctl_store_fail(c, rc, "counting held posts");
	if ((rc = store_queue_counts(c->st, l->name, &out->queued, &out->deferred,
				     &out->failed)) != 0)
		return ctl_store_fail(c, rc, "counting the delivery queue");
	if (l->n_groups) {
		struct store_member *m;
		size_t n;
		if ((rc = store_members_list(c->st, l->name, &m, &n)) != 0)
			return ctl_store_fail(c, rc, "listing members");
		out->group_counts = xcalloc(l->n_groups, sizeof *out->group_counts);
		out->missing = membership_group_counts(l, m, n, out->group_counts);
		store_members_free(m, n);
	}
	return 0;
}

static void json_list(struct json *j, const struct list_cfg *l, const struct list_counts *n)
{
	json_object_begin(j);
	json_kv_string(j, "name", l->name);
	json_kv_string(j, "address", l->address);
	json_kv_string(j, "title", l->title);
	json_kv_int(j, "members", n->members);
	json_kv_int(j, "held", n->held);
	json_kv_int(j, "archived", n->archived);
	json_kv_int(j, "queued", n->queued);
	json_kv_int(j, "deferred", n->deferred);
	json_kv_int(j, "failed", n->failed);
	json_kv_string(j, "subscribe_policy", config_sub_policy_name(l->subscribe_policy));
	json_kv_string(j, "post_policy", config_post_policy_name(l->post_policy));
	json_kv_string(j, "nonmember_action", config_nonmember_action_name(l->nonmember_action));
	json_kv_string(j, "archive", config_archive_name(l->archive));
	json_kv_string(j, "description", l->description ? l->description : "");
	json_kv_string(j, "subject_prefix", l->subject_prefix ? l->subject_prefix : "");
	json_key(j, "moderators");
	json_array_begin(j);
	for (size_t i = 0; i < l->n_moderators; i++)
		json_string(j, l->moderators[i]);
	json_array_end(j);
	json_kv_int(j, "max_members", l->max_members);
	json_kv_int(j, "term", l->term);
	json_key(j, "stakeholder_groups");
	json_array_begin(j);
	for (size_t i = 0; i < l->n_groups; i++)
		json_string(j, l->stakeholder_groups[i]);
	json_array_end(j);
	json_key(j, "missing_groups");
	json_array_begin(j);
	for (size_t i = 0; i < l->n_groups; i++)
		if (!n->group_counts[i])
			json_string(j, l->stakeholder_groups[i]);
	json_array_end(j);
	json_object_end(j);
}

int cmd_lists(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	struct list_counts *counts = NULL;
	size_t n_lists = 0;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 0, 0)) != 0)
		goto out;
	if ((rc = ctl_store(c)) != 0)
		goto out;
	n_lists = c->cfg->n_lists;
	counts = xcalloc(n_lists + 1, sizeof *counts);
	/* Gather everything first: a failure must not leave half a table
	 * or half a JSON value on stdout. */
	for (size_t i = 0; i < n_lists; i++)
		if ((rc = count_list(c, &c->cfg->lists[i], &counts[i])) != 0)
			goto out;

	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_array_begin(&j);
		for (size_t i = 0; i < n_lists; i++)
			json_list(&j, &c->cfg->lists[i], &counts[i]);
		json_array_end(&j);
		rc = out_json_end(&j);
		goto out;
	}
	struct out_table t;
	out_table_init(&t, 10, "NAME", "ADDRESS", "MEMBERS", "HELD", "ARCHIVED", "QUEUED",
		       "DEFERRED", "SUBSCRIBE", "POST", "MISSING GROUPS");
	for (size_t i = 0; i < n_lists; i++) {
		const struct list_cfg *l = &c->cfg->lists[i];
		char members[48], held[24], archived[24], queued[24], deferred[24];
		struct sbuf missing = {0};
		if (l->max_members > 0)
			snprintf(members, sizeof members, "%ld/%ld", counts[i].members,
				 l->max_members);
		else
			snprintf(members, sizeof members, "%ld", counts[i].members);
		snprintf(held, sizeof held, "%ld", counts[i].held);
		snprintf(archived, sizeof archived, "%ld", counts[i].archived);
		snprintf(queued, sizeof queued, "%ld", counts[i].queued);
		snprintf(deferred, sizeof deferred, "%ld", counts[i].deferred);
		for (size_t g = 0; g < l->n_groups; g++)
			if (!counts[i].group_counts[g])
				sbuf_printf(&missing, "%s%s", missing.len ? "," : "",
					    l->stakeholder_groups[g]);
		out_table_row(&t, l->name, l->address, members, held, archived, queued, deferred,
			      config_sub_policy_name(l->subscribe_policy),
			      config_post_policy_name(l->post_policy), missing.buf);
		sbuf_free(&missing);
	}
	out_table_print(&t, stdout);
out:
	for (size_t i = 0; counts && i < n_lists; i++)
		free(counts[i].group_counts);
	free(counts);
	free(pos);
	return rc;
}
