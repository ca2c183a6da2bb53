/* settings.h — the daemon's tunables (every one a key of the config file and a --set of the
 * command line, config.c's table), with their defaults. Plain data, read by every layer that
 * needs one: the proxy (windows, timeouts, retry budget), balance (outlier ejection, EWMA),
 * discovery (health checks, resolver grace) and the daemon (loops, drain).
 */
#ifndef H2S_SETTINGS_H
#define H2S_SETTINGS_H

#include "outlier.h"

#include <stdint.h>

/* Active health checks (discovery/health.h). */
struct h2s_health_cfg {
	uint32_t interval_ms; /* between Checks (when Watch is unimplemented) */
	uint32_t timeout_ms;  /* for one Check, and for connect + SETTINGS */
	uint32_t healthy_threshold, unhealthy_threshold;
};

/* The most loops a daemon runs (and so listening sockets per address a takeover hands over). */
#define H2S_LOOPS_MAX 16

/* node_index when none is set. */
#define H2S_NODE_INDEX_NONE 0xffffffffu

struct h2s_settings {
	uint32_t max_streams;       /* SETTINGS_MAX_CONCURRENT_STREAMS offered to clients */
	uint32_t stream_window;     /* INITIAL_WINDOW_SIZE on both legs */
	uint32_t conn_window;       /* connection-level receive window on both legs */
	/* SETTINGS_MAX_HEADER_LIST_SIZE on both legs, and what we hold of one header block
	 * (hdrs.h): a larger one fails only its stream (relay.h).
	 */
	uint32_t max_header_list;
	uint32_t connect_timeout_ms;
	uint32_t handshake_timeout_ms; /* a client must send its preface + SETTINGS within this */
	/* A client connection with no stream open and no frame for client_idle_ms gets GOAWAY
	 * (NO_ERROR) and is closed; one with a frame or header block begun and not finished
	 * within client_frame_timeout_ms (slowloris) is closed. 0: never.
	 */
	uint32_t client_idle_ms, client_frame_timeout_ms;
	/* Backend connections with streams open from which nothing arrived for
	 * backend_ping_interval_ms get a PING; nothing back within backend_ping_timeout_ms: the
	 * connection is dead (h2_upstream.c). 0: no PINGs.
	 */
	uint32_t backend_ping_interval_ms, backend_ping_timeout_ms;
	/* An attempt with no response headers from its backend within try_timeout_ms (0: no
	 * limit), or by the call's own grpc-timeout, fails (relay.c try_expired); it counts
	 * against the backend unless cut short by a grpc-timeout under try_deadline_min_ms.
	 */
	uint32_t try_timeout_ms, try_deadline_min_ms;
	uint32_t upstream_idle_ms;  /* idle upstream connections are closed after this */
	uint32_t drain_timeout_ms;  /* on SIGTERM, in-flight streams get this long */
	/* A daemon taking over has this long from getting our sockets to saying it serves;
	 * then we take the node back (it is stuck, holding the control socket and metrics).
	 */
	uint32_t takeover_timeout_ms;
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
	/* A local-first service picks among its local members while at least this % of them
	 * (and at least one) are usable (balance/locality.h).
	 */
	uint32_t locality_min_usable_percent;
	uint32_t fastpath; /* 1: H2S_CTL_F_FASTPATH (experimental, off by default) */
	/* Busy polling (loop.h): up to busy_poll_us before sleeping, while at most
	 * busy_poll_max_streams streams are open (with more, the loop is rarely idle and the
	 * CPU is better left to the backends), for at most busy_poll_share % of the time.
	 */
	uint32_t busy_poll_us, busy_poll_max_streams, busy_poll_share;
	/* Event loops (workers.h): 1, or up to H2S_LOOPS_MAX; 0: one per CPU. */
	uint32_t loops;
	/* Captured client connections served at once, in all and from one source address (a
	 * pod); more are closed at once (daemon/admit.h). Each loop holds its share. 0: from
	 * the file limit (daemon.c), and half the total per source.
	 */
	uint32_t max_client_connections, max_client_connections_per_source;
	/* Per client connection (proxy/calm.h): frames that do no work (SETTINGS, PING,
	 * WINDOW_UPDATE, PRIORITY, empty DATA, unknown types, frames on closed streams), and
	 * streams reset before their answer (by the client, or by us for what it sent). Each a
	 * bucket of `burst`, refilled at `rate` a second and by work done; empty: GOAWAY
	 * ENHANCE_YOUR_CALM.
	 */
	uint32_t client_flood_burst, client_flood_rate;
	uint32_t client_reset_burst, client_reset_rate;
	/* The same for resets of all the connections of one source address (a pod), so that a
	 * client reconnecting after each GOAWAY gets no fresh budget (proxy/srcbudget.h). Each
	 * loop holds its share.
	 */
	uint32_t client_reset_source_burst, client_reset_source_rate;
	/* Memory (relay.h "Memory budgets"): request and response body bytes buffered for one
	 * client connection, and for the whole daemon (MiB). Past the first a connection's new
	 * streams are refused, its uploads wait (connection window) and a response that would
	 * go over it is reset; past the second the same for connections holding more than one
	 * stream window. A client whose socket takes no byte for client_write_timeout_ms while
	 * we have bytes for it is closed (0: never).
	 */
	uint32_t client_buffer_max, buffer_total_mib, client_write_timeout_ms;
	struct h2s_health_cfg health;
	struct h2s_outlier_cfg outlier;
};

void h2s_settings_default(struct h2s_settings *s);
void h2s_health_cfg_default(struct h2s_health_cfg *c);
/* Each loop's share of a cap or budget n of the whole daemon, at least 1 (the kernel spreads
 * connections evenly over the loops; loops 0 or 1: all of it).
 */
uint32_t h2s_loop_share(uint64_t n, uint32_t loops);

#endif /* H2S_SETTINGS_H */
