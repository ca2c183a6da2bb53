/* picker.c — see picker.h. */
#include "picker.h"

#include "hash.h"

#include <math.h>
#include <string.h>

/* nginx's smooth WRR: everyone gains its weight, the leader pays the total. by_load: the
 * weight is divided by the slot's in-flight streams + 1.
 */
static int smooth_wrr(struct h2s_pick_slot *s, size_t n, bool by_load)
{
	int64_t total = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		int64_t w = s[i].weight;

		if (!s[i].available)
			continue;
		if (by_load) {
			w /= (int64_t)s[i].inflight + 1;
			w = w ? w : 1;
		}
		s[i].current += w;
		total += w;
		if (best < 0 || s[i].current > s[best].current)
			best = (int)i;
	}
	if (best >= 0)
		s[best].current -= total;
	return best;
}

int h2s_pick_round_robin(struct h2s_pick_slot *s, size_t n)
{
	return smooth_wrr(s, n, false);
}

/* The k-th available slot (0-based), or -1. */
static int nth_available(const struct h2s_pick_slot *s, size_t n, size_t k)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].available && k-- == 0)
			return (int)i;
	return -1;
}

/* Power of two choices: two distinct available slots, uniformly. Returns how many there are
 * (0: none, 1: *a only).
 */
static size_t two_choices(const struct h2s_pick_slot *s, size_t n, uint32_t (*rnd)(void *),
			  void *rnd_ctx, int *ia, int *ib)
{
	size_t avail = 0, a, b;

	for (size_t i = 0; i < n; i++)
		avail += s[i].available;
	if (avail < 2) {
		*ia = *ib = nth_available(s, n, 0);
		return avail;
	}
	a = rnd(rnd_ctx) % avail;
	b = rnd(rnd_ctx) % (avail - 1);
	if (b >= a)
		b++; /* distinct from a, still uniform */
	*ia = nth_available(s, n, a);
	*ib = nth_available(s, n, b);
	return avail;
}

static bool weights_equal(const struct h2s_pick_slot *s, size_t n)
{
	uint32_t w = 0;

	for (size_t i = 0; i < n; i++) {
		if (!s[i].available)
			continue;
		if (w && s[i].weight != w)
			return false;
		w = s[i].weight;
	}
	return true;
}

bool h2s_least_request_keeps(const struct h2s_pick_slot *a, const struct h2s_pick_slot *b)
{
	/* (inflight_a+1)/w_a <= (inflight_b+1)/w_b, cross-multiplied to stay in integers. */
	return (uint64_t)(a->inflight + 1) * b->weight <= (uint64_t)(b->inflight + 1) * a->weight;
}

int h2s_pick_least_request(struct h2s_pick_slot *s, size_t n, uint32_t (*rnd)(void *),
			   void *rnd_ctx)
{
	int ia, ib;

	/* As Envoy: two random choices only when the weights are equal; otherwise a weighted
	 * round robin on weight / (in flight + 1), which keeps the configured shares exactly
	 * while the load is even and shifts RPCs away from where they pile up.
	 */
	if (!weights_equal(s, n))
		return smooth_wrr(s, n, true);
	if (two_choices(s, n, rnd, rnd_ctx, &ia, &ib) < 2)
		return ia;
	return h2s_least_request_keeps(&s[ia], &s[ib]) ? ia : ib;
}

static double ewma_cost(const struct h2s_pick_slot *s)
{
	return s->latency * (s->inflight + 1) / s->weight;
}

bool h2s_peak_ewma_keeps(const struct h2s_pick_slot *a, const struct h2s_pick_slot *b)
{
	return ewma_cost(a) <= ewma_cost(b);
}

int h2s_pick_peak_ewma(const struct h2s_pick_slot *s, size_t n, uint32_t (*rnd)(void *),
		       void *rnd_ctx)
{
	int ia, ib;

	if (two_choices(s, n, rnd, rnd_ctx, &ia, &ib) < 2)
		return ia;
	return h2s_peak_ewma_keeps(&s[ia], &s[ib]) ? ia : ib;
}

/* -weight / ln(u) for u uniform in (0,1): the minimum of the exponential variables -ln(u)/weight
 * belongs to each slot with probability weight/total, which is what makes rendezvous weighted.
 */
static double affinity_score(uint32_t weight, const struct h2s_addr *addr, uint64_t key_hash)
{
	/* 52 bits plus one half, times 2^-52: exact in a double, never 0 nor 1 (ln: -inf or 0). */
	double u = ((double)(h2s_hash_addr(addr, key_hash) >> 12) + 0.5) * 0x1p-52;

	return -(double)weight / log(u);
}

int h2s_pick_affinity(const struct h2s_pick_slot *s, const struct h2s_addr *addr, size_t n,
		      uint64_t key_hash)
{
	double best_score = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		double score;

		if (!s[i].available)
			continue;
		score = affinity_score(s[i].weight, &addr[i], key_hash);
		/* Ties (vanishingly rare) go to the lower address, not the lower index, so the
		 * pick stays independent of the slots' order.
		 */
		if (best < 0 || score > best_score ||
		    (score == best_score && memcmp(&addr[i], &addr[best], sizeof(addr[i])) < 0)) {
			best = (int)i;
			best_score = score;
		}
	}
	return best;
}
