/* h2_upstream.c — see h2_upstream.h. */
#include "h2_upstream.h"

#include "addr.h"
#include "h2alloc.h"
#include "plane.h"
#include "log.h"
#include "maps.h"
#include "registry.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct h2s_upstream *up_of(struct h2s_conn *c)
{
	return h2s_container_of(c, struct h2s_upstream, c);
}

static struct h2s_stream *stream_of(nghttp2_session *ng, int32_t sid)
{
	return nghttp2_session_get_stream_user_data(ng, sid);
}

/* Streams a connection may carry: what the backend announced on it, or, before its SETTINGS
 * arrive, what the backend announced last (so a new connection to a backend with a low limit
 * does not get streams it would refuse).
 */
static uint32_t stream_limit(struct h2s_upstream *up)
{
	if (!up->settings_received)
		return up->be->stream_limit;
	return nghttp2_session_get_remote_settings(up->c.ng,
						   NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

/* ---- nghttp2 callbacks (client session towards a backend) ---- */

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2s_upstream *up = ud;
	struct h2s_plane *p = up->c.p;
	struct h2s_stream *st;
	struct h2s_hdrs *h;
	int rc;

	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || !(st = stream_of(ng, f->hd.stream_id)))
		return 0;
	h = f->headers.cat == NGHTTP2_HCAT_HEADERS && (st->flags & H2S_ST_RESP_STARTED)
		    ? &st->resp_trailers
		    : &st->resp;
	rc = h2s_hdrs_add_within(h, name, nlen, value, vlen, p->set.max_header_list);
	if (rc == 0)
		h2s_relay_held_sync(st);
	if (rc == -E2BIG) {
		/* The client learns it at once; the backend's stream is reset (INTERNAL_ERROR)
		 * while nghttp2 decodes the rest of the block unseen, for the HPACK state the
		 * connection's other streams share. Nothing for passive ejection: the limit is
		 * ours, no sign the backend fails.
		 */
		p->stats.backend_hdrs_too_large++;
		log_limited(H2S_LOG_WARNING,
			    "backend %s: stream %d: response headers over max_header_list "
			    "(%u bytes) or %d fields: answered INTERNAL",
			    up->be->name, f->hd.stream_id, p->set.max_header_list,
			    H2S_HDRS_MAX_FIELDS);
		h2s_relay_response_too_large(st);
	}
	return rc < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* Streams we gave this connection before knowing its limit, beyond that limit and not sent
 * yet, would wait inside nghttp2 until others finish: they go to another connection instead.
 */
static void move_excess(struct h2s_upstream *up)
{
	uint32_t limit = stream_limit(up), kept = 0;
	struct h2s_list *pos, *tmp;

	h2s_list_for_each_safe(pos, tmp, &up->streams) {
		struct h2s_stream *st = h2s_container_of(pos, struct h2s_stream, up_link);

		kept += !!(st->flags & H2S_ST_HEADERS_SENT);
	}
	h2s_list_for_each_safe(pos, tmp, &up->streams) {
		struct h2s_stream *st = h2s_container_of(pos, struct h2s_stream, up_link);

		if (st->flags & H2S_ST_HEADERS_SENT)
			continue;
		if (kept < limit)
			kept++;
		else
			h2s_relay_move(st);
	}
}

static bool informational(const struct h2s_hdrs *h)
{
	size_t len;
	const uint8_t *s = h2s_hdrs_get(h, ":status", &len);

	return s && len == 3 && s[0] == '1';
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2s_upstream *up = ud;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
	struct h2s_be_stats *bs;
	struct h2s_stream *st;

	if (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) {
		up->quiet_pings = 0;
		up->answered_ms = h2s_now_ms();
	}
	switch (f->hd.type) {
	case NGHTTP2_HEADERS:
		st = stream_of(ng, f->hd.stream_id);
		if (!st)
			break;
		if (!(st->flags & H2S_ST_RESP_STARTED)) {
			if (informational(&st->resp))
				h2s_relay_informational(st);
			else
				h2s_relay_response_headers(st, end);
		} else if (end) {
			h2s_relay_response_end(st); /* trailers */
		}
		break;
	case NGHTTP2_DATA:
		st = stream_of(ng, f->hd.stream_id);
		if (st && end)
			h2s_relay_response_end(st);
		break;
	case NGHTTP2_SETTINGS:
		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			break;
		if (!up->settings_received) {
			/* The backend speaks HTTP/2: it is up, and we know its stream limit. */
			up->settings_received = true;
			up->ready_ns = h2s_now_ns();
			h2s_backend_ok(&up->c.p->reg, up->be);
			h2s_timer_cancel(&up->c.p->loop, &up->timer);
			if (!up->nstreams)
				h2s_upstream_stream_done(up);
		}
		up->be->stream_limit = stream_limit(up);
		move_excess(up);
		break;
	case NGHTTP2_RST_STREAM:
		/* Whether it counts against the backend: h2s_rpc_outcome(). */
		if ((st = stream_of(ng, f->hd.stream_id)))
			h2s_relay_backend_reset(st, f->rst_stream.error_code);
		break;
	case NGHTTP2_PING:
		if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && h2s_conn_ping(&up->c, f->ping.opaque_data) < 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		break;
	case NGHTTP2_GOAWAY:
		if ((bs = h2s_stats_backend(&up->c.p->stats, &up->be->addr)))
			bs->goaways++;
		log_info("backend %s: GOAWAY (last stream %d, %s): no new streams on this "
			 "connection",
			 up->be->name, f->goaway.last_stream_id,
			 nghttp2_http2_strerror(f->goaway.error_code));
		break;
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
			 size_t len, void *ud)
{
	struct h2s_stream *st = stream_of(ng, sid);

	(void)flags;
	(void)ud;
	/* The connection window moves at once; the stream window once the bytes went on. */
	nghttp2_session_consume_connection(ng, len);
	if (st && h2s_relay_response_data(st, data, len) < 0)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_INTERNAL_ERROR);
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2s_stream *st;

	(void)ud;
	/* From here the backend may have seen the request: see h2s_relay_upstream_lost(). */
	if (f->hd.type == NGHTTP2_HEADERS && (st = stream_of(ng, f->hd.stream_id)))
		st->flags |= H2S_ST_HEADERS_SENT;
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct h2s_stream *st = stream_of(ng, sid);

	(void)ud;
	if (st)
		h2s_relay_upstream_closed(st, code);
	return 0;
}

int h2s_upstream_callbacks(nghttp2_session_callbacks **out)
{
	nghttp2_session_callbacks *cb;
	int rc = nghttp2_session_callbacks_new(&cb);

	if (rc)
		return rc;
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_send_data_callback(cb, h2s_relay_request_send);
	*out = cb;
	return 0;
}

/* ---- connection lifecycle ---- */

static void up_teardown(struct h2s_conn *c, const char *why)
{
	struct h2s_upstream *up = up_of(c);
	struct h2s_backend_rt *be = up->be;

	h2s_timer_cancel(&c->p->loop, &up->timer);
	h2s_timer_cancel(&c->p->loop, &up->ping_timer);
	h2s_list_del(&up->pool_link); /* out of the pool before any stream is re-picked */
	/* No SETTINGS ever came: not an HTTP/2 backend that works (refused, frozen, not h2). */
	if (!up->settings_received)
		h2s_backend_connect_failed(&c->p->reg, be);
	if (!h2s_list_empty(&up->streams))
		log_info("backend %s: connection closed with %u streams open (%s)", be->name,
			 up->nstreams, why);
	else
		log_debug("backend %s: connection closed (%s)", be->name, why);
	h2s_relay_upstream_lost(up, !up->settings_received, why);
}

static void up_destroy(struct h2s_conn *c)
{
	struct h2s_upstream *up = up_of(c);
	struct h2s_backend_rt *be = up->be;
	struct h2s_plane *p = c->p;

	free(up);
	/* Counted until now (not at teardown): several connections of one backend may be
	 * destroyed in the same turn, and each still refers to the backend until here.
	 */
	if (--be->nconns == 0)
		be->stream_limit = H2S_STREAM_LIMIT_UNKNOWN; /* learn it afresh next time */
	h2s_registry_release_backend(&p->reg, be);
}

static void up_timer(struct h2s_timer *t)
{
	struct h2s_upstream *up = h2s_container_of(t, struct h2s_upstream, timer);

	if (!up->settings_received) {
		h2s_conn_close(&up->c, up->established ? "no HTTP/2 SETTINGS from the backend in time"
						       : "connect timeout");
		return;
	}
	/* Idle: say goodbye with GOAWAY; the flush closes it once that is written. */
	nghttp2_session_terminate_session(up->c.ng, NGHTTP2_NO_ERROR);
	h2s_conn_mark(&up->c);
}

static void up_connected(struct h2s_conn *c, int err)
{
	struct h2s_upstream *up = up_of(c);

	if (err) {
		h2s_conn_close(c, strerror(err));
		return;
	}
	/* The timer keeps running: the backend's SETTINGS must follow within the same time. */
	up->established = true;
}

/* grpc-go's server answers PINGs that come more often than its keepalive MinTime (5 min by
 * default) while it sends no HEADERS or DATA with a strike, and closes the connection with
 * GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") after the third (keepalive EnforcementPolicy):
 * after this many PINGs into silence, the next waits for PING_QUIET_MS after the last.
 */
#define PING_QUIET_MAX 2
#define PING_QUIET_MS 300000

/* The liveness clock of a connection with streams open (backend_ping_interval_ms). A PING
 * goes out when nothing came for the interval; nothing back within backend_ping_timeout_ms
 * and the backend is frozen with its connection open (stopped, wedged, a half-dead path):
 * the connection is closed, which fails its streams the backend may have seen with
 * UNAVAILABLE, replays the others and counts against the backend
 * (h2s_relay_upstream_lost()). Checked when it fires, not re-armed per frame.
 */
static void ping_fire(struct h2s_timer *t)
{
	struct h2s_upstream *up = h2s_container_of(t, struct h2s_upstream, ping_timer);
	struct h2s_plane *p = up->c.p;
	uint64_t now = p->loop.now_ms, since = now - up->c.last_rx_ms;
	uint64_t interval = p->set.backend_ping_interval_ms;

	if (up->c.dead || !up->nstreams || !interval)
		return; /* h2s_upstream_busy() starts it again */
	if (up->ping_out) {
		uint64_t waited = now - up->ping_sent_ms;

		if (waited < p->set.backend_ping_timeout_ms) {
			h2s_timer_arm(&p->loop, t, p->set.backend_ping_timeout_ms - waited);
			return;
		}
		p->stats.backend_ping_timeouts++;
		log_limited(H2S_LOG_WARNING,
			    "backend %s: no answer to PING within %u ms (backend_ping_timeout_ms) "
			    "with %u streams open: connection closed as dead",
			    up->be->name, p->set.backend_ping_timeout_ms, up->nstreams);
		h2s_conn_close(&up->c, "no answer to PING in time");
		return;
	}
	if (!up->settings_received || since < interval) {
		h2s_timer_arm(&p->loop, t, up->settings_received ? interval - since : interval);
		return;
	}
	if (up->quiet_pings >= PING_QUIET_MAX && now - up->ping_sent_ms < PING_QUIET_MS) {
		h2s_timer_arm(&p->loop, t, PING_QUIET_MS - (now - up->ping_sent_ms));
		return;
	}
	if (nghttp2_submit_ping(up->c.ng, NGHTTP2_FLAG_NONE, NULL) != 0) {
		h2s_timer_arm(&p->loop, t, interval);
		return;
	}
	p->stats.backend_pings++;
	up->ping_out = true;
	up->ping_sent_ms = now;
	up->quiet_pings++;
	h2s_conn_mark(&up->c);
	h2s_timer_arm(&p->loop, t, p->set.backend_ping_timeout_ms);
}

/* Any byte from the backend answers an outstanding PING: it is not frozen. */
static void up_read(struct h2s_conn *c, const uint8_t *data, size_t n)
{
	(void)data;
	(void)n;
	up_of(c)->ping_out = false;
}

void h2s_upstream_busy(struct h2s_upstream *up)
{
	struct h2s_plane *p = up->c.p;

	if (up->settings_received)
		h2s_timer_cancel(&p->loop, &up->timer); /* the idle clock */
	if (p->set.backend_ping_interval_ms && !h2s_timer_armed(&up->ping_timer))
		h2s_timer_arm(&p->loop, &up->ping_timer, p->set.backend_ping_interval_ms);
}

void h2s_upstream_stream_done(struct h2s_upstream *up)
{
	if (up->nstreams || up->c.dead || !up->settings_received)
		return;
	if (!up->be->active) {
		/* No service wants new RPCs on its backend: nothing will use it again. */
		nghttp2_session_terminate_session(up->c.ng, NGHTTP2_NO_ERROR);
		h2s_conn_mark(&up->c);
		return;
	}
	h2s_timer_arm(&up->c.p->loop, &up->timer, up->c.p->set.upstream_idle_ms);
}

struct h2s_upstream *h2s_upstream_new(struct h2s_plane *p, struct h2s_backend_rt *be, int fd,
				     bool connecting)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, p->set.stream_window },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, p->set.max_header_list },
	};
	struct h2s_be_stats *bs;
	struct h2s_upstream *up = calloc(1, sizeof(*up));

	if (!up)
		return NULL;
	h2s_conn_init(&up->c, p, fd);
	up->c.teardown = up_teardown;
	up->c.on_connected = up_connected;
	up->c.destroy = up_destroy;
	up->c.connecting = connecting;
	up->be = be;
	up->timer.fire = up_timer;
	up->ping_timer.fire = ping_fire;
	up->c.on_read = up_read;
	up->c.last_rx_ms = p->loop.now_ms;
	h2s_list_init(&up->streams);
	if (nghttp2_session_client_new3(&up->c.ng, p->upstream_cbs, up, p->opt,
					h2s_nghttp2_mem()) != 0) {
		free(up);
		return NULL;
	}
	if (h2s_conn_start(&up->c) < 0) {
		nghttp2_session_del(up->c.ng);
		free(up);
		return NULL;
	}
	nghttp2_submit_settings(up->c.ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	nghttp2_session_set_local_window_size(up->c.ng, NGHTTP2_FLAG_NONE, 0,
					      (int32_t)p->set.conn_window);
	h2s_list_add_tail(&be->conns, &up->pool_link);
	be->nconns++;
	if ((bs = h2s_stats_backend(&p->stats, &be->addr)))
		bs->conns_opened++;
	/* Connect, then the backend's SETTINGS, within connect_timeout_ms. */
	h2s_timer_arm(&p->loop, &up->timer, p->set.connect_timeout_ms);
	if (!connecting)
		up_connected(&up->c, 0);
	log_debug("backend %s: new connection (%u in pool)", be->name, be->nconns);
	return up;
}

static struct h2s_upstream *up_open(struct h2s_plane *p, struct h2s_backend_rt *be)
{
	struct sockaddr_storage ss;
	socklen_t sl = h2s_addr_to_sockaddr(&be->addr, &ss);
	struct h2s_upstream *up;
	int fd, one = 1, rc;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_err("backend %s: socket: %s", be->name, strerror(errno));
		return NULL;
	}
	/* Before connect(): the capture hooks must never take the daemon's own connections. */
	if (h2s_maps_mark_daemon_socket(p->maps, fd, true) < 0) {
		log_err("backend %s: cannot mark socket as the daemon's: %s", be->name,
			strerror(errno));
		close(fd);
		return NULL;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = connect(fd, (struct sockaddr *)&ss, sl);
	if (rc < 0 && errno != EINPROGRESS) {
		log_warn("backend %s: connect: %s", be->name, strerror(errno));
		close(fd);
		h2s_backend_connect_failed(&p->reg, be);
		return NULL;
	}
	up = h2s_upstream_new(p, be, fd, rc < 0);
	if (!up)
		close(fd);
	return up;
}

struct h2s_upstream *h2s_pool_get(struct h2s_plane *p, struct h2s_backend_rt *be)
{
	struct h2s_list *pos, *tmp;

	h2s_list_for_each_safe(pos, tmp, &be->conns) {
		struct h2s_upstream *up = h2s_container_of(pos, struct h2s_upstream, pool_link);

		/* After a GOAWAY either way nghttp2 refuses new requests. */
		if (!up->c.dead && nghttp2_session_check_request_allowed(up->c.ng) &&
		    up->nstreams < stream_limit(up))
			return up;
	}
	/* A backend that announced it takes no streams gets no new connection either. */
	if (be->stream_limit == 0)
		return NULL;
	return up_open(p, be);
}

void h2s_pool_idle(struct h2s_backend_rt *be, void *daemon)
{
	struct h2s_list *pos, *tmp;

	(void)daemon;
	h2s_list_for_each_safe(pos, tmp, &be->conns) {
		struct h2s_upstream *up = h2s_container_of(pos, struct h2s_upstream, pool_link);

		h2s_upstream_stream_done(up);
	}
}

void h2s_pool_close_all(struct h2s_plane *p)
{
	for (unsigned b = 0; b < H2S_REG_BUCKETS; b++) {
		for (struct h2s_backend_rt *be = p->reg.be[b]; be;) {
			struct h2s_backend_rt *next = be->hnext;
			struct h2s_list *pos, *tmp;

			h2s_list_for_each_safe(pos, tmp, &be->conns) {
				struct h2s_upstream *up =
					h2s_container_of(pos, struct h2s_upstream, pool_link);

				h2s_conn_close(&up->c, "daemon exiting");
			}
			be = next;
		}
	}
}
