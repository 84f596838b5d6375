/* dialogued: the daemon. Loads the config, opens the store, then runs the
 * event loop: SMTP intake, group commit, archiving, delivery and the sweep
 * of the held queue. SIGHUP re-reads the
 * config (a bad one is refused and the old one kept); SIGTERM/SIGINT finish
 * in-flight transactions within 10 seconds and exit. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "config.h"
#include "delivery.h"
#include "housekeeping.h"
#include "http.h"
#include "intake.h"
#include "processor.h"
#include "secret.h"
#include "smtp_server.h"
#include "store.h"
#include "subscribe.h"
#include "template.h"
#include "tls.h"
#include "util.h"

#define SHUTDOWN_GRACE 10

struct daemon {
	struct event_base *base;
	struct config *cfg;
	struct templates *tmpl;
	SSL_CTX *tls;
	struct store *st;
	struct intake *intake;
	struct processor *proc;
	struct delivery *delivery;
	struct housekeeping *housekeeping;
	struct smtp_server *smtp;
	struct http_server *http;
	struct event *sig_term, *sig_int, *sig_hup;
	int stopping;
	int stops_pending; /* parts still finishing their work on shutdown */
	struct event *deadline;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: dialogued [-c FILE] [-n] [-s] [-v]\n"
		   "  -c FILE    configuration (default: $DIALOGUE_CONF, else "
		   "/etc/dialogue/dialogue.conf)\n"
		   "  -n         check the configuration and exit\n"
		   "  -s         also log to syslog (facility mail)\n"
		   "  -v         verbose (debug) logging\n"
		   "  -h, --help this help\n"
		   "  --version  print the version\n");
}

/* Everything a config needs beyond its own syntax: the TLS files load. */
static int prepare_tls(const struct config *cfg, SSL_CTX **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!cfg->tls_certificate)
		return 0;
	*out = tls_server_ctx(cfg->tls_certificate, cfg->tls_key, err, errlen);
	return *out ? 0 : -1;
}

/* The mail templates of CFG, checked for what subscriptions need; a bad
 * template directory is refused like a bad config. */
static struct templates *load_templates(const struct config *cfg, char *err, size_t errlen)
{
	struct templates *t = template_load(cfg->templates, err, errlen);
	if (t && subscribe_check_templates(t, cfg, err, errlen) < 0) {
		template_free(t);
		t = NULL;
	}
	return t;
}

static int ensure_parent_dir(const char *path, char *err, size_t errlen)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int rc = 0;
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

/* Each SMTP session is a descriptor: allow as many as the hard limit so
 * max_connections, not the default soft limit of 1024, is the ceiling. */
static void raise_fd_limit(long want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rlim_t need = (rlim_t)want + 64; /* listeners, database, log */
	if (rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
		log_warn("open files limit is %llu: fewer than max_connections = %ld sessions fit",
			 (unsigned long long)rl.rlim_cur, want);
}

/* The intake is made before the processor (which reads its progress). */
static void kick_processor(void *arg)
{
	struct daemon *d = arg;
	if (d->proc)
		processor_kick(d->proc);
}

static void on_shutdown_done(void *arg)
{
	struct daemon *d = arg;
	if (--d->stops_pending == 0)
		event_base_loopexit(d->base, NULL);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	log_warn("shutdown: grace period over, stopping now");
	event_base_loopexit(d->base, NULL);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	if (d->stopping) {
		log_info("signal %d again: exiting now", (int)sig);
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->stopping = 1;
	log_info("signal %d: shutting down (%zu session(s) open)", (int)sig,
		 smtp_server_sessions(d->smtp));
	/* SMTP sessions and relay transactions in progress may finish; the
	 * deadline bounds both (delivery work still unfinished then is queued
	 * again by delivery_free). */
	d->stops_pending = 2;
	struct timeval tv = {SHUTDOWN_GRACE, 500000};
	d->deadline = evtimer_new(d->base, on_deadline, d);
	evtimer_add(d->deadline, &tv);
	delivery_drain(d->delivery, on_shutdown_done, d);
	smtp_server_shutdown(d->smtp, SHUTDOWN_GRACE, on_shutdown_done, d);
}

static int same_endpoints(const struct listen_addr *a, size_t na, const struct listen_addr *b,
			  size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i].host, b[i].host) || strcmp(a[i].port, b[i].port))
			return 0;
	return 1;
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char err[1024];
	struct config *cfg = config_load(d->cfg->path, err, sizeof err);
	SSL_CTX *tls = NULL;
	if (!cfg) {
		log_err("reload refused, keeping the running configuration: %s", err);
		return;
	}
	if (prepare_tls(cfg, &tls, err, sizeof err) < 0) {
		log_err("reload refused, keeping the running configuration: %s", err);
		config_free(cfg);
		return;
	}
	struct templates *tmpl = load_templates(cfg, err, sizeof err);
	struct webtpl *web = tmpl ? webtpl_load(cfg->web_dir, err, sizeof err) : NULL;
	if (!tmpl || !web) {
		log_err("reload refused, keeping the running configuration: %s", err);
		template_free(tmpl);
		SSL_CTX_free(tls);
		config_free(cfg);
		return;
	}
	if (!same_endpoints(cfg->listen, cfg->n_listen, d->cfg->listen, d->cfg->n_listen))
		log_warn("reload: [server] listen changed; a restart is needed to apply it");
	if (strcmp(cfg->database, d->cfg->database))
		log_warn("reload: [server] database changed; a restart is needed to apply it");
	raise_fd_limit(cfg->max_connections);
	smtp_server_set_config(d->smtp, cfg, tls);
	processor_set_config(d->proc, cfg, tmpl);
	delivery_set_config(d->delivery, cfg);
	housekeeping_set_config(d->housekeeping, cfg, tmpl);
	if (!same_endpoints(cfg->http_listen, cfg->n_http_listen, d->cfg->http_listen,
			    d->cfg->n_http_listen))
		log_warn("reload: [http] listen changed; a restart is needed to apply it");
	http_server_set_config(d->http, cfg, tmpl, web);
	template_free(d->tmpl);
	SSL_CTX_free(d->tls);
	config_free(d->cfg);
	d->cfg = cfg;
	d->tmpl = tmpl;
	d->tls = tls;
	log_info("configuration reloaded from %s (%zu list(s))", cfg->path, cfg->n_lists);
}

static int run(struct daemon *d)
{
	char err[1024];
	unsigned char key[SECRET_LEN];

	if (ensure_parent_dir(d->cfg->database, err, sizeof err) < 0 ||
	    ensure_parent_dir(d->cfg->secret_file, err, sizeof err) < 0 ||
	    secret_load(d->cfg->secret_file, 1, key, err, sizeof err) < 0) {
		log_err("%s", err);
		return EXIT_CONFIG;
	}
	raise_fd_limit(d->cfg->max_connections);
	d->st = store_open(d->cfg->database, err, sizeof err);
	if (!d->st) {
		log_err("%s", err);
		return EXIT_IOERR;
	}
	/* The intake's writer thread wakes the loop: libevent needs locking. */
	if (evthread_use_pthreads() < 0) {
		log_err("cannot enable libevent threading");
		return EXIT_SOFTWARE;
	}
	if (archive_recover(d->st) != STORE_OK)
		log_warn("could not check for an interrupted parse: %s", store_errmsg(d->st));
	d->base = event_base_new();
	if (!d->base || event_base_priority_init(d->base, 3) < 0) {
		log_err("cannot create the event loop");
		return EXIT_SOFTWARE;
	}
	/* After intake everything this connection writes can be derived again
	 * from the fsync'd raw messages, or costs at most a duplicate copy. */
	store_relax_durability(d->st);
	d->delivery = delivery_new(d->base, d->st);
	delivery_set_config(d->delivery, d->cfg);
	d->intake = intake_new(d->base, d->cfg->database, kick_processor, d, err, sizeof err);
	if (!d->intake) {
		log_err("%s", err);
		return EXIT_IOERR;
	}
	/* Network I/O has the default priority 1; archiving yields to it. */
	d->proc = processor_new(d->base, d->st, d->intake, 2, delivery_kick, d->delivery);
	processor_set_config(d->proc, d->cfg, d->tmpl);
	/* Notices, posters' mails and expiry of held posts: at the archiving's
	 * priority, below network I/O. */
	d->housekeeping = housekeeping_new(d->base, d->st, 2, delivery_kick, d->delivery);
	housekeeping_set_config(d->housekeeping, d->cfg, d->tmpl);
	struct webtpl *web = webtpl_load(d->cfg->web_dir, err, sizeof err);
	if (!web) {
		log_err("%s", err);
		return EXIT_CONFIG;
	}
	d->http = http_server_new(d->base, d->st, key, delivery_kick, d->delivery);
	http_server_set_config(d->http, d->cfg, d->tmpl, web);
	if (http_server_listen(d->http, err, sizeof err) < 0) {
		log_err("%s", err);
		return EXIT_UNAVAILABLE;
	}
	d->smtp = smtp_server_new(d->base, d->intake);
	smtp_server_set_config(d->smtp, d->cfg, d->tls);
	if (smtp_server_listen(d->smtp, err, sizeof err) < 0) {
		log_err("%s", err);
		return EXIT_UNAVAILABLE;
	}
	d->sig_term = evsignal_new(d->base, SIGTERM, on_term, d);
	d->sig_int = evsignal_new(d->base, SIGINT, on_term, d);
	d->sig_hup = evsignal_new(d->base, SIGHUP, on_hup, d);
	evsignal_add(d->sig_term, NULL);
	evsignal_add(d->sig_int, NULL);
	evsignal_add(d->sig_hup, NULL);

	log_info("dialogued %s started: %zu list(s), database %s", DIALOGUE_VERSION,
		 d->cfg->n_lists, d->cfg->database);
	processor_kick(d->proc); /* whatever a previous run left unarchived */
	event_base_dispatch(d->base);

	uint64_t batches, msgs;
	intake_stats(d->intake, &batches, &msgs);
	log_info("stopped: %llu message(s) accepted in %llu commit(s)", (unsigned long long)msgs,
		 (unsigned long long)batches);
	return EXIT_OK;
}

static void cleanup(struct daemon *d)
{
	smtp_server_free(d->smtp);
	http_server_free(d->http);
	intake_free(d->intake); /* commits anything still queued */
	processor_free(d->proc);
	housekeeping_free(d->housekeeping);
	delivery_free(d->delivery);
	if (d->deadline)
		event_free(d->deadline);
	if (d->sig_term)
		event_free(d->sig_term);
	if (d->sig_int)
		event_free(d->sig_int);
	if (d->sig_hup)
		event_free(d->sig_hup);
	if (d->base)
		event_base_free(d->base);
	store_close(d->st);
	template_free(d->tmpl);
	SSL_CTX_free(d->tls);
	config_free(d->cfg);
}

int main(int argc, char **argv)
{
	const char *conf = NULL;
	int check_only = 0, use_syslog = 0, verbose = 0;
	static const struct option longopts[] = {
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "c:nsvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 'n':
			check_only = 1;
			break;
		case 's':
			use_syslog = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("dialogued %s\n", DIALOGUE_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!conf)
		conf = config_default_path();

	log_init("dialogued", use_syslog);
	if (verbose)
		log_set_level(LOG_LVL_DEBUG);
	signal(SIGPIPE, SIG_IGN);

	struct daemon d = {0};
	char err[1024];
	d.cfg = config_load(conf, err, sizeof err);
	if (!d.cfg) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	if (prepare_tls(d.cfg, &d.tls, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", conf, err);
		config_free(d.cfg);
		return EXIT_CONFIG;
	}
	d.tmpl = load_templates(d.cfg, err, sizeof err);
	if (!d.tmpl) {
		fprintf(stderr, "%s\n", err);
		SSL_CTX_free(d.tls);
		config_free(d.cfg);
		return EXIT_CONFIG;
	}
	if (check_only) {
		struct webtpl *web = webtpl_load(d.cfg->web_dir, err, sizeof err);
		if (!web) {
			fprintf(stderr, "%s\n", err);
			template_free(d.tmpl);
			SSL_CTX_free(d.tls);
			config_free(d.cfg);
			return EXIT_CONFIG;
		}
		webtpl_free(web);
		printf("%s: configuration ok (%zu list(s))\n", conf, d.cfg->n_lists);
		template_free(d.tmpl);
		SSL_CTX_free(d.tls);
		config_free(d.cfg);
		return EXIT_OK;
	}
	int rc = run(&d);
	cleanup(&d);
	return rc;
}
