/* test_maps_names.c — the name tables of user/kernel/maps.c shared by the CLI, the config file,
 * the logs and `h2steer stats`, and the map list against the BPF object.
 */
#include "unit.h"

#include "h2steer.skel.h"
#include "maps.h"
#include "spec.h"

#include <bpf/libbpf.h>
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

/* The BPF object (the one the skeleton embeds: what the daemon loads) has exactly the maps of
 * H2S_MAP_LIST. A listed map it lacks already fails its build (bpf/h2s_maps.bpf.h); one it has
 * but the list lacks would be pinned yet never opened, checked or shown by userspace, and only
 * this test sees it.
 */
Test(maps_names, bpf_object_has_exactly_the_listed_maps)
{
	struct h2steer_bpf *skel = h2steer_bpf__open();
	struct bpf_map *map;

	cr_assert_not_null(skel, "cannot open the BPF object: %s", strerror(errno));
	bpf_object__for_each_map(map, skel->obj) {
		const char *name = bpf_map__name(map);
		size_t i = 0;

		if (bpf_map__is_internal(map))
			continue; /* .rodata, .bss: the programs' globals */
		while (i < H2S_M__COUNT && strcmp(name, h2s_map_names[i]) != 0)
			i++;
		cr_expect_lt(i, H2S_M__COUNT, "map %s of the BPF object is not in H2S_MAP_LIST", name);
	}
	for (size_t i = 0; i < H2S_M__COUNT; i++)
		cr_expect_not_null(bpf_object__find_map_by_name(skel->obj, h2s_map_names[i]),
				   "%s is in H2S_MAP_LIST but not in the BPF object", h2s_map_names[i]);
	h2steer_bpf__destroy(skel);
}
