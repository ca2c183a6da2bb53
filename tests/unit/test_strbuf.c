/* test_strbuf.c — the growable text buffer behind /metrics and the control replies: appends keep
 * every byte and the terminating NUL across growth, and a failed append poisons the whole text
 * (a half-rendered metrics page must not be served as if it were complete).
 */
#include "unit.h"

#include "strbuf.h"

#include <sanitizer/lsan_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* The first allocation strbuf.c makes (it then doubles). */
#define FIRST_CAP 4096

/* Take the text out of b and check it is exactly want (len and bytes, NUL-terminated). */
static void expect_take(struct h2s_strbuf *b, const char *want, size_t want_len)
{
	size_t len = (size_t)-1;
	char *s = h2s_sb_take(b, &len);

	cr_assert_not_null(s);
	cr_assert_eq(len, want_len, "len %zu, expected %zu", len, want_len);
	cr_assert_eq(memcmp(s, want, want_len), 0);
	cr_assert_eq(s[len], '\0', "not NUL-terminated");
	/* Taking hands the text over: the buffer is empty and owns nothing any more. */
	cr_assert_null(b->s);
	cr_assert_eq(b->len, 0);
	cr_assert_eq(b->cap, 0);
	free(s);
}

Test(strbuf, printf_formats_and_appends)
{
	struct h2s_strbuf b = { 0 };

	h2s_sb_printf(&b, "%s=%d", "a", 1);
	h2s_sb_printf(&b, " %s=%.2f", "b", 2.5);
	h2s_sb_printf(&b, " %llu\n", 18446744073709551615ull);
	cr_assert_not(b.oom);
	expect_take(&b, "a=1 b=2.50 18446744073709551615\n", 32);
}

/* An empty append still allocates: the result is "" (not NULL, which means "failed"). */
Test(strbuf, empty_append_gives_empty_string)
{
	struct h2s_strbuf b = { 0 };

	h2s_sb_printf(&b, "%s", "");
	expect_take(&b, "", 0);
}

/* Nothing ever appended: there is no text to hand over. NULL is what take returns, and len is
 * left alone (only a real text has a length).
 */
Test(strbuf, take_of_untouched_buffer_is_null)
{
	struct h2s_strbuf b = { 0 };
	size_t len = 12345;

	cr_assert_null(h2s_sb_take(&b, &len));
	cr_assert_eq(len, 12345);
	/* and the buffer is still usable */
	h2s_sb_printf(&b, "x");
	expect_take(&b, "x", 1);
}

/* len may be NULL when the caller only wants the C string. */
Test(strbuf, take_without_len)
{
	struct h2s_strbuf b = { 0 };
	char *s;

	h2s_sb_printf(&b, "%d", 42);
	s = h2s_sb_take(&b, NULL);
	cr_assert_str_eq(s, "42");
	free(s);
}

/* Room for n characters needs n + 1 bytes: exactly FIRST_CAP - 1 characters fit in the first
 * allocation, one more forces the first doubling.
 */
Test(strbuf, growth_at_the_exact_boundary)
{
	struct h2s_strbuf b = { 0 };
	static char want[FIRST_CAP + 1];

	memset(want, 'a', FIRST_CAP - 1);
	want[FIRST_CAP - 1] = 'z';
	h2s_sb_printf(&b, "%.*s", FIRST_CAP - 1, want);
	cr_assert_eq(b.cap, FIRST_CAP);
	cr_assert_eq(b.len, FIRST_CAP - 1);
	h2s_sb_printf(&b, "z");
	cr_assert_eq(b.cap, 2 * FIRST_CAP);
	expect_take(&b, want, FIRST_CAP);
}

/* One append longer than several doublings: the buffer jumps straight to a size that holds it,
 * and every byte (and the NUL) is there.
 */
Test(strbuf, single_append_longer_than_first_capacity)
{
	struct h2s_strbuf b = { 0 };
	size_t n = 5 * FIRST_CAP + 17;
	char *big = malloc(n + 1);

	cr_assert_not_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	big[n] = '\0';
	h2s_sb_printf(&b, "<%s>", big);
	cr_assert_eq(b.cap, 8 * FIRST_CAP, "cap %zu", b.cap);
	cr_assert_eq(b.len, n + 2);
	cr_assert_eq(b.s[0], '<');
	cr_assert_eq(memcmp(b.s + 1, big, n), 0);
	cr_assert_eq(b.s[n + 1], '>');
	cr_assert_eq(b.s[n + 2], '\0');
	free(big);
	h2s_sb_free(&b);
}

/* Many small appends across many reallocations: the text is the concatenation, in order. */
Test(strbuf, many_appends_keep_order)
{
	struct h2s_strbuf b = { 0 };
	size_t off = 0;
	char *s;
	size_t len;

	for (int i = 0; i < 20000; i++)
		h2s_sb_printf(&b, "%d,", i);
	cr_assert_not(b.oom);
	cr_assert_lt(b.len, b.cap);
	s = h2s_sb_take(&b, &len);
	cr_assert_not_null(s);
	cr_assert_eq(strlen(s), len);
	for (int i = 0; i < 20000; i++) {
		char want[16];
		int n = snprintf(want, sizeof(want), "%d,", i);

		cr_assert_eq(memcmp(s + off, want, (size_t)n), 0, "item %d at offset %zu", i, off);
		off += (size_t)n;
	}
	cr_assert_eq(off, len);
	free(s);
}

/* A failed append (here: vsnprintf cannot convert a wide character in the "C" locale and returns
 * -1, the same path as an out-of-memory) marks the text incomplete: later appends are ignored,
 * take returns NULL and frees what there was, and the buffer is usable again afterwards.
 */
Test(strbuf, failed_append_poisons_the_text)
{
	struct h2s_strbuf b = { 0 };
	size_t len = 7;

	h2s_sb_printf(&b, "before ");
	h2s_sb_printf(&b, "%ls", L"\u00e9");
	cr_assert(b.oom, "the conversion did not fail: is the test running in a UTF-8 locale?");
	h2s_sb_printf(&b, "after");
	cr_assert_eq(b.len, 7, "an append after the failure changed the text");
	cr_assert_null(h2s_sb_take(&b, &len));
	cr_assert_eq(len, 7);
	cr_assert_not(b.oom);
	cr_assert_null(b.s);
	/* here, not at exit: Criterion does not reliably fail a test over an LSan report at exit */
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "the partial text leaked");
	h2s_sb_printf(&b, "again");
	expect_take(&b, "again", 5);
}

/* free drops the text; a freed buffer starts afresh. */
Test(strbuf, free_then_reuse)
{
	struct h2s_strbuf b = { 0 };

	h2s_sb_printf(&b, "%0*d", 3 * FIRST_CAP, 0);
	h2s_sb_free(&b);
	cr_assert_null(b.s);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, 0);
	h2s_sb_free(&b); /* twice is harmless */
	h2s_sb_printf(&b, "new");
	expect_take(&b, "new", 3);
}
