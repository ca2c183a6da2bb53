/* splice.c — see splice.h.
 *
 *   accepted --first bytes--> h2c preface?  yes: h2s_client_start (per-RPC balancing)
 *                                           no:  pick a backend, connect, relay bytes
 */
#include "splice.h"

#include "addr.h"
#include "plane.h"
#include "h2_server.h"
#include "log.h"
#include "maps.h"
#include "registry.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SPLICE_BUF 16384

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* One direction of the relay: bytes read from one side, not yet written to the other. */
struct dir {
	uint8_t buf[SPLICE_BUF];
	size_t off, len;
	bool eof;  /* the reading side sent FIN */
	bool shut; /* ...and it was passed on (shutdown SHUT_WR) */
	bool hup;  /* the reading side hung up: no longer watched (relay()) */
};

struct h2s_splice {
	struct h2s_list link; /* in p->splices */
	struct h2s_plane *p;
	struct h2s_watch cw, bw; /* client, backend (bw.fd -1 until there is one) */
	struct h2s_timer timer;  /* first bytes, then the backend's connect */
	struct h2s_reap reap;
	struct h2s_addr peer;
	struct h2s_origin origin;
	struct h2s_backend_rt *be; /* holds one unit of be->inflight while set */
	const struct h2s_backend_rt *avoid;
	struct h2s_pair_stats *pair;
	uint32_t attempts;
	bool connecting, relaying, dead;
	struct dir up, down; /* client -> backend, backend -> client */
};

static void splice_free(struct h2s_reap *r)
{
	free(h2s_container_of(r, struct h2s_splice, reap));
}

static void drop_backend(struct h2s_splice *sp)
{
	struct h2s_plane *p = sp->p;

	if (sp->bw.fd >= 0) {
		h2s_watch_del(&p->loop, &sp->bw);
		close(sp->bw.fd);
		sp->bw.fd = -1;
	}
	if (sp->be) {
		sp->be->inflight--;
		h2s_registry_release_backend(&p->reg, sp->be);
		sp->be = NULL;
	}
}

static void splice_close(struct h2s_splice *sp, const char *why)
{
	struct h2s_plane *p = sp->p;

	if (sp->dead)
		return;
	sp->dead = true;
	log_debug("spliced connection from %s: closed (%s)", h2s_addr_format(&sp->peer,
		  (char[H2S_ADDR_STRLEN]){ 0 }, H2S_ADDR_STRLEN), why);
	h2s_timer_cancel(&p->loop, &sp->timer);
	drop_backend(sp);
	if (sp->cw.fd >= 0) {
		h2s_watch_del(&p->loop, &sp->cw);
		close(sp->cw.fd);
		sp->cw.fd = -1;
	}
	h2s_list_del(&sp->link);
	p->nsplices--;
	if (sp->relaying)
		p->stats.splices_live--;
	h2s_loop_defer_free(&p->loop, &sp->reap);
	h2s_plane_conn_gone(p);
}

/* ---- relay ---- */

/* Read what `from` has into dir, if dir is empty; -1 on a fatal error. */
static int fill(int from, struct dir *dir)
{
	ssize_t n;

	if (dir->len || dir->eof)
		return 0;
	n = recv(from, dir->buf, sizeof(dir->buf), 0);
	if (n == 0)
		dir->eof = true;
	else if (n > 0)
		dir->off = 0, dir->len = (size_t)n;
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return -1;
	return 0;
}

/* Write what dir holds to `to`, and pass a FIN on once it is all out; -1 on a fatal error. */
static int drain(int to, struct dir *dir)
{
	while (dir->len) {
		ssize_t n = send(to, dir->buf + dir->off, dir->len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return -1;
		}
		dir->off += (size_t)n;
		dir->len -= (size_t)n;
	}
	if (dir->eof && !dir->len && !dir->shut) {
		shutdown(to, SHUT_WR);
		dir->shut = true;
	}
	return 0;
}

static uint32_t interest(const struct dir *in, const struct dir *out)
{
	return (!in->len && !in->eof ? EPOLLIN : 0) | (out->len ? EPOLLOUT : 0);
}

/* One side is readable and/or writable (events): read from it and pass that on to the other
 * side at once; write to it what waited for room. Only the syscalls the events call for.
 */
static void relay(struct h2s_splice *sp, bool client_side, uint32_t events)
{
	struct h2s_loop *l = &sp->p->loop;
	int self = client_side ? sp->cw.fd : sp->bw.fd, other = client_side ? sp->bw.fd : sp->cw.fd;
	struct dir *in = client_side ? &sp->up : &sp->down, *out = client_side ? &sp->down : &sp->up;

	if (((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) &&
	     (fill(self, in) < 0 || drain(other, in) < 0)) ||
	    ((events & EPOLLOUT) && drain(self, out) < 0)) {
		splice_close(sp, strerror(errno));
		return;
	}
	/* epoll reports ERR and HUP whatever the interest, so a side that has them and that
	 * fill() has nothing more to read from (its FIN seen) would come back every turn. An
	 * error ends the splice. A hang-up does when bytes still wait to go to that side;
	 * otherwise the side is no longer watched, and what it sent still goes out as the other
	 * side takes it.
	 */
	if (events & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(self, SOL_SOCKET, SO_ERROR, &err, &len);
		splice_close(sp, err ? strerror(err) : "socket error");
		return;
	}
	if ((events & EPOLLHUP) && in->eof && !in->hup) {
		if (out->len) {
			splice_close(sp, "hung up with bytes still to deliver to it");
			return;
		}
		in->hup = true;
		h2s_watch_del(l, client_side ? &sp->cw : &sp->bw);
	}
	if (sp->up.shut && sp->down.shut) {
		splice_close(sp, "both sides done");
		return;
	}
	if (!sp->up.hup)
		h2s_watch_set(l, &sp->cw, interest(&sp->up, &sp->down));
	if (!sp->down.hup)
		h2s_watch_set(l, &sp->bw, interest(&sp->down, &sp->up));
}

static void client_io(struct h2s_watch *w, uint32_t events);

/* This backend did not take the connection: count it against it, try another (next turn). */
static void connect_failed(struct h2s_splice *sp, int err)
{
	struct h2s_plane *p = sp->p;

	log_warn("backend %s: connect for a spliced connection failed: %s", sp->be->name,
		 strerror(err));
	h2s_backend_connect_failed(&p->reg, sp->be);
	sp->avoid = sp->be;
	sp->connecting = false;
	drop_backend(sp);
	if (sp->attempts >= p->set.max_attempts)
		splice_close(sp, "no backend reachable");
	else
		h2s_timer_arm(&p->loop, &sp->timer, 0);
}

static void backend_io(struct h2s_watch *w, uint32_t events)
{
	struct h2s_splice *sp = h2s_container_of(w, struct h2s_splice, bw);
	struct h2s_plane *p = sp->p;
	int err = 0;
	socklen_t len = sizeof(err);

	if (sp->dead)
		return;
	if (!sp->connecting) {
		relay(sp, false, events);
		return;
	}
	if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return;
	if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		connect_failed(sp, err);
		return;
	}
	sp->connecting = false;
	sp->relaying = true;
	h2s_timer_cancel(&p->loop, &sp->timer);
	sp->pair = h2s_stats_pair(&p->stats, &sp->origin.vip, &sp->be->addr);
	if (sp->pair)
		sp->pair->spliced++;
	p->stats.splices_live++;
	sp->cw.on_io = client_io;
	relay(sp, true, EPOLLIN); /* the client's first bytes wait in its socket */
}

static void client_io(struct h2s_watch *w, uint32_t events)
{
	struct h2s_splice *sp = h2s_container_of(w, struct h2s_splice, cw);

	if (!sp->dead)
		relay(sp, true, events);
}

/* Open a connection to a backend of the service (one not failed already for this one). */
static void connect_backend(struct h2s_splice *sp)
{
	struct h2s_plane *p = sp->p;
	struct h2s_service_rt *svc;
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	sp->attempts++;
	if (h2s_registry_refresh(&p->reg) < 0)
		log_warn("cannot reload services from the maps; using the previous set");
	svc = h2s_registry_service(&p->reg, &sp->origin.vip);
	sp->be = svc ? h2s_registry_pick(&p->reg, svc, sp->avoid, NULL, h2s_now_ms()) : NULL;
	if (!sp->be) {
		splice_close(sp, svc ? "the service has no backends" : "not a service any more");
		return;
	}
	sp->be->inflight++;
	sp->be->rpcs++;
	sl = h2s_addr_to_sockaddr(&sp->be->addr, &ss);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || h2s_maps_mark_daemon_socket(p->maps, fd, true) < 0) {
		if (fd >= 0)
			close(fd);
		splice_close(sp, "cannot open a socket to the backend");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sp->bw.fd = fd;
	sp->bw.on_io = backend_io;
	sp->connecting = true;
	if ((connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) ||
	    h2s_watch_add(&p->loop, &sp->bw, EPOLLOUT) < 0) {
		connect_failed(sp, errno);
		return;
	}
	h2s_timer_arm(&p->loop, &sp->timer, p->set.connect_timeout_ms);
}

/* ---- the first bytes decide ---- */

static void timer_fired(struct h2s_timer *t)
{
	struct h2s_splice *sp = h2s_container_of(t, struct h2s_splice, timer);

	if (sp->connecting)
		connect_failed(sp, ETIMEDOUT); /* arms the next try, or closes */
	else if (sp->attempts == 0) {
		/* The first half of the handshake timeout (h2_server.c hello_expired: the rest). */
		sp->p->stats.client_handshake_timeouts++;
		log_limited(H2S_LOG_NOTICE,
			    "connection from %s: nothing sent within %u ms (handshake_timeout_ms): "
			    "closed",
			    h2s_addr_format(&sp->peer, (char[H2S_ADDR_STRLEN]){ 0 },
					    H2S_ADDR_STRLEN),
			    sp->p->set.handshake_timeout_ms);
		splice_close(sp, "nothing sent in time: no HTTP/2 preface, nor any other protocol");
	}
	else
		connect_backend(sp);
}

/* Decided (not h2c), no backend connected yet (connect_backend() and its retries): the
 * client is not read. epoll still reports ERR and HUP with no interest: the client is gone.
 */
static void client_waiting(struct h2s_watch *w, uint32_t events)
{
	struct h2s_splice *sp = h2s_container_of(w, struct h2s_splice, cw);

	if (!sp->dead && (events & (EPOLLERR | EPOLLHUP)))
		splice_close(sp, "the client went away before a backend was connected");
}

static void first_bytes(struct h2s_watch *w, uint32_t events)
{
	struct h2s_splice *sp = h2s_container_of(w, struct h2s_splice, cw);
	struct h2s_plane *p = sp->p;
	char head[sizeof(h2_preface) - 1];
	ssize_t n = recv(w->fd, head, sizeof(head), MSG_PEEK);
	int fd = w->fd;

	(void)events;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		splice_close(sp, n == 0 ? "closed before sending anything" : strerror(errno));
		return;
	}
	if (!memcmp(head, h2_preface, (size_t)n)) {
		/* h2c (a preface arriving in pieces counts at its first piece: nothing else
		 * starts with "PRI * HTTP/2.0"). The client is counted before this goes, so that
		 * a draining daemon does not see nobody left in between.
		 */
		h2s_watch_del(&p->loop, &sp->cw);
		sp->cw.fd = -1;
		h2s_client_start(p, fd, &sp->peer, &sp->origin);
		splice_close(sp, "h2c: per-RPC balancing");
		return;
	}
	/* Anything else is relayed whole. Until a backend is connected, the client's bytes wait
	 * in its socket (they were only peeked).
	 */
	h2s_watch_set(&p->loop, &sp->cw, 0);
	sp->cw.on_io = client_waiting;
	h2s_timer_cancel(&p->loop, &sp->timer);
	connect_backend(sp);
}

void h2s_splice_accept(struct h2s_plane *p, int fd, const struct h2s_addr *peer,
		       const struct h2s_origin *origin)
{
	struct h2s_splice *sp = calloc(1, sizeof(*sp));

	if (!sp) {
		close(fd);
		return;
	}
	sp->p = p;
	sp->peer = *peer;
	sp->origin = *origin;
	sp->cw.fd = fd;
	sp->cw.on_io = first_bytes;
	sp->bw.fd = -1;
	sp->timer.fire = timer_fired;
	sp->reap.free = splice_free;
	if (h2s_watch_add(&p->loop, &sp->cw, EPOLLIN) < 0) {
		close(fd);
		free(sp);
		return;
	}
	h2s_list_add_tail(&p->splices, &sp->link);
	p->nsplices++;
	/* The HTTP/2 client preface comes first, unprompted; a client that sends nothing is
	 * given what an h2c client gets for its preface and SETTINGS.
	 */
	h2s_timer_arm(&p->loop, &sp->timer, p->set.handshake_timeout_ms);
}

void h2s_splice_close_all(struct h2s_plane *p)
{
	struct h2s_list *pos, *tmp;

	h2s_list_for_each_safe(pos, tmp, &p->splices)
		splice_close(h2s_container_of(pos, struct h2s_splice, link), "daemon stopping");
}
