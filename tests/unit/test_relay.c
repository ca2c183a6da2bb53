/* test_relay.c — user/proxy/relay.c on in-memory HTTP/2: the coupled flow control (a stream's
 * bytes are acknowledged to their sender only once the other leg took them; connection
 * windows on arrival) and the replay rules (a stream the backend provably never processed
 * goes to the next pick, within the retry budget; any other failure reaches the client), and
 * proxy/retry.c's budget on its own.
 *
 * No sockets: the daemon's client leg and upstream legs are made over fd -1 (conn.h), so their
 * frames stay in conn.out. The test plays the client with an nghttp2 client session and each
 * backend with an nghttp2 server session, and moves bytes between them and the daemon's
 * sessions (nghttp2_session_mem_recv) one loop turn at a time. The streams' backends come from
 * the plane's pick hook: the registry only holds what BPF maps list, and unit tests have none.
 */
#include "unit.h"
#include "h2mem.h"

#include "h2_server.h"
#include "h2_upstream.h"
#include "log.h"
#include "plane.h"
#include "relay.h"
#include "retry.h"
#include "settings.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SID 16 /* stream ids a test uses, on any of its connections */
#define NBACKENDS 2
#define BIG_BODY 200000 /* several windows of every size used here */

#define NV(n, v) \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE }

/* ---- test peers: an nghttp2 session playing the client, or one backend ---- */

struct peer_stream {
	/* What arrived. */
	bool opened; /* its request headers began (a backend's view) */
	struct h2s_hdrs hdrs, trailers;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	bool hold;     /* a slow reader: its data is consumed only by peer_read() */
	size_t unread; /* arrived while held, not consumed yet */
	bool ended;    /* END_STREAM arrived */
	bool reset;    /* RST_STREAM arrived, with reset_code */
	uint32_t reset_code;
	bool closed;
	uint64_t wu; /* stream-level WINDOW_UPDATE increments received */
	/* What it sends: body bytes pat(seed, 0 .. tx_len), then END_STREAM once tx_end (after
	 * the trailers grpc-status 0 when tx_trailers).
	 */
	uint32_t seed;
	size_t tx_len, tx_off;
	bool tx_end, tx_trailers;
	size_t tx_trailer_fill; /* bytes of x-fill fields the trailers carry too (add_fill()) */
};

struct peer {
	nghttp2_session *ng;
	bool mute;         /* never sends a byte: a backend that accepted TCP and stays silent */
	unsigned requests; /* request header blocks begun (a backend's count) */
	struct peer_stream s[MAX_SID];
};

/* Byte i of a body: period 251 (prime), never in step with frames or the daemon's chunks; the
 * seed tells the bodies of different streams apart.
 */
static uint8_t pat(uint32_t seed, size_t i)
{
	return (uint8_t)((i + seed) % 251);
}

static struct peer_stream *ps_of(void *peer, int32_t sid)
{
	struct peer *pe = peer;

	cr_assert(sid > 0 && sid < MAX_SID, "stream id %d beyond the test's", sid);
	return &pe->s[sid];
}

static int peer_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct peer *pe = ud;

	(void)ng;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		ps_of(pe, f->hd.stream_id)->opened = true;
		pe->requests++;
	}
	return 0;
}

static int peer_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		       size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct peer_stream *ps = ps_of(ud, f->hd.stream_id);

	(void)ng;
	(void)flags;
	cr_assert_eq(h2s_hdrs_add(f->headers.cat == NGHTTP2_HCAT_HEADERS ? &ps->trailers
									  : &ps->hdrs,
				  name, nlen, value, vlen),
		     0);
	return 0;
}

static int peer_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
		     size_t len, void *ud)
{
	struct peer_stream *ps = ps_of(ud, sid);

	(void)flags;
	if (ps->rx_len + len > ps->rx_cap) {
		ps->rx_cap = 2 * (ps->rx_len + len);
		ps->rx = realloc(ps->rx, ps->rx_cap);
		cr_assert_not_null(ps->rx);
	}
	memcpy(ps->rx + ps->rx_len, data, len);
	ps->rx_len += len;
	/* Like the daemon: the connection window at once, so only a held stream waits. */
	nghttp2_session_consume_connection(ng, len);
	if (ps->hold)
		ps->unread += len;
	else
		nghttp2_session_consume_stream(ng, sid, len);
	return 0;
}

static int peer_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct peer_stream *ps;

	(void)ng;
	switch (f->hd.type) {
	case NGHTTP2_WINDOW_UPDATE:
		if (f->hd.stream_id)
			ps_of(ud, f->hd.stream_id)->wu += f->window_update.window_size_increment;
		break;
	case NGHTTP2_RST_STREAM:
		ps = ps_of(ud, f->hd.stream_id);
		ps->reset = true;
		ps->reset_code = f->rst_stream.error_code;
		break;
	case NGHTTP2_HEADERS:
	case NGHTTP2_DATA:
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
			ps_of(ud, f->hd.stream_id)->ended = true;
		break;
	}
	return 0;
}

static int peer_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	(void)ng;
	(void)code;
	ps_of(ud, sid)->closed = true;
	return 0;
}

/* `fill` bytes of header values more, in x-fill fields of at most 4000 bytes, put in nv from
 * entry n on (room for cap entries); the entries then used.
 */
static size_t add_fill(nghttp2_nv *nv, size_t n, size_t cap, size_t fill)
{
	static uint8_t f[4000];

	memset(f, 'f', sizeof(f));
	for (; fill; n++) {
		size_t k = fill < sizeof(f) ? fill : sizeof(f);

		cr_assert_lt(n, cap, "no room for %zu more bytes of x-fill", fill);
		nv[n] = (nghttp2_nv){ (uint8_t *)"x-fill", f, 6, k, NGHTTP2_NV_FLAG_NONE };
		fill -= k;
	}
	return n;
}

/* Bytes of x-fill values in h. */
static size_t fill_of(const struct h2s_hdrs *h)
{
	size_t n = 0;

	for (size_t i = 0; i < h->n; i++)
		if (h->h[i].name_len == 6 && memcmp(h->buf + h->h[i].name_off, "x-fill", 6) == 0)
			n += h->h[i].value_len;
	return n;
}

static ssize_t peer_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct peer_stream *ps = ps_of(ud, sid);
	size_t n = ps->tx_len - ps->tx_off;

	(void)src;
	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(ps->seed, ps->tx_off + i);
	ps->tx_off += n;
	if (ps->tx_off < ps->tx_len || !ps->tx_end)
		return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (ps->tx_trailers) {
		nghttp2_nv tr[64] = { NV("grpc-status", "0") };
		size_t n = add_fill(tr, 1, ARRAY_LEN(tr), ps->tx_trailer_fill);

		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		cr_assert_eq(nghttp2_submit_trailer(ng, sid, tr, n), 0);
	}
	return (ssize_t)n;
}

static void peer_free(struct peer *pe)
{
	nghttp2_session_del(pe->ng);
	for (int i = 0; i < MAX_SID; i++) {
		h2s_hdrs_free(&pe->s[i].hdrs);
		h2s_hdrs_free(&pe->s[i].trailers);
		free(pe->s[i].rx);
	}
}

/* The slow reader catches up: what its held stream received is consumed now. */
static void peer_read(struct peer *pe, int32_t sid)
{
	struct peer_stream *ps = ps_of(pe, sid);

	cr_assert_eq(nghttp2_session_consume_stream(pe->ng, sid, ps->unread), 0);
	ps->unread = 0;
}

/* More body for an open stream, and its end when `end`. */
static void peer_send(struct peer *pe, int32_t sid, size_t more, bool end)
{
	struct peer_stream *ps = ps_of(pe, sid);

	ps->tx_len += more;
	ps->tx_end = end;
	cr_assert_eq(nghttp2_session_resume_data(pe->ng, sid), 0);
}

static bool body_is(const struct peer_stream *ps, uint32_t seed, size_t len)
{
	if (ps->rx_len != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (ps->rx[i] != pat(seed, i))
			return false;
	return true;
}

/* Header `name` of a block as a string, "" when absent (one use per assertion). */
static const char *hdr(const struct h2s_hdrs *h, const char *name)
{
	static char buf[256];
	size_t len;
	const uint8_t *v = h2s_hdrs_get(h, name, &len);

	snprintf(buf, sizeof(buf), "%.*s", v ? (int)len : 0, v ? (const char *)v : "");
	return buf;
}

static bool hdrs_equal(const struct h2s_hdrs *a, const struct h2s_hdrs *b)
{
	nghttp2_nv na[32], nb[32];

	if (a->n != b->n || a->n > ARRAY_LEN(na))
		return false;
	h2s_hdrs_to_nv(a, na);
	h2s_hdrs_to_nv(b, nb);
	for (size_t i = 0; i < a->n; i++)
		if (na[i].namelen != nb[i].namelen || na[i].valuelen != nb[i].valuelen ||
		    memcmp(na[i].name, nb[i].name, na[i].namelen) ||
		    memcmp(na[i].value, nb[i].value, na[i].valuelen))
			return false;
	return true;
}

/* ---- the rig: one daemon plane, its client leg, two upstream legs, and their peers ---- */

struct backend {
	struct h2s_backend_rt be;
	struct h2s_upstream *up; /* the daemon's connection to it; NULL once closed */
	struct peer peer;        /* the backend itself */
};

/* Static, so zero in each test's process: a test may set a peer's `mute` before rig_start. */
static struct {
	struct h2s_plane *p;
	nghttp2_session_callbacks *cbs;
	nghttp2_option *opt;
	struct peer client;
	struct h2s_client *cl;
	struct backend b[NBACKENDS];
	unsigned picks;
} rig;

static struct peer *const A = &rig.b[0].peer, *const B = &rig.b[1].peer;

/* b's connection while the daemon has it: a closed one leaves its pool at once (and is freed
 * at the end of that loop turn).
 */
static struct h2s_upstream *live_up(struct backend *b)
{
	return b->up = h2mem_live_up(&b->be, b->up);
}

static struct h2s_client *live_client(void)
{
	return rig.cl = h2mem_live_client(rig.p, rig.cl);
}

/* As the registry picks: a backend other than the one the stream comes from while one is
 * left. Only backends whose connection takes streams: for any other the pool would connect.
 */
static struct h2s_backend_rt *rig_pick(struct h2s_plane *p, struct h2s_stream *st)
{
	struct h2s_backend_rt *fallback = NULL;

	(void)p;
	rig.picks++;
	for (int i = 0; i < NBACKENDS; i++) {
		struct backend *b = &rig.b[i];
		struct h2s_upstream *up = live_up(b);

		if (!up || !nghttp2_session_check_request_allowed(up->c.ng))
			continue;
		if (&b->be != st->avoid)
			return &b->be;
		fallback = fallback ? fallback : &b->be;
	}
	return fallback;
}

/* One turn of the daemon's loop: its flushes write every marked conn's frames into conn.out. */
static void turn(void)
{
	cr_assert_eq(h2mem_turn(rig.p), 0);
}

/* The daemon's output on c, into the peer; taking it makes room, as EPOLLOUT would. */
static bool deliver(struct h2s_conn *c, struct peer *to)
{
	size_t n = h2s_ob_pending(&c->out);

	cr_assert_eq(h2mem_deliver(c, to->ng), (ssize_t)n);
	return n > 0;
}

/* The peer's output, into the daemon's session as the conn's reads pass it. */
static bool feed(struct peer *from, struct h2s_conn *c)
{
	bool moved = false;

	while (!from->mute) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(from->ng, &data);

		cr_assert_geq(n, 0, "peer session: %s", nghttp2_strerror((int)n));
		if (n == 0)
			break;
		/* Through the client leg's frame tap, as its reads go (h2_server.c). */
		cr_assert_eq(c->recv ? c->recv(c, data, (size_t)n)
				     : nghttp2_session_mem_recv(c->ng, data, (size_t)n),
			     n, "the daemon rejected the peer's frames");
		moved = true;
	}
	if (moved)
		h2s_conn_mark(c);
	return moved;
}

/* Turns and shuttling until no byte moves any more. */
static void pump(void)
{
	for (int round = 0; round < 10000; round++) {
		struct h2s_client *cl;
		bool moved = false;

		turn();
		if ((cl = live_client()))
			moved |= deliver(&cl->c, &rig.client) | feed(&rig.client, &cl->c);
		for (int i = 0; i < NBACKENDS; i++) {
			struct h2s_upstream *up = live_up(&rig.b[i]);

			if (up)
				moved |= deliver(&up->c, &rig.b[i].peer) |
					 feed(&rig.b[i].peer, &up->c);
		}
		if (!moved)
			return;
	}
	cr_assert_fail("the sessions never went quiet");
}

static struct h2s_settings rig_settings(void)
{
	struct h2s_settings set;

	h2mem_settings(&set);
	return set;
}

static void peer_start(struct peer *pe, bool server, uint32_t window)
{
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window },
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
	};

	cr_assert_eq(server ? nghttp2_session_server_new2(&pe->ng, rig.cbs, pe, rig.opt)
			    : nghttp2_session_client_new2(&pe->ng, rig.cbs, pe, rig.opt),
		     0);
	cr_assert_eq(nghttp2_submit_settings(pe->ng, NGHTTP2_FLAG_NONE, iv, ARRAY_LEN(iv)), 0);
	for (int i = 0; i < MAX_SID; i++) {
		h2s_hdrs_init(&pe->s[i].hdrs);
		h2s_hdrs_init(&pe->s[i].trailers);
	}
}

/* A plane with no maps, a client connection to it and one connection to each backend; the
 * peers' INITIAL_WINDOW_SIZEs as given. Handshakes done unless a backend is mute.
 */
static void rig_start(const struct h2s_settings *set, uint32_t client_window,
		      uint32_t backend_window)
{
	struct h2s_origin origin = { .vip = addr_of("10.96.0.10:50051") };
	struct h2s_addr peer = addr_of("10.1.0.7:40000");
	char err[256] = "";

	h2s_log_set_level(H2S_LOG_ERR);
	rig.p = h2mem_plane_new(set, rig_pick, err, sizeof(err));
	cr_assert_not_null(rig.p, "%s", err);

	cr_assert_eq(nghttp2_session_callbacks_new(&rig.cbs), 0);
	nghttp2_session_callbacks_set_on_begin_headers_callback(rig.cbs, peer_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(rig.cbs, peer_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(rig.cbs, peer_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(rig.cbs, peer_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(rig.cbs, peer_close);
	cr_assert_eq(nghttp2_option_new(&rig.opt), 0);
	nghttp2_option_set_no_auto_window_update(rig.opt, 1); /* peer_data acknowledges */
	/* Peers send header blocks past nghttp2's default 64 KiB when a test asks (it bounds a
	 * block by its decoded size, which an HPACK bomb's is).
	 */
	nghttp2_option_set_max_send_header_block_length(rig.opt, 64u << 20);

	peer_start(&rig.client, false, client_window);
	h2s_client_start(rig.p, -1, &peer, &origin);
	cr_assert(!h2s_list_empty(&rig.p->clients));
	rig.cl = h2s_container_of(rig.p->clients.next, struct h2s_client, link);
	for (int i = 0; i < NBACKENDS; i++) {
		struct backend *b = &rig.b[i];
		char addr[32];

		snprintf(addr, sizeof(addr), "10.2.0.%d:50051", i + 1);
		b->be.addr = addr_of(addr);
		snprintf(b->be.name, sizeof(b->be.name), "%s", addr);
		h2s_list_init(&b->be.conns);
		b->be.stream_limit = H2S_STREAM_LIMIT_UNKNOWN;
		b->be.members = b->be.active = 1; /* wanted: never released, never idled */
		peer_start(&b->peer, true, backend_window);
		b->up = h2s_upstream_new(rig.p, &b->be, -1, false);
		cr_assert_not_null(b->up);
		h2s_conn_mark(&b->up->c); /* its preface: as a completed connect() marks it */
	}
	pump();
}

static void rig_stop(void)
{
	if (!rig.p)
		return;
	if (live_client())
		h2s_conn_close(&rig.cl->c, "test over");
	for (int i = 0; i < NBACKENDS; i++)
		if (live_up(&rig.b[i]))
			h2s_conn_close(&rig.b[i].up->c, "test over");
	h2mem_plane_free(rig.p); /* frees the closed connections, then the streams are gone */
	peer_free(&rig.client);
	for (int i = 0; i < NBACKENDS; i++)
		peer_free(&rig.b[i].peer);
	nghttp2_session_callbacks_del(rig.cbs);
	nghttp2_option_del(rig.opt);
	memset(&rig, 0, sizeof(rig));
}

TestSuite(relay, .fini = rig_stop);

/* The client starts an RPC tagged `tag` (x-tag) with `body` bytes of body from pattern
 * `seed`, ending it when `end`; its stream id.
 */
static int32_t client_call(uint32_t seed, size_t body, bool end, const char *tag)
{
	nghttp2_nv nv[] = {
		NV(":method", "POST"),
		NV(":scheme", "http"),
		NV(":authority", "echo.test:50051"),
		NV(":path", "/test.Echo/Call"),
		NV("content-type", "application/grpc"),
		NV("te", "trailers"),
		{ (uint8_t *)"x-tag", (uint8_t *)tag, 5, strlen(tag), NGHTTP2_NV_FLAG_NONE },
	};
	nghttp2_data_provider prd = { .read_callback = peer_body };
	int32_t sid = nghttp2_submit_request(rig.client.ng, NULL, nv, ARRAY_LEN(nv), &prd, NULL);
	struct peer_stream *ps;

	cr_assert_gt(sid, 0);
	ps = ps_of(&rig.client, sid);
	ps->seed = seed;
	ps->tx_len = body;
	ps->tx_end = end;
	return sid;
}

/* The backend starts its answer on stream sid: 200, then body from pattern seed as
 * peer_send() gives it, then grpc-status 0.
 */
static void backend_answer(struct peer *be, int32_t sid, uint32_t seed)
{
	static const nghttp2_nv nv[] = { NV(":status", "200"),
					 NV("content-type", "application/grpc") };
	nghttp2_data_provider prd = { .read_callback = peer_body };
	struct peer_stream *ps = ps_of(be, sid);

	ps->seed = seed;
	ps->tx_trailers = true;
	cr_assert_eq(nghttp2_submit_response(be->ng, sid, nv, ARRAY_LEN(nv), &prd), 0);
}

/* ... and the whole answer at once, with `body` bytes. */
static void backend_respond(struct peer *be, int32_t sid, uint32_t seed, size_t body)
{
	struct peer_stream *ps = ps_of(be, sid);

	ps->tx_len = body;
	ps->tx_end = true;
	backend_answer(be, sid, seed);
}

static void backend_refuse(struct peer *be, int32_t sid)
{
	cr_assert_eq(nghttp2_submit_rst_stream(be->ng, NGHTTP2_FLAG_NONE, sid,
					       NGHTTP2_REFUSED_STREAM),
		     0);
}

/* The daemon's stream for the client's stream sid; NULL once it let go of it. */
static struct h2s_stream *daemon_stream(int32_t sid)
{
	return nghttp2_session_get_stream_user_data(rig.cl->c.ng, sid);
}

/* The client's stream sid ended well: 200, the body the backend sent from `seed`, status 0. */
static void expect_answered(int32_t sid, uint32_t seed, size_t body)
{
	struct peer_stream *ps = ps_of(&rig.client, sid);

	cr_assert(ps->closed && !ps->reset, "stream %d: closed %d, reset %d (code %u)", sid,
		  ps->closed, ps->reset, ps->reset_code);
	cr_assert_str_eq(hdr(&ps->hdrs, ":status"), "200");
	cr_assert(body_is(ps, seed, body), "stream %d: %zu bytes of response body, want %zu", sid,
		  ps->rx_len, body);
	cr_assert_str_eq(hdr(&ps->trailers, "grpc-status"), "0");
}

/* The client's stream sid was reset with `code` (the backend's reason passed on). */
static void expect_reset(int32_t sid, uint32_t code)
{
	struct peer_stream *ps = ps_of(&rig.client, sid);

	cr_assert(ps->reset, "stream %d was not reset", sid);
	cr_assert_eq(ps->reset_code, code, "stream %d reset with %s", sid,
		     nghttp2_http2_strerror(ps->reset_code));
}

/* The client's stream sid got h2steer's own Trailers-Only answer with grpc-status UNAVAILABLE. */
static void expect_unavailable(int32_t sid)
{
	struct peer_stream *ps = ps_of(&rig.client, sid);

	cr_assert(ps->closed && !ps->reset, "stream %d: closed %d, reset %d", sid, ps->closed,
		  ps->reset);
	cr_assert(ps->ended);
	cr_assert_str_eq(hdr(&ps->hdrs, ":status"), "200");
	cr_assert_str_eq(hdr(&ps->hdrs, "grpc-status"), "14");
}

/* ---- coupled flow control ---- */

/* The backend reads nothing: the client is credited exactly what went upstream, the rest waits
 * in one stream window; as the backend reads, the client's window reopens until the body is
 * through, never crediting more than the backend took, nor queueing more than a window.
 */
Test(relay, request_window_reopens_only_as_far_as_the_backend_took)
{
	struct h2s_settings set = rig_settings();
	struct peer_stream *cs, *bs;
	struct h2s_stream *st;
	int32_t sid;

	set.stream_window = 32768;
	rig_start(&set, 65535, 20000);
	A->s[1].hold = true;
	sid = client_call(7, BIG_BODY, true, "upload");
	pump();
	cs = &rig.client.s[sid];
	bs = &A->s[1];
	st = daemon_stream(sid);
	cr_assert_not_null(st);
	cr_assert_eq(bs->rx_len, 20000, "the backend got %zu bytes, its window is 20000",
		     bs->rx_len);
	cr_assert_gt(cs->wu, 0, "the client was not credited what the backend took");
	cr_assert_leq(cs->wu, bs->rx_len, "client credited %llu bytes, the backend took %zu",
		      (unsigned long long)cs->wu, bs->rx_len);
	cr_assert_leq(h2s_bq_len(&st->req_q), set.stream_window);
	cr_assert_eq(cs->tx_off, h2s_bq_len(&st->req_q) + bs->rx_len, "bytes lost on the way");

	for (int round = 0; !bs->ended; round++) {
		cr_assert_lt(round, 100, "stalled with %zu of %d bytes upstream", bs->rx_len,
			     BIG_BODY);
		peer_read(A, 1);
		pump();
		cr_assert_leq(cs->wu, bs->rx_len);
		if ((st = daemon_stream(sid)))
			cr_assert_leq(h2s_bq_len(&st->req_q), set.stream_window,
				      "%zu bytes queued", h2s_bq_len(&st->req_q));
	}
	cr_assert(body_is(bs, 7, BIG_BODY), "the backend got %zu bytes, not the body", bs->rx_len);
	backend_respond(A, 1, 8, 100);
	pump();
	expect_answered(sid, 8, 100);
	cr_assert_eq(rig.p->stats.streams_live, 0);
}

/* The same towards a client that reads nothing: the backend is credited what the client leg
 * took, the rest waits in one window, and the response comes through as the client reads.
 */
Test(relay, response_window_reopens_only_as_far_as_the_client_took)
{
	struct h2s_settings set = rig_settings();
	struct peer_stream *cs, *bs;
	struct h2s_stream *st;
	int32_t sid;

	set.stream_window = 32768;
	rig_start(&set, 20000, 65535);
	rig.client.s[1].hold = true;
	sid = client_call(1, 0, true, "download");
	cr_assert_eq(sid, 1);
	pump();
	backend_respond(A, 1, 9, BIG_BODY);
	pump();
	cs = &rig.client.s[sid];
	bs = &A->s[1];
	st = daemon_stream(sid);
	cr_assert_not_null(st);
	cr_assert_eq(cs->rx_len, 20000, "the client got %zu bytes, its window is 20000",
		     cs->rx_len);
	cr_assert_gt(bs->wu, 0, "the backend was not credited what the client took");
	cr_assert_leq(bs->wu, cs->rx_len, "backend credited %llu bytes, the client took %zu",
		      (unsigned long long)bs->wu, cs->rx_len);
	cr_assert_leq(h2s_bq_len(&st->resp_q), set.stream_window);
	cr_assert_eq(bs->tx_off, h2s_bq_len(&st->resp_q) + cs->rx_len, "bytes lost on the way");

	for (int round = 0; !cs->closed; round++) {
		cr_assert_lt(round, 100, "stalled with %zu of %d bytes at the client", cs->rx_len,
			     BIG_BODY);
		peer_read(&rig.client, sid);
		pump();
		cr_assert_leq(bs->wu, cs->rx_len);
		if ((st = daemon_stream(sid)))
			cr_assert_leq(h2s_bq_len(&st->resp_q), set.stream_window,
				      "%zu bytes queued", h2s_bq_len(&st->resp_q));
	}
	expect_answered(sid, 9, BIG_BODY);
}

/* A stalled request stream has filled the client's whole connection window (stream window =
 * connection window): the daemon acknowledged the connection window as bytes arrived, so a
 * second stream of the same connection still gets its body through.
 */
Test(relay, stalled_request_stream_leaves_the_connection_window_to_others)
{
	struct h2s_settings set = rig_settings();
	int32_t stalled, other;

	rig_start(&set, 65535, 20000);
	A->s[1].hold = true;
	stalled = client_call(1, BIG_BODY, true, "stalled");
	pump();
	cr_assert_geq(rig.client.s[stalled].tx_off, set.conn_window,
		      "the stalled stream did not fill the connection window");
	other = client_call(2, 100000, true, "other");
	pump();
	cr_assert(A->s[3].ended && body_is(&A->s[3], 2, 100000),
		  "the second stream got %zu of 100000 bytes upstream", A->s[3].rx_len);
	cr_assert_eq(A->s[1].rx_len, 20000, "the stalled stream moved");
	backend_respond(A, 3, 4, 10);
	pump();
	expect_answered(other, 4, 10);
}

/* The same for responses: a response stalled at a client that does not read has filled the
 * backend connection's window; another response on it still comes through.
 */
Test(relay, stalled_response_stream_leaves_the_connection_window_to_others)
{
	struct h2s_settings set = rig_settings();
	int32_t stalled, other;

	rig_start(&set, 20000, 65535);
	rig.client.s[1].hold = true;
	stalled = client_call(1, 0, true, "stalled");
	other = client_call(2, 0, true, "other");
	cr_assert_eq(stalled, 1);
	pump();
	backend_respond(A, 1, 5, BIG_BODY);
	pump();
	cr_assert_geq(A->s[1].tx_off, set.conn_window,
		      "the stalled response did not fill the connection window");
	backend_respond(A, 3, 6, 100000);
	pump();
	expect_answered(other, 6, 100000);
	cr_assert_eq(rig.client.s[stalled].rx_len, 20000, "the stalled stream moved");
}

/* DATA goes from the streams' queues into the batch without a copy in nghttp2 (conn.h,
 * h2s_conn_data_frame), and nghttp2 then serializes frame after frame without returning: a
 * full batch must still stop it, so that what a client that does not read makes the daemon
 * hold is one batch, not every window's worth of every stream at once.
 */
Test(relay, responses_for_a_client_that_does_not_read_stop_at_one_batch)
{
	struct h2s_settings set = rig_settings();
	const size_t batch = 65536, frame = 9 + 16384;
	int32_t sid[4];
	struct h2s_upstream *up;
	size_t out;

	set.conn_window = 1 << 20; /* the backend may send all four windows at once */
	rig_start(&set, 1 << 20, 65535);
	/* The client lets the daemon send far more than one batch: 1 MiB a stream, 16 MiB in all. */
	cr_assert_eq(nghttp2_session_set_local_window_size(rig.client.ng, NGHTTP2_FLAG_NONE, 0,
							   16 << 20),
		     0);
	for (int i = 0; i < 4; i++)
		sid[i] = client_call(10 + (uint32_t)i, 0, true, "batch");
	pump();
	up = live_up(&rig.b[0]);
	cr_assert_not_null(up);
	for (int i = 0; i < 4; i++)
		backend_respond(A, 1 + 2 * i, 20 + (uint32_t)i, BIG_BODY);
	/* The backend's four windows (64 KiB each) reach the daemon; the client's leg is not
	 * delivered, so its frames stay in conn.out, one batch per turn at most.
	 */
	for (int round = 0; round < 20; round++) {
		feed(A, &up->c);
		turn();
		deliver(&up->c, A);
	}
	out = h2s_ob_pending(&rig.cl->c.out);
	cr_assert_geq(out, batch, "only %zu bytes for the client: the test did not fill a batch",
		      out);
	cr_assert_leq(out, batch + frame, "%zu bytes serialized for a client that reads nothing",
		      out);
	pump();
	for (int i = 0; i < 4; i++)
		expect_answered(sid[i], 20 + (uint32_t)i, BIG_BODY);
	cr_assert_eq(rig.p->stats.streams_live, 0);
}

/* ---- replay ---- */

/* RST_STREAM(REFUSED_STREAM): the backend did not process it (RFC 9113 §8.7). It goes to the
 * other backend with the same headers and the body sent so far, and the rest follows there.
 */
Test(relay, refused_stream_is_replayed_with_its_headers_and_body)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	rig_start(&set, 65535, 65535);
	sid = client_call(11, 20000, false, "refused");
	pump();
	cr_assert_eq(A->requests, 1);
	cr_assert_eq(A->s[1].rx_len, 20000);
	backend_refuse(A, 1);
	pump();
	cr_assert_eq(B->requests, 1, "not replayed");
	cr_assert(hdrs_equal(&B->s[1].hdrs, &A->s[1].hdrs), "the replay's headers differ");
	cr_assert_str_eq(hdr(&B->s[1].hdrs, "x-tag"), "refused");
	cr_assert(body_is(&B->s[1], 11, 20000), "the replay carried %zu bytes of 20000",
		  B->s[1].rx_len);
	peer_send(&rig.client, sid, 30000, true);
	pump();
	cr_assert(B->s[1].ended && body_is(&B->s[1], 11, 50000), "%zu bytes of 50000",
		  B->s[1].rx_len);
	cr_assert_eq(A->requests, 1);
	cr_assert_eq(rig.p->stats.retries, 1);
	backend_respond(B, 1, 12, 1000);
	pump();
	expect_answered(sid, 12, 1000);
	cr_assert_eq(rig.p->stats.retries_live, 0, "the budget unit was not given back");
}

/* GOAWAY(last-stream-id 1): stream 3 was never processed and is replayed; stream 1 is the
 * backend's to finish.
 */
Test(relay, stream_above_goaway_last_stream_id_is_replayed)
{
	struct h2s_settings set = rig_settings();
	int32_t kept, moved;

	rig_start(&set, 65535, 65535);
	kept = client_call(21, 3000, true, "kept");
	moved = client_call(23, 3000, true, "moved");
	pump();
	cr_assert_eq(A->requests, 2);
	cr_assert_eq(nghttp2_submit_goaway(A->ng, NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, NULL, 0),
		     0);
	backend_respond(A, 1, 31, 500);
	pump();
	cr_assert_eq(B->requests, 1, "not replayed");
	cr_assert_str_eq(hdr(&B->s[1].hdrs, "x-tag"), "moved");
	cr_assert(B->s[1].ended && body_is(&B->s[1], 23, 3000));
	backend_respond(B, 1, 33, 500);
	pump();
	expect_answered(kept, 31, 500);
	expect_answered(moved, 33, 500);
	cr_assert_eq(rig.p->stats.retries, 1);
}

/* The connection took the request but never became HTTP/2 (no SETTINGS before its timeout):
 * nothing on it can have been processed, even though HEADERS went out.
 */
Test(relay, stream_on_a_connection_that_never_came_up_is_replayed)
{
	struct h2s_settings set = rig_settings();
	struct h2s_upstream *up;
	int32_t sid;

	A->mute = true;
	rig_start(&set, 65535, 65535);
	sid = client_call(41, 3000, true, "unproven");
	pump();
	up = live_up(&rig.b[0]);
	cr_assert(up && !up->settings_received);
	cr_assert(daemon_stream(sid)->flags & H2S_ST_HEADERS_SENT, "the request never left");
	up->timer.fire(&up->timer); /* the connect timeout, now */
	pump();
	cr_assert_null(live_up(&rig.b[0]));
	cr_assert_eq(B->requests, 1, "not replayed");
	cr_assert(B->s[1].ended && body_is(&B->s[1], 41, 3000));
	backend_respond(B, 1, 42, 10);
	pump();
	expect_answered(sid, 42, 10);
}

/* A working connection lost after the request went: the backend may have processed it, so it
 * is not replayed; the client gets UNAVAILABLE.
 */
Test(relay, stream_lost_with_a_working_connection_fails_unavailable)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	rig_start(&set, 65535, 65535);
	sid = client_call(51, 3000, true, "lost");
	pump();
	cr_assert_eq(A->requests, 1);
	h2s_conn_close(&live_up(&rig.b[0])->c, "closed by peer");
	pump();
	cr_assert_eq(B->requests, 0, "replayed");
	expect_unavailable(sid);
	cr_assert_eq(rig.p->stats.retries, 0);
}

/* Response headers passed on: committed to that backend, a refusal now is the client's. */
Test(relay, refusal_after_the_response_started_is_not_replayed)
{
	static const nghttp2_nv nv[] = { NV(":status", "200"),
					 NV("content-type", "application/grpc") };
	struct h2s_settings set = rig_settings();
	int32_t sid;

	rig_start(&set, 65535, 65535);
	sid = client_call(61, 3000, true, "started");
	pump();
	cr_assert_eq(nghttp2_submit_headers(A->ng, NGHTTP2_FLAG_NONE, 1, NULL, nv, ARRAY_LEN(nv),
					    NULL),
		     0);
	pump();
	cr_assert_str_eq(hdr(&rig.client.s[sid].hdrs, ":status"), "200");
	backend_refuse(A, 1);
	pump();
	cr_assert_eq(B->requests, 0, "replayed");
	expect_reset(sid, NGHTTP2_REFUSED_STREAM);
	cr_assert_eq(rig.p->stats.retries, 0);
}

/* replay_body_max is what a replay may carry: a refused stream that sent exactly that much is
 * replayed, one byte more is not (its start is gone) and the refusal reaches the client.
 */
Test(relay, refusal_after_more_than_replay_body_max_is_not_replayed)
{
	struct h2s_settings set = rig_settings();
	int32_t fits, over;

	set.replay_body_max = 1000;
	rig_start(&set, 65535, 65535);
	fits = client_call(71, 1000, true, "fits");
	over = client_call(73, 1001, true, "over");
	pump();
	cr_assert_eq(A->s[1].rx_len, 1000);
	cr_assert_eq(A->s[3].rx_len, 1001);
	backend_refuse(A, 1);
	backend_refuse(A, 3);
	pump();
	cr_assert_eq(B->requests, 1);
	cr_assert_str_eq(hdr(&B->s[1].hdrs, "x-tag"), "fits");
	cr_assert(body_is(&B->s[1], 71, 1000));
	expect_reset(over, NGHTTP2_REFUSED_STREAM);
	backend_respond(B, 1, 72, 10);
	pump();
	expect_answered(fits, 72, 10);
}

/* Budget max(retry_min 1, 0 % of the streams): of two streams refused together only the first
 * is replayed, the other's refusal reaches the client. The replay holds its unit until a
 * backend answers it: from its response headers on (the body may stream for long), the unit
 * serves the next refusal.
 */
Test(relay, refusals_beyond_the_retry_budget_are_not_replayed)
{
	struct h2s_settings set = rig_settings();
	int32_t first, second, third;

	set.retry_min = 1;
	set.retry_percent = 0;
	rig_start(&set, 65535, 65535);
	first = client_call(81, 100, true, "first");
	second = client_call(83, 100, true, "second");
	pump();
	cr_assert_eq(A->requests, 2);
	backend_refuse(A, 1);
	backend_refuse(A, 3);
	pump();
	cr_assert_eq(B->requests, 1);
	cr_assert_str_eq(hdr(&B->s[1].hdrs, "x-tag"), "first");
	expect_reset(second, NGHTTP2_REFUSED_STREAM);
	cr_assert_eq(rig.p->stats.retries, 1);
	cr_assert_eq(rig.p->stats.retries_denied, 1);
	cr_assert_eq(rig.p->stats.retries_live, 1);

	backend_answer(B, 1, 82);
	pump();
	cr_assert_str_eq(hdr(&rig.client.s[first].hdrs, ":status"), "200");
	cr_assert_eq(rig.p->stats.retries_live, 0, "an answered replay still holds its unit");
	third = client_call(85, 100, true, "third");
	pump();
	backend_refuse(A, 5);
	pump();
	cr_assert_eq(B->requests, 2, "the unit given back was not taken again");
	cr_assert_str_eq(hdr(&B->s[3].hdrs, "x-tag"), "third");
	peer_send(B, 1, 10, true);
	backend_respond(B, 3, 86, 10);
	pump();
	expect_answered(first, 82, 10);
	expect_answered(third, 86, 10);
	cr_assert_eq(rig.p->stats.retries, 2);
	cr_assert_eq(rig.p->stats.retries_live, 0);
}

/* max_attempts picks per stream: refused by both backends with 2 allowed, the client gets
 * UNAVAILABLE from h2steer, and no backend a third copy.
 */
Test(relay, stream_refused_at_every_attempt_fails_unavailable)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	set.max_attempts = 2;
	rig_start(&set, 65535, 65535);
	sid = client_call(91, 100, true, "everyone-refuses");
	pump();
	backend_refuse(A, 1);
	pump();
	cr_assert_eq(B->requests, 1);
	backend_refuse(B, 1);
	pump();
	cr_assert_eq(A->requests, 1, "a third attempt");
	cr_assert_eq(B->requests, 1);
	expect_unavailable(sid);
	cr_assert_eq(rig.picks, 2);
}

/* The client gives up mid-request: the backend is told (RST_STREAM CANCEL) without waiting
 * for anything of its own, not left to finish an RPC nobody waits for.
 */
Test(relay, client_reset_cancels_the_backend_stream_at_once)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	rig_start(&set, 65535, 65535);
	sid = client_call(101, 1000, false, "cancelled");
	pump();
	cr_assert(A->s[1].opened);
	cr_assert_eq(A->s[1].rx_len, 1000);
	cr_assert_eq(nghttp2_submit_rst_stream(rig.client.ng, NGHTTP2_FLAG_NONE, sid,
					       NGHTTP2_CANCEL),
		     0);
	pump();
	cr_assert(A->s[1].reset, "the backend's stream was not reset");
	cr_assert_eq(A->s[1].reset_code, NGHTTP2_CANCEL, "reset with %s",
		     nghttp2_http2_strerror(A->s[1].reset_code));
	cr_assert_eq(rig.p->stats.streams_live, 0, "the daemon still holds the stream");
}

/* ---- a try that gets no answer (relay.c try_expired) ----
 *
 * The try's timer is fired by hand (no time passes in a unit test): what it does, not when.
 */

/* client_call()'s RPC, ended, with 10 bytes of body and grpc-timeout `timeout` (NULL: none). */
static int32_t client_call_timeout(const char *timeout)
{
	nghttp2_nv nv[] = {
		NV(":method", "POST"),
		NV(":scheme", "http"),
		NV(":authority", "echo.test:50051"),
		NV(":path", "/test.Echo/Call"),
		NV("content-type", "application/grpc"),
		NV("te", "trailers"),
		{ (uint8_t *)"grpc-timeout", (uint8_t *)timeout, 12, timeout ? strlen(timeout) : 0,
		  NGHTTP2_NV_FLAG_NONE },
	};
	nghttp2_data_provider prd = { .read_callback = peer_body };
	int32_t sid = nghttp2_submit_request(rig.client.ng, NULL, nv,
					     ARRAY_LEN(nv) - (timeout ? 0 : 1), &prd, NULL);
	struct peer_stream *ps;

	cr_assert_gt(sid, 0);
	ps = ps_of(&rig.client, sid);
	ps->seed = 7;
	ps->tx_len = 10;
	ps->tx_end = true;
	return sid;
}

/* The try of the client's stream sid runs out now. */
static void expire_try(int32_t sid)
{
	struct h2s_stream *st = daemon_stream(sid);

	cr_assert_not_null(st);
	cr_assert(h2s_timer_armed(&st->try_timer), "no clock on the try");
	st->try_timer.fire(&st->try_timer);
	pump();
}

static void expect_status(int32_t sid, const char *code)
{
	struct peer_stream *ps = ps_of(&rig.client, sid);

	cr_assert(ps->closed && !ps->reset && ps->ended, "stream %d: closed %d, reset %d", sid,
		  ps->closed, ps->reset);
	cr_assert_str_eq(hdr(&ps->hdrs, "grpc-status"), code);
}

Test(relay, try_timeout_fails_the_call_unavailable_cancels_it_and_counts_a_failure)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	set.try_timeout_ms = 600000;
	rig_start(&set, 65535, 65535);
	sid = client_call_timeout(NULL);
	pump();
	cr_assert(A->s[1].opened && A->s[1].ended);
	expire_try(sid);
	expect_status(sid, "14");
	cr_assert(A->s[1].reset && A->s[1].reset_code == NGHTTP2_CANCEL, "backend not cancelled");
	cr_assert_eq(B->requests, 0, "replayed: the backend may have processed it");
	cr_assert_eq(rig.b[0].be.out.streak, 1, "not counted against the backend");
	cr_assert_eq(rig.p->stats.try_timeouts, 1);
	cr_assert_eq(rig.p->stats.streams_live, 0);
}

Test(relay, the_calls_grpc_timeout_bounds_the_try_deadline_exceeded)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	set.try_timeout_ms = 600000; /* longer than the call's 5 s: the deadline is the bound */
	rig_start(&set, 65535, 65535);
	sid = client_call_timeout("5S");
	pump();
	cr_assert(daemon_stream(sid)->flags & H2S_ST_TRY_DEADLINE);
	expire_try(sid);
	expect_status(sid, "4");
	cr_assert_eq(rig.b[0].be.out.streak, 1);
	cr_assert_eq(rig.p->stats.try_deadlines, 1);
	cr_assert_eq(rig.p->stats.try_timeouts, 0);
}

Test(relay, a_deadline_shorter_than_try_deadline_min_ms_fails_the_call_but_counts_nothing)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	rig_start(&set, 65535, 65535);
	sid = client_call_timeout("100m"); /* under the default 1000 ms */
	pump();
	expire_try(sid);
	expect_status(sid, "4");
	cr_assert_eq(rig.b[0].be.out.streak, 0, "a client's short deadline counted");
	cr_assert_eq(rig.p->stats.try_deadlines, 1);
}

/* Outstanding-request ageing: a backend that answered another call on that connection while
 * this one waited is alive (this may be a long poll): its deadline passing counts nothing.
 */
Test(relay, a_deadline_passing_on_a_backend_that_answers_others_counts_nothing)
{
	struct h2s_settings set = rig_settings();
	int32_t slow, quick;

	rig_start(&set, 65535, 65535);
	slow = client_call_timeout("5S");
	pump();
	quick = client_call_timeout(NULL);
	pump();
	cr_assert(A->s[3].opened, "both on backend A");
	backend_respond(A, 3, 9, 10);
	pump();
	expect_answered(quick, 9, 10);
	expire_try(slow);
	expect_status(slow, "4");
	cr_assert_eq(rig.b[0].be.out.streak, 0, "counted though the backend answered meanwhile");
	cr_assert_eq(rig.p->stats.try_deadlines, 1);
}

Test(relay, no_try_timeout_and_no_deadline_no_clock)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	rig_start(&set, 65535, 65535);
	sid = client_call_timeout(NULL);
	pump();
	cr_assert_not(h2s_timer_armed(&daemon_stream(sid)->try_timer));
}

Test(relay, response_headers_in_time_stop_the_clock)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	set.try_timeout_ms = 600000;
	rig_start(&set, 65535, 65535);
	sid = client_call_timeout("5S");
	pump();
	backend_answer(A, 1, 3); /* headers, body to follow */
	pump();
	cr_assert_not(h2s_timer_armed(&daemon_stream(sid)->try_timer));
	peer_send(A, 1, 100, true);
	pump();
	expect_answered(sid, 3, 100);
}

/* ---- memory budgets ---- */

/* A client that does not read holds at most client_buffer_max: the response that would go
 * over it is reset (ENHANCE_YOUR_CALM, its backend stream cancelled at once) and its bytes
 * dropped, a new stream is refused while less than one stream window fits, and once the
 * client reads, the other streams complete whole and nothing stays counted.
 */
Test(relay, a_client_that_does_not_read_holds_at_most_its_budget)
{
	struct h2s_settings set = rig_settings();
	int32_t sid[4], late;
	int reset = -1;

	set.client_buffer_max = 150000; /* about two stream windows of 65535 */
	rig_start(&set, 20000, 65535);
	for (int i = 0; i < 4; i++) {
		sid[i] = client_call(1 + i, 0, true, "download");
		rig.client.s[sid[i]].hold = true;
	}
	pump();
	for (int i = 0; i < 4; i++)
		backend_respond(A, sid[i], 11 + i, BIG_BODY);
	pump();
	cr_assert_leq(rig.cl->buffered, set.client_buffer_max, "%llu bytes held",
		      (unsigned long long)rig.cl->buffered);
	cr_assert_eq(rig.cl->buffered, rig.p->stats.buffered);
	for (int i = 0; i < 4; i++)
		if (rig.client.s[sid[i]].reset) {
			expect_reset(sid[i], NGHTTP2_ENHANCE_YOUR_CALM);
			cr_assert(A->s[sid[i]].reset, "its backend stream was not cancelled");
			cr_assert_eq(A->s[sid[i]].reset_code, NGHTTP2_CANCEL);
			reset = i;
		}
	cr_assert_geq(reset, 0, "no stream was reset, %llu bytes held",
		      (unsigned long long)rig.cl->buffered);
	cr_assert_geq(rig.p->stats.mem_resets, 1);

	late = client_call(9, 0, true, "late");
	pump();
	expect_reset(late, NGHTTP2_REFUSED_STREAM);
	cr_assert_eq(rig.p->stats.mem_refused_conn, 1);
	cr_assert(!A->s[late].opened, "a refused stream reached the backend");

	for (int round = 0; round < 200; round++) {
		bool open = false;

		for (int i = 0; i < 4; i++)
			if (!rig.client.s[sid[i]].closed) {
				peer_read(&rig.client, sid[i]);
				open = true;
			}
		if (!open)
			break;
		pump();
	}
	for (int i = 0; i < 4; i++)
		if (!rig.client.s[sid[i]].reset)
			expect_answered(sid[i], 11 + i, BIG_BODY);
	cr_assert_eq(rig.p->stats.buffered, 0, "%llu bytes still counted",
		     (unsigned long long)rig.p->stats.buffered);
	cr_assert_eq(h2s_relay_buffered_all(), 0);
}

/* Uploads wait once a connection window no longer fits the budget: the daemon stops
 * acknowledging the client's connection window, and acknowledges it again once the
 * backend took the bytes.
 */
Test(relay, uploads_wait_while_the_connection_is_over_its_budget)
{
	struct h2s_settings set = rig_settings();
	int32_t a, b;

	set.client_buffer_max = 3 * 65535; /* a connection window (65535) fits twice */
	rig_start(&set, 65535, 65535);
	A->s[1].hold = true;
	A->s[3].hold = true;
	a = client_call(1, BIG_BODY, true, "up-a");
	b = client_call(2, BIG_BODY, true, "up-b");
	pump();
	/* Bodies within the budget; the two header blocks (about 100 bytes each) count too. */
	cr_assert_leq(rig.cl->buffered, set.client_buffer_max + 512, "%llu bytes held",
		      (unsigned long long)rig.cl->buffered);
	cr_assert_geq(rig.p->stats.mem_upload_waits, 1, "the uploads never waited");
	cr_assert_gt(rig.cl->conn_owed, 0);
	for (int round = 0; round < 200 && !(A->s[1].ended && A->s[3].ended); round++) {
		peer_read(A, 1);
		peer_read(A, 3);
		pump();
		cr_assert_leq(rig.cl->buffered, set.client_buffer_max + 512);
	}
	cr_assert(body_is(&A->s[1], 1, BIG_BODY) && body_is(&A->s[3], 2, BIG_BODY),
		  "bodies %zu and %zu", A->s[1].rx_len, A->s[3].rx_len);
	backend_respond(A, 1, 5, 10);
	backend_respond(A, 3, 6, 10);
	pump();
	expect_answered(a, 5, 10);
	expect_answered(b, 6, 10);
	cr_assert_eq(rig.cl->conn_owed, 0);
}

/* ---- header blocks: max_header_list ---- */

/* A client RPC as client_call()'s (100 bytes of body, ended) with content-type ct and `fill`
 * bytes of x-fill fields in its request headers.
 */
static int32_t client_call_filled(const char *ct, size_t fill)
{
	nghttp2_nv nv[64] = {
		NV(":method", "POST"),
		NV(":scheme", "http"),
		NV(":authority", "echo.test:50051"),
		NV(":path", "/test.Echo/Call"),
		{ (uint8_t *)"content-type", (uint8_t *)ct, 12, strlen(ct), NGHTTP2_NV_FLAG_NONE },
		NV("te", "trailers"),
	};
	size_t n = add_fill(nv, 6, ARRAY_LEN(nv), fill);
	nghttp2_data_provider prd = { .read_callback = peer_body };
	int32_t sid = nghttp2_submit_request(rig.client.ng, NULL, nv, n, &prd, NULL);
	struct peer_stream *ps;

	cr_assert_gt(sid, 0);
	ps = ps_of(&rig.client, sid);
	ps->seed = 1;
	ps->tx_len = 100;
	ps->tx_end = true;
	return sid;
}

/* backend_respond() with `fill` bytes of x-fill fields in the response headers. */
static void backend_respond_filled(struct peer *be, int32_t sid, uint32_t seed, size_t body,
				   size_t fill)
{
	nghttp2_nv nv[64] = { NV(":status", "200"), NV("content-type", "application/grpc") };
	size_t n = add_fill(nv, 2, ARRAY_LEN(nv), fill);
	nghttp2_data_provider prd = { .read_callback = peer_body };
	struct peer_stream *ps = ps_of(be, sid);

	ps->seed = seed;
	ps->tx_len = body;
	ps->tx_end = true;
	ps->tx_trailers = true;
	cr_assert_eq(nghttp2_submit_response(be->ng, sid, nv, n, &prd), 0);
}

/* The client's stream sid got h2steer's own answer: :status, and for gRPC the grpc-status
 * `code` with a grpc-message that has `says` in it.
 */
static void expect_own_answer(int32_t sid, const char *status, const char *code,
			      const char *says)
{
	struct peer_stream *ps = ps_of(&rig.client, sid);

	cr_assert(ps->ended, "stream %d has no answer", sid);
	cr_assert(!ps->reset || ps->reset_code == NGHTTP2_NO_ERROR, "stream %d reset with %s",
		  sid, nghttp2_http2_strerror(ps->reset_code));
	cr_assert_str_eq(hdr(&ps->hdrs, ":status"), status);
	cr_assert_str_eq(hdr(&ps->hdrs, "grpc-status"), code);
	cr_assert(strstr(hdr(&ps->hdrs, "grpc-message"), says), "grpc-message: %s",
		  hdr(&ps->hdrs, "grpc-message"));
}

/* What the daemon accepts it can send on: 100 KB of headers each way, past nghttp2's default
 * 64 KiB for a block it sends (which refused such a request, replayed until max_attempts).
 */
Test(relay, header_blocks_of_100kb_pass_both_ways)
{
	struct h2s_settings set = rig_settings();
	int32_t sid;

	set.max_header_list = 16u << 20; /* the default */
	rig_start(&set, 65535, 65535);
	sid = client_call_filled("application/grpc", 100000);
	pump();
	cr_assert_eq(A->requests + B->requests, 1, "replayed: %u, %u", A->requests, B->requests);
	cr_assert_eq(fill_of(&A->s[1].hdrs), 100000);
	backend_respond_filled(A, 1, 3, 100, 100000);
	pump();
	expect_answered(sid, 3, 100);
	cr_assert_eq(fill_of(&rig.client.s[sid].hdrs), 100000);
	cr_assert_eq(rig.p->stats.retries, 0);
}

/* Request headers over the limit: answered RESOURCE_EXHAUSTED by h2steer, no backend picked
 * or sent anything, nothing replayed; the connection's other RPC goes on.
 */
Test(relay, request_headers_over_the_limit_are_answered_alone)
{
	struct h2s_settings set = rig_settings();
	int32_t ok, big;

	set.max_header_list = 8192;
	rig_start(&set, 65535, 65535);
	ok = client_call(5, 100, true, "fits");
	big = client_call_filled("application/grpc", 10000);
	pump();
	cr_assert_eq(A->requests + B->requests, 1, "the oversized request went upstream");
	cr_assert_eq(rig.picks, 1);
	expect_own_answer(big, "200", "8", "over 8192 bytes (max_header_list)");
	backend_respond(A, 1, 6, 100);
	pump();
	expect_answered(ok, 6, 100);
	cr_assert_eq(rig.p->stats.client_hdrs_too_large, 1);
	cr_assert_eq(rig.p->stats.retries, 0);
	cr_assert_eq(rig.p->stats.streams_live, 0, "the daemon still holds a stream");
}

/* Decoded headers count in the connection's memory budget: a block within max_header_list
 * but over client_buffer_max is answered alone, as one over max_header_list, and what it
 * held is let go at once.
 */
Test(relay, request_headers_over_the_memory_budget_are_answered_alone)
{
	struct h2s_settings set = rig_settings();
	int32_t ok, big;

	set.client_buffer_max = 65536;
	rig_start(&set, 65535, 65535);
	ok = client_call(5, 100, true, "fits");
	big = client_call_filled("application/grpc", 100000);
	pump();
	cr_assert_eq(A->requests + B->requests, 1, "the oversized request went upstream");
	expect_own_answer(big, "200", "8", "max_header_list");
	cr_assert_lt(rig.cl->buffered, 4096, "%llu bytes still held",
		     (unsigned long long)rig.cl->buffered);
	backend_respond(A, 1, 6, 100);
	pump();
	expect_answered(ok, 6, 100);
	cr_assert_eq(rig.p->stats.client_hdrs_too_large, 1);
	cr_assert_eq(rig.p->stats.buffered, 0);
}

/* An HPACK bomb: one 3000-byte field 6000 times, which nghttp2's deflater sends once and
 * then by its index in the dynamic table, one byte each: 18 MB of decoded headers from 8.6 KB
 * on the wire. What counts is the decoded size: over the default 16 MiB, answered alone, and
 * never more than that held.
 */
Test(relay, hpack_bomb_is_answered_at_the_decoded_limit)
{
	struct h2s_settings set = rig_settings();
	static uint8_t v[3000];
	enum { N = 6000 };
	nghttp2_nv *nv = calloc(N + 6, sizeof(*nv));
	nghttp2_nv head[] = {
		NV(":method", "POST"),
		NV(":scheme", "http"),
		NV(":authority", "echo.test:50051"),
		NV(":path", "/test.Echo/Call"),
		NV("content-type", "application/grpc"),
		NV("te", "trailers"),
	};
	int32_t sid;

	cr_assert_not_null(nv);
	memset(v, 'v', sizeof(v));
	memcpy(nv, head, sizeof(head));
	for (int i = 6; i < N + 6; i++)
		nv[i] = (nghttp2_nv){ (uint8_t *)"x-bomb", v, 6, sizeof(v), NGHTTP2_NV_FLAG_NONE };
	set.max_header_list = 16u << 20;
	rig_start(&set, 65535, 65535);
	sid = nghttp2_submit_request(rig.client.ng, NULL, nv, N + 6, NULL, NULL);
	cr_assert_gt(sid, 0);
	turn();
	feed(&rig.client, &rig.cl->c);
	cr_assert_leq(h2s_hdrs_list_size(&daemon_stream(sid)->req), set.max_header_list);
	pump();
	free(nv);
	cr_assert_eq(A->requests + B->requests, 0);
	expect_own_answer(sid, "200", "8", "over 16777216 bytes");
	cr_assert_eq(rig.p->stats.client_hdrs_too_large, 1);
}

/* The same for a client that is not gRPC: an HTTP status, 431 (RFC 6585). */
Test(relay, request_headers_over_the_limit_not_grpc_get_431)
{
	struct h2s_settings set = rig_settings();
	int32_t big;

	set.max_header_list = 8192;
	rig_start(&set, 65535, 65535);
	big = client_call_filled("text/plain", 10000);
	pump();
	cr_assert_eq(A->requests + B->requests, 0);
	cr_assert(rig.client.s[big].ended);
	cr_assert_str_eq(hdr(&rig.client.s[big].hdrs, ":status"), "431");
}

/* Response headers over the limit: that RPC fails INTERNAL at once, its backend stream is
 * reset, and the other RPC on the same backend connection is answered.
 */
Test(relay, response_headers_over_the_limit_fail_only_their_stream)
{
	struct h2s_settings set = rig_settings();
	struct h2s_upstream *up;
	int32_t big, ok;

	set.max_header_list = 8192;
	rig_start(&set, 65535, 65535);
	big = client_call(7, 100, true, "big-answer");
	ok = client_call(8, 100, true, "small-answer");
	pump();
	cr_assert_eq(A->requests, 2);
	up = live_up(&rig.b[0]);
	backend_respond_filled(A, 1, 9, 100, 10000);
	backend_respond(A, 3, 10, 100);
	pump();
	expect_own_answer(big, "200", "13", "response header list from backend 10.2.0.1:50051");
	cr_assert(A->s[1].reset && A->s[1].reset_code == NGHTTP2_INTERNAL_ERROR,
		  "the backend's stream was not reset INTERNAL_ERROR");
	expect_answered(ok, 10, 100);
	cr_assert_eq(live_up(&rig.b[0]), up, "the backend connection was lost");
	cr_assert_eq(rig.p->stats.backend_hdrs_too_large, 1);
}

/* Response trailers over the limit, after headers and body went to the client: the status
 * goes in trailers of h2steer's, INTERNAL.
 */
Test(relay, response_trailers_over_the_limit_end_the_call_internal)
{
	struct h2s_settings set = rig_settings();
	struct peer_stream *ps;
	int32_t sid;

	set.max_header_list = 8192;
	rig_start(&set, 65535, 65535);
	sid = client_call(11, 100, true, "big-trailers");
	pump();
	A->s[1].tx_trailer_fill = 10000;
	backend_respond(A, 1, 12, 500);
	pump();
	ps = &rig.client.s[sid];
	cr_assert(ps->ended && !ps->reset);
	cr_assert_str_eq(hdr(&ps->hdrs, ":status"), "200");
	cr_assert(body_is(ps, 12, 500), "%zu bytes of the body", ps->rx_len);
	cr_assert_str_eq(hdr(&ps->trailers, "grpc-status"), "13");
	cr_assert_eq(fill_of(&ps->trailers), 0, "the oversized trailers reached the client");
	cr_assert_eq(rig.p->stats.backend_hdrs_too_large, 1);
}

/* ---- the retry budget (retry.c) ---- */

static struct h2s_settings budget(uint32_t retry_min, uint32_t retry_percent)
{
	struct h2s_settings set;

	h2s_settings_default(&set);
	set.retry_min = retry_min;
	set.retry_percent = retry_percent;
	return set;
}

/* Takes that succeed in a row; the first refusal is counted. */
static unsigned take_all(struct h2s_stats *s, const struct h2s_settings *set)
{
	unsigned n = 0;

	while (h2s_retry_take(s, set))
		cr_assert_lt(++n, 100000);
	return n;
}

Test(retry, budget_is_retry_min_while_few_streams_are_live)
{
	struct h2s_settings set = budget(3, 10);
	struct h2s_stats s = { .streams_live = 20 }; /* 10 % of 20 = 2 < 3 */

	cr_assert_eq(take_all(&s, &set), 3);
	cr_assert_eq(s.retries, 3);
	cr_assert_eq(s.retries_live, 3);
	cr_assert_eq(s.retries_denied, 1);
}

Test(retry, budget_is_retry_percent_of_the_live_streams_when_more)
{
	struct h2s_settings set = budget(3, 10);
	struct h2s_stats s = { .streams_live = 205 }; /* 10 % of 205 = 20 (rounded down) */

	cr_assert_eq(take_all(&s, &set), 20);
	cr_assert_eq(s.retries_live, 20);
}

Test(retry, denied_takes_are_counted_and_hold_nothing)
{
	struct h2s_settings set = budget(1, 0);
	struct h2s_stats s = { .streams_live = 50 };

	cr_assert(h2s_retry_take(&s, &set));
	for (int i = 0; i < 5; i++)
		cr_assert_not(h2s_retry_take(&s, &set));
	cr_assert_eq(s.retries_denied, 5);
	cr_assert_eq(s.retries, 1);
	cr_assert_eq(s.retries_live, 1);
}

Test(retry, a_unit_given_back_can_be_taken_again)
{
	struct h2s_settings set = budget(2, 0);
	struct h2s_stats s = { .streams_live = 10 };

	cr_assert_eq(take_all(&s, &set), 2);
	h2s_retry_give_back(&s);
	cr_assert_eq(s.retries_live, 1);
	cr_assert(h2s_retry_take(&s, &set));
	cr_assert_not(h2s_retry_take(&s, &set));
	cr_assert_eq(s.retries, 3);
}

/* The budget is taken against the streams live at the time: more streams, more room. */
Test(retry, budget_grows_with_the_live_streams)
{
	struct h2s_settings set = budget(0, 50);
	struct h2s_stats s = { .streams_live = 4 };

	cr_assert_eq(take_all(&s, &set), 2);
	s.streams_live = 10;
	cr_assert_eq(take_all(&s, &set), 3);
	cr_assert_eq(s.retries_live, 5);
}
