/* pods.h — pods registered for capture: what h2steer-cni learns at ADD (the pod's network
 * namespace, its addresses, the gateway through which it reaches the daemon), kept twice: in
 * the h2s_pods map the connect hooks read, and as one record file per pod in a state directory,
 * so that pods set up while no daemon ran are captured once one starts.
 *
 * Record file: STATE_DIR/<container id>.<ifname>.json
 *   {"netns_cookie": 4096, "container_id": "...", "ifname": "eth0",
 *    "to4": "10.22.0.1:15001", "to6": null, "addr4": "10.22.0.5", "addr6": null,
 *    "kubernetes": {"namespace": "demo", "name": "greeter-7d9f8c-x2x4k",     (when CNI_ARGS
 *                   "uid": "...", "infra_container_id": "..."},               named the pod)
 *    "cgroup": "/sys/fs/cgroup/.../cri-containerd-<id>.scope", "cgroup_id": 8841}
 *                                                   (when the runtime passed cgroupPath)
 * The record keeps the whole container ID; the map entry has H2S_POD_ID_MAX bytes for it (a
 * pinned map's value cannot grow without breaking every pin), so a longer one is shortened
 * there (h2s_pod_set_container_id).
 */
#ifndef H2S_PODS_H
#define H2S_PODS_H

#include "h2s_maps.h"

#include <jansson.h>
#include <limits.h>
#include <stddef.h>

#define H2S_POD_STATE_DIR_DEFAULT "/run/h2steer/pods"

/* CNI sets no bound on a container ID; the record's file name (<id>.<ifname>.json) must fit in
 * NAME_MAX with the longest interface name. Runtimes make 64 characters (containerd, CRI-O).
 */
#define H2S_POD_CONTAINER_ID_MAX (NAME_MAX - (H2S_POD_IFNAME_MAX - 1) - (sizeof("..json") - 1))

struct h2s_maps;

/* NULL when s is a name as the CNI spec defines container IDs (a letter or digit, then letters,
 * digits, '_', '.' or '-') of 1 to max characters; else what is wrong. Kubernetes' names of
 * namespaces and pods, and its UIDs, are such names too.
 */
const char *h2s_pod_name_invalid(const char *s, size_t max);
/* The same for a container ID, of at most H2S_POD_CONTAINER_ID_MAX characters. */
const char *h2s_pod_container_id_invalid(const char *id);

/* NULL when s is a network interface name a pod can have and its record file can be named
 * after (<id>.<ifname>.json): 1 to H2S_POD_IFNAME_MAX - 1 bytes, as Linux takes one (not "." or
 * "..", no '/', ':' or white space), in printable ASCII (the record is JSON: UTF-8 only) and
 * without a leading '.'; else why not. CNI_IFNAME and the ifname of a record read back are held
 * to the same rule.
 */
const char *h2s_pod_ifname_invalid(const char *s);

/* p->container_id for a valid container ID: the ID itself when it fits; a longer one as its
 * first characters, '~' and a hash of the whole ID.
 */
void h2s_pod_set_container_id(struct h2s_pod *p, const char *id);

/* What a record holds beyond the map entry (NULL or 0: not known, left out). */
struct h2s_pod_meta {
	const char *container_id; /* whole (the entry may have it shortened) */
	const char *k8s_namespace, *k8s_name, *k8s_uid, *k8s_infra_container_id;
	const char *cgroup; /* the pod's cgroup v2 directory */
	__u64 cgroup_id;
};

/* A map entry as JSON (`h2steer pod list`), and a record file's JSON. */
json_t *h2s_pod_to_json(__u64 netns_cookie, const struct h2s_pod *p);
json_t *h2s_pod_record_json(__u64 netns_cookie, const struct h2s_pod *p,
			    const struct h2s_pod_meta *meta);
/* The map entry of a record (-EINVAL on anything malformed, with a reason in err). */
int h2s_pod_from_json(json_t *j, __u64 *netns_cookie, struct h2s_pod *p, char *err,
		      size_t errlen);

/* The record file of (container id, ifname) under dir. -EINVAL for a container ID
 * h2s_pod_container_id_invalid() refuses, an ifname that would leave dir ('/' or a leading
 * '.'), or a path that does not fit.
 */
int h2s_pod_record_path(const char *dir, const char *container_id, const char *ifname, char *out,
			size_t len);

/* Put every record found under dir into the map (the daemon does it at start). Returns how
 * many, or a negative errno for a dir that cannot be read (a missing one is 0 records).
 * Malformed records are skipped with a warning.
 */
int h2s_pods_load_dir(struct h2s_maps *m, const char *dir);

#endif /* H2S_PODS_H */
