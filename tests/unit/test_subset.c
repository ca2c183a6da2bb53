/* test_subset.c — user/balance/subset.c: deterministic subsetting (with a node index) and rendezvous
 * hashing (without one), over fleets of hundreds of nodes and backends; and user/common/hash.c, the
 * hash both rank backends by.
 *
 * The fleet tests print what they measure (spread, churn) to stderr, for the release notes.
 */
#include "unit.h"

#include "hash.h"
#include "subset.h"

#include <stdio.h>
#include <stdlib.h>

/* Backend i of a fleet: 10.0.0.1:50051, 10.0.0.2:50051, ... (v4-mapped, like every h2s_addr). */
static struct h2s_addr fleet_addr(uint32_t i)
{
	struct h2s_addr a;

	h2s_addr_set4(&a, h2s_htonl(0x0a000001u + i), h2s_htons(50051));
	return a;
}

/* Backends 0..n-1; free() it. */
static struct h2s_addr *fleet(size_t n)
{
	struct h2s_addr *be = malloc(n * sizeof(*be));

	cr_assert_not_null(be);
	for (size_t i = 0; i < n; i++)
		be[i] = fleet_addr((uint32_t)i);
	return be;
}

/* What the daemon on node i passes: its index, or (!indexed) the hash of its name. */
static struct h2s_subset_node node_of(uint32_t i, bool indexed)
{
	char name[32];
	int len = snprintf(name, sizeof(name), "node-%u", i);

	return (struct h2s_subset_node){
		.has_index = indexed,
		.index = i,
		.id = h2s_hash64(name, (size_t)len, 0),
	};
}

/* Every node's choice, checked to be k backends: row i (n bools) is node i's. free() it. */
static bool *choose_fleet(const struct h2s_addr *be, size_t n, size_t k, size_t nodes,
			  bool indexed)
{
	bool *ch = malloc(nodes * n * sizeof(*ch));

	cr_assert_not_null(ch);
	for (size_t i = 0; i < nodes; i++) {
		struct h2s_subset_node node = node_of((uint32_t)i, indexed);
		size_t count = 0;

		cr_assert_eq(h2s_subset_choose(be, n, k, &node, &ch[i * n]), k, "node %zu", i);
		for (size_t b = 0; b < n; b++)
			count += ch[i * n + b];
		cr_assert_eq(count, k, "node %zu marked %zu backends", i, count);
	}
	return ch;
}

/* Fewest and most nodes connected to one backend. */
struct spread {
	unsigned min, max;
};

static struct spread spread_of(const bool *ch, size_t n, size_t nodes)
{
	struct spread sp = { UINT32_MAX, 0 };

	for (size_t b = 0; b < n; b++) {
		unsigned conns = 0;

		for (size_t i = 0; i < nodes; i++)
			conns += ch[i * n + b];
		if (conns < sp.min)
			sp.min = conns;
		if (conns > sp.max)
			sp.max = conns;
	}
	return sp;
}

static double ratio(struct spread sp)
{
	return sp.min ? (double)sp.max / sp.min : 1e9;
}

/* How many of the backends chosen from a[] are not chosen from b[], compared by address. */
static size_t lost(const struct h2s_addr *a, size_t na, const bool *ca, const struct h2s_addr *b,
		   size_t nb, const bool *cb)
{
	size_t count = 0;

	for (size_t i = 0; i < na; i++) {
		bool kept = false;

		if (!ca[i])
			continue;
		for (size_t j = 0; j < nb && !kept; j++)
			kept = cb[j] && h2s_addr_equal(&a[i], &b[j]);
		count += !kept;
	}
	return count;
}

/* What one backend joining or leaving does to a fleet of nodes with indices 0..nodes-1. */
struct churn {
	size_t changed;   /* nodes whose subset changed */
	size_t max_swaps; /* most backends one node lost (and gained: k is fixed) */
	struct spread after;
};

static struct churn indexed_churn(const struct h2s_addr *old, size_t n_old,
				  const struct h2s_addr *new, size_t n_new, size_t k, size_t nodes)
{
	bool *before = choose_fleet(old, n_old, k, nodes, true);
	bool *after = choose_fleet(new, n_new, k, nodes, true);
	struct churn c = { .after = spread_of(after, n_new, nodes) };

	for (size_t i = 0; i < nodes; i++) {
		const bool *b = &before[i * n_old], *a = &after[i * n_new];
		size_t removed = lost(old, n_old, b, new, n_new, a);

		cr_assert_eq(lost(new, n_new, a, old, n_old, b), removed,
			     "node %zu: lost and gained differ", i);
		c.changed += removed > 0;
		if (removed > c.max_swaps)
			c.max_swaps = removed;
	}
	free(before);
	free(after);
	return c;
}

static void print_churn(const char *what, size_t n_old, size_t n_new, struct churn c)
{
	fprintf(stderr, "subset: 300 nodes k=10, %s (%zu -> %zu backends): %zu nodes changed, "
		"at most %zu backend(s) each; spread now min=%u max=%u max/min=%.2f\n", what, n_old,
		n_new, c.changed, c.max_swaps, c.after.min, c.after.max, ratio(c.after));
}

/* ---- with a node index ---- */

/* 300 nodes, 300 backends, 10 each: 30 subsets per round, 10 rounds, each backend used once per
 * round.
 */
Test(subset, indexed_fleet_loads_every_backend_equally)
{
	struct h2s_addr *be = fleet(300);
	bool *ch = choose_fleet(be, 300, 10, 300, true);
	struct spread sp = spread_of(ch, 300, 300);

	fprintf(stderr, "subset: 300 nodes x 300 backends k=10, node index: spread min=%u max=%u "
		"max/min=%.2f\n", sp.min, sp.max, ratio(sp));
	cr_assert_eq(sp.min, 10);
	cr_assert_eq(sp.max, 10);
	free(ch);
	free(be);
}

/* 300 -> 299 keeps 30 subsets per round; the one closed gap shifts each window by at most one. */
Test(subset, indexed_backend_leaving_swaps_at_most_one_per_node)
{
	enum { GONE = 137 };
	struct h2s_addr *old = fleet(300), *new = fleet(299);
	struct churn c;

	for (size_t i = GONE; i < 299; i++)
		new[i] = old[i + 1];
	c = indexed_churn(old, 300, new, 299, 10, 300);
	print_churn("one backend leaves", 300, 299, c);
	cr_assert_leq(c.max_swaps, 1);
	/* 300 windows per round over 299 backends: one backend per round is used twice. */
	cr_assert_geq(c.after.min, 10);
	cr_assert_leq(ratio(c.after), 1.3);
	free(old);
	free(new);
}

Test(subset, indexed_backend_joining_swaps_at_most_one_per_node)
{
	struct h2s_addr *old = fleet(299), *new = fleet(300);
	struct churn c = indexed_churn(old, 299, new, 300, 10, 300);

	print_churn("one backend joins", 299, 300, c);
	cr_assert_leq(c.max_swaps, 1);
	cr_assert_eq(c.after.min, 10);
	cr_assert_eq(c.after.max, 10);
	free(old);
	free(new);
}

/* The limit of subsetting by rounds: 301 backends need 31 subsets per round instead of 30,
 * which moves nodes to other rounds and windows, so nearly every subset changes. Measured, not
 * wished away: the spread stays sane, and the release notes say how many nodes changed.
 */
Test(subset, indexed_backend_joining_past_a_multiple_of_k_changes_most_subsets)
{
	struct h2s_addr *old = fleet(300), *new = fleet(301);
	struct churn c = indexed_churn(old, 300, new, 301, 10, 300);

	print_churn("one backend joins, 31 subsets per round instead of 30", 300, 301, c);
	cr_assert_geq(c.after.min, 9);
	cr_assert_leq(ratio(c.after), 1.5);
	free(old);
	free(new);
}

/* Any n, any k, a backend leaving from anywhere in the order: while ceil(n/k) stays the same,
 * no node swaps more than one backend (a join is the same pair of fleets the other way round).
 */
Test(subset, indexed_churn_is_one_swap_for_every_n_and_k)
{
	static const size_t ks[] = { 1, 2, 3, 7, 10 };
	uint32_t seed = 0xc0ffee;

	for (size_t t = 0; t < ARRAY_LEN(ks); t++) {
		size_t k = ks[t];

		for (size_t n = k + 1; n <= 100; n++) {
			size_t per_round = (n + k - 1) / k;
			size_t gone = xorshift32(&seed) % (n + 1);
			struct h2s_addr *old, *new;
			struct churn c;

			if ((n + k) / k != per_round)
				continue; /* n + 1 needs one subset more per round */
			old = fleet(n + 1);
			new = fleet(n);
			for (size_t i = gone; i < n; i++)
				new[i] = old[i + 1];
			/* three full rounds and the first node of a fourth */
			c = indexed_churn(old, n + 1, new, n, k, 3 * per_round + 1);
			cr_assert_leq(c.max_swaps, 1, "n=%zu -> %zu, k=%zu, backend %zu left",
				      n + 1, n, k, gone);
			free(old);
			free(new);
		}
	}
}

/* ---- without one: rendezvous ---- */

Test(subset, rendezvous_backend_leaving_only_moves_the_nodes_that_had_it)
{
	enum { NODES = 300, K = 10, GONE = 42 };
	struct h2s_addr *old = fleet(300), *new = fleet(299);
	bool *before, *after, *again;
	struct spread sp;
	size_t changed = 0;

	for (size_t i = GONE; i < 299; i++)
		new[i] = old[i + 1];
	before = choose_fleet(old, 300, K, NODES, false);
	after = choose_fleet(new, 299, K, NODES, false);
	again = choose_fleet(old, 300, K, NODES, false);
	cr_assert_arr_eq(before, again, NODES * 300 * sizeof(*before), "not deterministic");

	for (size_t i = 0; i < NODES; i++) {
		bool had_it = before[i * 300 + GONE];
		size_t removed = lost(old, 300, &before[i * 300], new, 299, &after[i * 299]);
		size_t added = lost(new, 299, &after[i * 299], old, 300, &before[i * 300]);

		cr_assert_eq(removed, had_it, "node %zu lost %zu backends", i, removed);
		cr_assert_eq(added, had_it, "node %zu gained %zu backends", i, added);
		changed += had_it;
	}
	sp = spread_of(before, 300, NODES);
	fprintf(stderr, "subset: %d nodes x 300 backends k=%d, rendezvous: spread min=%u max=%u "
		"max/min=%.2f; one backend leaves: %zu nodes changed one backend\n", NODES, K,
		sp.min, sp.max, ratio(sp), changed);
	free(before);
	free(after);
	free(again);
	free(old);
	free(new);
}

Test(subset, rendezvous_backend_joining_only_moves_the_nodes_that_take_it)
{
	enum { NODES = 300, K = 10 };
	struct h2s_addr *old = fleet(300), *new = fleet(301);
	bool *before = choose_fleet(old, 300, K, NODES, false);
	bool *after = choose_fleet(new, 301, K, NODES, false);

	for (size_t i = 0; i < NODES; i++) {
		bool took_it = after[i * 301 + 300];
		size_t removed = lost(old, 300, &before[i * 300], new, 301, &after[i * 301]);
		size_t added = lost(new, 301, &after[i * 301], old, 300, &before[i * 300]);

		cr_assert_eq(removed, took_it, "node %zu lost %zu backends", i, removed);
		cr_assert_eq(added, took_it, "node %zu gained %zu backends", i, added);
	}
	free(before);
	free(after);
	free(old);
	free(new);
}

/* ---- both ---- */

/* Daemons on different nodes receive the same backends in different orders (DNS rotates
 * answers, files get edited): they must still agree.
 */
Test(subset, order_of_backends_does_not_matter)
{
	enum { N = 50, K = 7 };
	struct h2s_addr *be = fleet(N), *shuffled = fleet(N);
	uint32_t seed = 0x5eed;

	for (size_t i = N - 1; i > 0; i--) {
		size_t j = xorshift32(&seed) % (i + 1);
		struct h2s_addr t = shuffled[i];

		shuffled[i] = shuffled[j];
		shuffled[j] = t;
	}
	cr_assert(memcmp(be, shuffled, N * sizeof(*be)), "the shuffle changed nothing");
	for (uint32_t i = 0; i < 40; i++) {
		struct h2s_subset_node node = node_of(i, i % 2);
		bool a[N], b[N];

		cr_assert_eq(h2s_subset_choose(be, N, K, &node, a), K);
		cr_assert_eq(h2s_subset_choose(shuffled, N, K, &node, b), K);
		cr_assert_eq(lost(be, N, a, shuffled, N, b), 0, "node %u (%s)", i,
			     node.has_index ? "index" : "rendezvous");
	}
	free(be);
	free(shuffled);
}

Test(subset, k_zero_or_at_least_n_chooses_all)
{
	static const size_t ks[] = { 0, 5, 6 };
	struct h2s_addr be[5];

	for (uint32_t i = 0; i < 5; i++)
		be[i] = fleet_addr(i);
	for (size_t t = 0; t < ARRAY_LEN(ks); t++) {
		for (uint32_t i = 0; i < 4; i++) {
			struct h2s_subset_node node = node_of(i, i % 2);
			bool ch[5] = { false };

			cr_assert_eq(h2s_subset_choose(be, 5, ks[t], &node, ch), 5, "k=%zu", ks[t]);
			for (size_t b = 0; b < 5; b++)
				cr_assert(ch[b], "k=%zu node %u backend %zu", ks[t], i, b);
		}
	}
}

Test(subset, no_backends_chooses_none)
{
	struct h2s_subset_node indexed = node_of(3, true), named = node_of(3, false);

	cr_assert_eq(h2s_subset_choose(NULL, 0, 10, &indexed, NULL), 0);
	cr_assert_eq(h2s_subset_choose(NULL, 0, 10, &named, NULL), 0);
	cr_assert_eq(h2s_subset_choose(NULL, 0, 0, &named, NULL), 0);
}

/* ---- the hash ---- */

/* Every input bit flips every output bit about half the time, seed bits included: otherwise
 * related addresses (10.0.0.1, 10.0.0.2, ...) would rank in related orders. 2000 random inputs
 * per bit: a fair coin stays within 0.40..0.60 with overwhelming probability.
 */
Test(hash, every_input_bit_flips_each_output_bit_half_the_time)
{
	enum { TRIALS = 2000, IN_BITS = 8 * (sizeof(struct h2s_addr) + sizeof(uint64_t)) };
	static unsigned flips[IN_BITS][64];
	uint32_t state = 0xa5a5a5a5;

	for (int t = 0; t < TRIALS; t++) {
		unsigned char in[sizeof(struct h2s_addr) + sizeof(uint64_t)];
		uint64_t seed, h;

		for (size_t i = 0; i < sizeof(in); i++)
			in[i] = (unsigned char)xorshift32(&state);
		memcpy(&seed, in + sizeof(struct h2s_addr), sizeof(seed));
		h = h2s_hash64(in, sizeof(struct h2s_addr), seed);
		for (size_t bit = 0; bit < IN_BITS; bit++) {
			uint64_t s2, d;

			in[bit / 8] ^= (unsigned char)(1u << (bit % 8));
			memcpy(&s2, in + sizeof(struct h2s_addr), sizeof(s2));
			d = h ^ h2s_hash64(in, sizeof(struct h2s_addr), s2);
			in[bit / 8] ^= (unsigned char)(1u << (bit % 8));
			for (int o = 0; o < 64; o++)
				flips[bit][o] += (d >> o) & 1;
		}
	}
	for (size_t bit = 0; bit < IN_BITS; bit++)
		for (int o = 0; o < 64; o++)
			cr_assert(flips[bit][o] > TRIALS * 2 / 5 && flips[bit][o] < TRIALS * 3 / 5,
				  "input bit %zu flips output bit %d in %u of %d", bit, o,
				  flips[bit][o], TRIALS);
}

/* A zero-padded tail must not collide with the shorter input, nor an empty input ignore the
 * seed.
 */
Test(hash, length_and_seed_matter)
{
	static const unsigned char zeros[16];

	for (size_t len = 0; len < sizeof(zeros); len++)
		cr_assert_neq(h2s_hash64(zeros, len, 0), h2s_hash64(zeros, len + 1, 0),
			      "len %zu", len);
	cr_assert_neq(h2s_hash64(zeros, 0, 0), h2s_hash64(zeros, 0, 1));
	cr_assert_neq(h2s_hash64("ab", 2, 7), h2s_hash64("ba", 2, 7));
}

/* Every node's daemon must compute the same ranks, including daemons of different versions
 * during a rolling upgrade: changing these values reshuffles every fleet's subsets and every
 * affinity key, so it needs a release note, not just a new expected value here. They were
 * computed by this implementation; that they hold on any host is what h2s_hash64() promises.
 */
Test(hash, values_are_pinned)
{
	struct h2s_addr a = addr_of("10.0.0.1:50051");
	struct h2s_addr b = addr_of("[2001:db8::1]:443");

	cr_assert_eq(h2s_hash64("", 0, 0), 0xa706dd2f4d197e6full, "%#llx",
		     (unsigned long long)h2s_hash64("", 0, 0));
	cr_assert_eq(h2s_hash64("h2steer", 7, 1), 0x3a0a01069cee5edcull, "%#llx",
		     (unsigned long long)h2s_hash64("h2steer", 7, 1));
	cr_assert_eq(h2s_hash_addr(&a, 0), 0x6d6af8f4df97787aull, "%#llx",
		     (unsigned long long)h2s_hash_addr(&a, 0));
	cr_assert_eq(h2s_hash_addr(&b, 42), 0xb421d9a0e0661b75ull, "%#llx",
		     (unsigned long long)h2s_hash_addr(&b, 42));
}
