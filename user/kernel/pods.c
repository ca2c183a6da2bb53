/* pods.c — see pods.h. */
#include "pods.h"

#include "addr.h"
#include "hash.h"
#include "log.h"
#include "maps.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool id_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (!first && (c == '_' || c == '.' || c == '-'));
}

const char *h2s_pod_name_invalid(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (!len)
		return "empty";
	if (len > max)
		return "too long";
	if (!id_char(s[0], true))
		return "must start with a letter or a digit";
	for (size_t i = 1; i < len; i++)
		if (!id_char(s[i], false))
			return "letters, digits, '_', '.' and '-' only after the first character";
	return NULL;
}

const char *h2s_pod_container_id_invalid(const char *id)
{
	return h2s_pod_name_invalid(id, H2S_POD_CONTAINER_ID_MAX);
}

const char *h2s_pod_ifname_invalid(const char *s)
{
	size_t len = strlen(s);

	if (!len || len >= H2S_POD_IFNAME_MAX)
		return "1 to 15 characters expected";
	if (s[0] == '.')
		return "must not start with '.'";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		/* ASCII: the record is JSON, which takes no byte that is not UTF-8. */
		if (c <= ' ' || c >= 0x7f || c == '/' || c == ':')
			return "printable ASCII without '/', ':' or white space expected";
	}
	return NULL;
}

/* A shortened ID ends in '~' and 16 hex digits, so it never equals a real ID ('~' is not in
 * one), and two IDs with a common beginning stay apart. DEL finds the entry by this form: the
 * hash and its seed must never change, or entries written before an upgrade would stay behind.
 */
#define ID_HASH_SEED 0x6832732d706f6473ull /* "h2s-pods" */
#define ID_HASH_HEX 16
#define ID_KEEP (H2S_POD_ID_MAX - 1 - 1 - ID_HASH_HEX)

void h2s_pod_set_container_id(struct h2s_pod *p, const char *id)
{
	size_t len = strlen(id);

	memset(p->container_id, 0, sizeof(p->container_id));
	if (len < sizeof(p->container_id)) {
		memcpy(p->container_id, id, len);
		return;
	}
	snprintf(p->container_id, sizeof(p->container_id), "%.*s~%016llx", ID_KEEP, id,
		 (unsigned long long)h2s_hash64(id, len, ID_HASH_SEED));
}

static json_t *endpoint_json(const struct h2s_addr *a)
{
	char s[H2S_ADDR_STRLEN];

	return a->port ? json_string(h2s_addr_format(a, s, sizeof(s))) : json_null();
}

/* A pod's own address: the IP alone (it has no port). */
static json_t *ip_json(const struct h2s_addr *a)
{
	char s[H2S_ADDR_STRLEN];
	static const struct h2s_addr none;

	if (!memcmp(a, &none, sizeof(none)))
		return json_null();
	return json_string(h2s_ip_format(a, s, sizeof(s)));
}

json_t *h2s_pod_to_json(__u64 netns_cookie, const struct h2s_pod *p)
{
	return json_pack("{s:I,s:s%,s:s%,s:o,s:o,s:o,s:o}", "netns_cookie",
			 (json_int_t)netns_cookie, "container_id", p->container_id,
			 strnlen(p->container_id, sizeof(p->container_id)), "ifname", p->ifname,
			 strnlen(p->ifname, sizeof(p->ifname)), "to4", endpoint_json(&p->to4), "to6",
			 endpoint_json(&p->to6), "addr4", ip_json(&p->addr4), "addr6",
			 ip_json(&p->addr6));
}

static void set_text(json_t *o, const char *key, const char *v)
{
	if (v && *v)
		json_object_set_new(o, key, json_string(v));
}

json_t *h2s_pod_record_json(__u64 netns_cookie, const struct h2s_pod *p,
			    const struct h2s_pod_meta *meta)
{
	json_t *j = h2s_pod_to_json(netns_cookie, p), *k8s = json_object();

	set_text(j, "container_id", meta->container_id);
	set_text(k8s, "namespace", meta->k8s_namespace);
	set_text(k8s, "name", meta->k8s_name);
	set_text(k8s, "uid", meta->k8s_uid);
	set_text(k8s, "infra_container_id", meta->k8s_infra_container_id);
	if (json_object_size(k8s))
		json_object_set_new(j, "kubernetes", k8s);
	else
		json_decref(k8s);
	set_text(j, "cgroup", meta->cgroup);
	if (meta->cgroup_id)
		json_object_set_new(j, "cgroup_id", json_integer((json_int_t)meta->cgroup_id));
	return j;
}

static int endpoint_from(json_t *v, struct h2s_addr *a, const char *key, char *err, size_t errlen)
{
	char why[160];

	memset(a, 0, sizeof(*a));
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || h2s_addr_parse(json_string_value(v), a, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", key, json_is_string(v) ? why : "not a string");
		return -EINVAL;
	}
	return 0;
}

static int ip_from(json_t *v, struct h2s_addr *a, const char *key, char *err, size_t errlen)
{
	const char *s = json_string_value(v);

	memset(a, 0, sizeof(*a));
	if (!v || json_is_null(v) || h2s_ip_parse(s, a) == 0)
		return 0;
	snprintf(err, errlen, "%s: not an IP address", key);
	return -EINVAL;
}

static int text_from(json_t *v, char *out, size_t len, const char *key, char *err, size_t errlen)
{
	const char *s = json_string_value(v);

	if (!s || !*s || strlen(s) >= len) {
		snprintf(err, errlen, "%s: a string of 1 to %zu characters", key, len - 1);
		return -EINVAL;
	}
	memset(out, 0, len);
	memcpy(out, s, strlen(s));
	return 0;
}

int h2s_pod_from_json(json_t *j, __u64 *netns_cookie, struct h2s_pod *p, char *err,
		      size_t errlen)
{
	json_t *c = json_object_get(j, "netns_cookie");
	const char *id = json_string_value(json_object_get(j, "container_id"));
	const char *bad = id ? h2s_pod_container_id_invalid(id) : "not a string";

	memset(p, 0, sizeof(*p));
	if (!json_is_integer(c) || json_integer_value(c) <= 0) {
		snprintf(err, errlen, "netns_cookie: a positive integer");
		return -EINVAL;
	}
	*netns_cookie = (__u64)json_integer_value(c);
	if (bad) {
		snprintf(err, errlen, "container_id: %s", bad);
		return -EINVAL;
	}
	h2s_pod_set_container_id(p, id);
	if (text_from(json_object_get(j, "ifname"), p->ifname, sizeof(p->ifname), "ifname", err,
		      errlen) < 0)
		return -EINVAL;
	/* One that h2steer-cni could never have written: its record could never be removed. */
	if ((bad = h2s_pod_ifname_invalid(p->ifname))) {
		snprintf(err, errlen, "ifname: %s", bad);
		return -EINVAL;
	}
	if (endpoint_from(json_object_get(j, "to4"), &p->to4, "to4", err, errlen) < 0 ||
	    endpoint_from(json_object_get(j, "to6"), &p->to6, "to6", err, errlen) < 0 ||
	    ip_from(json_object_get(j, "addr4"), &p->addr4, "addr4", err, errlen) < 0 ||
	    ip_from(json_object_get(j, "addr6"), &p->addr6, "addr6", err, errlen) < 0)
		return -EINVAL;
	if (!p->to4.port && !p->to6.port) {
		snprintf(err, errlen, "neither to4 nor to6: the pod could not reach the daemon");
		return -EINVAL;
	}
	return 0;
}

int h2s_pod_record_path(const char *dir, const char *container_id, const char *ifname, char *out,
			size_t len)
{
	if (h2s_pod_container_id_invalid(container_id) || h2s_pod_ifname_invalid(ifname))
		return -EINVAL;
	if ((size_t)snprintf(out, len, "%s/%s.%s.json", dir, container_id, ifname) >= len)
		return -EINVAL;
	return 0;
}

/* One line per pod at start: which Kubernetes pod it is, when the record says. */
static void log_loaded(json_t *j, const char *path)
{
	json_t *k8s = json_object_get(j, "kubernetes");
	const char *ns = json_string_value(json_object_get(k8s, "namespace"));
	const char *name = json_string_value(json_object_get(k8s, "name"));

	if (ns && name)
		log_info("pod %s/%s registered from %s", ns, name, path);
	else
		log_info("pod registered from %s", path);
}

int h2s_pods_load_dir(struct h2s_maps *m, const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!dp)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dp))) {
		char path[4096], why[200];
		size_t len = strlen(de->d_name);
		json_error_t jerr;
		struct h2s_pod p;
		__u64 cookie;
		json_t *j;

		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		j = json_load_file(path, 0, &jerr);
		if (!j) {
			log_warn("pod record %s: %s: skipped", path, jerr.text);
			continue;
		}
		if (h2s_pod_from_json(j, &cookie, &p, why, sizeof(why)) < 0) {
			log_warn("pod record %s: %s: skipped", path, why);
		} else {
			int rc = h2s_pod_put(m, cookie, &p);

			if (rc < 0) {
				log_warn("pod record %s: cannot add it to the pods map: %s", path,
					 strerror(-rc));
			} else {
				log_loaded(j, path);
				n++;
			}
		}
		json_decref(j);
	}
	closedir(dp);
	return n;
}
