/* Unit tests for lib/json.c: structure, escaping, invalid UTF-8, misuse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                            \
		}                                                              \
	} while (0)

static void check_str(const char *got, const char *want, int line)
{
	if (strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: FAIL:\n  got  %s\n  want %s\n", __FILE__, line, got, want);
		failures++;
	}
}
#define CHECK_STR(got, want) check_str((got), (want), __LINE__)

/* The JSON text of one string value of LEN bytes. */
static char *encode(const char *s, size_t len)
{
	struct sbuf b = {0};
	struct json j;
	json_init_sbuf(&j, &b);
	json_string_n(&j, s, len);
	CHECK(json_finish(&j) == 0);
	return sbuf_detach(&b);
}

static void expect_string(const char *in, size_t len, const char *want, int line)
{
	char *got = encode(in, len);
	check_str(got, want, line);
	free(got);
}
#define EXPECT(lit, want) expect_string((lit), sizeof(lit) - 1, (want), __LINE__)

static void test_structure(void)
{
	struct sbuf b = {0};
	struct json j;
	json_init_sbuf(&j, &b);
	json_object_begin(&j);
	json_kv_string(&j, "name", "dialogue");
	json_kv_int(&j, "members", 42);
	json_kv_int(&j, "neg", -9007199254740993LL);
	json_kv_bool(&j, "t", 1);
	json_kv_bool(&j, "f", 0);
	json_kv_null(&j, "n");
	json_kv_string(&j, "s", NULL);
	json_key(&j, "groups");
	json_array_begin(&j);
	json_string(&j, "a");
	json_array_begin(&j);
	json_array_end(&j);
	json_object_begin(&j);
	json_object_end(&j);
	json_int(&j, 0);
	json_array_end(&j);
	json_key(&j, "o");
	json_object_begin(&j);
	json_kv_int(&j, "x", 1);
	json_object_end(&j);
	json_object_end(&j);
	CHECK(json_finish(&j) == 0);
	CHECK_STR(b.buf, "{\"name\":\"dialogue\",\"members\":42,\"neg\":-9007199254740993,"
			 "\"t\":true,\"f\":false,\"n\":null,\"s\":null,"
			 "\"groups\":[\"a\",[],{},0],\"o\":{\"x\":1}}");
	sbuf_free(&b);

	/* Empty containers and scalars at the top level. */
	json_init_sbuf(&j, &b);
	json_array_begin(&j);
	json_array_end(&j);
	CHECK(json_finish(&j) == 0);
	CHECK_STR(b.buf, "[]");
	sbuf_free(&b);

	json_init_sbuf(&j, &b);
	json_int(&j, 7);
	CHECK(json_finish(&j) == 0);
	CHECK_STR(b.buf, "7");
	sbuf_free(&b);
}

static void test_escaping(void)
{
	EXPECT("", "\"\"");
	EXPECT("plain", "\"plain\"");
	EXPECT("q\"b\\s/", "\"q\\\"b\\\\s/\"");
	EXPECT("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	EXPECT("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	EXPECT("a\0b", "\"a\\u0000b\"");
	EXPECT("\x1b[31mred", "\"\\u001b[31mred\"");
	/* Valid UTF-8 passes through: 2, 3 and 4 byte sequences. */
	EXPECT("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	       "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	EXPECT("\xef\xbf\xbd", "\"\xef\xbf\xbd\"");
	EXPECT("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");
	/* Line and paragraph separators are escaped for JavaScript. */
	EXPECT("a\xe2\x80\xa8" "b\xe2\x80\xa9", "\"a\\u2028b\\u2029\"");
}

#define FFFD "\xef\xbf\xbd"

static void test_invalid_utf8(void)
{
	EXPECT("\x80", "\"" FFFD "\"");                 /* lone continuation */
	EXPECT("a\xff" "b", "\"a" FFFD "b\"");          /* never valid */
	EXPECT("\xc0\xaf", "\"" FFFD FFFD "\"");        /* overlong '/' */
	EXPECT("\xc1\xbf", "\"" FFFD FFFD "\"");
	EXPECT("\xe0\x80\xaf", "\"" FFFD FFFD FFFD "\""); /* overlong 3-byte */
	EXPECT("\xed\xa0\x80", "\"" FFFD FFFD FFFD "\""); /* surrogate D800 */
	EXPECT("\xf4\x90\x80\x80", "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
	EXPECT("\xf5\x80", "\"" FFFD FFFD "\"");
	/* Truncated sequences: the maximal valid prefix is one U+FFFD. */
	EXPECT("\xe2\x82", "\"" FFFD "\"");
	EXPECT("\xe2\x82x", "\"" FFFD "x\"");
	EXPECT("\xf0\x9f\x98", "\"" FFFD "\"");
	EXPECT("\xf0\x9f\x98\"", "\"" FFFD "\\\"\"");
	EXPECT("\xc3", "\"" FFFD "\"");
	/* Latin-1 text is not UTF-8. */
	EXPECT("caf\xe9!", "\"caf" FFFD "!\"");
}

/* Every output must be valid UTF-8 without raw control bytes, whatever
 * the input: feed all short byte strings over an interesting alphabet. */
static int valid_json_string_bytes(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* A strict UTF-8 check written independently of the writer's. */
static int valid_utf8(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned cp, need;
		if (s[i] < 0x80) {
			i++;
			continue;
		} else if ((s[i] & 0xe0) == 0xc0) {
			cp = s[i] & 0x1f;
			need = 1;
		} else if ((s[i] & 0xf0) == 0xe0) {
			cp = s[i] & 0x0f;
			need = 2;
		} else if ((s[i] & 0xf8) == 0xf0) {
			cp = s[i] & 0x07;
			need = 3;
		} else {
			return 0;
		}
		if (i + need >= n)
			return 0;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		static const unsigned min[] = {0, 0x80, 0x800, 0x10000};
		if (cp < min[need] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static void test_exhaustive_short(void)
{
	static const unsigned char alpha[] = {0x00, 0x22, 0x41, 0x5c, 0x7f, 0x80, 0x9f, 0xa0,
					      0xbf, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xff};
	size_t na = sizeof alpha;
	unsigned char in[4];
	for (size_t a = 0; a < na; a++)
		for (size_t b = 0; b < na; b++)
			for (size_t c = 0; c < na; c++)
				for (size_t d = 0; d < na; d++) {
					in[0] = alpha[a];
					in[1] = alpha[b];
					in[2] = alpha[c];
					in[3] = alpha[d];
					char *out = encode((const char *)in, 4);
					size_t n = strlen(out);
					CHECK(n >= 2 && out[0] == '"' && out[n - 1] == '"');
					CHECK(valid_json_string_bytes(out, n));
					CHECK(valid_utf8(out, n));
					free(out);
				}
}

static void test_misuse(void)
{
	struct sbuf b = {0};
	struct json j;

	json_init_sbuf(&j, &b);
	json_object_begin(&j);
	json_string(&j, "value without key");
	CHECK(json_finish(&j) == -1);
	sbuf_free(&b);

	json_init_sbuf(&j, &b);
	json_array_begin(&j);
	json_object_end(&j);
	CHECK(json_finish(&j) == -1);
	sbuf_free(&b);

	json_init_sbuf(&j, &b);
	json_int(&j, 1);
	json_int(&j, 2);
	CHECK(json_finish(&j) == -1);
	sbuf_free(&b);

	json_init_sbuf(&j, &b);
	json_array_begin(&j);
	CHECK(json_finish(&j) == -1); /* unterminated */
	sbuf_free(&b);

	json_init_sbuf(&j, &b);
	json_array_begin(&j);
	json_key(&j, "k"); /* key in an array */
	CHECK(json_finish(&j) == -1);
	sbuf_free(&b);

	json_init_sbuf(&j, &b);
	json_object_begin(&j);
	json_key(&j, "k");
	json_object_end(&j); /* key without value */
	CHECK(json_finish(&j) == -1);
	sbuf_free(&b);

	json_init_sbuf(&j, &b);
	for (int i = 0; i < JSON_MAX_DEPTH + 5; i++)
		json_array_begin(&j);
	for (int i = 0; i < JSON_MAX_DEPTH + 5; i++)
		json_array_end(&j);
	CHECK(json_finish(&j) == -1);
	sbuf_free(&b);

	json_init_sbuf(&j, &b);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_array_begin(&j);
	for (int i = 0; i < JSON_MAX_DEPTH; i++)
		json_array_end(&j);
	CHECK(json_finish(&j) == 0);
	sbuf_free(&b);
}

static void test_file_output(void)
{
	FILE *f = tmpfile();
	CHECK(f != NULL);
	if (!f)
		return;
	struct json j;
	json_init_file(&j, f);
	json_object_begin(&j);
	json_kv_string(&j, "k\n", "v\x01");
	json_object_end(&j);
	CHECK(json_finish(&j) == 0);
	rewind(f);
	char buf[64] = {0};
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	CHECK_STR(buf, "{\"k\\n\":\"v\\u0001\"}");
	fclose(f);
}

int main(void)
{
	test_structure();
	test_escaping();
	test_invalid_utf8();
	test_exhaustive_short();
	test_misuse();
	test_file_output();
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("test_json: ok\n");
	return 0;
}
