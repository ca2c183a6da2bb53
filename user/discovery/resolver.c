/* resolver.c — see resolver.h. */
#include "resolver.h"

#include "addr.h"
#include "discovery.h"
#include "plane.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct h2s_resolver *h2s_resolver_new(struct h2s_sources *src, const struct h2s_addr *vip,
				      const struct h2s_discovery *cfg)
{
	const struct h2s_resolver_ops *ops = cfg->resolver == H2S_RES_DNS    ? &h2s_resolver_dns_ops
					     : cfg->resolver == H2S_RES_FILE ? &h2s_resolver_file_ops
									     : NULL;
	struct h2s_resolver *r;
	char err[256];

	if (!ops)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ops = ops;
	r->src = src;
	r->vip = *vip;
	r->cfg = *cfg;
	h2s_addr_format(vip, r->vip_name, sizeof(r->vip_name));
	if (ops->start(r, err, sizeof(err)) < 0) {
		log_err("service %s: %s resolver for %s: %s", r->vip_name,
			h2s_resolver_name(cfg->resolver), cfg->name, err);
		free(r);
		return NULL;
	}
	log_info("service %s: backends from %s %s", r->vip_name, h2s_resolver_name(cfg->resolver),
		 cfg->name);
	return r;
}

void h2s_resolver_free(struct h2s_resolver *r)
{
	if (!r)
		return;
	r->ops->stop(r);
	free(r);
}

static int cmp_endpoint(const void *a, const void *b)
{
	return memcmp(&((const struct h2s_endpoint *)a)->addr, &((const struct h2s_endpoint *)b)->addr,
		      sizeof(struct h2s_addr));
}

size_t h2s_endpoints_normalize(struct h2s_endpoint *set, size_t n)
{
	size_t out = 0;

	if (!n)
		return 0;
	qsort(set, n, sizeof(*set), cmp_endpoint);
	for (size_t i = 0; i < n; i++) {
		if (out && h2s_addr_equal(&set[out - 1].addr, &set[i].addr)) {
			if (set[i].weight > set[out - 1].weight)
				set[out - 1].weight = set[i].weight;
			continue;
		}
		set[out++] = set[i];
	}
	return out;
}

static void publish(struct h2s_resolver *r, struct h2s_endpoint *set, size_t n)
{
	int changes;

	n = h2s_endpoints_normalize(set, n);
	changes = h2s_backends_publish(r->src->p->maps, &r->vip, r->ops->source, set, n);
	if (changes < 0)
		log_err("service %s: cannot store resolved backends: %s", r->vip_name,
			strerror(-changes));
	else if (changes > 0)
		h2s_plane_refresh_soon(r->src->p); /* not now: this may run inside a reload */
}

void h2s_resolver_publish(struct h2s_resolver *r, struct h2s_endpoint *set, size_t n)
{
	struct h2s_svc_stats *ss = h2s_stats_service(&r->src->p->stats, &r->vip);

	if (ss) {
		ss->lookups_ok++;
		ss->last_lookup_ok = h2s_unix_now();
		ss->resolved = (uint32_t)n;
	}
	if (r->failing_since_ms)
		log_notice("service %s: %s %s answers again (%zu backends)", r->vip_name,
			   h2s_resolver_name(r->cfg.resolver), r->cfg.name, n);
	r->failing_since_ms = 0;
	r->have_good = true;
	r->answered = true;
	publish(r, set, n);
}

bool h2s_resolver_failed(struct h2s_resolver *r, const char *why)
{
	uint64_t now = h2s_now_ms();
	uint64_t grace = r->src->p->set.resolver_grace_ms;
	struct h2s_svc_stats *ss = h2s_stats_service(&r->src->p->stats, &r->vip);

	if (ss)
		ss->lookups_failed++;
	r->answered = true;
	if (!r->failing_since_ms) {
		r->failing_since_ms = now;
		log_warn("service %s: %s %s failed (%s): keeping the last good backends for %llu "
			 "s",
			 r->vip_name, h2s_resolver_name(r->cfg.resolver), r->cfg.name, why,
			 (unsigned long long)grace / 1000);
	}
	if (now - r->failing_since_ms < grace)
		return true;
	if (r->have_good) {
		log_warn("service %s: %s %s has failed for %llu s (%s): its backends are removed",
			 r->vip_name, h2s_resolver_name(r->cfg.resolver), r->cfg.name,
			 (unsigned long long)grace / 1000, why);
		r->have_good = false;
		publish(r, NULL, 0);
	}
	return false;
}

int h2s_backends_file_parse(const char *text, size_t len, struct h2s_endpoint **out, size_t *n,
			    char *err, size_t errlen)
{
	struct h2s_endpoint *set = NULL;
	size_t cap = 0, cnt = 0, lineno = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
		char line[512], *tok, *save, *extra, why[160];
		struct h2s_endpoint e = { .weight = 1 };

		lineno++;
		if (l >= sizeof(line)) {
			snprintf(err, errlen, "line %zu: longer than %zu bytes", lineno,
				 sizeof(line) - 1);
			goto fail;
		}
		memcpy(line, p, l);
		line[l] = '\0';
		p = eol ? eol + 1 : end;
		if ((tok = strchr(line, '#')))
			*tok = '\0';
		tok = strtok_r(line, " \t\r", &save);
		if (!tok)
			continue;
		if (h2s_addr_parse(tok, &e.addr, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "line %zu: %s", lineno, why);
			goto fail;
		}
		if ((tok = strtok_r(NULL, " \t\r", &save))) {
			char *num_end;
			unsigned long w = strtoul(tok, &num_end, 10);

			if (*num_end || tok[0] < '0' || tok[0] > '9' || w < 1 || w > H2S_WEIGHT_MAX) {
				snprintf(err, errlen, "line %zu: weight '%s' is not in 1..%u", lineno,
					 tok, H2S_WEIGHT_MAX);
				goto fail;
			}
			e.weight = (__u32)w;
		}
		if ((extra = strtok_r(NULL, " \t\r", &save))) {
			snprintf(err, errlen, "line %zu: unexpected '%s' (expected ADDR:PORT [WEIGHT])",
				 lineno, extra);
			goto fail;
		}
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			void *np = realloc(set, ncap * sizeof(*set));

			if (!np) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
			set = np;
			cap = ncap;
		}
		set[cnt++] = e;
	}
	*out = set;
	*n = cnt;
	return 0;
fail:
	free(set);
	return -EINVAL;
}
