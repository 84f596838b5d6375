/* dialoguectl: global options, the command table and dispatch. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "membership.h"

static const struct cli_cmd commands[] = {
	{"lists", NULL, "", "every list: address, members, held, archived, policies", cmd_lists},
	{"members", "list", "L", "members of list L", cmd_members_list},
	{"members", "add", "L ADDR [--name N] [--stakeholder G] [--invite]",
	 "add ADDR to L now (a moderator's act); --invite: send an invitation to confirm",
	 cmd_members_add},
	{"members", "pending", "L", "requests to join L waiting for a moderator's approval",
	 cmd_members_pending},
	{"members", "approve", "L ADDR", "let pending ADDR join L (they get a welcome)",
	 cmd_members_approve},
	{"members", "deny", "L ADDR [--reason TEXT]", "refuse pending ADDR (they are told why)",
	 cmd_members_deny},
	{"members", "remove", "L ADDR", "remove ADDR from L", cmd_members_remove},
	{"members", "set", "L ADDR KEY=VALUE...",
	 "delivery=each|digest|none moderated=yes|no stakeholder=G name=N term_ends=DATE|none",
	 cmd_members_set},
	{"members", "import", "L FILE", "add members from CSV address,name,stakeholder (- = stdin)",
	 cmd_members_import},
	{"members", "export", "L", "members of L as CSV on stdout", cmd_members_export},
	{"held", "list", "[L] [--all]", "posts waiting for a moderator (--all: decided ones too)",
	 cmd_held_list},
	{"held", "show", "ID [--raw]", "one held post: header, reason and text body",
	 cmd_held_show},
	{"held", "approve", "ID... [--member]",
	 "distribute now; --member: the poster is no longer moderated",
	 cmd_held_approve},
	{"held", "reject", "ID... [--reason TEXT]", "refuse held posts; the poster is told why",
	 cmd_held_reject},
	{"held", "discard", "ID...", "drop held posts silently", cmd_held_discard},
	{"held", "expire", "[L]", "expire posts held past hold_expire (posters are told)",
	 cmd_held_expire},
	{"archive", "list", "L [--limit N]", "archived messages of L, newest first",
	 cmd_archive_list},
	{"archive", "show", "ID [--raw]", "one archived message", cmd_archive_show},
	{"archive", "search", "L QUERY [--limit N]", "full-text search in the archive of L",
	 cmd_archive_search},
	{"archive", "export", "L [--output FILE]", "the archive of L as mboxrd",
	 cmd_archive_export},
	{"queue", "list", "[--list L] [--all] [--limit N]",
	 "the outbound delivery queue (--all: with sent copies)", cmd_queue_list},
	{"queue", "retry", "[ID]", "deliver deferred or failed entries (all, or ID) now",
	 cmd_queue_retry},
	{"report", NULL, "L",
	 "stakeholder composition, cap, missing groups, terms ending within 30 days", cmd_report},
	{"check", NULL, "", "check the config, the database schema and its integrity", cmd_check},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void vmsg(const char *fmt, va_list ap)
{
	fputs("dialoguectl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

int cli_fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	return code;
}

static void print_cmd_usage(FILE *f, const struct cli_cmd *cmd)
{
	fprintf(f, "usage: dialoguectl [-c FILE] [--json] %s%s%s%s%s\n", cmd->noun,
		cmd->verb ? " " : "", cmd->verb ? cmd->verb : "", *cmd->args ? " " : "",
		cmd->args);
}

int cli_usage_err(struct ctl *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	if (c->cmd)
		print_cmd_usage(stderr, c->cmd);
	return EXIT_USAGE;
}

static void usage(FILE *f)
{
	fputs("usage: dialoguectl [-c FILE] [--json] COMMAND [ARGS...]\n"
	      "\n"
	      "options:\n"
	      "  -c FILE      config file (default: $DIALOGUE_CONF, else "
	      "/etc/dialogue/dialogue.conf)\n"
	      "  --json       print one JSON value on stdout\n"
	      "  -h, --help   this help; COMMAND --help shows the usage of one command\n"
	      "  --version    print the version\n"
	      "\n"
	      "commands:\n",
	      f);
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char head[80];
		const struct cli_cmd *cmd = &commands[i];
		snprintf(head, sizeof head, "%s%s%s%s%s", cmd->noun, cmd->verb ? " " : "",
			 cmd->verb ? cmd->verb : "", *cmd->args ? " " : "", cmd->args);
		if (strlen(head) > 34)
			fprintf(f, "  %s\n  %-34s  %s\n", head, "", cmd->help);
		else
			fprintf(f, "  %-34s  %s\n", head, cmd->help);
	}
	fputs("\nexit status: 0 ok, 64 usage, 65 bad data, 66 no such list/member/message,\n"
	      "69 unavailable, 75 temporary failure (database busy), 78 config error\n",
	      f);
}

int cli_args(struct ctl *c, int argc, char **argv, const struct cli_opt *opts, char **pos,
	     int *npos, int min, int max)
{
	int only_pos = 0;
	*npos = 0;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (only_pos || a[0] != '-' || !strcmp(a, "-")) {
			pos[(*npos)++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		if (!strcmp(a, "--json")) {
			c->json = 1;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_cmd_usage(stdout, c->cmd);
			printf("%s\n", c->cmd->help);
			return -1;
		}
		const struct cli_opt *o = NULL;
		const char *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		for (size_t k = 0; opts && opts[k].name; k++)
			if (strlen(opts[k].name) == nlen && !strncmp(opts[k].name, a, nlen))
				o = &opts[k];
		if (!o)
			return cli_usage_err(c, "unknown option %.*s", (int)nlen, a);
		if (o->flag) {
			if (eq)
				return cli_usage_err(c, "%s takes no value", o->name);
			*o->flag = 1;
		} else if (eq) {
			*o->value = eq + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			return cli_usage_err(c, "%s needs a value", o->name);
		}
	}
	if (*npos < min)
		return cli_usage_err(c, "missing arguments");
	if (max >= 0 && *npos > max)
		return cli_usage_err(c, "too many arguments");
	return 0;
}

int cli_parse_long(const char *s, long *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		return -1;
	*out = v;
	return 0;
}

int ctl_config(struct ctl *c)
{
	char err[1024];
	if (c->cfg)
		return 0;
	c->cfg = config_load(c->conf_path, err, sizeof err);
	if (!c->cfg)
		return cli_fail(EXIT_CONFIG, "%s", err);
	return 0;
}

int ctl_store(struct ctl *c)
{
	char err[1024];
	int rc;
	if (c->st)
		return 0;
	if ((rc = ctl_config(c)) != 0)
		return rc;
	c->st = store_open(c->cfg->database, err, sizeof err);
	if (!c->st) {
		/* store_open reports a lock held beyond the busy timeout in
		 * SQLite's words. */
		if (strstr(err, "locked") || strstr(err, "busy"))
			return cli_fail(EXIT_TEMPFAIL, "database is busy, try again: %s", err);
		return cli_fail(EXIT_IOERR, "cannot open the database: %s", err);
	}
	return 0;
}

int ctl_list(struct ctl *c, const char *name, const struct list_cfg **out)
{
	int rc;
	if ((rc = ctl_config(c)) != 0)
		return rc;
	const struct list_cfg *l = config_find_list(c->cfg, name);
	for (size_t i = 0; !l && i < c->cfg->n_lists; i++)
		if (!ascii_strcasecmp(c->cfg->lists[i].address, name))
			l = &c->cfg->lists[i];
	if (!l) {
		char *shown = xstrdup(name);
		for (char *p = shown; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
		cli_err("no such list: %s", shown);
		free(shown);
		return EXIT_NOINPUT;
	}
	*out = l;
	return 0;
}

int ctl_store_fail(struct ctl *c, int rc, const char *what)
{
	switch (rc) {
	case STORE_BUSY:
		return cli_fail(EXIT_TEMPFAIL, "database is busy, try again (%s)", what);
	case STORE_NOTFOUND:
		return cli_fail(EXIT_NOINPUT, "%s: not found", what);
	case STORE_INVAL:
		return cli_fail(EXIT_DATAERR, "%s: %s", what, store_errmsg(c->st));
	default:
		return cli_fail(EXIT_SOFTWARE, "%s: %s", what,
				c->st ? store_errmsg(c->st) : "database error");
	}
}

int ctl_membership_fail(int rc, const char *msg)
{
	int code;
	switch (rc) {
	case MEMBERSHIP_NOTFOUND:
		code = EXIT_NOINPUT;
		break;
	case MEMBERSHIP_BUSY:
		code = EXIT_TEMPFAIL;
		break;
	case MEMBERSHIP_STORE:
		code = EXIT_SOFTWARE;
		break;
	default: /* bad address or value, exists, full */
		code = EXIT_DATAERR;
	}
	return cli_fail(code, "%s", msg);
}

static const struct cli_cmd *find_cmd(const char *noun, const char *verb, int *noun_known)
{
	*noun_known = 0;
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(commands[i].noun, noun))
			continue;
		*noun_known = 1;
		if (!commands[i].verb || (verb && !strcmp(commands[i].verb, verb)))
			return &commands[i];
	}
	return NULL;
}

static void print_verbs(const char *noun)
{
	fprintf(stderr, "dialoguectl: %s commands:", noun);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].noun, noun))
			fprintf(stderr, " %s", commands[i].verb);
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	struct ctl c = {0};
	int i, rc;

	/* lib/ logs to stderr; a command line tool only passes on problems. */
	log_init("dialoguectl", 0);
	log_set_level(LOG_LVL_WARN);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
			if (i + 1 >= argc) {
				cli_err("%s needs a file", a);
				usage(stderr);
				return EXIT_USAGE;
			}
			c.conf_path = argv[++i];
		} else if (!strncmp(a, "-c", 2)) {
			c.conf_path = a + 2;
		} else if (!strncmp(a, "--config=", 9)) {
			c.conf_path = a + 9;
		} else if (!strcmp(a, "--json")) {
			c.json = 1;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--version")) {
			printf("dialoguectl %s\n", DIALOGUE_VERSION);
			return EXIT_OK;
		} else {
			cli_err("unknown option %s", a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!c.conf_path || !*c.conf_path)
		c.conf_path = config_default_path();
	if (i >= argc) {
		cli_err("no command given");
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *noun = argv[i++];
	const char *verb = i < argc ? argv[i] : NULL;
	int known;
	const struct cli_cmd *cmd = find_cmd(noun, verb, &known);
	if (!cmd) {
		if (!known) {
			cli_err("unknown command '%s' (dialoguectl --help lists them)", noun);
		} else if (verb && (!strcmp(verb, "-h") || !strcmp(verb, "--help"))) {
			usage(stdout);
			return EXIT_OK;
		} else {
			if (verb)
				cli_err("unknown %s command '%s'", noun, verb);
			print_verbs(noun);
		}
		return EXIT_USAGE;
	}
	if (cmd->verb)
		i++;
	c.cmd = cmd;
	rc = cmd->fn(&c, argc - i, argv + i);
	if (rc < 0)
		rc = EXIT_OK; /* --help */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (rc == EXIT_OK)
			rc = cli_fail(EXIT_IOERR, "writing the output: %s", strerror(errno));
	}
	if (c.st)
		store_close(c.st);
	if (c.cfg)
		config_free(c.cfg);
	return rc;
}
