/* test_capture.c — the kernel plane on real sockets: what is captured, what is left alone, what
 * the client sees, and what the daemon learns. BPF_PROG_TEST_RUN cannot run cgroup sock_addr or
 * sockops programs (-ENOTSUPP), so every test makes real connect()s from a child process.
 */
#include "addr.h"
#include "kernel.h"
#include "maps.h"

#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

TestSuite(capture, .init = ktest_setup, .fini = ktest_teardown, .timeout = 30);

static struct h2s_addr sa_addr(const struct sockaddr_storage *ss)
{
	struct h2s_addr a;

	cr_assert(h2s_addr_from_sockaddr((const struct sockaddr *)ss, &a) == 0);
	return a;
}

static int lookup_origin(const struct conn_report *rep, struct h2s_origin *o)
{
	struct h2s_tuple t;

	memset(&t, 0, sizeof(t));
	t.client = sa_addr(&rep->local);
	t.listener = kt.listen4;
	if (!h2s_addr_is_v4(&t.client))
		t.listener = kt.listen6;
	return bpf_map_lookup_elem(kt.l.maps.origins, &t, o);
}

Test(capture, managed_vip_from_cgroup_lands_on_daemon)
{
	struct conn_report rep;
	struct h2s_origin o;
	__u64 before = ktest_counter(H2S_CNT_CAPTURED);

	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_DAEMON);
	cr_assert_eq(rep.err, 0);
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), before + 1);
	/* The daemon's lookup: client 4-tuple -> the VIP it dialled, who dialled it. */
	cr_assert_eq(lookup_origin(&rep, &o), 0, "no origin record");
	cr_assert(h2s_addr_equal(&o.vip, &kt.svc4));
	cr_assert_eq(o.tgid, (__u32)rep.tgid);
	cr_assert_eq(o.cgroup_id, ktest_cgroup_id());
}

Test(capture, getpeername_returns_the_vip)
{
	struct conn_report rep;
	__u64 before = ktest_counter(H2S_CNT_PEERNAME);

	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_DAEMON);
	struct h2s_addr peer = sa_addr(&rep.peer);

	cr_assert(h2s_addr_equal(&peer, &kt.svc4), "getpeername did not return the VIP");
	cr_assert_gt(ktest_counter(H2S_CNT_PEERNAME), before);
}

Test(capture, dual_stack_socket_dialling_v4_mapped_vip)
{
	struct conn_report rep;
	struct h2s_origin o;

	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP | CL_DUAL_STACK, &rep), LANDED_DAEMON);
	cr_assert_eq(rep.peer.ss_family, AF_INET6);
	/* ::ffff:VIP, which our maps store as the same key as the IPv4 VIP. */
	struct h2s_addr peer = sa_addr(&rep.peer);

	cr_assert(h2s_addr_equal(&peer, &kt.svc4));
	cr_assert_eq(lookup_origin(&rep, &o), 0);
	cr_assert(h2s_addr_equal(&o.vip, &kt.svc4));
}

Test(capture, ipv6_vip_lands_on_ipv6_listener)
{
	struct conn_report rep;
	struct h2s_origin o;

	cr_assert_eq(ktest_connect(&kt.svc6, CL_IN_CGROUP, &rep), LANDED_DAEMON);
	struct h2s_addr peer = sa_addr(&rep.peer);

	cr_assert(h2s_addr_equal(&peer, &kt.svc6));
	cr_assert_eq(lookup_origin(&rep, &o), 0);
	cr_assert(h2s_addr_equal(&o.vip, &kt.svc6));
}

Test(capture, process_outside_the_cgroup_is_not_captured)
{
	struct conn_report rep;
	__u64 before = ktest_counter(H2S_CNT_CAPTURED);

	cr_assert_eq(ktest_connect(&kt.svc4, 0, &rep), LANDED_VIP);
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), before);
}

Test(capture, unmanaged_destination_is_not_touched)
{
	struct conn_report rep;
	struct h2s_addr other = kt.listen4; /* reachable, but not a service */

	cr_assert_eq(ktest_connect(&other, CL_IN_CGROUP, &rep), LANDED_DAEMON);
	struct h2s_addr peer = sa_addr(&rep.peer);

	cr_assert(h2s_addr_equal(&peer, &other));
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), 0);
	/* Same VIP address, another port: also unmanaged. */
	struct h2s_addr vip_other_port = kt.svc4;

	ktest_release();
	vip_other_port.port = kt.listen6.port;
	cr_assert_neq(ktest_connect(&vip_other_port, CL_IN_CGROUP, &rep), LANDED_DAEMON);
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), 0);
}

Test(capture, daemon_sockets_are_never_captured)
{
	struct conn_report rep;
	__u64 before = ktest_counter(H2S_CNT_SKIP_DAEMON);

	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP | CL_DAEMON_MARK, &rep), LANDED_VIP);
	cr_assert_eq(ktest_counter(H2S_CNT_SKIP_DAEMON), before + 1);
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), 0);
}

Test(capture, capture_off_fails_open)
{
	struct conn_report rep;

	ktest_capture_on(false);
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_VIP);
	cr_assert_eq(rep.err, 0);
	cr_assert_eq(ktest_counter(H2S_CNT_SKIP_NO_LISTENER), 1);
}

Test(capture, no_ipv6_listener_leaves_ipv6_vip_alone)
{
	struct conn_report rep;

	memset(&kt.l.maps.ctl_mem->listen6, 0, sizeof(kt.l.maps.ctl_mem->listen6));
	cr_assert_eq(ktest_connect(&kt.svc6, CL_IN_CGROUP, &rep), LANDED_VIP);
	/* IPv4 capture is unaffected. */
	ktest_release();
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_DAEMON);
}

Test(capture, udp_is_not_touched)
{
	struct conn_report rep;

	ktest_connect(&kt.svc4, CL_IN_CGROUP | CL_UDP, &rep);
	cr_assert_eq(rep.err, 0);
	struct h2s_addr peer = sa_addr(&rep.peer);

	cr_assert(h2s_addr_equal(&peer, &kt.svc4));
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), 0);
}

Test(capture, origin_record_removed_when_client_closes)
{
	struct conn_report rep;
	struct h2s_origin o;
	int tries = 0;

	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_DAEMON);
	cr_assert_eq(lookup_origin(&rep, &o), 0);
	ktest_release();
	/* Removed at the client socket's TCP_CLOSE (it may linger briefly in FIN states). */
	while (lookup_origin(&rep, &o) == 0 && tries++ < 100)
		usleep(20000);
	cr_assert_neq(lookup_origin(&rep, &o), 0, "origin record outlived the connection");
	cr_assert_geq(ktest_counter(H2S_CNT_ORIGIN_REMOVED), 1);
}

/* L4 fallback: no daemon accepting, the connect goes straight to one of the service's backends
 * (and the client still sees the VIP); never to a dead listener, never across families.
 */
Test(capture, dead_daemon_sends_connects_straight_to_a_backend)
{
	struct conn_report rep;

	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK;
	ktest_lb(&kt.svc4, &kt.back4, 1);
	ktest_daemon_gone(); /* killed: capture is still on, nothing listens */
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_BACKEND);
	cr_assert_eq(rep.err, 0);
	struct h2s_addr peer = sa_addr(&rep.peer);

	cr_assert(h2s_addr_equal(&peer, &kt.svc4), "getpeername must still say the VIP");
	cr_assert_eq(ktest_counter(H2S_CNT_NO_DAEMON), 1);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 1);
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), 0);
}

Test(capture, capture_off_with_fallback_goes_to_a_backend_ipv6_too)
{
	struct conn_report rep;

	ktest_capture_on(false); /* a daemon that stopped cleanly */
	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK;
	ktest_lb(&kt.svc6, &kt.back6, 1);
	cr_assert_eq(ktest_connect(&kt.svc6, CL_IN_CGROUP, &rep), LANDED_BACKEND);
	cr_assert_eq(rep.err, 0);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 1);
	cr_assert_eq(ktest_counter(H2S_CNT_NO_DAEMON), 0);
}

Test(capture, live_daemon_wins_over_the_fallback)
{
	struct conn_report rep;

	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK;
	ktest_lb(&kt.svc4, &kt.back4, 1);
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_DAEMON);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 0);
}

Test(capture, fallback_without_backends_or_flag_leaves_the_connect_alone)
{
	struct conn_report rep;

	ktest_daemon_gone();
	/* No slots published. */
	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK;
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_VIP);
	ktest_release();
	/* Slots, but the fallback is off (state not kept for it). */
	ktest_lb(&kt.svc4, &kt.back4, 1);
	kt.l.maps.ctl_mem->flags &= ~H2S_CTL_F_L4_FALLBACK;
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_VIP);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 0);
}

/* mode l4: straight to a backend while a daemon runs (or restarts: the fallback flag stays);
 * once it stopped for good (capture and fallback off), connects are left alone.
 */
Test(capture, mode_l4_goes_to_a_backend_until_the_daemon_stops_for_good)
{
	struct h2s_service l4 = { .algo = H2S_ALGO_ROUND_ROBIN, .mode = H2S_MODE_L4 };
	struct conn_report rep;

	cr_assert(h2s_service_set(&kt.l.maps, &kt.svc4, &l4) == 0);
	ktest_lb(&kt.svc4, &kt.back4, 1);
	kt.l.maps.ctl_mem->flags &= ~H2S_CTL_F_L4_FALLBACK;
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_BACKEND);
	ktest_release();
	ktest_capture_on(false);
	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK; /* a restart */
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_BACKEND);
	ktest_release();
	kt.l.maps.ctl_mem->flags &= ~H2S_CTL_F_L4_FALLBACK; /* stopped for good */
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_VIP);
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), 0);
}

Test(capture, fallback_never_crosses_address_families)
{
	struct conn_report rep;

	ktest_daemon_gone();
	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK;
	ktest_lb(&kt.svc6, &kt.back4, 1); /* an IPv4 backend behind an IPv6 VIP */
	cr_assert_eq(ktest_connect(&kt.svc6, CL_IN_CGROUP, &rep), LANDED_VIP);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 0);
}

Test(capture, fallback_spreads_connections_over_the_slots)
{
	struct h2s_addr slots[2] = { kt.back4, kt.svc4 }; /* the VIP's own listener as "backend 2" */
	struct conn_report rep;
	int hits[LANDED_BACKEND + 1] = { 0 };

	ktest_daemon_gone();
	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK;
	ktest_lb(&kt.svc4, slots, 2);
	for (int i = 0; i < 40; i++) {
		hits[ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep)]++;
		ktest_release();
	}
	/* Random pick: P(one of them gets fewer than 5 of 40) is about 2e-7. */
	cr_assert_geq(hits[LANDED_BACKEND], 5);
	cr_assert_geq(hits[LANDED_VIP], 5);
	cr_assert_eq(hits[LANDED_BACKEND] + hits[LANDED_VIP], 40);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 40);
}

/* A pod in its own network namespace: the daemon's loopback listener is not there, so its
 * connects are left alone (kube-proxy or whatever else handles the address there).
 */
Test(capture, connect_from_another_netns_is_left_alone)
{
	struct conn_report rep;

	ktest_daemon_netns();
	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK;
	ktest_lb(&kt.svc4, &kt.back4, 1);
	ktest_connect(&kt.svc4, CL_IN_CGROUP | CL_NEW_NETNS, &rep);
	cr_assert_eq(ktest_counter(H2S_CNT_SKIP_OTHER_NETNS), 1);
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), 0);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 0);
	/* Its lo is down: the connect went, untouched, nowhere. */
	cr_assert_eq(rep.err, ENETUNREACH, "connect: %s", strerror(rep.err));
	ktest_release();
	/* The daemon's own namespace is still captured. */
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_DAEMON);
}

/* The slots are trusted only while a daemon keeps them fresh: after fallback_ttl_ns without a
 * heartbeat (uninstalled, crash-looping) connects are left alone.
 */
Test(capture, fallback_expires_without_a_heartbeat)
{
	struct conn_report rep;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ktest_daemon_gone();
	kt.l.maps.ctl_mem->flags |= H2S_CTL_F_L4_FALLBACK;
	ktest_lb(&kt.svc4, &kt.back4, 1);
	/* Last heartbeat 1 ms ago, trusted for 1 µs. */
	kt.l.maps.ctl_mem->fallback_ttl_ns = 1000;
	kt.l.maps.ctl_mem->heartbeat_ns = (__u64)now.tv_sec * 1000000000ull +
					  (__u64)now.tv_nsec - 1000000;
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_VIP);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 0);
	ktest_release();
	/* Trusted for a minute. */
	kt.l.maps.ctl_mem->fallback_ttl_ns = 60ull * 1000000000ull;
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_BACKEND);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_FALLBACK), 1);
}
