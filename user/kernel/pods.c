/* pods.c — see pods.h. */
#include "pods.h"

#include "addr.h"
#include "log.h"
#include "maps.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

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

	memset(p, 0, sizeof(*p));
	if (!json_is_integer(c) || json_integer_value(c) <= 0) {
		snprintf(err, errlen, "netns_cookie: a positive integer");
		return -EINVAL;
	}
	*netns_cookie = (__u64)json_integer_value(c);
	if (text_from(json_object_get(j, "container_id"), p->container_id,
		      sizeof(p->container_id), "container_id", err, errlen) < 0 ||
	    text_from(json_object_get(j, "ifname"), p->ifname, sizeof(p->ifname), "ifname", err,
		      errlen) < 0 ||
	    endpoint_from(json_object_get(j, "to4"), &p->to4, "to4", err, errlen) < 0 ||
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
	if (!*container_id || !*ifname || container_id[0] == '.' || ifname[0] == '.' ||
	    strchr(container_id, '/') || strchr(ifname, '/'))
		return -EINVAL;
	if ((size_t)snprintf(out, len, "%s/%s.%s.json", dir, container_id, ifname) >= len)
		return -EINVAL;
	return 0;
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

			if (rc < 0)
				log_warn("pod record %s: cannot add it to the pods map: %s", path,
					 strerror(-rc));
			else
				n++;
		}
		json_decref(j);
	}
	closedir(dp);
	return n;
}
