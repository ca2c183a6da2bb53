/* hash.h — a seeded 64-bit hash for decisions that must agree across processes and hosts:
 * subsetting (which backends a node connects to) and affinity (which backend a key goes to).
 * h2s_addr_hash() in addr.h is for in-process tables only; its 32 bits are too few to rank
 * hundreds of backends without ties, and it takes no seed.
 */
#ifndef H2S_USER_HASH_H
#define H2S_USER_HASH_H

#include "h2s_maps.h"

#include <stddef.h>
#include <stdint.h>

/* Non-cryptographic: fine against accidents, not against someone choosing inputs to collide.
 * The value depends only on the bytes and the seed, never on the host's byte order, so every
 * node computes the same one.
 */
uint64_t h2s_hash64(const void *data, size_t len, uint64_t seed);

/* h2s_hash64() over the address's 20 bytes (network order, pad zero). */
uint64_t h2s_hash_addr(const struct h2s_addr *a, uint64_t seed);

#endif /* H2S_USER_HASH_H */
