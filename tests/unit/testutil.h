/* testutil: the few assertion helpers the unit tests share.
 *
 * CHECK() and friends report "file:line: FAIL ..." on stderr and count the
 * failure instead of stopping, so one run shows every broken case. End main()
 * with `return test_result();` (exit 1 on any failure); return TEST_SKIP
 * (77, ctest's SKIP_RETURN_CODE) when a needed resource is absent. */
#ifndef DIALOGUE_TESTUTIL_H
#define DIALOGUE_TESTUTIL_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define TEST_SKIP 77

static int test_failures __attribute__((unused));
static int test_checks __attribute__((unused));

#define CHECK(cond)                                                                \
	do {                                                                       \
		test_checks++;                                                     \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); \
			test_failures++;                                           \
		}                                                                  \
	} while (0)

/* Strings compared byte for byte; NULL is shown as (null) and never equal. */
#define CHECK_STR(got, want) test_check_str((got), (want), #got, __FILE__, __LINE__)
#define CHECK_INT(got, want) test_check_int((int64_t)(got), (int64_t)(want), #got, __FILE__, __LINE__)

static inline __attribute__((unused)) void test_check_str(const char *got, const char *want,
							   const char *expr, const char *file,
							   int line)
{
	test_checks++;
	if (got && want && strcmp(got, want) == 0)
		return;
	fprintf(stderr, "%s:%d: FAIL: %s\n  got  \"%s\"\n  want \"%s\"\n", file, line, expr,
		got ? got : "(null)", want ? want : "(null)");
	test_failures++;
}

static inline __attribute__((unused)) void test_check_int(int64_t got, int64_t want,
							   const char *expr, const char *file,
							   int line)
{
	test_checks++;
	if (got == want)
		return;
	fprintf(stderr, "%s:%d: FAIL: %s\n  got  %" PRId64 "\n  want %" PRId64 "\n", file, line,
		expr, got, want);
	test_failures++;
}

/* Exit status for main(): 0 when every check passed, else 1. */
static inline __attribute__((unused)) int test_result(void)
{
	fprintf(stderr, "%d checks, %d failures\n", test_checks, test_failures);
	return test_failures ? 1 : 0;
}

#endif
