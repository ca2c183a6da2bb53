/* test_stats.c — the daemon's counters: find-or-create per service, (service, backend) pair and
 * backend (found once, then updated through the pointer, so two lookups of one key must agree),
 * the per-RPC update (status label and latency histogram, whose bucket edges are what Prometheus
 * reads as `le`), and freeing every table (LSan reports what h2s_stats_free misses).
 */
#include "unit.h"

#include "clock.h"
#include "stats.h"

#include <sanitizer/lsan_interface.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Entries of one table (s->svc, s->pair or s->be), counted the way the renderers walk them. */
#define COUNT(table)                            \
	({                                      \
		__typeof__((table)[0]) e_;      \
		unsigned n_ = 0;                \
		h2s_stats_each(e_, table)       \
			n_++;                   \
		n_;                             \
	})

static struct h2s_svc_stats *svc_of(struct h2s_stats *s, const char *addr)
{
	struct h2s_addr a = addr_of(addr);
	struct h2s_svc_stats *e = h2s_stats_service(s, &a);

	cr_assert_not_null(e);
	return e;
}

static struct h2s_pair_stats *pair_of(struct h2s_stats *s, const char *vip, const char *be)
{
	struct h2s_addr v = addr_of(vip), b = addr_of(be);
	struct h2s_pair_stats *e = h2s_stats_pair(s, &v, &b);

	cr_assert_not_null(e);
	return e;
}

static struct h2s_be_stats *be_of(struct h2s_stats *s, const char *addr)
{
	struct h2s_addr a = addr_of(addr);
	struct h2s_be_stats *e = h2s_stats_backend(s, &a);

	cr_assert_not_null(e);
	return e;
}

/* ---- find or create ---- */

Test(stats_service, same_key_same_entry_with_its_name)
{
	struct h2s_stats s = { 0 };
	struct h2s_svc_stats *a = svc_of(&s, "10.0.0.1:80");
	struct h2s_addr want = addr_of("10.0.0.1:80");

	cr_assert_eq(svc_of(&s, "10.0.0.1:80"), a);
	cr_assert(h2s_addr_equal(&a->vip, &want));
	cr_assert_str_eq(a->name, "10.0.0.1:80");
	cr_assert_eq(a->lat.count, 0, "a new entry starts at zero");
	cr_assert_eq(COUNT(s.svc), 1);
	h2s_stats_free(&s);
}

/* Another port, another address, IPv6: each its own entry. A v4-mapped IPv6 address is the IPv4
 * address (one key), and is named as such.
 */
Test(stats_service, keys_that_differ_get_their_own_entries)
{
	struct h2s_stats s = { 0 };
	struct h2s_svc_stats *v4 = svc_of(&s, "10.0.0.1:80");
	struct h2s_svc_stats *port = svc_of(&s, "10.0.0.1:81");
	struct h2s_svc_stats *other = svc_of(&s, "10.0.0.2:80");
	struct h2s_svc_stats *v6 = svc_of(&s, "[fd00::1]:80");
	struct h2s_svc_stats *lo6 = svc_of(&s, "[::1]:80");

	cr_assert_neq(v4, port);
	cr_assert_neq(v4, other);
	cr_assert_neq(v4, v6);
	cr_assert_neq(v6, lo6);
	cr_assert_str_eq(v6->name, "[fd00::1]:80");
	cr_assert_eq(svc_of(&s, "[::ffff:10.0.0.1]:80"), v4);
	cr_assert_eq(svc_of(&s, "[fd00:0:0::1]:80"), v6);
	cr_assert_eq(COUNT(s.svc), 5);
	h2s_stats_free(&s);
}

/* A pair links to its service's entry (creating it), so its RPCs land in that histogram. */
Test(stats_pair, creates_and_links_its_service)
{
	struct h2s_stats s = { 0 };
	struct h2s_pair_stats *p = pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080");
	struct h2s_addr be = addr_of("192.168.1.1:8080");

	cr_assert_eq(COUNT(s.svc), 1);
	cr_assert_eq(p->svc, svc_of(&s, "10.0.0.1:80"));
	cr_assert(h2s_addr_equal(&p->be, &be));
	cr_assert_eq(pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080"), p);
	cr_assert_eq(COUNT(s.pair), 1);
	cr_assert_eq(COUNT(s.be), 0, "a pair is not a backend entry");
	h2s_stats_free(&s);
}

Test(stats_pair, either_half_of_the_key_makes_a_new_pair)
{
	struct h2s_stats s = { 0 };
	struct h2s_pair_stats *p = pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080");
	struct h2s_pair_stats *other_be = pair_of(&s, "10.0.0.1:80", "192.168.1.2:8080");
	struct h2s_pair_stats *other_vip = pair_of(&s, "10.0.0.2:80", "192.168.1.1:8080");
	struct h2s_pair_stats *swapped = pair_of(&s, "192.168.1.1:8080", "10.0.0.1:80");
	struct h2s_pair_stats *v6 = pair_of(&s, "[fd00::1]:80", "[fd00::2]:8080");

	cr_assert_neq(p, other_be);
	cr_assert_neq(p, other_vip);
	cr_assert_neq(p, swapped);
	cr_assert_neq(p, v6);
	cr_assert_eq(other_be->svc, p->svc, "same service, one service entry");
	cr_assert_neq(other_vip->svc, p->svc);
	cr_assert_eq(COUNT(s.pair), 5);
	cr_assert_eq(COUNT(s.svc), 4);
	h2s_stats_free(&s);
}

/* An RPC that never reached a backend is counted against the all-zero backend address. */
Test(stats_pair, no_backend_is_a_key_of_its_own)
{
	struct h2s_stats s = { 0 };
	struct h2s_addr vip = addr_of("10.0.0.1:80"), none = { 0 };
	struct h2s_pair_stats *p = h2s_stats_pair(&s, &vip, &none);

	cr_assert_not_null(p);
	cr_assert_eq(h2s_stats_pair(&s, &vip, &none), p);
	cr_assert_neq(pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080"), p);
	cr_assert_eq(p->be.port, 0);
	h2s_stats_free(&s);
}

/* Backends have a table of their own: the same address as a service is another entry. */
Test(stats_backend, find_or_create)
{
	struct h2s_stats s = { 0 };
	struct h2s_be_stats *b = be_of(&s, "192.168.1.1:8080");
	struct h2s_be_stats *b6 = be_of(&s, "[fd00::2]:8080");

	cr_assert_eq(be_of(&s, "192.168.1.1:8080"), b);
	cr_assert_neq(be_of(&s, "192.168.1.1:8081"), b);
	cr_assert_neq(b6, b);
	cr_assert_str_eq(b->name, "192.168.1.1:8080");
	cr_assert_str_eq(b6->name, "[fd00::2]:8080");
	cr_assert_neq((void *)svc_of(&s, "192.168.1.1:8080"), (void *)b);
	cr_assert_eq(COUNT(s.be), 3);
	cr_assert_eq(COUNT(s.svc), 1);
	h2s_stats_free(&s);
}

/* Far more keys than hash buckets, in every table: chains hold several entries, and a lookup
 * must match the whole key (for a pair: both halves, here all of one service) to find each one
 * again.
 */
Test(stats_tables, many_keys_share_buckets)
{
	struct h2s_stats s = { 0 };
	static struct {
		struct h2s_svc_stats *svc;
		struct h2s_pair_stats *pair;
		struct h2s_be_stats *be;
	} e[1000];
	char key[32];

	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < ARRAY_LEN(e); i++) {
			struct h2s_addr want;

			snprintf(key, sizeof(key), "192.168.%u.%u:%u", i / 250, i % 250,
				 8080 + i % 7);
			if (!pass) {
				e[i].svc = svc_of(&s, key);
				e[i].pair = pair_of(&s, "10.0.0.1:80", key);
				e[i].be = be_of(&s, key);
				continue;
			}
			want = addr_of(key);
			cr_assert_eq(svc_of(&s, key), e[i].svc, "%s: another service", key);
			cr_assert_eq(pair_of(&s, "10.0.0.1:80", key), e[i].pair, "%s: another pair",
				     key);
			cr_assert_eq(be_of(&s, key), e[i].be, "%s: another backend", key);
			cr_assert_str_eq(e[i].svc->name, key);
			cr_assert_str_eq(e[i].be->name, key);
			cr_assert(h2s_addr_equal(&e[i].pair->be, &want));
		}
	}
	cr_assert_eq(COUNT(s.svc), ARRAY_LEN(e) + 1, "and the pairs' service");
	cr_assert_eq(COUNT(s.pair), ARRAY_LEN(e));
	cr_assert_eq(COUNT(s.be), ARRAY_LEN(e));
	h2s_stats_free(&s);
}

/* ---- h2s_stats_rpc ---- */

/* The next double above a positive finite x (nextafter() without libm, which the unit tests do
 * not link): for those, the bit patterns order like the values.
 */
static double next_above(double x)
{
	uint64_t bits;

	memcpy(&bits, &x, sizeof(bits));
	bits++;
	memcpy(&x, &bits, sizeof(x));
	return x;
}

Test(stats_rpc, counts_each_status_under_its_label)
{
	struct h2s_stats s = { 0 };
	struct h2s_pair_stats *p = pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080");

	h2s_stats_rpc(p, NULL, 0, 0.001);
	h2s_stats_rpc(p, NULL, 0, 0.001);
	h2s_stats_rpc(p, NULL, 14, 0.001);
	h2s_stats_rpc(p, NULL, 16, 0.001);
	h2s_stats_rpc(p, NULL, H2S_RPC_RESET, 0.001);
	h2s_stats_rpc(p, NULL, H2S_RPC_NONE, 0.001);
	cr_assert_eq(p->rpcs[0], 2);
	cr_assert_eq(p->rpcs[14], 1);
	cr_assert_eq(p->rpcs[16], 1);
	cr_assert_eq(p->rpcs[H2S_RPC_RESET], 1);
	cr_assert_eq(p->rpcs[H2S_RPC_NONE], 1);
	cr_assert_eq(p->rpcs[1], 0);
	cr_assert_eq(p->svc->lat.count, 6, "every RPC is in the service's histogram");
	h2s_stats_free(&s);
}

/* A status outside the label set (a bogus grpc-status) is counted as "none", never out of
 * bounds.
 */
Test(stats_rpc, out_of_range_status_counts_as_none)
{
	struct h2s_stats s = { 0 };
	struct h2s_pair_stats *p = pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080");
	uint64_t total = 0;

	h2s_stats_rpc(p, NULL, -1, 0.001);
	h2s_stats_rpc(p, NULL, H2S_RPC__COUNT, 0.001);
	h2s_stats_rpc(p, NULL, 1000, 0.001);
	cr_assert_eq(p->rpcs[H2S_RPC_NONE], 3);
	for (int i = 0; i < H2S_RPC__COUNT; i++)
		total += p->rpcs[i];
	cr_assert_eq(total, 3);
	h2s_stats_free(&s);
}

/* Prometheus buckets are "less than or equal": a duration exactly on a bound belongs to that
 * bound's bucket, the next representable double above it to the next one; above the last bound
 * is +Inf. Buckets are stored non-cumulative, one RPC in exactly one bucket.
 */
Test(stats_rpc, latency_bucket_edges_follow_the_bounds)
{
	for (int i = 0; i < H2S_LAT_BUCKETS; i++) {
		double at = h2s_lat_bounds[i], above = next_above(at);
		struct h2s_pair_stats p = { 0 };
		struct h2s_svc_stats svc = { 0 };

		p.svc = &svc;
		h2s_stats_rpc(&p, NULL, 0, at);
		cr_assert_eq(svc.lat.bucket[i], 1, "%g went to another bucket than le=%g", at, at);
		h2s_stats_rpc(&p, NULL, 0, above);
		cr_assert_eq(svc.lat.bucket[i + 1], 1, "%.17g did not go above le=%g", above, at);
		cr_assert_eq(svc.lat.count, 2);
		for (int b = 0; b <= H2S_LAT_BUCKETS; b++)
			if (b != i && b != i + 1)
				cr_assert_eq(svc.lat.bucket[b], 0, "bound %d: bucket %d counted", i,
					     b);
	}
}

Test(stats_rpc, latency_extremes_and_sum)
{
	struct h2s_stats s = { 0 };
	struct h2s_pair_stats *p = pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080");
	struct h2s_svc_stats *svc = p->svc;

	h2s_stats_rpc(p, NULL, 0, 0.0);
	h2s_stats_rpc(p, NULL, 0, 3600.0);
	h2s_stats_rpc(p, NULL, 0, 0.3);
	cr_assert_eq(svc->lat.bucket[0], 1, "0 s is in the first bucket");
	cr_assert_eq(svc->lat.bucket[H2S_LAT_BUCKETS], 1, "an hour is only in +Inf");
	cr_assert_eq(svc->lat.bucket[9], 1, "0.3 s is in le=0.5"); /* 0.25 < 0.3 <= 0.5 */
	cr_assert_float_eq(h2s_lat_bounds[9], 0.5, 0);
	cr_assert_eq(svc->lat.count, 3);
	cr_assert_float_eq(svc->lat.sum, 3600.3, 1e-9);
	h2s_stats_free(&s);
}

/* The bounds are what /metrics prints as `le`: strictly increasing, or a bucket is empty. */
Test(stats_rpc, bounds_increase)
{
	cr_assert_gt(h2s_lat_bounds[0], 0);
	for (int i = 1; i < H2S_LAT_BUCKETS; i++)
		cr_assert_gt(h2s_lat_bounds[i], h2s_lat_bounds[i - 1], "bound %d", i);
}

/* A pair whose service entry could not be allocated still counts its statuses. */
Test(stats_rpc, pair_without_service_counts_status_only)
{
	struct h2s_pair_stats p = { 0 };

	h2s_stats_rpc(&p, NULL, 5, 0.01);
	cr_assert_eq(p.rpcs[5], 1);
}

/* ---- labels, clock, free ---- */

Test(stats_label, every_index_and_out_of_range)
{
	char want[12];

	for (int i = 0; i <= 16; i++) {
		snprintf(want, sizeof(want), "%d", i);
		cr_assert_str_eq(h2s_rpc_status_label(i), want);
	}
	cr_assert_str_eq(h2s_rpc_status_label(H2S_RPC_RESET), "reset");
	cr_assert_str_eq(h2s_rpc_status_label(H2S_RPC_NONE), "none");
	cr_assert_str_eq(h2s_rpc_status_label(-1), "none");
	cr_assert_str_eq(h2s_rpc_status_label(H2S_RPC__COUNT), "none");
}

Test(stats_clock, unix_now_is_wall_clock_seconds)
{
	time_t before = time(NULL);
	double now = h2s_unix_now();
	time_t after = time(NULL);

	cr_assert_geq(now, (double)before);
	cr_assert_lt(now, (double)after + 1);
}

/* Every table is emptied and every entry freed, and the stats are usable again. The leak check
 * runs here rather than at exit: an LSan report at exit is printed but does not reliably fail the
 * test that leaked under Criterion.
 */
Test(stats_free, frees_every_table)
{
	struct h2s_stats s = { 0 };

	for (int i = 0; i < 300; i++) {
		char vip[32], be[32];

		snprintf(vip, sizeof(vip), "10.0.%d.%d:80", i / 200, i % 200);
		snprintf(be, sizeof(be), "[fd00::%x]:8080", i + 1);
		pair_of(&s, vip, be);
		be_of(&s, be);
	}
	cr_assert_eq(COUNT(s.pair), 300);
	h2s_stats_free(&s);
	cr_assert_eq(COUNT(s.svc), 0);
	cr_assert_eq(COUNT(s.pair), 0);
	cr_assert_eq(COUNT(s.be), 0);
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "entries leaked (report above)");
	h2s_stats_free(&s); /* twice is harmless */
	cr_assert_not_null(pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080"));
	cr_assert_eq(COUNT(s.svc), 1);
	h2s_stats_free(&s);
}

/* ---- per method ---- */

Test(stats_method, counts_rpcs_errors_and_latency_per_path)
{
	struct h2s_stats s = { 0 };
	struct h2s_pair_stats *p = pair_of(&s, "10.0.0.1:80", "192.168.1.1:8080");
	struct h2s_method_stats *a = h2s_stats_method(p->svc, "/pkg.S/A");
	struct h2s_method_stats *b = h2s_stats_method(p->svc, "/pkg.S/B");

	cr_assert(a && b && a != b);
	cr_assert_eq(h2s_stats_method(p->svc, "/pkg.S/A"), a, "one entry per path");
	h2s_stats_rpc(p, a, 0, 0.002);
	h2s_stats_rpc(p, a, 14, 0.2);
	h2s_stats_rpc(p, b, 0, 0.002);
	cr_assert_eq(a->rpcs, 2);
	cr_assert_eq(a->errors, 1);
	cr_assert_eq(b->rpcs, 1);
	cr_assert_eq(b->errors, 0);
	cr_assert_eq(a->lat.count, 2);
	cr_assert_eq(p->svc->lat.count, 3, "the service counts every method");
	cr_assert_float_eq(h2s_lat_quantile(&a->lat, 0.5), 0.0025, 1e-12);
	cr_assert_float_eq(h2s_lat_quantile(&a->lat, 0.99), 0.25, 1e-12);
	h2s_stats_free(&s);
}

/* A client may send any :path: past H2S_METHODS_MAX per service they share one entry, so a
 * hostile client cannot grow the daemon's memory or the metrics without bound.
 */
Test(stats_method, distinct_paths_are_bounded_then_pooled_as_other)
{
	struct h2s_stats s = { 0 };
	struct h2s_svc_stats *svc = svc_of(&s, "10.0.0.1:80");
	struct h2s_method_stats *other = NULL;
	char path[64];

	for (int i = 0; i < H2S_METHODS_MAX + 50; i++) {
		struct h2s_method_stats *m;

		snprintf(path, sizeof(path), "/pkg.S/M%d", i);
		m = h2s_stats_method(svc, path);
		cr_assert(m);
		if (i >= H2S_METHODS_MAX) {
			cr_assert_str_eq(m->path, H2S_METHOD_OTHER);
			cr_assert(!other || m == other);
			other = m;
		}
	}
	cr_assert_eq(svc->nmethods, H2S_METHODS_MAX);
	cr_assert_eq(h2s_stats_method(svc, "/pkg.S/M0")->path[0], '/', "known ones stay");
	h2s_stats_free(&s);
}

Test(stats_method, long_path_is_truncated_not_overflowed)
{
	struct h2s_stats s = { 0 };
	struct h2s_svc_stats *svc = svc_of(&s, "10.0.0.1:80");
	char path[400];
	struct h2s_method_stats *m;

	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	m = h2s_stats_method(svc, path);
	cr_assert(m);
	cr_assert_eq(strlen(m->path), sizeof(m->path) - 1);
	cr_assert_eq(h2s_stats_method(svc, path), m, "the same long path finds its entry");
	h2s_stats_free(&s);
}
