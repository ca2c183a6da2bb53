/* relay.h — one relayed stream (= one RPC): its client side on a client connection, its
 * upstream side on a pooled backend connection, and the rules that couple the two.
 *
 *   client --HEADERS/DATA/trailers--> [req_q]  --data provider--> upstream
 *   client <--HEADERS/DATA/trailers-- [resp_q] <--data provider-- upstream
 *
 * Flow control is coupled per stream: bytes read on one leg are acknowledged to their sender at
 * stream level only when the other leg's data provider has taken them, so a slow reader slows
 * only its own stream, and each queue stays within one stream window. Connection windows are
 * acknowledged on arrival, so one stalled stream cannot starve the others of its connection.
 *
 * Lifetime: the stream is freed when its client side is closed and it is off any upstream
 * connection; each nghttp2 session refers to it only until that side's on_stream_close (or
 * the session's teardown), so neither side ever sees a freed stream.
 */
#ifndef H2S_RELAY_H
#define H2S_RELAY_H

#include "bytequeue.h"
#include "calm.h"
#include "conn.h"
#include "frametrack.h"
#include "hdrs.h"
#include "h2s_maps.h"
#include "list.h"
#include "loop.h"
#include "stats.h"

#include <stdint.h>

struct h2s_backend_rt;

/* A captured client connection (server session). */
struct h2s_client {
	struct h2s_conn c;
	struct h2s_list link;    /* in daemon->clients */
	struct h2s_list streams; /* struct h2s_stream.cl_link */
	struct h2s_addr peer, vip;
	char name[80];           /* "peer -> vip", for logs */
	struct h2s_timer goaway_timer;
	struct h2s_timer hello_timer; /* until the client's first frame (preface + SETTINGS) */
	/* client_idle_ms and client_frame_timeout_ms (settings.h), checked when they fire: */
	struct h2s_timer idle_timer, frame_timer;
	struct h2s_frametrack ft;
	uint32_t ft_begun;     /* ft.begun when frame_begun_ms was taken */
	uint64_t frame_begun_ms; /* the unfinished frame or header block began then */
	uint64_t last_active_ms; /* a frame completed, or a stream closed */
	uint64_t streams_total;
	uint32_t streams_open;
	uint64_t accepted_ms;
	struct h2s_origin origin; /* what the kernel recorded: the VIP, process, cgroup */
	/* The frame tap (h2_server.c): where the client's byte stream is, frame-wise. */
	uint32_t preface_left, payload_left;
	uint8_t hd[9], hd_have;
	bool calm_closed; /* closed for what it sent: the rest of its bytes are dropped */
	struct h2s_bucket flood, resets; /* settings client_flood_*, client_reset_* */
	struct h2s_sids sids;
	/* Memory (relay.c "memory budgets"): body bytes its streams hold; received DATA whose
	 * connection window we have not acknowledged because it was over budget.
	 */
	uint64_t buffered;
	size_t conn_owed;
	/* client_write_timeout_ms: armed while frames wait for its socket; `sent_mark` is
	 * what the socket had taken when it was.
	 */
	struct h2s_timer write_timer;
	uint64_t sent_mark;
};

/* One connection to a backend (client session), pooled per backend. */
struct h2s_upstream {
	struct h2s_conn c;
	struct h2s_list pool_link; /* in backend->conns */
	struct h2s_list streams;   /* struct h2s_stream.up_link */
	struct h2s_backend_rt *be;
	uint32_t nstreams;         /* our count of open streams (nghttp2 has no public one) */
	bool established;          /* connect() completed */
	bool settings_received;    /* the backend's SETTINGS (its stream limit) arrived */
	uint64_t ready_ns;         /* when they did: latency samples start there at the earliest */
	struct h2s_timer timer;    /* connect timeout, then idle timeout */
	/* Liveness (backend_ping_interval_ms): a PING when streams are open and nothing came
	 * for that long; ping_out until any byte comes back.
	 */
	struct h2s_timer ping_timer;
	bool ping_out;
	uint64_t ping_sent_ms;
	uint32_t quiet_pings; /* PINGs sent since the backend last sent HEADERS or DATA */
	uint64_t answered_ms; /* loop time of the last HEADERS or DATA from the backend */
};

enum {
	H2S_ST_REQ_END = 1 << 0,        /* client sent END_STREAM: req_q holds the rest */
	H2S_ST_RESP_END = 1 << 1,       /* backend sent END_STREAM: resp_q holds the rest */
	H2S_ST_RESP_STARTED = 1 << 2,   /* response headers were submitted to the client */
	H2S_ST_CLIENT_CLOSED = 1 << 3,  /* client side closed (stream or whole connection) */
	H2S_ST_REPLAY_LOST = 1 << 4,    /* more body went upstream than req_sent keeps: no replay */
	H2S_ST_REFUSED = 1 << 5,        /* a backend refused it (REFUSED_STREAM / GOAWAY) */
	H2S_ST_HEADERS_SENT = 1 << 6,   /* its request HEADERS were written to the backend */
	H2S_ST_BUDGET = 1 << 7,         /* a replay holding one unit of the retry budget */
	H2S_ST_AFFINITY = 1 << 8,       /* `affinity` holds the hash of its affinity header */
	H2S_ST_GRPC = 1 << 9,           /* a well-formed gRPC request: see h2s_rpc_outcome() */
	H2S_ST_TRY_DEADLINE = 1 << 10,  /* try_timer runs to the call's deadline */
	H2S_ST_RESET_RELAYED = 1 << 11, /* the client's copy is reset because the backend's was */
	H2S_ST_OVERFLOW = 1 << 12,      /* reset: its response went over a memory budget */
};

/* Request body is kept after it went upstream, until the response starts, so a stream the
 * backend provably did not process can be replayed elsewhere; bodies larger than the daemon's
 * replay_body_max are not replayable.
 */

struct h2s_stream {
	struct h2s_list cl_link, up_link;
	struct h2s_plane *p;
	struct h2s_client *cl; /* NULL once the client connection is gone */
	int32_t csid;
	struct h2s_upstream *up; /* NULL when not on an upstream stream; while set, the stream
				  * counts in up->be->inflight */
	int32_t usid;
	uint32_t flags;
	uint32_t attempts;
	const struct h2s_backend_rt *avoid; /* the backend a replay comes from (only compared) */
	/* For the metrics: where it went, how it ended (enum-like H2S_RPC_* or a gRPC code). */
	struct h2s_svc_stats *svc;
	struct h2s_pair_stats *pair;
	int status;
	uint64_t t0_ns;
	uint64_t sent_ns;    /* put on its current upstream stream (peak_ewma's latency sample) */
	uint64_t req_end_ns; /* the client's END_STREAM arrived */
	uint64_t affinity; /* see H2S_ST_AFFINITY */
	/* The call's grpc-timeout in ms (0: none), and the clock of its current try (relay.c
	 * try_expired), armed while it waits for response headers.
	 */
	uint64_t deadline_ms;
	struct h2s_timer try_timer;
	char path[H2S_ROUTE_PREFIX_MAX]; /* :path (the gRPC method), truncated: routes, stats */
	struct h2s_hdrs req, req_trailers, resp, resp_trailers;
	struct h2s_bytequeue req_q, resp_q;
	struct h2s_bytequeue req_sent; /* sent body kept for a replay (replay_body_max) */
	size_t req_replayed; /* head of req_q that is a replay: the client was credited already */
	size_t held; /* bytes in req_q, resp_q and req_sent, as counted in the budgets */
};

/* ---- memory budgets (relay.c) ---- */
enum h2s_budget { H2S_BUDGET_OK, H2S_BUDGET_CONN, H2S_BUDGET_TOTAL };
/* Would `more` bytes take cl over client_buffer_max, or over buffer_total_mib while cl holds
 * more than a stream window?
 */
enum h2s_budget h2s_client_over_budget(const struct h2s_client *cl, size_t more);
/* What must fit in cl's budget before it takes more: for a new stream (one stream window),
 * else for its uploads (one connection window); at most half of client_buffer_max.
 */
size_t h2s_budget_room(const struct h2s_client *cl, bool new_stream);
/* DATA of len bytes arrived on cl: acknowledge its connection window now, or once cl is
 * under budget again.
 */
void h2s_relay_client_data(struct h2s_client *cl, size_t len);
/* Acknowledge what cl's connection owes, if it is under budget now. */
void h2s_relay_release_owed(struct h2s_client *cl);
/* Count again what st holds, after its header blocks changed. */
void h2s_relay_held_sync(struct h2s_stream *st);
/* Body and header bytes held by every stream of the process. */
int64_t h2s_relay_buffered_all(void);

/* ---- from the client leg (h2_server.c) ---- */
struct h2s_stream *h2s_stream_new(struct h2s_client *cl, int32_t csid);
/* Request headers complete: pick a backend and open the upstream stream; when they went over
 * max_header_list (st->req.over), answer RESOURCE_EXHAUSTED (431 if not gRPC) instead.
 */
void h2s_relay_request_start(struct h2s_stream *st);
int h2s_relay_request_data(struct h2s_stream *st, const uint8_t *data, size_t len);
/* END_STREAM (or request trailers) arrived. */
void h2s_relay_request_end(struct h2s_stream *st);
void h2s_relay_client_closed(struct h2s_stream *st, uint32_t error_code);
/* The client connection is going away: every stream of it is closed. */
void h2s_relay_client_gone(struct h2s_client *cl);
/* The client session's send_data callback (nghttp2_send_data_callback): a DATA frame of the
 * response, its bytes copied from the stream's queue into the connection's batch (conn.h,
 * h2s_conn_data_frame).
 */
int h2s_relay_response_send(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd,
			    size_t len, nghttp2_data_source *src, void *ud);

/* ---- from the upstream leg (h2_upstream.c) ---- */
/* The upstream session's send_data callback: a DATA frame of the request (as above). */
int h2s_relay_request_send(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd,
			   size_t len, nghttp2_data_source *src, void *ud);
void h2s_relay_response_headers(struct h2s_stream *st, bool end_stream);
void h2s_relay_informational(struct h2s_stream *st);
int h2s_relay_response_data(struct h2s_stream *st, const uint8_t *data, size_t len);
void h2s_relay_response_end(struct h2s_stream *st);
void h2s_relay_upstream_closed(struct h2s_stream *st, uint32_t error_code);
/* The backend's SETTINGS leave no room for this stream, whose HEADERS are still queued in
 * nghttp2: take it back and open it on another connection.
 */
void h2s_relay_move(struct h2s_stream *st);
/* The upstream connection is gone; unproven when it never proved to be a working HTTP/2
 * backend (no SETTINGS): then none of its streams counts as seen by the backend.
 */
void h2s_relay_upstream_lost(struct h2s_upstream *up, bool unproven, const char *why);
/* Its response headers or trailers went over max_header_list (hdrs.h): the client's stream
 * fails alone with INTERNAL (in trailers if the response started); the caller resets the
 * upstream stream.
 */
void h2s_relay_response_too_large(struct h2s_stream *st);
/* The backend sent RST_STREAM(error_code) on the stream. */
void h2s_relay_backend_reset(struct h2s_stream *st, uint32_t error_code);

/* ---- passive ejection: what the end of a stream says about its backend ---- */

enum h2s_outcome {
	H2S_OUTCOME_NOTHING, /* neither for nor against it */
	H2S_OUTCOME_OK,      /* it answered: its failure streak ends */
	H2S_OUTCOME_FAILED,  /* one failed RPC against it */
};

enum h2s_stream_end {
	H2S_END_STATUS, /* the response ended; code: its grpc-status, -1 when it had none */
	H2S_END_RESET,  /* the backend sent RST_STREAM; code: its HTTP/2 error code */
	H2S_END_LOST,   /* the working connection to it was lost with the stream open */
};

/* grpc_request: the stream's request was a well-formed gRPC request (H2S_ST_GRPC). */
enum h2s_outcome h2s_rpc_outcome(bool grpc_request, enum h2s_stream_end end, int64_t code);
/* A grpc-timeout value ("100m", "5S": 1-8 digits and a unit H M S m u n) in ms, rounded up;
 * 0 when absent or malformed.
 */
uint64_t h2s_grpc_timeout_ms(const uint8_t *v, size_t len);
/* The request headers h make a well-formed gRPC request. */
bool h2s_is_grpc_request(const struct h2s_hdrs *h);

#endif /* H2S_RELAY_H */
