/* registry.c — see registry.h. */
#include "registry.h"

#include "addr.h"
#include "hash.h"
#include "log.h"
#include "clock.h"
#include "maps.h"
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What a reload changed: said once, by the main loop's registry (another loop's is quiet). */
#define config_log(r, ...)                      \
	do {                                    \
		if (!(r)->quiet)                \
			log_info(__VA_ARGS__);  \
	} while (0)

static unsigned bucket(const struct h2s_addr *a)
{
	return h2s_addr_hash(a) & (H2S_REG_BUCKETS - 1);
}

void h2s_registry_init(struct h2s_registry *r, struct h2s_maps *maps)
{
	memset(r, 0, sizeof(*r));
	r->maps = maps;
	r->rng = 0x9e3779b9u ^ (uint32_t)(uintptr_t)r;
}

struct h2s_service_rt *h2s_registry_service(struct h2s_registry *r, const struct h2s_addr *vip)
{
	for (struct h2s_service_rt *s = r->svc[bucket(vip)]; s; s = s->hnext)
		if (h2s_addr_equal(&s->vip, vip))
			return s;
	return NULL;
}

struct h2s_backend_rt *h2s_registry_backend(struct h2s_registry *r, const struct h2s_addr *a)
{
	for (struct h2s_backend_rt *b = r->be[bucket(a)]; b; b = b->hnext)
		if (h2s_addr_equal(&b->addr, a))
			return b;
	return NULL;
}

static struct h2s_backend_rt *backend_get(struct h2s_registry *r, const struct h2s_addr *a)
{
	struct h2s_backend_rt *b = h2s_registry_backend(r, a);
	unsigned k;

	if (b)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->addr = *a;
	b->stream_limit = H2S_STREAM_LIMIT_UNKNOWN;
	h2s_addr_format(a, b->name, sizeof(b->name));
	h2s_list_init(&b->conns);
	k = bucket(a);
	b->hnext = r->be[k];
	r->be[k] = b;
	return b;
}

void h2s_registry_release_backend(struct h2s_registry *r, struct h2s_backend_rt *be)
{
	struct h2s_backend_rt **pp;

	if (be->members || be->nconns || be->inflight)
		return;
	for (pp = &r->be[bucket(&be->addr)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == be) {
			*pp = be->hnext;
			if (r->on_backend_gone)
				r->on_backend_gone(be, r->ctx);
			if (!r->readonly)
				h2s_be_state_del(r->maps, &be->addr);
			free(be);
			return;
		}
	}
}

/* Member counts of the backends of m[0..n) change by delta (+1 joining, -1 leaving); a backend
 * that no service wants new RPCs on any more is reported idle and released if it can be.
 */
static void count_members(struct h2s_registry *r, struct h2s_backend_rt **be,
			  const struct h2s_member *mem, size_t n, int delta)
{
	for (size_t i = 0; i < n; i++) {
		be[i]->members += delta;
		if (!(mem[i].flags & H2S_BE_F_DRAIN))
			be[i]->active += delta;
	}
	for (size_t i = 0; delta < 0 && i < n; i++) {
		if (be[i]->active == 0 && r->on_idle)
			r->on_idle(be[i], r->ctx);
		h2s_registry_release_backend(r, be[i]);
	}
}

static int load_service(const struct h2s_addr *vip, const struct h2s_service *cfg, void *ctx)
{
	struct h2s_registry *r = ctx;
	struct h2s_service_rt *s = h2s_registry_service(r, vip);
	struct h2s_discovery disc;

	if (!s) {
		unsigned k = bucket(vip);

		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->vip = *vip;
		h2s_addr_format(vip, s->name, sizeof(s->name));
		s->hnext = r->svc[k];
		r->svc[k] = s;
		config_log(r, "service %s added (%s)", s->name, h2s_algo_name(cfg->algo));
	} else if (s->cfg.algo != cfg->algo) {
		config_log(r, "service %s: algorithm now %s", s->name, h2s_algo_name(cfg->algo));
	}
	s->cfg = *cfg;
	if (h2s_discovery_get(r->maps, vip, &disc) < 0)
		memset(&disc, 0, sizeof(disc)); /* static, unchecked */
	disc.name[sizeof(disc.name) - 1] = '\0';
	disc.health_service[sizeof(disc.health_service) - 1] = '\0';
	s->disc = disc;
	s->seen = true;
	return 0;
}

/* How many backends this node uses of n (the service's subset setting). */
static size_t subset_size(const struct h2s_service *cfg, size_t n)
{
	if (cfg->subset == H2S_SUBSET_ALL)
		return n;
	if (cfg->subset == H2S_SUBSET_AUTO)
		return n > H2S_SUBSET_AUTO_SIZE ? H2S_SUBSET_AUTO_SIZE : n;
	return cfg->subset < n ? cfg->subset : n;
}

static bool member_in_subset(const struct h2s_member *m)
{
	return m->in_subset;
}

static bool member_local(const struct h2s_member *m)
{
	return m->flags & H2S_BE_F_LOCAL;
}

/* Move the members of [lo, hi) that pass `front` to the start of that range (each member's be,
 * slot, mem and addr together; those moved keep their order, the order of the rest does not
 * matter to any pick) and count them.
 */
static size_t move_first(struct h2s_service_rt *s, size_t lo, size_t hi,
			 bool (*front)(const struct h2s_member *m))
{
	size_t k = lo;

	for (size_t i = lo; i < hi; i++) {
		if (!front(&s->mem[i]))
			continue;
		if (i != k) {
			struct h2s_backend_rt *be = s->be[k];
			struct h2s_pick_slot slot = s->slot[k];
			struct h2s_member mem = s->mem[k];
			struct h2s_addr addr = s->addr[k];

			s->be[k] = s->be[i];
			s->slot[k] = s->slot[i];
			s->mem[k] = s->mem[i];
			s->addr[k] = s->addr[i];
			s->be[i] = be;
			s->slot[i] = slot;
			s->mem[i] = mem;
			s->addr[i] = addr;
		}
		k++;
	}
	return k - lo;
}

/* The subset first, and within it (a local-first service) the local members first. Local
 * members outside the subset are not local to a pick: subsetting decided this node does not
 * use them.
 */
static void subset_first(struct h2s_service_rt *s)
{
	s->nsubset = move_first(s, 0, s->n, member_in_subset);
	s->nlocal = s->cfg.flags & H2S_SVC_F_LOCAL_FIRST
			    ? move_first(s, 0, s->nsubset, member_local)
			    : 0;
	s->local.valid = false;
}

/* Choose this node's subset among the members that are not drained (a drained one is on its
 * way out: another takes its place now).
 */
static void choose_subset(struct h2s_registry *r, struct h2s_service_rt *s)
{
	struct h2s_addr *addr = calloc(s->n ? s->n : 1, sizeof(*addr));
	bool *chosen = calloc(s->n ? s->n : 1, sizeof(*chosen));
	size_t *idx = calloc(s->n ? s->n : 1, sizeof(*idx));
	size_t m = 0, got = SIZE_MAX;

	for (size_t i = 0; i < s->n; i++)
		s->mem[i].in_subset = !(s->mem[i].flags & H2S_BE_F_DRAIN);
	if (addr && chosen && idx) {
		for (size_t i = 0; i < s->n; i++)
			if (s->mem[i].in_subset) {
				idx[m] = i;
				addr[m++] = s->be[i]->addr;
			}
		got = h2s_subset_choose(addr, m, subset_size(&s->cfg, m), &r->node, chosen);
		if (got != SIZE_MAX)
			for (size_t j = 0; j < m; j++)
				s->mem[idx[j]].in_subset = chosen[j];
	}
	if (got == SIZE_MAX) {
		log_warn("service %s: out of memory choosing a subset: using every backend",
			 s->name);
		got = m;
	}
	if (got != s->nsubset && m > got)
		config_log(r, "service %s: this node uses %zu of its %zu backends (subset)", s->name,
			 got, m);
	free(addr);
	free(chosen);
	free(idx);
	subset_first(s);
}

/* A member (re)joined at since_ms: the quick pick leaves the service to the full one while
 * its weight ramps (slow start; effective_weight).
 */
static void note_ramp(struct h2s_service_rt *s, uint64_t since_ms)
{
	uint64_t until = since_ms + s->cfg.slow_start_ms;

	if (s->cfg.slow_start_ms && until > s->ramp_until_ms)
		s->ramp_until_ms = until;
}

/* What quick_pick needs to know of the members as a whole (see struct h2s_service_rt). */
static void service_shape(struct h2s_service_rt *s)
{
	s->equal_weights = true;
	s->ramp_until_ms = 0;
	for (size_t k = 0; k < s->n; k++) {
		s->equal_weights &= s->mem[k].weight == s->mem[0].weight;
		note_ramp(s, s->mem[k].since_ms);
	}
}

/* Replace s's members with what the map wants. Picker state of members that stay is kept, and
 * new members are counted before old ones are dropped, so a backend that stays never looks
 * idle or unused in between.
 */
static int apply_members(struct h2s_registry *r, struct h2s_service_rt *s,
			 const struct h2s_backend_entry *want, size_t n)
{
	struct h2s_backend_rt **be = calloc(n ? n : 1, sizeof(*be));
	struct h2s_pick_slot *slot = calloc(n ? n : 1, sizeof(*slot));
	struct h2s_member *mem = calloc(n ? n : 1, sizeof(*mem));
	struct h2s_addr *addr = calloc(n ? n : 1, sizeof(*addr));
	uint64_t now = h2s_now_ms();

	if (!be || !slot || !mem || !addr)
		goto nomem;
	/* Old members are found by their backend's apply_idx, not by a search: a service may
	 * have thousands of members.
	 */
	for (size_t j = 0; j < s->n; j++)
		s->be[j]->apply_idx = j + 1;
	for (size_t i = 0; i < n; i++) {
		size_t j;

		be[i] = backend_get(r, &want[i].k.backend);
		if (!be[i]) {
			count_members(r, be, mem, i, 0); /* nothing counted yet */
			goto nomem;
		}
		addr[i] = be[i]->addr;
		/* The first members of a service are not ramped: a daemon (re)starting is not
		 * its backends joining, and there is nobody else to take the load.
		 */
		mem[i] = (struct h2s_member){
			.weight = want[i].b.weight ? want[i].b.weight : 1,
			/* A terminating endpoint is drained, whoever says so. */
			.flags = want[i].b.flags | (want[i].b.flags & H2S_BE_F_TERMINATING
							    ? H2S_BE_F_DRAIN : 0),
			.since_ms = s->members_loaded ? now : 0,
		};
		j = be[i]->apply_idx;
		if (j--) {
			slot[i].current = s->slot[j].current;
			mem[i].usable = s->mem[j].usable;
			mem[i].ever_usable = s->mem[j].ever_usable;
			mem[i].spared = s->mem[j].spared;
			mem[i].since_ms = s->mem[j].since_ms;
			if ((s->mem[j].flags ^ mem[i].flags) & H2S_BE_F_DRAIN) {
				config_log(r, "service %s: backend %s %s", s->name, be[i]->name,
					 mem[i].flags & H2S_BE_F_DRAIN ? "draining"
								       : "no longer draining");
				r->stats->drains += !!(mem[i].flags & H2S_BE_F_DRAIN);
				mem[i].since_ms = now; /* back from a drain: ramps again */
			}
		} else {
			config_log(r, "service %s: backend %s added (%s, weight %u)", s->name, be[i]->name,
				 h2s_source_name(want[i].b.source), mem[i].weight);
		}
	}
	for (size_t i = 0; i < n; i++)
		be[i]->apply_idx = 0; /* stays: what is still marked below is removed */
	for (size_t j = 0; j < s->n; j++) {
		if (!s->be[j]->apply_idx)
			continue;
		s->be[j]->apply_idx = 0;
		config_log(r, "service %s: backend %s removed: in-flight RPCs finish there", s->name,
			 s->be[j]->name);
		r->stats->drains++;
	}
	count_members(r, be, mem, n, +1);
	count_members(r, s->be, s->mem, s->n, -1);
	free(s->be);
	free(s->slot);
	free(s->mem);
	free(s->addr);
	s->be = be;
	s->slot = slot;
	s->mem = mem;
	s->addr = addr;
	s->n = n;
	s->members_loaded = true;
	s->ejects.valid = false;
	choose_subset(r, s);
	service_shape(s);
	return 0;
nomem:
	for (size_t j = 0; j < s->n; j++)
		s->be[j]->apply_idx = 0;
	free(be);
	free(slot);
	free(mem);
	free(addr);
	return -ENOMEM;
}

static int route_cmp(const void *a, const void *b)
{
	const struct h2s_route_rt *x = a, *y = b;

	if (x->len != y->len)
		return x->len > y->len ? -1 : 1;
	return strcmp(x->prefix, y->prefix);
}

/* s's routes: the entries of `all` for its VIP (all are scanned: routes are few, and this
 * runs at refresh, not per RPC), longest prefix first.
 */
static int apply_routes(struct h2s_service_rt *s, const struct h2s_route_entry *all, size_t n)
{
	struct h2s_route_rt *rt = NULL;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += h2s_addr_equal(&all[i].k.vip, &s->vip);
	if (k) {
		rt = calloc(k, sizeof(*rt));
		if (!rt)
			return -ENOMEM;
	}
	k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!h2s_addr_equal(&all[i].k.vip, &s->vip))
			continue;
		memcpy(rt[k].prefix, all[i].k.prefix, sizeof(rt[k].prefix));
		rt[k].prefix[sizeof(rt[k].prefix) - 1] = '\0';
		rt[k].len = strlen(rt[k].prefix);
		rt[k++].to = all[i].r.to;
	}
	if (k)
		qsort(rt, k, sizeof(*rt), route_cmp);
	free(s->routes);
	s->routes = rt;
	s->nroutes = k;
	return 0;
}

struct h2s_service_rt *h2s_registry_route(struct h2s_registry *r, struct h2s_service_rt *svc,
					  const char *path, struct h2s_addr *to_out)
{
	for (size_t i = 0; i < svc->nroutes; i++) {
		const struct h2s_route_rt *rt = &svc->routes[i];

		if (strncmp(path, rt->prefix, rt->len))
			continue;
		*to_out = rt->to;
		return h2s_registry_service(r, &rt->to);
	}
	return svc;
}

static void service_free(struct h2s_registry *r, struct h2s_service_rt *s)
{
	if (!r->readonly)
		h2s_lb_publish(r->maps, &s->vip, NULL, 0);
	if (r->on_service_gone)
		r->on_service_gone(s, r->ctx);
	count_members(r, s->be, s->mem, s->n, -1);
	free(s->be);
	free(s->slot);
	free(s->mem);
	free(s->addr);
	free(s->routes);
	free(s);
}

static bool be_vip_wanted(const struct h2s_addr *addr, void *ctx)
{
	struct h2s_backend_rt *be = h2s_registry_backend(ctx, addr);

	return be && be->be_vip_set;
}

/* h2s_be_vip as the services with H2S_SVC_F_CAPTURE_BACKENDS want it: each of their backends
 * -> the (first) such service; nothing else.
 */
static void publish_be_vip(struct h2s_registry *r)
{
	int rc;

	if (r->readonly)
		return;
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++)
		for (struct h2s_backend_rt *be = r->be[b]; be; be = be->hnext)
			be->be_vip_set = false;
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++)
		for (struct h2s_service_rt *s = r->svc[b]; s; s = s->hnext) {
			if (!(s->cfg.flags & H2S_SVC_F_CAPTURE_BACKENDS) || s->cfg.mode != H2S_MODE_L7)
				continue;
			for (size_t k = 0; k < s->n; k++)
				if (!s->be[k]->be_vip_set) {
					s->be[k]->be_vip = s->vip;
					s->be[k]->be_vip_set = true;
				}
		}
	h2s_be_vip_prune(r->maps, be_vip_wanted, r);
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++)
		for (struct h2s_backend_rt *be = r->be[b]; be; be = be->hnext)
			if (be->be_vip_set &&
			    (rc = h2s_be_vip_put(r->maps, &be->addr, &be->be_vip)) < 0)
				log_warn("backend %s: cannot write h2s_be_vip: %s", be->name,
					 strerror(-rc));
}

/* Another loop's registry: take the health the main loop's checks found (see
 * follow_health), when it changed or (force) the members did. A member of a service without
 * checks is unchecked (what h2s_be_state says may be left from checks since removed); of one
 * with checks, as the state says, unknown (not usable) while there is none yet.
 */
static void follow_health(struct h2s_registry *r, bool force)
{
	struct h2s_backend_state st;
	uint64_t g;

	if (!r->follow_health)
		return;
	g = __atomic_load_n(r->follow_health, __ATOMIC_ACQUIRE);
	if (!force && g == r->health_seen)
		return;
	r->health_seen = g;
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++)
		for (struct h2s_service_rt *s = r->svc[b]; s; s = s->hnext)
			for (size_t k = 0; k < s->n; k++) {
				struct h2s_backend_rt *be = s->be[k];
				uint8_t was = be->health;

				if (!s->disc.health)
					be->health = H2S_HEALTH_UNCHECKED; /* whatever is left */
				else if (h2s_be_state_get(r->maps, &be->addr, &st) == 0)
					be->health = st.health;
				else
					be->health = H2S_HEALTH_UNKNOWN;
				/* As in the main loop: a check that says it serves re-admits. */
				if (be->health == H2S_HEALTH_SERVING && was != be->health &&
				    h2s_outlier_ejected(&be->out, h2s_now_ms()))
					h2s_outlier_readmit(&be->out);
				r->usable_gen += was != be->health;
			}
}

int h2s_registry_refresh(struct h2s_registry *r)
{
	uint64_t gen = h2s_maps_gen(r->maps);
	struct h2s_backend_list all;
	struct h2s_route_entry *routes;
	size_t nroutes;
	int rc;

	if (r->loaded && gen == r->gen) {
		follow_health(r, false);
		return 0;
	}
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++)
		for (struct h2s_service_rt *s = r->svc[b]; s; s = s->hnext)
			s->seen = false;
	rc = h2s_services_foreach(r->maps, load_service, r);
	if (rc < 0)
		return rc;

	/* One walk of the backends map, sorted by service: each service takes its run. */
	rc = h2s_backends_collect(r->maps, NULL, &all);
	if (rc < 0)
		return rc;
	rc = h2s_routes_collect(r->maps, NULL, &routes, &nroutes);
	if (rc < 0) {
		h2s_backend_list_free(&all);
		return rc;
	}
	for (unsigned b = 0; rc == 0 && b < H2S_REG_BUCKETS; b++)
		for (struct h2s_service_rt *s = r->svc[b]; rc == 0 && s; s = s->hnext) {
			size_t first, n;

			if (!s->seen)
				continue;
			n = h2s_backend_list_of(&all, &s->vip, &first);
			rc = apply_members(r, s, all.e + first, n);
			if (rc == 0)
				rc = apply_routes(s, routes, nroutes);
		}
	h2s_backend_list_free(&all);
	free(routes);
	if (rc < 0)
		return rc;

	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++) {
		struct h2s_service_rt **pp = &r->svc[b];

		while (*pp) {
			struct h2s_service_rt *s = *pp;

			if (s->seen) {
				pp = &s->hnext;
				continue;
			}
			config_log(r, "service %s removed", s->name);
			*pp = s->hnext;
			service_free(r, s);
		}
	}
	r->gen = gen;
	r->loaded = true;
	follow_health(r, true);
	if (r->on_reload)
		r->on_reload(r, r->ctx);
	h2s_registry_publish_lb(r);
	publish_be_vip(r);
	return 0;
}

void h2s_registry_fini(struct h2s_registry *r)
{
	/* What the maps say outlives this process (kept state, the L4 fallback's slots): the
	 * daemon going away is not its services or backends going away.
	 */
	r->readonly = true;
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++) {
		while (r->svc[b]) {
			struct h2s_service_rt *s = r->svc[b];

			r->svc[b] = s->hnext;
			service_free(r, s);
		}
	}
	/* Connections and streams are gone by now: every backend can go. */
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++) {
		while (r->be[b]) {
			struct h2s_backend_rt *be = r->be[b];

			r->be[b] = be->hnext;
			if (r->on_backend_gone)
				r->on_backend_gone(be, r->ctx);
			free(be);
		}
	}
	r->loaded = false;
}


static bool healthy(const struct h2s_backend_rt *be)
{
	switch (be->health) {
	case H2S_HEALTH_UNKNOWN:
	case H2S_HEALTH_NOT_SERVING:
	case H2S_HEALTH_UNREACHABLE:
		return false;
	default:
		return true;
	}
}

/* Usable as a member of svc: an ejected backend that svc spares (eject_view) still is. */
static bool member_usable(const struct h2s_service_rt *svc, size_t k, uint64_t now_ms)
{
	const struct h2s_backend_rt *be = svc->be[k];

	return healthy(be) && (!h2s_outlier_ejected(&be->out, now_ms) || svc->mem[k].spared);
}

/* outlier_max_ejection_percent, per service. Ejection is the backend's (one streak, one
 * back-off, wherever it serves), but whether a service may do without it is the service's
 * own: a backend that fails everywhere and is the only backend of one service, or one too
 * many of it, is ejected for the services that can spare it and still used by the others,
 * as a balancer of that service alone would do. A service that has more of its members
 * ejected than max_percent allows uses the most recently ejected ones of them again (those
 * it would not have let go: an earlier ejection stands); ejections for connect failures are
 * never spared (every RPC there would fail the same way). Worked out when something may
 * have changed (usable_gen) or when the first of its ejections ends: a pick stays O(1).
 */
static void eject_view(struct h2s_registry *r, struct h2s_service_rt *svc, uint64_t now_ms)
{
	size_t ejected = 0, allowed, spare;
	uint64_t until = UINT64_MAX;

	if (svc->ejects.valid && svc->ejects.gen == r->usable_gen && now_ms < svc->ejects.until_ms)
		return;
	for (size_t k = 0; k < svc->n; k++) {
		const struct h2s_outlier *o = &svc->be[k]->out;

		svc->mem[k].spared_new = false;
		if (!h2s_outlier_ejected(o, now_ms))
			continue;
		ejected++;
		until = o->until_ms < until ? o->until_ms : until;
	}
	allowed = (size_t)r->outlier->max_percent * svc->n / 100;
	for (spare = ejected > allowed ? ejected - allowed : 0; spare; spare--) {
		size_t best = svc->n;

		for (size_t k = 0; k < svc->n; k++) {
			const struct h2s_outlier *o = &svc->be[k]->out;

			if (svc->mem[k].spared_new || !h2s_outlier_ejected(o, now_ms) ||
			    o->reason != H2S_EJECT_OUTLIER)
				continue;
			if (best == svc->n || o->since_ms > svc->be[best]->out.since_ms)
				best = k;
		}
		if (best == svc->n)
			break; /* the rest are connect-failure ejections */
		svc->mem[best].spared_new = true;
	}
	for (size_t k = 0; k < svc->n; k++) {
		struct h2s_member *m = &svc->mem[k];

		if (m->spared_new && !m->spared) {
			if (r->stats)
				r->stats->ejections_spared++;
			if (!r->quiet)
				log_limited(H2S_LOG_WARNING,
					    "service %s: backend %s is ejected but still used here: "
					    "%zu of its %zu backends are ejected, "
					    "outlier_max_ejection_percent (%u %%) allows %zu",
					    svc->name, svc->be[k]->name, ejected, svc->n,
					    r->outlier->max_percent, allowed);
		}
		m->spared = m->spared_new;
	}
	svc->ejects.valid = true;
	svc->ejects.gen = r->usable_gen;
	svc->ejects.until_ms = until;
}

/* What retransmissions add to a backend's latency (see kernel_view). */
#define RTO_MIN_NS 1e6
#define RETRANS_PENALTY_MAX_NS 200e6
/* How often a picker may read a backend's kernel stats (one lookup each). */
#define KSTATS_READ_MS 100

/* exp(-elapsed / decay): how much of the estimate is left after `elapsed`. */
static double kept(uint64_t elapsed_ns, uint32_t decay_ms)
{
	return exp(-(double)elapsed_ns / ((double)(decay_ms ? decay_ms : 1) * 1e6));
}

/* The estimate as a pick sees it: it decays towards zero while no sample comes, so that a
 * backend once slow is tried again (and its next answer says whether it still is).
 */
static double ewma_now(const struct h2s_backend_rt *be, uint64_t now_ns, uint32_t decay_ms)
{
	if (!be->ewma_ns || now_ns <= be->ewma_at_ns)
		return be->ewma_ns;
	return be->ewma_ns * kept(now_ns - be->ewma_at_ns, decay_ms);
}

void h2s_backend_latency(struct h2s_backend_rt *be, uint64_t sample_ns, uint64_t now_ns,
			 uint32_t decay_ms)
{
	double x = (double)sample_ns;

	if (!be->ewma_ns || x > be->ewma_ns) {
		be->ewma_ns = x; /* peak: a slower answer counts at once */
	} else {
		/* Time-weighted: a sample counts by how long it has been since the last one. */
		double w = kept(now_ns > be->ewma_at_ns ? now_ns - be->ewma_at_ns : 0, decay_ms);

		be->ewma_ns = be->ewma_ns * w + x * (1 - w);
	}
	be->ewma_at_ns = now_ns;
}

/* Fold in what TCP saw since the last look, so that a backend whose path degrades is avoided
 * before its RPCs fail: its smoothed RTT is a floor for the estimate (an RPC cannot be faster
 * than a round trip; a lower RTT says nothing about the backend's own time), and each
 * retransmission costs about one retransmission timeout, taken as twice the RTT (at least
 * 1 ms, at most 200 ms for the lot).
 */
static void kernel_view(struct h2s_registry *r, struct h2s_backend_rt *be, uint64_t now_ms)
{
	struct h2s_be_kstats ks;
	uint64_t now_ns;
	double srtt_ns, cur;

	if (now_ms - be->kstats_read_ms < KSTATS_READ_MS && be->kstats_read_ms)
		return;
	be->kstats_read_ms = now_ms;
	if (h2s_be_kstats_get(r->maps, &be->addr, &ks) < 0)
		return;
	now_ns = h2s_now_ns();
	srtt_ns = (double)ks.srtt_us * 1000;
	cur = ewma_now(be, now_ns, r->ewma_decay_ms);
	if (ks.updated_ns != be->kstats_updated_ns && srtt_ns > cur) {
		h2s_backend_latency(be, (uint64_t)srtt_ns, now_ns, r->ewma_decay_ms);
		cur = srtt_ns; /* a peak sets the estimate: a penalty below goes on top of it */
	}
	if (be->kstats_updated_ns && ks.retrans > be->kstats_retrans) {
		double rto = srtt_ns * 2 > RTO_MIN_NS ? srtt_ns * 2 : RTO_MIN_NS,
		       penalty = rto * (double)(ks.retrans - be->kstats_retrans);

		penalty = penalty < RETRANS_PENALTY_MAX_NS ? penalty : RETRANS_PENALTY_MAX_NS;
		h2s_backend_latency(be, (uint64_t)(cur + penalty), now_ns, r->ewma_decay_ms);
	}
	be->kstats_updated_ns = ks.updated_ns ? ks.updated_ns : 1;
	be->kstats_retrans = ks.retrans;
}

/* weight (scaled by H2S_WEIGHT_SCALE), ramped during slow start: from 10 % to all of it,
 * linearly over the service's window since the member (re)joined.
 */
#define H2S_WEIGHT_SCALE 100
static uint32_t effective_weight(const struct h2s_service_rt *svc, const struct h2s_member *m,
				 uint64_t now_ms)
{
	uint64_t w = (uint64_t)m->weight * H2S_WEIGHT_SCALE;
	/* since_ms may come from a clock read after the loop's now_ms (a reload mid-turn). */
	uint64_t age = now_ms > m->since_ms ? now_ms - m->since_ms : 0;
	uint32_t window = svc->cfg.slow_start_ms;

	if (window && age < window) {
		uint64_t ramped = w * age / window, floor = w / 10;

		w = ramped > floor ? ramped : floor;
	}
	return w ? (uint32_t)w : 1;
}

/* What peak_ewma assumes of a member with no latency sample yet: the mean estimate of the
 * usable members among the first m that have one (not 0, which would send it everything until
 * its first answer; 1 ms when none has). It reads m members: taken again only when older than
 * KSTATS_READ_MS, or for another m.
 */
static double unknown_latency(struct h2s_registry *r, struct h2s_service_rt *svc, size_t m,
			      uint64_t now_ms)
{
	uint64_t now_ns;
	double sum = 0;
	size_t known = 0;

	if (svc->unknown_latency.of == m && svc->unknown_latency.at_ms &&
	    now_ms - svc->unknown_latency.at_ms < KSTATS_READ_MS)
		return svc->unknown_latency.ns;
	now_ns = h2s_now_ns();
	for (size_t k = 0; k < m; k++) {
		double l;

		if ((svc->mem[k].flags & H2S_BE_F_DRAIN) || !member_usable(svc, k, now_ms))
			continue;
		l = ewma_now(svc->be[k], now_ns, r->ewma_decay_ms);
		if (l > 0) {
			sum += l;
			known++;
		}
	}
	svc->unknown_latency.ns = known ? sum / (double)known : 1e6;
	svc->unknown_latency.at_ms = now_ms;
	svc->unknown_latency.of = m;
	return svc->unknown_latency.ns;
}

/* Member k's slot as its picker reads it (m: the members this pick chooses among). */
static void fill_slot(struct h2s_registry *r, struct h2s_service_rt *svc, size_t k, size_t m,
		      uint64_t now_ms)
{
	struct h2s_pick_slot *slot = &svc->slot[k];

	slot->inflight = svc->be[k]->inflight;
	slot->weight = effective_weight(svc, &svc->mem[k], now_ms);
	if (svc->cfg.algo != H2S_ALGO_PEAK_EWMA)
		return;
	kernel_view(r, svc->be[k], now_ms);
	slot->latency = ewma_now(svc->be[k], h2s_now_ns(), r->ewma_decay_ms);
	if (slot->latency <= 0)
		slot->latency = unknown_latency(r, svc, m, now_ms);
}

/* Is member k usable now? It becoming so is noted here: its slow start ramps from now, and its
 * round-robin state, frozen while it was out, restarts level with the others (not owed or
 * owing turns). A first member of the service (since_ms 0) is not ramped.
 */
static bool observe(struct h2s_service_rt *svc, size_t k, uint64_t now_ms)
{
	struct h2s_member *m = &svc->mem[k];
	bool u = member_usable(svc, k, now_ms);

	if (u && !m->usable) {
		if (m->ever_usable || m->since_ms) {
			m->since_ms = now_ms;
			note_ramp(svc, now_ms);
		}
		svc->slot[k].current = 0;
	}
	m->usable = u;
	m->ever_usable |= u;
	return u;
}

/* May a pick use member k? Pass 0: usable and in the subset; pass 1: usable; pass 2: not
 * drained. `avoid` is left out of passes 0 and 1.
 */
static bool available(struct h2s_service_rt *svc, size_t k, const struct h2s_backend_rt *avoid,
		      int pass, uint64_t now_ms)
{
	bool ok = !(svc->mem[k].flags & H2S_BE_F_DRAIN);

	if (pass == 2)
		return ok;
	return observe(svc, k, now_ms) && ok && svc->be[k] != avoid &&
	       (pass == 1 || svc->mem[k].in_subset);
}

/* Mark the slots of the first m members a pick of this pass may use; returns how many. */
static size_t mark_available(struct h2s_service_rt *svc, const struct h2s_backend_rt *avoid,
			     int pass, size_t m, uint64_t now_ms)
{
	size_t up = 0;

	for (size_t k = 0; k < m; k++) {
		svc->slot[k].available = available(svc, k, avoid, pass, now_ms);
		up += svc->slot[k].available;
	}
	return up;
}

static uint32_t xorshift(void *ctx)
{
	uint32_t *x = ctx;

	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* How many members a local-first pick chooses among: nlocal while enough of them are usable
 * (h2s_locality_applies), else 0 (the pick is as for any service). Counted again only when
 * something may have changed (see struct h2s_service_rt's `local`), so that a pick stays O(1)
 * while nothing does, and the first pick after a local member is ejected, fails its health
 * checks or comes back already sees it.
 */
static size_t local_members(struct h2s_registry *r, struct h2s_service_rt *svc, uint64_t now_ms)
{
	size_t up = 0;
	uint64_t until = UINT64_MAX;

	if (!svc->nlocal)
		return 0;
	if (svc->local.valid && svc->local.gen == r->usable_gen && now_ms < svc->local.until_ms)
		return svc->local.on ? svc->nlocal : 0;
	for (size_t k = 0; k < svc->nlocal; k++) {
		const struct h2s_backend_rt *be = svc->be[k];

		if (member_usable(svc, k, now_ms))
			up++;
		else if (h2s_outlier_ejected(&be->out, now_ms) && be->out.until_ms < until)
			until = be->out.until_ms;
	}
	svc->local.on = h2s_locality_applies(up, svc->nlocal, r->locality_min_pct);
	svc->local.valid = true;
	svc->local.gen = r->usable_gen;
	svc->local.until_ms = until;
	return svc->local.on ? svc->nlocal : 0;
}

/* A random available member among the first m (of the subset) other than `not`, by drawing at
 * most QUICK_TRIES members: uniform over them all when it finds one (each draw is). -1: none
 * found.
 */
#define QUICK_TRIES 8
static int random_available(struct h2s_registry *r, struct h2s_service_rt *svc,
			    const struct h2s_backend_rt *avoid, int not, size_t m, uint64_t now_ms)
{
	for (int t = 0; t < QUICK_TRIES; t++) {
		size_t k = xorshift(&r->rng) % m;

		if ((int)k != not && available(svc, k, avoid, 0, now_ms))
			return (int)k;
	}
	return -1;
}

/* Most picks, in O(1) rather than a read of every member: a pick within the first m members
 * (the subset, or the local members that lead it) that needs
 * no weights in its choice (round robin and least_request with equal weights, nothing
 * ramping) or only those of its two candidates (peak_ewma). Round robin takes the next
 * available member in turn, as the smooth weighted one does with equal weights; the two
 * choices are drawn uniformly among the available members, as the pickers draw them. -1: no
 * quick answer (the full pick decides).
 */
static int quick_pick(struct h2s_registry *r, struct h2s_service_rt *svc,
		      const struct h2s_backend_rt *avoid, size_t m, uint64_t now_ms)
{
	bool plain = svc->equal_weights && now_ms >= svc->ramp_until_ms;
	int a, b;

	if (m == 0)
		return -1;
	switch (svc->cfg.algo) {
	case H2S_ALGO_LEAST_REQUEST:
		if (!plain)
			return -1;
		/* fallthrough */
	case H2S_ALGO_PEAK_EWMA:
		if (m < 2)
			return -1; /* one candidate: nothing to choose between */
		a = random_available(r, svc, avoid, -1, m, now_ms);
		b = a < 0 ? -1 : random_available(r, svc, avoid, a, m, now_ms);
		if (b < 0)
			return -1;
		fill_slot(r, svc, (size_t)a, m, now_ms);
		fill_slot(r, svc, (size_t)b, m, now_ms);
		if (svc->cfg.algo == H2S_ALGO_PEAK_EWMA)
			return h2s_peak_ewma_keeps(&svc->slot[a], &svc->slot[b]) ? a : b;
		return h2s_least_request_keeps(&svc->slot[a], &svc->slot[b]) ? a : b;
	default:
		if (!plain)
			return -1;
		for (size_t t = 0; t < m; t++) {
			size_t k = svc->rr_next++ % m;

			if (available(svc, k, avoid, 0, now_ms))
				return (int)k;
		}
		return -1;
	}
}

struct h2s_backend_rt *h2s_registry_pick(struct h2s_registry *r, struct h2s_service_rt *svc,
					 const struct h2s_backend_rt *avoid,
					 const uint64_t *affinity_key, uint64_t now_ms)
{
	size_t local, m;
	int i;

	eject_view(r, svc, now_ms);
	local = local_members(r, svc, now_ms);
	m = local ? local : svc->nsubset;

	if (!affinity_key) {
		i = quick_pick(r, svc, avoid, m, now_ms);
		if (i >= 0)
			return svc->be[i];
	}
	/* The full pick. Among the local members when they take it and one but `avoid` is
	 * usable; else: nothing usable in the subset: any usable backend; none at all: try
	 * every backend that is not drained rather than fail untried. Affinity looks past the
	 * subset, so that a key lands on the same backend from every node (and, local-first,
	 * on the same local one from every node that has the same local set).
	 */
	if (!local || !mark_available(svc, avoid, 0, local, now_ms)) {
		m = svc->nsubset;
		if (affinity_key || !mark_available(svc, avoid, 0, m, now_ms)) {
			m = svc->n;
			if (!mark_available(svc, avoid, 1, m, now_ms))
				mark_available(svc, avoid, 2, m, now_ms);
		}
	}
	if (affinity_key) {
		/* Configured weights, not ramped ones: a key's backend must not move while a
		 * slow start runs.
		 */
		for (size_t k = 0; k < m; k++)
			svc->slot[k].weight = svc->mem[k].weight;
		i = h2s_pick_affinity(svc->slot, svc->addr, m, *affinity_key);
		return i < 0 ? NULL : svc->be[i];
	}
	for (size_t k = 0; k < m; k++)
		if (svc->slot[k].available)
			fill_slot(r, svc, k, m, now_ms);
	switch (svc->cfg.algo) {
	case H2S_ALGO_LEAST_REQUEST:
		i = h2s_pick_least_request(svc->slot, m, xorshift, &r->rng);
		break;
	case H2S_ALGO_PEAK_EWMA:
		i = h2s_pick_peak_ewma(svc->slot, m, xorshift, &r->rng);
		break;
	default:
		i = h2s_pick_round_robin(svc->slot, m);
	}
	return i < 0 ? NULL : svc->be[i];
}

void h2s_registry_each_service(struct h2s_registry *r,
			       void (*fn)(struct h2s_service_rt *s, void *arg), void *arg)
{
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++)
		for (struct h2s_service_rt *s = r->svc[b], *next; s; s = next) {
			next = s->hnext;
			fn(s, arg);
		}
}

void h2s_registry_each_backend(struct h2s_registry *r,
			       void (*fn)(struct h2s_backend_rt *be, void *arg), void *arg)
{
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++)
		for (struct h2s_backend_rt *be = r->be[b], *next; be; be = next) {
			next = be->hnext;
			fn(be, arg);
		}
}

/* Up to H2S_LB_SLOTS_MAX slots for n backends: weight w gets w slots when they all fit, else a
 * share of them (at least one each, while they last).
 */
static uint32_t fill_slots(struct h2s_addr *out, struct h2s_backend_rt *const *be,
			   const uint32_t *w, size_t n)
{
	uint64_t total = 0;
	uint32_t k = 0;

	for (size_t i = 0; i < n; i++)
		total += w[i];
	for (size_t i = 0; i < n && k < H2S_LB_SLOTS_MAX; i++) {
		uint64_t share = total <= H2S_LB_SLOTS_MAX ? w[i] : w[i] * H2S_LB_SLOTS_MAX / total;

		for (uint64_t j = 0; j < (share ? share : 1) && k < H2S_LB_SLOTS_MAX; j++)
			out[k++] = be[i]->addr;
	}
	return k;
}

/* The same choice a pick makes, for the connect hooks to use when no daemon accepts: usable
 * backends of the VIP's family, else every one that is not drained.
 */
static void publish_lb(struct h2s_registry *r, struct h2s_service_rt *s, uint64_t now)
{
	struct h2s_backend_rt *cand[H2S_LB_SLOTS_MAX];
	uint32_t w[H2S_LB_SLOTS_MAX], n;
	struct h2s_addr slots[H2S_LB_SLOTS_MAX];
	size_t c = 0;

	eject_view(r, s, now);
	for (int pass = 0; pass < 2 && c == 0; pass++)
		for (size_t k = 0; k < s->n && c < H2S_LB_SLOTS_MAX; k++) {
			struct h2s_backend_rt *be = s->be[k];

			if ((s->mem[k].flags & H2S_BE_F_DRAIN) ||
			    h2s_addr_is_v4(&be->addr) != h2s_addr_is_v4(&s->vip) ||
			    (pass == 0 && !member_usable(s, k, now)))
				continue;
			cand[c] = be;
			w[c++] = s->mem[k].weight;
		}
	n = fill_slots(slots, cand, w, c);
	if (r->readonly ||
	    (s->lb_written && n == s->nlb && !memcmp(slots, s->lb, n * sizeof(slots[0]))))
		return;
	if (h2s_lb_publish(r->maps, &s->vip, slots, n) < 0) {
		log_warn("service %s: cannot write its fallback slots", s->name);
		return;
	}
	memcpy(s->lb, slots, n * sizeof(slots[0]));
	s->nlb = n;
	s->lb_written = true;
}

void h2s_registry_publish_lb(struct h2s_registry *r)
{
	uint64_t now = h2s_now_ms();

	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++)
		for (struct h2s_service_rt *s = r->svc[b]; s; s = s->hnext)
			publish_lb(r, s, now);
}

void h2s_backend_publish_state(struct h2s_registry *r, struct h2s_backend_rt *be)
{
	struct h2s_backend_state st = {
		.health = be->health,
		.eject = be->out.reason,
		.fail_streak = be->out.streak,
		.ejections = be->out.ejections,
		.inflight = be->inflight + be->other_loops.inflight,
		.ejected_until_ms = be->out.until_ms,
		.rpcs = be->rpcs + be->other_loops.rpcs,
		.failures = be->out.failures,
		.latency_us = (__u32)(be->ewma_ns / 1000),
	};

	if (!r->readonly)
		h2s_be_state_put(r->maps, &be->addr, &st);
}

void h2s_backend_connect_failed(struct h2s_registry *r, struct h2s_backend_rt *be)
{
	uint64_t now = h2s_now_ms();

	struct h2s_be_stats *bs = h2s_stats_backend(r->stats, &be->addr);

	h2s_outlier_failure(&be->out, r->outlier, now, true, true);
	r->usable_gen++;
	if (bs) {
		bs->connect_failures++;
		bs->ejections[H2S_EJECT_CONNECT]++;
	}
	log_warn("backend %s: connect failed (%u in a row): ejected for %llu ms", be->name,
		 be->out.streak, (unsigned long long)(be->out.until_ms - now));
	h2s_backend_publish_state(r, be);
}

void h2s_backend_rpc_failed(struct h2s_registry *r, struct h2s_backend_rt *be, const char *why)
{
	uint64_t now = h2s_now_ms();

	/* Always allowed here: max_percent is each service's to apply (eject_view). */
	if (h2s_outlier_failure(&be->out, r->outlier, now, false, true)) {
		struct h2s_be_stats *bs = h2s_stats_backend(r->stats, &be->addr);

		r->usable_gen++;

		if (bs)
			bs->ejections[H2S_EJECT_OUTLIER]++;
		log_warn("backend %s: %u failed RPCs in a row (last: %s): ejected for %llu ms",
			 be->name, r->outlier->consecutive, why,
			 (unsigned long long)(be->out.until_ms - now));
	}
	h2s_backend_publish_state(r, be);
}

void h2s_backend_ok(struct h2s_registry *r, struct h2s_backend_rt *be)
{
	if (!be->out.streak && !be->out.ejections)
		return;
	if (be->out.ejections)
		log_info("backend %s: working again", be->name);
	h2s_outlier_success(&be->out);
	r->usable_gen++;
	h2s_backend_publish_state(r, be);
}

void h2s_backend_set_health(struct h2s_registry *r, struct h2s_backend_rt *be, uint8_t health)
{
	if (be->health == health)
		return;
	if (health != H2S_HEALTH_UNCHECKED)
		log_info("backend %s: health %s -> %s", be->name, h2s_health_name(be->health),
			 h2s_health_name(health));
	be->health = health;
	r->usable_gen++;
	{
		struct h2s_be_stats *bs = h2s_stats_backend(r->stats, &be->addr);

		if (bs) {
			bs->health = health;
			bs->health_changed = h2s_unix_now();
		}
	}
	/* A health check that says it serves re-admits an ejected backend at once. */
	if (health == H2S_HEALTH_SERVING && h2s_outlier_ejected(&be->out, h2s_now_ms()))
		h2s_outlier_readmit(&be->out);
	h2s_backend_publish_state(r, be);
	__atomic_add_fetch(&r->health_gen, 1, __ATOMIC_RELEASE); /* the other loops follow */
}
