/* Unit tests for lib/address.c: RFC 5321 mailbox syntax, normalisation,
 * splitting and VERP encoding. */
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "testutil.h"
#include "util.h"

static const char *const valid[] = {
	"user@example.org",
	"a@b",
	"first.last@example.org",
	"user+tag@example.org",
	"o'hara@example.ie",
	"!#$%&'*+-/=?^_`{|}~@example.org",
	"UPPER@EXAMPLE.ORG",
	"x@sub-domain.example-1.org",
	"x@1.2.3.4",         /* all-digit labels are still a Domain */
	"x@localhost",
	"x@[192.0.2.1]",
	"x@[IPv6:2001:db8::1]",
	"x@[ipv6:::1]",
	"x@[IPv6:::ffff:192.0.2.1]",
	"\"quoted\"@example.org",
	"\"a@b\"@example.org", /* '@' inside quotes: split at the last one */
	"\"a..b\"@example.org",
	"\"a\\\"b\"@example.org",
	"\"a\\\\b\"@example.org",
	"user=host.example@lists.example.org",
	"l-bounces+user=host@lists.example.org",
};

static const char *const invalid[] = {
	"",
	"user",
	"@example.org",
	"user@",
	"user@@example.org",
	"us er@example.org",
	" user@example.org",
	"user@example.org ",
	"user@exa mple.org",
	"user\t@example.org",
	"<user@example.org>",
	".user@example.org",
	"user.@example.org",
	"us..er@example.org",
	"user@.example.org",
	"user@example.org.",
	"user@example..org",
	"user@-example.org",
	"user@example-.org",
	"user@exam_ple.org",
	"user@ex!ample.org",
	"us(er@example.org",
	"us)er@example.org",
	"us,er@example.org",
	"us:er@example.org",
	"us;er@example.org",
	"us<er@example.org",
	"us[er@example.org",
	"us\\er@example.org",
	"us\"er@example.org",
	"\"\"@example.org",           /* empty quoted local part */
	"\"a b\"@example.org",        /* whitespace refused even quoted */
	"\"a\tb\"@example.org",
	"\"abc@example.org",
	"\"a\"b\"@example.org",
	"\"a\\\"@example.org",        /* escaped closing quote */
	"\"a\x01\"@example.org",
	"us\x01er@example.org",
	"us\177er@example.org",        /* DEL */
	"us\xc3\xa9r@example.org",    /* no SMTPUTF8 */
	"user@ex\xc3\xa4mple.org",
	"user@[192.0.2.256]",
	"user@[192.0.2]",
	"user@[1.2.3.4.5]",
	"user@[2001:db8::1]",         /* IPv6 needs its tag */
	"user@[IPv6:2001:db8:::1]",
	"user@[IPv6:192.0.2.1]",
	"user@[x-tag:whatever]",      /* general literals are not taken */
	"user@[]",
	"user@[192.0.2.1",
	"user@192.0.2.1]",
	"user@[IPv6:]",
};

static void test_valid(void)
{
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
		if (!address_valid(valid[i]))
			fprintf(stderr, "should be valid: \"%s\"\n", valid[i]);
		CHECK(address_valid(valid[i]));
	}
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		if (address_valid(invalid[i]))
			fprintf(stderr, "should be invalid: \"%s\"\n", invalid[i]);
		CHECK(!address_valid(invalid[i]));
	}
	CHECK(!address_valid(NULL));
}

static char *repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_lengths(void)
{
	char *l64 = repeat('a', 64), *l65 = repeat('a', 65), *lab63 = repeat('b', 63),
	     *lab64 = repeat('b', 64);
	char *s;

	s = xasprintf("%s@example.org", l64);
	CHECK(address_valid(s));
	free(s);
	s = xasprintf("%s@example.org", l65);
	CHECK(!address_valid(s));
	free(s);
	s = xasprintf("x@%s.org", lab63);
	CHECK(address_valid(s));
	free(s);
	s = xasprintf("x@%s.org", lab64);
	CHECK(!address_valid(s));
	free(s);

	/* Exactly ADDRESS_MAX octets passes, one more fails. */
	char *lab51 = repeat('c', 51);
	char *dom = xasprintf("%s.%s.%s.%s", lab63, lab63, lab63, lab51);
	s = xasprintf("%s@%s", "aaaaaaaaaa", dom);
	CHECK_INT(strlen(s), ADDRESS_MAX);
	CHECK(address_valid(s));
	free(s);
	s = xasprintf("%s@%s", "aaaaaaaaaaa", dom);
	CHECK_INT(strlen(s), ADDRESS_MAX + 1);
	CHECK(!address_valid(s));
	free(s);
	free(dom);
	free(lab51);

	/* A quoted local part counts its quotes: 62 + 2 is the limit. */
	char *q62 = repeat('q', 62), *q63 = repeat('q', 63);
	s = xasprintf("\"%s\"@example.org", q62);
	CHECK(address_valid(s));
	free(s);
	s = xasprintf("\"%s\"@example.org", q63);
	CHECK(!address_valid(s));
	free(s);

	/* A very long string is refused without reading past the limit. */
	char *huge = repeat('a', 100000);
	huge[50] = '@';
	CHECK(!address_valid(huge));
	free(huge);

	free(q62);
	free(q63);
	free(l64);
	free(l65);
	free(lab63);
	free(lab64);
}

static void test_normalize(void)
{
	char *s;

	s = address_normalize("John.Doe@Example.ORG");
	CHECK_STR(s, "John.Doe@example.org");
	free(s);
	s = address_normalize("\"A@B\"@EXAMPLE.org");
	CHECK_STR(s, "\"A@B\"@example.org");
	free(s);
	s = address_normalize("x@[IPv6:2001:DB8::1]");
	CHECK_STR(s, "x@[IPv6:2001:db8::1]");
	free(s);
	s = address_normalize("x@[ipv6:::1]");
	CHECK_STR(s, "x@[IPv6:::1]");
	free(s);
	CHECK(address_normalize("not an address") == NULL);
	CHECK(address_normalize("") == NULL);
	CHECK(address_normalize(NULL) == NULL);
}

static void test_split(void)
{
	char *local, *domain, *buf;

	CHECK_INT(address_split("user@Example.org", &local, &domain, &buf), 0);
	CHECK_STR(local, "user");
	CHECK_STR(domain, "Example.org");
	free(buf);

	CHECK_INT(address_split("\"a@b\"@example.org", &local, &domain, &buf), 0);
	CHECK_STR(local, "\"a@b\"");
	CHECK_STR(domain, "example.org");
	free(buf);

	CHECK_INT(address_split("bad address", &local, &domain, &buf), -1);
	CHECK(local == NULL && domain == NULL && buf == NULL);
	CHECK_INT(address_split(NULL, &local, &domain, &buf), -1);
}

static void roundtrip(const char *addr, const char *want_enc)
{
	char *enc = address_verp_encode(addr);
	CHECK_STR(enc, want_enc);
	if (!enc)
		return;
	char *dec = address_verp_decode(enc);
	CHECK_STR(dec, addr);
	/* The encoded form must fit in a VERP return path as a dot-atom. */
	char *path = xasprintf("list-bounces+%s@lists.example.org", enc);
	CHECK(address_valid(path));
	free(path);
	free(dec);
	free(enc);
}

static void test_verp(void)
{
	roundtrip("user@example.org", "user=example.org");
	roundtrip("first.last+tag@sub.example.org", "first.last+tag=sub.example.org");
	roundtrip("a=b@example.org", "a=b=example.org"); /* decode splits at the last '=' */
	roundtrip("x=@example.org", "x==example.org");
	roundtrip("User@Example.ORG", "User=Example.ORG");

	CHECK(address_verp_encode("not valid") == NULL);
	CHECK(address_verp_encode("\"quoted\"@example.org") == NULL);
	CHECK(address_verp_encode("x@[192.0.2.1]") == NULL);
	CHECK(address_verp_encode(NULL) == NULL);

	CHECK(address_verp_decode("no-equals-sign") == NULL);
	CHECK(address_verp_decode("=example.org") == NULL);
	CHECK(address_verp_decode("user=") == NULL);
	CHECK(address_verp_decode("user=bad domain") == NULL);
	CHECK(address_verp_decode("us er=example.org") == NULL);
	CHECK(address_verp_decode("user=example..org") == NULL);
	CHECK(address_verp_decode("") == NULL);
	CHECK(address_verp_decode(NULL) == NULL);
	char *d = address_verp_decode("a=b=c.example");
	CHECK_STR(d, "a=b@c.example");
	free(d);
}

int main(void)
{
	test_valid();
	test_lengths();
	test_normalize();
	test_split();
	test_verp();
	return test_result();
}
