/* registry.h — the daemon's working copy of the services and backends in the maps, with the
 * runtime state a pick needs (in-flight streams, failures, connection pools). It is reloaded
 * whenever ctl.gen moves, which the CLI bumps after every change, so a change counts from the
 * next RPC on.
 */
#ifndef H2S_REGISTRY_H
#define H2S_REGISTRY_H

#include "h2s_maps.h"
#include "list.h"
#include "locality.h"
#include "outlier.h"
#include "picker.h"
#include "subset.h"

#include <stdbool.h>
#include <stdint.h>

struct h2s_maps;
struct h2s_resolver;
struct h2s_health_check;

/* One backend address, shared by every service that lists it: owns the upstream pool. */
struct h2s_backend_rt {
	struct h2s_backend_rt *hnext;
	struct h2s_addr addr;
	char name[64];          /* printable address, for logs */
	struct h2s_list conns;  /* struct h2s_upstream.pool_link */
	uint32_t nconns;
	uint32_t inflight;      /* streams assigned here and not finished */
	uint64_t rpcs;          /* streams ever assigned here */
	struct h2s_outlier out; /* failures and ejection */
	uint8_t health;         /* enum h2s_health, kept by health.c */
	struct h2s_health_check *hc; /* its health checker, when a member service checks */
	const char *hc_want;         /* discovery.c scratch: the health service it should have */
	uint32_t members;       /* services that currently list it */
	uint32_t active;        /* ...of which do not drain it */
	/* MAX_CONCURRENT_STREAMS the backend announced last: how many streams a new connection
	 * gets before its own SETTINGS arrive (100 until known, as nghttp2 assumes).
	 */
	uint32_t stream_limit;
	/* Latency as peak_ewma sees it: RPC times (request sent to response headers) and TCP's
	 * RTT, kept as a peak-sensitive moving average that decays towards zero while no sample
	 * comes (so a backend once slow is tried again). 0: no sample yet.
	 */
	double ewma_ns;
	uint64_t ewma_at_ns;
	/* The service it is captured for when dialled directly (h2s_be_vip), if any. */
	struct h2s_addr be_vip;
	bool be_vip_set;
	/* The kernel's view (h2s_be_kstats) when last read, to fold in only what is new. */
	uint64_t kstats_read_ms, kstats_updated_ns, kstats_retrans;
	size_t apply_idx; /* apply_members' scratch: 1 + its index among the old members */
	/* The main registry's: what the other loops count for it, gathered each second for
	 * h2s_be_state (the CLI shows every loop's).
	 */
	struct {
		uint32_t inflight;
		uint64_t rpcs;
	} other_loops;
};

/* What nghttp2 assumes of a peer before its SETTINGS arrive. */
#define H2S_STREAM_LIMIT_UNKNOWN 100

/* One backend as a member of one service. */
struct h2s_member {
	uint32_t weight;  /* configured */
	uint8_t flags;    /* H2S_BE_F_* */
	bool in_subset;   /* this node uses it (subsetting) */
	bool usable;      /* at the last pick */
	bool ever_usable; /* since it joined */
	/* Ejected for failed RPCs, yet used by this service: it cannot spare it (registry.c
	 * eject_view); spared_new is eject_view's scratch.
	 */
	bool spared, spared_new;
	/* Joined (0: was there when the service was first loaded: warm already), or became
	 * usable again: slow start ramps from here.
	 */
	uint64_t since_ms;
};

/* RPCs whose :path starts with prefix go to the backends of service `to`. */
struct h2s_route_rt {
	char prefix[H2S_ROUTE_PREFIX_MAX];
	size_t len;
	struct h2s_addr to;
};

struct h2s_service_rt {
	struct h2s_service_rt *hnext;
	struct h2s_addr vip;
	char name[64];
	struct h2s_service cfg;
	struct h2s_discovery disc;     /* how backends are found and checked (zero: static) */
	struct h2s_resolver *resolver; /* owned by discovery.c */
	/* Members: be[i] with its picker state slot[i], its membership mem[i] and its address
	 * addr[i]; parallel arrays, so the pickers get contiguous ones. This node's subset comes first:
	 * mem[i].in_subset exactly when i < nsubset, so a pick within it reads only those.
	 */
	struct h2s_backend_rt **be;
	struct h2s_pick_slot *slot;
	struct h2s_member *mem;
	struct h2s_addr *addr; /* be[i]->addr, for the affinity picker (no copy per pick) */
	size_t n;
	size_t nsubset; /* members in the subset */
	/* A local-first service (H2S_SVC_F_LOCAL_FIRST): its local members in the subset come
	 * first within it, [0, nlocal), so that a pick among them reads only those, as a pick
	 * within the subset does. 0 for any other service.
	 */
	size_t nlocal;
	/* Whether picks stay among the local members (h2s_locality_applies), as last counted:
	 * counting reads all nlocal, so it is done again only when some backend's usability may
	 * have changed (the registry's usable_gen moved: an ejection, a readmission, a health
	 * change) or at until_ms, when the first ejected local member comes back.
	 */
	struct {
		bool on;
		bool valid;
		uint64_t gen;
		uint64_t until_ms;
	} local;
	/* What lets most picks read one member (round robin) or two (the random two choices of
	 * least_request and peak_ewma) instead of all (registry.c quick_pick): every member has
	 * the same configured weight, and none ramps (slow start) before ramp_until_ms.
	 */
	bool equal_weights;
	uint64_t ramp_until_ms;
	size_t rr_next; /* round robin's next member on the quick path */
	/* peak_ewma's estimate for a member with no latency sample yet: the mean of the first
	 * `of` members' estimates, taken at `at_ms` (it reads them all: at most every 100 ms).
	 */
	struct {
		double ns;
		uint64_t at_ms;
		size_t of;
	} unknown_latency;
	/* Which ejected members this service still uses (max_percent applies per service), as
	 * last worked out: again when usable_gen moves or at until_ms, when the first ejection
	 * of its members ends (registry.c eject_view).
	 */
	struct {
		bool valid;
		uint64_t gen;
		uint64_t until_ms;
	} ejects;
	bool members_loaded; /* its first set of members was applied */
	struct h2s_route_rt *routes; /* longest prefix first */
	size_t nroutes;
	bool seen; /* reload bookkeeping */
	/* The L4 fallback slots last written for it (h2s_lb); lb_written: by this daemon (what
	 * an earlier one left is replaced at the first publish).
	 */
	struct h2s_addr lb[H2S_LB_SLOTS_MAX];
	uint32_t nlb;
	bool lb_written;
};

#define H2S_REG_BUCKETS 1024

struct h2s_registry {
	struct h2s_maps *maps;
	uint64_t gen;
	bool loaded;
	struct h2s_service_rt *svc[H2S_REG_BUCKETS];
	struct h2s_backend_rt *be[H2S_REG_BUCKETS];
	uint32_t rng;
	const struct h2s_outlier_cfg *outlier;
	struct h2s_stats *stats;
	struct h2s_subset_node node; /* who this node is, for subsetting */
	uint32_t ewma_decay_ms;      /* peak_ewma's memory (the ewma_decay_ms setting) */
	uint32_t locality_min_pct;   /* the locality_min_usable_percent setting */
	/* Bumped whenever a backend may become usable or stop being so other than by time
	 * passing (ejected, re-admitted, health changed): what the local-first counts follow.
	 */
	uint64_t usable_gen;
	bool readonly; /* the node is another daemon's now: read the maps, never write them */
	bool quiet;    /* another loop's: what a reload changed is the main loop's to log */
	/* Health checks run in the main loop only: its registry counts every health change in
	 * health_gen; another loop's registry follows it (follow_health points there) by reading
	 * the states from h2s_be_state when the count moved.
	 */
	uint64_t health_gen;
	const uint64_t *follow_health;
	uint64_t health_seen;
	/* Hooks for what hangs off the registry (set by the daemon, may be NULL):
	 *   on_idle         no service wants new RPCs on it (removed or drained everywhere):
	 *                   its idle connections can go
	 *   on_reload       after a reload (resolvers and health checks follow the config)
	 *   on_service_gone / on_backend_gone   just before it is freed
	 */
	void (*on_idle)(struct h2s_backend_rt *be, void *ctx);
	void (*on_reload)(struct h2s_registry *r, void *ctx);
	void (*on_service_gone)(struct h2s_service_rt *s, void *ctx);
	void (*on_backend_gone)(struct h2s_backend_rt *be, void *ctx);
	void *ctx;
};

void h2s_registry_init(struct h2s_registry *r, struct h2s_maps *maps);
void h2s_registry_fini(struct h2s_registry *r);
/* Reload from the maps if ctl.gen moved (cheap when it did not: one load from mmap'ed memory). */
int h2s_registry_refresh(struct h2s_registry *r);
struct h2s_service_rt *h2s_registry_service(struct h2s_registry *r, const struct h2s_addr *vip);
struct h2s_backend_rt *h2s_registry_backend(struct h2s_registry *r, const struct h2s_addr *addr);
/* The service whose backends serve an RPC of svc to `path`: the target of svc's longest
 * matching route, or svc itself. NULL when the route's target is not declared; *to_out then
 * names it.
 */
struct h2s_service_rt *h2s_registry_route(struct h2s_registry *r, struct h2s_service_rt *svc,
					  const char *path, struct h2s_addr *to_out);
/* Pick a backend of svc for a new stream; NULL when it has none that is not drained.
 * Ejected and unhealthy backends, members outside this node's subset, and `avoid` (the one a
 * replayed stream just left), are skipped while any other is left (then all are tried).
 * A local-first service picks among its local members while enough of them are usable
 * (locality.h), and when none but `avoid` is, as if it were not local-first.
 * affinity_key (may be NULL): consistent hashing of that key instead of svc's algorithm
 * (over the local members when they take the pick).
 */
struct h2s_backend_rt *h2s_registry_pick(struct h2s_registry *r, struct h2s_service_rt *svc,
					 const struct h2s_backend_rt *avoid,
					 const uint64_t *affinity_key, uint64_t now_ms);
/* One latency sample of be (request sent to response headers), for peak_ewma. */
void h2s_backend_latency(struct h2s_backend_rt *be, uint64_t sample_ns, uint64_t now_ns,
			 uint32_t decay_ms);
/* Free a backend that has no members, connections or streams left. */
void h2s_registry_release_backend(struct h2s_registry *r, struct h2s_backend_rt *be);
/* Call fn for every service / backend. */
void h2s_registry_each_service(struct h2s_registry *r,
			       void (*fn)(struct h2s_service_rt *s, void *arg), void *arg);
void h2s_registry_each_backend(struct h2s_registry *r,
			       void (*fn)(struct h2s_backend_rt *be, void *arg), void *arg);

/* Outcomes that feed passive ejection (outlier.h) and `h2steer backend list`. */
void h2s_backend_connect_failed(struct h2s_registry *r, struct h2s_backend_rt *be);
void h2s_backend_rpc_failed(struct h2s_registry *r, struct h2s_backend_rt *be, const char *why);
void h2s_backend_ok(struct h2s_registry *r, struct h2s_backend_rt *be);
void h2s_backend_set_health(struct h2s_registry *r, struct h2s_backend_rt *be, uint8_t health);
/* Keep the L4 fallback slots of every service in step with usable backends (cheap when
 * nothing changed).
 */
void h2s_registry_publish_lb(struct h2s_registry *r);
/* Write be's state into the h2s_be_state map. */
void h2s_backend_publish_state(struct h2s_registry *r, struct h2s_backend_rt *be);

#endif /* H2S_REGISTRY_H */
