/* maps.h — the pinned maps as the daemon and the CLI use them: open, read, change, and tell the
 * daemon that something changed (ctl.gen).
 */
#ifndef H2S_USER_MAPS_H
#define H2S_USER_MAPS_H

#include "h2s_maps.h"

#include <stdbool.h>
#include <stddef.h>

/* Every map of the contract (H2S_MAP_LIST), in its order: fd[] and the named fields are the
 * same storage.
 */
enum h2s_map_id {
#define H2S_M_ID(id, field) H2S_M_##id,
	H2S_MAP_LIST(H2S_M_ID)
#undef H2S_M_ID
	H2S_M__COUNT,
};

/* Map names (H2S_MAP_NAME) in enum h2s_map_id order. */
extern const char *const h2s_map_names[H2S_M__COUNT];

struct h2s_maps {
	union {
		int fd[H2S_M__COUNT];
		struct {
#define H2S_M_FD(id, field) int field;
			H2S_MAP_LIST(H2S_M_FD)
#undef H2S_M_FD
		};
	};
	struct h2s_ctl *ctl_mem; /* h2s_ctl[0], mmap'ed */
	bool own_fds;            /* opened from pins: close them in h2s_maps_close() */
};

/* Open the maps pinned under pin_dir. Returns 0 or a negative errno; err gets a one-line reason
 * that says what to do (e.g. start h2steerd).
 */
int h2s_maps_open_pinned(struct h2s_maps *m, const char *pin_dir, char *err, size_t errlen);
/* h2s_ctl[0] of the maps pinned under pin_dir, without opening the others (who serves it, for
 * a daemon about to take over). -ENOENT: nothing pinned there.
 */
int h2s_ctl_read_pinned(const char *pin_dir, struct h2s_ctl *ctl);
/* Use fds owned by someone else (the daemon's skeleton, fd[i] for h2s_map_names[i]); maps the
 * ctl array.
 */
int h2s_maps_attach_fds(struct h2s_maps *m, const int fd[H2S_M__COUNT]);
void h2s_maps_close(struct h2s_maps *m);

/* Every change below bumps ctl.gen so the daemon reloads before its next pick. */
int h2s_service_add(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_service *s);
int h2s_service_set(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_service *s);
/* Removes the service and all its backends. */
int h2s_service_del(struct h2s_maps *m, const struct h2s_addr *vip);
int h2s_service_get(struct h2s_maps *m, const struct h2s_addr *vip, struct h2s_service *s);

int h2s_backend_add(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be,
		    const struct h2s_backend *b);
int h2s_backend_set(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be,
		    const struct h2s_backend *b);
int h2s_backend_del(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be);
int h2s_backend_get(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *be,
		    struct h2s_backend *b);

typedef int (*h2s_service_cb)(const struct h2s_addr *vip, const struct h2s_service *s, void *ctx);
typedef int (*h2s_backend_cb)(const struct h2s_backend_key *k, const struct h2s_backend *b,
			      void *ctx);
/* Walk all services / all backends (of one service when vip is not NULL). A callback returning
 * non-zero stops the walk and is returned.
 */
int h2s_services_foreach(struct h2s_maps *m, h2s_service_cb cb, void *ctx);
int h2s_backends_foreach(struct h2s_maps *m, const struct h2s_addr *vip, h2s_backend_cb cb,
			 void *ctx);

/* A snapshot of backends entries, sorted by service, then backend address (key order). */
struct h2s_backend_entry {
	struct h2s_backend_key k;
	struct h2s_backend b;
};

struct h2s_backend_list {
	struct h2s_backend_entry *e;
	size_t n, cap;
};

/* Snapshot the backends of vip, or of every service when vip is NULL. */
int h2s_backends_collect(struct h2s_maps *m, const struct h2s_addr *vip,
			 struct h2s_backend_list *l);
void h2s_backend_list_free(struct h2s_backend_list *l);
/* The entries of vip in a collected list: returns their count, *first their start. */
size_t h2s_backend_list_of(const struct h2s_backend_list *l, const struct h2s_addr *vip,
			   size_t *first);

/* How a service finds and checks its backends; -ENOENT: static backends, no health checks. */
int h2s_discovery_get(struct h2s_maps *m, const struct h2s_addr *vip, struct h2s_discovery *d);
/* Store it (a static resolver without health checks removes the entry); bumps ctl.gen. */
int h2s_discovery_put(struct h2s_maps *m, const struct h2s_addr *vip,
		      const struct h2s_discovery *d);

/* One backend as a resolver found it. */
struct h2s_endpoint {
	struct h2s_addr addr;
	__u32 weight;
	__u8 flags; /* H2S_BE_F_* the source decides (H2S_BE_F_SOURCE), the others ignored */
};

/* The flags of an entry that belong to its source (h2s_backends_publish sets them); the rest
 * (an operator's drain) survive re-resolution.
 */
#define H2S_BE_F_SOURCE (H2S_BE_F_TERMINATING | H2S_BE_F_LOCAL)

/* Make vip's backends from source exactly set: adds, weight and flag changes and removals (removed
 * backends drain). Entries from other sources are never touched, not even to add a duplicate.
 * Returns how many entries changed (ctl.gen is bumped once if any), or a negative errno.
 */
int h2s_backends_publish(struct h2s_maps *m, const struct h2s_addr *vip, enum h2s_source source,
			 const struct h2s_endpoint *set, size_t n);
/* The same for a source that remembers what it published for vip last time (had: the
 * addresses, sorted or not): only those entries and the new ones are looked at, one lookup
 * each, instead of a walk of the whole map. Entries of the source not in had stay.
 */
int h2s_backends_publish_known(struct h2s_maps *m, const struct h2s_addr *vip,
			       enum h2s_source source, const struct h2s_addr *had, size_t nhad,
			       const struct h2s_endpoint *set, size_t n);

/* h2s_be_vip: point backend be at vip (no write when it already is), and remove every entry
 * whose backend keep() rejects. No gen bump: only the connect hooks read it.
 */
typedef bool (*h2s_addr_pred)(const struct h2s_addr *a, void *ctx);
int h2s_be_vip_put(struct h2s_maps *m, const struct h2s_addr *be, const struct h2s_addr *vip);
void h2s_be_vip_prune(struct h2s_maps *m, h2s_addr_pred keep, void *ctx);

/* The daemon's view of a backend (see struct h2s_backend_state). No gen bump: not config. */
int h2s_be_state_put(struct h2s_maps *m, const struct h2s_addr *be,
		     const struct h2s_backend_state *st);
int h2s_be_state_get(struct h2s_maps *m, const struct h2s_addr *be, struct h2s_backend_state *st);
void h2s_be_state_del(struct h2s_maps *m, const struct h2s_addr *be);

/* Who declared vip and its name (see struct h2s_svc_name); -ENOENT: the CLI or the config. */
int h2s_svc_name_put(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_svc_name *n);
int h2s_svc_name_get(struct h2s_maps *m, const struct h2s_addr *vip, struct h2s_svc_name *n);
void h2s_svc_name_del(struct h2s_maps *m, const struct h2s_addr *vip);
/* Where a backend runs (struct h2s_backend_topo), for display; no gen bump: picks never read
 * it. put: -ENAMETOOLONG if a name has H2S_TOPO_NAME_MAX bytes or more. get: -ENOENT when not
 * known. del: 0 when there was none.
 */
int h2s_be_topo_put(struct h2s_maps *m, const struct h2s_addr *be, const char *node,
		    const char *zone);
int h2s_be_topo_get(struct h2s_maps *m, const struct h2s_addr *be, struct h2s_backend_topo *t);
int h2s_be_topo_del(struct h2s_maps *m, const struct h2s_addr *be);

/* Replace vip's L4 fallback slots, or remove them (n == 0). */
int h2s_lb_publish(struct h2s_maps *m, const struct h2s_addr *vip, const struct h2s_addr *slots,
		   __u32 n);
/* Sum of the per-CPU capture counters. */
int h2s_counters_read(struct h2s_maps *m, __u64 out[H2S_CNT__COUNT]);
const char *h2s_counter_name(enum h2s_counter c);

__u64 h2s_maps_gen(const struct h2s_maps *m);
void h2s_maps_bump_gen(struct h2s_maps *m);

/* Mark a socket as the daemon's own so the connect hooks never capture it; an upstream one
 * (to a backend) also gets its TCP stats kept in h2s_be_kstats.
 */
int h2s_maps_mark_daemon_socket(struct h2s_maps *m, int fd, bool upstream);

/* Connections the connect hooks sent straight to a backend and still open (0 if none). */
long long h2s_l4_conns_get(struct h2s_maps *m, const struct h2s_addr *be);
/* What TCP saw of the daemon's connections to a backend; -ENOENT: none yet. */
int h2s_be_kstats_get(struct h2s_maps *m, const struct h2s_addr *be, struct h2s_be_kstats *ks);

/* Pods (see struct h2s_pod), by netns cookie. */
int h2s_pod_put(struct h2s_maps *m, __u64 netns_cookie, const struct h2s_pod *p);
int h2s_pod_del(struct h2s_maps *m, __u64 netns_cookie);
int h2s_pod_get(struct h2s_maps *m, __u64 netns_cookie, struct h2s_pod *p);

/* Where a captured connection was going, by its 4-tuple as the daemon sees it (sockops
 * recorded it at the client's SYN); -ENOENT: not captured.
 */
int h2s_origin_get(struct h2s_maps *m, const struct h2s_tuple *t, struct h2s_origin *o);

struct h2s_pod_entry {
	__u64 netns_cookie;
	struct h2s_pod pod;
};

/* Every registered pod into a malloc'ed array. */
int h2s_pods_collect(struct h2s_maps *m, struct h2s_pod_entry **out, size_t *n);

/* Routes (see struct h2s_route_key). A prefix starts with '/', is visible ASCII and shorter
 * than H2S_ROUTE_PREFIX_MAX: -EINVAL otherwise.
 */
int h2s_route_key_make(const struct h2s_addr *vip, const char *prefix, struct h2s_route_key *k);
int h2s_route_put(struct h2s_maps *m, const struct h2s_route_key *k, const struct h2s_route *r);
int h2s_route_del(struct h2s_maps *m, const struct h2s_route_key *k);

struct h2s_route_entry {
	struct h2s_route_key k;
	struct h2s_route r;
};

/* Every route of vip (NULL: of every service) into a malloc'ed array. */
int h2s_routes_collect(struct h2s_maps *m, const struct h2s_addr *vip,
		       struct h2s_route_entry **out, size_t *n);

#endif /* H2S_USER_MAPS_H */
