/* subset.c — see subset.h. */
#include "subset.h"

#include "hash.h"

#include <stdlib.h>
#include <string.h>

/* Seeds of the per-round orders are this plus the round number: h2s_hash64() avalanches its
 * seed first, so consecutive rounds still get unrelated orders.
 */
#define ROUND_SEED 0x68327374656572ull /* "h2steer" */

struct ranked {
	uint64_t score;
	struct h2s_addr addr; /* a copy, so that ties break without a context pointer */
	size_t idx;           /* into be[] */
};

/* Highest score first; equal scores (a 64-bit collision) by address bytes, so the order is still
 * a function of the set alone.
 */
static int ranked_cmp(const void *pa, const void *pb)
{
	const struct ranked *a = pa, *b = pb;

	if (a->score != b->score)
		return a->score > b->score ? -1 : 1;
	return memcmp(&a->addr, &b->addr, sizeof(a->addr));
}

size_t h2s_subset_choose(const struct h2s_addr *be, size_t n, size_t k,
			 const struct h2s_subset_node *node, bool *chosen)
{
	struct ranked *r;
	uint64_t seed;
	size_t start = 0;

	if (k == 0 || k >= n) {
		for (size_t i = 0; i < n; i++)
			chosen[i] = true;
		return n;
	}
	if (node->has_index) {
		/* Google SRE book, ch. 20, "deterministic subsetting": S subsets per round, the
		 * round's S nodes take k-wide windows of one permutation of the backends, so within
		 * a round every backend is used once or twice. Two changes keep a backend joining
		 * or leaving from moving more than one backend per node (as long as S stays put):
		 * - the book shuffles the list with the round as the seed; ordering by a hash of
		 *   each address instead makes the permutation independent of the list's order,
		 *   and one backend more or less only opens or closes one gap in it;
		 * - windows at j*k, as in the book, need the last one to wrap around when k does
		 *   not divide n, and a wrapped window sees the gap shift at both of its ends (two
		 *   swaps). Here they spread evenly from 0 to n-k: none wraps, the overlaps are
		 *   spread out, and a start moves by at most one position, in the direction the
		 *   gap shifts the order.
		 */
		size_t per_round = (n + k - 1) / k; /* >= 2, since k < n */

		seed = ROUND_SEED + node->index / per_round;
		start = node->index % per_round * (n - k) / (per_round - 1);
	} else {
		/* Rendezvous (highest random weight): the k best scores for this node. A backend
		 * leaving only affects the nodes that had it, and each of them gains one backend.
		 */
		seed = node->id;
	}

	r = calloc(n, sizeof(*r));
	if (!r)
		return SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		r[i].score = h2s_hash_addr(&be[i], seed);
		r[i].addr = be[i];
		r[i].idx = i;
	}
	qsort(r, n, sizeof(*r), ranked_cmp);

	for (size_t i = 0; i < n; i++)
		chosen[i] = false;
	for (size_t i = 0; i < k; i++)
		chosen[r[start + i].idx] = true;
	free(r);
	return k;
}
