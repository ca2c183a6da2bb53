/* test_locality.c — user/balance/locality.c: when a local-first service's picks stay on its
 * local members (at least one usable, and usable * 100 >= total * locality_min_usable_percent)
 * and when they go to every member.
 */
#include "unit.h"

#include "locality.h"

Test(locality, all_local_usable_stays_local)
{
	cr_assert(h2s_locality_applies(2, 2, 50));
	cr_assert(h2s_locality_applies(1, 1, 100));
}

Test(locality, no_local_member_never_applies)
{
	cr_assert_not(h2s_locality_applies(0, 0, 0));
	cr_assert_not(h2s_locality_applies(0, 0, 50));
}

Test(locality, none_usable_falls_back_even_at_zero_percent)
{
	cr_assert_not(h2s_locality_applies(0, 2, 50));
	cr_assert_not(h2s_locality_applies(0, 3, 0));
}

/* The default 50 %: one of two is enough (the e2e test relies on it), one of three is not. */
Test(locality, half_is_enough_at_the_default)
{
	cr_assert(h2s_locality_applies(1, 2, 50));
	cr_assert_not(h2s_locality_applies(1, 3, 50));
	cr_assert(h2s_locality_applies(2, 4, 50));
	cr_assert_not(h2s_locality_applies(2, 5, 50));
}

/* The boundary is inclusive: exactly the share asked for is enough, one member less is not. */
Test(locality, boundary_is_inclusive)
{
	cr_assert(h2s_locality_applies(3, 4, 75));
	cr_assert_not(h2s_locality_applies(2, 4, 75));
	cr_assert(h2s_locality_applies(4, 4, 100));
	cr_assert_not(h2s_locality_applies(3, 4, 100));
}

Test(locality, zero_percent_needs_only_one)
{
	cr_assert(h2s_locality_applies(1, 1000, 0));
}

/* Counts whose product with 100 would wrap 32 bits still compare right. */
Test(locality, large_counts_do_not_wrap)
{
	size_t big = (size_t)1 << 30;

	cr_assert(h2s_locality_applies(big / 2, big, 50));
	cr_assert_not(h2s_locality_applies(big / 2 - 1, big, 50));
}

/* More usable than there are is a caller's bug: not taken as "enough". */
Test(locality, more_usable_than_total_is_refused)
{
	cr_assert_not(h2s_locality_applies(3, 2, 50));
}
