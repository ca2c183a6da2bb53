/* lifecycle.c — see lifecycle.h. Every step that frees what an epoll event of the current batch
 * may still point at (the control socket, the metrics listener, listeners) runs from a flush,
 * after the batch.
 */
#include "lifecycle.h"

#include "control.h"
#include "daemon.h"
#include "discovery.h"
#include "h2_server.h"
#include "loader.h"
#include "log.h"
#include "maps.h"
#include "metrics.h"
#include "config.h"
#include "takeover.h"
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- leaving the node ---- */

/* From here on another daemon may own the node: this one no longer resolves, checks health or
 * writes the maps, and lets go of what the next one binds (control socket, metrics, pin dir).
 */
static void let_go(struct h2s_daemon *d)
{
	h2s_control_stop(d->control);
	d->control = NULL;
	h2s_metrics_stop(d->metrics);
	d->metrics = NULL;
	h2s_loader_unlock(d->loader);
}

static void leave_node(struct h2s_daemon *d)
{
	if (d->left)
		return;
	d->left = true;
	h2s_discovery_fini(&d->src);
	d->p.reg.readonly = true;
	let_go(d);
}

/* GOAWAY to every client; exit once they are gone (or at the drain timeout). */
static void wind_down(struct h2s_daemon *d, const char *why)
{
	struct h2s_list *pos, *tmp;

	d->p.draining = true;
	log_notice("%s%.0d%s%s: GOAWAY sent to %u client connections, waiting up to %u ms for "
		   "their streams",
		   d->main ? "loop " : "", d->loop_index, d->main ? ": " : "", why, d->p.nclients,
		   d->p.set.drain_timeout_ms);
	h2s_list_for_each_safe(pos, tmp, &d->p.clients)
		h2s_client_shutdown(h2s_container_of(pos, struct h2s_client, link));
	h2s_timer_arm(&d->p.loop, &d->drain_timer, d->p.set.drain_timeout_ms);
	h2s_daemon_maybe_done(d);
}

static void drain_expired(struct h2s_timer *t)
{
	struct h2s_daemon *d = h2s_container_of(t, struct h2s_daemon, drain_timer);

	log_notice("drain timeout: closing %u client connections with streams still open and %u "
		   "relayed ones",
		   d->p.nclients, d->p.nsplices);
	h2s_loop_stop(&d->p.loop);
}

/* Capture went off H2S_LINGER_MS ago: connects redirected before that are in the backlogs by
 * now. Serve them (they get GOAWAY at once), then close the listeners.
 */
static void linger_over(struct h2s_timer *t)
{
	struct h2s_daemon *d = h2s_container_of(t, struct h2s_daemon, linger_timer);
	int fd;

	for (int i = 0; i < d->nlis; i++)
		while ((fd = accept4(d->lis[i].w.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			h2s_client_accept(&d->p, fd);
	h2s_daemon_close_listeners(d);
	h2s_daemon_maybe_done(d);
}

/* ---- the other loops: what the main loop tells them (workers.h) ---- */

/* The main loop drains: so does this one; its listeners linger for connects already on their
 * way, as the main loop's do.
 */
static void worker_drain(struct h2s_daemon *w)
{
	if (w->p.draining)
		return;
	h2s_timer_arm(&w->p.loop, &w->linger_timer, H2S_LINGER_MS);
	wind_down(w, "draining");
}

/* The new daemon has this loop's listening sockets too (it serves, or the main loop drains
 * while handing over): close our copies and drain.
 */
static void worker_leave(struct h2s_daemon *w)
{
	h2s_daemon_close_listeners(w);
	if (!w->p.draining)
		wind_down(w, "handed over");
	h2s_daemon_maybe_done(w);
}

static void drain(struct h2s_daemon *d)
{
	struct h2s_ctl *ctl = d->p.maps->ctl_mem;

	if (d->p.draining)
		return;
	if (d->handed_sockets) {
		/* The sockets are the new daemon's too; capture is its business now. */
		h2s_daemon_close_listeners(d);
	} else {
		/* Not a restart: connects are left alone, not sent to backends, from now on. */
		__u32 off = H2S_CTL_F_CAPTURE | H2S_CTL_F_FASTPATH |
			    (d->keep_state ? 0 : H2S_CTL_F_L4_FALLBACK);

		__atomic_and_fetch(&ctl->flags, ~off, __ATOMIC_RELEASE);
		if (ctl->daemon_pid == (__u32)getpid() && d->keep_state) {
			ctl->daemon_pid = 0;
			memset(ctl->control, 0, sizeof(ctl->control));
		}
		h2s_timer_arm(&d->p.loop, &d->linger_timer, H2S_LINGER_MS);
	}
	if (d->keep_state)
		leave_node(d); /* a restart: the next daemon may start while we drain */
	wind_down(d, "draining");
	h2s_workers_post(d, d->handed_sockets ? worker_leave : worker_drain);
}

static void stop_now(struct h2s_flush *f)
{
	drain(h2s_container_of(f, struct h2s_daemon, stop_flush));
}

static void on_signal(struct h2s_watch *w, uint32_t events)
{
	struct h2s_daemon *d = h2s_container_of(w, struct h2s_daemon, sig);
	struct signalfd_siginfo si;

	(void)events;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		if (!d->p.draining && !d->stop_flush.queued) {
			h2s_flush_queue(&d->p.loop, &d->stop_flush);
		} else if (si.ssi_signo == SIGINT) {
			/* A second Ctrl-C: someone at a terminal wants out now. */
			log_notice("interrupted again: exiting without waiting for streams");
			h2s_loop_stop(&d->p.loop);
		} else {
			/* Supervisors send SIGTERM again (a pod deleted after a takeover): the
			 * drain timeout, not the signal, ends the wait.
			 */
			log_info("already draining");
		}
	}
}

/* ---- handing over ---- */

static void end_handover(struct h2s_daemon *d)
{
	h2s_timer_cancel(&d->p.loop, &d->handover_timer);
	if (d->handover.fd < 0)
		return;
	h2s_watch_del(&d->p.loop, &d->handover);
	close(d->handover.fd);
	d->handover.fd = -1;
}

/* The new daemon has our sockets, the control socket and the metrics port, but has not said
 * it serves: it is stuck (or very slow). Serve again rather than leave the node half-owned.
 */
static void handover_expired(struct h2s_timer *t)
{
	struct h2s_daemon *d = h2s_container_of(t, struct h2s_daemon, handover_timer);

	log_warn("takeover: the new daemon did not say it serves within %u ms (takeover_timeout_ms)",
		 d->p.set.takeover_timeout_ms);
	h2s_watch_set(&d->p.loop, &d->handover, 0);
	h2s_flush_queue(&d->p.loop, &d->takeback_flush);
}

/* Phase 1, after the turn that answered: let the new daemon have what it binds and locks. */
static void let_go_now(struct h2s_flush *f)
{
	let_go(h2s_container_of(f, struct h2s_daemon, handover_flush));
}

/* Phase 2: the new daemon serves. */
static void leave_now(struct h2s_flush *f)
{
	struct h2s_daemon *d = h2s_container_of(f, struct h2s_daemon, leave_flush);

	end_handover(d);
	h2s_daemon_close_listeners(d); /* our copies: the sockets live on in the new daemon */
	leave_node(d);
	if (!d->p.draining)
		wind_down(d, "handed over");
	h2s_workers_post(d, worker_leave);
}

/* The new daemon went away without saying "ready": it failed to start. Take the node back. */
static void take_back(struct h2s_flush *f)
{
	struct h2s_daemon *d = h2s_container_of(f, struct h2s_daemon, takeback_flush);
	const struct h2s_options *o = d->opts;
	char err[256];

	end_handover(d);
	d->handed_sockets = false;
	if (d->p.draining || d->left)
		return; /* on our way out anyway */
	log_warn("takeover failed (the new daemon left without saying it serves): serving again");
	if (h2s_loader_lock(d->loader, 0, err, sizeof(err)) < 0)
		log_warn("%s", err);
	if (!d->control && !(d->control = h2s_control_start(d, o->control, err, sizeof(err))))
		log_warn("%s", err);
	if (o->metrics_on && !d->metrics &&
	    !(d->metrics = h2s_metrics_start(d, &o->metrics, err, sizeof(err))))
		log_warn("%s", err);
	h2s_daemon_publish(d);
}

static void on_handover_io(struct h2s_watch *w, uint32_t events)
{
	struct h2s_daemon *d = h2s_container_of(w, struct h2s_daemon, handover);
	char buf[16];
	ssize_t n = recv(w->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	(void)events;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		buf[n] = '\0';
		if (!strcmp(buf, H2S_TAKEOVER_READY "\n")) {
			log_notice("the new daemon serves: leaving the node to it");
			h2s_flush_queue(&d->p.loop, &d->leave_flush);
			h2s_watch_set(&d->p.loop, w, 0);
			return;
		}
	}
	h2s_watch_set(&d->p.loop, w, 0);
	h2s_flush_queue(&d->p.loop, &d->takeback_flush);
}

/* Same directory, whatever the spelling. */
static bool same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

struct sockets {
	int fds[H2S_HANDOVER_MAX];
	int n, left_out;
};

static void add_sockets(struct h2s_daemon *l, void *arg)
{
	struct sockets *s = arg;

	for (int i = 0; i < l->nlis; i++) {
		if (s->n < H2S_HANDOVER_MAX)
			s->fds[s->n++] = l->lis[i].w.fd;
		else
			s->left_out++;
	}
}

int h2s_daemon_hand_over(struct h2s_daemon *d, int fd, const char *pin_dir)
{
	struct sockets socks = { .n = 0 };
	int keep, rc;

	if (d->p.draining || d->stop_flush.queued)
		return -ESHUTDOWN;
	if (d->handed_sockets || d->left)
		return -EALREADY;
	if (!same_dir(pin_dir, d->loader->pin_dir))
		return -EXDEV;
	keep = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* the control socket closes its own copy */
	if (keep < 0)
		return -errno;
	/* Every loop's: the new daemon's loops take them over (the backlogs go with them). */
	add_sockets(d, &socks);
	h2s_workers_each(d, add_sockets, &socks);
	if (socks.left_out)
		log_warn("takeover: %d listening sockets beyond %d cannot be handed over: the clients "
			 "in their backlogs will be reset",
			 socks.left_out, H2S_HANDOVER_MAX);
	rc = h2s_takeover_answer(fd, socks.fds, socks.n);
	if (rc < 0) {
		close(keep);
		return rc;
	}
	d->handed_sockets = true;
	d->handover.fd = keep;
	d->handover.on_io = on_handover_io;
	log_notice("handing over to a new daemon: %d listening sockets sent, serving until it "
		   "is ready",
		   socks.n);
	if (h2s_watch_add(&d->p.loop, &d->handover, EPOLLIN | EPOLLRDHUP) < 0) {
		/* Cannot hear "ready": assume it, rather than serve beside it for ever. */
		close(keep);
		d->handover.fd = -1;
		h2s_flush_queue(&d->p.loop, &d->leave_flush);
	}
	h2s_timer_arm(&d->p.loop, &d->handover_timer, d->p.set.takeover_timeout_ms);
	h2s_flush_queue(&d->p.loop, &d->handover_flush);
	return 0;
}

/* ---- set up ---- */

void h2s_lifecycle_init_worker(struct h2s_daemon *w)
{
	w->handover.fd = -1;
	w->handover_timer.fire = handover_expired;
	w->drain_timer.fire = drain_expired;
	w->linger_timer.fire = linger_over;
}

int h2s_lifecycle_init(struct h2s_daemon *d)
{
	h2s_lifecycle_init_worker(d);
	d->stop_flush.run = stop_now;
	d->handover_flush.run = let_go_now;
	d->leave_flush.run = leave_now;
	d->takeback_flush.run = take_back;
	d->sig.on_io = on_signal;
	return h2s_watch_add(&d->p.loop, &d->sig, EPOLLIN);
}

void h2s_lifecycle_fini(struct h2s_daemon *d)
{
	end_handover(d);
}
