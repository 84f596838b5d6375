/* config: the shipped file loads; every kind of mistake is refused with
 * FILE:LINE; defaults and values parse as documented. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "route.h"
#include "testutil.h"

static char tmpdir[] = "/tmp/dlg-config-XXXXXX";

/* Write TEXT to a fresh file and load it; ERR receives the message. */
static struct config *load_text(const char *text, char *err, size_t errlen)
{
	static int n;
	char path[256];
	snprintf(path, sizeof path, "%s/c%d.conf", tmpdir, n++);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	err[0] = '\0';
	return config_load(path, err, errlen);
}

#define MINIMAL "[list a]\naddress = a@lists.example.org\n"

/* Expect TEXT to be refused at LINE with a message containing WHAT. */
static void refused(const char *text, int line, const char *what)
{
	char err[512], want[64];
	struct config *c = load_text(text, err, sizeof err);
	CHECK(c == NULL);
	config_free(c);
	snprintf(want, sizeof want, ".conf:%d: ", line);
	if (line > 0 && !strstr(err, want)) {
		fprintf(stderr, "  expected line %d in: %s\n", line, err);
		CHECK(0);
	}
	if (!strstr(err, what)) {
		fprintf(stderr, "  expected '%s' in: %s\n", what, err);
		CHECK(0);
	}
}

static void test_shipped(void)
{
	char err[512], path[512];
	const char *src = getenv("DIALOGUE_SRC");
	snprintf(path, sizeof path, "%s/config/dialogue.conf", src ? src : ".");
	struct config *c = config_load(path, err, sizeof err);
	if (!c) {
		fprintf(stderr, "%s\n", err);
		CHECK(0);
		return;
	}
	CHECK_STR(c->hostname, "lists.example.org");
	CHECK_INT(c->n_lists, 2);
	const struct list_cfg *d = config_find_list(c, "dialogue");
	const struct list_cfg *s = config_find_list(c, "steering");
	CHECK(d && s);
	if (d && s) {
		CHECK_STR(d->address, "dialogue@lists.example.org");
		CHECK_INT(d->subscribe_policy, SUB_CONFIRM);
		CHECK_INT(d->nonmember_action, NM_HOLD);
		CHECK_STR(d->subject_prefix, "[Dialogue]");
		CHECK_INT(s->subscribe_policy, SUB_CLOSED);
		CHECK_INT(s->post_policy, POST_MEMBERS);
		CHECK_INT(s->max_members, 25);
		CHECK_INT(s->n_groups, 6);
		CHECK(config_list_has_group(s, "civil-society"));
		CHECK(!config_list_has_group(s, "press"));
		CHECK(s->term > 0);
	}
	CHECK_INT(c->max_message_size, 25 * 1024 * 1024);
	CHECK_INT(c->n_retry, 4);
	CHECK_INT(c->retry[2], 3600);
	CHECK_INT(c->give_up_after, 5 * 86400);
	CHECK(c->verp);
	CHECK(c->n_http_listen == 1);
	CHECK(strstr(c->database, "var/dialogue.db") != NULL);
	config_free(c);
}

static void test_defaults(void)
{
	char err[512];
	struct config *c = load_text("[server]\nhostname = h.example\n" MINIMAL, err, sizeof err);
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "%s\n", err);
		return;
	}
	CHECK_INT(c->max_connections, 500);
	CHECK_INT(c->max_rcpts, 100);
	CHECK_INT(c->command_timeout, 300);
	CHECK_INT(c->n_listen, 1);
	CHECK_STR(c->listen[0].port, "2525");
	CHECK(c->tls_certificate == NULL);
	CHECK(c->n_http_listen == 0);
	CHECK_INT(c->max_recipients, 50);
	CHECK_INT(c->lists[0].max_members, 0);
	CHECK_STR(c->lists[0].title, "a");
	CHECK_STR(c->lists[0].local, "a");
	CHECK_STR(c->lists[0].domain, "lists.example.org");
	config_free(c);

	/* list address defaults to NAME@hostname; inline comments; IPv6 */
	c = load_text("[server]\nhostname = H.Example # comment\nlisten = [::1]:2525, 127.0.0.1:25\n"
		      "[list x]\nsubject_prefix = [X#1] # a comment\n",
		      err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_STR(c->lists[0].address, "x@h.example");
		CHECK_STR(c->listen[0].host, "::1");
		CHECK_INT(c->n_listen, 2);
		CHECK_STR(c->lists[0].subject_prefix, "[X#1]");
		config_free(c);
	}
}

static void test_errors(void)
{
	refused("[server]\nbogus = 1\n" MINIMAL, 2, "unknown key 'bogus'");
	refused("[nonsense]\n", 1, "unknown section");
	refused("hostname = x\n", 1, "outside any section");
	refused("[server]\nmax_message_size = 10Q\n" MINIMAL, 2, "not a size");
	refused("[server]\nmax_connections = -1\n" MINIMAL, 2, "out of range");
	refused("[server]\nmax_connections = lots\n" MINIMAL, 2, "not a number");
	refused("[server]\ncommand_timeout = 5x\n" MINIMAL, 2, "not a duration");
	refused("[server]\nlisten = 127.0.0.1\n" MINIMAL, 2, "HOST:PORT");
	refused("[server]\nlisten = 127.0.0.1:99999\n" MINIMAL, 2, "HOST:PORT");
	refused("[server]\nhostname = bad_host!\n" MINIMAL, 2, "host name");
	refused("[server]\ntls_certificate = c.pem\n" MINIMAL, 0, "set together");
	refused("[delivery]\nverp = maybe\n" MINIMAL, 2, "yes or no");
	refused("[delivery]\nretry = 5m, soon\n" MINIMAL, 2, "not a duration");
	refused("[delivery]\ntls = sometimes\n" MINIMAL, 2, "not one of");
	refused(MINIMAL "subscribe_policy = whenever\n", 3, "open | confirm | approve | closed");
	refused(MINIMAL "post_policy = all\n", 3, "not one of");
	refused(MINIMAL "nonmember_action = bounce\n", 3, "not one of");
	refused(MINIMAL "archive = secret\n", 3, "not one of");
	refused(MINIMAL "moderators = not-an-address\n", 3, "not a valid address");
	refused(MINIMAL "title = a\ntitle = b\n", 4, "set twice");
	refused(MINIMAL "[list a]\n", 3, "defined twice");
	refused("[list Bad]\n", 1, "list name");
	refused(MINIMAL "[list b]\naddress = a@lists.example.org\n", 3, "already used");
	refused(MINIMAL "[list b]\naddress = a-join@lists.example.org\n", 3, "clashes");
	refused("[list a]\naddress = a+b@x.org\n", 1, "'+'");
	refused(MINIMAL "stakeholder_groups = x, y, x\n", 1, "twice");
	refused("[server]\nhostname = x.org\n", 0, "no [list");
	refused("[server\n", 1, "malformed section");
	refused(MINIMAL "just words\n", 3, "key = value");
	refused("[server]\n[server]\n" MINIMAL, 2, "appears twice");

	char err[512];
	struct config *c = config_load("/nonexistent/dialogue.conf", err, sizeof err);
	CHECK(c == NULL);
	CHECK(strstr(err, "/nonexistent/dialogue.conf: cannot read") != NULL);
}

static void test_values(void)
{
	int64_t v;
	CHECK(config_parse_size("25M", &v) == 0 && v == 25 * 1024 * 1024);
	CHECK(config_parse_size("512K", &v) == 0 && v == 512 * 1024);
	CHECK(config_parse_size("1G", &v) == 0 && v == 1024LL * 1024 * 1024);
	CHECK(config_parse_size("100", &v) == 0 && v == 100);
	CHECK(config_parse_size("-1", &v) < 0);
	CHECK(config_parse_size("", &v) < 0);
	CHECK(config_parse_size("99999999999999999999G", &v) < 0);
	CHECK(config_parse_duration("3d", &v) == 0 && v == 3 * 86400);
	CHECK(config_parse_duration("0", &v) == 0 && v == 0);
	CHECK(config_parse_duration("90", &v) < 0);
	CHECK(config_parse_duration("1h", &v) == 0 && v == 3600);
	CHECK(config_parse_duration("2w", &v) == 0 && v == 14 * 86400);
}

static void test_routes(void)
{
	char err[512];
	struct config *c = load_text("[server]\nhostname = lists.example.org\n"
				     "[list dialogue]\n[list steering]\n",
				     err, sizeof err);
	CHECK(c != NULL);
	if (!c)
		return;
	struct route r;
	CHECK_INT(route_rcpt(c, "dialogue@lists.example.org", &r), ROUTE_OK);
	CHECK_STR(r.list->name, "dialogue");
	CHECK_INT(r.kind, RCPT_POST);
	CHECK_INT(route_rcpt(c, "Dialogue@LISTS.example.org", &r), ROUTE_OK);
	CHECK_INT(route_rcpt(c, "dialogue-join@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_JOIN);
	CHECK_INT(route_rcpt(c, "dialogue-subscribe@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_JOIN);
	CHECK_INT(route_rcpt(c, "steering-unsubscribe@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_LEAVE);
	CHECK_STR(r.list->name, "steering");
	CHECK_INT(route_rcpt(c, "dialogue-confirm+abc123@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_CONFIRM);
	CHECK_STR(r.detail, "abc123");
	CHECK_INT(route_rcpt(c, "dialogue-confirm@lists.example.org", &r), ROUTE_UNKNOWN_USER);
	CHECK_INT(route_rcpt(c, "dialogue-bounces@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_BOUNCES);
	CHECK_INT(route_rcpt(c, "dialogue-bounces+bob=example.net@lists.example.org", &r),
		  ROUTE_OK);
	CHECK_STR(r.detail, "bob=example.net");
	CHECK_INT(route_rcpt(c, "dialogue-request@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_REQUEST);
	CHECK_INT(route_rcpt(c, "dialogue-owner@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_OWNER);
	CHECK_INT(route_rcpt(c, "dialogue-approve+t@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_APPROVE);
	CHECK_INT(route_rcpt(c, "dialogue-reject+t@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_REJECT);
	CHECK_INT(route_rcpt(c, "dialogue-withdraw+t@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_WITHDRAW);
	CHECK_INT(route_rcpt(c, "dialogue-join+x@lists.example.org", &r), ROUTE_UNKNOWN_USER);
	CHECK_INT(route_rcpt(c, "dialogue-admin@lists.example.org", &r), ROUTE_UNKNOWN_USER);
	CHECK_INT(route_rcpt(c, "dialoguex@lists.example.org", &r), ROUTE_UNKNOWN_USER);
	CHECK_INT(route_rcpt(c, "postmaster@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(r.kind, RCPT_OWNER);
	CHECK_STR(r.list->name, "dialogue");
	CHECK_INT(route_rcpt(c, "PostMaster@lists.example.org", &r), ROUTE_OK);
	CHECK_INT(route_rcpt(c, "postmaster@example.org", &r), ROUTE_NOT_OURS);
	CHECK_INT(route_rcpt(c, "dialogue@example.org", &r), ROUTE_NOT_OURS);
	CHECK_INT(route_rcpt(c, "victim@gmail.com", &r), ROUTE_NOT_OURS);
	CHECK_INT(route_rcpt(c, "not an address", &r), ROUTE_BAD_SYNTAX);
	config_free(c);
}

/* [http]: a wildcard listen needs base_url; trusted_proxies are addresses. */
static void test_http(void)
{
	/* Links and the forms' origin check need a name, not a wildcard. */
	refused("[http]\nlisten = 0.0.0.0:8080\n" MINIMAL, 0, "base_url must be set");
	refused("[http]\nlisten = [::]:8080\n" MINIMAL, 0, "base_url must be set");
	char err[512];
	struct config *c = load_text("[http]\nlisten = 0.0.0.0:8080\n"
				     "base_url = https://lists.example.org\n"
				     "trusted_proxies = 127.0.0.1, ::1\n" MINIMAL,
				     err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_STR(c->base_url, "https://lists.example.org");
		CHECK_INT(c->n_http_proxies, 2);
	}
	config_free(c);
	c = load_text("[http]\nlisten = [::1]:8080\n" MINIMAL, err, sizeof err);
	CHECK(c != NULL);
	if (c)
		CHECK_STR(c->base_url, "http://[::1]:8080");
	config_free(c);
	refused("[http]\ntrusted_proxies = nginx.local\n" MINIMAL, 2, "");
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	test_shipped();
	test_defaults();
	test_errors();
	test_values();
	test_routes();
	test_http();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	return test_result();
}
