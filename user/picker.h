/* picker.h — choosing a backend for one RPC. Pure functions over an array of candidates, so the
 * unit tests drive them directly.
 */
#ifndef H2S_PICKER_H
#define H2S_PICKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_pick_slot {
	uint32_t weight;   /* >= 1 */
	int64_t current;   /* smooth weighted round robin state, owned by the picker */
	uint32_t inflight; /* streams in flight on this backend */
	bool available;    /* not ejected, not draining */
};

/* Smooth weighted round robin (each slot gets weight/total of the picks, interleaved, no
 * bursts). Only available slots take part. Returns the index, or -1 if none is available.
 */
int h2s_pick_round_robin(struct h2s_pick_slot *s, size_t n);

/* Least request: two distinct available slots at random, the one with fewer in-flight streams
 * per unit of weight wins ((inflight+1)/weight). rnd returns uniform 32-bit values. Returns the
 * index, or -1 if none is available.
 */
int h2s_pick_least_request(const struct h2s_pick_slot *s, size_t n, uint32_t (*rnd)(void *),
			   void *rnd_ctx);

#endif /* H2S_PICKER_H */
