/* dialoguectl queue: the outbound delivery queue. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "output.h"

int cmd_queue_list(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	const char *limit_s = NULL, *list_s = NULL;
	int all = 0;
	const struct cli_opt opts[] = {{"--limit", &limit_s, NULL},
				       {"--list", &list_s, NULL},
				       {"--all", NULL, &all},
				       {NULL, NULL, NULL}};
	const struct list_cfg *l = NULL;
	struct store_queue_entry *e = NULL;
	size_t n = 0;
	long limit = 0;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, opts, pos, &npos, 0, 0)) != 0)
		goto out;
	if (limit_s && cli_parse_long(limit_s, &limit) != 0) {
		rc = cli_fail(EXIT_DATAERR, "--limit needs a number (0 = all)");
		goto out;
	}
	if ((list_s && (rc = ctl_list(c, list_s, &l)) != 0) || (rc = ctl_store(c)) != 0)
		goto out;
	if ((rc = store_queue_list(c->st, l ? l->name : NULL, all, limit, &e, &n)) != 0) {
		rc = ctl_store_fail(c, rc, "listing the queue");
		goto out;
	}
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_array_begin(&j);
		for (size_t i = 0; i < n; i++) {
			json_object_begin(&j);
			json_kv_int(&j, "id", e[i].id);
			json_kv_string(&j, "list", e[i].list);
			json_kv_string(&j, "recipient", e[i].recipient);
			json_kv_int(&j, "attempts", e[i].attempts);
			out_json_time(&j, "next_attempt", e[i].next_attempt);
			json_kv_string(&j, "last_error", e[i].last_error);
			json_kv_string(&j, "status", e[i].status);
			json_object_end(&j);
		}
		json_array_end(&j);
		rc = out_json_end(&j);
		goto out;
	}
	struct out_table t;
	out_table_init(&t, 7, "ID", "LIST", "RECIPIENT", "STATUS", "ATTEMPTS", "NEXT ATTEMPT",
		       "LAST ERROR");
	for (size_t i = 0; i < n; i++) {
		char id[24], attempts[24], next[32];
		snprintf(id, sizeof id, "%lld", (long long)e[i].id);
		snprintf(attempts, sizeof attempts, "%d", e[i].attempts);
		out_date(e[i].next_attempt, 0, next);
		out_table_row(&t, id, e[i].list, e[i].recipient, e[i].status, attempts, next,
			      e[i].last_error);
	}
	out_table_print(&t, stdout);
out:
	store_queue_entries_free(e, n);
	free(pos);
	return rc;
}

int cmd_queue_retry(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	long id = 0, count = 0;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 0, 1)) != 0)
		goto out;
	if (npos == 1 && (cli_parse_long(pos[0], &id) != 0 || id <= 0)) {
		rc = cli_fail(EXIT_DATAERR, "'%s' is not a queue entry ID", pos[0]);
		goto out;
	}
	if ((rc = ctl_store(c)) != 0)
		goto out;
	rc = store_queue_retry(c->st, id, now_epoch(), &count);
	if (rc == STORE_NOTFOUND) {
		rc = cli_fail(EXIT_NOINPUT, "no queue entry %ld", id);
		goto out;
	}
	if (rc != STORE_OK) {
		rc = ctl_store_fail(c, rc, "retrying the queue");
		goto out;
	}
	/* The daemon looks at the queue every second: no signal needed. */
	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_object_begin(&j);
		json_kv_int(&j, "retried", count);
		json_object_end(&j);
		rc = out_json_end(&j);
	} else {
		printf("%ld entr%s queued for immediate delivery\n", count, count == 1 ? "y" : "ies");
	}
out:
	free(pos);
	return rc;
}
