/* daemon.h — h2steerd's state: the event loop, the registry, the listeners and every client
 * connection, plus the settings both legs are built with.
 */
#ifndef H2S_DAEMON_H
#define H2S_DAEMON_H

#include "h2s_maps.h"
#include "health.h"
#include "list.h"
#include "loop.h"
#include "outlier.h"
#include "registry.h"
#include "stats.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdint.h>

struct h2s_maps;
struct h2s_loader;
struct h2s_handover;
struct h2s_dns;
struct h2s_metrics;
struct h2s_control;

struct h2s_settings {
	uint32_t max_streams;       /* SETTINGS_MAX_CONCURRENT_STREAMS offered to clients */
	uint32_t stream_window;     /* INITIAL_WINDOW_SIZE on both legs */
	uint32_t conn_window;       /* connection-level receive window on both legs */
	uint32_t max_header_list;   /* SETTINGS_MAX_HEADER_LIST_SIZE on both legs */
	uint32_t connect_timeout_ms;
	uint32_t handshake_timeout_ms; /* a client must send its preface + SETTINGS within this */
	uint32_t upstream_idle_ms;  /* idle upstream connections are closed after this */
	uint32_t drain_timeout_ms;  /* on SIGTERM, in-flight streams get this long */
	uint32_t max_attempts;      /* picks per stream (replays of unprocessed streams) */
	/* Safe retry budget: replayed streams not answered yet <= max(retry_min, retry_percent%
	 * of the streams in flight); a stream is replayed only with at most replay_body_max
	 * bytes of request body sent.
	 */
	uint32_t retry_percent, retry_min, replay_body_max;
	uint32_t resolver_grace_ms; /* a failing resolver keeps its last good set this long */
	uint32_t dns_ttl_cap_ms;    /* re-resolve at least this often */
	/* With no daemon accepting, connects go straight to a backend for at most this long
	 * after the last daemon's last heartbeat (0: never, leave them alone).
	 */
	uint32_t l4_fallback_ttl_ms;
	/* This node's index among the nodes, for deterministic subsetting; H2S_NODE_INDEX_NONE:
	 * rendezvous hashing on the host name instead.
	 */
	uint32_t node_index;
	/* peak_ewma: a latency sample's weight fades with this time constant, and so does the
	 * estimate of a backend no answer comes from.
	 */
	uint32_t ewma_decay_ms;
	uint32_t fastpath; /* 1: H2S_CTL_F_FASTPATH (experimental, off by default) */
	/* Busy polling (loop.h): up to busy_poll_us before sleeping, while at most
	 * busy_poll_max_streams streams are open (with more, the loop is rarely idle and the
	 * CPU is better left to the backends), for at most busy_poll_share % of the time.
	 */
	uint32_t busy_poll_us, busy_poll_max_streams, busy_poll_share;
	/* Event loops (workers.h): 1, or up to H2S_LOOPS_MAX; 0: one per CPU. */
	uint32_t loops;
	struct h2s_health_cfg health;
	struct h2s_outlier_cfg outlier;
};

#define H2S_NODE_INDEX_NONE 0xffffffffu

void h2s_settings_default(struct h2s_settings *s);

#define H2S_MAX_LISTENERS 4
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

/* The main daemon, or one of its workers (workers.h): a worker uses the data-path part only
 * (loop, registry, clients, splices, stats, listeners), the rest stays zero.
 */
struct h2s_daemon {
	struct h2s_loop loop;
	struct h2s_daemon *main;     /* a worker's main daemon; NULL for the main one */
	int loop_index;              /* 0: the main loop */
	struct h2s_workers *workers; /* the main daemon's other loops (NULL: none) */
	struct h2s_maps *maps;
	struct h2s_loader *loader; /* its pin dir lock is let go when this daemon leaves */
	const struct h2s_options *opts; /* what it was started with (to take the node back) */
	struct h2s_registry reg;
	struct h2s_settings set;
	nghttp2_session_callbacks *server_cbs, *upstream_cbs;
	nghttp2_option *opt;
	struct h2s_listener lis[H2S_LISTEN_SOCKETS_MAX];
	int nlis;
	int naddrs; /* listen addresses in use: the first naddrs of opts->listen */
	struct h2s_list clients; /* struct h2s_client.link */
	uint32_t nclients;
	struct h2s_list splices; /* splice.c: connections deciding, or relayed as bytes */
	uint32_t nsplices;
	struct h2s_watch sig;
	struct h2s_timer refresh_timer, state_timer;
	struct h2s_flush refresh_flush; /* a resolver changed the maps: reload after this turn */
	struct h2s_dns *dns;            /* c-ares channel, created by the first DNS resolver */
	char dns_servers[512];          /* c-ares CSV; empty: /etc/resolv.conf */
	struct h2s_metrics *metrics;    /* /metrics, /healthz, /readyz */
	struct h2s_control *control;    /* the CLI's way in */
	double started_unix;
	bool keep_state;  /* SIGTERM is a restart: leave the node to the next daemon at once */
	bool published;   /* h2s_daemon_publish() turned capture on for our listeners */
	/* Stopping and handing over: lifecycle.c. */
	bool draining;       /* GOAWAY sent: exit once the clients are gone */
	bool left;           /* another daemon may own the node: only our own streams remain */
	bool handed_sockets; /* a new daemon has our listening sockets (capture is its now) */
	struct h2s_watch handover; /* the new daemon's connection until it says "ready" */
	struct h2s_flush stop_flush, handover_flush, leave_flush, takeback_flush;
	struct h2s_timer drain_timer, linger_timer;
	struct h2s_stats stats;
	uint8_t rbuf[65536]; /* one read buffer for every socket of the loop */
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

/* Reload the registry at the end of this loop turn (after a resolver changed the maps). */
void h2s_daemon_refresh_soon(struct h2s_daemon *d);
/* May one more stream be replayed now (retry budget)? Counts it if so. */
bool h2s_daemon_replay_allowed(struct h2s_daemon *d);

#endif /* H2S_DAEMON_H */
