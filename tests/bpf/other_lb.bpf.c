// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* other_lb.bpf.c — a stand-in, for the coexistence test, for another connect-time load
 * balancer (Cilium's socket LB, a kube-proxy replacement): at connect() it rewrites a service
 * address to one backend, per connection. Attached to the client's own cgroup, below the one
 * h2steer attaches to, it runs first: h2steer's hook then sees the backend's address.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* IPv4 address and port, network order, as connect4 sees them. */
struct other_lb_addr {
	__u32 ip;
	__u16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct other_lb_addr);
	__type(value, struct other_lb_addr);
} other_lb_nat SEC(".maps");

SEC("cgroup/connect4")
int other_lb_connect4(struct bpf_sock_addr *ctx)
{
	struct other_lb_addr k = { .ip = ctx->user_ip4, .port = (__u16)ctx->user_port };
	struct other_lb_addr *to = bpf_map_lookup_elem(&other_lb_nat, &k);

	if (to) {
		ctx->user_ip4 = to->ip;
		ctx->user_port = to->port;
	}
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
