/* h2mem.h — a data plane with no maps and no sockets, shared by tests/unit/test_relay.c and the
 * HTTP/2 fuzz harnesses (tests/fuzz/h2fuzz.h).
 *
 * The daemon's legs are made over fd -1 (conn.h), so their frames stay in conn.out; the caller
 * plays the peers with nghttp2 sessions of its own and moves bytes with h2mem_deliver(), or
 * hands the daemon's session bytes of any kind with h2mem_recv(). The streams' backends come
 * from the caller's pick hook: the registry only holds what BPF maps list, and these have none.
 * No assertion framework here: every helper returns what went wrong, each caller checks in
 * its own way (Criterion, or abort() under libFuzzer).
 */
#ifndef H2S_TEST_H2MEM_H
#define H2S_TEST_H2MEM_H

#include "bytequeue.h"
#include "conn.h"
#include "list.h"
#include "plane.h"
#include "relay.h"
#include "settings.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>

/* The plane, and the timer that ends one loop turn. */
struct h2mem {
	struct h2s_plane p;
	struct h2s_timer stop;
};

/* Defaults with one 64 KiB window per stream and per connection (one stalled stream can fill
 * it), and no daemon timer that can fire while a test or a fuzz input runs.
 */
static inline void h2mem_settings(struct h2s_settings *set)
{
	h2s_settings_default(set);
	set->stream_window = 65535;
	set->conn_window = 65535;
	/* No timer of the daemon's may fire during a test. */
	set->connect_timeout_ms = set->handshake_timeout_ms = set->upstream_idle_ms = 600000;
	set->client_idle_ms = set->client_frame_timeout_ms = 600000;
	set->backend_ping_interval_ms = 0;
	set->busy_poll_us = 0;
}

static inline void h2mem_stop(struct h2s_timer *t)
{
	h2s_loop_stop(&h2s_container_of(t, struct h2mem, stop)->p.loop);
}

/* A plane picking with `pick`; NULL with a reason in err. */
static inline struct h2s_plane *
h2mem_plane_new(const struct h2s_settings *set,
		struct h2s_backend_rt *(*pick)(struct h2s_plane *p, struct h2s_stream *st), char *err,
		size_t errlen)
{
	struct h2mem *m = calloc(1, sizeof(*m));

	if (!m) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (h2s_plane_init(&m->p, NULL, set, NULL, err, errlen) < 0) {
		free(m);
		return NULL;
	}
	if (h2s_plane_sessions(&m->p, NULL) < 0) {
		snprintf(err, errlen, "nghttp2 callbacks: out of memory");
		h2s_plane_fini(&m->p, true);
		free(m);
		return NULL;
	}
	m->p.reg.readonly = true; /* there are no maps to write the backends' state to */
	m->p.pick = pick;
	m->stop.fire = h2mem_stop;
	return &m->p;
}

/* After closing what is still open: frees the closed connections, then the streams. */
static inline void h2mem_plane_free(struct h2s_plane *p)
{
	h2s_plane_fini(p, true);
	free(h2s_container_of(p, struct h2mem, p));
	h2s_bq_cache_release();
}

/* One turn of the daemon's loop: its flushes write every marked conn's frames into conn.out.
 * 0, or the loop's negative errno.
 */
static inline int h2mem_turn(struct h2s_plane *p)
{
	int rc;

	h2s_timer_arm(&p->loop, &h2s_container_of(p, struct h2mem, p)->stop, 0);
	rc = h2s_loop_run(&p->loop);
	p->loop.stop = false;
	return rc;
}

/* cl while the plane has it (a closed one is freed at the end of its loop turn), else NULL. */
static inline struct h2s_client *h2mem_live_client(struct h2s_plane *p, struct h2s_client *cl)
{
	for (struct h2s_list *pos = p->clients.next; cl && pos != &p->clients; pos = pos->next)
		if (h2s_container_of(pos, struct h2s_client, link) == cl)
			return cl;
	return NULL;
}

/* up while it is in its backend's pool (a closed one leaves it at once), else NULL. */
static inline struct h2s_upstream *h2mem_live_up(struct h2s_backend_rt *be, struct h2s_upstream *up)
{
	for (struct h2s_list *pos = be->conns.next; up && pos != &be->conns; pos = pos->next)
		if (h2s_container_of(pos, struct h2s_upstream, pool_link) == up)
			return up;
	return NULL;
}

/* Bytes from c's peer into the daemon's session, as conn.c's reads pass them: a session error
 * closes the connection as a read error does. What nghttp2_session_mem_recv returned.
 */
static inline ssize_t h2mem_recv(struct h2s_conn *c, const uint8_t *data, size_t len)
{
	ssize_t n = nghttp2_session_mem_recv(c->ng, data, len);

	if (n < 0)
		h2s_conn_close(c, "HTTP/2 protocol error");
	else
		h2s_conn_mark(c);
	return n;
}

/* The daemon's output on c, into the session `to` (NULL: dropped); taking it makes room, as
 * EPOLLOUT would. Bytes moved, or what `to` refused them with (< 0).
 */
static inline ssize_t h2mem_deliver(struct h2s_conn *c, nghttp2_session *to)
{
	size_t n = h2s_ob_pending(&c->out);
	ssize_t used = (ssize_t)n;

	if (!n)
		return 0;
	if (to)
		used = nghttp2_session_mem_recv(to, h2s_ob_data(&c->out), n);
	h2s_ob_consume(&c->out, n);
	h2s_conn_mark(c);
	return used < 0 ? used : (ssize_t)n;
}

#endif /* H2S_TEST_H2MEM_H */
