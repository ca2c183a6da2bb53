/* test_picker.c — user/balance/picker.c: smooth weighted round robin, least request (P2C) and affinity
 * (weighted rendezvous hashing).
 */
#include "unit.h"

#include "hash.h"
#include "picker.h"

#include <stdio.h>

/* Slots with these weights, all available, nothing in flight. */
static void slots_init(struct h2s_pick_slot *s, size_t n, const uint32_t *weights)
{
	for (size_t i = 0; i < n; i++)
		s[i] = (struct h2s_pick_slot){ .weight = weights[i], .available = true };
}

/* ---- round robin ---- */

Test(picker, rr_exact_shares_for_weights_1_2_3)
{
	static const uint32_t w[] = { 1, 2, 3 };
	struct h2s_pick_slot s[3];
	unsigned count[3] = { 0 };

	slots_init(s, 3, w);
	for (int i = 0; i < 6000; i++) {
		int k = h2s_pick_round_robin(s, 3);

		cr_assert(k >= 0 && k < 3, "pick %d returned %d", i, k);
		count[k]++;
	}
	cr_assert_eq(count[0], 1000);
	cr_assert_eq(count[1], 2000);
	cr_assert_eq(count[2], 3000);
}

/* The sequence nginx documents for its smooth weighted round robin with weights 5, 1, 1
 * (commit 52327e0627f4 "Upstream: smooth weighted round-robin balancing"): a a b a c a a.
 */
Test(picker, rr_is_smooth_nginx_sequence_5_1_1)
{
	static const uint32_t w[] = { 5, 1, 1 };
	static const int want[] = { 0, 0, 1, 0, 2, 0, 0, /* and again */ 0, 0, 1, 0, 2, 0, 0 };
	struct h2s_pick_slot s[3];

	slots_init(s, 3, w);
	for (size_t i = 0; i < ARRAY_LEN(want); i++)
		cr_assert_eq(h2s_pick_round_robin(s, 3), want[i], "pick %zu", i);
}

/* Equal weights interleave strictly: never the same backend twice in a row. */
Test(picker, rr_equal_weights_alternate)
{
	static const uint32_t w[] = { 1, 1, 1, 1 };
	struct h2s_pick_slot s[4];
	int prev = -1;

	slots_init(s, 4, w);
	for (int i = 0; i < 400; i++) {
		int k = h2s_pick_round_robin(s, 4);

		cr_assert_neq(k, prev, "slot %d picked twice in a row at pick %d", k, i);
		prev = k;
	}
}

/* Every window of sum(weights) consecutive picks holds each slot exactly weight times. */
Test(picker, rr_every_cycle_holds_exact_shares)
{
	static const uint32_t w[] = { 7, 3, 1, 4 };
	enum { TOTAL = 15 };
	struct h2s_pick_slot s[4];

	slots_init(s, 4, w);
	for (int cycle = 0; cycle < 50; cycle++) {
		unsigned count[4] = { 0 };

		for (int i = 0; i < TOTAL; i++)
			count[h2s_pick_round_robin(s, 4)]++;
		for (int k = 0; k < 4; k++)
			cr_assert_eq(count[k], w[k], "cycle %d slot %d", cycle, k);
	}
}

Test(picker, rr_skips_unavailable)
{
	static const uint32_t w[] = { 1, 5, 1 };
	struct h2s_pick_slot s[3];
	unsigned count[3] = { 0 };

	slots_init(s, 3, w);
	s[1].available = false;
	for (int i = 0; i < 100; i++)
		count[h2s_pick_round_robin(s, 3)]++;
	cr_assert_eq(count[1], 0);
	cr_assert_eq(count[0], 50);
	cr_assert_eq(count[2], 50);
}

Test(picker, rr_none_available_returns_minus_one)
{
	static const uint32_t w[] = { 1, 2 };
	struct h2s_pick_slot s[2];

	slots_init(s, 2, w);
	s[0].available = s[1].available = false;
	cr_assert_eq(h2s_pick_round_robin(s, 2), -1);
	cr_assert_eq(h2s_pick_round_robin(s, 0), -1);
}

/* ---- least request ---- */

/* rnd that replays a script of values. */
struct script {
	const uint32_t *v;
	size_t n, next;
};

static uint32_t script_rnd(void *ctx)
{
	struct script *s = ctx;

	cr_assert_lt(s->next, s->n, "rnd called more often than scripted");
	return s->v[s->next++];
}

/* Picks with the two candidates the script's draws select. */
static int lr_pick(struct h2s_pick_slot *s, size_t n, uint32_t r0, uint32_t r1)
{
	uint32_t v[] = { r0, r1 };
	struct script sc = { v, 2, 0 };

	return h2s_pick_least_request(s, n, script_rnd, &sc);
}

Test(picker, lr_prefers_fewer_inflight)
{
	static const uint32_t w[] = { 1, 1 };
	struct h2s_pick_slot s[2];

	slots_init(s, 2, w);
	s[0].inflight = 5;
	s[1].inflight = 1;
	/* Both orders of the pair: (0, 1) and (1, 0). */
	cr_assert_eq(lr_pick(s, 2, 0, 0), 1);
	cr_assert_eq(lr_pick(s, 2, 1, 0), 1);
}

/* Unequal weights (Envoy): weighted round robin on weight / (inflight+1). Idle: exactly the
 * configured shares.
 */
Test(picker, lr_unequal_weights_idle_give_exact_shares)
{
	static const uint32_t w[] = { 100, 200, 300 };
	struct h2s_pick_slot s[3];
	unsigned count[3] = { 0 };

	slots_init(s, 3, w);
	for (int i = 0; i < 6000; i++)
		count[lr_pick(s, 3, 0, 0)]++;
	cr_assert_eq(count[0], 1000);
	cr_assert_eq(count[1], 2000);
	cr_assert_eq(count[2], 3000);
}

/* Weight 400 with 7 in flight counts as 50, weight 100 idle as 100: two picks in three go to
 * the lighter-weighted but idle backend.
 */
Test(picker, lr_unequal_weights_shift_away_from_load)
{
	static const uint32_t w[] = { 100, 400 };
	struct h2s_pick_slot s[2];
	unsigned count[2] = { 0 };

	slots_init(s, 2, w);
	s[1].inflight = 7;
	for (int i = 0; i < 300; i++)
		count[lr_pick(s, 2, 0, 0)]++;
	cr_assert_eq(count[0], 200);
	cr_assert_eq(count[1], 100);
}

Test(picker, lr_large_counts_do_not_overflow)
{
	static const uint32_t w[] = { 10000, 1 };
	struct h2s_pick_slot s[2];

	int count[2] = { 0, 0 };

	slots_init(s, 2, w);
	/* inflight + 1 must not wrap to 0 (a division by zero); weight / (inflight + 1) rounds
	 * to 0 for both, counted as 1: equal, so they alternate.
	 */
	s[0].inflight = UINT32_MAX;
	s[1].inflight = UINT32_MAX;
	for (int i = 0; i < 10; i++) {
		int k = lr_pick(s, 2, 0, 0);

		cr_assert(k == 0 || k == 1);
		count[k]++;
	}
	cr_assert_eq(count[0], 5);
	cr_assert_eq(count[1], 5);
}

/* ---- peak EWMA ---- */

/* latency * (inflight+1) / weight: 1 ms idle (1 ms) beats 0.4 ms with 3 in flight (1.6 ms). */
Test(picker, peak_ewma_weighs_latency_by_load)
{
	static const uint32_t w[] = { 1, 1 };
	struct h2s_pick_slot s[2];
	uint32_t v[] = { 0, 0 };
	struct script sc = { v, 2, 0 };

	slots_init(s, 2, w);
	s[0].latency = 1e6;
	s[1].latency = 0.4e6;
	s[1].inflight = 3;
	cr_assert_eq(h2s_pick_peak_ewma(s, 2, script_rnd, &sc), 0);
	s[1].inflight = 1; /* 0.8 ms now */
	sc.next = 0;
	cr_assert_eq(h2s_pick_peak_ewma(s, 2, script_rnd, &sc), 1);
}

/* A backend 10x slower is picked only when both draws land on it: never, with two distinct
 * choices among three.
 */
Test(picker, peak_ewma_never_picks_the_slow_one_of_three)
{
	static const uint32_t w[] = { 1, 1, 1 };
	struct h2s_pick_slot s[3];
	uint32_t x = 12345;

	slots_init(s, 3, w);
	s[0].latency = s[1].latency = 0.5e6;
	s[2].latency = 5e6;
	for (int i = 0; i < 3000; i++)
		cr_assert_neq(h2s_pick_peak_ewma(s, 3, xorshift32_cb, &x), 2);
}

Test(picker, peak_ewma_none_available)
{
	static const uint32_t w[] = { 1, 1 };
	struct h2s_pick_slot s[2];
	uint32_t x = 1;

	slots_init(s, 2, w);
	s[0].available = s[1].available = false;
	cr_assert_eq(h2s_pick_peak_ewma(s, 2, xorshift32_cb, &x), -1);
	s[1].available = true;
	s[1].latency = 1;
	cr_assert_eq(h2s_pick_peak_ewma(s, 2, xorshift32_cb, &x), 1);
}

/* The draws index the available slots only: with slot 1 out, the available slots are 0, 2, 3, so
 * draws (2, 0) pair slots 3 and 0 (indexing all slots would have paired 2 and 0).
 */
Test(picker, lr_draws_index_available_slots)
{
	static const uint32_t w[] = { 1, 1, 1, 1 };
	struct h2s_pick_slot s[4];

	slots_init(s, 4, w);
	s[1].available = false;
	s[0].inflight = 5;
	s[2].inflight = 0; /* the best, but not drawn */
	s[3].inflight = 1;
	cr_assert_eq(lr_pick(s, 4, 2, 0), 3);
}

Test(picker, lr_never_picks_unavailable)
{
	static const uint32_t w[] = { 1, 1, 1, 1, 1 };
	struct h2s_pick_slot s[5];
	uint32_t seed = 0x12345678;

	slots_init(s, 5, w);
	/* The unavailable ones look the most attractive. */
	s[1].available = false;
	s[3].available = false;
	s[0].inflight = 10;
	s[2].inflight = 20;
	s[4].inflight = 30;
	for (int i = 0; i < 10000; i++) {
		int k = h2s_pick_least_request(s, 5, xorshift32_cb, &seed);

		cr_assert(k == 0 || k == 2 || k == 4, "picked %d", k);
	}
}

Test(picker, lr_single_available_slot)
{
	static const uint32_t w[] = { 1, 1, 1 };
	struct h2s_pick_slot s[3];
	struct script sc = { NULL, 0, 0 }; /* no draws needed: rnd must not be called */

	slots_init(s, 3, w);
	s[0].available = false;
	s[2].available = false;
	s[1].inflight = 1000;
	cr_assert_eq(h2s_pick_least_request(s, 3, script_rnd, &sc), 1);
}

Test(picker, lr_none_available_returns_minus_one)
{
	static const uint32_t w[] = { 1, 1 };
	struct h2s_pick_slot s[2];
	struct script sc = { NULL, 0, 0 };

	slots_init(s, 2, w);
	s[0].available = s[1].available = false;
	cr_assert_eq(h2s_pick_least_request(s, 2, script_rnd, &sc), -1);
	cr_assert_eq(h2s_pick_least_request(s, 0, script_rnd, &sc), -1);
}

/* The two candidates are always distinct. If a draw could pair a slot with itself, the most
 * loaded slot would sometimes be compared with itself and win; with distinct candidates it is
 * always compared with a less loaded one and never wins. Every other slot does win sometimes.
 */
Test(picker, lr_candidates_are_distinct)
{
	static const uint32_t w[] = { 1, 1, 1, 1 };
	struct h2s_pick_slot s[4];
	unsigned count[4] = { 0 };
	uint32_t seed = 0xdeadbeef;

	slots_init(s, 4, w);
	for (int k = 0; k < 4; k++)
		s[k].inflight = (uint32_t)k * 10; /* slot 3 is the most loaded */
	for (int i = 0; i < 20000; i++)
		count[h2s_pick_least_request(s, 4, xorshift32_cb, &seed)]++;
	cr_assert_eq(count[3], 0, "the most loaded slot won %u times", count[3]);
	for (int k = 0; k < 3; k++)
		cr_assert_gt(count[k], 0, "slot %d never won", k);
}

/* Pairs are uniform: slot k (k-th least loaded of n) wins when paired with any of the n-1-k more
 * loaded ones, i.e. with probability 2(n-1-k)/(n(n-1)). For n = 4: 1/2, 1/3, 1/6, 0.
 */
Test(picker, lr_pairs_are_uniform)
{
	static const uint32_t w[] = { 1, 1, 1, 1 };
	static const double want[] = { 0.5, 1.0 / 3, 1.0 / 6, 0 };
	enum { N = 60000 };
	struct h2s_pick_slot s[4];
	unsigned count[4] = { 0 };
	uint32_t seed = 42;

	slots_init(s, 4, w);
	for (int k = 0; k < 4; k++)
		s[k].inflight = (uint32_t)k;
	for (int i = 0; i < N; i++)
		count[h2s_pick_least_request(s, 4, xorshift32_cb, &seed)]++;
	for (int k = 0; k < 4; k++) {
		double share = (double)count[k] / N;

		cr_assert(share > want[k] - 0.01 && share < want[k] + 0.01,
			  "slot %d won %.4f of the picks, expected %.4f", k, share, want[k]);
	}
}

/* ---- affinity ---- */

/* The hash a header's value would get: keys "user-0", "user-1", ... */
static uint64_t key_of(int i)
{
	char key[32];
	int len = snprintf(key, sizeof(key), "user-%d", i);

	return h2s_hash64(key, (size_t)len, 0);
}

/* n slots with these weights and backend i at 10.0.0.(i+1):50051. */
static void affinity_init(struct h2s_pick_slot *s, struct h2s_addr *addr, size_t n,
			  const uint32_t *weights)
{
	slots_init(s, n, weights);
	for (size_t i = 0; i < n; i++) {
		char text[H2S_ADDR_STRLEN];

		snprintf(text, sizeof(text), "10.0.0.%zu:50051", i + 1);
		addr[i] = addr_of(text);
	}
}

/* Each slot's share of 10000 keys is within 3 points of weight/total. */
static void check_affinity_shares(const uint32_t *w, size_t n)
{
	enum { KEYS = 10000 };
	struct h2s_pick_slot s[8];
	struct h2s_addr addr[8];
	unsigned count[8] = { 0 };
	uint32_t total = 0;

	cr_assert_leq(n, ARRAY_LEN(s));
	affinity_init(s, addr, n, w);
	for (int i = 0; i < KEYS; i++) {
		int k = h2s_pick_affinity(s, addr, n, key_of(i));

		cr_assert(k >= 0 && (size_t)k < n, "key %d picked %d", i, k);
		count[k]++;
	}
	for (size_t k = 0; k < n; k++)
		total += w[k];
	for (size_t k = 0; k < n; k++) {
		double share = 100.0 * count[k] / KEYS, want = 100.0 * w[k] / total;

		fprintf(stderr, "picker: affinity weight %u/%u: %.2f%% of %d keys (ideal %.2f%%)\n",
			w[k], total, share, KEYS, want);
		cr_assert(share > want - 3 && share < want + 3, "slot %zu has %.2f%%, want %.2f%%",
			  k, share, want);
	}
}

Test(picker, affinity_same_key_same_backend)
{
	static const uint32_t w[] = { 1, 1, 1, 1, 1 };
	struct h2s_pick_slot s[5];
	struct h2s_addr addr[5];

	affinity_init(s, addr, 5, w);
	for (int i = 0; i < 100; i++) {
		int first = h2s_pick_affinity(s, addr, 5, key_of(i));

		cr_assert_geq(first, 0);
		for (int again = 0; again < 10; again++)
			cr_assert_eq(h2s_pick_affinity(s, addr, 5, key_of(i)), first, "key %d", i);
	}
}

Test(picker, affinity_equal_weights_spread_evenly)
{
	static const uint32_t w[] = { 1, 1, 1 };

	check_affinity_shares(w, 3);
}

Test(picker, affinity_honours_weights_1_2_3)
{
	static const uint32_t w[] = { 1, 2, 3 };

	check_affinity_shares(w, 3);
}

/* A backend going away moves its own keys and no other; they come back when it does. */
Test(picker, affinity_unavailable_backend_only_moves_its_keys)
{
	enum { KEYS = 10000, GONE = 2 };
	static const uint32_t w[] = { 1, 2, 1, 3 };
	struct h2s_pick_slot s[4];
	struct h2s_addr addr[4];
	static int before[KEYS];
	unsigned moved = 0;

	affinity_init(s, addr, 4, w);
	for (int i = 0; i < KEYS; i++)
		before[i] = h2s_pick_affinity(s, addr, 4, key_of(i));
	s[GONE].available = false;
	for (int i = 0; i < KEYS; i++) {
		int now = h2s_pick_affinity(s, addr, 4, key_of(i));

		cr_assert_neq(now, GONE, "key %d", i);
		if (before[i] != GONE)
			cr_assert_eq(now, before[i], "key %d moved from %d to %d", i, before[i],
				     now);
		else
			moved++;
	}
	cr_assert_gt(moved, 0, "the unavailable backend had no keys");
	s[GONE].available = true;
	for (int i = 0; i < KEYS; i++)
		cr_assert_eq(h2s_pick_affinity(s, addr, 4, key_of(i)), before[i], "key %d", i);
}

/* Slots listed in another order (another daemon, a reload) still send a key to the same
 * address.
 */
Test(picker, affinity_depends_on_addresses_not_positions)
{
	static const uint32_t w[] = { 1, 2, 3, 4 };
	static const uint32_t w_rev[] = { 4, 3, 2, 1 };
	struct h2s_pick_slot s[4], r[4];
	struct h2s_addr addr[4], rev[4];

	affinity_init(s, addr, 4, w);
	slots_init(r, 4, w_rev);
	for (size_t i = 0; i < 4; i++)
		rev[i] = addr[3 - i];
	for (int i = 0; i < 1000; i++) {
		int a = h2s_pick_affinity(s, addr, 4, key_of(i));
		int b = h2s_pick_affinity(r, rev, 4, key_of(i));

		cr_assert(h2s_addr_equal(&addr[a], &rev[b]), "key %d", i);
	}
}

Test(picker, affinity_none_available_returns_minus_one)
{
	static const uint32_t w[] = { 1, 1 };
	struct h2s_pick_slot s[2];
	struct h2s_addr addr[2];

	affinity_init(s, addr, 2, w);
	s[0].available = s[1].available = false;
	cr_assert_eq(h2s_pick_affinity(s, addr, 2, key_of(0)), -1);
	cr_assert_eq(h2s_pick_affinity(s, addr, 0, key_of(0)), -1);
}
