/* subset.h — deterministic subsetting: in a large fleet each node's daemon connects to only k of
 * a service's n backends, chosen so that the nodes together load the backends evenly and a
 * change of one backend moves few connections. Pure functions, so the unit tests drive them.
 */
#ifndef H2S_USER_SUBSET_H
#define H2S_USER_SUBSET_H

#include "h2s_maps.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_subset_node {
	bool has_index; /* a node index was configured */
	uint32_t index; /* this node's index (0-based), when has_index */
	uint64_t id;    /* stable hash of this node's name, used when !has_index */
};

/* Marks in chosen[0..n) the backends this node uses, k of them (all when k == 0 or k >= n), and
 * returns how many were chosen. The result depends only on the SET of addresses, never on their
 * order in be[]; addresses are expected to be distinct.
 *
 * With an index, nodes 0..S-1 (S = ceil(n/k)) split one hash order of the backends between them,
 * the next S nodes another, and so on: with indices 0..N-1 every backend gets N*k/n connections,
 * give or take a few, and a backend joining or leaving makes each node swap at most one backend
 * for another. Except when it changes S (n crossing a multiple of k): then nearly every node
 * gets a new subset. Without an index, rendezvous hashing on node->id: uneven, but needs no
 * coordination, and a backend leaving only moves the nodes that had it.
 *
 * Returns SIZE_MAX, chosen[] untouched, if memory runs out: the caller then uses all backends.
 */
size_t h2s_subset_choose(const struct h2s_addr *be, size_t n, size_t k,
			 const struct h2s_subset_node *node, bool *chosen);

#endif /* H2S_USER_SUBSET_H */
