/* test_maps_names.c — the name tables of user/maps.c shared by the CLI, the config file, the
 * logs and `h2steer stats`.
 */
#include "unit.h"

#include "maps.h"

#include <errno.h>

Test(maps_names, algo_names)
{
	cr_assert_str_eq(h2s_algo_name(H2S_ALGO_ROUND_ROBIN), "round_robin");
	cr_assert_str_eq(h2s_algo_name(H2S_ALGO_LEAST_REQUEST), "least_request");
}

Test(maps_names, algo_round_trip)
{
	for (int a = 0; a < H2S_ALGO__COUNT; a++)
		cr_assert_eq(h2s_algo_parse(h2s_algo_name(a)), a, "algo %d", a);
}

Test(maps_names, unknown_algo_is_einval)
{
	cr_assert_eq(h2s_algo_parse("random"), -EINVAL);
	cr_assert_eq(h2s_algo_parse(""), -EINVAL);
	cr_assert_eq(h2s_algo_parse("round"), -EINVAL);        /* no prefixes */
	cr_assert_eq(h2s_algo_parse("ROUND_ROBIN"), -EINVAL);  /* case matters */
	cr_assert_eq(h2s_algo_parse("unknown"), -EINVAL);
}

Test(maps_names, out_of_range_algo_is_unknown)
{
	cr_assert_str_eq(h2s_algo_name(H2S_ALGO__COUNT), "unknown");
	cr_assert_str_eq(h2s_algo_name((enum h2s_algo)-1), "unknown");
}

/* Every counter has its own name (they are JSON keys in `h2steer -j stats`). */
Test(maps_names, counter_names_distinct)
{
	for (int i = 0; i < H2S_CNT__COUNT; i++) {
		const char *n = h2s_counter_name(i);

		cr_assert_not_null(n, "counter %d has no name", i);
		cr_assert_str_neq(n, "unknown", "counter %d has no name", i);
		cr_assert_gt(strlen(n), 0, "counter %d has an empty name", i);
		for (int k = 0; k < i; k++)
			cr_assert_str_neq(n, h2s_counter_name(k), "counters %d and %d are both '%s'",
					  k, i, n);
	}
}

Test(maps_names, out_of_range_counter_is_unknown)
{
	cr_assert_str_eq(h2s_counter_name(H2S_CNT__COUNT), "unknown");
}
