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
#include "util.h"

#define TPL_FILE_MAX (64 * 1024)    /* a template file; more is a mistake */
#define TPL_VALUE_MAX (16 * 1024)   /* of one value, inserted */
#define TPL_BODY_MAX (1024 * 1024)  /* rendered body; the rest is dropped */
#define TPL_SUBJECT_MAX 400         /* bytes of rendered subject */
#define TPL_DEPTH 16                /* nested sections */
#define TPL_NAME_MAX 64
#define WRAP_COLS 78
#define QP_COLS 76
#define LINE_MAX_7BIT 998
#define HARD_NL '\x01' /* a newline from a value, while rendering */

enum {
	TPL_CONFIRM_JOIN,
	TPL_CONFIRM_LEAVE,
	TPL_INVITE,
	TPL_WELCOME,
	TPL_GOODBYE,
	TPL_REFUSED,
	TPL_HELP,
	TPL_ALREADY_MEMBER,
	TPL_NOT_MEMBER,
	TPL_TOKEN_INVALID,
	TPL_PENDING_APPROVAL,
	TPL_APPROVED,
	TPL_DENIED,
	TPL_MODERATOR_PENDING,
	TPL_LIST_FULL,
	TPL_COUNT
};
static const char *const tpl_names[TPL_COUNT + 1] = {
	"confirm-join", "confirm-leave", "invite", "welcome", "goodbye", "refused", "help",
	"already-member", "not-member", "token-invalid", "pending-approval", "approved", "denied",
	"moderator-pending", "list-full", NULL};

/* Defined at the end of the file. */
static const char *const tpl_builtin[TPL_COUNT];

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
	return i < 0 ? NULL : tpl_builtin[i];
}

/* ---- tags ---- */

enum tag_kind { TAG_VAR, TAG_OPEN, TAG_INVERT, TAG_CLOSE };

struct tag {
	enum tag_kind kind;
	const char *name;
	size_t name_len;
	size_t len; /* of the whole tag */
};

static int name_char(char c)
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
	while (i < n && name_char(s[i]) && (size_t)(s + i - tg->name) < TPL_NAME_MAX)
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
		const char *text = tpl_builtin[i];
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

/* ---- body text ---- */

static size_t columns(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static int has_url(const char *s, size_t n)
{
	for (size_t i = 0; i + 3 <= n; i++)
		if (!memcmp(s + i, "://", 3) || (i + 7 <= n && !ascii_strncasecmp(s + i, "mailto:", 7)))
			return 1;
	return 0;
}

/* Wrap line S at spaces to WRAP_COLS columns, continuation lines keeping
 * its indent. Lines with URLs stay whole: a broken link does not work. */
static void wrap_line(struct sbuf *out, const char *s, size_t n)
{
	size_t ind = 0, pos, col;

	if (columns(s, n) <= WRAP_COLS || has_url(s, n)) {
		sbuf_add(out, s, n);
		return;
	}
	while (ind < n && (s[ind] == ' ' || s[ind] == '\t'))
		ind++;
	sbuf_add(out, s, ind);
	pos = col = ind;
	if (ind > WRAP_COLS / 2)
		ind = 0;
	for (;;) {
		size_t i = pos, c = col, brk = (size_t)-1, end;

		while (i < n) {
			if (s[i] == ' ') {
				if (c > WRAP_COLS)
					break;
				brk = i;
			}
			c += ((unsigned char)s[i] & 0xc0) != 0x80;
			i++;
		}
		if (i == n && c <= WRAP_COLS)
			brk = n;
		else if (brk == (size_t)-1 || brk == pos)
			brk = i; /* one word longer than the line */
		for (end = brk; end > pos && s[end - 1] == ' '; end--)
			;
		sbuf_add(out, s + pos, end - pos);
		for (pos = brk; pos < n && s[pos] == ' '; pos++)
			;
		if (pos >= n)
			return;
		sbuf_addc(out, '\n');
		sbuf_add(out, s, ind);
		col = ind;
	}
}

/* Reflow: the lines of a paragraph (neither indented nor holding a URL)
 * are joined and wrapped again. A newline from inside a value (HARD_NL)
 * is kept: it is the sender's. */
static void wrap_body(struct sbuf *out, const char *s, size_t len)
{
	const char *end = s + len;
	struct sbuf para = {0};
	int open = 0; /* PARA is a paragraph that may take the next line */

	sbuf_adds(&para, "");
	while (s < end) {
		const char *e = s;
		while (e < end && *e != '\n' && *e != HARD_NL)
			e++;
		size_t n = (size_t)(e - s);
		int join = n && *s != ' ' && *s != '\t' && !has_url(s, n);

		if (open && join) {
			while (para.len && para.buf[para.len - 1] == ' ')
				para.len--;
			sbuf_addc(&para, ' ');
		} else if (open) {
			wrap_line(out, para.buf, para.len);
			sbuf_addc(out, '\n');
			para.len = 0;
		}
		sbuf_add(&para, s, n);
		open = join && e < end && *e == '\n';
		if (!open) {
			wrap_line(out, para.buf, para.len);
			if (e < end)
				sbuf_addc(out, '\n');
			para.len = 0;
		}
		s = e + (e < end);
	}
	if (open) {
		wrap_line(out, para.buf, para.len);
		sbuf_addc(out, '\n');
	}
	sbuf_free(&para);
}

/* Can S go out as 7bit: ASCII, and no line longer than SMTP allows? */
static int is_7bit(const char *s, size_t n)
{
	size_t line = 0;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return 0;
		line = s[i] == '\n' ? 0 : line + 1;
		if (line > LINE_MAX_7BIT)
			return 0;
	}
	return 1;
}

static void add_crlf_lines(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n')
			sbuf_addc(b, '\r');
		sbuf_addc(b, s[i]);
	}
	if (n && s[n - 1] != '\n')
		sbuf_add(b, "\r\n", 2);
}

/* RFC 2045 6.7 quoted-printable: lines of at most 76 characters with soft
 * breaks; '=', controls, 8-bit bytes and blanks at a line end encoded, and
 * "From " and "." at a line start too, for mbox files and careless relays. */
static void add_qp(struct sbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int last = i + 1 == n || s[i + 1] == '\n';
		char enc[3];
		size_t k = 1;

		if (c == '\n') {
			sbuf_add(b, "\r\n", 2);
			col = 0;
			continue;
		}
		enc[0] = (char)c;
		if (c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
		    ((c == ' ' || c == '\t') && last) ||
		    (col == 0 && (c == '.' || (c == 'F' && n - i >= 5 && !memcmp(s + i, "From ", 5))))) {
			enc[0] = '=';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			k = 3;
		}
		if (col + k > (last ? QP_COLS : QP_COLS - 1)) {
			sbuf_add(b, "=\r\n", 3);
			col = 0;
		}
		sbuf_add(b, enc, k);
		col += k;
	}
	if (n && s[n - 1] != '\n')
		sbuf_add(b, "\r\n", 2);
}

/* ---- headers ---- */

/* One clean line: blanks collapsed, trimmed, capped at a character edge. */
static char *header_text(const char *s, size_t max)
{
	struct sbuf b = {0};
	size_t n = strlen(s), k, bad;

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7f) {
			if (b.len && b.buf[b.len - 1] != ' ')
				sbuf_addc(&b, ' ');
			i++;
			continue;
		}
		k = c < 0x80 ? 1 : utf8_sequence((const unsigned char *)s + i, n - i, &bad);
		if (b.len + (k ? k : 3) > max)
			break;
		if (k)
			sbuf_add(&b, s + i, k);
		else
			sbuf_adds(&b, "\xef\xbf\xbd");
		i += k ? k : bad;
	}
	while (b.len && b.buf[b.len - 1] == ' ')
		b.buf[--b.len] = '\0';
	return sbuf_detach(&b);
}

/* Must S be RFC 2047-encoded: 8-bit, something that would read as an
 * encoded word, or a word too long to fold? */
static int needs_encoding(const char *s)
{
	size_t word = 0;
	for (; *s; s++) {
		if ((unsigned char)*s >= 0x80 || (s[0] == '=' && s[1] == '?'))
			return 1;
		word = *s == ' ' ? 0 : word + 1;
		if (word > 60)
			return 1;
	}
	return 0;
}

/* RFC 2047 B words of at most 36 bytes each (60 characters encoded), one
 * per folded line, never splitting a character. */
static void add_encoded_words(struct sbuf *b, const char *s)
{
	size_t n = strlen(s), i = 0;
	unsigned char enc[64];

	while (i < n) {
		size_t j = i, k;
		while (j < n) {
			k = utf8_sequence((const unsigned char *)s + j, n - j, NULL);
			k = k ? k : 1;
			if (j + k - i > 36)
				break;
			j += k;
		}
		if (i)
			sbuf_add(b, "\r\n ", 3);
		EVP_EncodeBlock(enc, (const unsigned char *)s + i, (int)(j - i));
		sbuf_printf(b, "=?UTF-8?B?%s?=", enc);
		i = j;
	}
}

/* Header NAME with unstructured text S (already one clean line). */
static void add_text_header(struct sbuf *b, const char *name, const char *s)
{
	size_t col;

	sbuf_printf(b, "%s: ", name);
	if (needs_encoding(s)) {
		add_encoded_words(b, s);
	} else {
		col = strlen(name) + 2;
		for (const char *w = s; *w;) {
			size_t wl = strcspn(w, " ");
			if (w != s) {
				sbuf_adds(b, col + 1 + wl > WRAP_COLS ? "\r\n " : " ");
				col = col + 1 + wl > WRAP_COLS ? 1 : col + 1;
			}
			sbuf_add(b, w, wl);
			col += wl;
			w += wl + (w[wl] == ' ');
		}
	}
	sbuf_add(b, "\r\n", 2);
}

/* From: "Title" <addr>, the title quoted or encoded. */
static void add_from(struct sbuf *b, const char *title, const char *addr)
{
	if (!*title) {
		sbuf_printf(b, "From: <%s>\r\n", addr);
	} else if (needs_encoding(title) || strlen(title) > 64) {
		sbuf_adds(b, "From: ");
		add_encoded_words(b, title);
		sbuf_printf(b, "\r\n <%s>\r\n", addr);
	} else {
		sbuf_adds(b, "From: \"");
		for (const char *p = title; *p; p++) {
			if (*p == '"' || *p == '\\')
				sbuf_addc(b, '\\');
			sbuf_addc(b, *p);
		}
		sbuf_printf(b, "\"%s<%s>\r\n", strlen(title) + strlen(addr) > 64 ? "\r\n " : " ",
			    addr);
	}
}

static void add_date(struct sbuf *b, time_t t)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&t, &tm);
	sbuf_printf(b, "Date: %s, %d %s %d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7],
		    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
}

static void add_message_id(struct sbuf *b, const char *host)
{
	static unsigned counter;
	unsigned char r[16];
	size_t n = 0;

	if (RAND_bytes(r, sizeof(r)) != 1) {
		/* A Message-ID needs to be unique, not secret. */
		uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ ++counter;
		for (size_t i = 0; i < sizeof(r); i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			r[i] = (unsigned char)(x >> 56);
		}
	}
	sbuf_adds(b, "Message-ID: <");
	for (size_t i = 0; i < sizeof(r); i++)
		sbuf_printf(b, "%02x", r[i]);
	sbuf_addc(b, '@');
	for (const char *p = host; *p && n < 200; p++)
		if (name_char(*p) && *p != '_' && ++n)
			sbuf_addc(b, *p);
	sbuf_adds(b, n ? ">\r\n" : "localhost>\r\n");
}

/* ADDR as one shell word, for commands a moderator copies: a valid
 * address may hold ` $ ' and more. */
static char *shell_word(const char *s)
{
	struct sbuf b = {0};

	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			    "@._+=-") == strlen(s))
		return xstrdup(s);
	sbuf_addc(&b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sbuf_adds(&b, "'\\''");
		else
			sbuf_addc(&b, *s);
	}
	sbuf_addc(&b, '\'');
	return sbuf_detach(&b);
}

/* What template_compose owns for one mail. */
enum { OWN_SHELL, OWN_OWNER, OWN_REQUEST, OWN_JOIN, OWN_LEAVE, OWN_ARCHIVE, OWN_MAX, OWN_TITLE,
       OWN_COUNT };

char *template_compose(const struct templates *t, const struct config *cfg,
		       const struct list_cfg *l, const char *name, const struct template_var *vars,
		       size_t n_vars, const char *to, const char *reply_to, const char *from,
		       size_t *out_len)
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
	own[OWN_ARCHIVE] = blen && l->archive == ARCHIVE_PUBLIC ?
		xasprintf("%.*s/%s/", (int)blen, base, lname) : xstrdup("");
	own[OWN_MAX] = l->max_members > 0 ? xasprintf("%ld", l->max_members) : xstrdup("");
	own[OWN_TITLE] = header_text(l->title && *l->title ? l->title : lname, 200);

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
	own[OWN_SHELL] = shell_word(lookup(&r, "address", 7));
	std[0].value = own[OWN_SHELL];

	r.out = &subj;
	r.header = 1;
	render_line(&r, t->t[i].subject, strlen(t->t[i].subject));
	subject = header_text(subj.buf ? subj.buf : "", TPL_SUBJECT_MAX);

	r.out = &body;
	r.header = 0;
	r.depth = r.off = 0;
	render_body(&r, t->t[i].body);
	wrap_body(&wrapped, body.buf ? body.buf : "", body.len);

	add_date(&msg, time(NULL));
	add_from(&msg, own[OWN_TITLE], from && *from ? from : own[OWN_OWNER]);
	sbuf_printf(&msg, "To: %s\r\n", to);
	if (reply_to && *reply_to)
		sbuf_printf(&msg, "Reply-To: %s\r\n", reply_to);
	add_text_header(&msg, "Subject", subject);
	add_message_id(&msg, host);
	sbuf_adds(&msg, "MIME-Version: 1.0\r\n"
			"Content-Type: text/plain; charset=utf-8\r\n");
	int plain = is_7bit(wrapped.buf ? wrapped.buf : "", wrapped.len);
	sbuf_printf(&msg, "Content-Transfer-Encoding: %s\r\n", plain ? "7bit" : "quoted-printable");
	sbuf_printf(&msg, "Auto-Submitted: auto-replied\r\nX-Loop: %s\r\nPrecedence: list\r\n\r\n",
		    l->address);
	if (plain)
		add_crlf_lines(&msg, wrapped.buf ? wrapped.buf : "", wrapped.len);
	else
		add_qp(&msg, wrapped.buf, wrapped.len);

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

/* ---- built-in defaults: the same text as config/templates/NAME.txt ---- */

static const char *const tpl_builtin[TPL_COUNT] = {
	[TPL_CONFIRM_JOIN] =
		"Subject: confirm {{token}} to join {{list_title}}\n"
		"\n"
		"Hello,\n"
		"\n"
		"We received a request to subscribe {{address}} to the mailing list\n"
		"{{list_title}} ({{list_address}}).\n"
		"\n"
		"To confirm that you want to join, do one of these:\n"
		"\n"
		"  - Reply to this message. You do not need to write anything.\n"
		"\n"
		"  - Or send a message to {{request_address}} with this line\n"
		"    as its subject:\n"
		"\n"
		"        confirm {{token}}\n"
		"{{#confirm_url}}\n"
		"\n"
		"  - Or open this page and press the button there:\n"
		"\n"
		"        {{confirm_url}}\n"
		"{{/confirm_url}}\n"
		"{{#expires}}\n"
		"\n"
		"This request is valid until {{expires}}.\n"
		"{{/expires}}\n"
		"\n"
		"If you did not ask to join, please ignore this message. Nothing will\n"
		"happen, and you will not be subscribed.\n",
	[TPL_CONFIRM_LEAVE] =
		"Subject: confirm {{token}} to leave {{list_title}}\n"
		"\n"
		"Hello,\n"
		"\n"
		"We received a request to unsubscribe {{address}} from the mailing list\n"
		"{{list_title}} ({{list_address}}).\n"
		"\n"
		"To confirm that you want to leave, do one of these:\n"
		"\n"
		"  - Reply to this message. You do not need to write anything.\n"
		"\n"
		"  - Or send a message to {{request_address}} with this line\n"
		"    as its subject:\n"
		"\n"
		"        confirm {{token}}\n"
		"{{#confirm_url}}\n"
		"\n"
		"  - Or open this page and press the button there:\n"
		"\n"
		"        {{confirm_url}}\n"
		"{{/confirm_url}}\n"
		"{{#expires}}\n"
		"\n"
		"This request is valid until {{expires}}.\n"
		"{{/expires}}\n"
		"\n"
		"If you did not ask to leave, please ignore this message. Nothing will\n"
		"change, and you will keep receiving the list's mail.\n",
	[TPL_INVITE] =
		"Subject: confirm {{token}} to accept your invitation to {{list_title}}\n"
		"\n"
		"Hello{{#name}} {{name}}{{/name}},\n"
		"\n"
		"The moderators of {{list_title}} invite you to join its mailing list,\n"
		"{{list_address}}.\n"
		"{{#description}}\n"
		"\n"
		"About the list: {{description}}\n"
		"{{/description}}\n"
		"\n"
		"To accept, reply to this message. You do not need to write anything.\n"
		"\n"
		"You can also send a message to {{request_address}} with this line\n"
		"as its subject:\n"
		"\n"
		"    confirm {{token}}\n"
		"{{#confirm_url}}\n"
		"\n"
		"Or open this page and press the button there:\n"
		"\n"
		"    {{confirm_url}}\n"
		"{{/confirm_url}}\n"
		"{{#expires}}\n"
		"\n"
		"The invitation is valid until {{expires}}.\n"
		"{{/expires}}\n"
		"\n"
		"If you would rather not join, just ignore this message. You will not\n"
		"be subscribed, and we will not write to you about it again.\n",
	[TPL_WELCOME] =
		"Subject: Welcome to {{list_title}}\n"
		"\n"
		"Hello{{#name}} {{name}}{{/name}},\n"
		"\n"
		"Welcome to {{list_title}}! {{address}} is now subscribed to the\n"
		"mailing list {{list_address}}.\n"
		"{{#description}}\n"
		"\n"
		"{{description}}\n"
		"{{/description}}\n"
		"{{^announce_only}}\n"
		"\n"
		"To write to everyone on the list, send your message to:\n"
		"\n"
		"    {{list_address}}\n"
		"{{#posts_moderated}}\n"
		"\n"
		"A moderator reads each message before it goes out to the list.\n"
		"{{/posts_moderated}}\n"
		"{{/announce_only}}\n"
		"{{#archive_url}}\n"
		"\n"
		"Past messages are in the archive:\n"
		"\n"
		"    {{archive_url}}\n"
		"{{/archive_url}}\n"
		"\n"
		"To leave the list, send any message to:\n"
		"\n"
		"    {{leave_address}}\n"
		"{{#unsubscribe_url}}\n"
		"\n"
		"or open this page:\n"
		"\n"
		"    {{unsubscribe_url}}\n"
		"{{/unsubscribe_url}}\n"
		"\n"
		"For a list of commands, send a message with the subject \"help\" to\n"
		"{{request_address}}. To reach the people who run the list, write to\n"
		"{{owner_address}}.\n"
		"\n"
		"Please keep this message: it tells you how to leave the list later.\n",
	[TPL_GOODBYE] =
		"Subject: You have left {{list_title}}\n"
		"\n"
		"Hello,\n"
		"\n"
		"{{address}} is no longer subscribed to {{list_title}}\n"
		"({{list_address}}). You will not receive any more mail from the list.\n"
		"\n"
		"Thank you for taking part.\n"
		"{{^closed}}\n"
		"If you want to come back, send any message to {{join_address}}.\n"
		"{{/closed}}\n"
		"\n"
		"If you did not ask to leave, please tell us at {{owner_address}}.\n",
	[TPL_REFUSED] =
		"Subject: Your request to join {{list_title}}\n"
		"\n"
		"Hello,\n"
		"\n"
		"We could not subscribe {{address}} to the mailing list {{list_title}}\n"
		"({{list_address}}).\n"
		"{{#reason}}\n"
		"\n"
		"{{reason}}\n"
		"{{/reason}}\n"
		"{{^reason}}\n"
		"{{#closed}}\n"
		"\n"
		"This list does not take subscription requests: its members are added\n"
		"by the people who run it.\n"
		"{{/closed}}\n"
		"{{/reason}}\n"
		"\n"
		"If you think this is a mistake, or would like to ask about joining,\n"
		"please write to {{owner_address}}.\n",
	[TPL_HELP] =
		"Subject: Help for {{list_title}}\n"
		"\n"
		"Hello,\n"
		"{{#command}}\n"
		"\n"
		"We did not understand this command:\n"
		"\n"
		"    {{command}}\n"
		"{{/command}}\n"
		"\n"
		"This is the mail server of {{list_title}} ({{list_address}}).\n"
		"\n"
		"You can send these commands to {{request_address}}, in the subject\n"
		"of a message or on lines of its body:\n"
		"{{^closed}}\n"
		"\n"
		"    subscribe       join the list\n"
		"{{/closed}}\n"
		"\n"
		"    unsubscribe     leave the list\n"
		"\n"
		"    confirm CODE    complete a request, with the code from the\n"
		"                    message we sent you\n"
		"\n"
		"    help            get this message\n"
		"\n"
		"You can also send a message, with any content, to one of these\n"
		"addresses:\n"
		"{{^closed}}\n"
		"\n"
		"    {{join_address}}\n"
		"        join the list\n"
		"{{/closed}}\n"
		"\n"
		"    {{leave_address}}\n"
		"        leave the list\n"
		"\n"
		"    {{owner_address}}\n"
		"        reach the people who run the list\n"
		"{{#closed}}\n"
		"\n"
		"Members of this list are added by the people who run it. To ask about\n"
		"joining, write to {{owner_address}}.\n"
		"{{/closed}}\n",
	[TPL_ALREADY_MEMBER] =
		"Subject: You are already subscribed to {{list_title}}\n"
		"\n"
		"Hello,\n"
		"\n"
		"{{address}} is already subscribed to {{list_title}}, so there was\n"
		"nothing to do.\n"
		"{{^announce_only}}\n"
		"\n"
		"To write to the list, send your message to {{list_address}}.\n"
		"{{/announce_only}}\n"
		"To leave the list, send any message to {{leave_address}}.\n"
		"\n"
		"If the list's mail does not seem to reach you, please look in your\n"
		"spam folder, or write to {{owner_address}}.\n",
	[TPL_NOT_MEMBER] =
		"Subject: You are not subscribed to {{list_title}}\n"
		"\n"
		"Hello,\n"
		"\n"
		"{{address}} is not subscribed to {{list_title}} ({{list_address}}),\n"
		"so there was nothing to do.\n"
		"\n"
		"If you receive the list's mail at another address, please send your\n"
		"request from that address. If you need help, write to\n"
		"{{owner_address}}.\n",
	[TPL_TOKEN_INVALID] =
		"Subject: Your confirmation for {{list_title}} did not work\n"
		"\n"
		"Hello,\n"
		"\n"
		"We could not accept your confirmation for {{list_title}}{{#token}}\n"
		"(code {{token}}){{/token}}{{#reason}}: {{reason}}{{/reason}}.\n"
		"\n"
		"A confirmation code works only once, and only for a few days. It may\n"
		"have been used already, or have expired. To start again:\n"
		"{{^closed}}\n"
		"\n"
		"  - to join the list, send any message to {{join_address}}\n"
		"{{/closed}}\n"
		"\n"
		"  - to leave the list, send any message to {{leave_address}}\n"
		"\n"
		"We will then send you a new code. If this keeps happening, please\n"
		"write to {{owner_address}}.\n",
	[TPL_PENDING_APPROVAL] =
		"Subject: Your request to join {{list_title}} is waiting for approval\n"
		"\n"
		"Hello,\n"
		"\n"
		"Thank you for confirming. A moderator of {{list_title}} looks at each\n"
		"new subscription, so your request now waits for their approval. We\n"
		"will write to you again as soon as they have decided.\n"
		"\n"
		"There is nothing more you need to do. If you have a question, please\n"
		"write to {{owner_address}}.\n",
	[TPL_APPROVED] =
		"Subject: Welcome to {{list_title}}\n"
		"\n"
		"Hello{{#name}} {{name}}{{/name}},\n"
		"\n"
		"Good news: a moderator has approved your request. {{address}} is now\n"
		"subscribed to {{list_title}} ({{list_address}}).\n"
		"{{#description}}\n"
		"\n"
		"{{description}}\n"
		"{{/description}}\n"
		"{{^announce_only}}\n"
		"\n"
		"To write to everyone on the list, send your message to:\n"
		"\n"
		"    {{list_address}}\n"
		"{{#posts_moderated}}\n"
		"\n"
		"A moderator reads each message before it goes out to the list.\n"
		"{{/posts_moderated}}\n"
		"{{/announce_only}}\n"
		"{{#archive_url}}\n"
		"\n"
		"Past messages are in the archive:\n"
		"\n"
		"    {{archive_url}}\n"
		"{{/archive_url}}\n"
		"\n"
		"To leave the list, send any message to:\n"
		"\n"
		"    {{leave_address}}\n"
		"{{#unsubscribe_url}}\n"
		"\n"
		"or open this page:\n"
		"\n"
		"    {{unsubscribe_url}}\n"
		"{{/unsubscribe_url}}\n"
		"\n"
		"For a list of commands, send a message with the subject \"help\" to\n"
		"{{request_address}}. To reach the people who run the list, write to\n"
		"{{owner_address}}.\n"
		"\n"
		"Please keep this message: it tells you how to leave the list later.\n",
	[TPL_DENIED] =
		"Subject: Your request to join {{list_title}}\n"
		"\n"
		"Hello,\n"
		"\n"
		"We are sorry: a moderator of {{list_title}} has declined the request\n"
		"to subscribe {{address}} to the list.\n"
		"{{#reason}}\n"
		"\n"
		"The moderator's note:\n"
		"\n"
		"    {{reason}}\n"
		"{{/reason}}\n"
		"\n"
		"If you have a question about this decision, please write to\n"
		"{{owner_address}}.\n",
	[TPL_MODERATOR_PENDING] =
		"Subject: {{address}} asks to join {{list_title}}\n"
		"\n"
		"Hello,\n"
		"\n"
		"A request to join {{list_title}} ({{list_address}}) is waiting for\n"
		"a moderator's decision:\n"
		"\n"
		"    Address:      {{address}}\n"
		"{{#name}}\n"
		"    Name:         {{name}}\n"
		"{{/name}}\n"
		"{{#stakeholder}}\n"
		"    Stakeholder:  {{stakeholder}}\n"
		"{{/stakeholder}}\n"
		"{{#max_members}}\n"
		"    List limit:   {{max_members}} members\n"
		"{{/max_members}}\n"
		"\n"
		"To approve it, run:\n"
		"\n"
		"    dialoguectl members approve {{list}} {{address_shell}}\n"
		"\n"
		"To decline it, run:\n"
		"\n"
		"    dialoguectl members deny {{list}} {{address_shell}}\n"
		"\n"
		"The person who asked will be told what you decide.\n",
	[TPL_LIST_FULL] =
		"Subject: {{list_title}} is full\n"
		"\n"
		"Hello,\n"
		"\n"
		"We could not subscribe {{address}} to {{list_title}}\n"
		"({{list_address}}): the list has reached its maximum of\n"
		"{{max_members}} members.\n"
		"\n"
		"A place opens up when a member leaves. If you would like to be\n"
		"considered then, or have a question, please write to\n"
		"{{owner_address}}.\n",
};
