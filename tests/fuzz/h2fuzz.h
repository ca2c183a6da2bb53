/* h2fuzz.h — the rig of the two HTTP/2 harnesses (fuzz_h2_server.c, fuzz_h2_upstream.c): one
 * daemon plane without maps or sockets (tests/unit/h2mem.h, as test_relay.c drives it), its
 * client leg and two upstream legs. Each side is played either by a well-behaved nghttp2
 * session (a gRPC client making three calls; a backend answering every call with one message
 * and grpc-status 0) or by the fuzz input, fed to the daemon in chunks with loop turns between,
 * so the relay sees the hostile bytes interleaved with the other leg's answers.
 *
 * Everything lives in one struct h2fuzz per input; `cur` only lets the pick hook find it.
 * A well-behaved peer's session failing on what the daemon sent it (nghttp2_session_mem_recv
 * < 0) aborts: the daemon must never pass the hostile side's garbage on to an innocent one.
 */
#ifndef H2S_FUZZ_H2FUZZ_H
#define H2S_FUZZ_H2FUZZ_H

#include "h2mem.h"

#include "addr.h"
#include "h2_server.h"
#include "h2_upstream.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H2F_BACKENDS 2
#define H2F_ROUNDS 64 /* loop turns per pump at most: a peer pair may never go quiet */

#define H2F_NV(n, v) \
	{ (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE }

struct h2fuzz {
	struct h2s_plane *p;
	struct h2s_client *cl;
	nghttp2_session *client; /* NULL: the input plays the client */
	struct h2f_backend {
		struct h2s_backend_rt be;
		struct h2s_upstream *up;
		nghttp2_session *ng; /* NULL: the input plays this backend */
	} b[H2F_BACKENDS];
	nghttp2_session_callbacks *cbs;
};

static struct h2fuzz *h2f_cur;

static void h2f_check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "h2fuzz: %s\n", what);
		abort();
	}
}

/* One gRPC message (an empty one: 5 bytes of framing), then the end; for both peers' bodies. A
 * backend's answer ends with the trailers grpc-status 0.
 */
static ssize_t h2f_body(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
			uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	static const nghttp2_nv tr[] = { H2F_NV("grpc-status", "0") };

	(void)src;
	(void)ud;
	if (len < 5)
		return NGHTTP2_ERR_DEFERRED;
	memset(buf, 0, 5);
	*flags |= NGHTTP2_DATA_FLAG_EOF;
	if (nghttp2_session_check_server_session(ng)) {
		*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(ng, sid, tr, 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return 5;
}

/* A backend answers each request as its headers arrive: 200, one message, grpc-status 0. */
static int h2f_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	static const nghttp2_nv nv[] = { H2F_NV(":status", "200"),
					 H2F_NV("content-type", "application/grpc") };
	nghttp2_data_provider prd = { .read_callback = h2f_body };

	(void)ud;
	if (nghttp2_session_check_server_session(ng) && f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_REQUEST)
		nghttp2_submit_response(ng, f->hd.stream_id, nv, 2, &prd);
	return 0;
}

static struct h2s_upstream *h2f_up(struct h2f_backend *b)
{
	return b->up = h2mem_live_up(&b->be, b->up);
}

/* As the registry picks: the first backend whose connection takes streams, other than the one
 * the stream is replayed from while there is one. Never a backend without a connection: the
 * pool would connect() for it.
 */
static struct h2s_backend_rt *h2f_pick(struct h2s_plane *p, struct h2s_stream *st)
{
	struct h2s_backend_rt *fallback = NULL;

	(void)p;
	for (int i = 0; i < H2F_BACKENDS; i++) {
		struct h2f_backend *b = &h2f_cur->b[i];
		struct h2s_upstream *up = h2f_up(b);

		if (!up || !nghttp2_session_check_request_allowed(up->c.ng))
			continue;
		if (&b->be != st->avoid)
			return &b->be;
		fallback = fallback ? fallback : &b->be;
	}
	return fallback;
}

static struct h2s_client *h2f_client(struct h2fuzz *f)
{
	return f->cl = h2mem_live_client(f->p, f->cl);
}

/* A well-behaved peer's frames into the daemon. */
static bool h2f_feed(nghttp2_session *from, struct h2s_conn *c)
{
	bool moved = false;

	while (!c->dead) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(from, &data);

		h2f_check(n >= 0, "a well-behaved peer's session failed to send");
		if (n == 0)
			break;
		h2mem_recv(c, data, (size_t)n);
		moved = true;
	}
	return moved;
}

/* The daemon's frames on c into its peer (dropped when the input plays that peer). */
static bool h2f_deliver(struct h2s_conn *c, nghttp2_session *to)
{
	ssize_t n = h2mem_deliver(c, to);

	h2f_check(n >= 0, "the daemon sent a well-behaved peer what its session refused");
	return n > 0;
}

/* Turns and shuttling between the daemon and the well-behaved peers until nothing moves. */
static void h2f_pump(struct h2fuzz *f)
{
	for (int round = 0; round < H2F_ROUNDS; round++) {
		struct h2s_client *cl;
		bool moved = false;

		h2f_check(h2mem_turn(f->p) == 0, "the loop failed");
		if ((cl = h2f_client(f))) {
			moved |= h2f_deliver(&cl->c, f->client);
			if (f->client)
				moved |= h2f_feed(f->client, &cl->c);
		}
		for (int i = 0; i < H2F_BACKENDS; i++) {
			struct h2s_upstream *up = h2f_up(&f->b[i]);

			if (!up)
				continue;
			moved |= h2f_deliver(&up->c, f->b[i].ng);
			if (f->b[i].ng)
				moved |= h2f_feed(f->b[i].ng, &up->c);
		}
		if (!moved)
			return;
	}
}

static nghttp2_session *h2f_peer(struct h2fuzz *f, bool server)
{
	static const nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
	};
	nghttp2_session *ng;

	h2f_check((server ? nghttp2_session_server_new(&ng, f->cbs, NULL)
			  : nghttp2_session_client_new(&ng, f->cbs, NULL)) == 0,
		  "nghttp2 session");
	h2f_check(nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, iv, 1) == 0, "SETTINGS");
	return ng;
}

/* The client's calls: one without a body, one with a message, one left open (its end never
 * comes: a client still uploading when the backend misbehaves).
 */
static void h2f_calls(struct h2fuzz *f)
{
	static const nghttp2_nv nv[] = {
		H2F_NV(":method", "POST"),	   H2F_NV(":scheme", "http"),
		H2F_NV(":authority", "echo.test:50051"), H2F_NV(":path", "/test.Echo/Call"),
		H2F_NV("content-type", "application/grpc"), H2F_NV("te", "trailers"),
	};
	nghttp2_data_provider prd = { .read_callback = h2f_body };

	h2f_check(nghttp2_submit_headers(f->client, NGHTTP2_FLAG_END_STREAM, -1, NULL, nv, 6, NULL) >
			  0,
		  "call 1");
	h2f_check(nghttp2_submit_request(f->client, NULL, nv, 6, &prd, NULL) > 0, "call 2");
	h2f_check(nghttp2_submit_headers(f->client, NGHTTP2_FLAG_NONE, -1, NULL, nv, 6, NULL) > 0,
		  "call 3");
}

/* The rig; `fuzzed`: -1 the input is the client, else the index of the backend it plays. */
static void h2f_start(struct h2fuzz *f, int fuzzed)
{
	struct h2s_origin origin = { 0 };
	struct h2s_addr peer;
	struct h2s_settings set;
	char err[256] = "";

	memset(f, 0, sizeof(*f));
	h2f_cur = f;
	/* Silent: a line per input would be most of the time spent. H2FUZZ_LOG=7 to see them. */
	h2s_log_set_level(getenv("H2FUZZ_LOG") ? atoi(getenv("H2FUZZ_LOG")) : 0);
	h2mem_settings(&set);
	/* The header-list cap small: a bomb or flood reaches it in a few KiB of input rather than
	 * decoding 16 MiB per execution (the same code either way).
	 */
	set.max_header_list = 32768;
	f->p = h2mem_plane_new(&set, h2f_pick, err, sizeof(err));
	h2f_check(f->p, err);
	h2f_check(nghttp2_session_callbacks_new(&f->cbs) == 0, "callbacks");
	nghttp2_session_callbacks_set_on_frame_recv_callback(f->cbs, h2f_frame_recv);
	h2f_check(h2s_addr_parse("127.0.0.1:50051", &origin.vip, err, sizeof(err)) == 0, err);
	h2f_check(h2s_addr_parse("127.0.0.1:40000", &peer, err, sizeof(err)) == 0, err);
	if (fuzzed >= 0)
		f->client = h2f_peer(f, false);
	h2s_client_start(f->p, -1, &peer, &origin);
	h2f_check(!h2s_list_empty(&f->p->clients), "no client connection");
	f->cl = h2s_container_of(f->p->clients.next, struct h2s_client, link);
	for (int i = 0; i < H2F_BACKENDS; i++) {
		struct h2f_backend *b = &f->b[i];
		char addr[32];

		/* Port 1 of loopback: were the pool ever to connect, nothing is there. */
		snprintf(addr, sizeof(addr), "127.0.0.%d:1", i + 2);
		h2f_check(h2s_addr_parse(addr, &b->be.addr, err, sizeof(err)) == 0, err);
		snprintf(b->be.name, sizeof(b->be.name), "%s", addr);
		h2s_list_init(&b->be.conns);
		b->be.stream_limit = H2S_STREAM_LIMIT_UNKNOWN;
		b->be.members = b->be.active = 1; /* wanted: never released, never idled */
		if (i != fuzzed)
			b->ng = h2f_peer(f, true);
		b->up = h2s_upstream_new(f->p, &b->be, -1, false);
		h2f_check(b->up, "upstream");
		h2s_conn_mark(&b->up->c); /* its preface: as a completed connect() marks it */
	}
	if (f->client)
		h2f_calls(f);
	h2f_pump(f);
}

/* The input into conn c (the one it plays), in chunks of 64 to 1024 bytes (its first byte says
 * which), the loop turning and the other peers answering between them.
 */
static void h2f_play(struct h2fuzz *f, const uint8_t *data, size_t size, struct h2s_conn *(*c)(struct h2fuzz *f))
{
	size_t chunk;

	if (size == 0)
		return;
	chunk = ((size_t)(data[0] & 15) + 1) * 64;
	data++, size--;
	while (size) {
		struct h2s_conn *to = c(f);
		size_t n = size < chunk ? size : chunk;

		if (!to)
			break;
		h2mem_recv(to, data, n);
		data += n, size -= n;
		h2f_pump(f);
	}
}

static void h2f_stop(struct h2fuzz *f)
{
	if (h2f_client(f))
		h2s_conn_close(&f->cl->c, "input over");
	for (int i = 0; i < H2F_BACKENDS; i++)
		if (h2f_up(&f->b[i]))
			h2s_conn_close(&f->b[i].up->c, "input over");
	h2mem_plane_free(f->p);
	nghttp2_session_del(f->client);
	for (int i = 0; i < H2F_BACKENDS; i++)
		nghttp2_session_del(f->b[i].ng);
	nghttp2_session_callbacks_del(f->cbs);
	h2f_cur = NULL;
}

#endif /* H2S_FUZZ_H2FUZZ_H */
