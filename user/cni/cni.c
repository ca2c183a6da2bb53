/* cni.c — see cni.h. */
#include "cni.h"

#include "addr.h"
#include "cgroup.h"
#include "pods.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const versions[] = { H2S_CNI_VERSIONS };

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* An optional string member: absent -> def; present, it must be a non-empty string. */
static int opt_string(json_t *o, const char *key, const char *def, const char **out, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v) {
		*out = def;
		return 0;
	}
	if (!json_is_string(v) || !*json_string_value(v))
		return fail(err, errlen, H2S_CNI_ERR_CONFIG, "%s: not a non-empty string", key);
	*out = json_string_value(v);
	return 0;
}

int h2s_cni_conf_parse(const char *text, size_t len, struct h2s_cni_conf *c, char *err,
		       size_t errlen)
{
	json_error_t jerr;
	json_t *port, *prev, *rt;
	bool known = false;
	int rc;

	memset(c, 0, sizeof(*c));
	c->root = json_loadb(text, len, 0, &jerr);
	if (!c->root)
		return fail(err, errlen, H2S_CNI_ERR_DECODE,
			    "network configuration is not JSON: %s (line %d)", jerr.text, jerr.line);
	if (!json_is_object(c->root))
		return fail(err, errlen, H2S_CNI_ERR_DECODE,
			    "network configuration is not a JSON object");
	c->version = json_string_value(json_object_get(c->root, "cniVersion"));
	if (!c->version)
		return fail(err, errlen, H2S_CNI_ERR_CONFIG, "cniVersion: missing");
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		known |= !strcmp(c->version, versions[i]);
	if (!known)
		return fail(err, errlen, H2S_CNI_ERR_VERSION,
			    "cniVersion %s is not supported (0.4.0, 1.0.0)", c->version);
	if ((rc = opt_string(c->root, "name", NULL, &c->name, err, errlen)))
		return rc;
	if (!c->name)
		return fail(err, errlen, H2S_CNI_ERR_CONFIG, "name: missing");
	if ((rc = opt_string(c->root, "pinDir", H2S_PIN_DIR_DEFAULT, &c->pin_dir, err, errlen)) ||
	    (rc = opt_string(c->root, "stateDir", H2S_POD_STATE_DIR_DEFAULT, &c->state_dir, err,
			     errlen)))
		return rc;
	if ((rc = opt_string(c->root, "cgroupRoot", NULL, &c->cgroup_root, err, errlen)))
		return rc;
	if (c->pin_dir[0] != '/' || c->state_dir[0] != '/' ||
	    (c->cgroup_root && c->cgroup_root[0] != '/'))
		return fail(err, errlen, H2S_CNI_ERR_CONFIG,
			    "pinDir, stateDir and cgroupRoot must be absolute paths");
	rt = json_object_get(c->root, "runtimeConfig");
	if (rt && !json_is_object(rt))
		return fail(err, errlen, H2S_CNI_ERR_CONFIG, "runtimeConfig: not an object");
	if (rt && (rc = opt_string(rt, "cgroupPath", NULL, &c->cgroup_path, err, errlen)))
		return rc;
	port = json_object_get(c->root, "port");
	c->port = H2S_CNI_PORT_DEFAULT;
	if (port) {
		if (!json_is_integer(port) || json_integer_value(port) < 1 ||
		    json_integer_value(port) > 65535)
			return fail(err, errlen, H2S_CNI_ERR_CONFIG, "port: not a port (1..65535)");
		c->port = (__u16)json_integer_value(port);
	}
	prev = json_object_get(c->root, "prevResult");
	if (prev && !json_is_object(prev))
		return fail(err, errlen, H2S_CNI_ERR_CONFIG, "prevResult: not an object");
	c->prev_result = prev;
	return 0;
}

void h2s_cni_conf_free(struct h2s_cni_conf *c)
{
	json_decref(c->root);
	memset(c, 0, sizeof(*c));
}

/* The index in prevResult.interfaces of the pod's interface named ifname, or -1. */
static int sandbox_interface(json_t *ifaces, const char *ifname)
{
	size_t i;
	json_t *v;

	json_array_foreach(ifaces, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *sandbox = json_string_value(json_object_get(v, "sandbox"));

		if (name && !strcmp(name, ifname) && sandbox && *sandbox)
			return (int)i;
	}
	return -1;
}

/* "10.22.0.5/24" (address with prefix length) or "10.22.0.1" into a (port 0). */
static int parse_ip(const char *text, struct h2s_addr *a, bool *v4)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;

	if (!text || strlen(text) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	memset(a, 0, sizeof(*a));
	if (h2s_ip_parse(buf, a) < 0)
		return -EINVAL;
	*v4 = h2s_addr_is_v4(a);
	return 0;
}

int h2s_cni_pod_of(const struct h2s_cni_conf *c, const char *container_id, const char *ifname,
		   struct h2s_pod *p, char *err, size_t errlen)
{
	bool have4 = false, have6 = false;
	json_t *ips, *v;
	const char *bad = h2s_pod_container_id_invalid(container_id);
	int want;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (bad)
		return fail(err, errlen, H2S_CNI_ERR_ENV, "CNI_CONTAINERID: %s (1 to %zu characters)",
			    bad, H2S_POD_CONTAINER_ID_MAX);
	if ((bad = h2s_pod_ifname_invalid(ifname)))
		return fail(err, errlen, H2S_CNI_ERR_ENV, "CNI_IFNAME: %s", bad);
	h2s_pod_set_container_id(p, container_id);
	memcpy(p->ifname, ifname, strlen(ifname));
	if (!c->prev_result)
		return fail(err, errlen, H2S_CNI_ERR_CONFIG,
			    "no prevResult: h2steer-cni is a chained plugin (after bridge, ptp, ...)");
	ips = json_object_get(c->prev_result, "ips");
	if (!json_is_array(ips))
		return fail(err, errlen, H2S_CNI_ERR_CONFIG, "prevResult.ips: not an array");
	want = sandbox_interface(json_object_get(c->prev_result, "interfaces"), ifname);
	json_array_foreach(ips, i, v)
	{
		json_t *iface = json_object_get(v, "interface");
		struct h2s_addr addr, gw;
		bool v4, gw4;

		/* An address of another interface (the host side of a veth, say) is not the pod's. */
		if (iface && (!json_is_integer(iface) || json_integer_value(iface) != want))
			continue;
		if (parse_ip(json_string_value(json_object_get(v, "address")), &addr, &v4) < 0)
			return fail(err, errlen, H2S_CNI_ERR_CONFIG,
				    "prevResult.ips[%zu].address: not an address/prefix", i);
		if (v4 ? have4 : have6)
			continue; /* the first of each family */
		*(v4 ? &have4 : &have6) = true;
		*(v4 ? &p->addr4 : &p->addr6) = addr;
		if (!json_object_get(v, "gateway"))
			continue;
		if (parse_ip(json_string_value(json_object_get(v, "gateway")), &gw, &gw4) < 0 ||
		    gw4 != v4)
			return fail(err, errlen, H2S_CNI_ERR_CONFIG,
				    "prevResult.ips[%zu].gateway: not an address of its family", i);
		gw.port = htons(c->port);
		*(v4 ? &p->to4 : &p->to6) = gw;
	}
	if (!p->to4.port && !p->to6.port)
		return fail(err, errlen, H2S_CNI_ERR_CONFIG,
			    "prevResult has no address with a gateway on %s: the pod could not "
			    "reach the daemon (set isGateway on the bridge plugin)",
			    ifname);
	return 0;
}

/* The longest Kubernetes name (a DNS subdomain: a pod's name). */
#define K8S_NAME_MAX 253

int h2s_cni_args_parse(const char *text, struct h2s_cni_args *a, char *err, size_t errlen)
{
	const struct {
		const char *key;
		const char **val;
	} keys[] = {
		{ "K8S_POD_NAMESPACE", &a->k8s_namespace },
		{ "K8S_POD_NAME", &a->k8s_name },
		{ "K8S_POD_UID", &a->k8s_uid },
		{ "K8S_POD_INFRA_CONTAINER_ID", &a->k8s_infra_container_id },
	};
	const char *unknown = NULL, *bad;
	bool ignore_unknown = false;
	char *pair, *next;

	memset(a, 0, sizeof(*a));
	if (!text || !*text)
		return 0;
	a->buf = strdup(text);
	if (!a->buf)
		return fail(err, errlen, H2S_CNI_ERR_ENV, "CNI_ARGS: out of memory");
	for (pair = a->buf; pair; pair = next) {
		char *eq = strchr(pair, '=');
		size_t i;

		next = strchr(pair, ';');
		if (next)
			*next++ = '\0';
		if (!eq || eq == pair || strchr(eq + 1, '='))
			return fail(err, errlen, H2S_CNI_ERR_ENV,
				    "CNI_ARGS: '%s' is not KEY=VALUE (pairs are separated by ';')",
				    pair);
		*eq = '\0';
		if (!strcmp(pair, "IgnoreUnknown")) {
			bool yes = !strcasecmp(eq + 1, "1") || !strcasecmp(eq + 1, "true");

			if (!yes && strcasecmp(eq + 1, "0") && strcasecmp(eq + 1, "false"))
				return fail(err, errlen, H2S_CNI_ERR_ENV,
					    "CNI_ARGS: IgnoreUnknown=%s: 1, true, 0 or false "
					    "expected",
					    eq + 1);
			ignore_unknown = yes;
			continue;
		}
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]) && strcmp(pair, keys[i].key); i++)
			;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			unknown = unknown ? unknown : pair;
			continue;
		}
		/* Empty is "not given", as a runtime that knows no value sends it. Anything else
		 * must be a name: it goes into the pod's record and the daemon's log.
		 */
		bad = eq[1] ? h2s_pod_name_invalid(eq + 1, K8S_NAME_MAX) : NULL;
		if (bad)
			return fail(err, errlen, H2S_CNI_ERR_ENV,
				    "CNI_ARGS: %s='%s': %s (a Kubernetes name of up to %d characters "
				    "expected)",
				    pair, eq + 1, bad, K8S_NAME_MAX);
		*keys[i].val = eq[1] ? eq + 1 : NULL;
	}
	if (unknown && !ignore_unknown)
		return fail(err, errlen, H2S_CNI_ERR_ENV,
			    "CNI_ARGS: unknown key %s (h2steer-cni knows K8S_POD_NAMESPACE, "
			    "K8S_POD_NAME, K8S_POD_UID, K8S_POD_INFRA_CONTAINER_ID; "
			    "IgnoreUnknown=1 lets others pass)",
			    unknown);
	return 0;
}

void h2s_cni_args_free(struct h2s_cni_args *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

int h2s_cni_pod_cgroup(const struct h2s_cni_conf *c, char *out, size_t len, __u64 *id, char *err,
		       size_t errlen)
{
	char rel[4096], why[4200];
	uint64_t cg_id;
	int code = 0;

	*out = '\0';
	*id = 0;
	if (!c->cgroup_path)
		return 0;
	if (h2s_cgroup_runtime_path(c->cgroup_path, rel, sizeof(rel), why, sizeof(why)) < 0)
		code = H2S_CNI_ERR_CONFIG;
	else if (h2s_cgroup_lookup(c->cgroup_root, rel, out, len, &cg_id, why, sizeof(why)) < 0)
		code = H2S_CNI_ERR_PLUGIN;
	if (code)
		return fail(err, errlen, code, "runtimeConfig.cgroupPath %s: %s", c->cgroup_path,
			    why);
	*id = cg_id;
	return 0;
}

json_t *h2s_cni_error(const char *version, int code, const char *msg, const char *details)
{
	json_t *o = json_pack("{s:s,s:i,s:s}", "cniVersion", version ? version : "1.0.0", "code",
			      code, "msg", msg);

	if (details && *details)
		json_object_set_new(o, "details", json_string(details));
	return o;
}

json_t *h2s_cni_version_info(void)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		json_array_append_new(arr, json_string(versions[i]));
	return json_pack("{s:s,s:o}", "cniVersion", "1.0.0", "supportedVersions", arr);
}
