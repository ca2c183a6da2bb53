/* workers.h — more event loops than one (the `loops` setting): each worker is a thread with a
 * struct h2s_daemon of its own that serves only clients — its own SO_REUSEPORT listening
 * sockets on every listen address (the kernel spreads new connections over the loops), its own
 * registry (read from the maps, read-only; health followed from the main loop's checks), its
 * own upstream pools, timers and counters. Nothing of the data path is shared, so nothing on it
 * takes a lock.
 *
 * The main loop keeps the rest: discovery, health checks, metrics, the control socket and the
 * lifecycle, and it serves its own share of the clients. It reaches a worker only through the
 * worker's mailbox: a call run on the worker's thread between two of its events, which the main
 * loop either waits for (reading a worker's state: metrics, `conn list`) or not (telling it to
 * stop). Workers never wait for the main loop, so no call can deadlock.
 */
#ifndef H2S_WORKERS_H
#define H2S_WORKERS_H

#include "settings.h"
#include "stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_daemon;
struct h2s_handover;


/* Start d->set.loops - 1 workers (d: the main daemon, initialized and listening); worker k
 * listens on the kth socket `from` hands over at each address, if any. err gets a reason on
 * failure; what started is left for h2s_workers_join.
 */
int h2s_workers_start(struct h2s_daemon *d, const struct h2s_handover *from, char *err,
		      size_t errlen);
/* After the main loop ended: wait for every worker to finish (each ends by itself once told
 * to stop and drained, or at once when told to exit) and free them.
 */
void h2s_workers_join(struct h2s_daemon *d);

/* Run fn(worker, arg) on every running worker's own thread, one after the other, waiting for
 * each; a worker that has finished is passed on the main thread. The main loop's own daemon is
 * not included.
 */
void h2s_workers_each(struct h2s_daemon *d, void (*fn)(struct h2s_daemon *w, void *arg),
		      void *arg);
/* Queue fn(worker) on every running worker without waiting. */
void h2s_workers_post(struct h2s_daemon *d, void (*fn)(struct h2s_daemon *w));
/* Have all workers finished (told to stop and drained)? True when there are none. */
bool h2s_workers_done(const struct h2s_daemon *d);

/* The counters of every loop added up, with the gauges filled in (clients, streams and
 * connections per backend): what /metrics and the CLI show. Free with h2s_totals_free().
 */
struct h2s_totals {
	struct h2s_stats stats;
	uint32_t clients;      /* client connections open */
	uint64_t busy_poll_ns; /* time the loops spent polling */
	int loops;
	uint64_t accepted[H2S_LOOPS_MAX]; /* client connections each loop accepted */
};
void h2s_totals_take(struct h2s_daemon *d, struct h2s_totals *t);
void h2s_totals_free(struct h2s_totals *t);

#endif /* H2S_WORKERS_H */
