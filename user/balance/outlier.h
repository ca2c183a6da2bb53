/* outlier.h — passive ejection: a backend whose connections or RPCs keep failing is not picked
 * for a while, longer each time it is ejected again.
 *
 *   connect failures (or no HTTP/2 SETTINGS): ejected at once, connect_base_ms doubling up to
 *       connect_max_ms — every RPC sent there would fail the same way;
 *   failed RPCs (which ones: h2s_rpc_outcome() in proxy/relay.c): after `consecutive` in a
 *       row, ejected for base_ms doubling up to max_ms, unless the caller says no
 *       (may_eject). max_percent is applied per service by the caller (registry.c
 *       eject_view): a service that cannot spare an ejected backend keeps using it.
 *
 * Any success resets the streak and the doubling. Pure functions: tests drive them directly.
 */
#ifndef H2S_OUTLIER_H
#define H2S_OUTLIER_H

#include "h2s_maps.h"

#include <stdbool.h>
#include <stdint.h>

struct h2s_outlier_cfg {
	uint32_t consecutive;     /* failed RPCs in a row that eject (0: never) */
	uint32_t base_ms, max_ms; /* ejection time for failed RPCs */
	uint32_t connect_base_ms, connect_max_ms;
	uint32_t max_percent;     /* of a service's backends ejected at once for failed RPCs */
};

void h2s_outlier_cfg_default(struct h2s_outlier_cfg *c);

struct h2s_outlier {
	uint32_t streak;    /* consecutive failures */
	uint32_t ejections; /* consecutive ejections (the doubling exponent) */
	uint64_t until_ms;  /* ejected before this */
	uint64_t since_ms;  /* the last ejection began then */
	uint8_t reason;     /* enum h2s_eject of the last ejection */
	uint64_t failures;  /* total, for stats */
};

/* Record a failure at now. may_eject: whether the caller allows an RPC-failure ejection (its
 * max_percent check). Returns true if this failure ejected the backend.
 */
bool h2s_outlier_failure(struct h2s_outlier *o, const struct h2s_outlier_cfg *c, uint64_t now,
			 bool connect, bool may_eject);
void h2s_outlier_success(struct h2s_outlier *o);
bool h2s_outlier_ejected(const struct h2s_outlier *o, uint64_t now);
/* Would one more RPC failure eject it (so the caller should check max_percent)? */
bool h2s_outlier_would_eject(const struct h2s_outlier *o, const struct h2s_outlier_cfg *c);
/* A health check says it serves: back in at once. */
void h2s_outlier_readmit(struct h2s_outlier *o);

#endif /* H2S_OUTLIER_H */
