/* registry.c — see registry.h. */
#include "registry.h"

#include "addr.h"
#include "log.h"
#include "maps.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

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

static struct h2s_backend_rt *backend_find(struct h2s_registry *r, const struct h2s_addr *a)
{
	for (struct h2s_backend_rt *b = r->be[bucket(a)]; b; b = b->hnext)
		if (h2s_addr_equal(&b->addr, a))
			return b;
	return NULL;
}

static struct h2s_backend_rt *backend_get(struct h2s_registry *r, const struct h2s_addr *a)
{
	struct h2s_backend_rt *b = backend_find(r, a);
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
			free(be);
			return;
		}
	}
}

static void drop_members(struct h2s_registry *r, struct h2s_backend_rt **be, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (--be[i]->members == 0) {
			if (r->on_orphan)
				r->on_orphan(be[i], r->ctx);
			h2s_registry_release_backend(r, be[i]);
		}
	}
}

static int load_service(const struct h2s_addr *vip, const struct h2s_service *cfg, void *ctx)
{
	struct h2s_registry *r = ctx;
	struct h2s_service_rt *s = h2s_registry_service(r, vip);

	if (!s) {
		unsigned k = bucket(vip);

		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->vip = *vip;
		h2s_addr_format(vip, s->name, sizeof(s->name));
		s->hnext = r->svc[k];
		r->svc[k] = s;
		log_info("service %s added (%s)", s->name, h2s_algo_name(cfg->algo));
	} else if (s->cfg.algo != cfg->algo) {
		log_info("service %s: algorithm now %s", s->name, h2s_algo_name(cfg->algo));
	}
	s->cfg = *cfg;
	s->seen = true;
	return 0;
}

static bool has_member(const struct h2s_service_rt *s, const struct h2s_backend_rt *be)
{
	for (size_t j = 0; j < s->n; j++)
		if (s->be[j] == be)
			return true;
	return false;
}

/* Replace s's members with what the map wants. Picker state of members that stay is kept, and
 * new members are counted before old ones are dropped, so a backend that stays never looks
 * orphaned.
 */
static int apply_members(struct h2s_registry *r, struct h2s_service_rt *s,
			 const struct h2s_backend_entry *want, size_t n)
{
	struct h2s_backend_rt **be = calloc(n ? n : 1, sizeof(*be));
	struct h2s_pick_slot *slot = calloc(n ? n : 1, sizeof(*slot));

	if (!be || !slot)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		be[i] = backend_get(r, &want[i].k.backend);
		if (!be[i]) {
			for (size_t j = 0; j < i; j++)
				be[j]->members--;
			goto nomem;
		}
		be[i]->members++;
		slot[i].weight = want[i].b.weight ? want[i].b.weight : 1;
		for (size_t j = 0; j < s->n; j++)
			if (s->be[j] == be[i])
				slot[i].current = s->slot[j].current;
		if (!has_member(s, be[i]))
			log_info("service %s: backend %s added (weight %u)", s->name, be[i]->name,
				 slot[i].weight);
	}
	for (size_t j = 0; j < s->n; j++) {
		bool stays = false;

		for (size_t i = 0; i < n; i++)
			stays |= be[i] == s->be[j];
		if (!stays)
			log_info("service %s: backend %s removed", s->name, s->be[j]->name);
	}
	drop_members(r, s->be, s->n);
	free(s->be);
	free(s->slot);
	s->be = be;
	s->slot = slot;
	s->n = n;
	return 0;
nomem:
	free(be);
	free(slot);
	return -ENOMEM;
}

static void service_free(struct h2s_registry *r, struct h2s_service_rt *s)
{
	drop_members(r, s->be, s->n);
	free(s->be);
	free(s->slot);
	free(s);
}

int h2s_registry_refresh(struct h2s_registry *r)
{
	uint64_t gen = h2s_maps_gen(r->maps);
	struct h2s_backend_list all;
	int rc;

	if (r->loaded && gen == r->gen)
		return 0;
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
	for (unsigned b = 0; rc == 0 && b < H2S_REG_BUCKETS; b++)
		for (struct h2s_service_rt *s = r->svc[b]; rc == 0 && s; s = s->hnext) {
			size_t first, n;

			if (!s->seen)
				continue;
			n = h2s_backend_list_of(&all, &s->vip, &first);
			rc = apply_members(r, s, all.e + first, n);
		}
	h2s_backend_list_free(&all);
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
			log_info("service %s removed", s->name);
			*pp = s->hnext;
			service_free(r, s);
		}
	}
	r->gen = gen;
	r->loaded = true;
	return 0;
}

void h2s_registry_fini(struct h2s_registry *r)
{
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++) {
		while (r->svc[b]) {
			struct h2s_service_rt *s = r->svc[b];

			r->svc[b] = s->hnext;
			service_free(r, s);
		}
	}
	r->loaded = false;
}

static uint32_t xorshift(void *ctx)
{
	uint32_t *x = ctx;

	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

struct h2s_backend_rt *h2s_registry_pick(struct h2s_registry *r, struct h2s_service_rt *svc,
					 uint64_t now_ms)
{
	size_t up = 0;
	int i;

	for (size_t k = 0; k < svc->n; k++) {
		svc->slot[k].available = svc->be[k]->down_until_ms <= now_ms;
		svc->slot[k].inflight = svc->be[k]->inflight;
		up += svc->slot[k].available;
	}
	/* Every backend down: try them all rather than fail without trying. */
	if (!up)
		for (size_t k = 0; k < svc->n; k++)
			svc->slot[k].available = true;
	if (svc->cfg.algo == H2S_ALGO_LEAST_REQUEST)
		i = h2s_pick_least_request(svc->slot, svc->n, xorshift, &r->rng);
	else
		i = h2s_pick_round_robin(svc->slot, svc->n);
	return i < 0 ? NULL : svc->be[i];
}

void h2s_backend_connect_failed(struct h2s_backend_rt *be, uint64_t now_ms)
{
	uint64_t backoff = BACKOFF_MIN_MS;

	for (uint32_t k = 0; k < be->fail_streak && backoff < BACKOFF_MAX_MS; k++)
		backoff *= 2;
	if (backoff > BACKOFF_MAX_MS)
		backoff = BACKOFF_MAX_MS;
	be->fail_streak++;
	be->down_until_ms = now_ms + backoff;
	log_warn("backend %s: connect failed (%u in a row), not picked for %llu ms", be->name,
		 be->fail_streak, (unsigned long long)backoff);
}

void h2s_backend_connect_ok(struct h2s_backend_rt *be)
{
	if (be->fail_streak)
		log_info("backend %s: reachable again", be->name);
	be->fail_streak = 0;
	be->down_until_ms = 0;
}
