/* test_kstats.c — what sockops keeps per backend: TCP's view of the daemon's connections in
 * h2s_be_kstats (RTT, connects, failed connects), and of no other socket; the connections the
 * hooks sent straight to it in h2s_l4_conns.
 */
#include "kernel.h"

#include "addr.h"
#include "maps.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <unistd.h>

TestSuite(kstats, .init = ktest_setup, .fini = ktest_teardown, .timeout = 30);

static bool kstats_of(const struct h2s_addr *be, struct h2s_be_kstats *ks)
{
	return h2s_be_kstats_get(&kt.l.maps, be, ks) == 0;
}

Test(kstats, upstream_connection_counts_its_connect_and_rtt)
{
	struct conn_report rep;
	struct h2s_be_kstats ks;

	cr_assert_eq(ktest_connect(&kt.back4, CL_IN_CGROUP | CL_UPSTREAM_MARK, &rep),
		     LANDED_BACKEND);
	cr_assert_eq(rep.err, 0);
	cr_assert(kstats_of(&kt.back4, &ks), "no stats for the backend");
	cr_assert_eq(ks.connects, 1);
	cr_assert_geq(ks.rtt_samples, 1, "the SYN-ACK gives one RTT sample");
	cr_assert_gt(ks.srtt_us, 0);
	cr_assert_lt(ks.srtt_us, 100000, "loopback RTT of %u us", ks.srtt_us);
	cr_assert_gt(ks.updated_ns, 0);
	cr_assert_eq(ks.connect_failures, 0);
	ktest_release();
}

Test(kstats, refused_upstream_connect_is_a_connect_failure)
{
	struct conn_report rep;
	struct h2s_be_kstats ks;
	struct h2s_addr closed;

	/* Port 1 on loopback: nothing listens there, the SYN gets a RST. */
	cr_assert(h2s_addr_parse("127.0.0.1:1", &closed, NULL, 0) == 0);
	ktest_connect(&closed, CL_IN_CGROUP | CL_UPSTREAM_MARK, &rep);
	cr_assert_eq(rep.err, ECONNREFUSED);
	ktest_release();
	cr_assert(kstats_of(&closed, &ks), "no stats for the refused backend");
	cr_assert_eq(ks.connect_failures, 1);
	cr_assert_eq(ks.connects, 0);
}

Test(kstats, other_sockets_leave_no_stats)
{
	struct conn_report rep;
	struct h2s_be_kstats ks;

	/* The daemon's non-upstream socket (DNS, say) and a plain client's: nothing kept. */
	cr_assert_eq(ktest_connect(&kt.back4, CL_IN_CGROUP | CL_DAEMON_MARK, &rep),
		     LANDED_BACKEND);
	ktest_release();
	cr_assert_eq(ktest_connect(&kt.back4, CL_IN_CGROUP, &rep), LANDED_BACKEND);
	ktest_release();
	cr_assert_not(kstats_of(&kt.back4, &ks));
}

/* mode l4: the hook sends the connect to a backend itself, and sockops counts it open in
 * h2s_l4_conns from connect to close (what the hook's two random choices compare).
 */
Test(kstats, mode_l4_connection_counted_open_until_closed)
{
	struct h2s_service svc = { .algo = H2S_ALGO_ROUND_ROBIN, .mode = H2S_MODE_L4 };
	struct conn_report rep;
	long long n = -1;

	cr_assert_eq(h2s_service_set(&kt.l.maps, &kt.svc4, &svc), 0);
	ktest_lb(&kt.svc4, &kt.back4, 1);
	cr_assert_eq(ktest_connect(&kt.svc4, CL_IN_CGROUP, &rep), LANDED_BACKEND,
		     "the daemon is up, yet an l4 service's connect goes to the backend");
	cr_assert_eq(h2s_l4_conns_get(&kt.l.maps, &kt.back4), 1);
	cr_assert_eq(ktest_counter(H2S_CNT_L4_MODE), 1);
	cr_assert_eq(ktest_counter(H2S_CNT_CAPTURED), 0);
	ktest_release();
	for (int i = 0; i < 100 && n != 0; i++, usleep(10000))
		n = h2s_l4_conns_get(&kt.l.maps, &kt.back4);
	cr_assert_eq(n, 0, "still %lld open after the close", n);
}
