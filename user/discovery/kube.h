/* kube.h — the Kubernetes source: the daemon's services and their backends, as the API says.
 *
 * It lists and watches v1 Services and discovery.k8s.io/v1 EndpointSlices (kube_informer.h,
 * over HTTPS on the main loop: kube_client.h) and gets this node's Node for its zone. Every
 * balanced port of every selected Service (kube_model.h: which ones), for each of its cluster
 * IPs, becomes a service of the maps named "NAMESPACE/SERVICE:PORT" (h2s_svc_names), with the
 * endpoints of its slices as backends of source kubernetes: ready ones serve, serving-but-
 * terminating ones drain, the others are out. What disappears from the API is removed (RPCs in
 * flight finish).
 *
 * Nothing is written before both lists have been read once, and nothing is removed because the
 * API went away: while it cannot be reached the last known state stays, and status says so.
 */
#ifndef H2S_KUBE_H
#define H2S_KUBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct h2s_sources;
struct h2s_kube_opts;
struct h2s_kube;

/* Start watching (asynchronously). NULL with a reason in err (in-cluster settings missing,
 * unreadable CA...).
 */
struct h2s_kube *h2s_kube_start(struct h2s_sources *src, const struct h2s_kube_opts *o,
				char *err, size_t errlen);
/* Stop watching; the services it declared stay in the maps (a daemon taking over goes on
 * from them, and a stopped daemon's node falls back to L4 for them).
 */
void h2s_kube_stop(struct h2s_kube *k);

/* NULL when ready to serve, else why not (for /readyz): not synced yet. */
const char *h2s_kube_not_ready(const struct h2s_kube *k);
/* True while a watch is down after the first sync (the last known state is served); why in
 * buf, for /readyz and the log.
 */
bool h2s_kube_degraded(const struct h2s_kube *k, char *buf, size_t len);
/* Its state for `h2steer status` and the metrics (a new JSON object). */
json_t *h2s_kube_status(const struct h2s_kube *k);

#endif /* H2S_KUBE_H */
