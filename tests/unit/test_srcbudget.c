/* test_srcbudget.c — user/proxy/srcbudget.c: one reset budget per source address, whatever
 * its connections, in a table no number of addresses grows.
 */
#include "unit.h"

#include "addr.h"
#include "srcbudget.h"

#include <stdio.h>

static struct h2s_addr at(const char *text)
{
	struct h2s_addr a;
	char err[128];

	cr_assert_eq(h2s_addr_parse(text, &a, err, sizeof(err)), 0, "%s: %s", text, err);
	return a;
}

Test(srcbudget, one_bucket_per_address_whatever_the_port)
{
	struct h2s_srcbudget s;
	struct h2s_addr a1 = at("127.0.0.9:40000"), a2 = at("127.0.0.9:40002");
	struct h2s_addr other = at("127.0.0.10:40000"), v6 = at("[::1]:40000");

	cr_assert_eq(h2s_srcbudget_init(&s, 64), 0);
	/* two connections of one source share 10 */
	for (int i = 0; i < 5; i++) {
		cr_assert(h2s_srcbudget_take(&s, &a1, 10, 0, 1000), "take %d", i);
		cr_assert(h2s_srcbudget_take(&s, &a2, 10, 0, 1000), "take %d", i);
	}
	cr_assert_not(h2s_srcbudget_take(&s, &a1, 10, 0, 1000));
	cr_assert_not(h2s_srcbudget_take(&s, &a2, 10, 0, 5000));
	/* other sources have their own */
	for (int i = 0; i < 10; i++) {
		cr_assert(h2s_srcbudget_take(&s, &other, 10, 0, 1000), "take %d", i);
		cr_assert(h2s_srcbudget_take(&s, &v6, 10, 0, 1000), "take %d", i);
	}
	cr_assert_not(h2s_srcbudget_take(&s, &other, 10, 0, 1000));
	cr_assert_eq(s.overflowed, 0);
	h2s_srcbudget_fini(&s);
}

Test(srcbudget, refilled_at_rate_and_paid_back_by_work)
{
	struct h2s_srcbudget s;
	struct h2s_addr a = at("10.1.2.3:1");

	cr_assert_eq(h2s_srcbudget_init(&s, 16), 0);
	for (int i = 0; i < 4; i++)
		cr_assert(h2s_srcbudget_take(&s, &a, 4, 100, 0));
	cr_assert_not(h2s_srcbudget_take(&s, &a, 4, 100, 0));
	cr_assert(h2s_srcbudget_take(&s, &a, 4, 100, 10), "100 a second: one in 10 ms");
	cr_assert_not(h2s_srcbudget_take(&s, &a, 4, 100, 10));
	h2s_srcbudget_give(&s, &a, 4, 2);
	cr_assert(h2s_srcbudget_take(&s, &a, 4, 100, 10));
	cr_assert(h2s_srcbudget_take(&s, &a, 4, 100, 10));
	cr_assert_not(h2s_srcbudget_take(&s, &a, 4, 100, 10));
	/* a source that holds no bucket gets nothing to keep */
	struct h2s_addr b = at("10.1.2.4:1");

	h2s_srcbudget_give(&s, &b, 4, 100);
	for (int i = 0; i < 4; i++)
		cr_assert(h2s_srcbudget_take(&s, &b, 4, 100, 10));
	cr_assert_not(h2s_srcbudget_take(&s, &b, 4, 100, 10), "never above burst");
	h2s_srcbudget_fini(&s);
}

/* More addresses than slots, each still paying: the table does not grow, the sources beyond
 * it share one overflow bucket, and a slot whose bucket refilled is taken by the next source.
 */
Test(srcbudget, addresses_beyond_the_table_share_one_bucket)
{
	struct h2s_srcbudget s;
	char text[64];
	int took = 0;

	cr_assert_eq(h2s_srcbudget_init(&s, 16), 0);
	cr_assert_eq(s.cap, 16);
	for (int i = 0; i < 1000; i++) {
		snprintf(text, sizeof(text), "127.%d.%d.1:5", i / 250, i % 250 + 1);
		struct h2s_addr a = at(text);

		took += h2s_srcbudget_take(&s, &a, 100, 1, 0);
	}
	/* at most 16 sources with their own 100, and the overflow's 100 */
	cr_assert_leq(took, 16 + 100);
	cr_assert_geq(took, 100);
	cr_assert_geq(s.overflowed, 1000 - 16);
	cr_assert_eq(s.cap, 16, "the table never grows");

	/* 100 s later (1 a second) every bucket is full again: a new source gets a slot */
	struct h2s_addr late = at("10.9.9.9:5");
	uint64_t before = s.overflowed;

	for (int i = 0; i < 100; i++)
		cr_assert(h2s_srcbudget_take(&s, &late, 100, 1, 100000), "take %d", i);
	cr_assert_eq(s.overflowed, before, "it took a slot of its own");
	cr_assert_not(h2s_srcbudget_take(&s, &late, 100, 1, 100000));
	h2s_srcbudget_fini(&s);
}

Test(srcbudget, table_size_is_a_power_of_two)
{
	struct h2s_srcbudget s;

	cr_assert_eq(h2s_srcbudget_init(&s, 1000), 0);
	cr_assert_eq(s.cap, 1024);
	h2s_srcbudget_fini(&s);
	cr_assert_eq(h2s_srcbudget_init(&s, 3), 0);
	cr_assert_eq(s.cap, 16);
	h2s_srcbudget_fini(&s);
}
