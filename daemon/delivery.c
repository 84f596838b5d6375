/* delivery: claim due rows -> build transactions -> smtp_client -> record
 * outcomes. The store is only touched from the event loop, in batches. */
#include "delivery.h"

#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "rewrite.h"
#include "smtp_client.h"
#include "util.h"

/* Rows claimed per look at the queue, and the most recipients we keep in
 * the client's hands at once: enough to keep every connection pipelining,
 * small enough that a crash repeats little. */
#define CLAIM_BATCH 1000
#define MAX_IN_FLIGHT 2000
/* The queue is looked at this often even without a kick, so `queue retry`
 * from the CLI and retry times are noticed promptly. */
#define PERIODIC_CHECK_SECONDS 1
#define BODY_CACHE 8

struct out_msg {
	int64_t id;
	char *list;
	char *kind;
	char *mail_from;
	int verp;
	struct smtp_body *body;
};

/* One SMTP transaction and the queue rows it carries. */
struct job {
	struct delivery *d;
	struct smtp_client_txn txn;
	int64_t *row_ids;
	int *attempts;
	int64_t *created;
	char **rcpts;
	size_t n;
	char *mail_from;
	char *head;
};

struct delivery {
	struct event_base *base;
	struct store *st;
	const struct config *cfg;
	struct smtp_client *client;
	char *client_key; /* relay settings the client was made with */
	struct event *check_ev;  /* periodic look at the queue */
	struct event *kick_ev;   /* look now */
	struct event *flush_ev;  /* commit collected outcomes */
	struct store_attempt *results;
	char **result_texts; /* owned texts behind results[].last_error */
	size_t n_results, cap_results;
	size_t in_flight; /* recipients handed to the client */
	struct out_msg cache[BODY_CACHE];
	size_t cache_next;
	int stopping;
	int replacing_client; /* the old pool's unfinished work comes back */
	void (*drained)(void *); /* delivery_drain's callback, until it ran */
	void *drained_arg;
};

static void check_drained(struct delivery *d)
{
	if (!d->drained || d->in_flight || d->n_results)
		return;
	void (*done)(void *) = d->drained;
	d->drained = NULL;
	done(d->drained_arg);
}

static void out_msg_clear(struct out_msg *m)
{
	free(m->list);
	free(m->kind);
	free(m->mail_from);
	if (m->body)
		smtp_body_unref(m->body);
	memset(m, 0, sizeof *m);
}

/* The queued message MSG_ID, dot-stuffed once and kept for its copies. */
static struct out_msg *load_msg(struct delivery *d, int64_t msg_id)
{
	for (size_t i = 0; i < BODY_CACHE; i++)
		if (d->cache[i].body && d->cache[i].id == msg_id)
			return &d->cache[i];
	struct store_outbound_msg m;
	if (store_outbound_msg_get(d->st, msg_id, &m) != STORE_OK)
		return NULL;
	struct out_msg *slot = &d->cache[d->cache_next];
	d->cache_next = (d->cache_next + 1) % BODY_CACHE;
	out_msg_clear(slot);
	size_t len;
	char *stuffed = smtp_dot_stuff(m.body, m.len, &len);
	slot->id = msg_id;
	slot->list = m.list;
	slot->kind = m.kind;
	slot->mail_from = m.mail_from;
	slot->verp = m.verp;
	slot->body = smtp_body_new(stuffed, len);
	m.list = m.kind = m.mail_from = NULL;
	store_outbound_msg_clear(&m);
	return slot;
}

/* ---- outcomes ---- */

static void add_result(struct delivery *d, int64_t id, const char *status, int64_t next,
		       char *text)
{
	if (d->n_results == d->cap_results) {
		d->cap_results = d->cap_results ? d->cap_results * 2 : 256;
		d->results = xrealloc(d->results, d->cap_results * sizeof *d->results);
		d->result_texts = xrealloc(d->result_texts, d->cap_results * sizeof(char *));
	}
	d->results[d->n_results] = (struct store_attempt){id, status, next, text};
	d->result_texts[d->n_results] = text;
	d->n_results++;
	event_active(d->flush_ev, 0, 0);
}

static void flush_results(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	if (d->n_results == 0) {
		check_drained(d);
		return;
	}
	int rc = store_outbound_finish(d->st, d->results, d->n_results, now_epoch());
	if (rc == STORE_BUSY) {
		/* Keep them and try again shortly; the rows stay 'sending'. */
		struct timeval tv = {0, 100000};
		event_add(d->flush_ev, &tv);
		return;
	}
	if (rc != STORE_OK)
		log_err("delivery: recording %zu outcome(s) failed: %s; they are retried after "
			"a restart",
			d->n_results, store_errmsg(d->st));
	for (size_t i = 0; i < d->n_results; i++)
		free(d->result_texts[i]);
	d->n_results = 0;
	if (!d->stopping)
		delivery_kick(d);
	check_drained(d);
}

/* When to try a recipient again after a temporary failure, or 0 when it
 * has waited long enough (give_up_after) and fails for good. */
static int64_t next_retry(const struct config *cfg, int attempts_before, int64_t created,
			  int64_t now)
{
	size_t i = (size_t)attempts_before < cfg->n_retry ? (size_t)attempts_before
							  : cfg->n_retry - 1;
	int64_t next = now + cfg->retry[i];
	if (next - created > cfg->give_up_after)
		return now - created >= cfg->give_up_after ? 0 : created + cfg->give_up_after;
	return next;
}

static void job_free(struct job *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->rcpts[i]);
	free(j->rcpts);
	free(j->row_ids);
	free(j->attempts);
	free(j->created);
	free(j->mail_from);
	free(j->head);
	free(j);
}

static void job_done(struct smtp_client_txn *t, void *arg)
{
	struct job *j = arg;
	struct delivery *d = j->d;
	int64_t now = now_epoch();
	for (size_t i = 0; i < j->n; i++) {
		const struct smtp_result *r = &t->rcpt_results[i];
		const char *text = r->text ? r->text : "";
		if (r->code >= 200 && r->code < 300) {
			log_debug("delivery: %s: sent (%d %s)", j->rcpts[i], r->code, text);
			add_result(d, j->row_ids[i], "sent", 0, xstrdup(""));
			continue;
		}
		char *err = r->code ? xasprintf("%d %s", r->code, text) : xstrdup(text);
		if (r->code >= 500) {
			log_info("delivery: %s: failed: %s", j->rcpts[i], err);
			add_result(d, j->row_ids[i], "failed", 0, err);
			continue;
		}
		if (d->stopping || d->replacing_client) {
			/* Not the relay's fault: try again as soon as we can. */
			add_result(d, j->row_ids[i], "queued", now, err);
			continue;
		}
		int64_t next = next_retry(d->cfg, j->attempts[i], j->created[i], now);
		if (!next) {
			char *gave_up = xasprintf("gave up: %s", err);
			free(err);
			log_info("delivery: %s: %s", j->rcpts[i], gave_up);
			add_result(d, j->row_ids[i], "failed", 0, gave_up);
			continue;
		}
		log_info("delivery: %s: deferred: %s", j->rcpts[i], err);
		add_result(d, j->row_ids[i], "deferred", next, err);
	}
	d->in_flight -= j->n;
	smtp_client_txn_clear(t);
	job_free(j);
}

/* ---- building transactions ---- */

static struct job *job_new(struct delivery *d, size_t cap)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->d = d;
	j->row_ids = xcalloc(cap, sizeof *j->row_ids);
	j->attempts = xcalloc(cap, sizeof *j->attempts);
	j->created = xcalloc(cap, sizeof *j->created);
	j->rcpts = xcalloc(cap, sizeof *j->rcpts);
	return j;
}

static void job_add(struct job *j, const struct store_due *r)
{
	j->row_ids[j->n] = r->id;
	j->attempts[j->n] = r->attempts;
	j->created[j->n] = r->created;
	j->rcpts[j->n] = xstrdup(r->recipient);
	j->n++;
}

static void job_submit(struct delivery *d, struct job *j, struct out_msg *m)
{
	j->txn.mail_from = j->mail_from;
	j->txn.rcpts = (const char *const *)j->rcpts;
	j->txn.n_rcpts = j->n;
	j->txn.head = j->head;
	j->txn.head_len = strlen(j->head);
	j->txn.body = m->body;
	j->txn.done = job_done;
	j->txn.arg = j;
	d->in_flight += j->n;
	smtp_client_submit(d->client, &j->txn);
}

/* Per-copy header lines: a post carries List-Unsubscribe (with the
 * member's one-click URL when the copy is theirs alone). */
static char *copy_head(struct delivery *d, const struct out_msg *m, const char *token)
{
	const struct list_cfg *l = config_find_list(d->cfg, m->list);
	if (!l || strcmp(m->kind, "post"))
		return xstrdup("");
	char *head = rewrite_recipient_head(d->cfg, l, token);
	size_t len;
	char *stuffed = smtp_dot_stuff(head, strlen(head), &len);
	free(head);
	return stuffed;
}

static char *verp_sender(const char *base, const char *rcpt)
{
	const char *at = strrchr(base, '@');
	char *enc = address_verp_encode(rcpt);
	char *s = (at && enc) ? xasprintf("%.*s+%s%s", (int)(at - base), base, enc, at)
			      : xstrdup(base);
	free(enc);
	return s;
}

/* Rows of one message, consecutive in DUE[0..n): make its transactions. */
static void submit_message(struct delivery *d, struct out_msg *m, struct store_due *due,
			   size_t n)
{
	if (m->verp) {
		for (size_t i = 0; i < n; i++) {
			struct job *j = job_new(d, 1);
			job_add(j, &due[i]);
			j->mail_from = verp_sender(m->mail_from, due[i].recipient);
			j->head = copy_head(d, m, due[i].token);
			job_submit(d, j, m);
		}
		return;
	}
	size_t per = (size_t)d->cfg->max_recipients;
	for (size_t i = 0; i < n; i += per) {
		size_t k = n - i < per ? n - i : per;
		struct job *j = job_new(d, k);
		for (size_t x = 0; x < k; x++)
			job_add(j, &due[i + x]);
		j->mail_from = xstrdup(m->mail_from);
		j->head = copy_head(d, m, NULL);
		job_submit(d, j, m);
	}
}

static void claim_and_send(struct delivery *d)
{
	while (!d->stopping && d->client && d->in_flight < MAX_IN_FLIGHT) {
		struct store_due *due = NULL;
		size_t n = 0;
		int rc = store_outbound_claim(d->st, now_epoch(), CLAIM_BATCH, &due, &n);
		if (rc != STORE_OK) {
			if (rc != STORE_BUSY)
				log_err("delivery: cannot read the queue: %s", store_errmsg(d->st));
			return; /* the periodic check tries again */
		}
		if (n == 0) {
			free(due);
			return;
		}
		for (size_t i = 0; i < n;) {
			size_t k = i + 1;
			while (k < n && due[k].msg_id == due[i].msg_id)
				k++;
			struct out_msg *m = load_msg(d, due[i].msg_id);
			if (m) {
				submit_message(d, m, due + i, k - i);
			} else {
				for (size_t x = i; x < k; x++)
					add_result(d, due[x].id, "failed", 0,
						   xstrdup("queued message is missing"));
			}
			i = k;
		}
		store_due_free(due, n);
	}
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	claim_and_send(arg);
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
	struct delivery *d = arg;
	int64_t when;
	if (store_outbound_next_due(d->st, &when) == STORE_OK && when && when <= now_epoch())
		claim_and_send(d);
}

void delivery_kick(void *arg)
{
	struct delivery *d = arg;
	event_active(d->kick_ev, 0, 0);
}

/* ---- life cycle ---- */

static char *client_key(const struct config *cfg)
{
	return xasprintf("%s|%s|%d|%ld|%s", cfg->relay.host, cfg->relay.port, (int)cfg->relay_tls,
			 cfg->connections, cfg->hostname);
}

struct delivery *delivery_new(struct event_base *base, struct store *st)
{
	struct delivery *d = xcalloc(1, sizeof *d);
	d->base = base;
	d->st = st;
	d->kick_ev = event_new(base, -1, 0, on_kick, d);
	d->flush_ev = event_new(base, -1, 0, flush_results, d);
	d->check_ev = event_new(base, -1, EV_PERSIST, on_check, d);
	if (!d->kick_ev || !d->flush_ev || !d->check_ev) {
		log_err("delivery: cannot create events");
		abort();
	}
	long n;
	if (store_outbound_recover(st, &n) != STORE_OK)
		log_err("delivery: cannot requeue interrupted deliveries: %s", store_errmsg(st));
	else if (n)
		log_info("delivery: %ld recipient(s) were being sent when the daemon stopped; "
			 "queued again",
			 n);
	struct timeval tv = {PERIODIC_CHECK_SECONDS, 0};
	event_add(d->check_ev, &tv);
	return d;
}

void delivery_set_config(struct delivery *d, const struct config *cfg)
{
	d->cfg = cfg;
	char *key = client_key(cfg);
	if (d->client && !strcmp(key, d->client_key)) {
		free(key);
		return;
	}
	if (d->client) {
		log_info("delivery: relay settings changed; reconnecting");
		d->replacing_client = 1;
		smtp_client_free(d->client); /* its transactions come back queued */
		d->replacing_client = 0;
	}
	struct smtp_client_opts o = {
		.host = cfg->relay.host,
		.port = cfg->relay.port,
		.helo = cfg->hostname,
		.tls = cfg->relay_tls,
		.connections = cfg->connections,
		.idle_timeout = 30,
	};
	const char *scale = getenv("DIALOGUE_SMTP_TIMEOUT_MS"); /* tests */
	if (scale && *scale)
		o.timeout_scale_ms = atoll(scale);
	d->client = smtp_client_new(d->base, &o);
	free(d->client_key);
	d->client_key = key;
	delivery_kick(d);
}

void delivery_drain(struct delivery *d, void (*done)(void *), void *arg)
{
	d->stopping = 1;
	d->drained = done;
	d->drained_arg = arg;
	if (d->client)
		smtp_client_drain(d->client);
	event_active(d->flush_ev, 0, 0); /* reports, or finds nothing to wait for */
}

void delivery_free(struct delivery *d)
{
	if (!d)
		return;
	d->stopping = 1;
	d->drained = NULL;
	if (d->client)
		smtp_client_free(d->client);
	flush_results(-1, 0, d);
	for (size_t i = 0; i < BODY_CACHE; i++)
		out_msg_clear(&d->cache[i]);
	free(d->results);
	free(d->result_texts);
	free(d->client_key);
	event_free(d->kick_ev);
	event_free(d->flush_ev);
	event_free(d->check_ev);
	free(d);
}
