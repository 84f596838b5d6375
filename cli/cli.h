/* dialoguectl: the command table, the state every command shares and the
 * helpers that turn failures into sysexits codes. One cmd_*.c per noun. */
#ifndef DIALOGUE_CLI_H
#define DIALOGUE_CLI_H

#include <stdio.h>

#include "config.h"
#include "store.h"
#include "util.h"

/* sysexits.h EX_CANTCREAT: an output file cannot be created. */
#define CLI_EXIT_CANTCREAT 73

struct cli_cmd;

/* Per-run state; the config and the database are opened on first use. */
struct ctl {
	const char *conf_path;
	int json;                  /* --json */
	const struct cli_cmd *cmd; /* the command being run */
	struct config *cfg;
	struct store *st;
};

typedef int (*cli_handler)(struct ctl *c, int argc, char **argv);

struct cli_cmd {
	const char *noun;
	const char *verb; /* NULL for a noun that is the whole command */
	const char *args; /* usage after "noun verb" */
	const char *help; /* one line for --help */
	cli_handler fn;   /* gets the arguments after noun (and verb); returns an exit code */
};

/* Options a command accepts besides --json and -h/--help, which every
 * command takes. Long names with the dashes: "--limit". */
struct cli_opt {
	const char *name;
	const char **value; /* set for an option that takes a value */
	int *flag;          /* set to 1 for a flag */
};

/* Split ARGV[0..argc) into options (OPTS, may be NULL) and positionals
 * (into POS, which has room for ARGC entries), and check that there are
 * MIN..MAX positionals (MAX -1: no limit). "--" ends the options; "-" is
 * a positional. Returns 0; or prints the error and the command's usage
 * and returns EXIT_USAGE; or, for --help, prints the usage to stdout and
 * returns -1 (the caller exits 0). */
int cli_args(struct ctl *c, int argc, char **argv, const struct cli_opt *opts, char **pos,
	     int *npos, int min, int max);

/* "dialoguectl: MSG" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same plus the current command's usage; returns EXIT_USAGE. */
int cli_usage_err(struct ctl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error with exit code CODE; returns CODE. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Load the config (EXIT_CONFIG with "FILE:LINE: what" on failure). */
int ctl_config(struct ctl *c);
/* Load the config and open the database (EXIT_TEMPFAIL when busy). */
int ctl_store(struct ctl *c);
/* The list named NAME (or with address NAME); EXIT_NOINPUT when none. */
int ctl_list(struct ctl *c, const char *name, const struct list_cfg **out);
/* Report a failed store call (WHAT is being done) and return the exit
 * code: busy 75, not found 66, bad value 65, anything else 70. */
int ctl_store_fail(struct ctl *c, int rc, const char *what);
/* Report a membership_* failure with its message; returns the exit code. */
int ctl_membership_fail(int rc, const char *msg);

/* Parse a positive decimal number (an ID or a --limit); 0 or -1. */
int cli_parse_long(const char *s, long *out);

/* Handlers, one file per noun. */
int cmd_lists(struct ctl *c, int argc, char **argv);
int cmd_members_list(struct ctl *c, int argc, char **argv);
int cmd_members_add(struct ctl *c, int argc, char **argv);
int cmd_members_pending(struct ctl *c, int argc, char **argv);
int cmd_members_approve(struct ctl *c, int argc, char **argv);
int cmd_members_deny(struct ctl *c, int argc, char **argv);
int cmd_members_remove(struct ctl *c, int argc, char **argv);
int cmd_members_set(struct ctl *c, int argc, char **argv);
int cmd_members_import(struct ctl *c, int argc, char **argv);
int cmd_members_export(struct ctl *c, int argc, char **argv);
int cmd_archive_list(struct ctl *c, int argc, char **argv);
int cmd_archive_show(struct ctl *c, int argc, char **argv);
int cmd_archive_search(struct ctl *c, int argc, char **argv);
int cmd_archive_export(struct ctl *c, int argc, char **argv);
int cmd_held_list(struct ctl *c, int argc, char **argv);
int cmd_held_show(struct ctl *c, int argc, char **argv);
int cmd_held_approve(struct ctl *c, int argc, char **argv);
int cmd_held_reject(struct ctl *c, int argc, char **argv);
int cmd_held_discard(struct ctl *c, int argc, char **argv);
int cmd_held_expire(struct ctl *c, int argc, char **argv);
int cmd_queue_list(struct ctl *c, int argc, char **argv);
int cmd_queue_retry(struct ctl *c, int argc, char **argv);
int cmd_report(struct ctl *c, int argc, char **argv);
int cmd_check(struct ctl *c, int argc, char **argv);

#endif
