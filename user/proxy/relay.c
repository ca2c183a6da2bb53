/* relay.c — see relay.h. */
#include "relay.h"

#include "plane.h"
#include "retry.h"
#include "addr.h"
#include "h2_upstream.h"
#include "hash.h"
#include "log.h"
#include "registry.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* gRPC status codes this file produces. */
#define GRPC_DEADLINE_EXCEEDED 4
#define GRPC_RESOURCE_EXHAUSTED 8
#define GRPC_INTERNAL 13
#define GRPC_UNAVAILABLE 14

/* Header blocks up to this many fields are converted on the stack. */
#define NV_STACK 64

/* Request bytes have nowhere to go any more (response finished or failed): acknowledge and
 * drop them as they come.
 */
#define H2S_ST_REQ_DISCARD (1u << 31)

static void release_budget(struct h2s_stream *st);
static void try_fire(struct h2s_timer *t);
static void held_sync(struct h2s_stream *st);
static void cancel_upstream(struct h2s_stream *st);

static void stream_free(struct h2s_stream *st)
{
	h2s_timer_cancel(&st->p->loop, &st->try_timer);
	if (st->cl)
		st->cl->streams_open--;
	st->p->stats.streams_live--;
	release_budget(st);
	h2s_list_del(&st->cl_link);
	h2s_list_del(&st->up_link);
	h2s_hdrs_free(&st->req);
	h2s_hdrs_free(&st->req_trailers);
	h2s_hdrs_free(&st->resp);
	h2s_hdrs_free(&st->resp_trailers);
	h2s_bq_clear(&st->req_q);
	h2s_bq_clear(&st->resp_q);
	h2s_bq_clear(&st->req_sent);
	held_sync(st);
	free(st);
}

/* A replayed stream holds one unit of the retry budget until a backend answers it. */
static void release_budget(struct h2s_stream *st)
{
	if (st->flags & H2S_ST_BUDGET) {
		st->flags &= ~H2S_ST_BUDGET;
		h2s_retry_give_back(&st->p->stats);
	}
}

static void maybe_free(struct h2s_stream *st)
{
	if ((st->flags & H2S_ST_CLIENT_CLOSED) && !st->up)
		stream_free(st);
}

struct h2s_stream *h2s_stream_new(struct h2s_client *cl, int32_t csid)
{
	struct h2s_stream *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	h2s_list_init(&st->cl_link);
	h2s_list_init(&st->up_link);
	st->cl = cl;
	st->csid = csid;
	h2s_hdrs_init(&st->req);
	h2s_hdrs_init(&st->req_trailers);
	h2s_hdrs_init(&st->resp);
	h2s_hdrs_init(&st->resp_trailers);
	h2s_bq_init(&st->req_q);
	h2s_bq_init(&st->resp_q);
	h2s_bq_init(&st->req_sent);
	h2s_list_add_tail(&cl->streams, &st->cl_link);
	cl->streams_total++;
	cl->streams_open++;
	st->p = cl->c.p;
	st->p->stats.streams_total++;
	st->p->stats.streams_live++;
	st->svc = h2s_stats_service(&st->p->stats, &cl->vip);
	st->status = H2S_RPC_NONE;
	st->t0_ns = h2s_now_ns();
	st->try_timer.fire = try_fire;
	return st;
}

/* ---- flow-control acknowledgements ----
 *
 * Connection windows are acknowledged as soon as bytes arrive (in the legs' on_data_chunk),
 * so one slow stream never holds a connection's window that other streams share. Stream
 * windows are acknowledged only when the other leg took the bytes: each stream is
 * back-pressured on its own, and buffers at most one stream window per direction.
 */

static void ack_client(struct h2s_stream *st, size_t n)
{
	if (!n || !st->cl || (st->flags & H2S_ST_CLIENT_CLOSED))
		return;
	nghttp2_session_consume_stream(st->cl->c.ng, st->csid, n);
	h2s_conn_mark(&st->cl->c);
}

static void ack_upstream(struct h2s_stream *st, size_t n)
{
	if (!n || !st->up)
		return;
	nghttp2_session_consume_stream(st->up->c.ng, st->usid, n);
	h2s_conn_mark(&st->up->c);
}

static void discard_request(struct h2s_stream *st)
{
	st->flags |= H2S_ST_REQ_DISCARD;
	st->req_replayed = 0;
	h2s_bq_clear(&st->req_q);
	held_sync(st);
}

static void discard_response(struct h2s_stream *st)
{
	h2s_bq_clear(&st->resp_q);
	held_sync(st);
}

static int submit_hdrs(const struct h2s_hdrs *h, int (*fn)(void *arg, const nghttp2_nv *nv,
							     size_t n),
		       void *arg)
{
	nghttp2_nv stack[NV_STACK], *nv = stack;
	int rc;

	if (h->n > NV_STACK) {
		nv = malloc(h->n * sizeof(*nv));
		if (!nv)
			return NGHTTP2_ERR_NOMEM;
	}
	h2s_hdrs_to_nv(h, nv);
	rc = fn(arg, nv, h->n);
	if (nv != stack)
		free(nv);
	return rc;
}

/* ---- locally generated answers ---- */

/* application/grpc, alone or with a codec (+proto) or parameters, as gRPC over HTTP/2 writes
 * it; the case as written, since that is how grpc-go matches it.
 */
static bool grpc_content_type(const uint8_t *ct, size_t len)
{
	return len >= 16 && memcmp(ct, "application/grpc", 16) == 0 &&
	       (len == 16 || ct[16] == '+' || ct[16] == ';');
}

static bool is_grpc(const struct h2s_stream *st)
{
	size_t len;
	const uint8_t *ct = h2s_hdrs_get(&st->req, "content-type", &len);

	/* req is freed once the response started; by then the answer is the backend's anyway. */
	return !ct || grpc_content_type(ct, len);
}

/* Finish the client's stream with a gRPC status of ours (UNAVAILABLE when no backend could
 * take it, or when its backend connection died mid-way).
 */
static void stream_fail(struct h2s_stream *st, int grpc_code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void stream_fail(struct h2s_stream *st, int grpc_code, const char *fmt, ...)
{
	char msg[256], code[12];
	struct h2s_client *cl = st->cl;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(code, sizeof(code), "%d", grpc_code);
	discard_request(st);
	if (!cl || (st->flags & H2S_ST_CLIENT_CLOSED))
		return;
	cl->c.p->stats.streams_failed++;
	st->status = grpc_code;
	log_debug("%s stream %d: %s", cl->name, st->csid, msg);
	if (!(st->flags & H2S_ST_RESP_STARTED)) {
		/* Trailers-Only: one HEADERS with END_STREAM. */
		bool grpc = is_grpc(st);
		/* Not gRPC: an HTTP status says it (431, RFC 6585: header fields too large). */
		const char *http = grpc_code == GRPC_RESOURCE_EXHAUSTED ? "431" : "503";
		nghttp2_nv nv[] = {
			{ (uint8_t *)":status", (uint8_t *)(grpc ? "200" : http), 7, 3, 0 },
			{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
			{ (uint8_t *)"grpc-status", (uint8_t *)code, 11, strlen(code), 0 },
			{ (uint8_t *)"grpc-message", (uint8_t *)msg, 12, strlen(msg), 0 },
		};

		st->flags |= H2S_ST_RESP_STARTED | H2S_ST_RESP_END;
		nghttp2_submit_response(cl->c.ng, st->csid, nv, grpc ? 4 : 1, NULL);
	} else if (!(st->flags & H2S_ST_RESP_END)) {
		/* Headers already went out: the status travels in trailers after queued data. */
		h2s_hdrs_free(&st->resp_trailers);
		h2s_hdrs_add(&st->resp_trailers, (const uint8_t *)"grpc-status", 11,
			     (const uint8_t *)code, strlen(code));
		h2s_hdrs_add(&st->resp_trailers, (const uint8_t *)"grpc-message", 12,
			     (const uint8_t *)msg, strlen(msg));
		st->flags |= H2S_ST_RESP_END;
		nghttp2_session_resume_data(cl->c.ng, st->csid);
	}
	h2s_conn_mark(&cl->c);
}

/* ---- request: client -> backend ---- */

/* Body bytes that went upstream are kept until the response starts, up to H2S_REPLAY_MAX. */
static void keep_for_replay(struct h2s_stream *st, const uint8_t *buf, size_t n)
{
	if (st->flags & (H2S_ST_REPLAY_LOST | H2S_ST_RESP_STARTED))
		return;
	if (h2s_bq_len(&st->req_sent) + n > st->cl->c.p->set.replay_body_max ||
	    h2s_bq_append(&st->req_sent, buf, n) < 0) {
		st->flags |= H2S_ST_REPLAY_LOST;
		h2s_bq_clear(&st->req_sent);
	}
}

/* The request as it was before it went to the backend that refused it: kept body first. */
static void rewind_request(struct h2s_stream *st)
{
	struct h2s_bytequeue all = st->req_sent;

	/* The client was credited for these bytes when they first went upstream. */
	st->req_replayed = h2s_bq_len(&all);
	h2s_bq_init(&st->req_sent);
	h2s_bq_concat(&all, &st->req_q);
	st->req_q = all;
}

struct trailer_ctx {
	nghttp2_session *ng;
	int32_t sid;
};

static int submit_trailer_nv(void *arg, const nghttp2_nv *nv, size_t n)
{
	struct trailer_ctx *t = arg;

	return nghttp2_submit_trailer(t->ng, t->sid, nv, n);
}

/* DATA of the request: how much the next frame carries is decided here, its bytes leave the
 * queue in h2s_relay_request_send (NGHTTP2_DATA_FLAG_NO_COPY, conn.h), in the same
 * nghttp2_session_mem_send() that calls this: nothing changes the queue in between.
 */
static ssize_t req_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
			uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2s_stream *st = src->ptr;
	size_t q = h2s_bq_len(&st->req_q), n = q < len ? q : len;

	(void)buf;
	(void)ud;
	*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (n < q)
		return (ssize_t)n;
	if (!(st->flags & H2S_ST_REQ_END))
		return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (st->req_trailers.n) {
		/* Trailers must be submitted from here to follow the last DATA (nghttp2 sends
		 * HEADERS ahead of queued DATA otherwise). They stay held for a replay.
		 */
		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (submit_hdrs(&st->req_trailers, submit_trailer_nv,
				&(struct trailer_ctx){ ng, sid }) < 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST(INTERNAL_ERROR) */
	}
	return (ssize_t)n;
}

/* The bytes of a DATA frame that req_read or resp_read sized: its header, then len bytes out of
 * q, into c's batch (conn.h, h2s_conn_data_frame); *at: where the bytes went. 0, or what the
 * send_data callback returns.
 */
static int data_out(struct h2s_conn *c, struct h2s_bytequeue *q, const nghttp2_frame *f,
		    const uint8_t *framehd, size_t len, uint8_t **at)
{
	if (h2s_bq_len(q) < len || f->data.padlen)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* cannot be: see req_read */
	if (!(*at = h2s_conn_data_frame(c, framehd, len)))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	h2s_bq_read(q, *at, len);
	return 0;
}

int h2s_relay_request_send(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd,
			   size_t len, nghttp2_data_source *src, void *ud)
{
	struct h2s_stream *st = src->ptr;
	struct h2s_conn *c = &((struct h2s_upstream *)ud)->c;
	uint8_t *buf;
	size_t old;
	int rc;

	(void)ng;
	if ((rc = data_out(c, &st->req_q, f, framehd, len, &buf)))
		return rc;
	if (len) {
		old = len < st->req_replayed ? len : st->req_replayed;
		if (st->svc)
			st->svc->bytes_request += len - old;
		keep_for_replay(st, buf, len);
		st->req_replayed -= old;
		ack_client(st, len - old);
		held_sync(st);
	}
	return h2s_conn_data_sent(c);
}

struct submit_ctx {
	struct h2s_upstream *up;
	struct h2s_stream *st;
	bool body;
};

static int submit_request_nv(void *arg, const nghttp2_nv *nv, size_t n)
{
	struct submit_ctx *sc = arg;
	nghttp2_data_provider prd = { .source.ptr = sc->st, .read_callback = req_read };

	return nghttp2_submit_request(sc->up->c.ng, NULL, nv, n, sc->body ? &prd : NULL, sc->st);
}

/* ---- a try that gets no answer ----
 *
 * A backend that takes calls and never answers them (a wedged handler pool, a process whose
 * HTTP/2 stack lives on) used to hold each call it got until the client gave up: half the
 * calls of a two-backend service failed at their deadline, and nothing counted against it.
 * Each try now waits for response headers at most try_timeout_ms (if set) and at most what
 * is left of the call's grpc-timeout. Then the call fails (UNAVAILABLE for our limit, after
 * which the backend may have processed it: no replay; DEADLINE_EXCEEDED for the client's),
 * the backend's stream is cancelled, and it counts one failed RPC for passive ejection, so
 * that a few calls later it is ejected and the others go elsewhere. A grpc-timeout shorter
 * than try_deadline_min_ms is the client's choice a healthy backend may miss: it does not
 * count; nor does a deadline passing while the backend answered other calls on that
 * connection (outstanding-request ageing: only a backend silent for the whole try is
 * suspect). Nor does anything but a well-formed gRPC request (h2s_rpc_outcome()'s rule).
 */

static uint64_t age_ms(const struct h2s_stream *st)
{
	return (h2s_now_ns() - st->t0_ns) / 1000000;
}

static void try_arm(struct h2s_stream *st)
{
	uint64_t delay = st->p->set.try_timeout_ms, elapsed, left;

	st->flags &= ~H2S_ST_TRY_DEADLINE;
	if (st->deadline_ms) {
		elapsed = age_ms(st);
		left = elapsed < st->deadline_ms ? st->deadline_ms - elapsed : 1;
		if (!delay || left <= delay) {
			delay = left;
			st->flags |= H2S_ST_TRY_DEADLINE;
		}
	}
	if (delay)
		h2s_timer_arm(&st->p->loop, &st->try_timer, delay);
}

/* The try of st ran out (by_deadline: the call's own deadline): counted, logged, and
 * against the backend when it says something about it.
 */
static void try_judge(struct h2s_stream *st, bool by_deadline)
{
	struct h2s_plane *p = st->p;
	uint64_t waited = (h2s_now_ns() - st->sent_ns) / 1000000;
	/* A deadline passing says something only of a backend that answered nothing at all on
	 * that connection meanwhile: one that serves other calls is alive, and this call may be
	 * a long poll that found nothing to say.
	 */
	bool silent = st->up->answered_ms < st->sent_ns / 1000000;
	bool counts = (st->flags & H2S_ST_GRPC) &&
		      (!by_deadline || (silent && p->set.try_deadline_min_ms &&
					st->deadline_ms >= p->set.try_deadline_min_ms));
	char why[64];

	if (by_deadline)
		p->stats.try_deadlines++;
	else
		p->stats.try_timeouts++;
	log_limited(H2S_LOG_WARNING,
		    "backend %s: no response headers for %llu ms (%s)%s",
		    st->up->be->name, (unsigned long long)waited,
		    by_deadline ? "the call's grpc-timeout" : "try_timeout_ms",
		    counts ? ": counted as a failed RPC" : "");
	if (counts) {
		snprintf(why, sizeof(why), "no response in %llu ms", (unsigned long long)waited);
		h2s_backend_rpc_failed(&p->reg, st->up->be, why);
	}
}

static void try_fire(struct h2s_timer *t)
{
	struct h2s_stream *st = h2s_container_of(t, struct h2s_stream, try_timer);
	bool by_deadline = st->flags & H2S_ST_TRY_DEADLINE;
	const char *be;

	if (!st->up || (st->flags & (H2S_ST_RESP_STARTED | H2S_ST_CLIENT_CLOSED)))
		return;
	be = st->up->be->name;
	try_judge(st, by_deadline);
	if (by_deadline)
		stream_fail(st, GRPC_DEADLINE_EXCEEDED,
			    "h2steer: no response from backend %s within the call's deadline", be);
	else
		stream_fail(st, GRPC_UNAVAILABLE,
			    "h2steer: no response from backend %s within %u ms (try_timeout_ms)", be,
			    st->p->set.try_timeout_ms);
	cancel_upstream(st);
}

static int attach(struct h2s_stream *st, struct h2s_upstream *up)
{
	struct submit_ctx sc = {
		.up = up,
		.st = st,
		.body = !(st->flags & H2S_ST_REQ_END) || h2s_bq_len(&st->req_q) ||
			st->req_trailers.n,
	};
	int32_t sid = submit_hdrs(&st->req, submit_request_nv, &sc);

	if (sid < 0)
		return sid;
	st->up = up;
	st->usid = sid;
	st->sent_ns = h2s_now_ns();
	st->pair = h2s_stats_pair(&st->p->stats, &st->cl->vip, &up->be->addr);
	h2s_list_add_tail(&up->streams, &st->up_link);
	up->nstreams++;
	up->be->inflight++;
	up->be->rpcs++;
	try_arm(st);
	h2s_upstream_busy(up);
	h2s_conn_mark(&up->c);
	return 0;
}

/* Off the upstream stream: counts, and the connection window of bytes it will never read. */
static void detach(struct h2s_stream *st)
{
	struct h2s_upstream *up = st->up;

	if (!up)
		return;
	h2s_timer_cancel(&st->p->loop, &st->try_timer);
	h2s_list_del(&st->up_link);
	up->nstreams--;
	up->be->inflight--;
	st->up = NULL;
	h2s_upstream_stream_done(up);
}

/* The service whose backends serve st: its VIP's, or the target of the route its method
 * takes; st's affinity key is taken as that service says. NULL when st failed instead.
 */
static struct h2s_service_rt *service_of(struct h2s_stream *st)
{
	struct h2s_plane *p = st->p;
	struct h2s_service_rt *svc;

	if (h2s_registry_refresh(&p->reg) < 0)
		log_warn("cannot reload services from the maps; using the previous set");
	svc = h2s_registry_service(&p->reg, &st->cl->vip);
	if (!svc) {
		stream_fail(st, GRPC_UNAVAILABLE, "h2steer: %s is not a managed service any more",
			    st->cl->name);
		return NULL;
	}
	if (svc->nroutes) {
		struct h2s_addr to;
		char name[H2S_ADDR_STRLEN];
		struct h2s_service_rt *target = h2s_registry_route(&p->reg, svc, st->path, &to);

		if (!target) {
			stream_fail(st, GRPC_UNAVAILABLE,
				    "h2steer: %s routes this method to %s, which is not a service",
				    svc->name, h2s_addr_format(&to, name, sizeof(name)));
			return NULL;
		}
		svc = target;
	}
	if (svc->cfg.affinity_header[0]) {
		size_t len;
		const uint8_t *v = h2s_hdrs_get(&st->req, svc->cfg.affinity_header, &len);

		if (v) {
			st->affinity = h2s_hash64(v, len, 0);
			st->flags |= H2S_ST_AFFINITY;
		}
	}
	return svc;
}

/* The backend of st's next attempt: the registry's pick among svc's, or the plane's own. */
static struct h2s_backend_rt *pick(struct h2s_stream *st, struct h2s_service_rt *svc)
{
	struct h2s_plane *p = st->p;

	if (p->pick)
		return p->pick(p, st);
	return h2s_registry_pick(&p->reg, svc, st->avoid,
				 st->flags & H2S_ST_AFFINITY ? &st->affinity : NULL,
				 p->loop.now_ms);
}

void h2s_relay_request_start(struct h2s_stream *st)
{
	struct h2s_plane *p = st->p;
	struct h2s_service_rt *svc = NULL;
	const char *name;

	if (!st->path[0]) {
		size_t len;
		const uint8_t *v = h2s_hdrs_get(&st->req, ":path", &len);

		if (v) {
			len = len < sizeof(st->path) - 1 ? len : sizeof(st->path) - 1;
			memcpy(st->path, v, len);
			st->path[len] = '\0';
		}
		if (h2s_is_grpc_request(&st->req))
			st->flags |= H2S_ST_GRPC;
		v = h2s_hdrs_get(&st->req, "grpc-timeout", &len);
		st->deadline_ms = v ? h2s_grpc_timeout_ms(v, len) : 0;
	}
	if (st->req.over) {
		/* Not the request the client sent, and no backend is asked: answered alone. */
		stream_fail(st, GRPC_RESOURCE_EXHAUSTED,
			    "h2steer: request header list over %u bytes (max_header_list) or %d "
			    "fields",
			    p->set.max_header_list, H2S_HDRS_MAX_FIELDS);
		return;
	}
	if (!p->pick && !(svc = service_of(st)))
		return;
	/* A plane's own pick has no service: the messages name the client connection instead. */
	name = svc ? svc->name : st->cl->name;
	while (st->attempts < p->set.max_attempts) {
		struct h2s_backend_rt *be = pick(st, svc);
		struct h2s_upstream *up;
		int rc;

		st->attempts++;
		if (!be) {
			stream_fail(st, GRPC_UNAVAILABLE, "h2steer: service %s has no backends",
				    name);
			return;
		}
		up = h2s_pool_get(p, be);
		if (!up)
			continue; /* the pool marked the backend down */
		rc = attach(st, up);
		if (rc == 0)
			return;
		stream_fail(st, GRPC_INTERNAL, "h2steer: cannot open a stream to %s: %s", be->name,
			    nghttp2_strerror(rc));
		return;
	}
	if (st->flags & H2S_ST_REFUSED)
		stream_fail(st, GRPC_UNAVAILABLE,
			    "h2steer: backends of %s refused the stream %u times", name,
			    st->attempts);
	else
		stream_fail(st, GRPC_UNAVAILABLE, "h2steer: no backend of %s is reachable", name);
}

int h2s_relay_request_data(struct h2s_stream *st, const uint8_t *data, size_t len)
{
	if (st->flags & H2S_ST_REQ_DISCARD) {
		ack_client(st, len); /* nowhere to go: let the client finish sending */
		return 0;
	}
	if (h2s_bq_append(&st->req_q, data, len) < 0)
		return -ENOMEM;
	held_sync(st);
	if (st->up) {
		nghttp2_session_resume_data(st->up->c.ng, st->usid);
		h2s_conn_mark(&st->up->c);
	}
	return 0;
}

void h2s_relay_request_end(struct h2s_stream *st)
{
	st->flags |= H2S_ST_REQ_END;
	st->req_end_ns = h2s_now_ns();
	if (st->up) {
		nghttp2_session_resume_data(st->up->c.ng, st->usid);
		h2s_conn_mark(&st->up->c);
	}
}

static void cancel_upstream(struct h2s_stream *st)
{
	if (!st->up)
		return;
	nghttp2_submit_rst_stream(st->up->c.ng, NGHTTP2_FLAG_NONE, st->usid, NGHTTP2_CANCEL);
	h2s_conn_mark(&st->up->c);
}

/* The client side is over: whatever is left for the client is dropped, and the backend is
 * told to stop unless its side is complete too.
 */
/* The RPC is over for the client: count it once, with how it ended and how long it took. */
static void record(struct h2s_stream *st)
{
	struct h2s_pair_stats *p = st->pair;

	if (!p && st->svc) {
		struct h2s_addr none = { 0 };

		p = h2s_stats_pair(&st->p->stats, &st->svc->vip, &none);
	}
	if (p)
		h2s_stats_rpc(p, p->svc ? h2s_stats_method(p->svc, st->path) : NULL, st->status,
			      (double)(h2s_now_ns() - st->t0_ns) / 1e9);
}

static void client_side_over(struct h2s_stream *st)
{
	bool complete = (st->flags & H2S_ST_REQ_END) && (st->flags & H2S_ST_RESP_END) &&
			!(st->flags & H2S_ST_REQ_DISCARD);

	st->flags |= H2S_ST_CLIENT_CLOSED;
	record(st);
	discard_response(st);
	if (!complete) {
		discard_request(st);
		cancel_upstream(st);
	}
	maybe_free(st);
}

void h2s_relay_client_closed(struct h2s_stream *st, uint32_t error_code)
{
	if (error_code != NGHTTP2_NO_ERROR) {
		log_debug("%s stream %d closed with %s", st->cl->name, st->csid,
			  nghttp2_http2_strerror(error_code));
		if (!(st->flags & H2S_ST_RESP_END))
			st->status = H2S_RPC_RESET; /* cancelled or reset by the client */
		/* A client gives up at its deadline a moment before our clock of it (it
		 * started first): that reset is the same unanswered try.
		 */
		if (st->up && h2s_timer_armed(&st->try_timer) &&
		    (st->flags & H2S_ST_TRY_DEADLINE) && age_ms(st) * 10 >= st->deadline_ms * 9)
			try_judge(st, true);
	}
	h2s_timer_cancel(&st->p->loop, &st->try_timer);
	client_side_over(st);
}

void h2s_relay_client_gone(struct h2s_client *cl)
{
	struct h2s_list *pos, *tmp;

	h2s_list_for_each_safe(pos, tmp, &cl->streams) {
		struct h2s_stream *st = h2s_container_of(pos, struct h2s_stream, cl_link);

		/* Its session is being deleted: no acknowledgements to it any more. */
		cl->streams_open--;
		st->cl = NULL;
		h2s_list_del(&st->cl_link);
		if (st->flags & H2S_ST_CLIENT_CLOSED) {
			maybe_free(st);
		} else {
			if (!(st->flags & H2S_ST_RESP_END))
				st->status = H2S_RPC_RESET; /* the connection went away */
			client_side_over(st);
		}
	}
}

/* ---- passive ejection: what the end of a stream says about its backend ----
 *
 * The one place that decides which stream ends count for or against a backend (outlier.h
 * counts what it is told; connect failures and handshakes that never finish are counted apart,
 * at once, by h2_upstream.c). Passive ejection takes a backend away from every client, so only
 * what says something about the backend may count, never what a client's request provoked:
 *
 * - Only well-formed gRPC requests count, either way (POST, a :path, content-type
 *   application/grpc[+codec], te: trailers: gRPC over HTTP/2). How a gRPC server treats
 *   anything else is about the request: grpc-go resets a GET with PROTOCOL_ERROR and answers
 *   another content-type with 415; counting those let any client's curl eject healthy
 *   backends for everybody. Envoy's router, too, reads grpc-status only on gRPC requests.
 * - Against it, as Envoy's consecutive_gateway_failure (502, 503, 504 and the errors of the
 *   upstream connection itself): grpc-status UNAVAILABLE (the backend says it cannot serve
 *   now; gRPC maps 502-504 to it); RST_STREAM(INTERNAL_ERROR), the one HTTP/2 code by which an
 *   endpoint blames itself (RFC 9113 section 7); its connection lost with the stream open.
 * - For it: OK, and the statuses an application gives on purpose about a request it served
 *   (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION,
 *   ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, UNAUTHENTICATED).
 * - Nothing, because a client can provoke them from a healthy backend: CANCELLED, UNKNOWN,
 *   DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, DATA_LOSS (grpc-go itself answers an
 *   undecodable message INTERNAL, an oversized one RESOURCE_EXHAUSTED, a grpc-timeout the
 *   client set too short DEADLINE_EXCEEDED; a handler's plain error is UNKNOWN). gRFC A50
 *   counts every non-OK status and Envoy's consecutive_5xx every 5xx they map to: both trust
 *   their clients, which a balancer in front of any client cannot. Nor do the other resets:
 *   NO_ERROR and CANCEL end a stream on purpose, REFUSED_STREAM is replayed (never
 *   processed), and the rest (PROTOCOL_ERROR, FRAME_SIZE_ERROR, ENHANCE_YOUR_CALM, ...) blame
 *   the request's sender, whose headers, sizes and pace came from the client (Envoy counts
 *   every upstream reset, a known gap it marks TODO). Nor a response without grpc-status.
 * A try left unanswered (no response headers by try_timeout_ms or the call's grpc-timeout)
 * counts against the backend apart from this table: see try_judge().
 */
enum h2s_outcome h2s_rpc_outcome(bool grpc_request, enum h2s_stream_end end, int64_t code)
{
	static const enum h2s_outcome by_status[17] = {
		[0] = H2S_OUTCOME_OK,      /* OK */
		[3] = H2S_OUTCOME_OK,      /* INVALID_ARGUMENT */
		[5] = H2S_OUTCOME_OK,      /* NOT_FOUND */
		[6] = H2S_OUTCOME_OK,      /* ALREADY_EXISTS */
		[7] = H2S_OUTCOME_OK,      /* PERMISSION_DENIED */
		[9] = H2S_OUTCOME_OK,      /* FAILED_PRECONDITION */
		[10] = H2S_OUTCOME_OK,     /* ABORTED */
		[11] = H2S_OUTCOME_OK,     /* OUT_OF_RANGE */
		[12] = H2S_OUTCOME_OK,     /* UNIMPLEMENTED */
		[14] = H2S_OUTCOME_FAILED, /* UNAVAILABLE */
		[16] = H2S_OUTCOME_OK,     /* UNAUTHENTICATED */
	};

	if (!grpc_request)
		return H2S_OUTCOME_NOTHING;
	switch (end) {
	case H2S_END_LOST:
		return H2S_OUTCOME_FAILED;
	case H2S_END_RESET:
		return code == NGHTTP2_INTERNAL_ERROR ? H2S_OUTCOME_FAILED : H2S_OUTCOME_NOTHING;
	case H2S_END_STATUS:
		break;
	}
	return code >= 0 && code < 17 ? by_status[code] : H2S_OUTCOME_NOTHING;
}

uint64_t h2s_grpc_timeout_ms(const uint8_t *v, size_t len)
{
	uint64_t n = 0, ns_per;

	if (len < 2 || len > 9)
		return 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[len - 1]) {
	case 'H': ns_per = 3600000000000ull; break;
	case 'M': ns_per = 60000000000ull; break;
	case 'S': ns_per = 1000000000ull; break;
	case 'm': ns_per = 1000000ull; break;
	case 'u': ns_per = 1000ull; break;
	case 'n': ns_per = 1ull; break;
	default: return 0;
	}
	/* At most 99999999 H: no overflow in ms (3.6e17), but in ns; so divide first. */
	if (ns_per >= 1000000ull)
		n *= ns_per / 1000000ull;
	else
		n = (n * ns_per + 999999) / 1000000;
	return n ? n : 1;
}

bool h2s_is_grpc_request(const struct h2s_hdrs *h)
{
	size_t mlen, plen, clen, tlen;
	const uint8_t *m = h2s_hdrs_get(h, ":method", &mlen);
	const uint8_t *p = h2s_hdrs_get(h, ":path", &plen);
	const uint8_t *ct = h2s_hdrs_get(h, "content-type", &clen);
	const uint8_t *te = h2s_hdrs_get(h, "te", &tlen);

	return m && mlen == 4 && memcmp(m, "POST", 4) == 0 && p && plen > 1 && p[0] == '/' &&
	       ct && grpc_content_type(ct, clen) && te && tlen == 8 &&
	       strncasecmp((const char *)te, "trailers", 8) == 0;
}

/* Tell passive ejection how st ended on its backend (a status or a reset). */
static void judge(struct h2s_stream *st, enum h2s_stream_end end, int64_t code)
{
	char why[48];

	switch (h2s_rpc_outcome(st->flags & H2S_ST_GRPC, end, code)) {
	case H2S_OUTCOME_OK:
		h2s_backend_ok(&st->p->reg, st->up->be);
		break;
	case H2S_OUTCOME_FAILED:
		if (end == H2S_END_RESET)
			snprintf(why, sizeof(why), "RST_STREAM %s",
				 nghttp2_http2_strerror((uint32_t)code));
		else
			snprintf(why, sizeof(why), "grpc-status %lld", (long long)code);
		h2s_backend_rpc_failed(&st->p->reg, st->up->be, why);
		break;
	case H2S_OUTCOME_NOTHING:
		break;
	}
}

/* ---- memory budgets ----
 *
 * What a stream holds (the bodies in req_q, resp_q and req_sent, and its decoded header
 * blocks, each also capped by max_header_list) is counted in its client connection, its loop
 * and the whole process. Against client_buffer_max (a connection) and buffer_total_mib (the process):
 * - new streams are refused (REFUSED_STREAM: never processed, gRPC clients retry them)
 *   unless one stream window still fits;
 * - the client's uploads wait unless one connection window (what it may send unasked) still
 *   fits: its connection window is acknowledged once it does again;
 * - a response that would go over is reset (ENHANCE_YOUR_CALM to the client, which gRPC
 *   reads as RESOURCE_EXHAUSTED; CANCEL to the backend) and its bytes dropped at once: so a
 *   client that does not read holds at most the budget, never its stream windows.
 * The process total bites only connections holding more than one stream window: a client
 * that reads as it goes keeps working while others are over.
 */
static _Atomic int64_t buffered_all;

static void held_sync(struct h2s_stream *st)
{
	size_t now = h2s_bq_len(&st->req_q) + h2s_bq_len(&st->resp_q) + h2s_bq_len(&st->req_sent) +
		     st->req.bytes + st->req_trailers.bytes + st->resp.bytes +
		     st->resp_trailers.bytes;
	int64_t d = (int64_t)now - (int64_t)st->held;

	if (!d)
		return;
	st->held = now;
	st->p->stats.buffered += (uint64_t)d;
	atomic_fetch_add_explicit(&buffered_all, d, memory_order_relaxed);
	if (st->cl) {
		st->cl->buffered += (uint64_t)d;
		if (d < 0 && st->cl->conn_owed)
			h2s_relay_release_owed(st->cl);
	}
}

void h2s_relay_held_sync(struct h2s_stream *st)
{
	held_sync(st);
}

int64_t h2s_relay_buffered_all(void)
{
	return atomic_load_explicit(&buffered_all, memory_order_relaxed);
}

enum h2s_budget h2s_client_over_budget(const struct h2s_client *cl, size_t more)
{
	const struct h2s_settings *set = &cl->c.p->set;

	if (cl->buffered + more > set->client_buffer_max)
		return H2S_BUDGET_CONN;
	if (cl->buffered >= set->stream_window &&
	    h2s_relay_buffered_all() + (int64_t)more > ((int64_t)set->buffer_total_mib << 20))
		return H2S_BUDGET_TOTAL;
	return H2S_BUDGET_OK;
}

/* Room a connection must have left: for its uploads to flow, what it may still send unasked
 * (one connection window); for a new stream, one stream window. At most half the budget, so
 * that a budget smaller than a window still lets one through.
 */
size_t h2s_budget_room(const struct h2s_client *cl, bool new_stream)
{
	const struct h2s_settings *set = &cl->c.p->set;
	size_t want = new_stream ? set->stream_window : set->conn_window;

	return want < set->client_buffer_max / 2 ? want : set->client_buffer_max / 2;
}

void h2s_relay_release_owed(struct h2s_client *cl)
{
	if (cl->c.dead || h2s_client_over_budget(cl, h2s_budget_room(cl, false)))
		return;
	nghttp2_session_consume_connection(cl->c.ng, cl->conn_owed);
	cl->conn_owed = 0;
	h2s_conn_mark(&cl->c);
}

void h2s_relay_client_data(struct h2s_client *cl, size_t len)
{
	if (!cl->conn_owed && !h2s_client_over_budget(cl, h2s_budget_room(cl, false))) {
		nghttp2_session_consume_connection(cl->c.ng, len);
		return;
	}
	if (!cl->conn_owed) {
		cl->c.p->stats.mem_upload_waits++;
		log_limited(H2S_LOG_WARNING,
			    "client %s: %zu bytes buffered, over its memory budget "
			    "(client_buffer_max %u, buffer_total_mib %u): its uploads wait",
			    cl->name, (size_t)cl->buffered, cl->c.p->set.client_buffer_max,
			    cl->c.p->set.buffer_total_mib);
	}
	cl->conn_owed += len;
}

/* The response bytes would take st's client over a budget: reset the stream both ways and
 * drop what it holds (true), or go on (false).
 */
static bool response_over_budget(struct h2s_stream *st, size_t len)
{
	struct h2s_client *cl = st->cl;
	enum h2s_budget b = h2s_client_over_budget(cl, len);

	if (b == H2S_BUDGET_OK)
		return false;
	cl->c.p->stats.mem_resets++;
	log_limited(H2S_LOG_WARNING,
		    "client %s: stream %d: response over the %s memory budget (%s %u, %zu bytes "
		    "buffered): stream reset (the client does not read)",
		    cl->name, st->csid, b == H2S_BUDGET_CONN ? "connection" : "total",
		    b == H2S_BUDGET_CONN ? "client_buffer_max" : "buffer_total_mib",
		    b == H2S_BUDGET_CONN ? cl->c.p->set.client_buffer_max
					 : cl->c.p->set.buffer_total_mib,
		    (size_t)cl->buffered);
	/* Done for the client as if the response had ended: nothing of it is sent any more,
	 * and the client's stream closes (its on_stream_close frees it) when the RST goes.
	 */
	st->flags |= H2S_ST_OVERFLOW | H2S_ST_RESP_END;
	st->status = GRPC_RESOURCE_EXHAUSTED;
	discard_response(st);
	discard_request(st);
	cancel_upstream(st);
	nghttp2_submit_rst_stream(cl->c.ng, NGHTTP2_FLAG_NONE, st->csid,
				  NGHTTP2_ENHANCE_YOUR_CALM);
	h2s_conn_mark(&cl->c);
	return true;
}

/* ---- response: backend -> client ---- */

/* The response ended: its gRPC status goes to the metrics and to passive ejection. */
static void note_status(struct h2s_stream *st, const struct h2s_hdrs *h)
{
	size_t len;
	const uint8_t *v = h2s_hdrs_get(h, "grpc-status", &len);
	int code = -1;

	if (v && len >= 1 && len <= 2) {
		code = 0;
		for (size_t i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
			code = code * 10 + (v[i] - '0');
		st->status = code <= 16 ? code : H2S_RPC_NONE;
	}
	if (st->up)
		judge(st, H2S_END_STATUS, code);
}

/* DATA of the response: as req_read, the bytes leave in h2s_relay_response_send. */
static ssize_t resp_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct h2s_stream *st = src->ptr;
	size_t q = h2s_bq_len(&st->resp_q), n = q < len ? q : len;

	(void)buf;
	(void)ud;
	*flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (n < q)
		return (ssize_t)n;
	if (!(st->flags & H2S_ST_RESP_END))
		return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (st->resp_trailers.n) {
		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (submit_hdrs(&st->resp_trailers, submit_trailer_nv,
				&(struct trailer_ctx){ ng, sid }) < 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST(INTERNAL_ERROR) */
		h2s_hdrs_free(&st->resp_trailers);
	}
	return (ssize_t)n;
}

int h2s_relay_response_send(nghttp2_session *ng, nghttp2_frame *f, const uint8_t *framehd,
			    size_t len, nghttp2_data_source *src, void *ud)
{
	struct h2s_stream *st = src->ptr;
	struct h2s_conn *c = &((struct h2s_client *)ud)->c;
	uint8_t *buf;
	int rc;

	(void)ng;
	if ((rc = data_out(c, &st->resp_q, f, framehd, len, &buf)))
		return rc;
	if (len) {
		ack_upstream(st, len);
		if (st->svc)
			st->svc->bytes_response += len;
		held_sync(st);
	}
	return h2s_conn_data_sent(c);
}

static int submit_response_nv(void *arg, const nghttp2_nv *nv, size_t n)
{
	struct h2s_stream *st = arg;
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = resp_read };
	bool end = st->flags & H2S_ST_RESP_END;

	return nghttp2_submit_response(st->cl->c.ng, st->csid, nv, n, end ? NULL : &prd);
}

void h2s_relay_response_headers(struct h2s_stream *st, bool end_stream)
{
	h2s_timer_cancel(&st->p->loop, &st->try_timer); /* it answered */
	if (end_stream) {
		st->flags |= H2S_ST_RESP_END;
		note_status(st, &st->resp); /* Trailers-Only */
	}
	if (!st->cl || (st->flags & H2S_ST_CLIENT_CLOSED)) {
		h2s_hdrs_free(&st->resp);
		return;
	}
	st->flags |= H2S_ST_RESP_STARTED;
	if (st->up && st->up->ready_ns && (st->flags & H2S_ST_REQ_END)) {
		/* The backend's own time: from the last of request sent, request complete (a
		 * client's upload is not the backend's speed) and connection ready (nor is a new
		 * connection's handshake). A response that starts before the request ended
		 * (bidirectional streams) says nothing of it.
		 */
		uint64_t now = h2s_now_ns(), from = st->sent_ns;

		from = st->req_end_ns > from ? st->req_end_ns : from;
		from = st->up->ready_ns > from ? st->up->ready_ns : from;
		h2s_backend_latency(st->up->be, now - from, now, st->p->reg.ewma_decay_ms);
	}
	release_budget(st);
	/* Committed to this backend: no replay from here on. */
	h2s_hdrs_free(&st->req);
	h2s_hdrs_free(&st->req_trailers);
	h2s_bq_clear(&st->req_sent);
	held_sync(st);
	if (submit_hdrs(&st->resp, submit_response_nv, st) < 0)
		nghttp2_submit_rst_stream(st->cl->c.ng, NGHTTP2_FLAG_NONE, st->csid,
					  NGHTTP2_INTERNAL_ERROR);
	h2s_hdrs_free(&st->resp);
	held_sync(st);
	h2s_conn_mark(&st->cl->c);
}

static int submit_info_nv(void *arg, const nghttp2_nv *nv, size_t n)
{
	struct h2s_stream *st = arg;

	return nghttp2_submit_headers(st->cl->c.ng, NGHTTP2_FLAG_NONE, st->csid, NULL, nv, n, NULL);
}

void h2s_relay_informational(struct h2s_stream *st)
{
	if (st->cl && !(st->flags & H2S_ST_CLIENT_CLOSED)) {
		submit_hdrs(&st->resp, submit_info_nv, st);
		h2s_conn_mark(&st->cl->c);
	}
	h2s_hdrs_free(&st->resp);
}

int h2s_relay_response_data(struct h2s_stream *st, const uint8_t *data, size_t len)
{
	if (!st->cl || (st->flags & (H2S_ST_CLIENT_CLOSED | H2S_ST_OVERFLOW)))
		return 0; /* the upstream stream is being cancelled */
	if (response_over_budget(st, len))
		return 0;
	if (h2s_bq_append(&st->resp_q, data, len) < 0)
		return -ENOMEM;
	held_sync(st);
	nghttp2_session_resume_data(st->cl->c.ng, st->csid);
	h2s_conn_mark(&st->cl->c);
	return 0;
}

void h2s_relay_response_end(struct h2s_stream *st)
{
	if (st->flags & H2S_ST_OVERFLOW)
		return; /* reset for going over budget: nothing more goes to the client */
	st->flags |= H2S_ST_RESP_END;
	note_status(st, &st->resp_trailers);
	if (st->cl && !(st->flags & H2S_ST_CLIENT_CLOSED)) {
		nghttp2_session_resume_data(st->cl->c.ng, st->csid);
		h2s_conn_mark(&st->cl->c);
	}
}

/* May the stream be replayed on another backend? Only if this backend provably saw none of
 * it: it refused it, or the connection never came up, and no body byte left us.
 */
static bool replayable(struct h2s_stream *st)
{
	if ((st->flags & (H2S_ST_RESP_STARTED | H2S_ST_REPLAY_LOST | H2S_ST_CLIENT_CLOSED)) ||
	    !st->req.n)
		return false;
	/* Within the retry budget: a stream holds one unit until answered, however often it
	 * is replayed meanwhile.
	 */
	if (!(st->flags & H2S_ST_BUDGET)) {
		if (!h2s_retry_take(&st->p->stats, &st->p->set))
			return false;
		st->flags |= H2S_ST_BUDGET;
	}
	return true;
}

static void replay(struct h2s_stream *st)
{
	st->flags &= ~H2S_ST_HEADERS_SENT;
	rewind_request(st);
	h2s_relay_request_start(st);
}

void h2s_relay_upstream_closed(struct h2s_stream *st, uint32_t error_code)
{
	char be[64] = "";

	/* Named in a log line below, when the backend may be gone already (rare: not copied
	 * for every stream).
	 */
	if (error_code == NGHTTP2_REFUSED_STREAM)
		snprintf(be, sizeof(be), "%s", st->up->be->name);
	st->avoid = st->up->be;
	detach(st);
	if (st->flags & H2S_ST_CLIENT_CLOSED) {
		maybe_free(st);
		return;
	}
	if (st->flags & H2S_ST_RESP_END) {
		/* Response complete; a reset now only means "stop sending the request". */
		if (!(st->flags & H2S_ST_REQ_END))
			discard_request(st);
		return;
	}
	if (error_code == NGHTTP2_REFUSED_STREAM && replayable(st)) {
		/* RFC 9113 §8.7: a refused stream was not processed; send it again. */
		log_debug("stream refused by %s: replaying it", be);
		st->flags |= H2S_ST_REFUSED;
		replay(st);
		return;
	}
	/* The backend reset the stream: so does the client's copy, with the same code. */
	st->status = H2S_RPC_RESET;
	st->flags |= H2S_ST_RESET_RELAYED; /* not one the client made us send (h2_server.c) */
	discard_request(st);
	nghttp2_submit_rst_stream(st->cl->c.ng, NGHTTP2_FLAG_NONE, st->csid, error_code);
	h2s_conn_mark(&st->cl->c);
}

void h2s_relay_move(struct h2s_stream *st)
{
	struct h2s_upstream *up = st->up;

	/* nghttp2 still holds its HEADERS in its queue: make it forget the stream (a reset of
	 * a queued request cancels it unsent), then send it elsewhere. Not a retry: it never
	 * left.
	 */
	nghttp2_session_set_stream_user_data(up->c.ng, st->usid, NULL);
	nghttp2_submit_rst_stream(up->c.ng, NGHTTP2_FLAG_NONE, st->usid, NGHTTP2_REFUSED_STREAM);
	h2s_conn_mark(&up->c);
	detach(st);
	st->attempts--;
	h2s_relay_request_start(st);
}

void h2s_relay_response_too_large(struct h2s_stream *st)
{
	stream_fail(st, GRPC_INTERNAL,
		    "h2steer: response header list from backend %s over %u bytes "
		    "(max_header_list) or %d fields",
		    st->up->be->name, st->p->set.max_header_list, H2S_HDRS_MAX_FIELDS);
}

void h2s_relay_backend_reset(struct h2s_stream *st, uint32_t error_code)
{
	/* After the whole response a reset only stops the request; its status was judged. */
	if (st->up && !(st->flags & H2S_ST_RESP_END))
		judge(st, H2S_END_RESET, error_code);
}

/* Does losing up with these streams open count against its backend (h2s_rpc_outcome())? */
static bool loss_counts(const struct h2s_upstream *up)
{
	struct h2s_list *pos, *tmp;

	h2s_list_for_each_safe(pos, tmp, &up->streams) {
		const struct h2s_stream *st = h2s_container_of(pos, struct h2s_stream, up_link);

		if (h2s_rpc_outcome(st->flags & H2S_ST_GRPC, H2S_END_LOST, 0) == H2S_OUTCOME_FAILED)
			return true;
	}
	return false;
}

void h2s_relay_upstream_lost(struct h2s_upstream *up, bool unproven, const char *why)
{
	struct h2s_list *pos, *tmp;

	/* One failure for the connection, however many streams it takes along, and before the
	 * replays below, so that they pick with the backend's new state. One that never worked
	 * was counted as a connect failure already.
	 */
	if (!unproven && loss_counts(up))
		h2s_backend_rpc_failed(&up->c.p->reg, up->be, "connection lost");
	h2s_list_for_each_safe(pos, tmp, &up->streams) {
		struct h2s_stream *st = h2s_container_of(pos, struct h2s_stream, up_link);

		st->avoid = up->be;
		detach(st);
		if (st->flags & H2S_ST_CLIENT_CLOSED) {
			maybe_free(st);
		} else if (st->flags & H2S_ST_RESP_END) {
			if (!(st->flags & H2S_ST_REQ_END))
				discard_request(st);
		} else if ((unproven || !(st->flags & H2S_ST_HEADERS_SENT)) && replayable(st)) {
			/* The backend cannot have processed it: the request never left, or the
			 * connection never became a working HTTP/2 session.
			 */
			replay(st);
		} else {
			stream_fail(st, GRPC_UNAVAILABLE, "h2steer: connection to backend %s lost (%s)",
				    up->be->name, why);
		}
	}
}
