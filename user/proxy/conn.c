/* conn.c — see conn.h. */
#include "conn.h"

#include "plane.h"
#include "list.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Frames are gathered up to this many bytes before one send(). */
#define OUT_BATCH 65536
/* Reads per readiness event before giving other sockets a turn (epoll is level-triggered). */
#define READS_PER_EVENT 8

static void conn_io(struct h2s_watch *w, uint32_t events);
static void conn_flush(struct h2s_flush *f);
static void conn_free(struct h2s_reap *r);
static int ack_release(struct h2s_conn *c);

#define ACKS_FLOODED "too many PING ACKs waiting for the peer to read"

/* No frames came to carry a held PING ACK: it goes alone. */
static void ack_due(struct h2s_timer *t)
{
	struct h2s_conn *c = h2s_container_of(t, struct h2s_conn, ack_timer);

	if (ack_release(c) < 0)
		h2s_conn_close(c, ACKS_FLOODED);
	else
		h2s_conn_mark(c);
}

static void linger_over(struct h2s_timer *t)
{
	h2s_conn_close(h2s_container_of(t, struct h2s_conn, linger_timer),
		       "session finished (after lingering)");
}

void h2s_conn_init(struct h2s_conn *c, struct h2s_plane *p, int fd)
{
	memset(c, 0, sizeof(*c));
	c->linger_timer.fire = linger_over;
	c->ack_timer.fire = ack_due;
	c->p = p;
	c->w.fd = fd;
	c->w.on_io = conn_io;
	c->flush.run = conn_flush;
	c->reap.free = conn_free;
}

int h2s_conn_start(struct h2s_conn *c)
{
	if (c->w.fd < 0)
		return 0;
	return h2s_watch_add(&c->p->loop, &c->w, EPOLLIN | (c->connecting ? EPOLLOUT : 0));
}

/* Submit the held ACK; nghttp2 queues it ahead of other frames. It refuses one (-1) when
 * more than max_outbound_ack ACKs wait for a peer that does not read; the connection is then
 * closed, as nghttp2 closes it when it acknowledges on its own.
 */
static int ack_release(struct h2s_conn *c)
{
	if (!c->ack_held)
		return 0;
	c->ack_held = false;
	h2s_timer_cancel(&c->p->loop, &c->ack_timer);
	return nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_ACK, c->ack_opaque) ? -1 : 0;
}

int h2s_conn_ping(struct h2s_conn *c, const uint8_t opaque[8])
{
	if (ack_release(c) < 0)
		return -1;
	memcpy(c->ack_opaque, opaque, sizeof(c->ack_opaque));
	c->ack_held = true;
	h2s_timer_arm(&c->p->loop, &c->ack_timer, H2S_PING_ACK_HOLD_MS);
	return 0;
}

void h2s_conn_mark(struct h2s_conn *c)
{
	if (!c->dead)
		h2s_flush_queue(&c->p->loop, &c->flush);
}

void h2s_conn_close(struct h2s_conn *c, const char *why)
{
	if (c->dead)
		return;
	c->dead = true;
	h2s_timer_cancel(&c->p->loop, &c->linger_timer);
	h2s_timer_cancel(&c->p->loop, &c->ack_timer);
	if (c->w.fd >= 0) {
		h2s_watch_del(&c->p->loop, &c->w);
		close(c->w.fd);
		c->w.fd = -1;
	}
	h2s_flush_cancel(&c->p->loop, &c->flush);
	c->teardown(c, why);
	h2s_loop_defer_free(&c->p->loop, &c->reap);
}

static void conn_free(struct h2s_reap *r)
{
	struct h2s_conn *c = h2s_container_of(r, struct h2s_conn, reap);

	nghttp2_session_del(c->ng);
	h2s_ob_free(&c->out);
	c->destroy(c);
}

/* send() what b holds; 0 (b is then empty, or the socket is full), or a negative errno. */
static int send_buf(struct h2s_conn *c, struct h2s_outbuf *b)
{
	while (h2s_ob_pending(b)) {
		ssize_t w = send(c->w.fd, h2s_ob_data(b), h2s_ob_pending(b), MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		h2s_ob_consume(b, (size_t)w);
		c->sent += (uint64_t)w;
		if (h2s_ob_pending(b))
			return 0; /* short write: the socket buffer is full */
	}
	return 0;
}

uint8_t *h2s_conn_data_frame(struct h2s_conn *c, const uint8_t *framehd, size_t length)
{
	uint8_t *at;

	if (!c->batch || !(at = h2s_ob_extend(c->batch, 9 + length)))
		return NULL;
	memcpy(at, framehd, 9);
	return at + 9;
}

int h2s_conn_data_sent(const struct h2s_conn *c)
{
	return h2s_ob_pending(c->batch) >= OUT_BATCH ? NGHTTP2_ERR_PAUSE : 0;
}

/* Serialize up to one batch of frames into b; 0, or a negative errno. */
static int serialize(struct h2s_conn *c, struct h2s_outbuf *b)
{
	int rc = 0;

	c->batch = b;
	while (h2s_ob_pending(b) < OUT_BATCH) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->ng, &data);

		if (n < 0) {
			rc = n == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EPROTO;
			break;
		}
		if (n == 0)
			break; /* nothing more, or paused by a full batch (h2s_conn_data_sent) */
		if (h2s_ob_append(b, data, (size_t)n) < 0) {
			rc = -ENOMEM;
			break;
		}
	}
	c->batch = NULL;
	return rc;
}

/* Serialize pending frames and write them; 0, or a negative errno when the connection is
 * unusable. Stops (and waits for EPOLLOUT) when the socket is full, which is what
 * back-pressures the data providers and, through flow control, the peer on the other leg.
 * Batches are built in the loop's one wbuf; only what the socket did not take is copied to
 * the connection's own buffer, which is freed again once sent: an idle connection holds none.
 */
static int write_out(struct h2s_conn *c)
{
	struct h2s_outbuf *b = &c->p->wbuf;
	int rc;

	if (c->w.fd < 0)
		return serialize(c, &c->out); /* one batch at most, for whoever reads it */
	if (h2s_ob_pending(&c->out)) {
		rc = send_buf(c, &c->out);
		if (rc < 0 || h2s_ob_pending(&c->out))
			return rc;
	}
	h2s_ob_free(&c->out);
	for (;;) {
		b->off = b->len = 0;
		rc = serialize(c, b);
		if (rc < 0)
			return rc;
		if (!h2s_ob_pending(b))
			return 0;
		rc = send_buf(c, b);
		if (rc < 0)
			return rc;
		if (h2s_ob_pending(b)) {
			rc = h2s_ob_append(&c->out, h2s_ob_data(b), h2s_ob_pending(b));
			b->off = b->len = 0;
			return rc;
		}
	}
}

static void conn_flush(struct h2s_flush *f)
{
	struct h2s_conn *c = h2s_container_of(f, struct h2s_conn, flush);
	bool pending;
	int rc;

	if (c->dead || c->connecting)
		return;
	/* Frames go out now: a held ACK goes with them, ahead. */
	if (c->ack_held && (nghttp2_session_want_write(c->ng) || h2s_ob_pending(&c->out)) &&
	    ack_release(c) < 0) {
		h2s_conn_close(c, ACKS_FLOODED);
		return;
	}
	rc = write_out(c);
	if (rc < 0) {
		h2s_conn_close(c, rc == -EPROTO ? "HTTP/2 session error" : strerror(-rc));
		return;
	}
	pending = h2s_ob_pending(&c->out) > 0;
	if (!pending && !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng)) {
		if (!c->linger || c->w.fd < 0) {
			h2s_conn_close(c, "session finished");
			return;
		}
		if (!h2s_timer_armed(&c->linger_timer)) {
			shutdown(c->w.fd, SHUT_WR);
			h2s_timer_arm(&c->p->loop, &c->linger_timer, H2S_CONN_LINGER_MS);
		}
	}
	if (c->after_flush)
		c->after_flush(c, pending);
	if (c->w.fd >= 0)
		h2s_watch_set(&c->p->loop, &c->w, EPOLLIN | (pending ? EPOLLOUT : 0));
}

static int read_in(struct h2s_conn *c)
{
	uint8_t *buf = c->p->rbuf;

	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(c->w.fd, buf, sizeof(c->p->rbuf), 0);
		ssize_t used;

		if (n == 0)
			return -ECONNRESET; /* peer closed: an HTTP/2 peer that is done just closes */
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->last_rx_ms = c->p->loop.now_ms;
		if (c->on_read)
			c->on_read(c, buf, (size_t)n);
		used = c->recv ? c->recv(c, buf, (size_t)n)
			       : nghttp2_session_mem_recv(c->ng, buf, (size_t)n);
		if (used < 0)
			return used == NGHTTP2_ERR_BAD_CLIENT_MAGIC ? -EBADMSG : -EPROTO;
		if (c->dead)
			return 0;
		if ((size_t)n < sizeof(c->p->rbuf))
			return 0;
	}
	return 0;
}

static void conn_io(struct h2s_watch *w, uint32_t events)
{
	struct h2s_conn *c = h2s_container_of(w, struct h2s_conn, w);
	int rc;

	if (c->dead)
		return;
	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		c->connecting = false;
		c->on_connected(c, err);
		if (!c->dead && !err)
			h2s_conn_mark(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		rc = read_in(c);
		if (rc < 0) {
			h2s_conn_close(c, rc == -ECONNRESET ? "closed by peer"
					  : rc == -EBADMSG  ? "not HTTP/2 (bad connection preface)"
					  : rc == -EPROTO   ? "HTTP/2 protocol error"
							    : strerror(-rc));
			return;
		}
	}
	h2s_conn_mark(c);
}
