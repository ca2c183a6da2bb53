/* resolver.h — where a service's backends come from when they are not given by hand. One small
 * interface with two implementations: DNS (resolver_dns.c: A/AAAA or SRV through c-ares,
 * re-resolved at the answers' TTL) and a file (resolver_file.c: re-read when it changes).
 *
 * A resolver hands complete sets to h2s_resolver_publish(), which writes the difference into
 * the backends map as entries of its source. A failed lookup never empties a live service: the
 * last good set stays until the failure has lasted a grace period.
 */
#ifndef H2S_RESOLVER_H
#define H2S_RESOLVER_H

#include "h2s_maps.h"
#include "maps.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_sources;
struct h2s_resolver;

struct h2s_resolver_ops {
	enum h2s_source source;
	/* Begin (asynchronously); 0 or a negative errno with a reason in err. */
	int (*start)(struct h2s_resolver *r, char *err, size_t errlen);
	/* Stop and free the implementation's state (impl). */
	void (*stop)(struct h2s_resolver *r);
};

struct h2s_resolver {
	const struct h2s_resolver_ops *ops;
	struct h2s_sources *src; /* its loop's discovery (src->p: the data plane) */
	struct h2s_addr vip;
	char vip_name[64];
	struct h2s_discovery cfg;
	void *impl;
	/* Last good set and failure bookkeeping, shared by the implementations. */
	bool have_good;
	bool answered;             /* at least one lookup finished (either way): for /readyz */
	uint64_t failing_since_ms; /* 0 while lookups succeed */
};

extern const struct h2s_resolver_ops h2s_resolver_dns_ops, h2s_resolver_file_ops;

/* Create and start the resolver cfg names for vip (NULL for static services or on error). */
struct h2s_resolver *h2s_resolver_new(struct h2s_sources *src, const struct h2s_addr *vip,
				      const struct h2s_discovery *cfg);
void h2s_resolver_free(struct h2s_resolver *r);

/* A lookup produced set (normalised here: sorted, duplicates merged). */
void h2s_resolver_publish(struct h2s_resolver *r, struct h2s_endpoint *set, size_t n);
/* A lookup failed (why: for the log). Keeps the last good set for the grace period, then
 * empties the service. Returns true while the grace period lasts.
 */
bool h2s_resolver_failed(struct h2s_resolver *r, const char *why);

/* Sort by address and merge duplicates (keeping the largest weight); returns the new count. */
size_t h2s_endpoints_normalize(struct h2s_endpoint *set, size_t n);

/* Parse a backends file: one "ADDR:PORT [WEIGHT]" per line, '#' starts a comment. On success
 * *out (malloc'ed) and *n hold the set; on error -EINVAL and a reason naming the line in err.
 */
int h2s_backends_file_parse(const char *text, size_t len, struct h2s_endpoint **out, size_t *n,
			    char *err, size_t errlen);

#endif /* H2S_RESOLVER_H */
