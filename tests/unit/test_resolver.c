/* test_resolver.c — the pure parts of user/discovery/resolver.c: h2s_endpoints_normalize (what every
 * resolver's set goes through before it is published) and h2s_backends_file_parse (the file
 * resolver's "ADDR:PORT [WEIGHT]" lines).
 */
#include "unit.h"

#include "resolver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static struct h2s_endpoint ep(const char *addr, __u32 weight)
{
	return (struct h2s_endpoint){ .addr = addr_of(addr), .weight = weight };
}

static void expect_ep(const struct h2s_endpoint *e, const char *addr, __u32 weight)
{
	struct h2s_addr want = addr_of(addr);
	char got[H2S_ADDR_STRLEN];

	cr_assert(h2s_addr_equal(&e->addr, &want), "got %s, expected %s",
		  h2s_addr_format(&e->addr, got, sizeof(got)), addr);
	cr_assert_eq(e->weight, weight, "%s: weight %u, expected %u", addr, e->weight, weight);
}

/* ---- h2s_endpoints_normalize ---- */

/* Address order is numeric (9 before 10, .9 before .10), then by port; IPv6 ::1 is below every
 * v4-mapped address (::ffff:a.b.c.d), as numbers.
 */
Test(endpoints_normalize, sorts_by_address_then_port)
{
	struct h2s_endpoint set[] = {
		ep("10.0.0.10:80", 1), ep("10.0.0.9:80", 2), ep("9.0.0.1:80", 3),
		ep("10.0.0.9:70", 4),  ep("[::1]:80", 5),
	};

	cr_assert_eq(h2s_endpoints_normalize(set, ARRAY_LEN(set)), 5);
	expect_ep(&set[0], "[::1]:80", 5);
	expect_ep(&set[1], "9.0.0.1:80", 3);
	expect_ep(&set[2], "10.0.0.9:70", 4);
	expect_ep(&set[3], "10.0.0.9:80", 2);
	expect_ep(&set[4], "10.0.0.10:80", 1);
}

Test(endpoints_normalize, merges_duplicates_keeping_largest_weight)
{
	struct h2s_endpoint set[] = {
		ep("10.0.0.1:80", 2), ep("10.0.0.2:80", 1), ep("10.0.0.1:80", 7),
		ep("10.0.0.1:80", 3), ep("10.0.0.2:80", 4),
	};

	cr_assert_eq(h2s_endpoints_normalize(set, ARRAY_LEN(set)), 2);
	expect_ep(&set[0], "10.0.0.1:80", 7);
	expect_ep(&set[1], "10.0.0.2:80", 4);
}

/* Same address, other port: two backends. */
Test(endpoints_normalize, same_ip_other_port_is_not_a_duplicate)
{
	struct h2s_endpoint set[] = { ep("10.0.0.1:81", 1), ep("10.0.0.1:80", 1) };

	cr_assert_eq(h2s_endpoints_normalize(set, ARRAY_LEN(set)), 2);
	expect_ep(&set[0], "10.0.0.1:80", 1);
	expect_ep(&set[1], "10.0.0.1:81", 1);
}

Test(endpoints_normalize, empty_set)
{
	cr_assert_eq(h2s_endpoints_normalize(NULL, 0), 0);
}

Test(endpoints_normalize, all_duplicates_become_one)
{
	struct h2s_endpoint set[] = {
		ep("[2001:db8::1]:443", 1), ep("[2001:db8::1]:443", 5), ep("[2001:db8::1]:443", 3),
		ep("[2001:db8::1]:443", 5),
	};

	cr_assert_eq(h2s_endpoints_normalize(set, ARRAY_LEN(set)), 1);
	expect_ep(&set[0], "[2001:db8::1]:443", 5);
}

Test(endpoints_normalize, single_entry_is_kept)
{
	struct h2s_endpoint set[] = { ep("10.0.0.1:80", 9) };

	cr_assert_eq(h2s_endpoints_normalize(set, 1), 1);
	expect_ep(&set[0], "10.0.0.1:80", 9);
}

/* Randomized: 200 entries over 20 addresses; the result is strictly increasing (no duplicate
 * left) and each address keeps the largest weight it was given.
 */
Test(endpoints_normalize, randomized_sorted_unique_max_weight)
{
	struct h2s_endpoint set[200];
	__u32 maxw[20] = { 0 };
	uint32_t seed = 0x5eed1234;
	size_t n;

	for (size_t i = 0; i < ARRAY_LEN(set); i++) {
		uint32_t k = xorshift32(&seed) % 20, w = xorshift32(&seed) % 100 + 1;
		char text[32];

		snprintf(text, sizeof(text), "10.%u.0.%u:%u", k % 3, k, 1000 + k % 4);
		set[i] = ep(text, w);
		if (w > maxw[k])
			maxw[k] = w;
	}
	n = h2s_endpoints_normalize(set, ARRAY_LEN(set));
	cr_assert_eq(n, 20);
	for (size_t i = 1; i < n; i++)
		cr_assert_lt(memcmp(&set[i - 1].addr, &set[i].addr, sizeof(set[i].addr)), 0,
			     "entries %zu and %zu out of order", i - 1, i);
	for (uint32_t k = 0; k < 20; k++) {
		char text[32];
		struct h2s_addr a;
		size_t i;

		snprintf(text, sizeof(text), "10.%u.0.%u:%u", k % 3, k, 1000 + k % 4);
		a = addr_of(text);
		for (i = 0; i < n && !h2s_addr_equal(&set[i].addr, &a); i++)
			;
		cr_assert_lt(i, n, "%s missing", text);
		cr_assert_eq(set[i].weight, maxw[k], "%s: weight %u, expected %u", text,
			     set[i].weight, maxw[k]);
	}
}

/* ---- h2s_backends_file_parse ---- */

static struct h2s_endpoint *fset;
static size_t fn;
static char ferr[256];

static void file_setup(void)
{
	fset = NULL;
	fn = 12345;
	ferr[0] = '\0';
}

static void file_teardown(void)
{
	free(fset);
}

TestSuite(backends_file, .init = file_setup, .fini = file_teardown);

static int parse_len(const char *text, size_t len)
{
	return h2s_backends_file_parse(text, len, &fset, &fn, ferr, sizeof(ferr));
}

static int parse(const char *text)
{
	return parse_len(text, strlen(text));
}

/* The parse must fail with -EINVAL and a one-line error containing every word. */
#define expect_file_error(text, ...)                                                       \
	do {                                                                               \
		static const char *const words_[] = { __VA_ARGS__ };                       \
		cr_assert_eq(parse(text), -EINVAL, "accepted:\n%s", text);                  \
		cr_assert_null(strchr(ferr, '\n'), "error is not one line: %s", ferr);     \
		for (size_t w_ = 0; w_ < ARRAY_LEN(words_); w_++)                          \
			cr_assert(strstr(ferr, words_[w_]), "error '%s' does not mention '%s'", \
				  ferr, words_[w_]);                                       \
	} while (0)

Test(backends_file, one_address_per_line_default_weight_1)
{
	cr_assert_eq(parse("10.0.0.1:50051\n10.0.0.2:50052\n"), 0, "%s", ferr);
	cr_assert_eq(fn, 2);
	expect_ep(&fset[0], "10.0.0.1:50051", 1);
	expect_ep(&fset[1], "10.0.0.2:50052", 1);
}

/* Lines are kept in file order (normalising is the publisher's job). */
Test(backends_file, keeps_file_order)
{
	cr_assert_eq(parse("10.0.0.9:1\n10.0.0.1:1\n"), 0, "%s", ferr);
	cr_assert_eq(fn, 2);
	expect_ep(&fset[0], "10.0.0.9:1", 1);
	expect_ep(&fset[1], "10.0.0.1:1", 1);
}

Test(backends_file, optional_weight)
{
	cr_assert_eq(parse("10.0.0.1:80 3\n10.0.0.2:80\n10.0.0.3:80 10000\n10.0.0.4:80 1\n"), 0,
		     "%s", ferr);
	cr_assert_eq(fn, 4);
	expect_ep(&fset[0], "10.0.0.1:80", 3);
	expect_ep(&fset[1], "10.0.0.2:80", 1);
	expect_ep(&fset[2], "10.0.0.3:80", 10000);
	expect_ep(&fset[3], "10.0.0.4:80", 1);
}

Test(backends_file, tabs_and_spaces_separate)
{
	cr_assert_eq(parse("  \t10.0.0.1:80\t\t7  \t\n"), 0, "%s", ferr);
	cr_assert_eq(fn, 1);
	expect_ep(&fset[0], "10.0.0.1:80", 7);
}

Test(backends_file, blank_lines_and_comments_are_skipped)
{
	cr_assert_eq(parse("# backends of api\n"
			   "\n"
			   "   \n"
			   "\t\n"
			   "10.0.0.1:80 2 # the big one\n"
			   "   # indented comment 10.0.0.9:80\n"
			   "10.0.0.2:80#no space before the comment\n"),
		     0, "%s", ferr);
	cr_assert_eq(fn, 2);
	expect_ep(&fset[0], "10.0.0.1:80", 2);
	expect_ep(&fset[1], "10.0.0.2:80", 1);
}

Test(backends_file, ipv6)
{
	cr_assert_eq(parse("[2001:db8::1]:443 7\n[::1]:50051\n"), 0, "%s", ferr);
	cr_assert_eq(fn, 2);
	expect_ep(&fset[0], "[2001:db8::1]:443", 7);
	expect_ep(&fset[1], "[::1]:50051", 1);
}

Test(backends_file, empty_file_gives_no_entries)
{
	cr_assert_eq(parse(""), 0, "%s", ferr);
	cr_assert_eq(fn, 0);
}

Test(backends_file, only_comments_gives_no_entries)
{
	cr_assert_eq(parse("# nothing yet\n\n#10.0.0.1:80\n"), 0, "%s", ferr);
	cr_assert_eq(fn, 0);
}

Test(backends_file, crlf_line_endings)
{
	cr_assert_eq(parse("# windows\r\n10.0.0.1:80\r\n10.0.0.2:80 3\r\n\r\n"), 0, "%s", ferr);
	cr_assert_eq(fn, 2);
	expect_ep(&fset[0], "10.0.0.1:80", 1);
	expect_ep(&fset[1], "10.0.0.2:80", 3);
}

Test(backends_file, no_trailing_newline)
{
	cr_assert_eq(parse("10.0.0.1:80\n10.0.0.2:80 4"), 0, "%s", ferr);
	cr_assert_eq(fn, 2);
	expect_ep(&fset[1], "10.0.0.2:80", 4);
}

/* len bounds the text: what follows it is not read. */
Test(backends_file, stops_at_len)
{
	static const char text[] = "10.0.0.1:80\n10.0.0.2:80\n";

	cr_assert_eq(parse_len(text, 12), 0, "%s", ferr);
	cr_assert_eq(fn, 1);
	expect_ep(&fset[0], "10.0.0.1:80", 1);
}

/* More lines than the first allocation (16). */
Test(backends_file, many_lines)
{
	char text[100 * 24] = "";
	size_t off = 0;

	for (unsigned i = 0; i < 100; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "10.0.%u.%u:%u %u\n", i / 50,
					i % 50, 2000 + i, i + 1);
	cr_assert_eq(parse(text), 0, "%s", ferr);
	cr_assert_eq(fn, 100);
	for (unsigned i = 0; i < 100; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.0.%u.%u:%u", i / 50, i % 50, 2000 + i);
		expect_ep(&fset[i], a, i + 1);
	}
}

/* Line numbers count every line, blank and comment lines included. */
Test(backends_file, bad_address_names_the_line)
{
	expect_file_error("# header\n\n10.0.0.1:80\nlocalhost:80\n", "line 4", "localhost:80");
}

Test(backends_file, missing_port_is_rejected)
{
	expect_file_error("10.0.0.1\n", "line 1", "10.0.0.1");
}

Test(backends_file, weight_zero_is_rejected)
{
	expect_file_error("10.0.0.1:80\n10.0.0.2:80 0\n", "line 2", "'0'", "1..10000");
}

Test(backends_file, weight_above_max_is_rejected)
{
	expect_file_error("10.0.0.1:80 10001\n", "line 1", "'10001'", "1..10000");
}

Test(backends_file, weight_not_a_number_is_rejected)
{
	expect_file_error("10.0.0.1:80 1\n\n10.0.0.2:80 abc\n", "line 3", "'abc'");
}

Test(backends_file, weight_with_trailing_junk_is_rejected)
{
	expect_file_error("10.0.0.1:80 5x\n", "line 1", "'5x'");
}

Test(backends_file, signed_weight_is_rejected)
{
	expect_file_error("10.0.0.1:80 +5\n", "line 1", "'+5'");
	free(fset);
	fset = NULL;
	expect_file_error("10.0.0.1:80 -1\n", "line 1", "'-1'");
}

/* strtoul saturates at ULONG_MAX: still out of range, not wrapped into range. */
Test(backends_file, huge_weight_is_rejected)
{
	expect_file_error("10.0.0.1:80 18446744073709551617\n", "line 1", "1..10000");
}

Test(backends_file, extra_token_is_rejected)
{
	expect_file_error("10.0.0.1:80 5 6\n", "line 1", "'6'", "ADDR:PORT [WEIGHT]");
}

/* Three tokens where the second is not a weight: the weight is what is reported. */
Test(backends_file, two_addresses_on_a_line_are_rejected)
{
	expect_file_error("10.0.0.1:80 10.0.0.2:80\n", "line 1", "'10.0.0.2:80'");
}

/* The line buffer is 512 bytes: a 511-byte line is fine, 512 is an error naming the line. */
Test(backends_file, line_of_511_bytes_is_accepted)
{
	char text[600];

	memset(text, ' ', sizeof(text));
	memcpy(text, "10.0.0.1:80 2 #", 15);
	text[511] = '\n';
	cr_assert_eq(parse_len(text, 512), 0, "%s", ferr);
	cr_assert_eq(fn, 1);
	expect_ep(&fset[0], "10.0.0.1:80", 2);
}

Test(backends_file, over_long_line_is_rejected)
{
	char text[700];

	memset(text, '#', sizeof(text));
	memcpy(text, "10.0.0.1:80\n", 12);
	text[12 + 512] = '\n';
	text[12 + 513] = '\0';
	expect_file_error(text, "line 2", "longer than 511");
}

/* An error after good lines: nothing is handed back (and nothing leaks: ASan). */
Test(backends_file, error_hands_back_nothing)
{
	char text[64 * 20] = "";
	size_t off = 0;

	for (unsigned i = 0; i < 40; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "10.0.0.%u:80\n", i + 1);
	snprintf(text + off, sizeof(text) - off, "10.0.0.99:80 0\n");
	cr_assert_eq(parse(text), -EINVAL);
	cr_assert_null(fset);
	cr_assert_eq(fn, 12345);
	cr_assert(strstr(ferr, "line 41"), "%s", ferr);
}
