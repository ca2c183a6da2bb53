/* srcbudget.h — a budget shared by every client connection from one source address, on one
 * loop: what a client that reconnects after each GOAWAY would otherwise get afresh with
 * every connection. Rapid Reset spread over connections (each under its own client_reset_*
 * budget, then a new one) is paid from here too (guard.c), so one source's resets are
 * bounded whatever number of connections it opens.
 *
 * A source is an address, its port ignored: a pod; the node's own processes share
 * 127.0.0.1. The table is fixed in size (made once, a few hundred KiB at most), so no number
 * of addresses grows it: a source whose bucket is full again holds nothing and its slot is
 * taken by the next one that needs it; a source finding every slot it may take held by
 * sources still paying shares one overflow bucket with the others in that case. Holding a
 * slot costs a reset now and then (a bucket refills a token in 1/rate s), so crowding the
 * table out costs an attacker more resets a second than the budget lets through.
 *
 * Token buckets of calm.h, burst and rate passed in on every call (settings may be
 * reloaded). Pure logic, times passed in: unit-tested.
 */
#ifndef H2S_SRCBUDGET_H
#define H2S_SRCBUDGET_H

#include "calm.h"
#include "h2s_maps.h"

#include <stdbool.h>
#include <stdint.h>

struct h2s_srcbudget_slot {
	struct h2s_addr ip; /* port and pad zero */
	struct h2s_bucket b;
	bool used;
};

struct h2s_srcbudget {
	struct h2s_srcbudget_slot *slot;
	uint32_t cap; /* a power of two */
	uint64_t seed;
	struct h2s_bucket overflow;
	uint64_t overflowed; /* takes that found no slot */
};

/* cap slots (rounded up to a power of two, at least 16); -ENOMEM. */
int h2s_srcbudget_init(struct h2s_srcbudget *s, uint32_t cap);
/* One token from peer's source; false when its bucket is empty (nothing is taken then). */
bool h2s_srcbudget_take(struct h2s_srcbudget *s, const struct h2s_addr *peer, uint32_t burst,
			uint32_t rate, uint64_t now_ms);
/* n tokens back for work done, if peer's source holds a bucket (a full one holds none). */
void h2s_srcbudget_give(struct h2s_srcbudget *s, const struct h2s_addr *peer, uint32_t burst,
			uint32_t n);
void h2s_srcbudget_fini(struct h2s_srcbudget *s);

#endif /* H2S_SRCBUDGET_H */
