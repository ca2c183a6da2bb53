/* locality.h — locality-first picks (H2S_SVC_F_LOCAL_FIRST): when a service's RPCs stay on
 * its local members (this node's or this zone's, flagged H2S_BE_F_LOCAL) and when they spill
 * over to all of them. A pure function, so the unit tests drive the rule directly; the
 * registry counts and calls it.
 */
#ifndef H2S_LOCALITY_H
#define H2S_LOCALITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Pick among the local members? usable of total local members are usable now (what a pick
 * would use: not drained, not ejected, healthy, in this node's subset). Yes while at least one
 * is and usable * 100 >= total * min_usable_percent (the locality_min_usable_percent setting,
 * 0..100): a local set that lost most of its members would take all the service's load on
 * the few left, so below that share the load goes to every member instead. total == 0 (no
 * local member): no.
 */
bool h2s_locality_applies(size_t usable, size_t total, uint32_t min_usable_percent);

#endif /* H2S_LOCALITY_H */
