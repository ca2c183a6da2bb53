/* discovery.c — see discovery.h. */
#include "discovery.h"

#include "config.h"
#include "dns.h"
#include "health.h"
#include "kube.h"
#include "log.h"
#include "plane.h"
#include "resolver.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void sync_resolver(struct h2s_service_rt *s, void *arg)
{
	struct h2s_sources *src = arg;

	if (s->resolver && memcmp(&s->resolver->cfg, &s->disc, sizeof(s->disc)) == 0)
		return;
	h2s_resolver_free(s->resolver);
	s->resolver = NULL;
	if (s->disc.resolver != H2S_RES_STATIC)
		s->resolver = h2s_resolver_new(src, &s->vip, &s->disc);
}

/* Which health service each backend should be checked for (the first service asking). */
static void clear_want(struct h2s_backend_rt *be, void *arg)
{
	(void)arg;
	be->hc_want = NULL;
}

static void mark_want(struct h2s_service_rt *s, void *arg)
{
	(void)arg;
	if (!s->disc.health)
		return;
	for (size_t k = 0; k < s->n; k++)
		if (!s->be[k]->hc_want)
			s->be[k]->hc_want = s->disc.health_service;
}

static void sync_health(struct h2s_backend_rt *be, void *arg)
{
	struct h2s_plane *p = arg;

	if (be->hc && (!be->hc_want || strcmp(h2s_health_service(be->hc), be->hc_want) != 0)) {
		h2s_health_stop(be->hc);
		be->hc = NULL;
		h2s_backend_set_health(&p->reg, be, H2S_HEALTH_UNCHECKED);
	}
	if (!be->hc && be->hc_want)
		be->hc = h2s_health_start(p, be, be->hc_want);
}

static void on_reload(struct h2s_registry *r, void *ctx)
{
	struct h2s_sources *src = ctx;

	if (src->stopped)
		return; /* resolving and health checking are the next daemon's job now */
	h2s_registry_each_service(r, sync_resolver, src);
	h2s_registry_each_backend(r, clear_want, NULL);
	h2s_registry_each_service(r, mark_want, NULL);
	h2s_registry_each_backend(r, sync_health, src->p);
}

static void on_service_gone(struct h2s_service_rt *s, void *ctx)
{
	(void)ctx;
	h2s_resolver_free(s->resolver);
	s->resolver = NULL;
}

static void on_backend_gone(struct h2s_backend_rt *be, void *ctx)
{
	struct h2s_sources *src = ctx;

	h2s_health_stop(be->hc);
	be->hc = NULL;
	/* Where it ran (a source wrote it) means nothing once no service lists it. */
	if (src->p->maps && !src->p->reg.readonly)
		h2s_be_topo_del(src->p->maps, &be->addr);
}

int h2s_discovery_init(struct h2s_sources *src, struct h2s_plane *p, const char *dns_servers,
		       const struct h2s_kube_opts *kube, char *err, size_t errlen)
{
	src->p = p;
	snprintf(src->dns_servers, sizeof(src->dns_servers), "%s", dns_servers ? dns_servers : "");
	p->reg.on_reload = on_reload;
	p->reg.on_service_gone = on_service_gone;
	p->reg.on_backend_gone = on_backend_gone;
	p->reg.ctx = src;
	if (kube && kube->on) {
		char why[400];

		src->kube = h2s_kube_start(src, kube, why, sizeof(why));
		if (!src->kube) {
			snprintf(err, errlen, "kubernetes: %s", why);
			return -EINVAL;
		}
	}
	return 0;
}

/* Health checks only: what the maps say of the backends stays for the next daemon. */
static void stop_health(struct h2s_backend_rt *be, void *arg)
{
	(void)arg;
	h2s_health_stop(be->hc);
	be->hc = NULL;
}

void h2s_discovery_fini(struct h2s_sources *src)
{
	if (!src->p)
		return; /* never started */
	src->stopped = true;
	h2s_kube_stop(src->kube);
	src->kube = NULL;
	h2s_registry_each_service(&src->p->reg, on_service_gone, src);
	h2s_registry_each_backend(&src->p->reg, stop_health, src);
	h2s_dns_free(src->dns); /* after the resolvers: their pending queries end here */
}
