/* test_kstats.c — sockops keeps TCP's view of the daemon's connections to backends in
 * h2s_be_kstats (RTT, connects, failed connects), and of no other socket.
 */
#include "kernel.h"

#include "addr.h"
#include "maps.h"

#include <criterion/criterion.h>
#include <errno.h>

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
