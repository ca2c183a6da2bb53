/* discovery.h — where the backends of a loop's services come from, kept in step with the
 * registry: after every reload each service gets the resolver its config names (resolver.h;
 * DNS queries share one c-ares channel, dns.h) and each backend of a service that asks for
 * it a health checker (health.h); what the registry drops loses its resolver or checker.
 *
 * Only the main loop discovers (the other loops read what it wrote into the maps).
 */
#ifndef H2S_DISCOVERY_H
#define H2S_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

struct h2s_plane;
struct h2s_dns;
struct h2s_kube;
struct h2s_kube_opts;

struct h2s_sources {
	struct h2s_plane *p;
	struct h2s_dns *dns;   /* c-ares channel, made by the first DNS resolver */
	char dns_servers[512]; /* c-ares CSV; empty: /etc/resolv.conf */
	struct h2s_kube *kube; /* the Kubernetes source, when on (kube.h) */
	bool stopped;          /* h2s_discovery_fini ran: the node is another daemon's now */
};

/* Follow p's registry from now on (its reloads, its services and backends going away), and
 * start the Kubernetes source if kube says so. 0, or a negative errno with the reason in err.
 */
int h2s_discovery_init(struct h2s_sources *src, struct h2s_plane *p, const char *dns_servers,
		       const struct h2s_kube_opts *kube, char *err, size_t errlen);
/* Stop every resolver and health check, and for good: the registry's reloads no longer
 * start any (a daemon that leaves the node to another one calls this while it drains).
 */
void h2s_discovery_fini(struct h2s_sources *src);

#endif /* H2S_DISCOVERY_H */
