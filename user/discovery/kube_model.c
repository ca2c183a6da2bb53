/* kube_model.c — see kube_model.h. Field names and meanings are the Kubernetes API's (core/v1
 * Service, discovery.k8s.io/v1 EndpointSlice, core/v1 Node).
 */
#include "kube_model.h"

#include "addr.h"
#include "spec.h"
#include "strbuf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *str_at(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A JSON boolean, or dflt when absent or null (the API leaves unknown conditions out). */
static bool bool_at(const json_t *obj, const char *key, bool dflt)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

int h2s_kube_slice_owner(const json_t *slice, char key[H2S_KUBE_KEY_MAX])
{
	const json_t *md = json_object_get(slice, "metadata");
	const char *svc = str_at(json_object_get(md, "labels"), "kubernetes.io/service-name");
	const char *ns = str_at(md, "namespace");

	if (!svc || !*svc || strlen(svc) > 63 || !ns || strlen(ns) > 63)
		return -ENOENT;
	snprintf(key, H2S_KUBE_KEY_MAX, "%.63s/%.63s", ns, svc);
	return 0;
}

static int parse_ip(const char *text, struct h2s_addr *a)
{
	struct in_addr v4;
	struct in6_addr v6;

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &v4) == 1) {
		h2s_addr_set4(a, v4.s_addr, 0);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, text, &v6) == 1) {
		memcpy(a->ip6, &v6, sizeof(a->ip6));
		return AF_INET6;
	}
	return -EINVAL;
}

/* Annotations and the service spec key each one sets (spec.h: the config file's key). */
static const struct {
	const char *annotation; /* after H2S_KUBE_ANNOTATION_PREFIX */
	const char *key;
} knobs[] = {
	{ "algo", "algo" },
	{ "mode", "mode" },
	{ "subset", "subset" },
	{ "slow-start-ms", "slow_start_ms" },
	{ "affinity-header", "affinity_header" },
	{ "health-service", "health_service" },
};
#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))

enum balance { BALANCE_AUTO, BALANCE_OFF, BALANCE_ALL };

static int apply_annotations(const json_t *ann, struct h2s_kube_svc *out, enum balance *bal,
			     char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	char why[200];
	size_t plen = strlen(H2S_KUBE_ANNOTATION_PREFIX);

	*bal = BALANCE_AUTO;
	json_object_foreach((json_t *)ann, k, v) {
		const char *what;
		size_t i;

		if (strncmp(k, H2S_KUBE_ANNOTATION_PREFIX, plen))
			continue;
		what = k + plen;
		if (!json_is_string(v))
			return h2s_einval(err, errlen, "annotation %s: not a string", k);
		if (!strcmp(what, "balance")) {
			const char *t = json_string_value(v);

			if (!strcmp(t, "off"))
				*bal = BALANCE_OFF;
			else if (!strcmp(t, "per-rpc"))
				*bal = BALANCE_ALL;
			else
				return h2s_einval(err, errlen,
						  "annotation %s: '%s' is not off or per-rpc", k, t);
			continue;
		}
		for (i = 0; i < NKNOBS && strcmp(what, knobs[i].annotation); i++)
			;
		if (i == NKNOBS)
			return h2s_einval(err, errlen,
					  "annotation %s: unknown (h2steer.io/ knows balance, algo, "
					  "mode, subset, slow-start-ms, affinity-header, "
					  "health-service)",
					  k);
		if (h2s_spec_set(&out->spec, &out->disc, knobs[i].key, json_string_value(v), why,
				 sizeof(why)) < 0)
			return h2s_einval(err, errlen, "annotation %s: %s", k, why);
	}
	return 0;
}

static bool grpc_port(const json_t *p)
{
	const char *app = str_at(p, "appProtocol"), *name = str_at(p, "name");

	if (app)
		return !strcmp(app, "grpc") || !strcmp(app, "kubernetes.io/h2c") ||
		       !strcmp(app, "h2c");
	return name && (!strcmp(name, "grpc") || !strncmp(name, "grpc-", 5));
}

static enum h2s_kube_locality locality_of(const char *td)
{
	if (!td)
		return H2S_KUBE_LOC_ANY;
	if (!strcmp(td, "PreferSameNode"))
		return H2S_KUBE_LOC_NODE;
	if (!strcmp(td, "PreferClose") || !strcmp(td, "PreferSameZone"))
		return H2S_KUBE_LOC_ZONE;
	return H2S_KUBE_LOC_ANY; /* a value of a later release: no preference, as kube-proxy */
}

int h2s_kube_service_parse(const json_t *svc, const struct h2s_kube_select *sel,
			   struct h2s_kube_svc *out, char *err, size_t errlen)
{
	const json_t *md = json_object_get(svc, "metadata");
	const json_t *spec = json_object_get(svc, "spec");
	const json_t *ips = json_object_get(spec, "clusterIPs");
	const json_t *ports = json_object_get(spec, "ports");
	const char *name = str_at(md, "name"), *ns = str_at(md, "namespace");
	const char *type = str_at(spec, "type"), *one_ip = str_at(spec, "clusterIP");
	enum balance bal;
	size_t i;
	const json_t *p;

	memset(out, 0, sizeof(*out));
	if (!name || !ns || strlen(name) > 63 || strlen(ns) > 63 || !json_is_object(spec))
		return h2s_einval(err, errlen, "not a Service (metadata.name, namespace or spec missing)");
	snprintf(out->ns, sizeof(out->ns), "%s", ns);
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->spec.algo = H2S_ALGO_ROUND_ROBIN;
	out->spec.mode = H2S_MODE_L7;
	if (apply_annotations(json_object_get(md, "annotations"), out, &bal, err, errlen) < 0)
		return -EINVAL;
	if (bal == BALANCE_OFF) {
		snprintf(err, errlen, "annotated h2steer.io/balance: off");
		return 0;
	}
	if (type && !strcmp(type, "ExternalName")) {
		snprintf(err, errlen, "ExternalName: no cluster IP");
		return 0;
	}
	/* clusterIPs lists one address per family (the first is clusterIP); older objects may
	 * only have clusterIP. "None" is a headless Service: clients resolve its pods directly.
	 */
	if (json_is_array(ips) && json_array_size(ips)) {
		json_array_foreach(ips, i, p) {
			const char *t = json_string_value(p);

			if (!t || !strcmp(t, "None") || !*t)
				continue;
			if (out->nip == H2S_KUBE_IPS_MAX || parse_ip(t, &out->ip[out->nip]) < 0)
				return h2s_einval(err, errlen, "spec.clusterIPs[%zu]: '%s' is not an IP "
						  "address", i, t);
			out->nip++;
		}
	} else if (one_ip && strcmp(one_ip, "None") && *one_ip) {
		if (parse_ip(one_ip, &out->ip[0]) < 0)
			return h2s_einval(err, errlen, "spec.clusterIP: '%s' is not an IP address",
					  one_ip);
		out->nip = 1;
	}
	if (!out->nip) {
		snprintf(err, errlen, "headless (no cluster IP)");
		return 0;
	}
	json_array_foreach(ports, i, p) {
		const char *proto = str_at(p, "protocol"), *pname = str_at(p, "name");
		json_int_t port = json_integer_value(json_object_get(p, "port"));
		struct h2s_kube_port *kp;

		if ((proto && strcmp(proto, "TCP")) || port < 1 || port > 65535)
			continue;
		if (bal != BALANCE_ALL && !sel->all_ports && !grpc_port(p))
			continue;
		if (out->nport == H2S_KUBE_PORTS_MAX)
			return h2s_einval(err, errlen, "more than %d balanced ports",
					  H2S_KUBE_PORTS_MAX);
		kp = &out->port[out->nport++];
		snprintf(kp->name, sizeof(kp->name), "%s", pname ? pname : "");
		kp->port = (uint16_t)port;
	}
	if (!out->nport) {
		snprintf(err, errlen, "no gRPC port (appProtocol grpc/h2c or a port named grpc*)");
		return 0;
	}
	out->locality = locality_of(str_at(spec, "trafficDistribution"));
	return 1;
}

static bool hinted(const json_t *hints, const char *list, const char *want)
{
	size_t i;
	const json_t *h;

	if (!want || !*want)
		return false;
	json_array_foreach(json_object_get(hints, list), i, h) {
		const char *n = str_at(h, "name");

		if (n && !strcmp(n, want))
			return true;
	}
	return false;
}

static bool is_local(const json_t *ep, enum h2s_kube_locality loc, const struct h2s_kube_where *me)
{
	const json_t *hints = json_object_get(ep, "hints");
	const char *node = str_at(ep, "nodeName"), *zone = str_at(ep, "zone");

	switch (loc) {
	case H2S_KUBE_LOC_NODE:
		return (node && me->node && *me->node && !strcmp(node, me->node)) ||
		       hinted(hints, "forNodes", me->node);
	case H2S_KUBE_LOC_ZONE:
		/* The EndpointSlice controller's hints say where it wants traffic to go; without
		 * them, the endpoint's own zone.
		 */
		if (json_object_get(hints, "forZones"))
			return hinted(hints, "forZones", me->zone);
		return zone && me->zone && *me->zone && !strcmp(zone, me->zone);
	default:
		return false;
	}
}

static int eps_push(struct h2s_kube_eps *out, const struct h2s_kube_ep *e)
{
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 16;
		struct h2s_kube_ep *n = realloc(out->e, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		out->e = n;
		out->cap = cap;
	}
	out->e[out->n++] = *e;
	return 0;
}

int h2s_kube_slice_endpoints(const json_t *slice, const char *port_name, int family,
			     enum h2s_kube_locality loc, const struct h2s_kube_where *me,
			     struct h2s_kube_eps *out, char *err, size_t errlen)
{
	const char *type = str_at(slice, "addressType");
	const json_t *p, *ep;
	json_int_t port = 0;
	size_t i;
	int added = 0;

	if (!type || strcmp(type, family == AF_INET ? "IPv4" : "IPv6"))
		return 0; /* the other family's slice, or FQDN */
	/* The slice's port of that name is the Service's targetPort resolved on the pods. */
	json_array_foreach(json_object_get(slice, "ports"), i, p) {
		const char *n = str_at(p, "name"), *proto = str_at(p, "protocol");

		if (strcmp(n ? n : "", port_name) || (proto && strcmp(proto, "TCP")))
			continue;
		port = json_integer_value(json_object_get(p, "port"));
		break;
	}
	if (port < 1 || port > 65535)
		return 0; /* no such port here (yet): no endpoints for it */
	json_array_foreach(json_object_get(slice, "endpoints"), i, ep) {
		const json_t *cond = json_object_get(ep, "conditions");
		const json_t *addrs = json_object_get(ep, "addresses");
		/* Unknown (absent) ready means ready; serving defaults to ready (the API's rule). */
		bool ready = bool_at(cond, "ready", true);
		bool serving = bool_at(cond, "serving", ready);
		bool terminating = bool_at(cond, "terminating", false);
		const char *a = json_string_value(json_array_get(addrs, 0));
		const char *node = str_at(ep, "nodeName"), *zone = str_at(ep, "zone");
		struct h2s_kube_ep e = { 0 };

		if (!(ready && !terminating) && !(serving && terminating))
			continue; /* not serving: out */
		/* Only the first address has a meaning (the API: consumers use the first). A
		 * bad one costs that endpoint only; err says so (the first one).
		 */
		if (!a || parse_ip(a, &e.addr) != family) {
			if (!err[0])
				snprintf(err, errlen, "endpoints[%zu]: %s%.64s%s", i,
					 a ? "'" : "no address", a ? a : "",
					 a ? "' is not an address of the slice's type" : "");
			continue;
		}
		e.addr.port = htons((uint16_t)port);
		e.flags = terminating ? H2S_BE_F_TERMINATING : 0;
		e.local = is_local(ep, loc, me);
		snprintf(e.node, sizeof(e.node), "%s", node ? node : "");
		snprintf(e.zone, sizeof(e.zone), "%s", zone ? zone : "");
		if (eps_push(out, &e) < 0)
			return -ENOMEM;
		added++;
	}
	return added;
}

static int ep_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct h2s_kube_ep *)a)->addr, &((const struct h2s_kube_ep *)b)->addr,
		      sizeof(struct h2s_addr));
}

size_t h2s_kube_eps_merge(struct h2s_kube_eps *eps)
{
	size_t w = 0;

	if (!eps->n)
		return 0;
	qsort(eps->e, eps->n, sizeof(eps->e[0]), ep_cmp);
	for (size_t r = 1; r < eps->n; r++) {
		struct h2s_kube_ep *k = &eps->e[w];

		if (!h2s_addr_equal(&k->addr, &eps->e[r].addr)) {
			eps->e[++w] = eps->e[r];
			continue;
		}
		k->flags &= eps->e[r].flags; /* ready in one slice: ready */
		k->local |= eps->e[r].local;
	}
	eps->n = w + 1;
	return eps->n;
}

void h2s_kube_eps_free(struct h2s_kube_eps *eps)
{
	free(eps->e);
	*eps = (struct h2s_kube_eps){ 0 };
}

void h2s_kube_node_zone(const json_t *node, char *zone, size_t len)
{
	const json_t *labels = json_object_get(json_object_get(node, "metadata"), "labels");
	const char *z = str_at(labels, "topology.kubernetes.io/zone");

	snprintf(zone, len, "%s", z ? z : "");
}
