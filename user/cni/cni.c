/* cni.c — see cni.h. */
#include "cni.h"

#include "addr.h"
#include "pods.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	json_t *port, *prev;
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
	if (c->pin_dir[0] != '/' || c->state_dir[0] != '/')
		return fail(err, errlen, H2S_CNI_ERR_CONFIG,
			    "pinDir and stateDir must be absolute paths");
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
	int want;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (!*container_id || strlen(container_id) >= sizeof(p->container_id))
		return fail(err, errlen, H2S_CNI_ERR_ENV,
			    "CNI_CONTAINERID: 1 to %zu characters expected",
			    sizeof(p->container_id) - 1);
	if (!*ifname || strlen(ifname) >= sizeof(p->ifname))
		return fail(err, errlen, H2S_CNI_ERR_ENV, "CNI_IFNAME: 1 to %zu characters expected",
			    sizeof(p->ifname) - 1);
	memcpy(p->container_id, container_id, strlen(container_id));
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
