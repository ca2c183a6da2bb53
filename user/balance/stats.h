/* stats.h — the daemon's counters, for /metrics and `h2steer stats`. They live as long as the
 * daemon (Prometheus counters never go backwards), are found once per stream or connection,
 * and are then updated through pointers: nothing is looked up per frame.
 */
#ifndef H2S_STATS_H
#define H2S_STATS_H

#include "h2s_maps.h"
#include "spec.h"

#include <stdint.h>

/* RPC latency histogram upper bounds, in seconds (+Inf is implicit). */
#define H2S_LAT_BUCKETS 14
extern const double h2s_lat_bounds[H2S_LAT_BUCKETS];

/* How an RPC ended, as the grpc_status label: the gRPC code 0..16, or one of these. */
#define H2S_RPC_RESET 17 /* ended by RST_STREAM without a gRPC status */
#define H2S_RPC_NONE 18  /* no grpc-status at all (not a gRPC response) */
#define H2S_RPC__COUNT 19
const char *h2s_rpc_status_label(int s);

/* A latency histogram (h2s_lat_bounds, +Inf last; rendered cumulatively). */
struct h2s_lat {
	uint64_t bucket[H2S_LAT_BUCKETS + 1];
	uint64_t count;
	double sum;
};

void h2s_lat_add(struct h2s_lat *l, double seconds);
/* The upper bound of the bucket where quantile q (0..1) falls; 0 with no samples, +Inf as
 * the largest bound times two.
 */
double h2s_lat_quantile(const struct h2s_lat *l, double q);

/* One gRPC method (:path) of a service. A service keeps at most H2S_METHODS_MAX of them (a
 * client may send any path): later ones are counted together under H2S_METHOD_OTHER.
 */
#define H2S_METHOD_OTHER "(other)"
#define H2S_METHOD_BUCKETS 64

struct h2s_method_stats {
	struct h2s_method_stats *next;
	char path[H2S_ROUTE_PREFIX_MAX];
	uint64_t rpcs, errors; /* errors: every ending but grpc-status 0 */
	struct h2s_lat lat;
};

struct h2s_svc_stats {
	struct h2s_svc_stats *next;
	struct h2s_addr vip;
	char name[64];
	struct h2s_lat lat;
	struct h2s_method_stats *method[H2S_METHOD_BUCKETS];
	uint32_t nmethods;
	struct h2s_method_stats *other;
	uint64_t bytes_request, bytes_response;
	/* its resolver */
	uint64_t lookups_ok, lookups_failed;
	double last_lookup_ok; /* unix seconds, 0: never */
	uint32_t resolved;     /* backends in the last good answer */
};

struct h2s_pair_stats {
	struct h2s_pair_stats *next;
	struct h2s_addr vip, be; /* be all zero: the RPC never reached a backend */
	struct h2s_svc_stats *svc;
	uint64_t rpcs[H2S_RPC__COUNT];
	uint64_t spliced; /* connections relayed as bytes (not h2c) */
};

struct h2s_be_stats {
	struct h2s_be_stats *next;
	struct h2s_addr addr;
	char name[64];
	uint64_t ejections[H2S_EJECT__COUNT];
	uint64_t goaways;          /* GOAWAYs received */
	uint64_t conns_opened, connect_failures;
	uint64_t checks_ok, checks_failed;
	uint8_t health;            /* enum h2s_health, last seen */
	double health_changed;     /* unix seconds */
	/* Gauges, filled only in a snapshot of every loop (workers.h h2s_totals): streams in
	 * flight and connections open to it, all loops together.
	 */
	uint32_t inflight, conns;
	uint8_t ejected; /* 1: some loop ejects it now */
};

#define H2S_STATS_BUCKETS 256

/* Why a client connection was closed for what it sent (proxy/calm.h): over a frame budget
 * (GOAWAY ENHANCE_YOUR_CALM), or a connection error of the protocol (GOAWAY with its code).
 */
enum h2s_abuse {
	H2S_ABUSE_SETTINGS,
	H2S_ABUSE_PING,
	H2S_ABUSE_WINDOW_UPDATE,
	H2S_ABUSE_PRIORITY,
	H2S_ABUSE_EMPTY_DATA,
	H2S_ABUSE_UNKNOWN_FRAME,
	H2S_ABUSE_CLOSED_STREAM, /* HEADERS, DATA or RST_STREAM on a closed stream */
	H2S_ABUSE_RAPID_RESET,   /* the client reset streams faster than the reset budget */
	H2S_ABUSE_MADE_YOU_RESET, /* its frames made us reset streams faster than that */
	H2S_ABUSE_PROTOCOL,      /* a connection error (RFC 9113 section 5.4.1) */
	H2S_ABUSE__COUNT
};
/* The metrics label of k ("settings", "rapid_reset", ...). */
const char *h2s_abuse_name(enum h2s_abuse k);

struct h2s_stats {
	struct h2s_svc_stats *svc[H2S_STATS_BUCKETS];
	struct h2s_pair_stats *pair[H2S_STATS_BUCKETS];
	struct h2s_be_stats *be[H2S_STATS_BUCKETS];
	/* daemon-wide */
	uint64_t conns_accepted, capture_misses;
	/* Captured connections closed at once over a cap (max_client_connections, in all and
	 * per source), and the times accepting paused: out of descriptors or socket memory.
	 */
	uint64_t conns_refused_total, conns_refused_per_source, accept_pauses;
	uint64_t streams_total, streams_failed; /* failed: answered by h2steer itself */
	uint32_t streams_live;
	uint64_t retries, retries_denied;
	uint32_t retries_live; /* replays not answered yet (the retry budget) */
	uint64_t drains; /* backends that stopped taking RPCs (drained or removed) */
	uint32_t splices_live; /* connections relayed as bytes now */
	/* Header blocks over max_header_list: from clients (answered by h2steer), from
	 * backends (the stream failed toward its client).
	 */
	uint64_t client_hdrs_too_large, backend_hdrs_too_large;
	/* Client connections closed by a timeout: no preface + SETTINGS in time, idle
	 * (GOAWAY NO_ERROR first), a frame or header block left unfinished (settings.h).
	 */
	uint64_t client_handshake_timeouts, client_idle_closed, client_frame_timeouts;
	/* Backend connections: PINGs sent, and connections found dead (no answer to one). */
	uint64_t backend_pings, backend_ping_timeouts;
	/* Tries that got no response headers in time: try_timeout_ms, or the call's deadline. */
	uint64_t try_timeouts, try_deadlines;
	/* Backends ejected that a service still uses, because more of its backends would be
	 * out than outlier_max_ejection_percent allows (counted when that starts).
	 */
	uint64_t ejections_spared;
	uint64_t client_abuse[H2S_ABUSE__COUNT]; /* client connections closed, by cause */
	/* Memory budgets (proxy/relay.h): body bytes buffered now; new streams refused over
	 * client_buffer_max (conn) or buffer_total_mib (total); responses reset for going over
	 * either; times a connection's uploads were made to wait; clients closed for taking no
	 * byte in client_write_timeout_ms; malloc_trim() calls that gave memory back.
	 */
	uint64_t buffered;
	uint64_t mem_refused_conn, mem_refused_total, mem_resets, mem_upload_waits;
	uint64_t clients_stalled, malloc_trims;
};

/* Find or create (NULL only when out of memory). */
struct h2s_svc_stats *h2s_stats_service(struct h2s_stats *s, const struct h2s_addr *vip);
struct h2s_pair_stats *h2s_stats_pair(struct h2s_stats *s, const struct h2s_addr *vip,
				      const struct h2s_addr *be);
struct h2s_be_stats *h2s_stats_backend(struct h2s_stats *s, const struct h2s_addr *addr);
void h2s_stats_free(struct h2s_stats *s);

/* The stats of one method of svc (path truncated to fit); NULL only when out of memory. */
struct h2s_method_stats *h2s_stats_method(struct h2s_svc_stats *svc, const char *path);

/* fn(m, arg) for every method of svc, "(other)" last. */
void h2s_stats_each_method(const struct h2s_svc_stats *svc,
			   void (*fn)(const struct h2s_method_stats *m, void *arg), void *arg);

/* One finished RPC: its status label index and its duration; m (may be NULL) its method. */
void h2s_stats_rpc(struct h2s_pair_stats *p, struct h2s_method_stats *m, int status,
		   double seconds);

/* Add every count of src to dst (entries created as needed; a health state taken when newer):
 * one loop's stats into a snapshot of all of them. -ENOMEM leaves dst partly added to.
 */
int h2s_stats_merge(struct h2s_stats *dst, const struct h2s_stats *src);

/* Walk every entry of a kind (for rendering). */
#define h2s_stats_each(var, table)                                                     \
	for (unsigned _b = 0; _b < H2S_STATS_BUCKETS; _b++)                              \
		for (var = (table)[_b]; var; var = var->next)

#endif /* H2S_STATS_H */
