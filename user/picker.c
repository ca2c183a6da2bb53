/* picker.c — see picker.h. */
#include "picker.h"

int h2s_pick_round_robin(struct h2s_pick_slot *s, size_t n)
{
	int64_t total = 0;
	int best = -1;

	/* nginx's smooth WRR: everyone gains its weight, the leader pays the total. */
	for (size_t i = 0; i < n; i++) {
		if (!s[i].available)
			continue;
		s[i].current += s[i].weight;
		total += s[i].weight;
		if (best < 0 || s[i].current > s[best].current)
			best = (int)i;
	}
	if (best >= 0)
		s[best].current -= total;
	return best;
}

/* The k-th available slot (0-based), or -1. */
static int nth_available(const struct h2s_pick_slot *s, size_t n, size_t k)
{
	for (size_t i = 0; i < n; i++)
		if (s[i].available && k-- == 0)
			return (int)i;
	return -1;
}

int h2s_pick_least_request(const struct h2s_pick_slot *s, size_t n, uint32_t (*rnd)(void *),
			   void *rnd_ctx)
{
	size_t avail = 0, a, b;
	int ia, ib;

	for (size_t i = 0; i < n; i++)
		avail += s[i].available;
	if (avail == 0)
		return -1;
	if (avail == 1)
		return nth_available(s, n, 0);
	a = rnd(rnd_ctx) % avail;
	b = rnd(rnd_ctx) % (avail - 1);
	if (b >= a)
		b++; /* distinct from a, still uniform */
	ia = nth_available(s, n, a);
	ib = nth_available(s, n, b);
	/* (inflight_a+1)/w_a <= (inflight_b+1)/w_b, cross-multiplied to stay in integers. */
	if ((uint64_t)(s[ia].inflight + 1) * s[ib].weight <=
	    (uint64_t)(s[ib].inflight + 1) * s[ia].weight)
		return ia;
	return ib;
}
