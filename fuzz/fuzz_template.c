/* libFuzzer harness for template_set() and template_compose(): arbitrary
 * template text and variable values in, and the mail that comes out must
 * still be one: CRLF lines within 998 octets, 7-bit, only our own header
 * fields (nothing a value smuggled in), quoted-printable lines within 76.
 *
 * Input: byte 0 picks the template and the list, then NUL-separated
 * parts: the template text, then the values of token, address, name,
 * reason, confirm_url, command, stakeholder, expires. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const var_names[] = {"token",   "address",     "name",        "reason",
					"confirm_url", "command", "stakeholder", "expires"};
#define N_VARS (sizeof(var_names) / sizeof(var_names[0]))

static const char *const fields[] = {
	"Date:", "From:", "To:", "Reply-To:", "Subject:", "Message-ID:", "MIME-Version:",
	"Content-Type:", "Content-Transfer-Encoding:", "Auto-Submitted:", "X-Loop:",
	"Precedence:", NULL};

static struct templates *tpl;

static void check_mail(const char *m, size_t len)
{
	const char *sep = strstr(m, "\r\n\r\n");
	size_t line = 0;
	int headers = 0, in_header = 1, qp = 0;

	if (!sep || strlen(m) != len || len > 4 * 1024 * 1024 || strncmp(m, "Date: ", 6))
		abort();
	/* a field starts a line; a value's look-alike would follow a fold */
	const char *cte = strstr(m, "\r\nContent-Transfer-Encoding: ");
	if (!cte || cte > sep)
		abort();
	qp = !strncmp(cte + 29, "quoted-printable\r\n", 18);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)m[i];
		if (c >= 0x80 || (c == '\r' && m[i + 1] != '\n') || (c == '\n' && m[i - 1] != '\r'))
			abort();
		if (c != '\n') {
			line++;
			continue;
		}
		if (line - 1 > 998 || (!in_header && qp && line - 1 > 76))
			abort();
		line = 0;
		if (m + i + 1 > sep + 2) {
			in_header = 0;
		} else if (m + i + 1 < sep + 2 && m[i + 1] != ' ') {
			/* the start of a header field: one of ours, once */
			int known = 0;
			for (int k = 0; fields[k]; k++)
				known |= !strncmp(m + i + 1, fields[k], strlen(fields[k]));
			if (!known)
				abort();
			headers++;
		}
	}
	if (headers + 1 != 12) /* the first field has no newline before it */
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *groups[] = {"technical", "other"};
	static struct list_cfg lists[2] = {
		{.name = "dialogue", .address = "dialogue@lists.example.org", .local = "dialogue",
		 .domain = "lists.example.org", .title = "Dialogue on Internet Cooperation Evolution",
		 .subscribe_policy = SUB_CONFIRM, .archive = ARCHIVE_PUBLIC},
		{.name = "steering", .address = "steering@lists.example.org", .local = "steering",
		 .domain = "lists.example.org", .title = "Dialogue \xe2\x80\x94 Coop\xc3\xa9ration",
		 .subscribe_policy = SUB_CLOSED, .post_policy = POST_ANNOUNCE, .max_members = 25,
		 .stakeholder_groups = groups, .n_groups = 2},
	};
	static struct config cfg = {.hostname = "lists.example.org",
				    .base_url = "https://lists.example.org"};
	struct template_var vars[N_VARS];
	char *copy, *p, *end, err[256];
	const char *const *names = template_names();
	size_t n_names = 0, n_vars = 0, len;

	if (!tpl && !(tpl = template_load(NULL, err, sizeof(err))))
		abort();
	if (size < 1)
		return 0;
	while (names[n_names])
		n_names++;
	const char *name = names[data[0] % n_names];
	const struct list_cfg *l = &lists[(data[0] >> 7) & 1];

	copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	end = copy + size - 1;
	p = copy + strlen(copy);
	if (template_set(tpl, name, copy, (size_t)(p - copy), "fuzz", err, sizeof(err)) < 0 &&
	    strncmp(err, "fuzz", 4) != 0)
		abort();
	while (p < end && n_vars < N_VARS) {
		p++;
		vars[n_vars].name = var_names[n_vars];
		vars[n_vars].value = p;
		n_vars++;
		p += strlen(p);
	}
	char *m = template_compose(tpl, &cfg, l, name, vars, n_vars, "someone@example.net",
				   "dialogue-confirm+x@lists.example.org", NULL, &len);
	if (!m)
		abort();
	check_mail(m, len);
	free(m);
	free(copy);
	/* the next input starts from the defaults again */
	if (template_set(tpl, name, template_builtin(name), strlen(template_builtin(name)), "fuzz",
			 err, sizeof(err)) < 0)
		abort();
	return 0;
}
