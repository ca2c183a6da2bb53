/* pods.h — pods registered for capture: what h2steer-cni learns at ADD (the pod's network
 * namespace, its addresses, the gateway through which it reaches the daemon), kept twice: in
 * the h2s_pods map the connect hooks read, and as one record file per pod in a state directory,
 * so that pods set up while no daemon ran are captured once one starts.
 *
 * Record file: STATE_DIR/<container id>.<ifname>.json
 *   {"netns_cookie": 4096, "container_id": "...", "ifname": "eth0",
 *    "to4": "10.22.0.1:15001", "to6": null, "addr4": "10.22.0.5:0", "addr6": null}
 */
#ifndef H2S_PODS_H
#define H2S_PODS_H

#include "h2s_maps.h"

#include <jansson.h>
#include <stddef.h>

#define H2S_POD_STATE_DIR_DEFAULT "/run/h2steer/pods"

struct h2s_maps;

/* A pod record as JSON, and back (-EINVAL on anything malformed, with a reason in err). */
json_t *h2s_pod_to_json(__u64 netns_cookie, const struct h2s_pod *p);
int h2s_pod_from_json(json_t *j, __u64 *netns_cookie, struct h2s_pod *p, char *err,
		      size_t errlen);

/* The record file of (container id, ifname) under dir. -EINVAL for ids that would leave dir
 * ('/' or a leading '.') or do not fit.
 */
int h2s_pod_record_path(const char *dir, const char *container_id, const char *ifname, char *out,
			size_t len);

/* Put every record found under dir into the map (the daemon does it at start). Returns how
 * many, or a negative errno for a dir that cannot be read (a missing one is 0 records).
 * Malformed records are skipped with a warning.
 */
int h2s_pods_load_dir(struct h2s_maps *m, const char *dir);

#endif /* H2S_PODS_H */
