/* smtp_commands: one function per SMTP verb, each checking the session
 * state and its argument before acting (RFC 5321 4.1.1, 4.1.4). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "route.h"
#include "smtp_session.h"
#include "util.h"

/* ---- commands ---- */

static void cmd_helo(struct smtp_session *s, const char *arg, int esmtp)
{
	const struct config *cfg = s->srv->cfg;
	if (!smtp_valid_helo(arg)) {
		smtp_session_error(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		return;
	}
	smtp_tx_reset(s);
	s->fwd_ip[0] = '\0';
	snprintf(s->helo, sizeof s->helo, "%s", arg);
	s->esmtp = esmtp;
	smtp_session_enter(s, ST_READY);
	if (!esmtp) {
		smtp_reply(s, "250 %s", cfg->hostname);
		return;
	}
	smtp_reply(s, "250-%s Hello %s [%s]", cfg->hostname, arg, s->client_ip);
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %lld", (long long)cfg->max_message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	if (s->srv->tls && !s->tls)
		smtp_reply(s, "250-STARTTLS");
	if (s->xforward_ok)
		smtp_reply(s, "250-XFORWARD NAME ADDR PROTO HELO SOURCE");
	smtp_reply(s, "250 HELP");
}

static void cmd_mail(struct smtp_session *s, const char *arg)
{
	const struct config *cfg = s->srv->cfg;
	struct smtp_mail_args m;
	switch (s->state) {
	case ST_INIT:
		smtp_session_error(s, "503 5.5.1 Send EHLO or HELO first");
		return;
	case ST_MAIL:
	case ST_RCPT:
		smtp_session_error(s, "503 5.5.1 Nested MAIL command");
		return;
	default:
		break;
	}
	switch (smtp_parse_mail(arg, &m)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_ADDRESS:
		smtp_session_error(s, "501 5.1.7 Bad sender address syntax");
		return;
	case SMTP_PATH_PARAM:
		smtp_session_error(s, "555 5.5.4 Unsupported or malformed MAIL parameter");
		return;
	case SMTP_PATH_SYNTAX:
	case SMTP_PATH_TOO_LONG:
		smtp_session_error(s, "501 5.5.4 Syntax: MAIL FROM:<address> [SIZE=n] [BODY=8BITMIME]");
		return;
	}
	if (!s->esmtp && (m.size >= 0 || m.body != SMTP_BODY_7BIT)) {
		smtp_session_error(s, "555 5.5.4 MAIL parameters need EHLO");
		return;
	}
	if (m.size > cfg->max_message_size) {
		smtp_reply(s, "552 5.3.4 Message size exceeds fixed limit of %lld bytes",
		      (long long)cfg->max_message_size);
		return;
	}
	smtp_tx_reset(s);
	s->tx = intake_msg_new();
	s->tx->mail_from = xstrdup(m.addr);
	smtp_session_enter(s, ST_MAIL);
	smtp_reply(s, "250 2.1.0 Ok");
}

static int tx_has_rcpt(const struct intake_msg *tx, const char *addr)
{
	for (size_t i = 0; i < tx->n_rcpts; i++)
		if (!ascii_strcasecmp(tx->rcpts[i].rcpt, addr))
			return 1;
	return 0;
}

static void cmd_rcpt(struct smtp_session *s, const char *arg)
{
	const struct config *cfg = s->srv->cfg;
	struct smtp_rcpt_args r;
	struct route rt;
	if (s->state != ST_MAIL && s->state != ST_RCPT) {
		smtp_session_error(s, "503 5.5.1 Need MAIL command first");
		return;
	}
	if (s->rcpt_accepted >= (size_t)cfg->max_rcpts) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	switch (smtp_parse_rcpt(arg, &r)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_ADDRESS:
		smtp_session_error(s, "501 5.1.3 Bad recipient address syntax");
		return;
	case SMTP_PATH_PARAM:
		smtp_session_error(s, "555 5.5.4 Unsupported RCPT parameter");
		return;
	case SMTP_PATH_SYNTAX:
	case SMTP_PATH_TOO_LONG:
		smtp_session_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (!strcmp(r.addr, "postmaster") && cfg->n_lists) /* bare <Postmaster> */
		snprintf(r.addr, sizeof r.addr, "postmaster@%s", cfg->lists[0].domain);
	switch (route_rcpt(cfg, r.addr, &rt)) {
	case ROUTE_OK:
		break;
	case ROUTE_BAD_SYNTAX:
		smtp_session_error(s, "501 5.1.3 Bad recipient address syntax");
		return;
	case ROUTE_UNKNOWN_USER:
		log_info("smtp %llu: %s: unknown recipient <%s>", (unsigned long long)s->id,
			 s->client_ip, r.addr);
		smtp_session_error(s, "550 5.1.1 <%s>: Recipient address rejected: no such list address",
			     r.addr);
		return;
	case ROUTE_NOT_OURS:
		log_info("smtp %llu: %s: relay denied for <%s>", (unsigned long long)s->id,
			 s->client_ip, r.addr);
		smtp_session_error(s, "550 5.7.1 <%s>: Relay access denied", r.addr);
		return;
	}
	if (!tx_has_rcpt(s->tx, r.addr)) {
		intake_msg_add_rcpt(s->tx, r.addr, rt.list->name, route_kind_name(rt.kind),
				    rt.detail);
		s->rcpt_accepted++;
	}
	smtp_session_enter(s, ST_RCPT);
	smtp_reply(s, "250 2.1.5 Ok");
}

/* RFC 5321 4.4: a trace header for the hop into us. */
static void add_received(struct smtp_session *s)
{
	char date[40];
	fmt_rfc5322_date(now_epoch(), date);
	sbuf_printf(&s->data.buf,
		    "Received: from %s ([%s])\r\n\tby %s (dialogue) with %s\r\n\tfor <%s>; %s\r\n",
		    s->helo, s->client_ip, s->srv->cfg->hostname,
		    s->tls ? "ESMTPS" : s->esmtp ? "ESMTP" : "SMTP",
		    s->tx->n_rcpts == 1 ? s->tx->rcpts[0].rcpt : "multiple recipients", date);
}

static void cmd_data(struct smtp_session *s, const char *arg)
{
	if (*arg) {
		smtp_session_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->state == ST_MAIL) {
		smtp_session_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	if (s->state != ST_RCPT) {
		smtp_session_error(s, "503 5.5.1 Need RCPT command first");
		return;
	}
	if (s->srv->data_bytes > SMTP_DATA_MEMORY_MAX) {
		smtp_reply(s, "452 4.3.1 Insufficient system storage, try again later");
		return;
	}
	smtp_data_begin(&s->data, (size_t)s->srv->cfg->max_message_size);
	add_received(s);
	s->data.max_size += s->data.buf.len; /* our trace header is not the client's */
	smtp_set_timeout(s, s->srv->cfg->data_timeout);
	smtp_session_enter(s, ST_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void cmd_starttls(struct smtp_session *s, const char *arg)
{
	if (*arg) {
		smtp_session_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (!s->srv->tls) {
		smtp_session_error(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (s->tls) {
		smtp_session_error(s, "503 5.5.1 TLS already active");
		return;
	}
	if (s->state == ST_INIT) {
		smtp_session_error(s, "503 5.5.1 Send EHLO first");
		return;
	}
	SSL *ssl = SSL_new(s->srv->tls);
	if (!ssl) {
		smtp_reply(s, "454 4.7.0 TLS not available due to temporary reason");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	/* RFC 3207 5: anything the client pipelined after STARTTLS was sent in
	 * clear text before the handshake; it must not be executed. */
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);
	if (junk) {
		log_info("smtp %llu: %s: discarding %zu byte(s) pipelined after STARTTLS",
			 (unsigned long long)s->id, s->client_ip, junk);
		evbuffer_drain(in, junk);
	}
	smtp_start_tls(s, ssl);
}

/* XFORWARD (Postfix's extension): a trusted MTA in front of us names its
 * own client, whose address then counts for the rate limits. Only peers
 * in xforward_hosts may; it applies to the next transaction only. */
static void cmd_xforward(struct smtp_session *s, const char *arg)
{
	if (!s->xforward_ok) {
		smtp_session_error(s, "550 5.7.0 XFORWARD not authorized for %s", s->client_ip);
		return;
	}
	if (s->state != ST_READY) {
		smtp_session_error(s, "503 5.5.1 XFORWARD only between transactions, after EHLO");
		return;
	}
	char ip[INET6_ADDRSTRLEN] = "";
	int have_ip = 0;
	for (const char *p = arg; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (!n)
			break;
		const char *eq = memchr(p, '=', n);
		if (!eq || eq == p) {
			smtp_session_error(s, "501 5.5.4 Syntax: XFORWARD attribute=value...");
			return;
		}
		size_t kl = (size_t)(eq - p), vl = n - kl - 1;
		if (kl == 4 && !ascii_strncasecmp(p, "ADDR", 4)) {
			const char *v = eq + 1;
			if (vl > 5 && !ascii_strncasecmp(v, "IPV6:", 5)) {
				v += 5;
				vl -= 5;
			}
			unsigned char buf[16];
			char tmp[INET6_ADDRSTRLEN];
			if (vl && vl < sizeof tmp && v[0] != '[') {
				memcpy(tmp, v, vl);
				tmp[vl] = '\0';
				if (inet_pton(AF_INET, tmp, buf) == 1 || inet_pton(AF_INET6, tmp, buf) == 1) {
					memcpy(ip, tmp, vl + 1);
					have_ip = 1;
				}
			}
		} else if (!((kl == 4 && (!ascii_strncasecmp(p, "NAME", 4) ||
					  !ascii_strncasecmp(p, "HELO", 4) ||
					  !ascii_strncasecmp(p, "PORT", 4))) ||
			     (kl == 5 && !ascii_strncasecmp(p, "PROTO", 5)) ||
			     (kl == 5 && !ascii_strncasecmp(p, "IDENT", 5)) ||
			     (kl == 6 && !ascii_strncasecmp(p, "SOURCE", 6)))) {
			smtp_session_error(s, "501 5.5.4 Bad XFORWARD attribute name");
			return;
		}
		p += n;
	}
	if (have_ip)
		memcpy(s->fwd_ip, ip, sizeof s->fwd_ip);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_rset(struct smtp_session *s, const char *arg)
{
	if (*arg) {
		smtp_session_error(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	smtp_tx_reset(s);
	s->fwd_ip[0] = '\0';
	if (s->state != ST_INIT)
		smtp_session_enter(s, ST_READY);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_ehlo(struct smtp_session *s, const char *arg)
{
	cmd_helo(s, arg, 1);
}

static void cmd_helo_only(struct smtp_session *s, const char *arg)
{
	cmd_helo(s, arg, 0);
}

static void cmd_noop(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "221 2.0.0 %s Bye", s->srv->cfg->hostname);
	smtp_session_close(s);
}

static void cmd_vrfy(struct smtp_session *s, const char *arg)
{
	if (!*arg)
		smtp_session_error(s, "501 5.5.4 Syntax: VRFY address");
	else
		smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt "
			      "delivery");
}

static void cmd_expn(struct smtp_session *s, const char *arg)
{
	/* Expanding a list would hand its members to harvesters. */
	smtp_reply(s, "502 5.5.1 EXPN not available");
}

static void cmd_help(struct smtp_session *s, const char *arg)
{
	smtp_reply(s, "214-2.0.0 dialogue mailing list server; commands:");
	smtp_reply(s, "214-2.0.0   EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP%s",
		   s->srv->tls && !s->tls ? " STARTTLS" : "");
	smtp_reply(s, "214 2.0.0 End of HELP info");
}

static void cmd_unknown(struct smtp_session *s, const char *arg)
{
	smtp_session_error(s, "500 5.5.1 Command unrecognized");
}

/* Indexed by enum smtp_verb. */
static void (*const handlers[])(struct smtp_session *, const char *) = {
	[SMTP_HELO] = cmd_helo_only, [SMTP_EHLO] = cmd_ehlo,	   [SMTP_MAIL] = cmd_mail,
	[SMTP_RCPT] = cmd_rcpt,	     [SMTP_DATA] = cmd_data,	   [SMTP_RSET] = cmd_rset,
	[SMTP_NOOP] = cmd_noop,	     [SMTP_QUIT] = cmd_quit,	   [SMTP_VRFY] = cmd_vrfy,
	[SMTP_EXPN] = cmd_expn,	     [SMTP_HELP] = cmd_help,	   [SMTP_STARTTLS] = cmd_starttls,
	[SMTP_XFORWARD] = cmd_xforward,
	[SMTP_UNKNOWN] = cmd_unknown,
};

void smtp_command(struct smtp_session *s, char *line)
{
	const char *arg;
	enum smtp_verb verb = smtp_parse_verb(line, &arg);
	if (s->srv->shutting_down && verb != SMTP_QUIT) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down", s->srv->cfg->hostname);
		smtp_session_close(s);
		return;
	}
	handlers[verb](s, arg);
}
