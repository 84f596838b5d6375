/* template: the mails dialogued writes itself, and the composing of them.
 *
 * A template file is "Subject: ..." on its first line, a blank line, and
 * the body ('#' lines are text like any other). In both, {{name}} is
 * replaced by a variable's value (unknown names by ""), and
 * {{#name}}...{{/name}} keeps what it encloses only when the variable is
 * not empty ({{^name}}...{{/name}}: only when it is). A line holding
 * nothing but such section tags disappears entirely, so a section can span
 * whole lines without leaving blank ones behind.
 *
 * The rendered body is reflowed: the lines of a paragraph are joined and
 * wrapped at 78 columns, so values of any length read well. Indented lines
 * (commands, addresses, lists) and lines with a URL are kept as they are.
 *
 * Besides the caller's variables (which win), every template may use:
 * list, list_title, list_address, description, owner_address,
 * request_address, join_address, leave_address, hostname, base_url,
 * archive_url (public archives), max_members ("" when no cap), recipient,
 * address (default: the recipient), address_shell (address quoted for a
 * shell), and the flags closed, needs_approval, posts_moderated and
 * announce_only ("yes" or "").
 *
 * Values come from the network (names, reasons, commands), so they are
 * inserted once and never scanned for tags, capped in size, cleaned of
 * control characters and invalid UTF-8, and never reach a header except
 * through the Subject, which is flattened to one line and encoded. */
#include "template.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "address.h"
#include "template_int.h"
#include "util.h"

static const char *const tpl_names[TPL_COUNT + 1] = {
	"confirm-join", "confirm-leave", "invite", "welcome", "goodbye", "refused", "help",
	"already-member", "not-member", "token-invalid", "pending-approval", "approved", "denied",
	"moderator-pending", "list-full", "moderator-notice", "post-held", "post-rejected",
	"post-expired", "post-withdrawn", "moderation-invalid", NULL};

struct tpl {
	char *subject;
	char *body;
};

struct templates {
	struct tpl t[TPL_COUNT];
};

const char *const *template_names(void)
{
	return tpl_names;
}

static int tpl_index(const char *name)
{
	for (int i = 0; name && i < TPL_COUNT; i++)
		if (strcmp(tpl_names[i], name) == 0)
			return i;
	return -1;
}

const char *template_builtin(const char *name)
{
	int i = tpl_index(name);
	return i < 0 ? NULL : template_builtin_text[i];
}

/* ---- tags ---- */

enum tag_kind { TAG_VAR, TAG_OPEN, TAG_INVERT, TAG_CLOSE };

struct tag {
	enum tag_kind kind;
	const char *name;
	size_t name_len;
	size_t len; /* of the whole tag */
};

int tpl_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

/* A tag at S (N bytes)? Every scan is bounded, so rendering stays linear
 * however many "{{" the text holds. */
static int parse_tag(const char *s, size_t n, struct tag *tg)
{
	size_t i = 2, sp;

	if (n < 5 || s[0] != '{' || s[1] != '{')
		return 0;
	tg->kind = TAG_VAR;
	if (s[i] == '#' || s[i] == '^' || s[i] == '/') {
		tg->kind = s[i] == '#' ? TAG_OPEN : s[i] == '^' ? TAG_INVERT : TAG_CLOSE;
		i++;
	}
	for (sp = 0; i < n && s[i] == ' ' && sp < 4; sp++)
		i++;
	tg->name = s + i;
	while (i < n && tpl_name_char(s[i]) && (size_t)(s + i - tg->name) < TPL_NAME_MAX)
		i++;
	tg->name_len = (size_t)(s + i - tg->name);
	if (!tg->name_len)
		return 0;
	for (sp = 0; i < n && s[i] == ' ' && sp < 4; sp++)
		i++;
	if (i + 1 >= n || s[i] != '}' || s[i + 1] != '}')
		return 0;
	tg->len = i + 2;
	return 1;
}

/* ---- loading ---- */

static void tpl_clear(struct tpl *p)
{
	free(p->subject);
	free(p->body);
	p->subject = p->body = NULL;
}

/* Sections in S (N bytes, starting at line LINE) must nest and close. */
static int check_sections(const char *file, const char *s, size_t n, int line, char *err,
			  size_t errlen)
{
	struct tag st[TPL_DEPTH];
	int st_line[TPL_DEPTH];
	int depth = 0;
	struct tag tg;

	for (size_t i = 0; i < n;) {
		if (s[i] == '\n')
			line++;
		if (s[i] != '{' || !parse_tag(s + i, n - i, &tg)) {
			i++;
			continue;
		}
		i += tg.len;
		if (tg.kind == TAG_OPEN || tg.kind == TAG_INVERT) {
			if (depth == TPL_DEPTH) {
				snprintf(err, errlen, "%s:%d: sections nested too deep", file, line);
				return -1;
			}
			st_line[depth] = line;
			st[depth++] = tg;
		} else if (tg.kind == TAG_CLOSE) {
			if (!depth || st[depth - 1].name_len != tg.name_len ||
			    memcmp(st[depth - 1].name, tg.name, tg.name_len) != 0) {
				snprintf(err, errlen, "%s:%d: {{/%.*s}} closes no open section", file,
					 line, (int)tg.name_len, tg.name);
				return -1;
			}
			depth--;
		}
	}
	if (depth) {
		snprintf(err, errlen, "%s:%d: {{#%.*s}} is never closed", file, st_line[depth - 1],
			 (int)st[depth - 1].name_len, st[depth - 1].name);
		return -1;
	}
	return 0;
}

/* Parse the text of a template file into OUT. Lines may end in CRLF; a
 * leading byte-order mark is skipped. */
static int parse_text(const char *file, const char *text, size_t len, struct tpl *out,
		      char *err, size_t errlen)
{
	struct sbuf b = {0};
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0, bad, k;
	int line = 1;

	if (len > TPL_FILE_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", file, TPL_FILE_MAX);
		return -1;
	}
	if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
		i = 3;
	while (i < len) {
		if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') {
			i++;
			continue;
		}
		if (s[i] == '\n') {
			line++;
		} else if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
			snprintf(err, errlen, "%s:%d: control character 0x%02x", file, line, s[i]);
			goto fail;
		} else if (s[i] >= 0x80) {
			k = utf8_sequence(s + i, len - i, &bad);
			if (!k) {
				snprintf(err, errlen, "%s:%d: not valid UTF-8", file, line);
				goto fail;
			}
			sbuf_add(&b, s + i, k);
			i += k;
			continue;
		}
		sbuf_addc(&b, (char)s[i++]);
	}
	if (!b.buf)
		sbuf_adds(&b, "");

	char *nl = strchr(b.buf, '\n');
	size_t l1 = nl ? (size_t)(nl - b.buf) : b.len;
	if (l1 < 8 || ascii_strncasecmp(b.buf, "Subject:", 8) != 0) {
		snprintf(err, errlen, "%s:1: the first line must be \"Subject: ...\"", file);
		goto fail;
	}
	char *subj = str_trim(xstrndup(b.buf + 8, l1 - 8));
	if (!*subj) {
		free(subj);
		snprintf(err, errlen, "%s:1: the Subject is empty", file);
		goto fail;
	}
	const char *body = nl ? nl + 1 : b.buf + b.len;
	if (*body) {
		const char *e = strchr(body, '\n');
		for (const char *p = body; p < (e ? e : body + strlen(body)); p++) {
			if (*p != ' ' && *p != '\t') {
				free(subj);
				snprintf(err, errlen, "%s:2: a blank line must follow the Subject",
					 file);
				goto fail;
			}
		}
		body = e ? e + 1 : body + strlen(body);
	}
	if (check_sections(file, subj, strlen(subj), 1, err, errlen) < 0 ||
	    check_sections(file, body, strlen(body), 3, err, errlen) < 0) {
		free(subj);
		goto fail;
	}
	tpl_clear(out);
	out->subject = subj;
	out->body = xstrdup(body);
	sbuf_free(&b);
	return 0;
fail:
	sbuf_free(&b);
	return -1;
}

int template_set(struct templates *t, const char *name, const char *text, size_t len,
		 const char *file, char *err, size_t errlen)
{
	struct tpl p = {0};
	int i = tpl_index(name);

	if (!t || i < 0) {
		snprintf(err, errlen, "%s: no template called \"%s\"", file ? file : "template",
			 name ? name : "");
		return -1;
	}
	if (parse_text(file ? file : name, text ? text : "", text ? len : 0, &p, err, errlen) < 0)
		return -1;
	tpl_clear(&t->t[i]);
	t->t[i] = p;
	return 0;
}

/* Read at most TPL_FILE_MAX + 1 bytes of a regular file. Returns NULL
 * with errno set (ENOENT when there is nothing there). */
static char *read_capped(const char *path, size_t *len)
{
	struct sbuf b = {0};
	struct stat st;
	char tmp[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	while (b.len <= TPL_FILE_MAX && (n = read(fd, tmp, sizeof(tmp))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			sbuf_free(&b);
			errno = e;
			return NULL;
		}
		sbuf_add(&b, tmp, (size_t)n);
	}
	close(fd);
	*len = b.len;
	return sbuf_detach(&b);
}

struct templates *template_load(const char *dir, char *err, size_t errlen)
{
	struct templates *t = xcalloc(1, sizeof(*t));

	for (int i = 0; i < TPL_COUNT; i++) {
		const char *text = template_builtin_text[i];
		char *path = NULL, *data = NULL;
		size_t len = strlen(text);
		int rc;

		if (dir && *dir) {
			path = xasprintf("%s/%s.txt", dir, tpl_names[i]);
			data = read_capped(path, &len);
			if (!data && errno != ENOENT && errno != ENOTDIR) {
				snprintf(err, errlen, "%s: %s", path,
					 errno == EINVAL ? "not a regular file" : strerror(errno));
				free(path);
				goto fail;
			}
			if (data)
				text = data;
			else
				len = strlen(text);
		}
		rc = template_set(t, tpl_names[i], text, len, data ? path : tpl_names[i], err,
				  errlen);
		free(data);
		free(path);
		if (rc < 0)
			goto fail;
	}
	return t;
fail:
	template_free(t);
	return NULL;
}

void template_free(struct templates *t)
{
	if (!t)
		return;
	for (int i = 0; i < TPL_COUNT; i++)
		tpl_clear(&t->t[i]);
	free(t);
}

/* ---- rendering ---- */

struct render {
	struct sbuf *out;
	const struct template_var *vars[2]; /* the caller's first, then ours */
	size_t n_vars[2];
	struct {
		const char *name;
		size_t len;
		int on;
	} st[TPL_DEPTH];
	int depth;
	int off;    /* enclosing sections that are off */
	int header; /* values go into a header: one line */
	int mute;   /* a line of section tags only */
};

static const char *lookup(const struct render *r, const char *name, size_t len)
{
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < r->n_vars[k]; i++) {
			const struct template_var *v = &r->vars[k][i];
			if (v->name && strlen(v->name) == len && memcmp(v->name, name, len) == 0)
				return v->value ? v->value : "";
		}
	return "";
}

/* Insert value V: valid UTF-8 without controls; newlines become INDENT'ed
 * lines in a body and spaces in a header. */
static void put_value(struct render *r, const char *v, const char *indent, size_t indent_len)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t n = strnlen(v, TPL_VALUE_MAX + 1), i = 0, k, bad;
	size_t max = n > TPL_VALUE_MAX ? TPL_VALUE_MAX : n;

	while (i < max) {
		if (s[i] == '\r' || s[i] == '\n') {
			i += s[i] == '\r' && i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
			if (r->header) {
				sbuf_addc(r->out, ' ');
			} else {
				sbuf_addc(r->out, HARD_NL);
				sbuf_add(r->out, indent, indent_len);
			}
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			if (s[i] == '\t')
				sbuf_addc(r->out, r->header ? ' ' : '\t');
			i++;
		} else if (s[i] < 0x80) {
			sbuf_addc(r->out, (char)s[i++]);
		} else if ((k = utf8_sequence(s + i, n - i, &bad)) != 0) {
			sbuf_add(r->out, s + i, k);
			i += k;
		} else {
			sbuf_adds(r->out, "\xef\xbf\xbd");
			i += bad;
		}
	}
	if (n > max)
		sbuf_adds(r->out, " [...]");
}

static void do_tag(struct render *r, const struct tag *tg, const char *indent, size_t indent_len)
{
	if (tg->kind == TAG_VAR) {
		if (!r->off && !r->mute && r->out->len < TPL_BODY_MAX)
			put_value(r, lookup(r, tg->name, tg->name_len), indent, indent_len);
	} else if (tg->kind != TAG_CLOSE) {
		if (r->depth == TPL_DEPTH)
			return; /* refused at load; ignored here */
		int on = (*lookup(r, tg->name, tg->name_len) != '\0') == (tg->kind == TAG_OPEN);
		r->st[r->depth].name = tg->name;
		r->st[r->depth].len = tg->name_len;
		r->st[r->depth++].on = on;
		r->off += !on;
	} else if (r->depth && r->st[r->depth - 1].len == tg->name_len &&
		   memcmp(r->st[r->depth - 1].name, tg->name, tg->name_len) == 0) {
		r->off -= !r->st[--r->depth].on;
	}
}

/* Render one line S (N bytes, no newline) of template text. */
static void render_line(struct render *r, const char *s, size_t n)
{
	size_t ind = 0;
	struct tag tg;

	while (ind < n && (s[ind] == ' ' || s[ind] == '\t'))
		ind++;
	for (size_t i = 0; i < n;) {
		if (s[i] == '{' && parse_tag(s + i, n - i, &tg)) {
			do_tag(r, &tg, s, ind);
			i += tg.len;
			continue;
		}
		if (!r->off && !r->mute && r->out->len < TPL_BODY_MAX)
			sbuf_addc(r->out, s[i]);
		i++;
	}
}

/* Does line S hold only section tags (at least one) and blanks? */
static int tags_only(const char *s, size_t n)
{
	struct tag tg;
	int tags = 0;

	for (size_t i = 0; i < n;) {
		if (s[i] == ' ' || s[i] == '\t')
			i++;
		else if (parse_tag(s + i, n - i, &tg) && tg.kind != TAG_VAR && ++tags)
			i += tg.len;
		else
			return 0;
	}
	return tags;
}

static void render_body(struct render *r, const char *s)
{
	while (*s) {
		const char *e = strchr(s, '\n');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		r->mute = tags_only(s, n);
		render_line(r, s, n);
		if (e && !r->mute && !r->off && r->out->len < TPL_BODY_MAX)
			sbuf_addc(r->out, '\n');
		r->mute = 0;
		s += n + (e ? 1 : 0);
	}
}

/* What template_compose owns for one mail. */
enum { OWN_SHELL, OWN_OWNER, OWN_REQUEST, OWN_JOIN, OWN_LEAVE, OWN_ARCHIVE, OWN_MAX, OWN_TITLE,
       OWN_COUNT };

/* template_compose, with ATT[0..n_att) attached (multipart/mixed) when
 * N_ATT > 0. */
static char *compose(const struct templates *t, const struct config *cfg,
		     const struct list_cfg *l, const char *name, const struct template_var *vars,
		     size_t n_vars, const char *to, const char *reply_to, const char *from,
		     const struct template_attachment *att, size_t n_att, size_t *out_len)
{
	char *own[OWN_COUNT] = {0};
	struct sbuf subj = {0}, body = {0}, wrapped = {0}, msg = {0};
	struct render r = {0};
	int i = tpl_index(name);
	const char *base, *host, *lname;
	char *subject;
	size_t blen;

	if (!t || !cfg || !l || !l->local || !l->domain || !l->address || i < 0 || !to ||
	    !address_valid(to) || (reply_to && *reply_to && !address_valid(reply_to)) ||
	    (from && *from && !address_valid(from)))
		return NULL;
	base = cfg->base_url ? cfg->base_url : "";
	host = cfg->hostname && *cfg->hostname ? cfg->hostname : l->domain;
	lname = l->name ? l->name : l->local;
	blen = strlen(base);
	if (blen && base[blen - 1] == '/')
		blen--;

	own[OWN_OWNER] = xasprintf("%s-owner@%s", l->local, l->domain);
	own[OWN_REQUEST] = xasprintf("%s-request@%s", l->local, l->domain);
	own[OWN_JOIN] = xasprintf("%s-join@%s", l->local, l->domain);
	own[OWN_LEAVE] = xasprintf("%s-leave@%s", l->local, l->domain);
	/* Only a site that is served: base_url alone may name a site that is
	 * not running (the web off, [http] listen empty). */
	own[OWN_ARCHIVE] = blen && cfg->n_http_listen && l->archive == ARCHIVE_PUBLIC ?
		xasprintf("%.*s/%s/", (int)blen, base, lname) : xstrdup("");
	own[OWN_MAX] = l->max_members > 0 ? xasprintf("%ld", l->max_members) : xstrdup("");
	own[OWN_TITLE] = tmail_header_text(l->title && *l->title ? l->title : lname, 200);

	struct template_var std[] = {
		{"address_shell", ""}, /* set below, from the address in effect */
		{"owner_address", own[OWN_OWNER]},
		{"request_address", own[OWN_REQUEST]},
		{"join_address", own[OWN_JOIN]},
		{"leave_address", own[OWN_LEAVE]},
		{"archive_url", own[OWN_ARCHIVE]},
		{"max_members", own[OWN_MAX]},
		{"list_title", own[OWN_TITLE]},
		{"list", lname},
		{"list_address", l->address},
		{"description", l->description ? l->description : ""},
		{"hostname", host},
		{"base_url", base},
		{"recipient", to},
		{"address", to},
		{"closed", l->subscribe_policy == SUB_CLOSED ? "yes" : ""},
		{"needs_approval", l->subscribe_policy == SUB_APPROVE ? "yes" : ""},
		{"posts_moderated", l->post_policy == POST_MODERATED ? "yes" : ""},
		{"announce_only", l->post_policy == POST_ANNOUNCE ? "yes" : ""},
	};
	r.vars[0] = vars;
	r.n_vars[0] = vars ? n_vars : 0;
	r.vars[1] = std;
	r.n_vars[1] = sizeof(std) / sizeof(std[0]);
	own[OWN_SHELL] = tmail_shell_word(lookup(&r, "address", 7));
	std[0].value = own[OWN_SHELL];

	r.out = &subj;
	r.header = 1;
	render_line(&r, t->t[i].subject, strlen(t->t[i].subject));
	subject = tmail_header_text(subj.buf ? subj.buf : "", TPL_SUBJECT_MAX);

	r.out = &body;
	r.header = 0;
	r.depth = r.off = 0;
	render_body(&r, t->t[i].body);
	tmail_wrap_body(&wrapped, body.buf ? body.buf : "", body.len);

	tmail_add_date(&msg, time(NULL));
	tmail_add_from(&msg, own[OWN_TITLE], from && *from ? from : own[OWN_OWNER]);
	sbuf_printf(&msg, "To: %s\r\n", to);
	if (reply_to && *reply_to)
		sbuf_printf(&msg, "Reply-To: %s\r\n", reply_to);
	tmail_add_text_header(&msg, "Subject", subject);
	tmail_add_message_id(&msg, host);
	sbuf_adds(&msg, "MIME-Version: 1.0\r\n");
	int plain = tmail_is_7bit(wrapped.buf ? wrapped.buf : "", wrapped.len);
	char boundary[TMAIL_BOUNDARY_LEN + 1] = "";
	if (n_att) {
		/* Chosen to occur in none of the parts. */
		tmail_boundary(boundary, wrapped.buf ? wrapped.buf : "", wrapped.len, att, n_att);
		sbuf_printf(&msg, "Content-Type: multipart/mixed;\r\n boundary=\"%s\"\r\n",
			    boundary);
		if (tmail_attachments_8bit(att, n_att))
			sbuf_adds(&msg, "Content-Transfer-Encoding: 8bit\r\n");
		sbuf_printf(&msg, "Auto-Submitted: auto-replied\r\nX-Loop: %s\r\n"
				  "Precedence: list\r\n\r\n",
			    l->address);
		sbuf_adds(&msg, "This is a message in MIME format.\r\n");
		sbuf_printf(&msg, "\r\n--%s\r\n", boundary);
		sbuf_printf(&msg, "Content-Type: text/plain; charset=utf-8\r\n"
				  "Content-Transfer-Encoding: %s\r\n\r\n",
			    plain ? "7bit" : "quoted-printable");
	} else {
		sbuf_printf(&msg, "Content-Type: text/plain; charset=utf-8\r\n"
				  "Content-Transfer-Encoding: %s\r\n",
			    plain ? "7bit" : "quoted-printable");
		sbuf_printf(&msg, "Auto-Submitted: auto-replied\r\nX-Loop: %s\r\n"
				  "Precedence: list\r\n\r\n",
			    l->address);
	}
	if (plain)
		tmail_add_crlf_lines(&msg, wrapped.buf ? wrapped.buf : "", wrapped.len);
	else
		tmail_add_qp(&msg, wrapped.buf, wrapped.len);
	if (n_att) {
		for (size_t k = 0; k < n_att; k++)
			tmail_add_rfc822_part(&msg, boundary, &att[k]);
		sbuf_printf(&msg, "\r\n--%s--\r\n", boundary);
	}

	for (int k = 0; k < OWN_COUNT; k++)
		free(own[k]);
	free(subject);
	sbuf_free(&subj);
	sbuf_free(&body);
	sbuf_free(&wrapped);
	if (out_len)
		*out_len = msg.len;
	return sbuf_detach(&msg);
}

char *template_compose(const struct templates *t, const struct config *cfg,
		       const struct list_cfg *l, const char *name, const struct template_var *vars,
		       size_t n_vars, const char *to, const char *reply_to, const char *from,
		       size_t *out_len)
{
	return compose(t, cfg, l, name, vars, n_vars, to, reply_to, from, NULL, 0, out_len);
}

char *template_compose_attached(const struct templates *t, const struct config *cfg,
				const struct list_cfg *l, const char *name,
				const struct template_var *vars, size_t n_vars, const char *to,
				const char *reply_to, const char *from,
				const struct template_attachment *att, size_t n_att,
				size_t *out_len)
{
	for (size_t k = 0; k < n_att; k++)
		if (!att[k].data && att[k].len)
			return NULL;
	return compose(t, cfg, l, name, vars, n_vars, to, reply_to, from, att, n_att, out_len);
}
