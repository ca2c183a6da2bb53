/* test_pick.c — h2s_registry_pick over a large service loaded from the real maps: the quick
 * picks (one member read for round robin, two for the random two choices) must share RPCs as
 * the full pick does, honour health, the subset and `avoid`, and give way to the full pick when
 * they cannot tell.
 */
#include "kernel.h"

#include "addr.h"
#include "health.h"
#include "loop.h"
#include "maps.h"
#include "registry.h"
#include "stats.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define MEMBERS 1000

static struct h2s_registry reg;
static struct h2s_stats stats;
static struct h2s_outlier_cfg outlier;
static struct h2s_service_rt *svc;
static unsigned picks[MEMBERS]; /* by member address: 127.1.(i / 250).(i % 250 + 1) */

static void member_addr(size_t i, struct h2s_addr *a)
{
	char text[32];

	snprintf(text, sizeof(text), "127.1.%zu.%zu:9", i / 250, i % 250 + 1);
	cr_assert(h2s_addr_parse(text, a, NULL, 0) == 0);
}

static size_t member_of(const struct h2s_backend_rt *be)
{
	const uint8_t *ip = (const uint8_t *)&be->addr.ip6[3]; /* v4-mapped: the last word */

	return (size_t)ip[2] * 250 + ip[3] - 1;
}

/* Members i of a local-first service (load_local) for which this holds are flagged local. */
static bool (*local_member)(size_t i);

/* A service of n members (equal weights) under `algo`, subset `subset`, loaded (in place of
 * the last one); local-first when local_member is set.
 */
static void load(size_t n, uint8_t algo, uint16_t subset)
{
	struct h2s_service cfg = { .algo = algo, .subset = subset };
	struct h2s_backend b = { .weight = 1 };
	struct h2s_addr vip, be;

	if (local_member)
		cfg.flags = H2S_SVC_F_LOCAL_FIRST;
	cr_assert(h2s_addr_parse("127.0.100.79:1", &vip, NULL, 0) == 0);
	h2s_service_del(&kt.l.maps, &vip);
	cr_assert(h2s_service_add(&kt.l.maps, &vip, &cfg) == 0);
	for (size_t i = 0; i < n; i++) {
		member_addr(i, &be);
		b.flags = local_member && local_member(i) ? H2S_BE_F_LOCAL : 0;
		cr_assert(h2s_backend_add(&kt.l.maps, &vip, &be, &b) == 0);
	}
	h2s_registry_init(&reg, &kt.l.maps);
	reg.readonly = true; /* picks only: leave the maps' published state alone */
	reg.stats = &stats;
	reg.outlier = &outlier;
	reg.ewma_decay_ms = 10000;
	reg.locality_min_pct = 50; /* the setting's default */
	cr_assert(h2s_registry_refresh(&reg) == 0);
	svc = h2s_registry_service(&reg, &vip);
	cr_assert(svc && svc->n == n, "service with %zu members", svc ? svc->n : 0);
	memset(picks, 0, sizeof(picks));
}

static void setup(void)
{
	ktest_setup();
	memset(&stats, 0, sizeof(stats));
	local_member = NULL;
	/* Connect failures eject for a minute: what the locality tests eject with. */
	outlier = (struct h2s_outlier_cfg){ .connect_base_ms = 60000, .connect_max_ms = 60000 };
}

static void teardown(void)
{
	h2s_registry_fini(&reg);
	h2s_stats_free(&stats);
	ktest_teardown();
}

TestSuite(pick, .init = setup, .fini = teardown, .timeout = 60);

static struct h2s_backend_rt *member(size_t i)
{
	for (size_t k = 0; k < svc->n; k++)
		if (member_of(svc->be[k]) == i)
			return svc->be[k];
	cr_assert_fail("no member %zu", i);
	return NULL;
}

static void pick_at(unsigned n, const struct h2s_backend_rt *avoid, uint64_t now_ms)
{
	for (unsigned i = 0; i < n; i++) {
		struct h2s_backend_rt *be = h2s_registry_pick(&reg, svc, avoid, NULL, now_ms);

		cr_assert(be, "pick %u found nothing", i);
		picks[member_of(be)]++;
	}
}

static void pick_n(unsigned n, const struct h2s_backend_rt *avoid)
{
	pick_at(n, avoid, h2s_now_ms());
}

Test(pick, round_robin_gives_each_of_1000_its_turn)
{
	load(MEMBERS, H2S_ALGO_ROUND_ROBIN, H2S_SUBSET_ALL);
	pick_n(3 * MEMBERS, NULL);
	for (size_t i = 0; i < MEMBERS; i++)
		cr_assert_eq(picks[i], 3, "member %zu picked %u times", i, picks[i]);
}

Test(pick, round_robin_skips_members_not_serving)
{
	load(MEMBERS, H2S_ALGO_ROUND_ROBIN, H2S_SUBSET_ALL);
	for (size_t i = 0; i < MEMBERS; i += 2)
		h2s_backend_set_health(&reg, member(i), H2S_HEALTH_NOT_SERVING);
	pick_n(MEMBERS, NULL);
	for (size_t i = 0; i < MEMBERS; i++)
		cr_assert_eq(picks[i], i % 2 ? 2 : 0, "member %zu picked %u times", i, picks[i]);
}

Test(pick, subset_of_20_takes_every_pick_until_it_is_all_down)
{
	size_t in_subset = 0, used = 0;

	load(MEMBERS, H2S_ALGO_ROUND_ROBIN, 20);
	cr_assert_eq(svc->nsubset, 20);
	for (size_t k = 0; k < svc->n; k++)
		cr_assert_eq(svc->mem[k].in_subset, k < svc->nsubset, "member %zu out of place", k);
	pick_n(2000, NULL);
	for (size_t k = 0; k < svc->nsubset; k++) {
		cr_assert_eq(picks[member_of(svc->be[k])], 100);
		in_subset += picks[member_of(svc->be[k])];
	}
	cr_assert_eq(in_subset, 2000, "picks outside the subset");

	/* The whole subset down: any usable member, none of the subset, evenly. */
	for (size_t k = 0; k < svc->nsubset; k++)
		h2s_backend_set_health(&reg, svc->be[k], H2S_HEALTH_NOT_SERVING);
	memset(picks, 0, sizeof(picks));
	pick_n(2 * MEMBERS, NULL);
	for (size_t k = 0; k < svc->n; k++) {
		unsigned p = picks[member_of(svc->be[k])];

		if (k < svc->nsubset)
			cr_assert_eq(p, 0, "subset member %zu is down but got %u", k, p);
		else
			cr_assert(p == 2 || p == 3, "member %zu got %u of 2000", k, p);
		used += p > 0;
	}
	cr_assert_eq(used, MEMBERS - 20);
}

/* Share of n picks that went to the members for which `which` holds. */
static double share(bool (*which)(size_t i), unsigned n)
{
	unsigned got = 0;

	for (size_t i = 0; i < MEMBERS; i++)
		got += which(i) ? picks[i] : 0;
	return (double)got / n;
}

static bool first_half(size_t i)
{
	return i < MEMBERS / 2;
}

static bool every_tenth(size_t i)
{
	return i % 10 == 9;
}

/* Two choices among 1000: a busy (or slow) half gets an RPC only when both candidates are in
 * it, i.e. a quarter of them (half with one random member, nothing with the full set's best).
 */
Test(pick, least_request_two_choices_give_a_busy_half_a_quarter)
{
	load(MEMBERS, H2S_ALGO_LEAST_REQUEST, H2S_SUBSET_ALL);
	for (size_t i = 0; i < MEMBERS; i++) {
		member(i)->inflight = first_half(i) ? 10 : 0;
		if (every_tenth(i))
			h2s_backend_set_health(&reg, member(i), H2S_HEALTH_NOT_SERVING);
	}
	pick_n(20000, NULL);
	cr_assert(share(first_half, 20000) > 0.20 && share(first_half, 20000) < 0.30,
		  "busy half got %.3f", share(first_half, 20000));
	cr_assert_eq(share(every_tenth, 20000), 0, "members not serving were picked");
	for (size_t i = 0; i < MEMBERS; i++)
		member(i)->inflight = 0; /* the registry frees only idle backends */
}

Test(pick, peak_ewma_two_choices_give_a_slow_half_a_quarter)
{
	uint64_t now = h2s_now_ns();

	load(MEMBERS, H2S_ALGO_PEAK_EWMA, H2S_SUBSET_ALL);
	for (size_t i = 0; i < MEMBERS; i++) {
		member(i)->ewma_ns = first_half(i) ? 10e6 : 1e6;
		member(i)->ewma_at_ns = now;
	}
	pick_n(20000, NULL);
	cr_assert(share(first_half, 20000) > 0.20 && share(first_half, 20000) < 0.30,
		  "slow half got %.3f", share(first_half, 20000));
}

/* With one usable member of 1000 the random draws find nothing: the full pick must. */
Test(pick, one_usable_member_of_1000_gets_every_pick_by_each_algorithm)
{
	const uint8_t algos[] = { H2S_ALGO_ROUND_ROBIN, H2S_ALGO_LEAST_REQUEST,
				  H2S_ALGO_PEAK_EWMA };

	for (size_t a = 0; a < sizeof(algos); a++) {
		if (a)
			h2s_registry_fini(&reg);
		load(MEMBERS, algos[a], H2S_SUBSET_ALL);
		for (size_t i = 0; i < MEMBERS; i++)
			if (i != 777)
				h2s_backend_set_health(&reg, member(i), H2S_HEALTH_NOT_SERVING);
		pick_n(200, NULL);
		cr_assert_eq(picks[777], 200, "algorithm %u: %u of 200", algos[a], picks[777]);
	}
}

Test(pick, avoid_is_never_picked_while_another_is_usable)
{
	load(2, H2S_ALGO_LEAST_REQUEST, H2S_SUBSET_ALL);
	member(0)->inflight = 0;
	member(1)->inflight = 50; /* busier: only `avoid` can send picks there */
	pick_n(100, member(0));
	cr_assert_eq(picks[1], 100);
	member(1)->inflight = 0;
}

/* Affinity over 1000 members (rendezvous hashing of every one, addresses read from the
 * service, not copied per pick): one key, one backend, until that one stops serving; many
 * keys, many backends.
 */
Test(pick, affinity_keeps_a_key_on_one_of_1000_and_moves_it_only_when_that_one_is_down)
{
	uint64_t key = 0x1234567890abcdefull;
	struct h2s_backend_rt *first, *be;
	size_t distinct = 0;

	load(MEMBERS, H2S_ALGO_ROUND_ROBIN, H2S_SUBSET_ALL);
	first = h2s_registry_pick(&reg, svc, NULL, &key, h2s_now_ms());
	cr_assert(first);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(h2s_registry_pick(&reg, svc, NULL, &key, h2s_now_ms()), first);
	h2s_backend_set_health(&reg, first, H2S_HEALTH_NOT_SERVING);
	be = h2s_registry_pick(&reg, svc, NULL, &key, h2s_now_ms());
	cr_assert(be && be != first);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(h2s_registry_pick(&reg, svc, NULL, &key, h2s_now_ms()), be);
	for (uint64_t k = 1; k <= 2000; k++) {
		uint64_t h = k * 0x9e3779b97f4a7c15ull;

		be = h2s_registry_pick(&reg, svc, NULL, &h, h2s_now_ms());
		cr_assert(be && be != first);
		distinct += picks[member_of(be)]++ == 0;
	}
	/* 2000 keys over 999 members: ~1 - e^-2 of them get one (~865). */
	cr_assert_gt(distinct, 700, "%zu distinct backends for 2000 keys", distinct);
}

/* ---- locality first ---- */

static bool first_ten(size_t i)
{
	return i < 10;
}

/* Picks of the members for which `which` holds, and of the others. */
static void count_picks(bool (*which)(size_t i), unsigned *in, unsigned *out)
{
	*in = *out = 0;
	for (size_t i = 0; i < MEMBERS; i++)
		*(which(i) ? in : out) += picks[i];
}

/* 10 local members of 1000, by each algorithm: they lead the subset, and take every pick
 * (round robin: each its turn).
 */
Test(pick, local_first_keeps_every_pick_on_the_10_local_of_1000)
{
	const uint8_t algos[] = { H2S_ALGO_ROUND_ROBIN, H2S_ALGO_LEAST_REQUEST,
				  H2S_ALGO_PEAK_EWMA };
	unsigned in, out;

	local_member = first_ten;
	for (size_t a = 0; a < sizeof(algos); a++) {
		if (a)
			h2s_registry_fini(&reg);
		load(MEMBERS, algos[a], H2S_SUBSET_ALL);
		cr_assert_eq(svc->nlocal, 10);
		for (size_t k = 0; k < svc->n; k++)
			cr_assert_eq(first_ten(member_of(svc->be[k])), k < 10,
				     "member %zu out of place", k);
		pick_n(1000, NULL);
		count_picks(first_ten, &in, &out);
		cr_assert_eq(out, 0, "algorithm %u: %u picks outside the local members", algos[a],
			     out);
		if (algos[a] == H2S_ALGO_ROUND_ROBIN)
			for (size_t i = 0; i < 10; i++)
				cr_assert_eq(picks[i], 100, "local member %zu: %u", i, picks[i]);
	}
}

/* Ejections count from the next pick: 5 of 10 ejected is still enough (50 %), 6 is not and
 * picks go to every usable member; when the ejections run out (time alone, nothing else
 * changes), picks are local again.
 */
Test(pick, local_first_falls_back_at_the_next_pick_and_returns_when_ejections_end)
{
	uint64_t now = h2s_now_ms(), until;
	unsigned in, out;

	local_member = first_ten;
	load(MEMBERS, H2S_ALGO_LEAST_REQUEST, H2S_SUBSET_ALL);
	pick_n(100, NULL);
	for (size_t i = 0; i < 5; i++)
		h2s_backend_connect_failed(&reg, member(i));
	memset(picks, 0, sizeof(picks));
	pick_n(1000, NULL);
	count_picks(first_ten, &in, &out);
	cr_assert_eq(out, 0, "5 of 10 usable is enough at 50 %%: %u picks elsewhere", out);
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(picks[i], 0, "ejected member %zu picked", i);

	h2s_backend_connect_failed(&reg, member(5));
	until = member(5)->out.until_ms;
	/* Every usable member from the very next pick: the 4 local ones left get about 4/994
	 * of the picks (0.8 of 200: 6 or more would be a 1-in-10^4 draw).
	 */
	memset(picks, 0, sizeof(picks));
	pick_at(200, NULL, now);
	count_picks(first_ten, &in, &out);
	cr_assert(out >= 194, "after the 6th ejection only %u of 200 picks went elsewhere", out);

	memset(picks, 0, sizeof(picks));
	pick_at(1000, NULL, until + 1);
	count_picks(first_ten, &in, &out);
	cr_assert_eq(out, 0, "ejections over: still %u picks elsewhere", out);
}

/* Health works the same, and so does its return. */
Test(pick, local_first_follows_health_both_ways)
{
	unsigned in, out;

	local_member = first_ten;
	load(MEMBERS, H2S_ALGO_ROUND_ROBIN, H2S_SUBSET_ALL);
	for (size_t i = 0; i < 10; i++)
		h2s_backend_set_health(&reg, member(i), H2S_HEALTH_NOT_SERVING);
	pick_n(990, NULL);
	count_picks(first_ten, &in, &out);
	cr_assert_eq(in, 0);
	h2s_backend_set_health(&reg, member(3), H2S_HEALTH_SERVING);
	memset(picks, 0, sizeof(picks));
	pick_n(100, NULL);
	count_picks(first_ten, &in, &out);
	cr_assert(out > 90, "1 of 10 is not enough: %u of 100 elsewhere", out);
	for (size_t i = 4; i < 8; i++)
		h2s_backend_set_health(&reg, member(i), H2S_HEALTH_SERVING);
	memset(picks, 0, sizeof(picks));
	pick_n(100, NULL);
	cr_assert_eq(picks[3] + picks[4] + picks[5] + picks[6] + picks[7], 100,
		     "5 of 10 serving: all on them");
}

static bool first_two(size_t i)
{
	return i < 2;
}

/* A replayed stream's `avoid`: the other local member while there is one, else elsewhere
 * (never nothing, never `avoid`).
 */
Test(pick, local_first_avoid_goes_to_the_other_local_then_elsewhere)
{
	unsigned in, out;

	local_member = first_two;
	load(MEMBERS, H2S_ALGO_LEAST_REQUEST, H2S_SUBSET_ALL);
	pick_n(200, member(0));
	cr_assert_eq(picks[1], 200, "avoiding one local member: the other");
	h2s_backend_set_health(&reg, member(0), H2S_HEALTH_NOT_SERVING);
	memset(picks, 0, sizeof(picks));
	pick_n(200, member(1)); /* 1 of 2 usable: local, but that one is avoided */
	count_picks(first_two, &in, &out);
	cr_assert_eq(in, 0, "%u picks on the avoided or down local member", in);
	cr_assert_eq(out, 200);
	for (size_t i = 0; i < MEMBERS; i++)
		member(i)->inflight = 0;
}

/* Affinity hashes over the local set while it takes the picks: every key lands on a local
 * member, the same one each time; when it falls back, over every member.
 */
Test(pick, local_first_affinity_hashes_over_the_local_members)
{
	struct h2s_backend_rt *be;
	unsigned in, out;
	uint64_t k7 = 7 * 0x9e3779b97f4a7c15ull;
	struct h2s_backend_rt *first;

	local_member = first_ten;
	load(MEMBERS, H2S_ALGO_ROUND_ROBIN, H2S_SUBSET_ALL);
	first = h2s_registry_pick(&reg, svc, NULL, &k7, h2s_now_ms());
	for (uint64_t k = 1; k <= 1000; k++) {
		uint64_t h = k * 0x9e3779b97f4a7c15ull;

		be = h2s_registry_pick(&reg, svc, NULL, &h, h2s_now_ms());
		cr_assert(be);
		picks[member_of(be)]++;
	}
	count_picks(first_ten, &in, &out);
	cr_assert_eq(out, 0, "%u keys hashed outside the local members", out);
	cr_assert_eq(h2s_registry_pick(&reg, svc, NULL, &k7, h2s_now_ms()), first);
	for (size_t i = 0; i < 6; i++)
		h2s_backend_set_health(&reg, member(i), H2S_HEALTH_NOT_SERVING);
	memset(picks, 0, sizeof(picks));
	for (uint64_t k = 1; k <= 1000; k++) {
		uint64_t h = k * 0x9e3779b97f4a7c15ull;

		picks[member_of(h2s_registry_pick(&reg, svc, NULL, &h, h2s_now_ms()))]++;
	}
	count_picks(first_ten, &in, &out);
	cr_assert(out > 950, "fallen back: keys over every member, %u of 1000 outside", out);
}

static bool every_fiftieth(size_t i)
{
	return i % 50 == 0;
}

/* With a subset, the local members are those of the subset (the others this node does not
 * use), and they lead it.
 */
Test(pick, local_first_counts_the_local_members_of_the_subset)
{
	size_t want = 0;

	local_member = every_fiftieth;
	load(MEMBERS, H2S_ALGO_ROUND_ROBIN, 200);
	for (size_t k = 0; k < svc->n; k++)
		want += svc->mem[k].in_subset && every_fiftieth(member_of(svc->be[k]));
	cr_assert(want > 0, "no local member in the subset: pick another test layout");
	cr_assert_eq(svc->nlocal, want);
	for (size_t k = 0; k < svc->nlocal; k++)
		cr_assert(svc->mem[k].in_subset && (svc->mem[k].flags & H2S_BE_F_LOCAL));
	pick_n(100 * (unsigned)want, NULL);
	for (size_t k = 0; k < svc->nlocal; k++)
		cr_assert_eq(picks[member_of(svc->be[k])], 100);
}
