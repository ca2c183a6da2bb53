/* daemon.h — h2steerd: the main loop and its workers. Each loop is a data plane
 * (proxy/plane.h: loop, registry, clients, counters) plus what the daemon adds around it:
 * listening sockets, and for the main loop discovery, metrics, the control socket, the
 * lifecycle (drain, restart, takeover) and the other loops.
 */
#ifndef H2S_DAEMON_H
#define H2S_DAEMON_H

#include "admit.h"
#include "config.h"
#include "discovery.h"
#include "h2s_maps.h"
#include "plane.h"

#include <stdbool.h>
#include <stdint.h>

struct h2s_maps;
struct h2s_loader;
struct h2s_handover;
struct h2s_dns;
struct h2s_metrics;
struct h2s_control;




/* Listening sockets of one loop: one per address, and after a takeover every socket the old
 * daemon's loops had there (the main loop serves them all).
 */
#define H2S_LISTEN_SOCKETS_MAX (H2S_MAX_LISTENERS * 16)

struct h2s_listener {
	struct h2s_watch w;
	struct h2s_daemon *d;
	struct h2s_addr addr;
};

struct h2s_workers;

/* The main daemon, or one of its workers (workers.h): a worker uses its plane and listeners
 * only, the rest stays zero.
 */
struct h2s_daemon {
	struct h2s_plane p; /* first: the plane's callbacks find the daemon from it */
	struct h2s_daemon *main;     /* a worker's main daemon; NULL for the main one */
	int loop_index;              /* 0: the main loop */
	struct h2s_workers *workers; /* the main daemon's other loops (NULL: none) */
	struct h2s_loader *loader; /* its pin dir lock is let go when this daemon leaves */
	const struct h2s_options *opts; /* what it was started with (to take the node back) */
	struct h2s_listener lis[H2S_LISTEN_SOCKETS_MAX];
	int nlis;
	struct h2s_admit admit;         /* the caps on this loop's client connections */
	struct h2s_timer accept_timer;  /* accepting paused (out of descriptors): resume */
	int naddrs; /* listen addresses in use: the first naddrs of opts->listen */
	struct h2s_watch sig;
	struct h2s_timer state_timer;
	struct h2s_sources src;         /* the main loop's resolvers and health checks */
	struct h2s_metrics *metrics;    /* /metrics, /healthz, /readyz */
	struct h2s_control *control;    /* the CLI's way in */
	double started_unix;
	bool keep_state;  /* SIGTERM is a restart: leave the node to the next daemon at once */
	bool published;   /* h2s_daemon_publish() turned capture on for our listeners */
	/* Stopping and handing over: lifecycle.c. */
	bool left;           /* another daemon may own the node: only our own streams remain */
	bool handed_sockets; /* a new daemon has our listening sockets (capture is its now) */
	struct h2s_watch handover; /* the new daemon's connection until it says "ready" */
	struct h2s_timer handover_timer; /* ... which it must within takeover_timeout_ms */
	struct h2s_flush stop_flush, handover_flush, leave_flush, takeback_flush;
	struct h2s_timer drain_timer, linger_timer;
};

struct h2s_options;

/* Listen on the first nlisten of o's addresses (on the sockets a previous daemon handed over
 * where they match; `from` may be NULL), serve metrics and the control socket, publish the
 * listeners and turn capture on. err gets a one-line reason on failure. The handed-over
 * sockets stay the caller's to close.
 */
int h2s_daemon_init(struct h2s_daemon *d, struct h2s_loader *loader, const struct h2s_options *o,
		    int nlisten, const struct h2s_handover *from, char *err, size_t errlen);
/* Run until SIGTERM/SIGINT and the drain that follows. */
int h2s_daemon_run(struct h2s_daemon *d);
void h2s_daemon_fini(struct h2s_daemon *d);
/* A worker of m (loop `index`): its own loop, registry and counters, and its own listening
 * socket on each of m's addresses (the index-th one `from` hands over there, else a new one
 * in m's SO_REUSEPORT group). err gets a reason on failure.
 */
int h2s_daemon_init_worker(struct h2s_daemon *w, struct h2s_daemon *m, int index,
			   const struct h2s_handover *from, char *err, size_t errlen);

/* Tell the kernel plane where captured connections go (our listeners), who we are (pid,
 * control socket), and turn capture (and the L4 fallback) on.
 */
void h2s_daemon_publish(struct h2s_daemon *d);
void h2s_daemon_close_listeners(struct h2s_daemon *d);
/* Draining, and nothing left to wait for: stop the loop. */
void h2s_daemon_maybe_done(struct h2s_daemon *d);


#endif /* H2S_DAEMON_H */
