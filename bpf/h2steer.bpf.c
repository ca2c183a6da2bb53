// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* h2steer.bpf.c — the kernel plane: capture connections to managed service addresses and hand
 * them to the node's daemon, keep what the daemon needs to know about each one, and keep the
 * client's view of its peer unchanged.
 *
 *   connect4/6     managed VIP:port -> daemon listener; the VIP goes into the socket's storage
 *   sockops        at the client's SYN: 4-tuple -> VIP into h2s_origins (the daemon's lookup);
 *                  at its close: the record is removed. On the daemon's upstream sockets: RTT,
 *                  retransmits and connect outcomes per backend into h2s_be_kstats
 *   getpeername4/6 a captured socket still reports the VIP it dialled
 *
 * What to do with a connect() is decided in include/h2s_decide.h (unit-tested on the host);
 * this file looks up what those decisions need and carries them out. Every error path leaves
 * the connection as the client asked for it (fail open).
 */
#include "h2s_maps.bpf.h"
#include "h2s_addr.h"
#include "h2s_decide.h"

/* vmlinux.h carries types, not macros. */
#define SOCK_STREAM 1
#define EPERM 1
#define ENOENT 2
#define ENOMEM 12
#define EINVAL 22
#define EPROTOTYPE 91
#define EAFNOSUPPORT 97
#define EXDEV 18
#define ENOTCONN 107

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline void count(enum h2s_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&h2s_counters, &key);

	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

/* Where a connect() comes from: the daemon's network namespace (0), a registered pod's (1,
 * *pod set), or another one (-EXDEV: neither the daemon's listeners nor, necessarily, the
 * backends' addresses are reachable from there).
 */
static __always_inline int netns_of(struct bpf_sock_addr *ctx, const struct h2s_ctl *ctl,
				    const struct h2s_pod **pod)
{
	__u64 cookie = bpf_get_netns_cookie(ctx);

	if (h2s_daemon_netns(ctl, cookie))
		return 0;
	*pod = bpf_map_lookup_elem(&h2s_pods, &cookie);
	return *pod ? 1 : -EXDEV;
}

/* Is a socket listening at the daemon's address? Not when the daemon died without clearing
 * H2S_CTL_F_CAPTURE (killed, crashed): sending the client there would get it refused.
 */
static __always_inline bool listener_alive(struct bpf_sock_addr *ctx, const struct h2s_addr *l)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;

	if (h2s_addr_is_v4(l)) {
		t.ipv4.daddr = l->ip6[3];
		t.ipv4.dport = l->port;
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	} else {
		__builtin_memcpy(t.ipv6.daddr, l->ip6, sizeof(t.ipv6.daddr));
		t.ipv6.dport = l->port;
		sk = bpf_sk_lookup_tcp(ctx, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	}
	if (!sk)
		return false;
	bpf_sk_release(sk);
	return true;
}

static __always_inline __s64 l4_conns(const struct h2s_addr *be)
{
	__s64 *n = bpf_map_lookup_elem(&h2s_l4_conns, be);

	return n ? *n : 0;
}

/* One of the service's backends, for a connection that goes to it directly (mode l4, or no
 * daemon accepting), or NULL: h2s_decide.h says when, which slots and which of the two.
 */
static __always_inline const struct h2s_addr *l4_pick(const struct h2s_ctl *ctl,
						      const struct h2s_service *svc,
						      const struct h2s_addr *dst)
{
	const struct h2s_addr *a, *b;

	if (!h2s_l4_allowed(ctl, svc, bpf_ktime_get_ns()))
		return NULL;
	if (!h2s_l4_candidates(bpf_map_lookup_elem(&h2s_lb, dst), bpf_get_prandom_u32(),
			       bpf_get_prandom_u32(), &a, &b))
		return NULL;
	return h2s_l4_choose(dst, a, l4_conns(a), b, l4_conns(b));
}

/* Decide whether a connect() to *dst is captured; on success *to is where it must go instead:
 * the daemon's listener, or (no daemon accepting) a backend. Returns 0 when redirected, a
 * negative errno when the connection must proceed untouched.
 */
static __always_inline int capture(struct bpf_sock_addr *ctx, const struct h2s_addr *dst,
				   struct h2s_addr *to)
{
	const struct h2s_pod *pod = NULL;
	const struct h2s_ctl *ctl;
	const struct h2s_addr *l;
	struct h2s_sock *st;
	struct bpf_sock *sk;
	const struct h2s_addr *vip = dst;
	const struct h2s_service *svc;
	bool direct = false, by_backend = false;
	__u32 zero = 0;
	int from;

	if (ctx->type != SOCK_STREAM)
		return -EPROTOTYPE;
	svc = bpf_map_lookup_elem(&h2s_services, dst);
	if (!svc) {
		/* Addressed to a backend: rewritten so by another connect-time balancer that
		 * ran first, or dialled on purpose; taken only for services that ask.
		 */
		vip = bpf_map_lookup_elem(&h2s_be_vip, dst);
		if (!vip)
			return -ENOENT;
		svc = bpf_map_lookup_elem(&h2s_services, vip);
		if (!h2s_captures_backends(svc))
			return -ENOENT;
		by_backend = true;
	}
	ctl = bpf_map_lookup_elem(&h2s_ctl, &zero);
	if (!ctl)
		return -ENOENT;
	from = netns_of(ctx, ctl, &pod);
	if (from < 0) {
		count(H2S_CNT_SKIP_OTHER_NETNS);
		return from;
	}
	l = h2s_listener(ctl, svc, pod, dst, bpf_ktime_get_ns());
	/* A pod's daemon was judged by its heartbeat instead: a socket lookup searches the
	 * pod's namespace, not the daemon's.
	 */
	if (l && !pod && !listener_alive(ctx, l)) {
		count(H2S_CNT_NO_DAEMON);
		l = NULL;
	}
	if (!l) {
		/* Already on its way to a backend: no better place to send it. */
		if (by_backend)
			return -ENOTCONN;
		l = l4_pick(ctl, svc, dst);
		if (!l) {
			count(H2S_CNT_SKIP_NO_LISTENER);
			return -ENOTCONN;
		}
		direct = true;
	}
	sk = ctx->sk;
	if (!sk)
		return -EINVAL;
	st = bpf_sk_storage_get(&h2s_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		count(H2S_CNT_ERR_STORAGE);
		return -ENOMEM;
	}
	if (st->flags & H2S_SOCK_F_DAEMON) {
		count(H2S_CNT_SKIP_DAEMON);
		return -EPERM;
	}
	st->vip = *vip;
	/* Either way the client keeps seeing the VIP as its peer; only a connection to the
	 * daemon needs an origin record.
	 */
	st->flags |= direct ? H2S_SOCK_F_DIRECT : H2S_SOCK_F_CAPTURED;
	st->tgid = bpf_get_current_pid_tgid() >> 32;
	st->cgroup_id = bpf_get_current_cgroup_id();
	*to = *l;
	count(h2s_redirect_counter(svc, pod, direct));
	if (by_backend)
		count(H2S_CNT_BY_BACKEND);
	return 0;
}

SEC("cgroup/connect4")
int h2s_connect4(struct bpf_sock_addr *ctx)
{
	struct h2s_addr dst, to;

	h2s_addr_set4(&dst, ctx->user_ip4, h2s_sockaddr_port(ctx->user_port));
	if (capture(ctx, &dst, &to) == 0) {
		ctx->user_ip4 = to.ip6[3];
		ctx->user_port = to.port;
	}
	return 1; /* always allow: capture or not, the connect goes ahead */
}

SEC("cgroup/connect6")
int h2s_connect6(struct bpf_sock_addr *ctx)
{
	struct h2s_addr dst, to;

	/* A v4-mapped destination on a dual-stack socket is the IPv4 service: the key is the same
	 * and h2s_listener() picks the IPv4 listener, which the socket reaches v4-mapped as well.
	 */
	h2s_addr_set6(&dst, ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3],
		      h2s_sockaddr_port(ctx->user_port));
	if (capture(ctx, &dst, &to) == 0) {
		ctx->user_ip6[0] = to.ip6[0];
		ctx->user_ip6[1] = to.ip6[1];
		ctx->user_ip6[2] = to.ip6[2];
		ctx->user_ip6[3] = to.ip6[3];
		ctx->user_port = to.port;
	}
	return 1;
}

static __always_inline const struct h2s_sock *captured(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct h2s_sock *st;

	if (!sk)
		return NULL;
	st = bpf_sk_storage_get(&h2s_socks, sk, 0, 0);
	if (!st || !(st->flags & (H2S_SOCK_F_CAPTURED | H2S_SOCK_F_DIRECT)))
		return NULL;
	return st;
}

SEC("cgroup/getpeername4")
int h2s_peername4(struct bpf_sock_addr *ctx)
{
	const struct h2s_sock *st = captured(ctx);

	if (st) {
		ctx->user_ip4 = st->vip.ip6[3];
		ctx->user_port = st->vip.port;
		count(H2S_CNT_PEERNAME);
	}
	return 1;
}

SEC("cgroup/getpeername6")
int h2s_peername6(struct bpf_sock_addr *ctx)
{
	const struct h2s_sock *st = captured(ctx);

	if (st) {
		ctx->user_ip6[0] = st->vip.ip6[0];
		ctx->user_ip6[1] = st->vip.ip6[1];
		ctx->user_ip6[2] = st->vip.ip6[2];
		ctx->user_ip6[3] = st->vip.ip6[3];
		ctx->user_port = st->vip.port;
		count(H2S_CNT_PEERNAME);
	}
	return 1;
}

/* Context fields must be loaded at a constant offset from the ctx pointer. Left alone, clang
 * merges the IPv4 and IPv6 branches below into one load through "ctx + off", which the verifier
 * rejects ("dereference of modified ctx ptr"); the empty asm pins each load inside its branch.
 */
#define CTX_LOAD(dst, field)                       \
	do {                                       \
		dst = (field);                     \
		asm volatile("" : "+r"(dst));      \
	} while (0)

/* A socket context's local and remote addresses into *local and *remote (either may be
 * NULL); rc = 0, or -EAFNOSUPPORT. struct bpf_sock_ops and struct sk_msg_md name and encode
 * these fields alike (remote port in network order, local port in host order).
 */
#define CTX_ADDRS(ctx, local, remote, rc)                                                    \
	do {                                                                                 \
		__u32 l_[4], r_[4], lport_, rport_, family_;                                 \
		CTX_LOAD(family_, (ctx)->family);                                            \
		CTX_LOAD(lport_, (ctx)->local_port);                                         \
		CTX_LOAD(rport_, (ctx)->remote_port);                                        \
		(rc) = 0;                                                                    \
		if (family_ == AF_INET) {                                                    \
			CTX_LOAD(l_[0], (ctx)->local_ip4);                                   \
			CTX_LOAD(r_[0], (ctx)->remote_ip4);                                  \
			if (local)                                                           \
				h2s_addr_set4(local, l_[0], h2s_sockops_local_port(lport_)); \
			if (remote)                                                          \
				h2s_addr_set4(remote, r_[0],                                 \
					      h2s_sockops_remote_port(rport_));               \
		} else if (family_ == AF_INET6) {                                            \
			CTX_LOAD(l_[0], (ctx)->local_ip6[0]);                                \
			CTX_LOAD(l_[1], (ctx)->local_ip6[1]);                                \
			CTX_LOAD(l_[2], (ctx)->local_ip6[2]);                                \
			CTX_LOAD(l_[3], (ctx)->local_ip6[3]);                                \
			CTX_LOAD(r_[0], (ctx)->remote_ip6[0]);                               \
			CTX_LOAD(r_[1], (ctx)->remote_ip6[1]);                               \
			CTX_LOAD(r_[2], (ctx)->remote_ip6[2]);                               \
			CTX_LOAD(r_[3], (ctx)->remote_ip6[3]);                               \
			if (local)                                                           \
				h2s_addr_set6(local, l_[0], l_[1], l_[2], l_[3],             \
					      h2s_sockops_local_port(lport_));                \
			if (remote)                                                          \
				h2s_addr_set6(remote, r_[0], r_[1], r_[2], r_[3],            \
					      h2s_sockops_remote_port(rport_));               \
		} else {                                                                     \
			(rc) = -EAFNOSUPPORT;                                                \
		}                                                                            \
	} while (0)

static __always_inline int sock_addrs(struct bpf_sock_ops *skops, struct h2s_addr *local,
				      struct h2s_addr *remote)
{
	int rc;

	CTX_ADDRS(skops, local, remote, rc);
	return rc;
}

/* The client's 4-tuple as its own socket sees it (local = client, remote = listener). */
static __always_inline int tuple_of(struct bpf_sock_ops *skops, struct h2s_tuple *t)
{
	return sock_addrs(skops, &t->client, &t->listener);
}

static __always_inline void record_origin(struct bpf_sock_ops *skops)
{
	struct h2s_origin o = {};
	struct h2s_tuple t = {};
	struct bpf_sock *sk = skops->sk;
	struct h2s_sock *st;

	if (!sk)
		return;
	st = bpf_sk_storage_get(&h2s_socks, sk, 0, 0);
	if (!st || !(st->flags & H2S_SOCK_F_CAPTURED))
		return;
	if (tuple_of(skops, &t) < 0) {
		count(H2S_CNT_ERR_ORIGIN);
		return;
	}
	o.vip = st->vip;
	o.tgid = st->tgid;
	o.cgroup_id = st->cgroup_id;
	if (bpf_map_update_elem(&h2s_origins, &t, &o, BPF_ANY) < 0) {
		count(H2S_CNT_ERR_ORIGIN);
		return;
	}
	count(H2S_CNT_ORIGIN_ADDED);
	/* Only captured sockets pay for state callbacks: we need just their close. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void forget_origin(struct bpf_sock_ops *skops)
{
	struct h2s_tuple t = {};

	if (tuple_of(skops, &t) == 0 && bpf_map_delete_elem(&h2s_origins, &t) == 0)
		count(H2S_CNT_ORIGIN_REMOVED);
}

/* The stats of the backend at the other end of an upstream socket, created on first use. */
static __always_inline struct h2s_be_kstats *kstats_of(struct bpf_sock_ops *skops)
{
	struct h2s_be_kstats zero = {};
	struct h2s_addr be = {};
	struct h2s_be_kstats *ks;

	if (sock_addrs(skops, NULL, &be) < 0)
		return NULL;
	ks = bpf_map_lookup_elem(&h2s_be_kstats, &be);
	if (ks)
		return ks;
	bpf_map_update_elem(&h2s_be_kstats, &be, &zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(&h2s_be_kstats, &be);
}

static __always_inline __u32 sock_flags(struct bpf_sock_ops *skops)
{
	struct bpf_sock *sk = skops->sk;
	struct h2s_sock *st;

	if (!sk)
		return 0;
	st = bpf_sk_storage_get(&h2s_socks, sk, 0, 0);
	return st ? st->flags : 0;
}

/* A daemon's connection to a backend is starting: have TCP report its RTT samples,
 * retransmits and state changes to us from now on.
 */
static __always_inline void watch_upstream(struct bpf_sock_ops *skops)
{
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_RTT_CB_FLAG |
						 BPF_SOCK_OPS_RETRANS_CB_FLAG |
						 BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* TCP's own smoothed RTT of this connection (in 1/8 us) as of this sample: RTT_CB runs before
 * tp->srtt_us takes the new value, so newer kernels pass it in args[1] (args[0]: the raw
 * sample); older ones pass nothing and skops->srtt_us is one sample late. The backend's value
 * follows its connections' with gain 1/4, so one idle connection's stale view fades quickly.
 */
static __always_inline void note_rtt(struct bpf_sock_ops *skops)
{
	struct h2s_be_kstats *ks = kstats_of(skops);
	__u32 passed, late, srtt;

	CTX_LOAD(passed, skops->args[1]);
	CTX_LOAD(late, skops->srtt_us);
	srtt = (passed ? passed : late) >> 3;
	if (!ks || !srtt)
		return;
	if (!ks->rtt_samples)
		ks->srtt_us = srtt;
	else
		ks->srtt_us = (__u32)(((__u64)ks->srtt_us * 3 + srtt) / 4);
	__sync_fetch_and_add(&ks->rtt_samples, 1);
	ks->updated_ns = bpf_ktime_get_ns();
}

static __always_inline void note_upstream(struct bpf_sock_ops *skops, int what)
{
	struct h2s_be_kstats *ks = kstats_of(skops);

	if (!ks)
		return;
	switch (what) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		__sync_fetch_and_add(&ks->connects, 1);
		break;
	case BPF_SOCK_OPS_RETRANS_CB:
		__sync_fetch_and_add(&ks->retrans, 1);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		__sync_fetch_and_add(&ks->connect_failures, 1);
		break;
	}
}

/* A connection the hooks sent straight to a backend: +1 at connect (and ask for its close), -1
 * at close, so that l4_pick sees the connections open to each backend.
 */
static __always_inline void count_direct(struct bpf_sock_ops *skops, __s64 delta)
{
	struct bpf_sock *sk = skops->sk;
	struct h2s_addr be = {};
	struct h2s_sock *st;
	__s64 one = 0, *n;

	if (!sk || sock_addrs(skops, NULL, &be) < 0)
		return;
	st = bpf_sk_storage_get(&h2s_socks, sk, 0, 0);
	if (!st)
		return;
	n = bpf_map_lookup_elem(&h2s_l4_conns, &be);
	if (!n && delta > 0) {
		bpf_map_update_elem(&h2s_l4_conns, &be, &one, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&h2s_l4_conns, &be);
	}
	if (delta > 0) {
		if (!n)
			return;
		__sync_fetch_and_add(n, 1);
		st->flags |= H2S_SOCK_F_COUNTED;
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							 BPF_SOCK_OPS_STATE_CB_FLAG);
	} else {
		st->flags &= ~H2S_SOCK_F_COUNTED;
		if (n)
			__sync_fetch_and_add(n, -1);
	}
}

/* ---- experimental fast path (H2S_CTL_F_FASTPATH) ---- */

static __always_inline bool fastpath_on(void)
{
	__u32 zero = 0;
	const struct h2s_ctl *ctl = bpf_map_lookup_elem(&h2s_ctl, &zero);

	return ctl && (ctl->flags & H2S_CTL_F_FASTPATH);
}

/* Put this end of a captured connection in h2s_fast under its own (local, remote). The
 * client's end is known by its socket storage; the daemon's accepted end by the origin record
 * of its 4-tuple (remote = the client, local = the listener).
 */
static __always_inline void fast_add(struct bpf_sock_ops *skops, bool accepted)
{
	struct h2s_fast_key k = {};

	if (!fastpath_on() || sock_addrs(skops, &k.local, &k.remote) < 0)
		return;
	if (accepted) {
		struct h2s_tuple t = { .client = k.remote, .listener = k.local };

		if (!bpf_map_lookup_elem(&h2s_origins, &t))
			return;
	} else if (!(sock_flags(skops) & H2S_SOCK_F_CAPTURED)) {
		return;
	}
	if (bpf_sock_hash_update(skops, &h2s_fast, &k, BPF_NOEXIST) == 0) {
		__u8 one = 1;

		count(H2S_CNT_FAST_SOCKS);
		bpf_map_update_elem(&h2s_fast_live, &k, &one, BPF_ANY);
		/* Its first state change (a FIN either way) takes it off the fast path. */
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							 BPF_SOCK_OPS_STATE_CB_FLAG);
	}
}

static __always_inline void fast_forget(struct bpf_sock_ops *skops)
{
	struct h2s_fast_key k = {};

	if (sock_addrs(skops, &k.local, &k.remote) == 0)
		bpf_map_delete_elem(&h2s_fast_live, &k);
}

SEC("sockops")
int h2s_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;

	switch (op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB: /* source port is bound, SYN not sent yet */
		if (sock_flags(skops) & H2S_SOCK_F_UPSTREAM)
			watch_upstream(skops);
		else if (sock_flags(skops) & H2S_SOCK_F_DIRECT)
			count_direct(skops, 1);
		else
			record_origin(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: /* the SYN-ACK's RTT came by RTT_CB already */
		if (sock_flags(skops) & H2S_SOCK_F_UPSTREAM)
			note_upstream(skops, op);
		else
			fast_add(skops, false);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		fast_add(skops, true);
		break;
	case BPF_SOCK_OPS_RTT_CB:
	case BPF_SOCK_OPS_RETRANS_CB:
		/* We asked for these on upstream sockets only; another sockops program may have
		 * asked on others.
		 */
		if (!(sock_flags(skops) & H2S_SOCK_F_UPSTREAM))
			break;
		if (op == BPF_SOCK_OPS_RTT_CB)
			note_rtt(skops);
		else
			note_upstream(skops, op);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (skops->args[0] == BPF_TCP_ESTABLISHED)
			fast_forget(skops);
		if (skops->args[1] != BPF_TCP_CLOSE)
			break;
		if (sock_flags(skops) & H2S_SOCK_F_COUNTED)
			count_direct(skops, -1);
		else if (!(sock_flags(skops) & H2S_SOCK_F_UPSTREAM))
			forget_origin(skops);
		else if (skops->args[0] == BPF_TCP_SYN_SENT)
			note_upstream(skops, op); /* refused, or timed out */
		break;
	}
	return 1;
}

/* A message on one end of a captured connection goes straight into the other end's receive
 * queue. Nothing is parsed: bytes keep their order whatever the split. The peer is looked up
 * first (h2s_fast_live) because a redirect to a missing key is a drop, and on sk_msg a drop is
 * sticky (every later send fails with EACCES): without a peer the bytes take the normal TCP
 * path.
 */
SEC("sk_msg")
int h2s_fast_msg(struct sk_msg_md *msg)
{
	struct h2s_fast_key peer = {};
	int rc;

	/* The peer's key: our remote is its local. */
	CTX_ADDRS(msg, &peer.remote, &peer.local, rc);
	if (rc < 0)
		return SK_PASS;
	if (!bpf_map_lookup_elem(&h2s_fast_live, &peer))
		return SK_PASS;
	count(H2S_CNT_FAST_MSGS);
	return bpf_msg_redirect_hash(msg, &h2s_fast, &peer, BPF_F_INGRESS);
}
