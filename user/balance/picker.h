/* picker.h — choosing a backend for one RPC. Pure functions over an array of candidates, so the
 * unit tests drive them directly.
 */
#ifndef H2S_PICKER_H
#define H2S_PICKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_addr;

struct h2s_pick_slot {
	uint32_t weight;   /* >= 1 */
	int64_t current;   /* smooth weighted round robin state, owned by the picker */
	uint32_t inflight; /* streams in flight on this backend */
	bool available;    /* not ejected, not draining */
	double latency;    /* peak_ewma: the backend's latency estimate (> 0), in ns */
};

/* Smooth weighted round robin (each slot gets weight/total of the picks, interleaved, no
 * bursts). Only available slots take part. Returns the index, or -1 if none is available.
 */
int h2s_pick_round_robin(struct h2s_pick_slot *s, size_t n);

/* Least request (Envoy's): with equal weights, two distinct available slots at random, the one
 * with fewer in-flight streams wins; with unequal weights, smooth weighted round robin on
 * weight / (inflight+1). rnd returns uniform 32-bit values. Returns the index, or -1 if none is
 * available.
 */
int h2s_pick_least_request(struct h2s_pick_slot *s, size_t n, uint32_t (*rnd)(void *),
			   void *rnd_ctx);

/* Peak EWMA: two distinct available slots at random, the one with the lower
 * latency * (inflight+1) / weight wins (Finagle's and Linkerd's cost: a backend that answers
 * slowly, or has many RPCs waiting, costs more). Returns the index, or -1 if none is available.
 */
int h2s_pick_peak_ewma(const struct h2s_pick_slot *s, size_t n, uint32_t (*rnd)(void *),
		       void *rnd_ctx);

/* The comparisons of the two choices, for a caller that drew its two candidates itself (a
 * large service: registry.c): true when a is kept over b.
 */
bool h2s_least_request_keeps(const struct h2s_pick_slot *a, const struct h2s_pick_slot *b);
bool h2s_peak_ewma_keeps(const struct h2s_pick_slot *a, const struct h2s_pick_slot *b);

/* Affinity: weighted rendezvous hashing of key_hash (a hash of, say, a header's value). The
 * available slot with the highest score -weight / ln(u) wins, u in (0,1) drawn from
 * h2s_hash_addr(addr, key_hash): each slot wins weight/total of the keys, the same key picks the
 * same slot while the set is stable, and when a slot becomes unavailable only the keys it had
 * move (each to where its runner-up was). addr[i] is slot i's address: the pick depends on
 * addresses, not on array positions. Returns the index, or -1 if none is available.
 */
int h2s_pick_affinity(const struct h2s_pick_slot *s, const struct h2s_addr *addr, size_t n,
		      uint64_t key_hash);

#endif /* H2S_PICKER_H */
