/* registry.h — the daemon's working copy of the services and backends in the maps, with the
 * runtime state a pick needs (in-flight streams, failures, connection pools). It is reloaded
 * whenever ctl.gen moves, which the CLI bumps after every change, so a change counts from the
 * next RPC on.
 */
#ifndef H2S_REGISTRY_H
#define H2S_REGISTRY_H

#include "h2s_maps.h"
#include "list.h"
#include "picker.h"

#include <stdbool.h>
#include <stdint.h>

struct h2s_maps;

/* One backend address, shared by every service that lists it: owns the upstream pool. */
struct h2s_backend_rt {
	struct h2s_backend_rt *hnext;
	struct h2s_addr addr;
	char name[64];          /* printable address, for logs */
	struct h2s_list conns;  /* struct h2s_upstream.pool_link */
	uint32_t nconns;
	uint32_t inflight;      /* streams assigned here and not finished */
	uint64_t rpcs;          /* streams ever assigned here */
	uint32_t fail_streak;   /* consecutive connect failures */
	uint64_t down_until_ms; /* not picked before this (unless nothing else is left) */
	uint32_t members;       /* services that currently list it */
	/* MAX_CONCURRENT_STREAMS the backend announced last: how many streams a new connection
	 * gets before its own SETTINGS arrive (100 until known, as nghttp2 assumes).
	 */
	uint32_t stream_limit;
};

/* What nghttp2 assumes of a peer before its SETTINGS arrive. */
#define H2S_STREAM_LIMIT_UNKNOWN 100

struct h2s_service_rt {
	struct h2s_service_rt *hnext;
	struct h2s_addr vip;
	char name[64];
	struct h2s_service cfg;
	/* Members: be[i] with its picker state slot[i] (parallel arrays, so the pickers get one
	 * contiguous array).
	 */
	struct h2s_backend_rt **be;
	struct h2s_pick_slot *slot;
	size_t n;
	bool seen; /* reload bookkeeping */
};

#define H2S_REG_BUCKETS 1024

struct h2s_registry {
	struct h2s_maps *maps;
	uint64_t gen;
	bool loaded;
	struct h2s_service_rt *svc[H2S_REG_BUCKETS];
	struct h2s_backend_rt *be[H2S_REG_BUCKETS];
	uint32_t rng;
	/* Called for a backend no service lists any more (so its idle pool can be closed). */
	void (*on_orphan)(struct h2s_backend_rt *be, void *ctx);
	void *ctx;
};

void h2s_registry_init(struct h2s_registry *r, struct h2s_maps *maps);
void h2s_registry_fini(struct h2s_registry *r);
/* Reload from the maps if ctl.gen moved (cheap when it did not: one load from mmap'ed memory). */
int h2s_registry_refresh(struct h2s_registry *r);
struct h2s_service_rt *h2s_registry_service(struct h2s_registry *r, const struct h2s_addr *vip);
/* Pick a backend of svc for a new stream; NULL when the service has no backend at all.
 * Backends marked down are skipped while any other is left.
 */
struct h2s_backend_rt *h2s_registry_pick(struct h2s_registry *r, struct h2s_service_rt *svc,
					 uint64_t now_ms);
/* Free a backend that has no members and no connections left. */
void h2s_registry_release_backend(struct h2s_registry *r, struct h2s_backend_rt *be);

/* Connect outcome bookkeeping: exponential back-off from 1 s up to 30 s. */
void h2s_backend_connect_failed(struct h2s_backend_rt *be, uint64_t now_ms);
void h2s_backend_connect_ok(struct h2s_backend_rt *be);

#endif /* H2S_REGISTRY_H */
