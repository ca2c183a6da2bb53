/* test_decide.c — include/h2s_decide.h: what the connect hooks decide (which connects the
 * daemon takes and on which listener, when one goes straight to a backend, and which backend).
 */
#include "h2s_decide.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#define SEC_NS 1000000000ull
#define NOW_NS (3600 * SEC_NS) /* an hour after boot */

/* An h2s_addr from an IPv4 or IPv6 address in text and a port. */
static struct h2s_addr addr_at(const char *ip, uint16_t port)
{
	struct in_addr in4;
	struct in6_addr in6;
	struct h2s_addr a;
	__u32 w[4];

	if (inet_pton(AF_INET, ip, &in4) == 1) {
		h2s_addr_set4(&a, in4.s_addr, htons(port));
		return a;
	}
	cr_assert_eq(inet_pton(AF_INET6, ip, &in6), 1, "not an address: %s", ip);
	memcpy(w, in6.s6_addr, sizeof(w));
	h2s_addr_set6(&a, w[0], w[1], w[2], w[3], htons(port));
	return a;
}

static const struct h2s_service l7 = { .mode = H2S_MODE_L7 };
static const struct h2s_service l4 = { .mode = H2S_MODE_L4 };
static struct h2s_ctl ctl; /* a daemon accepting on both families, heartbeat 1 s ago, no fallback */
static struct h2s_pod pod; /* a pod that reaches it over both families */
static struct h2s_addr vip4, vip6;

static void setup(void)
{
	memset(&ctl, 0, sizeof(ctl));
	ctl.flags = H2S_CTL_F_CAPTURE;
	ctl.listen4 = addr_at("127.0.0.1", 15001);
	ctl.listen6 = addr_at("::1", 15001);
	ctl.heartbeat_ns = NOW_NS - SEC_NS;
	memset(&pod, 0, sizeof(pod));
	pod.to4 = addr_at("10.244.1.1", 15001);
	pod.to6 = addr_at("fd00:244:1::1", 15001);
	vip4 = addr_at("10.96.0.10", 50051);
	vip6 = addr_at("fd00:96::10", 50051);
}

TestSuite(decide, .init = setup);

/* ---- which service ---- */

Test(decide, backend_address_captured_for_a_service_that_asks)
{
	struct h2s_service svc = { .mode = H2S_MODE_L7, .flags = H2S_SVC_F_CAPTURE_BACKENDS };

	cr_assert(h2s_captures_backends(&svc));
}

Test(decide, backend_address_left_alone_unless_its_service_asks)
{
	cr_assert_not(h2s_captures_backends(&l7));
}

/* Going to a backend is what mode l4 does anyway. */
Test(decide, backend_address_of_a_mode_l4_service_left_alone)
{
	struct h2s_service svc = { .mode = H2S_MODE_L4, .flags = H2S_SVC_F_CAPTURE_BACKENDS };

	cr_assert_not(h2s_captures_backends(&svc));
}

/* h2s_be_vip still names a VIP whose service was removed. */
Test(decide, backend_address_of_a_removed_service_left_alone)
{
	cr_assert_not(h2s_captures_backends(NULL));
}

/* ---- which network namespace ---- */

Test(decide, every_netns_is_the_daemons_while_its_own_is_unknown)
{
	cr_assert(h2s_daemon_netns(&ctl, 0));
	cr_assert(h2s_daemon_netns(&ctl, 4242));
}

Test(decide, daemon_netns_known_by_its_cookie)
{
	ctl.netns_cookie = 4242;
	cr_assert(h2s_daemon_netns(&ctl, 4242));
	cr_assert_not(h2s_daemon_netns(&ctl, 4243));
}

/* ---- which daemon listener ---- */

Test(decide, ipv4_destination_goes_to_the_ipv4_listener)
{
	cr_assert_eq(h2s_listener(&ctl, &l7, NULL, &vip4, NOW_NS), &ctl.listen4);
}

Test(decide, ipv6_destination_goes_to_the_ipv6_listener)
{
	cr_assert_eq(h2s_listener(&ctl, &l7, NULL, &vip6, NOW_NS), &ctl.listen6);
}

Test(decide, no_listener_of_the_family_takes_nothing)
{
	ctl.listen6.port = 0;
	cr_assert_null(h2s_listener(&ctl, &l7, NULL, &vip6, NOW_NS));
	cr_assert_eq(h2s_listener(&ctl, &l7, NULL, &vip4, NOW_NS), &ctl.listen4);
}

Test(decide, capture_off_takes_nothing)
{
	ctl.flags = H2S_CTL_F_L4_FALLBACK;
	cr_assert_null(h2s_listener(&ctl, &l7, NULL, &vip4, NOW_NS));
	cr_assert_null(h2s_listener(&ctl, &l7, &pod, &vip4, NOW_NS));
}

Test(decide, mode_l4_service_never_goes_to_the_daemon)
{
	cr_assert_null(h2s_listener(&ctl, &l4, NULL, &vip4, NOW_NS));
	cr_assert_null(h2s_listener(&ctl, &l4, &pod, &vip4, NOW_NS));
}

Test(decide, pod_connect_goes_to_its_gateway_listener)
{
	cr_assert_eq(h2s_listener(&ctl, &l7, &pod, &vip4, NOW_NS), &pod.to4);
	cr_assert_eq(h2s_listener(&ctl, &l7, &pod, &vip6, NOW_NS), &pod.to6);
}

Test(decide, pod_without_a_listener_of_the_family_takes_nothing)
{
	pod.to6.port = 0;
	cr_assert_null(h2s_listener(&ctl, &l7, &pod, &vip6, NOW_NS));
	cr_assert_eq(h2s_listener(&ctl, &l7, &pod, &vip4, NOW_NS), &pod.to4);
}

Test(decide, pod_daemon_counts_as_gone_once_its_heartbeat_is_stale)
{
	ctl.heartbeat_ns = NOW_NS - H2S_POD_DAEMON_STALE_NS;
	cr_assert_eq(h2s_listener(&ctl, &l7, &pod, &vip4, NOW_NS), &pod.to4);
	cr_assert_null(h2s_listener(&ctl, &l7, &pod, &vip4, NOW_NS + 1));
}

/* In its own namespace the daemon's socket is looked up instead: a missed heartbeat (a busy
 * daemon) must not stop the capture there.
 */
Test(decide, daemon_namespace_ignores_the_heartbeat)
{
	ctl.heartbeat_ns = NOW_NS - 10 * H2S_POD_DAEMON_STALE_NS;
	cr_assert_eq(h2s_listener(&ctl, &l7, NULL, &vip4, NOW_NS), &ctl.listen4);
}

/* ---- straight to a backend, or left alone ---- */

Test(decide, no_direct_connect_without_the_fallback)
{
	cr_assert_not(h2s_l4_allowed(&ctl, &l7, NOW_NS)); /* capture on: the daemon's job */
	ctl.flags = 0;                                      /* daemon stopped for good */
	cr_assert_not(h2s_l4_allowed(&ctl, &l7, NOW_NS));
}

Test(decide, fallback_sends_connects_to_a_backend_when_no_daemon_accepts)
{
	ctl.flags = H2S_CTL_F_L4_FALLBACK; /* stopped for a restart */
	cr_assert(h2s_l4_allowed(&ctl, &l7, NOW_NS));
	ctl.flags = H2S_CTL_F_CAPTURE | H2S_CTL_F_L4_FALLBACK; /* killed: the caller found no socket */
	cr_assert(h2s_l4_allowed(&ctl, &l7, NOW_NS));
}

Test(decide, mode_l4_goes_direct_until_the_daemon_stops_for_good)
{
	cr_assert(h2s_l4_allowed(&ctl, &l4, NOW_NS));
	ctl.flags = H2S_CTL_F_L4_FALLBACK;
	cr_assert(h2s_l4_allowed(&ctl, &l4, NOW_NS));
	ctl.flags = 0;
	cr_assert_not(h2s_l4_allowed(&ctl, &l4, NOW_NS));
}

Test(decide, direct_connects_stop_once_the_heartbeat_is_older_than_the_ttl)
{
	ctl.flags = H2S_CTL_F_CAPTURE | H2S_CTL_F_L4_FALLBACK;
	ctl.fallback_ttl_ns = 30 * SEC_NS;
	ctl.heartbeat_ns = NOW_NS - 30 * SEC_NS;
	cr_assert(h2s_l4_allowed(&ctl, &l7, NOW_NS));
	cr_assert(h2s_l4_allowed(&ctl, &l4, NOW_NS));
	cr_assert_not(h2s_l4_allowed(&ctl, &l7, NOW_NS + 1));
	cr_assert_not(h2s_l4_allowed(&ctl, &l4, NOW_NS + 1));
}

Test(decide, zero_ttl_trusts_the_slots_forever)
{
	ctl.flags = H2S_CTL_F_L4_FALLBACK;
	ctl.heartbeat_ns = 0;
	cr_assert(h2s_l4_allowed(&ctl, &l7, NOW_NS));
}

/* ---- which backend ---- */

/* Slots for the given backends, one each. */
static void lb_fill(struct h2s_lb *lb, const struct h2s_addr *backends, __u32 n)
{
	memset(lb, 0, sizeof(*lb));
	lb->n = n;
	memcpy(lb->slot, backends, n * sizeof(*backends));
}

Test(decide, no_slots_entry_no_candidates)
{
	const struct h2s_addr *a, *b;

	cr_assert_not(h2s_l4_candidates(NULL, 0, 0, &a, &b));
}

Test(decide, empty_slots_no_candidates)
{
	struct h2s_lb lb = { .n = 0 };
	const struct h2s_addr *a, *b;

	cr_assert_not(h2s_l4_candidates(&lb, 7, 9, &a, &b));
}

/* A count the array cannot hold (a damaged or foreign entry) is not trusted at all. */
Test(decide, slot_count_beyond_the_array_no_candidates)
{
	struct h2s_lb lb = { .n = H2S_LB_SLOTS_MAX + 1 };
	const struct h2s_addr *a, *b;

	cr_assert_not(h2s_l4_candidates(&lb, 0, 0, &a, &b));
	lb.n = H2S_LB_SLOTS_MAX;
	cr_assert(h2s_l4_candidates(&lb, H2S_LB_SLOTS_MAX - 1, H2S_LB_SLOTS_MAX, &a, &b));
	cr_assert_eq(a, &lb.slot[H2S_LB_SLOTS_MAX - 1]);
	cr_assert_eq(b, &lb.slot[0]);
}

Test(decide, candidates_are_the_draws_modulo_the_count)
{
	struct h2s_addr be[5];
	struct h2s_lb lb;
	const struct h2s_addr *a, *b;

	for (int i = 0; i < 5; i++)
		be[i] = addr_at("10.244.2.7", (uint16_t)(50051 + i));
	lb_fill(&lb, be, 5);
	cr_assert(h2s_l4_candidates(&lb, 7, 13, &a, &b));
	cr_assert_eq(a, &lb.slot[2]);
	cr_assert_eq(b, &lb.slot[3]);
	cr_assert(h2s_l4_candidates(&lb, UINT32_MAX, 5, &a, &b));
	cr_assert_eq(a, &lb.slot[UINT32_MAX % 5]);
	cr_assert_eq(b, &lb.slot[0]);
}

Test(decide, p2c_prefers_the_backend_with_fewer_connections)
{
	struct h2s_addr x = addr_at("10.244.2.7", 50051), y = addr_at("10.244.3.9", 50051);

	cr_assert_eq(h2s_l4_choose(&vip4, &x, 5, &y, 2), &y);
	cr_assert_eq(h2s_l4_choose(&vip4, &x, 2, &y, 5), &x);
}

Test(decide, p2c_tie_keeps_the_first_candidate)
{
	struct h2s_addr x = addr_at("10.244.2.7", 50051), y = addr_at("10.244.3.9", 50051);

	cr_assert_eq(h2s_l4_choose(&vip4, &x, 3, &y, 3), &x);
}

/* The socket could not reach it: better the VIP, untouched. */
Test(decide, pick_never_crosses_address_families)
{
	struct h2s_addr be4 = addr_at("10.244.2.7", 50051), be6 = addr_at("fd00:244:2::7", 50051);

	cr_assert_null(h2s_l4_choose(&vip4, &be6, 0, &be6, 0));
	cr_assert_null(h2s_l4_choose(&vip6, &be4, 0, &be4, 0));
	cr_assert_eq(h2s_l4_choose(&vip6, &be6, 0, &be6, 0), &be6);
}

/* The whole way of a connect to a mode l4 service, as the hook takes it. */
Test(decide, mode_l4_service_connects_to_the_less_loaded_backend)
{
	struct h2s_addr be[2] = { addr_at("10.244.2.7", 50051), addr_at("10.244.3.9", 50051) };
	struct h2s_lb lb;
	const struct h2s_addr *a, *b;

	lb_fill(&lb, be, 2);
	cr_assert_null(h2s_listener(&ctl, &l4, NULL, &vip4, NOW_NS));
	cr_assert(h2s_l4_allowed(&ctl, &l4, NOW_NS));
	cr_assert(h2s_l4_candidates(&lb, 0, 1, &a, &b));
	cr_assert_eq(h2s_l4_choose(&vip4, a, 4, b, 1), &lb.slot[1]);
	cr_assert_eq(h2s_redirect_counter(&l4, NULL, true), H2S_CNT_L4_MODE);
}

/* ---- what it counts as ---- */

Test(decide, redirects_counted_by_kind)
{
	cr_assert_eq(h2s_redirect_counter(&l7, NULL, false), H2S_CNT_CAPTURED);
	cr_assert_eq(h2s_redirect_counter(&l7, &pod, false), H2S_CNT_CAPTURED_POD);
	cr_assert_eq(h2s_redirect_counter(&l7, NULL, true), H2S_CNT_L4_FALLBACK);
	cr_assert_eq(h2s_redirect_counter(&l7, &pod, true), H2S_CNT_L4_FALLBACK);
	cr_assert_eq(h2s_redirect_counter(&l4, NULL, true), H2S_CNT_L4_MODE);
	cr_assert_eq(h2s_redirect_counter(&l4, &pod, true), H2S_CNT_L4_MODE);
}
