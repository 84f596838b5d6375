/* config: dialogue.conf (INI), parsed and validated as a whole. A config is
 * immutable once loaded; SIGHUP loads a new one and swaps it in. */
#ifndef DIALOGUE_CONFIG_H
#define DIALOGUE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum sub_policy { SUB_OPEN, SUB_CONFIRM, SUB_APPROVE, SUB_CLOSED };
enum post_policy { POST_OPEN, POST_MEMBERS, POST_MODERATED, POST_ANNOUNCE };
enum nonmember_action { NM_ACCEPT, NM_HOLD, NM_REJECT, NM_DISCARD };
enum archive_mode { ARCHIVE_PUBLIC, ARCHIVE_PRIVATE, ARCHIVE_NONE };
enum relay_tls { RELAY_TLS_NO, RELAY_TLS_OPPORTUNISTIC, RELAY_TLS_REQUIRED };

struct listen_addr {
	char *host; /* numeric address or name, without brackets */
	char *port;
};

struct list_cfg {
	char *name;    /* section name: [list NAME] */
	char *address; /* L@D, lowercased */
	char *local;   /* L */
	char *domain;  /* D */
	char *title;
	char *description;
	enum sub_policy subscribe_policy;
	enum post_policy post_policy;
	enum nonmember_action nonmember_action;
	enum archive_mode archive;
	char *subject_prefix; /* "" when none */
	char **moderators;
	size_t n_moderators;
	long max_members; /* 0 = no cap */
	char **stakeholder_groups;
	size_t n_groups;
	int64_t term; /* seconds, 0 = none */
	/* Keys whose features later issues build (validated now). */
	int moderate_new_members;
	int64_t max_post_size; /* 0 = only the server's max_message_size */
	long max_post_recipients; /* To+Cc count that holds a post; 0 = off */
	int64_t hold_expire;
	int line; /* where the section starts, for messages */
};

struct config {
	char *path; /* as given */
	char *dir;  /* directory of path: base of relative paths */

	/* [server] */
	char *hostname;
	struct listen_addr *listen;
	size_t n_listen;
	char *database;    /* absolute or relative to dir, already resolved */
	char *secret_file; /* resolved */
	int64_t max_message_size;
	long max_connections;
	char *tls_certificate; /* resolved, NULL when unset */
	char *tls_key;
	int64_t command_timeout; /* per-command idle timeout, seconds */
	int64_t data_timeout;    /* idle timeout while receiving DATA */
	long max_errors;         /* bad commands before the session is closed */
	long max_rcpts;          /* recipients per transaction */
	int64_t token_lifetime;
	long confirm_per_address_per_day;
	long confirm_per_ip_per_hour;
	long auto_replies_per_day;
	char *templates; /* resolved directory */
	char **xforward_hosts; /* peers whose XFORWARD we believe (numeric IPs) */
	size_t n_xforward_hosts;

	/* [delivery] */
	struct listen_addr relay;
	int verp;
	long max_recipients;
	long connections;
	int64_t *retry;
	size_t n_retry;
	int64_t give_up_after;
	enum relay_tls relay_tls;

	/* [http] */
	struct listen_addr *http_listen; /* NULL when the web is disabled */
	size_t n_http_listen;
	char *base_url;
	char *web_dir; /* resolved */
	char **http_proxies; /* peers whose X-Forwarded-For we believe (numeric IPs) */
	size_t n_http_proxies;

	struct list_cfg *lists;
	size_t n_lists;
};

/* Load and validate PATH. On failure returns NULL and writes
 * "FILE:LINE: what is wrong" (or "FILE: ..." when no line applies) to err. */
struct config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct config *cfg);

/* -c FILE, else $DIALOGUE_CONF, else /etc/dialogue/dialogue.conf. */
const char *config_default_path(void);

const struct list_cfg *config_find_list(const struct config *cfg, const char *name);
/* What a list is called for people: its title, else its name. */
const char *config_list_title(const struct list_cfg *l);

/* Is D the domain of some list? (case-insensitive) */
int config_is_list_domain(const struct config *cfg, const char *domain);

/* Is GROUP one of the list's stakeholder_groups? (always 1 when unset) */
int config_list_has_group(const struct list_cfg *l, const char *group);

const char *config_sub_policy_name(enum sub_policy p);
const char *config_post_policy_name(enum post_policy p);
const char *config_nonmember_action_name(enum nonmember_action a);
const char *config_archive_name(enum archive_mode a);

/* Value parsers shared with the CLI: 0 on success, -1 on a bad value. */
int config_parse_size(const char *s, int64_t *out);     /* 25M, 512K, 1G, 100 */
int config_parse_duration(const char *s, int64_t *out); /* 30s, 5m, 1h, 3d, 0 */

#endif
