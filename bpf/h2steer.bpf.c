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
 * Every error path leaves the connection as the client asked for it (fail open).
 */
#include "h2s_maps.bpf.h"
#include "h2s_addr.h"

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

/* The daemon's listener for this destination, or NULL when nothing should be captured. */
static __always_inline const struct h2s_addr *listener_for(const struct h2s_addr *dst)
{
	__u32 zero = 0;
	const struct h2s_ctl *ctl = bpf_map_lookup_elem(&h2s_ctl, &zero);
	const struct h2s_addr *l;

	if (!ctl || !(ctl->flags & H2S_CTL_F_CAPTURE))
		return NULL;
	l = h2s_addr_is_v4(dst) ? &ctl->listen4 : &ctl->listen6;
	return l->port ? l : NULL;
}

/* A connect() from a network namespace other than the daemon's (a pod's own): neither the
 * daemon's listeners nor, necessarily, the backends' addresses are reachable from there.
 */
static __always_inline bool other_netns(struct bpf_sock_addr *ctx)
{
	__u32 zero = 0;
	const struct h2s_ctl *ctl = bpf_map_lookup_elem(&h2s_ctl, &zero);

	return ctl && ctl->netns_cookie && bpf_get_netns_cookie(ctx) != ctl->netns_cookie;
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

/* With no daemon accepting: one of the service's usable backends, picked at random from its
 * slots (weighted, same family as the VIP). NULL: none, or the fallback is off or expired.
 */
static __always_inline const struct h2s_addr *l4_pick(const struct h2s_addr *dst)
{
	__u32 zero = 0, i;
	const struct h2s_ctl *ctl = bpf_map_lookup_elem(&h2s_ctl, &zero);
	const struct h2s_lb *lb;

	if (!ctl || !(ctl->flags & H2S_CTL_F_L4_FALLBACK))
		return NULL;
	/* No daemon has kept the slots fresh for that long (uninstalled, crash-looping): the
	 * backends may be long gone, so leave the connect alone.
	 */
	if (ctl->fallback_ttl_ns && bpf_ktime_get_ns() - ctl->heartbeat_ns > ctl->fallback_ttl_ns)
		return NULL;
	lb = bpf_map_lookup_elem(&h2s_lb, dst);
	if (!lb || !lb->n || lb->n > H2S_LB_SLOTS_MAX)
		return NULL;
	i = bpf_get_prandom_u32() % lb->n;
	if (i >= H2S_LB_SLOTS_MAX)
		return NULL;
	/* The daemon lists only the VIP's family; an IPv4 socket cannot reach an IPv6 backend. */
	if (h2s_addr_is_v4(&lb->slot[i]) != h2s_addr_is_v4(dst))
		return NULL;
	return &lb->slot[i];
}

/* Decide whether a connect() to *dst is captured; on success *to is where it must go instead:
 * the daemon's listener, or (no daemon accepting) a backend. Returns 0 when redirected, a
 * negative errno when the connection must proceed untouched.
 */
static __always_inline int capture(struct bpf_sock_addr *ctx, const struct h2s_addr *dst,
				   struct h2s_addr *to)
{
	const struct h2s_addr *l;
	struct h2s_sock *st;
	struct bpf_sock *sk;
	bool direct = false;

	if (ctx->type != SOCK_STREAM)
		return -EPROTOTYPE;
	if (!bpf_map_lookup_elem(&h2s_services, dst))
		return -ENOENT;
	if (other_netns(ctx)) {
		count(H2S_CNT_SKIP_OTHER_NETNS);
		return -EXDEV;
	}
	l = listener_for(dst);
	if (l && !listener_alive(ctx, l)) {
		count(H2S_CNT_NO_DAEMON);
		l = NULL;
	}
	if (!l) {
		l = l4_pick(dst);
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
	st->vip = *dst;
	/* Either way the client keeps seeing the VIP as its peer; only a connection to the
	 * daemon needs an origin record.
	 */
	st->flags |= direct ? H2S_SOCK_F_DIRECT : H2S_SOCK_F_CAPTURED;
	st->tgid = bpf_get_current_pid_tgid() >> 32;
	st->cgroup_id = bpf_get_current_cgroup_id();
	*to = *l;
	count(direct ? H2S_CNT_L4_FALLBACK : H2S_CNT_CAPTURED);
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
	 * and listener_for() picks the IPv4 listener, which the socket reaches v4-mapped as well.
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

/* The socket's local and remote addresses (either may be NULL). */
static __always_inline int sock_addrs(struct bpf_sock_ops *skops, struct h2s_addr *local,
				      struct h2s_addr *remote)
{
	__u32 l[4], r[4], lport, rport, family;

	CTX_LOAD(family, skops->family);
	CTX_LOAD(lport, skops->local_port);
	CTX_LOAD(rport, skops->remote_port);
	if (family == AF_INET) {
		CTX_LOAD(l[0], skops->local_ip4);
		CTX_LOAD(r[0], skops->remote_ip4);
		if (local)
			h2s_addr_set4(local, l[0], h2s_sockops_local_port(lport));
		if (remote)
			h2s_addr_set4(remote, r[0], h2s_sockops_remote_port(rport));
	} else if (family == AF_INET6) {
		CTX_LOAD(l[0], skops->local_ip6[0]);
		CTX_LOAD(l[1], skops->local_ip6[1]);
		CTX_LOAD(l[2], skops->local_ip6[2]);
		CTX_LOAD(l[3], skops->local_ip6[3]);
		CTX_LOAD(r[0], skops->remote_ip6[0]);
		CTX_LOAD(r[1], skops->remote_ip6[1]);
		CTX_LOAD(r[2], skops->remote_ip6[2]);
		CTX_LOAD(r[3], skops->remote_ip6[3]);
		if (local)
			h2s_addr_set6(local, l[0], l[1], l[2], l[3], h2s_sockops_local_port(lport));
		if (remote)
			h2s_addr_set6(remote, r[0], r[1], r[2], r[3], h2s_sockops_remote_port(rport));
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
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

SEC("sockops")
int h2s_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;

	switch (op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB: /* source port is bound, SYN not sent yet */
		if (sock_flags(skops) & H2S_SOCK_F_UPSTREAM)
			watch_upstream(skops);
		else
			record_origin(skops);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB: /* the SYN-ACK's RTT came by RTT_CB already */
		if (sock_flags(skops) & H2S_SOCK_F_UPSTREAM)
			note_upstream(skops, op);
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
		if (skops->args[1] != BPF_TCP_CLOSE)
			break;
		if (!(sock_flags(skops) & H2S_SOCK_F_UPSTREAM))
			forget_origin(skops);
		else if (skops->args[0] == BPF_TCP_SYN_SENT)
			note_upstream(skops, op); /* refused, or timed out */
		break;
	}
	return 1;
}
