/* daemon.c — see daemon.h. */
#include "daemon.h"

#include "addr.h"
#include "h2_server.h"
#include "hash.h"
#include "config.h"
#include "control.h"
#include "lifecycle.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "pods.h"
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
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How long to wait for a listener address the previous daemon is letting go of. */
#define BIND_WAIT_MS 3000
/* How long a loop stops accepting when the process is out of descriptors (accept_pause()). */
#define ACCEPT_PAUSE_MS 100

/* Who this node is among the nodes sharing the backends: its index when configured, else a
 * hash of the host name (the same on every restart).
 */
static void subset_node(struct h2s_daemon *d)
{
	char host[256] = "";

	d->p.reg.node.has_index = d->p.set.node_index != H2S_NODE_INDEX_NONE;
	d->p.reg.node.index = d->p.set.node_index;
	if (gethostname(host, sizeof(host) - 1) < 0)
		log_warn("gethostname: %s: subsets are chosen as for a host named \"\"",
			 strerror(errno));
	d->p.reg.node.id = h2s_hash64(host, strlen(host), 0);
}

/* What the data plane tells the daemon. */
static void plane_drained(struct h2s_plane *p)
{
	h2s_daemon_maybe_done(h2s_container_of(p, struct h2s_daemon, p));
}

static const struct h2s_plane_ops plane_ops = { .drained = plane_drained };

/* What the daemon keeps of its file limit for what is not a client connection: the maps,
 * upstream connections, health checks, DNS, metrics and control, and a spliced connection's
 * backend leg. A quarter, at least 64 (at most half: a limit that low serves few anyway).
 */
static uint64_t clients_in_file_limit(uint64_t nofile)
{
	uint64_t keep = nofile / 4 < 64 ? 64 : nofile / 4;

	return nofile - (keep > nofile / 2 ? nofile / 2 : keep);
}

/* The caps on client connections (admit.h): as set, or from the file limit h2steerd raised. */
static void client_caps(struct h2s_daemon *d)
{
	const struct h2s_settings *set = &d->p.set;
	uint64_t total = set->max_client_connections, per_source;
	struct rlimit rl;
	char from[64] = "";

	if (!total) {
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
			rl.rlim_cur = 1024; /* cannot tell: the usual soft limit */
		total = clients_in_file_limit(rl.rlim_cur);
		snprintf(from, sizeof(from), " (from the file limit, %llu)",
			 (unsigned long long)rl.rlim_cur);
	}
	per_source = set->max_client_connections_per_source;
	if (!per_source)
		per_source = (total + 1) / 2; /* one source never takes all */
	h2s_admit_init(&d->admit, h2s_loop_share(total, set->loops),
		       h2s_loop_share(per_source, set->loops));
	log_info("client connections: at most %llu%s, %llu from one source address%s",
		 (unsigned long long)total, from, (unsigned long long)per_source,
		 set->loops > 1 ? ", each loop its share" : "");
}

/* The L4 fallback may use the slots for fallback_ttl_ns from now (state_tick keeps this fresh). */
static void heartbeat(struct h2s_daemon *d)
{
	struct h2s_ctl *ctl = d->p.maps->ctl_mem;

	ctl->fallback_ttl_ns = (uint64_t)d->p.set.l4_fallback_ttl_ms * 1000000ull;
	ctl->heartbeat_ns = h2s_now_ns(); /* bpf_ktime_get_ns()'s clock */
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
	h2s_registry_each_backend(&w->p.reg, add_to_main, main_reg);
}

/* Counters in h2s_be_state (in flight, RPCs: every loop's) for the CLI, once a second. */
static void state_tick(struct h2s_timer *t)
{
	struct h2s_daemon *d = h2s_container_of(t, struct h2s_daemon, state_timer);

	if (d->workers) {
		h2s_registry_each_backend(&d->p.reg, clear_other_loops, NULL);
		h2s_workers_each(d, gather_loop, &d->p.reg);
	}
	h2s_registry_each_backend(&d->p.reg, publish_one, &d->p.reg);
	h2s_registry_publish_lb(&d->p.reg); /* ejections end by time passing */
	if (!d->left)
		heartbeat(d);
	h2s_timer_arm(&d->p.loop, t, 1000);
}

/* Close a connection over a cap at once: with a reset, so that the client learns it was not
 * served at its first read (not after its first RPC times out), and a flood of them leaves no
 * TIME_WAIT behind.
 */
static void refuse(struct h2s_daemon *d, int fd, const struct h2s_addr *peer,
		   enum h2s_admit_verdict why)
{
	/* One line per cause per 10 s, whichever loop refuses. */
	static struct h2s_log_limit lim[H2S_ADMIT_NOMEM + 1];
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	const struct h2s_admit *a = &d->admit;
	char ps[H2S_ADDR_STRLEN];

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
	close(fd);
	h2s_ip_format(peer, ps, sizeof(ps));
	switch (why) {
	case H2S_ADMIT_TOTAL:
		d->p.stats.conns_refused_total++;
		h2s_log_limited(&lim[why], H2S_LOG_WARNING,
				"client connection from %s refused: loop %d serves %u already "
				"(max_client_connections)", ps, d->loop_index, a->max_total);
		break;
	case H2S_ADMIT_PER_SOURCE:
		d->p.stats.conns_refused_per_source++;
		h2s_log_limited(&lim[why], H2S_LOG_WARNING,
				"client connection from %s refused: loop %d serves %u from that "
				"address already (max_client_connections_per_source)", ps,
				d->loop_index, a->max_per_source);
		break;
	default:
		h2s_log_limited(&lim[why], H2S_LOG_WARNING,
				"client connection from %s refused: out of memory", ps);
	}
}

/* A client from a listening socket, its address into ss. */
static int accept_client(int lfd, struct sockaddr_storage *ss)
{
	socklen_t sl = sizeof(*ss);

	return accept4(lfd, (struct sockaddr *)ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* A client just accepted from ss: served, unless a cap says no. */
static void serve(struct h2s_daemon *d, int fd, const struct sockaddr_storage *ss)
{
	struct h2s_addr peer = { 0 };
	enum h2s_admit_verdict v;

	h2s_addr_from_sockaddr((const struct sockaddr *)ss, &peer); /* TCP: IPv4 or IPv6 */
	v = h2s_admit(&d->admit, fd, &peer, d->p.nclients + d->p.nsplices, d->p.loop.now_ms);
	if (v == H2S_ADMIT_OK)
		h2s_client_accept(&d->p, fd);
	else
		refuse(d, fd, &peer, v);
}

static void accept_resume(struct h2s_timer *t)
{
	struct h2s_daemon *d = h2s_container_of(t, struct h2s_daemon, accept_timer);

	for (int i = 0; i < d->nlis; i++)
		h2s_watch_set(&d->p.loop, &d->lis[i].w, EPOLLIN);
}

/* accept() failed for want of a descriptor or of memory, leaving the client in the backlog:
 * the listener stays readable, and trying again at once only spins. Stop watching this loop's
 * listeners for a while; the clients wait in their backlogs. The caps on client connections
 * keep descriptors for the rest, so running out is pressure from elsewhere (upstream and
 * spliced connections) that passes, and waiting clients are served then. Hence no spare
 * descriptor to close, accept and reset them with: that refuses clients who would have been
 * served a moment later, and with several loops in one process another thread may take the
 * descriptor freed first.
 */
static void accept_pause(struct h2s_daemon *d, int err)
{
	struct rlimit rl = { 0 };

	for (int i = 0; i < d->nlis; i++)
		h2s_watch_set(&d->p.loop, &d->lis[i].w, 0);
	h2s_timer_arm(&d->p.loop, &d->accept_timer, ACCEPT_PAUSE_MS);
	d->p.stats.accept_pauses++;
	getrlimit(RLIMIT_NOFILE, &rl);
	log_limited(H2S_LOG_WARNING,
		    "accept: %s: not accepting on loop %d for %d ms (%u client connections open "
		    "there, file limit %llu)%s", strerror(err), d->loop_index, ACCEPT_PAUSE_MS,
		    d->p.nclients + d->p.nsplices, (unsigned long long)rl.rlim_cur,
		    err == EMFILE ? ": raise the hard limit (LimitNOFILE=) or lower "
				    "max_client_connections" : "");
}

static void on_accept(struct h2s_watch *w, uint32_t events)
{
	struct h2s_listener *l = h2s_container_of(w, struct h2s_listener, w);

	(void)events;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		int fd = accept_client(w->fd, &ss);

		if (fd >= 0) {
			serve(l->d, fd, &ss);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			accept_pause(l->d, errno);
		else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			 errno != ECONNABORTED)
			log_limited(H2S_LOG_WARNING, "accept: %s", strerror(errno));
		return;
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
	if (h2s_watch_add(&d->p.loop, &l->w, EPOLLIN) < 0)
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
	if (!adopted && (fd = new_listener(a, d->main != NULL, d->p.set.loops > 1)) < 0)
		goto fail;
	if (adopted && !d->main && d->p.set.loops > 1 && open_group(fd) < 0)
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

		for (int k = (int)d->p.set.loops; (fd = handed_socket(a, from, k)) >= 0; k++) {
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
	struct h2s_ctl *ctl = d->p.maps->ctl_mem;
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
		__u32 fast = d->p.set.fastpath ? H2S_CTL_F_FASTPATH : 0;

		if (d->p.set.l4_fallback_ttl_ms)
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
		struct sockaddr_storage ss;
		bool ours = false;
		int fd;

		for (int k = 0; k < d->nlis; k++)
			ours |= h2s_addr_equal(&b, &d->lis[k].addr);
		while (!ours && (fd = accept_client(from->fds[i], &ss)) >= 0)
			serve(d, fd, &ss);
	}
}

int h2s_daemon_init(struct h2s_daemon *d, struct h2s_loader *loader, const struct h2s_options *o,
		    int n, const struct h2s_handover *from, char *err, size_t errlen)
{
	struct h2s_maps *maps = &loader->maps;
	const struct h2s_settings *set = &o->set;
	const struct h2s_addr *addrs = o->listen;
	sigset_t mask;
	int rc;

	memset(d, 0, sizeof(*d));
	d->sig.fd = -1;
	d->handover.fd = -1;
	d->opts = o;
	d->started_unix = h2s_unix_now();
	d->loader = loader;
	d->keep_state = o->keep_state;
	rc = h2s_plane_init(&d->p, maps, set, &plane_ops, err, errlen);
	if (rc < 0)
		return rc;
	if (!d->p.set.loops) {
		/* The CPUs this process may run on (a cpuset may give it fewer than the node's). */
		cpu_set_t cpus;
		int n = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;

		d->p.set.loops = n < 1 ? 1 : n > H2S_LOOPS_MAX ? H2S_LOOPS_MAX : (uint32_t)n;
	}
	subset_node(d);
	client_caps(d);
	d->accept_timer.fire = accept_resume;
	rc = h2s_discovery_init(&d->src, &d->p, o->dns_servers, &o->kube, err, errlen);
	if (rc < 0)
		return rc;
	if (h2s_plane_sessions(&d->p, NULL) < 0) {
		snprintf(err, errlen, "out of memory setting up nghttp2");
		return -ENOMEM;
	}

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
	rc = h2s_plane_load_services(&d->p, err, errlen);
	if (rc < 0)
		return rc;
	d->state_timer.fire = state_tick;
	h2s_timer_arm(&d->p.loop, &d->state_timer, 1000);
	if (o->metrics_on) {
		d->metrics = h2s_metrics_start(d, &o->metrics, err, errlen);
		if (!d->metrics)
			return -EADDRINUSE;
	}
	d->control = h2s_control_start(d, o->control, err, errlen);
	if (!d->control)
		return -EIO;
	/* Pods registered while no daemon ran (their records wait in the state dir). */
	rc = h2s_pods_load_dir(d->p.maps, o->pod_state_dir);
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
	w->keep_state = m->keep_state;
	rc = h2s_plane_init(&w->p, m->p.maps, &m->p.set, &plane_ops, err, errlen);
	if (rc < 0)
		return rc;
	/* Read-only after the main daemon's start, copied into every session: shared. */
	h2s_plane_sessions(&w->p, &m->p);
	/* Its own view of the services: never writes the maps, takes the health the main
	 * loop's checks found, keeps its own pools and passive ejections.
	 */
	w->p.reg.readonly = true;
	w->p.reg.quiet = true;
	w->p.reg.node = m->p.reg.node;
	w->p.reg.follow_health = &m->p.reg.health_gen;
	h2s_admit_init(&w->admit, m->admit.max_total, m->admit.max_per_source);
	w->accept_timer.fire = accept_resume;
	w->naddrs = m->naddrs;
	for (int i = 0; i < m->naddrs; i++) {
		rc = listen_on(w, &m->opts->listen[i], from, err, errlen);
		if (rc < 0)
			return rc;
	}
	h2s_lifecycle_init_worker(w);
	return h2s_plane_load_services(&w->p, err, errlen);
}

void h2s_daemon_close_listeners(struct h2s_daemon *d)
{
	for (int i = 0; i < d->nlis; i++) {
		h2s_watch_del(&d->p.loop, &d->lis[i].w);
		close(d->lis[i].w.fd);
	}
	d->nlis = 0;
}

void h2s_daemon_maybe_done(struct h2s_daemon *d)
{
	/* Listeners still open (lingering) may yet hand us a client; the main loop also waits
	 * for the other loops.
	 */
	if (d->p.draining && d->p.nclients == 0 && d->p.nsplices == 0 && d->nlis == 0 &&
	    h2s_workers_done(d))
		h2s_loop_stop(&d->p.loop);
}

int h2s_daemon_run(struct h2s_daemon *d)
{
	return h2s_loop_run(&d->p.loop);
}

void h2s_daemon_fini(struct h2s_daemon *d)
{
	h2s_workers_join(d);
	/* What this daemon published is withdrawn, unless another one owns the node now. */
	if (d->published && !d->left && !d->handed_sockets)
		__atomic_and_fetch(&d->p.maps->ctl_mem->flags, ~(__u32)H2S_CTL_F_CAPTURE,
				   __ATOMIC_RELEASE);
	if (!d->main && d->p.maps && d->p.maps->ctl_mem &&
	    d->p.maps->ctl_mem->daemon_pid == (__u32)getpid()) {
		d->p.maps->ctl_mem->daemon_pid = 0;
		memset(d->p.maps->ctl_mem->control, 0, sizeof(d->p.maps->ctl_mem->control));
	}
	h2s_lifecycle_fini(d);
	h2s_plane_close_all(&d->p, "daemon exiting");
	h2s_metrics_stop(d->metrics);
	d->metrics = NULL;
	h2s_control_stop(d->control);
	d->control = NULL;
	h2s_discovery_fini(&d->src);
	for (int i = 0; i < d->nlis; i++)
		close(d->lis[i].w.fd);
	d->nlis = 0;
	if (d->sig.fd >= 0)
		close(d->sig.fd);
	h2s_admit_fini(&d->admit);
	/* The callbacks and options are the main daemon's, shared with the workers. */
	h2s_plane_fini(&d->p, d->main == NULL);
}
