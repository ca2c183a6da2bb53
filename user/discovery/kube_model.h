/* kube_model.h — what h2steer reads in Kubernetes objects, as pure functions: a v1 Service
 * (as the API serves it, JSON) to the services it makes, a discovery.k8s.io/v1 EndpointSlice to
 * the backends of one of them. No I/O, no state: kube.c keeps the objects and applies these.
 *
 * Which ports of a Service are balanced per RPC: every TCP port of a Service with a cluster IP
 * whose appProtocol is grpc, kubernetes.io/h2c or h2c, or whose name is grpc or grpc-*; none
 * when the Service is annotated h2steer.io/balance: "off"; all of them when "per-rpc" (or when
 * the operator widened the selection).
 */
#ifndef H2S_KUBE_MODEL_H
#define H2S_KUBE_MODEL_H

#include "h2s_maps.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define H2S_KUBE_ANNOTATION_PREFIX "h2steer.io/"
#define H2S_KUBE_PORTS_MAX 64 /* ports of one Service we balance (the API allows more) */
#define H2S_KUBE_IPS_MAX 2    /* clusterIPs: one per family */
#define H2S_KUBE_KEY_MAX 320  /* "NAMESPACE/NAME" */

/* trafficDistribution as far as picks go: prefer this node's or this zone's endpoints. */
enum h2s_kube_locality {
	H2S_KUBE_LOC_ANY = 0,
	H2S_KUBE_LOC_NODE, /* PreferSameNode */
	H2S_KUBE_LOC_ZONE, /* PreferClose, PreferSameZone */
};

struct h2s_kube_port {
	char name[64]; /* the Service port's name ("" when it has one unnamed port) */
	uint16_t port;
};

struct h2s_kube_svc {
	char ns[64], name[64];
	struct h2s_addr ip[H2S_KUBE_IPS_MAX]; /* cluster IPs, port 0 */
	size_t nip;
	struct h2s_kube_port port[H2S_KUBE_PORTS_MAX]; /* the balanced ones */
	size_t nport;
	struct h2s_service spec;   /* defaults, then the annotations */
	struct h2s_discovery disc; /* static resolver; health checks if annotated */
	enum h2s_kube_locality locality;
};

/* Which Services the operator wants (kubernetes: in the config). */
struct h2s_kube_select {
	bool all_ports; /* every TCP port of every Service with a cluster IP */
};

/* 1: out holds what to balance; 0: nothing of it is balanced (why says why, for debug logs);
 * -EINVAL: a bad object or annotation, the reason in err (the Service is then skipped).
 */
int h2s_kube_service_parse(const json_t *svc, const struct h2s_kube_select *sel,
			   struct h2s_kube_svc *out, char *err, size_t errlen);

/* "NAMESPACE/SERVICE" a slice belongs to (label kubernetes.io/service-name); -ENOENT: none. */
int h2s_kube_slice_owner(const json_t *slice, char key[H2S_KUBE_KEY_MAX]);

/* Who this node is, for locality. */
struct h2s_kube_where {
	const char *node, *zone; /* "" when unknown */
};

struct h2s_kube_ep {
	struct h2s_addr addr; /* with the slice's port for the Service port */
	uint8_t flags;        /* H2S_BE_F_TERMINATING */
	bool local;           /* preferred under the Service's locality */
	char node[64], zone[64];
};

struct h2s_kube_eps {
	struct h2s_kube_ep *e;
	size_t n, cap;
};

/* Append the endpoints slice gives the Service port `port_name` for family (AF_INET or
 * AF_INET6): ready ones, and serving-but-terminating ones flagged H2S_BE_F_TERMINATING; the
 * others are left out, and so is an endpoint without a usable address (err then says which,
 * if err was empty). Returns how many were added, or -ENOMEM.
 */
int h2s_kube_slice_endpoints(const json_t *slice, const char *port_name, int family,
			     enum h2s_kube_locality loc, const struct h2s_kube_where *me,
			     struct h2s_kube_eps *out, char *err, size_t errlen);
/* Sort by address and merge duplicates (an endpoint in two slices while they hand over): one
 * that is ready anywhere is ready, local anywhere is local. Returns the new count.
 */
size_t h2s_kube_eps_merge(struct h2s_kube_eps *eps);
void h2s_kube_eps_free(struct h2s_kube_eps *eps);

/* topology.kubernetes.io/zone of a v1 Node ("" when it has none). */
void h2s_kube_node_zone(const json_t *node, char *zone, size_t len);

#endif /* H2S_KUBE_MODEL_H */
