/* srcbudget.c — see srcbudget.h. */
#include "srcbudget.h"

#include "addr.h"
#include "hash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Slots a source may take, from its hash on: a short run keeps a take cheap. */
#define PROBE 8

int h2s_srcbudget_init(struct h2s_srcbudget *s, uint32_t cap)
{
	uint32_t n = 16;

	memset(s, 0, sizeof(*s));
	while (n < cap && n < (1u << 20))
		n *= 2;
	s->slot = calloc(n, sizeof(*s->slot));
	if (!s->slot)
		return -ENOMEM;
	s->cap = n;
	/* Seeded, so that no one can pick addresses that land on another's slots. */
	if (getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) != sizeof(s->seed))
		s->seed = (uint64_t)(uintptr_t)s ^ 0x9E3779B97F4A7C15ull;
	return 0;
}

/* peer's slot; else, when `claim`, a free one of its run, made its own (a full bucket);
 * else NULL.
 */
static struct h2s_srcbudget_slot *find(struct h2s_srcbudget *s, const struct h2s_addr *peer,
				       uint32_t burst, uint32_t rate, uint64_t now_ms,
				       bool claim)
{
	struct h2s_addr ip = h2s_addr_source(peer);
	uint32_t i = (uint32_t)h2s_hash_addr(&ip, s->seed);
	struct h2s_srcbudget_slot *spare = NULL;

	for (uint32_t k = 0; k < PROBE; k++) {
		struct h2s_srcbudget_slot *t = &s->slot[(i + k) & (s->cap - 1)];

		if (t->used && h2s_addr_equal(&t->ip, &ip))
			return t;
		if (!spare && (!t->used || h2s_bucket_full(&t->b, burst, rate, now_ms)))
			spare = t; /* a full bucket is no different from none */
	}
	if (!spare || !claim)
		return NULL;
	*spare = (struct h2s_srcbudget_slot){ .ip = ip, .used = true };
	return spare;
}

bool h2s_srcbudget_take(struct h2s_srcbudget *s, const struct h2s_addr *peer, uint32_t burst,
			uint32_t rate, uint64_t now_ms)
{
	struct h2s_srcbudget_slot *t = find(s, peer, burst, rate, now_ms, true);

	if (t)
		return h2s_bucket_take(&t->b, burst, rate, now_ms);
	s->overflowed++;
	return h2s_bucket_take(&s->overflow, burst, rate, now_ms);
}

void h2s_srcbudget_give(struct h2s_srcbudget *s, const struct h2s_addr *peer, uint32_t burst,
			uint32_t n)
{
	struct h2s_addr ip = h2s_addr_source(peer);
	uint32_t i = (uint32_t)h2s_hash_addr(&ip, s->seed);

	for (uint32_t k = 0; k < PROBE; k++) {
		struct h2s_srcbudget_slot *t = &s->slot[(i + k) & (s->cap - 1)];

		if (t->used && h2s_addr_equal(&t->ip, &ip)) {
			h2s_bucket_give(&t->b, burst, n);
			return;
		}
	}
}

void h2s_srcbudget_fini(struct h2s_srcbudget *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = 0;
}
