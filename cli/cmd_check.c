/* dialoguectl check: the config, the mail and web templates load, the database
 * opens at the current schema and passes an integrity check. Like
 * `dialogued -n` plus schema. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "output.h"
#include "subscribe.h"
#include "template.h"
#include "webtpl.h"

int cmd_check(struct ctl *c, int argc, char **argv)
{
	char **pos = xcalloc((size_t)argc + 1, sizeof *pos);
	char err[1024];
	struct sbuf warnings = {0}; /* NUL-separated */
	size_t n_warnings = 0;
	int npos, rc;

	if ((rc = cli_args(c, argc, argv, NULL, pos, &npos, 0, 0)) != 0)
		goto out;
	if ((rc = ctl_config(c)) != 0)
		goto out;
	/* The templates are part of the configuration: dialogued refuses to
	 * start (or reload) with a broken one, so check says so too. */
	struct templates *tmpl = template_load(c->cfg->templates, err, sizeof err);
	if (tmpl && subscribe_check_templates(tmpl, c->cfg, err, sizeof err) != 0) {
		template_free(tmpl);
		tmpl = NULL;
	}
	if (!tmpl) {
		rc = cli_fail(EXIT_CONFIG, "%s", err);
		goto out;
	}
	template_free(tmpl);
	struct webtpl *web = webtpl_load(c->cfg->web_dir, err, sizeof err);
	if (!web) {
		rc = cli_fail(EXIT_CONFIG, "%s", err);
		goto out;
	}
	webtpl_free(web);
	if ((rc = ctl_store(c)) != 0)
		goto out;
	int version = store_user_version(c->st);
	if (version != STORE_SCHEMA_VERSION) {
		rc = cli_fail(EXIT_SOFTWARE, "%s: schema version %d, expected %d", c->cfg->database,
			      version, STORE_SCHEMA_VERSION);
		goto out;
	}
	if (store_check(c->st, err, sizeof err) != 0) {
		rc = cli_fail(EXIT_DATAERR, "%s: integrity check failed: %s", c->cfg->database,
			      err);
		goto out;
	}
	/* Things that are legal but an owner wants to know: a cap lowered
	 * below the current membership. */
	for (size_t i = 0; i < c->cfg->n_lists; i++) {
		const struct list_cfg *l = &c->cfg->lists[i];
		long members;
		int src = store_member_count(c->st, l->name, &members);
		if (src != 0) {
			rc = ctl_store_fail(c, src, "counting members");
			goto out;
		}
		if (l->max_members > 0 && members > l->max_members) {
			sbuf_printf(&warnings, "list %s has %ld members, more than max_members %ld",
				    l->name, members, l->max_members);
			sbuf_addc(&warnings, '\0');
			n_warnings++;
		}
	}

	if (c->json) {
		struct json j;
		out_json_begin(&j);
		json_object_begin(&j);
		json_kv_bool(&j, "ok", 1);
		json_kv_string(&j, "config", c->cfg->path);
		json_kv_string(&j, "templates", c->cfg->templates);
		json_kv_string(&j, "web", c->cfg->web_dir);
		json_kv_int(&j, "lists", (int64_t)c->cfg->n_lists);
		json_kv_string(&j, "database", c->cfg->database);
		json_kv_int(&j, "schema_version", version);
		json_kv_string(&j, "integrity", "ok");
		json_key(&j, "warnings");
		json_array_begin(&j);
		const char *w = warnings.buf;
		for (size_t i = 0; i < n_warnings; i++, w += strlen(w) + 1)
			json_string(&j, w);
		json_array_end(&j);
		json_object_end(&j);
		rc = out_json_end(&j);
		goto out;
	}
	printf("ok config %s (%zu list%s)\n", c->cfg->path, c->cfg->n_lists,
	       c->cfg->n_lists == 1 ? "" : "s");
	printf("ok templates %s\n", c->cfg->templates);
	printf("ok web templates %s\n", c->cfg->web_dir);
	printf("ok database %s (schema version %d)\n", c->cfg->database, version);
	printf("ok integrity\n");
	const char *w = warnings.buf;
	for (size_t i = 0; i < n_warnings; i++, w += strlen(w) + 1)
		printf("warning %s\n", w);
out:
	sbuf_free(&warnings);
	free(pos);
	return rc;
}
