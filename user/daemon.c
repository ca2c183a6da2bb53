/* daemon.c — see daemon.h. */
#include "daemon.h"

#include "addr.h"
#include "discovery.h"
#include "dns.h"
#include "h2_server.h"
#include "h2_upstream.h"
#include "hash.h"
#include "config.h"
#include "control.h"
#include "lifecycle.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "pods.h"
#include "splice.h"
#include "maps.h"
#include "takeover.h"
#include "workers.h"

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How often the daemon looks for map changes when no RPC asks (to close dropped backends). */
#define REFRESH_MS 200
/* How long to wait for a listener address the previous daemon is letting go of. */
#define BIND_WAIT_MS 3000

/* Who this node is among the nodes sharing the backends: its index when configured, else a
 * hash of the host name (the same on every restart).
 */
static void subset_node(struct h2s_daemon *d)
{
	char host[256] = "";

	d->reg.node.has_index = d->set.node_index != H2S_NODE_INDEX_NONE;
	d->reg.node.index = d->set.node_index;
	if (gethostname(host, sizeof(host) - 1) < 0)
		log_warn("gethostname: %s: subsets are chosen as for a host named \"\"",
			 strerror(errno));
	d->reg.node.id = h2s_hash64(host, strlen(host), 0);
}

void h2s_settings_default(struct h2s_settings *s)
{
	*s = (struct h2s_settings){
		/* Per client connection and direction at most max_streams x stream_window is
		 * buffered (64 MiB): per-stream flow control is what bounds it.
		 */
		.max_streams = 256,
		.stream_window = 256u << 10,
		.conn_window = 16u << 20,
		.max_header_list = 65536,
		.connect_timeout_ms = 2000,
		.handshake_timeout_ms = 10000,
		.upstream_idle_ms = 60000,
		.drain_timeout_ms = 30000,
		.max_attempts = 5,
		.retry_percent = 10,
		.retry_min = 10,
		.replay_body_max = 65536,
		.resolver_grace_ms = 300000,
		.dns_ttl_cap_ms = 30000,
		.l4_fallback_ttl_ms = 600000,
		.node_index = H2S_NODE_INDEX_NONE,
		.ewma_decay_ms = 1000,
		.busy_poll_us = 0, /* off: it trades CPU time for latency (README) */
		.busy_poll_max_streams = 1,
		.busy_poll_share = 100,
		.loops = 1, /* README: Event loops */
	};
	h2s_health_cfg_default(&s->health);
	h2s_outlier_cfg_default(&s->outlier);
}

void h2s_daemon_refresh_soon(struct h2s_daemon *d)
{
	h2s_flush_queue(&d->loop, &d->refresh_flush);
}

bool h2s_daemon_replay_allowed(struct h2s_daemon *d)
{
	uint32_t budget = d->stats.streams_live * d->set.retry_percent / 100;

	if (budget < d->set.retry_min)
		budget = d->set.retry_min;
	if (d->stats.retries_live >= budget) {
		d->stats.retries_denied++;
		return false;
	}
	d->stats.retries++;
	return true;
}

static void refresh_now(struct h2s_flush *f)
{
	struct h2s_daemon *d = h2s_container_of(f, struct h2s_daemon, refresh_flush);

	if (h2s_registry_refresh(&d->reg) < 0)
		log_warn("cannot reload services from the maps");
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns()'s clock */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The L4 fallback may use the slots for fallback_ttl_ns from now (state_tick keeps this fresh). */
static void heartbeat(struct h2s_daemon *d)
{
	struct h2s_ctl *ctl = d->maps->ctl_mem;

	ctl->fallback_ttl_ns = (uint64_t)d->set.l4_fallback_ttl_ms * 1000000ull;
	ctl->heartbeat_ns = monotonic_ns();
}

static void publish_one(struct h2s_backend_rt *be, void *arg)
{
	h2s_backend_publish_state(arg, be);
}

static void clear_other_loops(struct h2s_backend_rt *be, void *arg)
{
	(void)arg;
	be->other_loops.inflight = 0;
	be->other_loops.rpcs = 0;
}

static void add_to_main(struct h2s_backend_rt *be, void *arg)
{
	struct h2s_backend_rt *m = h2s_registry_backend(arg, &be->addr);

	if (m) {
		m->other_loops.inflight += be->inflight;
		m->other_loops.rpcs += be->rpcs;
	}
}

/* Run on a worker's thread while the main loop waits: its counts into the main registry. */
static void gather_loop(struct h2s_daemon *w, void *main_reg)
{
	h2s_registry_each_backend(&w->reg, add_to_main, main_reg);
}

/* Counters in h2s_be_state (in flight, RPCs: every loop's) for the CLI, once a second. */
static void state_tick(struct h2s_timer *t)
{
	struct h2s_daemon *d = h2s_container_of(t, struct h2s_daemon, state_timer);

	if (d->workers) {
		h2s_registry_each_backend(&d->reg, clear_other_loops, NULL);
		h2s_workers_each(d, gather_loop, &d->reg);
	}
	h2s_registry_each_backend(&d->reg, publish_one, &d->reg);
	h2s_registry_publish_lb(&d->reg); /* ejections end by time passing */
	if (!d->left)
		heartbeat(d);
	h2s_timer_arm(&d->loop, t, 1000);
}

static void on_accept(struct h2s_watch *w, uint32_t events)
{
	struct h2s_listener *l = h2s_container_of(w, struct h2s_listener, w);

	(void)events;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("accept: %s", strerror(errno));
			return;
		}
		h2s_client_accept(l->d, fd);
	}
}

/* The address a listening socket is bound to; port 0 when it is not one. */
static struct h2s_addr bound_addr(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct h2s_addr a = { 0 };
	int listening = 0;
	socklen_t ol = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) < 0 || !listening ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    h2s_addr_from_sockaddr((struct sockaddr *)&ss, &a) < 0)
		memset(&a, 0, sizeof(a));
	return a;
}

/* The nth (from 0) handed-over socket listening at a, duplicated for us; -1 when there is
 * none (or it cannot be duplicated).
 */
static int handed_socket(const struct h2s_addr *a, const struct h2s_handover *from, int nth)
{
	for (int i = 0; from && i < from->n; i++) {
		struct h2s_addr b = bound_addr(from->fds[i]);
		int fd;

		if (!b.port || !h2s_addr_equal(&b, a) || nth-- > 0)
			continue;
		fd = fcntl(from->fds[i], F_DUPFD_CLOEXEC, 0);
		if (fd >= 0 && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
			close(fd);
			fd = -1;
		}
		return fd;
	}
	return -1;
}

/* A new socket listening at a. With more than one loop, every loop has one at each address,
 * in one SO_REUSEPORT group (the kernel spreads connections over them): a worker's joins
 * (join), the main loop's opens it (share). The main loop binds before it sets the option, so
 * that it waits for whoever still listens there (a stopped daemon lingering: sharing its
 * sockets would reset the clients in their backlogs when it closes them) and never shares an
 * address with another process; with one loop it never sets it.
 */
static int new_listener(const struct h2s_addr *a, bool join, bool share)
{
	struct sockaddr_storage ss;
	socklen_t sl = h2s_addr_to_sockaddr(a, &ss);
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (join && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	/* A listener for pods sits on their gateway, an address the CNI bridge may create only
	 * with the first pod: bind to it before it exists.
	 */
	if (ss.ss_family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof(one));
	} else {
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	}
	/* A daemon that just stopped may still hold the address for its last accepts (it
	 * lingers H2S_LINGER_MS): wait for it rather than fail (a joining socket finds the
	 * group's owner there, never anyone to wait for).
	 */
	for (int tries = 0; bind(fd, (struct sockaddr *)&ss, sl) < 0; tries++) {
		if (join || errno != EADDRINUSE || tries * 50 >= BIND_WAIT_MS)
			goto fail;
		usleep(50000);
	}
	if ((share && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    listen(fd, 4096) < 0)
		goto fail;
	return fd;
fail: {
	int e = errno;

	close(fd);
	errno = e;
	return -1;
}
}

/* A socket taken over, for a group of several loops: one from an earlier daemon may not have
 * SO_REUSEPORT (one loop, or an older version); the workers can join it once it has (the
 * kernel makes it a group when the first one does).
 */
static int open_group(int fd)
{
	int on = 0, one = 1;
	socklen_t len = sizeof(on);

	if (getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len) == 0 && on)
		return 0;
	return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
}

/* Is a an address of this host now (an interface has it, or 127/8)? A listener binds with
 * IP_FREEBIND whatever the answer: this is only to warn about one that cannot be reached.
 */
static bool address_on_host(const struct h2s_addr *a)
{
	struct ifaddrs *all, *i;
	bool found = false;

	if (h2s_addr_is_loopback(a) && h2s_addr_is_v4(a))
		return true;
	if (getifaddrs(&all) < 0)
		return true; /* cannot tell: no warning */
	for (i = all; i && !found; i = i->ifa_next) {
		struct h2s_addr have;

		if (i->ifa_addr && h2s_addr_from_sockaddr(i->ifa_addr, &have) == 0) {
			have.port = a->port;
			found = h2s_addr_equal(&have, a);
		}
	}
	freeifaddrs(all);
	return found;
}

static int add_listener(struct h2s_daemon *d, const struct h2s_addr *a, int fd)
{
	struct h2s_listener *l = &d->lis[d->nlis];

	if (d->nlis == H2S_LISTEN_SOCKETS_MAX) {
		errno = E2BIG;
		return -1;
	}
	l->d = d;
	l->addr = *a;
	l->w.fd = fd;
	l->w.on_io = on_accept;
	if (h2s_watch_add(&d->loop, &l->w, EPOLLIN) < 0)
		return -1;
	d->nlis++;
	return 0;
}

/* Listen at a: on the socket a takeover handed over for this loop there (loop k takes the
 * kth: their backlogs hold clients already on their way), else on a new one — a worker's in
 * the main loop's SO_REUSEPORT group.
 */
static int listen_on(struct h2s_daemon *d, const struct h2s_addr *a,
		     const struct h2s_handover *from, char *err, size_t errlen)
{
	char name[H2S_ADDR_STRLEN];
	int fd = handed_socket(a, from, d->loop_index);
	bool adopted = fd >= 0;

	h2s_addr_format(a, name, sizeof(name));
	if (!adopted && (fd = new_listener(a, d->main != NULL, d->set.loops > 1)) < 0)
		goto fail;
	if (adopted && !d->main && d->set.loops > 1 && open_group(fd) < 0)
		goto fail;
	if (add_listener(d, a, fd) < 0)
		goto fail;
	if (d->main)
		log_debug("loop %d listening on %s%s", d->loop_index, name,
			  adopted ? " (socket taken over)" : "");
	else
		log_info("listening on %s%s", name, adopted ? " (socket taken over)" : "");
	if (!d->main && !address_on_host(a))
		log_warn("%s is not an address of this host (yet): connections sent there fail "
			 "until an interface has it (a pods' gateway the CNI bridge creates with the "
			 "first pod is fine)", name);
	return 0;
fail:
	snprintf(err, errlen, "cannot listen on %s%s: %s", name,
		 d->main ? " (a loop's own socket)" : "", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -errno;
}

/* The old daemon had more loops than we have: the sockets beyond ours at our addresses are
 * the main loop's too (closing them would reset the clients in their backlogs).
 */
static int adopt_surplus(struct h2s_daemon *d, const struct h2s_handover *from, char *err,
			 size_t errlen)
{
	for (int i = 0; from && i < d->naddrs; i++) {
		const struct h2s_addr *a = &d->opts->listen[i];
		int fd;

		for (int k = (int)d->set.loops; (fd = handed_socket(a, from, k)) >= 0; k++) {
			if (add_listener(d, a, fd) < 0) {
				snprintf(err, errlen, "cannot serve a socket taken over: %s",
					 strerror(errno));
				close(fd);
				return -errno;
			}
		}
	}
	return 0;
}

void h2s_daemon_publish(struct h2s_daemon *d)
{
	struct h2s_ctl *ctl = d->maps->ctl_mem;
	struct h2s_addr l4 = { 0 }, l6 = { 0 };

	snprintf(ctl->control, sizeof(ctl->control), "%s", d->opts->control);
	ctl->daemon_pid = (__u32)getpid();
	/* Per family, the first loopback listener (the others are for pods), else the first. */
	for (int i = d->nlis - 1; i >= 0; i--) {
		const struct h2s_addr *a = &d->lis[i].addr;
		struct h2s_addr *l = h2s_addr_is_v4(a) ? &l4 : &l6;

		if (!l->port || h2s_addr_is_loopback(a) || !h2s_addr_is_loopback(l))
			*l = *a;
	}
	/* Capture may be on while we write (a takeover republishes the same addresses): write
	 * only what changes, so that a connect never reads a half-written address for nothing.
	 */
	if (!h2s_addr_equal(&ctl->listen4, &l4))
		ctl->listen4 = l4;
	if (!h2s_addr_equal(&ctl->listen6, &l6))
		ctl->listen6 = l6;
	/* Our network namespace (SO_NETNS_COOKIE: Linux 5.14; before that, no check). */
	for (int i = 0; i < d->nlis; i++) {
		__u64 cookie = 0;
		socklen_t cl = sizeof(cookie);

		if (getsockopt(d->lis[i].w.fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &cl) == 0) {
			ctl->netns_cookie = cookie;
			break;
		}
	}
	heartbeat(d);
	/* The fallback stays on after we stop: with state kept, clients are served while no
	 * daemon accepts (restart, upgrade), for l4_fallback_ttl_ms at most.
	 */
	{
		__u32 fast = d->set.fastpath ? H2S_CTL_F_FASTPATH : 0;

		if (d->set.l4_fallback_ttl_ms)
			__atomic_or_fetch(&ctl->flags, H2S_CTL_F_CAPTURE | H2S_CTL_F_L4_FALLBACK | fast,
					  __ATOMIC_RELEASE);
		else
			__atomic_store_n(&ctl->flags, H2S_CTL_F_CAPTURE | fast, __ATOMIC_RELEASE);
		if (!fast)
			__atomic_and_fetch(&ctl->flags, ~(__u32)H2S_CTL_F_FASTPATH, __ATOMIC_RELEASE);
	}
	d->published = true;
}

/* Handed-over sockets this daemon does not listen on (its addresses changed): the clients in
 * their backlogs were sent there before the new addresses were published; serve them, then
 * let the sockets go.
 */
static void accept_leftovers(struct h2s_daemon *d, const struct h2s_handover *from)
{
	for (int i = 0; from && i < from->n; i++) {
		struct h2s_addr b = bound_addr(from->fds[i]);
		bool ours = false;
		int fd;

		for (int k = 0; k < d->nlis; k++)
			ours |= h2s_addr_equal(&b, &d->lis[k].addr);
		while (!ours && (fd = accept4(from->fds[i], NULL, NULL,
					      SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			h2s_client_accept(d, fd);
	}
}

static void refresh_tick(struct h2s_timer *t)
{
	struct h2s_daemon *d = h2s_container_of(t, struct h2s_daemon, refresh_timer);

	if (h2s_registry_refresh(&d->reg) < 0)
		log_warn("cannot reload services from the maps");
	h2s_timer_arm(&d->loop, t, REFRESH_MS);
}

/* Polling pays while few streams are open: the loop waits for a backend or a client one
 * RPC at a time, where each wake-up is latency. With many, it is seldom idle anyway.
 */
static bool busy_poll_pays(struct h2s_loop *l)
{
	struct h2s_daemon *d = h2s_container_of(l, struct h2s_daemon, loop);

	return d->stats.streams_live <= d->set.busy_poll_max_streams;
}

/* What every loop has (d->set and d->maps set): client and splice lists, its event loop with
 * busy polling as set, its registry.
 */
static int data_plane_init(struct h2s_daemon *d, char *err, size_t errlen)
{
	int rc;

	h2s_list_init(&d->clients);
	h2s_list_init(&d->splices);
	rc = h2s_loop_init(&d->loop);
	if (rc < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(-rc));
		return rc;
	}
	d->loop.poll.max_us = d->set.busy_poll_us;
	d->loop.poll.share_pct = d->set.busy_poll_share;
	d->loop.poll.pays = busy_poll_pays;
	h2s_registry_init(&d->reg, d->maps);
	d->reg.outlier = &d->set.outlier;
	d->reg.stats = &d->stats;
	d->reg.ewma_decay_ms = d->set.ewma_decay_ms;
	return 0;
}

/* The loop's registry read from the maps now, and again every REFRESH_MS. */
static int load_services(struct h2s_daemon *d, char *err, size_t errlen)
{
	int rc = h2s_registry_refresh(&d->reg);

	if (rc < 0) {
		snprintf(err, errlen, "cannot read services from the maps: %s", strerror(-rc));
		return rc;
	}
	d->refresh_timer.fire = refresh_tick;
	h2s_timer_arm(&d->loop, &d->refresh_timer, REFRESH_MS);
	return 0;
}

int h2s_daemon_init(struct h2s_daemon *d, struct h2s_loader *loader, const struct h2s_options *o,
		    int n, const struct h2s_handover *from, char *err, size_t errlen)
{
	struct h2s_maps *maps = &loader->maps;
	const struct h2s_settings *set = &o->set;
	const struct h2s_addr *addrs = o->listen;
	const char *dns_servers = o->dns_servers;
	sigset_t mask;
	int rc;

	memset(d, 0, sizeof(*d));
	d->sig.fd = -1;
	d->handover.fd = -1;
	d->opts = o;
	d->started_unix = h2s_unix_now();
	d->maps = maps;
	d->loader = loader;
	d->keep_state = o->keep_state;
	d->set = *set;
	if (!d->set.loops) {
		/* The CPUs this process may run on (a cpuset may give it fewer than the node's). */
		cpu_set_t cpus;
		int n = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;

		d->set.loops = n < 1 ? 1 : n > H2S_LOOPS_MAX ? H2S_LOOPS_MAX : (uint32_t)n;
	}
	rc = data_plane_init(d, err, errlen);
	if (rc < 0)
		return rc;
	subset_node(d);
	h2s_discovery_init(d);
	d->refresh_flush.run = refresh_now;
	snprintf(d->dns_servers, sizeof(d->dns_servers), "%s", dns_servers ? dns_servers : "");
	if (h2s_server_callbacks(&d->server_cbs) || h2s_upstream_callbacks(&d->upstream_cbs) ||
	    nghttp2_option_new(&d->opt)) {
		snprintf(err, errlen, "out of memory setting up nghttp2");
		return -ENOMEM;
	}
	/* We acknowledge received DATA ourselves, once the other leg took it (relay.h). */
	nghttp2_option_set_no_auto_window_update(d->opt, 1);

	for (int i = 0; i < n; i++) {
		rc = listen_on(d, &addrs[i], from, err, errlen);
		if (rc < 0)
			return rc;
	}
	d->naddrs = n;

	/* main() blocked them at its start; from here on they are events of the loop. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	d->sig.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sig.fd < 0 || h2s_lifecycle_init(d) < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -errno;
	}
	rc = load_services(d, err, errlen);
	if (rc < 0)
		return rc;
	d->state_timer.fire = state_tick;
	h2s_timer_arm(&d->loop, &d->state_timer, 1000);
	if (o->metrics_on) {
		d->metrics = h2s_metrics_start(d, &o->metrics, err, errlen);
		if (!d->metrics)
			return -EADDRINUSE;
	}
	d->control = h2s_control_start(d, o->control, err, errlen);
	if (!d->control)
		return -EIO;
	/* Pods registered while no daemon ran (their records wait in the state dir). */
	rc = h2s_pods_load_dir(d->maps, o->pod_state_dir);
	if (rc < 0)
		log_warn("cannot read pod records in %s: %s", o->pod_state_dir, strerror(-rc));
	else if (rc > 0)
		log_info("%d pods registered by h2steer-cni", rc);
	/* The workers last: once their sockets listen they share the clients. */
	rc = adopt_surplus(d, from, err, errlen);
	if (rc == 0)
		rc = h2s_workers_start(d, from, err, errlen);
	if (rc < 0)
		return rc;
	h2s_daemon_publish(d);
	accept_leftovers(d, from);
	return 0;
}

int h2s_daemon_init_worker(struct h2s_daemon *w, struct h2s_daemon *m, int index,
			   const struct h2s_handover *from, char *err, size_t errlen)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->main = m;
	w->loop_index = index;
	w->sig.fd = -1;
	w->handover.fd = -1;
	w->opts = m->opts;
	w->started_unix = m->started_unix;
	w->maps = m->maps;
	w->keep_state = m->keep_state;
	w->set = m->set;
	/* Read-only after the main daemon's start, copied into every session: shared. */
	w->server_cbs = m->server_cbs;
	w->upstream_cbs = m->upstream_cbs;
	w->opt = m->opt;
	rc = data_plane_init(w, err, errlen);
	if (rc < 0)
		return rc;
	/* Its own view of the services: never writes the maps, takes the health the main
	 * loop's checks found, keeps its own pools and passive ejections.
	 */
	w->reg.readonly = true;
	w->reg.quiet = true;
	w->reg.node = m->reg.node;
	w->reg.follow_health = &m->reg.health_gen;
	w->reg.on_idle = h2s_pool_idle;
	w->reg.ctx = w;
	w->refresh_flush.run = refresh_now;
	w->naddrs = m->naddrs;
	for (int i = 0; i < m->naddrs; i++) {
		rc = listen_on(w, &m->opts->listen[i], from, err, errlen);
		if (rc < 0)
			return rc;
	}
	h2s_lifecycle_init_worker(w);
	return load_services(w, err, errlen);
}

void h2s_daemon_close_listeners(struct h2s_daemon *d)
{
	for (int i = 0; i < d->nlis; i++) {
		h2s_watch_del(&d->loop, &d->lis[i].w);
		close(d->lis[i].w.fd);
	}
	d->nlis = 0;
}

void h2s_daemon_maybe_done(struct h2s_daemon *d)
{
	/* Listeners still open (lingering) may yet hand us a client; the main loop also waits
	 * for the other loops.
	 */
	if (d->draining && d->nclients == 0 && d->nsplices == 0 && d->nlis == 0 &&
	    h2s_workers_done(d))
		h2s_loop_stop(&d->loop);
}

int h2s_daemon_run(struct h2s_daemon *d)
{
	return h2s_loop_run(&d->loop);
}

void h2s_daemon_fini(struct h2s_daemon *d)
{
	struct h2s_list *pos, *tmp;

	h2s_workers_join(d);
	/* What this daemon published is withdrawn, unless another one owns the node now. */
	if (d->published && !d->left && !d->handed_sockets)
		__atomic_and_fetch(&d->maps->ctl_mem->flags, ~(__u32)H2S_CTL_F_CAPTURE,
				   __ATOMIC_RELEASE);
	if (!d->main && d->maps && d->maps->ctl_mem &&
	    d->maps->ctl_mem->daemon_pid == (__u32)getpid()) {
		d->maps->ctl_mem->daemon_pid = 0;
		memset(d->maps->ctl_mem->control, 0, sizeof(d->maps->ctl_mem->control));
	}
	h2s_lifecycle_fini(d);
	h2s_list_for_each_safe(pos, tmp, &d->clients)
		h2s_conn_close(&h2s_container_of(pos, struct h2s_client, link)->c, "daemon exiting");
	h2s_splice_close_all(d);
	h2s_metrics_stop(d->metrics);
	d->metrics = NULL;
	h2s_control_stop(d->control);
	d->control = NULL;
	h2s_discovery_fini(d);
	h2s_pool_close_all(d);
	h2s_dns_free(d->dns); /* after the resolvers: their pending queries end here */
	for (int i = 0; i < d->nlis; i++)
		close(d->lis[i].w.fd);
	d->nlis = 0;
	if (d->sig.fd >= 0)
		close(d->sig.fd);
	h2s_loop_fini(&d->loop); /* frees the closed connections */
	h2s_registry_fini(&d->reg);
	h2s_stats_free(&d->stats);
	if (d->main)
		return; /* the rest is the main daemon's */
	if (d->server_cbs)
		nghttp2_session_callbacks_del(d->server_cbs);
	if (d->upstream_cbs)
		nghttp2_session_callbacks_del(d->upstream_cbs);
	if (d->opt)
		nghttp2_option_del(d->opt);
}
