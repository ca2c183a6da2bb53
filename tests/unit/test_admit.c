/* test_admit.c — the caps on a loop's client connections (daemon/admit.h), on real sockets: a
 * connection counts against its source address until its socket closes, which the caps learn
 * from the kernel (the socket's cookie), not from being told.
 */
#include "unit.h"

#include "admit.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static struct h2s_admit a;
static int open_fds[600];
static uint32_t nopen; /* the "live" count the plane would pass */

static void fini(void)
{
	for (uint32_t i = 0; i < nopen; i++)
		close(open_fds[i]);
	nopen = 0;
	h2s_admit_fini(&a);
}

TestSuite(admit, .fini = fini);

static int new_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	return fd;
}

/* A connection from `peer` arrives at now_ms: the verdict; served ones stay open. */
static enum h2s_admit_verdict arrive(const char *peer, uint64_t now_ms)
{
	struct h2s_addr p = addr_of(peer);
	int fd = new_socket();
	enum h2s_admit_verdict v = h2s_admit(&a, fd, &p, nopen, now_ms);

	if (v == H2S_ADMIT_OK) {
		cr_assert_lt(nopen, ARRAY_LEN(open_fds));
		open_fds[nopen++] = fd;
	} else {
		close(fd);
	}
	return v;
}

/* The connection served i-th (from 0) closes. */
static void leave(uint32_t i)
{
	close(open_fds[i]);
	open_fds[i] = open_fds[--nopen];
}

static uint32_t count(const char *peer)
{
	struct h2s_addr p = addr_of(peer);

	return h2s_admit_count(&a, &p);
}

Test(admit, refuses_beyond_the_total)
{
	h2s_admit_init(&a, 3, 2);
	cr_assert_eq(arrive("10.0.0.1:1", 0), H2S_ADMIT_OK);
	cr_assert_eq(arrive("10.0.0.2:1", 0), H2S_ADMIT_OK);
	cr_assert_eq(arrive("10.0.0.3:1", 0), H2S_ADMIT_OK);
	cr_assert_eq(arrive("10.0.0.4:1", 0), H2S_ADMIT_TOTAL);
	leave(0);
	cr_assert_eq(arrive("10.0.0.4:1", 0), H2S_ADMIT_OK, "a place came free");
}

Test(admit, counts_per_source_address_whatever_the_port)
{
	h2s_admit_init(&a, 100, 2);
	cr_assert_eq(arrive("10.0.0.1:1000", 0), H2S_ADMIT_OK);
	cr_assert_eq(arrive("10.0.0.1:1001", 0), H2S_ADMIT_OK);
	cr_assert_eq(arrive("10.0.0.1:2000", 0), H2S_ADMIT_PER_SOURCE);
	cr_assert_eq(arrive("10.0.0.2:1000", 0), H2S_ADMIT_OK, "another source is served");
	cr_assert_eq(arrive("[fd00::1]:1000", 0), H2S_ADMIT_OK);
	cr_assert_eq(arrive("[fd00::1]:1001", 0), H2S_ADMIT_OK);
	cr_assert_eq(arrive("[fd00::1]:1002", 0), H2S_ADMIT_PER_SOURCE);
	cr_assert_eq(count("10.0.0.1:9"), 2);
	cr_assert_eq(count("10.0.0.2:9"), 1);
	cr_assert_eq(count("10.0.0.3:9"), 0);
}

/* Nobody says a connection closed: its socket is gone, which the next look finds. */
Test(admit, a_connection_closed_frees_its_place_in_its_source)
{
	h2s_admit_init(&a, 100, 2);
	cr_assert_eq(arrive("10.0.0.1:1", 1000), H2S_ADMIT_OK);
	cr_assert_eq(arrive("10.0.0.1:2", 1000), H2S_ADMIT_OK);
	leave(0);
	cr_assert_eq(arrive("10.0.0.1:3", 1000), H2S_ADMIT_OK);
	cr_assert_eq(count("10.0.0.1:9"), 2);
	cr_assert_eq(arrive("10.0.0.1:4", 2000), H2S_ADMIT_PER_SOURCE, "both still open");
}

/* The kernel gives the lowest free descriptor: the next socket takes the closed one's number. */
Test(admit, a_descriptor_reused_by_another_socket_is_not_the_connection)
{
	int fd;

	h2s_admit_init(&a, 100, 1);
	cr_assert_eq(arrive("10.0.0.1:1", 1000), H2S_ADMIT_OK);
	fd = open_fds[0];
	leave(0);
	cr_assert_eq(arrive("10.0.0.2:1", 1000), H2S_ADMIT_OK);
	cr_assert_eq(open_fds[0], fd, "the test needs the number reused");
	cr_assert_eq(arrive("10.0.0.1:2", 1000), H2S_ADMIT_OK);
}

/* Looking costs a read of every record's socket: a source at its cap is looked at for stale
 * records at most every H2S_ADMIT_SWEEP_MS, however fast it closes and reconnects.
 */
Test(admit, a_source_at_its_cap_is_looked_at_only_so_often)
{
	h2s_admit_init(&a, 100, 2);
	cr_assert_eq(arrive("10.0.0.1:1", 1000), H2S_ADMIT_OK);
	cr_assert_eq(arrive("10.0.0.1:2", 1000), H2S_ADMIT_OK);
	leave(0);
	cr_assert_eq(arrive("10.0.0.1:3", 1000), H2S_ADMIT_OK, "the first look");
	leave(0);
	cr_assert_eq(arrive("10.0.0.1:4", 1000 + H2S_ADMIT_SWEEP_MS - 1), H2S_ADMIT_PER_SOURCE);
	cr_assert_eq(arrive("10.0.0.1:5", 1000 + H2S_ADMIT_SWEEP_MS), H2S_ADMIT_OK);
}

/* Clients that come and go keep the records to the ones open, not to every one ever served. */
Test(admit, churn_does_not_grow_the_records)
{
	h2s_admit_init(&a, 1000, 500);
	for (int i = 0; i < 5000; i++) {
		char peer[32];

		snprintf(peer, sizeof(peer), "10.0.%d.%d:1", i % 7, i % 251);
		cr_assert_eq(arrive(peer, (uint64_t)i), H2S_ADMIT_OK, "connection %d", i);
		if (nopen > 8)
			leave(i % nopen);
	}
	cr_assert_leq(a.rec_cap, 64, "%u records for %u connections open", a.rec_cap, nopen);
}

Test(admit, many_sources_each_held_to_its_cap)
{
	char peer[32];

	h2s_admit_init(&a, 1000, 2);
	for (int i = 0; i < 500; i++) {
		snprintf(peer, sizeof(peer), "[fd00::%x]:%d", i / 2, i + 1);
		cr_assert_eq(arrive(peer, 0), H2S_ADMIT_OK, "%s", peer);
	}
	for (int s = 0; s < 250; s++) {
		snprintf(peer, sizeof(peer), "[fd00::%x]:1", s);
		cr_assert_eq(count(peer), 2, "%s", peer);
		cr_assert_eq(arrive(peer, 0), H2S_ADMIT_PER_SOURCE, "%s", peer);
	}
}

/* A cap per source at or above the total never bites first: nothing is recorded. */
Test(admit, no_counting_per_source_when_the_total_comes_first)
{
	h2s_admit_init(&a, 3, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(arrive("10.0.0.1:1", 0), H2S_ADMIT_OK);
	cr_assert_eq(arrive("10.0.0.1:1", 0), H2S_ADMIT_TOTAL);
	cr_assert_eq(a.nrec, 0);
}
