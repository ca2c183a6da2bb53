/* h2_server.c — see h2_server.h. */
#include "h2_server.h"

#include "guard.h"
#include "addr.h"
#include "h2alloc.h"
#include "plane.h"
#include "log.h"
#include "maps.h"
#include "splice.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Between the shutdown notice and the final GOAWAY: time for requests already on the wire. */
#define GOAWAY_GRACE_MS 1000

static struct h2s_client *client_of(struct h2s_conn *c)
{
	return h2s_container_of(c, struct h2s_client, c);
}

static struct h2s_stream *stream_of(nghttp2_session *ng, int32_t sid)
{
	return nghttp2_session_get_stream_user_data(ng, sid);
}

/* ---- nghttp2 callbacks (server session towards a client) ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2s_client *cl = ud;
	struct h2s_stream *st;
	enum h2s_budget b;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	b = h2s_client_over_budget(cl, h2s_budget_room(cl, true));
	if (b != H2S_BUDGET_OK) {
		/* Over a memory budget: refused, never processed (RFC 9113 section 8.7); its
		 * header block is still decoded by nghttp2, and dropped.
		 */
		if (b == H2S_BUDGET_CONN)
			cl->c.p->stats.mem_refused_conn++;
		else
			cl->c.p->stats.mem_refused_total++;
		log_limited(H2S_LOG_WARNING,
			    "client %s: stream %d refused: %llu bytes buffered, over the %s memory "
			    "budget", cl->name, f->hd.stream_id, (unsigned long long)cl->buffered,
			    b == H2S_BUDGET_CONN ? "connection's (client_buffer_max)"
						 : "daemon's (buffer_total_mib)");
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
					  NGHTTP2_REFUSED_STREAM);
		h2s_conn_mark(&cl->c);
		return 0;
	}
	st = h2s_stream_new(cl, f->hd.stream_id);
	if (!st)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM(INTERNAL_ERROR) */
	nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, st);
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2s_client *cl = ud;
	struct h2s_plane *p = cl->c.p;
	struct h2s_stream *st;
	struct h2s_hdrs *h;
	bool trailers, was_over;
	int rc;

	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS || !(st = stream_of(ng, f->hd.stream_id)))
		return 0;
	trailers = f->headers.cat != NGHTTP2_HCAT_REQUEST;
	h = trailers ? &st->req_trailers : &st->req;
	was_over = h->over;
	rc = h2s_hdrs_add_within(h, name, nlen, value, vlen, p->set.max_header_list);
	if (rc == -E2BIG && !was_over) {
		p->stats.client_hdrs_too_large++;
		log_limited(H2S_LOG_WARNING,
			    "client %s: stream %d: request %s over max_header_list (%u bytes) "
			    "or %d fields: %s",
			    cl->name, st->csid, trailers ? "trailers" : "headers",
			    p->set.max_header_list, H2S_HDRS_MAX_FIELDS,
			    trailers ? "stream reset" : "answered RESOURCE_EXHAUSTED");
	}
	/* Request headers over the limit: the rest of the block is still decoded (the HPACK
	 * state is the connection's) but not kept, and h2s_relay_request_start() answers the
	 * stream alone. Request trailers (gRPC sends none) over it reset the stream with
	 * INTERNAL_ERROR, as when we have no memory for them; the backend's copy is cancelled
	 * when it closes.
	 */
	if (rc == -E2BIG && !trailers)
		return 0;
	if (rc == 0) {
		h2s_relay_held_sync(st);
		if (h2s_client_over_budget(cl, 0) != H2S_BUDGET_OK) {
			/* Decoded headers count in the memory budget too: past it, the block is
			 * dropped and the stream answered as one over max_header_list.
			 */
			p->stats.client_hdrs_too_large++;
			log_limited(H2S_LOG_WARNING,
				    "client %s: stream %d: request %s take the connection over its "
				    "memory budget (%llu bytes held): %s",
				    cl->name, st->csid, trailers ? "trailers" : "headers",
				    (unsigned long long)cl->buffered,
				    trailers ? "stream reset" : "answered RESOURCE_EXHAUSTED");
			h2s_hdrs_free(h);
			h->over = true;
			h2s_relay_held_sync(st);
			return trailers ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
		}
	}
	return rc < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* RFC 9113 8.2.1: a field name with a character outside its grammar, or a value with CR, LF,
 * NUL or white space at either end, makes the request malformed. nghttp2 drops such a field
 * and passes the rest on unless told: reset instead (RST_STREAM PROTOCOL_ERROR).
 */
static int on_invalid_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
			     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags,
			     void *ud)
{
	(void)ng, (void)f, (void)name, (void)nlen, (void)value, (void)vlen, (void)flags, (void)ud;
	return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

/* Why nghttp2 reset a stream or dropped a field (debug: a client can make these at will). */
static int on_error(nghttp2_session *ng, int lib_error_code, const char *msg, size_t len,
		    void *ud)
{
	struct h2s_client *cl = ud;

	(void)ng, (void)lib_error_code;
	log_debug("client %s: %.*s", cl->name, (int)len, msg);
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
	struct h2s_client *cl = ud;
	struct h2s_stream *st;

	if (h2s_timer_armed(&cl->hello_timer))
		h2s_timer_cancel(&cl->c.p->loop, &cl->hello_timer);
	if (f->hd.type == NGHTTP2_PING && !(f->hd.flags & NGHTTP2_FLAG_ACK)) {
		return h2s_conn_ping(&cl->c, f->ping.opaque_data) < 0
			       ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	st = stream_of(ng, f->hd.stream_id);
	if (!st)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		if (end)
			st->flags |= H2S_ST_REQ_END;
		h2s_relay_request_start(st);
	} else if (end) {
		h2s_relay_request_end(st); /* last DATA, or request trailers */
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
			 size_t len, void *ud)
{
	struct h2s_stream *st = stream_of(ng, sid);

	(void)flags;
	/* The connection window moves at once (while the connection is within its memory
	 * budget, else once it is again); the stream window once the bytes went on.
	 */
	h2s_relay_client_data(ud, len);
	if (st && h2s_relay_request_data(st, data, len) < 0)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_INTERNAL_ERROR);
	return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2s_client *cl = ud;

	if (f->hd.type == NGHTTP2_DATA) {
		h2s_guard_sent_data(cl);
	} else if (f->hd.type == NGHTTP2_RST_STREAM) {
		struct h2s_stream *st = stream_of(ng, f->hd.stream_id);

		h2s_guard_sent_rst(cl, f->hd.stream_id, f->rst_stream.error_code,
				   st && (st->flags & H2S_ST_RESET_RELAYED));
		return 0;
	} else if (f->hd.type == NGHTTP2_GOAWAY) {
		h2s_guard_sent_goaway(cl, &f->goaway);
		return 0;
	}
	/* RFC 9113 §8.1: a server that has answered a request the client is still sending ends
	 * the stream with RST_STREAM(NO_ERROR). nghttp2 leaves that to us, and it must happen
	 * after the END_STREAM frame went out, or the response would be dropped.
	 */
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    nghttp2_session_get_stream_remote_close(ng, f->hd.stream_id) == 0)
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct h2s_stream *st = stream_of(ng, sid);
	struct h2s_client *cl = ud;

	cl->last_active_ms = cl->c.p->loop.now_ms; /* idle from the end of its last stream */
	h2s_guard_stream_closed(cl, code);
	if (st)
		h2s_relay_client_closed(st, code);
	return 0;
}

int h2s_server_callbacks(nghttp2_session_callbacks **out)
{
	nghttp2_session_callbacks *cb;
	int rc = nghttp2_session_callbacks_new(&cb);

	if (rc)
		return rc;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_invalid_header_callback(cb, on_invalid_header);
	nghttp2_session_callbacks_set_error_callback2(cb, on_error);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_send_data_callback(cb, h2s_relay_response_send);
	*out = cb;
	return 0;
}

/* ---- connection lifecycle ---- */

static void client_teardown(struct h2s_conn *c, const char *why)
{
	struct h2s_client *cl = client_of(c);
	struct h2s_plane *p = c->p;

	h2s_timer_cancel(&p->loop, &cl->goaway_timer);
	h2s_timer_cancel(&p->loop, &cl->hello_timer);
	h2s_timer_cancel(&p->loop, &cl->idle_timer);
	h2s_timer_cancel(&p->loop, &cl->frame_timer);
	h2s_timer_cancel(&p->loop, &cl->write_timer);
	log_debug("client %s: closed after %llu streams (%s)", cl->name,
		  (unsigned long long)cl->streams_total, why);
	h2s_relay_client_gone(cl);
	h2s_list_del(&cl->link);
	p->nclients--;
	h2s_plane_conn_gone(p);
}

static void client_destroy(struct h2s_conn *c)
{
	free(client_of(c));
}

static void goaway_final(struct h2s_timer *t)
{
	struct h2s_client *cl = h2s_container_of(t, struct h2s_client, goaway_timer);

	nghttp2_submit_goaway(cl->c.ng, NGHTTP2_FLAG_NONE,
			      nghttp2_session_get_last_proc_stream_id(cl->c.ng), NGHTTP2_NO_ERROR,
			      NULL, 0);
	h2s_conn_mark(&cl->c);
}

static void hello_expired(struct h2s_timer *t)
{
	struct h2s_client *cl = h2s_container_of(t, struct h2s_client, hello_timer);
	struct h2s_plane *p = cl->c.p;

	p->stats.client_handshake_timeouts++;
	log_limited(H2S_LOG_NOTICE,
		    "client %s: no HTTP/2 preface and SETTINGS within %u ms "
		    "(handshake_timeout_ms): closed",
		    cl->name, p->set.handshake_timeout_ms);
	h2s_conn_close(&cl->c, "no HTTP/2 preface and SETTINGS in time");
}

/* No stream open and no frame for client_idle_ms: GOAWAY(NO_ERROR), then the flush closes
 * it once that is written (a gRPC client reconnects when it next needs to). The clock is
 * checked here rather than re-armed per frame: one timer operation per idle period.
 */
static void idle_expired(struct h2s_timer *t)
{
	struct h2s_client *cl = h2s_container_of(t, struct h2s_client, idle_timer);
	struct h2s_plane *p = cl->c.p;
	uint64_t now = p->loop.now_ms, idle = p->set.client_idle_ms;
	uint64_t since = now - cl->last_active_ms;

	if (cl->streams_open || since < idle) {
		h2s_timer_arm(&p->loop, t, cl->streams_open ? idle : idle - since);
		return;
	}
	p->stats.client_idle_closed++;
	log_limited(H2S_LOG_INFO,
		    "client %s: no stream and no frame for %llu ms (client_idle_ms): GOAWAY and "
		    "closed",
		    cl->name, (unsigned long long)since);
	nghttp2_session_terminate_session(cl->c.ng, NGHTTP2_NO_ERROR);
	h2s_conn_mark(&cl->c);
}

/* A frame or header block begun client_frame_timeout_ms ago and still unfinished: a client
 * that trickles its bytes (slowloris: HEADERS one byte at a time) holds a connection and
 * its decoder for nothing. Closed without GOAWAY: its frame is not finished.
 */
static void frame_expired(struct h2s_timer *t)
{
	struct h2s_client *cl = h2s_container_of(t, struct h2s_client, frame_timer);
	struct h2s_plane *p = cl->c.p;
	uint64_t now = p->loop.now_ms, limit = p->set.client_frame_timeout_ms;

	if (h2s_ft_idle(&cl->ft))
		return;
	if (now - cl->frame_begun_ms < limit) {
		h2s_timer_arm(&p->loop, t, limit - (now - cl->frame_begun_ms));
		return;
	}
	p->stats.client_frame_timeouts++;
	log_limited(H2S_LOG_WARNING,
		    "client %s: %s unfinished after %llu ms (client_frame_timeout_ms): closed",
		    cl->name, cl->ft.in_block ? "header block" : "frame",
		    (unsigned long long)(now - cl->frame_begun_ms));
	h2s_conn_close(&cl->c, "frame or header block unfinished in time");
}

/* Every byte from the client, before nghttp2 sees it: where its frames stand. */
static void client_read(struct h2s_conn *c, const uint8_t *data, size_t n)
{
	struct h2s_client *cl = client_of(c);
	struct h2s_plane *p = c->p;

	if (h2s_ft_feed(&cl->ft, data, n))
		cl->last_active_ms = p->loop.now_ms;
	if (h2s_ft_idle(&cl->ft) || !p->set.client_frame_timeout_ms)
		return;
	if (cl->ft.begun != cl->ft_begun) {
		cl->ft_begun = cl->ft.begun;
		cl->frame_begun_ms = p->loop.now_ms;
	}
	if (!h2s_timer_armed(&cl->frame_timer))
		h2s_timer_arm(&p->loop, &cl->frame_timer, p->set.client_frame_timeout_ms);
}

/* Frames wait for the client's socket: from now on it must take some within
 * client_write_timeout_ms, or the connection is closed (a client that never reads).
 */
static void client_after_flush(struct h2s_conn *c, bool pending)
{
	struct h2s_client *cl = client_of(c);
	uint32_t ms = c->p->set.client_write_timeout_ms;

	if (!pending || !ms || h2s_timer_armed(&cl->write_timer))
		return;
	cl->sent_mark = c->sent;
	h2s_timer_arm(&c->p->loop, &cl->write_timer, ms);
}

static void write_expired(struct h2s_timer *t)
{
	struct h2s_client *cl = h2s_container_of(t, struct h2s_client, write_timer);
	struct h2s_plane *p = cl->c.p;

	if (!h2s_ob_pending(&cl->c.out))
		return; /* it took everything: disarmed until frames wait again */
	if (cl->c.sent != cl->sent_mark) {
		cl->sent_mark = cl->c.sent; /* slow, but reading */
		h2s_timer_arm(&p->loop, &cl->write_timer, p->set.client_write_timeout_ms);
		return;
	}
	p->stats.clients_stalled++;
	log_limited(H2S_LOG_WARNING,
		    "client %s: took no byte in %u ms with %zu bytes of frames and %llu of bodies "
		    "waiting (client_write_timeout_ms): closing it",
		    cl->name, p->set.client_write_timeout_ms, h2s_ob_pending(&cl->c.out),
		    (unsigned long long)cl->buffered);
	h2s_conn_close(&cl->c, "client stopped reading");
}

void h2s_client_shutdown(struct h2s_client *cl)
{
	if (h2s_timer_armed(&cl->goaway_timer))
		return;
	nghttp2_submit_shutdown_notice(cl->c.ng);
	h2s_timer_arm(&cl->c.p->loop, &cl->goaway_timer, GOAWAY_GRACE_MS);
	h2s_conn_mark(&cl->c);
}

/* Where was this connection going? The sockops program recorded the client's 4-tuple. */
static int origin_of(struct h2s_plane *p, int fd, struct h2s_addr *peer, struct h2s_origin *o)
{
	struct sockaddr_storage a, b;
	socklen_t la = sizeof(a), lb = sizeof(b);
	struct h2s_tuple t;

	if (getpeername(fd, (struct sockaddr *)&a, &la) < 0 ||
	    getsockname(fd, (struct sockaddr *)&b, &lb) < 0)
		return -errno;
	memset(&t, 0, sizeof(t));
	if (h2s_addr_from_sockaddr((struct sockaddr *)&a, &t.client) < 0 ||
	    h2s_addr_from_sockaddr((struct sockaddr *)&b, &t.listener) < 0)
		return -EAFNOSUPPORT;
	*peer = t.client;
	return h2s_origin_get(p->maps, &t, o) < 0 ? -ENOENT : 0;
}

void h2s_client_accept(struct h2s_plane *p, int fd)
{
	char ps[H2S_ADDR_STRLEN];
	struct h2s_addr peer;
	struct h2s_origin origin;
	int rc;

	rc = origin_of(p, fd, &peer, &origin);
	if (rc < 0) {
		p->stats.capture_misses++;
		log_notice("connection from %s was not captured by h2steer (%s): closing it",
			   rc == -ENOENT ? h2s_addr_format(&peer, ps, sizeof(ps)) : "?",
			   rc == -ENOENT ? "no origin record" : strerror(-rc));
		close(fd);
		return;
	}
	h2s_splice_accept(p, fd, &peer, &origin);
}

void h2s_client_start(struct h2s_plane *p, int fd, const struct h2s_addr *peer,
		      const struct h2s_origin *origin)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, p->set.max_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, p->set.stream_window },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, p->set.max_header_list },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	char ps[H2S_ADDR_STRLEN], vs[H2S_ADDR_STRLEN];
	struct h2s_client *cl;
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	h2s_conn_init(&cl->c, p, fd);
	cl->c.teardown = client_teardown;
	cl->c.destroy = client_destroy;
	cl->c.on_read = client_read;
	cl->peer = *peer;
	cl->vip = origin->vip;
	cl->origin = *origin;
	cl->accepted_ms = h2s_now_ms();
	cl->goaway_timer.fire = goaway_final;
	cl->hello_timer.fire = hello_expired;
	cl->idle_timer.fire = idle_expired;
	cl->frame_timer.fire = frame_expired;
	h2s_ft_init_server(&cl->ft);
	cl->last_active_ms = p->loop.now_ms;
	cl->c.recv = h2s_guard_recv;
	cl->preface_left = 24; /* the client connection preface, checked by nghttp2 */
	cl->write_timer.fire = write_expired;
	cl->c.after_flush = client_after_flush;
	h2s_list_init(&cl->streams);
	snprintf(cl->name, sizeof(cl->name), "%s -> %s", h2s_addr_format(peer, ps, sizeof(ps)),
		 h2s_addr_format(&origin->vip, vs, sizeof(vs)));
	if (nghttp2_session_server_new3(&cl->c.ng, p->server_cbs, cl, p->opt,
					h2s_nghttp2_mem()) != 0 ||
	    h2s_conn_start(&cl->c) < 0) {
		nghttp2_session_del(cl->c.ng);
		close(fd);
		free(cl);
		return;
	}
	nghttp2_submit_settings(cl->c.ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	nghttp2_session_set_local_window_size(cl->c.ng, NGHTTP2_FLAG_NONE, 0, (int32_t)p->set.conn_window);
	h2s_list_add_tail(&p->clients, &cl->link);
	p->nclients++;
	h2s_timer_arm(&p->loop, &cl->hello_timer, p->set.handshake_timeout_ms);
	if (p->set.client_idle_ms)
		h2s_timer_arm(&p->loop, &cl->idle_timer, p->set.client_idle_ms);
	p->stats.conns_accepted++;
	log_debug("client %s: accepted", cl->name);
	if (p->draining)
		h2s_client_shutdown(cl);
	h2s_conn_mark(&cl->c);
}
