/* cni.h — the CNI side of h2steer-cni (CNI spec 1.0, chained plugin): its network
 * configuration, the pod it describes (from the previous plugin's result), and CNI's error
 * object. Pure functions over JSON text, so the unit tests drive them.
 *
 *   {"cniVersion": "1.0.0", "name": "pods", "type": "h2steer-cni",
 *    "pinDir": "/sys/fs/bpf/h2steer",        (optional, this default)
 *    "stateDir": "/run/h2steer/pods",        (optional, this default)
 *    "port": 15001,                          (optional: the daemon's listener port on the
 *                                             pods' gateway, this default)
 *    "cgroupRoot": "/sys/fs/cgroup",         (optional: where the runtime's cgroup paths
 *                                             start; default: the cgroup v2 mount point)
 *    "capabilities": {"cgroupPath": true},   (the runtime then passes the pod's cgroup:
 *    "runtimeConfig": {"cgroupPath": "..."}, see h2s_cgroup_runtime_path() for its forms)
 *    "prevResult": {...}}                    (ADD and CHECK: what the plugins before gave)
 *
 * and in the environment, besides CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME,
 * CNI_ARGS as kubelet's runtimes (containerd, CRI-O) set it:
 *   IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=greeter-7d9f8c-x2x4k;
 *   K8S_POD_INFRA_CONTAINER_ID=<64 hex>;K8S_POD_UID=<uuid>
 */
#ifndef H2S_CNI_H
#define H2S_CNI_H

#include "h2s_maps.h"

#include <jansson.h>
#include <stddef.h>

/* Error codes of the CNI spec (100 and up: the plugin's own). */
enum h2s_cni_err {
	H2S_CNI_ERR_VERSION = 1, /* incompatible CNI version */
	H2S_CNI_ERR_ENV = 4,     /* invalid necessary environment variables */
	H2S_CNI_ERR_DECODE = 6,  /* failed to decode content */
	H2S_CNI_ERR_CONFIG = 7,  /* invalid network config */
	H2S_CNI_ERR_PLUGIN = 100, /* the pod's namespace, the state dir, the maps */
	H2S_CNI_ERR_NOT_REGISTERED = 101, /* CHECK: the pod is not registered (as it should be) */
};

#define H2S_CNI_VERSIONS "0.4.0", "1.0.0"
#define H2S_CNI_PORT_DEFAULT 15001

struct h2s_cni_conf {
	json_t *root;        /* the whole document (owned) */
	const char *version; /* cniVersion */
	const char *name;
	const char *pin_dir;
	const char *state_dir;
	__u16 port;
	const char *cgroup_root; /* NULL: the cgroup v2 mount point */
	const char *cgroup_path; /* runtimeConfig.cgroupPath; NULL when absent */
	json_t *prev_result;     /* NULL when absent (borrowed from root) */
};

/* Parse the network configuration. Returns 0, or a CNI error code with a one-line reason in
 * err; h2s_cni_conf_free() either way.
 */
int h2s_cni_conf_parse(const char *text, size_t len, struct h2s_cni_conf *c, char *err,
		       size_t errlen);
void h2s_cni_conf_free(struct h2s_cni_conf *c);

/* The pod that prevResult describes on interface ifname: its addresses, and for each family
 * with a gateway, the daemon at gateway:port. Returns 0 or a CNI error code (with err).
 */
int h2s_cni_pod_of(const struct h2s_cni_conf *c, const char *container_id, const char *ifname,
		   struct h2s_pod *p, char *err, size_t errlen);

/* CNI_ARGS, by libcni's rules: "KEY=VALUE" pairs separated by ';'; a key h2steer-cni does not
 * know fails unless IgnoreUnknown is 1 or true (any case). The K8S_POD_* values must be names
 * (h2s_pod_name_invalid(), up to 253 characters): they end up in the pod's record and the
 * daemon's log. Returns 0 or H2S_CNI_ERR_ENV (with err); h2s_cni_args_free() either way.
 */
struct h2s_cni_args {
	char *buf; /* a copy of CNI_ARGS the members point into (owned) */
	const char *k8s_namespace, *k8s_name, *k8s_uid, *k8s_infra_container_id; /* NULL: none */
};
int h2s_cni_args_parse(const char *text, struct h2s_cni_args *a, char *err, size_t errlen);
void h2s_cni_args_free(struct h2s_cni_args *a);

/* The pod's cgroup from runtimeConfig.cgroupPath, as a directory (empty when the runtime passed
 * none) and its cgroup id. Returns 0 or a CNI error code (with err): H2S_CNI_ERR_CONFIG for a
 * path of neither driver's form, H2S_CNI_ERR_PLUGIN for one that does not exist.
 */
int h2s_cni_pod_cgroup(const struct h2s_cni_conf *c, char *out, size_t len, __u64 *id, char *err,
		       size_t errlen);

/* CNI's error object. */
json_t *h2s_cni_error(const char *version, int code, const char *msg, const char *details);
/* The VERSION answer. */
json_t *h2s_cni_version_info(void);

#endif /* H2S_CNI_H */
