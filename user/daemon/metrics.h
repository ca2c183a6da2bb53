/* metrics.h — h2steerd's HTTP endpoint, on the daemon's loop: a gate that answers the probes
 * itself whatever other clients do, libmicrohttpd (external epoll) for the rest (metrics.c):
 *
 *   /metrics   Prometheus text exposition (h2steer_* families, base units)
 *   /healthz   200 while the daemon runs its loop
 *   /readyz    200 once programs are attached, maps open and every resolver has answered;
 *              503 with the reason otherwise (and while draining)
 */
#ifndef H2S_METRICS_H
#define H2S_METRICS_H

#include "h2s_maps.h"

#include <stddef.h>

struct h2s_daemon;
struct h2s_metrics;

/* Serve on addr; NULL with a reason in err when it cannot listen. */
struct h2s_metrics *h2s_metrics_start(struct h2s_daemon *d, const struct h2s_addr *addr,
				      char *err, size_t errlen);
void h2s_metrics_stop(struct h2s_metrics *m);

/* The /metrics page (malloc'ed, *len bytes), or NULL when out of memory. */
char *h2s_metrics_render(struct h2s_daemon *d, size_t *len);
/* NULL when ready, else why not (static text). */
const char *h2s_daemon_not_ready(struct h2s_daemon *d);

#endif /* H2S_METRICS_H */
