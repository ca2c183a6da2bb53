/* discovery.c — see discovery.h. */
#include "discovery.h"

#include "daemon.h"
#include "h2_upstream.h"
#include "health.h"
#include "log.h"
#include "resolver.h"

#include <string.h>

static void sync_resolver(struct h2s_service_rt *s, void *arg)
{
	struct h2s_daemon *d = arg;

	if (s->resolver && memcmp(&s->resolver->cfg, &s->disc, sizeof(s->disc)) == 0)
		return;
	h2s_resolver_free(s->resolver);
	s->resolver = NULL;
	if (s->disc.resolver != H2S_RES_STATIC)
		s->resolver = h2s_resolver_new(d, &s->vip, &s->disc);
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
	struct h2s_daemon *d = arg;

	if (be->hc && (!be->hc_want || strcmp(h2s_health_service(be->hc), be->hc_want) != 0)) {
		h2s_health_stop(be->hc);
		be->hc = NULL;
		h2s_backend_set_health(&d->reg, be, H2S_HEALTH_UNCHECKED);
	}
	if (!be->hc && be->hc_want)
		be->hc = h2s_health_start(d, be, be->hc_want);
}

static void on_reload(struct h2s_registry *r, void *ctx)
{
	struct h2s_daemon *d = ctx;

	if (d->left)
		return; /* resolving and health checking are the next daemon's job now */
	h2s_registry_each_service(r, sync_resolver, d);
	h2s_registry_each_backend(r, clear_want, NULL);
	h2s_registry_each_service(r, mark_want, NULL);
	h2s_registry_each_backend(r, sync_health, d);
}

static void on_service_gone(struct h2s_service_rt *s, void *ctx)
{
	(void)ctx;
	h2s_resolver_free(s->resolver);
	s->resolver = NULL;
}

static void on_backend_gone(struct h2s_backend_rt *be, void *ctx)
{
	(void)ctx;
	h2s_health_stop(be->hc);
	be->hc = NULL;
}

void h2s_discovery_init(struct h2s_daemon *d)
{
	d->reg.on_reload = on_reload;
	d->reg.on_service_gone = on_service_gone;
	d->reg.on_backend_gone = on_backend_gone;
	d->reg.on_idle = h2s_pool_idle;
	d->reg.ctx = d;
}

static void stop_health(struct h2s_backend_rt *be, void *arg)
{
	on_backend_gone(be, arg);
}

void h2s_discovery_fini(struct h2s_daemon *d)
{
	h2s_registry_each_service(&d->reg, on_service_gone, d);
	h2s_registry_each_backend(&d->reg, stop_health, d);
}
