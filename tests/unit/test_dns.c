/* test_dns.c — the pure parts of user/discovery/dns.c: h2s_dns_min_ttl (libresolv's parser over a raw
 * DNS response, for the SRV re-resolve time) and h2s_dns_server_add (the c-ares servers CSV
 * built from --dns-server / dns_servers).
 */
#include "unit.h"

#include "config.h"
#include "dns.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>

/* ---- fixtures ----
 *
 * Real responses of dnsmasq 2.90 (dnsmasq-base, Debian 12), captured on 127.0.53.9:15399 with
 *   dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts=HOSTS \
 *           --local=/test/ --port=15399 --listen-address=127.0.53.9 --bind-interfaces \
 *           --local-ttl=30 (or 7) \
 *           --srv-host=_grpc._tcp.backend.test,b2.test,50052,0,50 \
 *           --srv-host=_grpc._tcp.backend.test,b1.test,50051,0,50
 * (HOSTS: "127.0.10.1 backend.test" and "127.0.10.2 backend.test", or "127.0.10.1 b1.test"),
 * queried with a hand-built UDP query from python3 (RD set, class IN). dnsmasq gives every
 * record of one answer the same TTL (local-ttl): where a fixture needs two different TTLs, one
 * TTL field was edited afterwards, as marked. Each line is one section or record.
 */

/* SRV query for _grpc._tcp.backend.test, two answers; local-ttl=30, the second answer's TTL
 * edited from 30 to 5.
 */
static const unsigned char srv_30_5[] = {
	/* header: id 0x1234, QR AA RD RA, rcode 0, 1 question, 2 answers */
	0x12, 0x34, 0x85, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
	/* question: _grpc._tcp.backend.test SRV IN */
	0x05, 0x5f, 0x67, 0x72, 0x70, 0x63, 0x04, 0x5f, 0x74, 0x63, 0x70, 0x07, 0x62, 0x61, 0x63,
	0x6b, 0x65, 0x6e, 0x64, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x21, 0x00, 0x01,
	/* answer (offset 41): ->name SRV IN ttl 30, 0 50 50052 b2.test */
	0xc0, 0x0c, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x0f, 0x00, 0x00, 0x00,
	0x32, 0xc3, 0x84, 0x02, 0x62, 0x32, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00,
	/* answer (offset 68): ->name SRV IN ttl 5 (edited), 0 50 50051 b1.test */
	0xc0, 0x0c, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00, 0x0f, 0x00, 0x00, 0x00,
	0x32, 0xc3, 0x83, 0x02, 0x62, 0x31, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00,
};
#define SRV_ANS1_TTL 47 /* offset of the first answer's TTL (4 bytes, big-endian) */
#define SRV_ANS2_TTL 74

/* A query for backend.test, two answers; local-ttl=7, the second answer's TTL edited to 3. */
static const unsigned char a_7_3[] = {
	/* header: id 0x2345, QR AA RD RA, rcode 0, 1 question, 2 answers */
	0x23, 0x45, 0x85, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
	/* question: backend.test A IN */
	0x07, 0x62, 0x61, 0x63, 0x6b, 0x65, 0x6e, 0x64, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00,
	0x01, 0x00, 0x01,
	/* answer (offset 30): ->name A IN ttl 7, 127.0.10.1 */
	0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x04, 0x7f, 0x00, 0x0a,
	0x01,
	/* answer (offset 46): ->name A IN ttl 3 (edited), 127.0.10.2 */
	0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x04, 0x7f, 0x00, 0x0a,
	0x02,
};
#define A_ANS1 30
#define A_ANS1_TTL 36

/* SRV query for _grpc._tcp.backend.test with one SRV record whose target (b1.test) dnsmasq
 * knows: it adds the target's A record in the additional section. local-ttl=30; the
 * additional record's TTL edited to 1.
 */
static const unsigned char srv_with_additional[] = {
	/* header: id 0x1234, QR AA RD RA, rcode 0, 1 question, 1 answer, 1 additional */
	0x12, 0x34, 0x85, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
	/* question: _grpc._tcp.backend.test SRV IN */
	0x05, 0x5f, 0x67, 0x72, 0x70, 0x63, 0x04, 0x5f, 0x74, 0x63, 0x70, 0x07, 0x62, 0x61, 0x63,
	0x6b, 0x65, 0x6e, 0x64, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x21, 0x00, 0x01,
	/* answer: ->name SRV IN ttl 30, 0 50 50051 b1.test (the target at offset 59) */
	0xc0, 0x0c, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x0f, 0x00, 0x00, 0x00,
	0x32, 0xc3, 0x83, 0x02, 0x62, 0x31, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00,
	/* additional: ->b1.test A IN ttl 1 (edited), 127.0.10.1 */
	0xc0, 0x3b, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x04, 0x7f, 0x00, 0x0a,
	0x01,
};

/* SRV query for backend.test (which has only A records): NOERROR, no answer (NODATA). */
static const unsigned char srv_nodata[] = {
	0x45, 0x67, 0x81, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x07, 0x62, 0x61, 0x63, 0x6b, 0x65, 0x6e, 0x64, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00,
	0x21, 0x00, 0x01,
};

/* SRV query for nothere.test: NXDOMAIN (rcode 3), no answer. */
static const unsigned char srv_nxdomain[] = {
	0x34, 0x56, 0x81, 0x83, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x07, 0x6e, 0x6f, 0x74, 0x68, 0x65, 0x72, 0x65, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00,
	0x21, 0x00, 0x01,
};

static void set_ttl(unsigned char *buf, size_t off, uint32_t ttl)
{
	buf[off] = (unsigned char)(ttl >> 24);
	buf[off + 1] = (unsigned char)(ttl >> 16);
	buf[off + 2] = (unsigned char)(ttl >> 8);
	buf[off + 3] = (unsigned char)ttl;
}

/* ---- h2s_dns_min_ttl ---- */

Test(dns_min_ttl, srv_answers_give_smallest_ttl)
{
	cr_assert_eq(h2s_dns_min_ttl(srv_30_5, sizeof(srv_30_5), ns_t_srv), 5);
}

/* Smallest, not last: the same response with the TTLs the other way round. */
Test(dns_min_ttl, smallest_ttl_in_first_answer)
{
	unsigned char buf[sizeof(srv_30_5)];

	memcpy(buf, srv_30_5, sizeof(buf));
	set_ttl(buf, SRV_ANS1_TTL, 4);
	set_ttl(buf, SRV_ANS2_TTL, 30);
	cr_assert_eq(h2s_dns_min_ttl(buf, sizeof(buf), ns_t_srv), 4);
}

Test(dns_min_ttl, a_answers_give_smallest_ttl)
{
	cr_assert_eq(h2s_dns_min_ttl(a_7_3, sizeof(a_7_3), ns_t_a), 3);
}

Test(dns_min_ttl, no_record_of_the_type_gives_minus_1)
{
	cr_assert_eq(h2s_dns_min_ttl(a_7_3, sizeof(a_7_3), ns_t_srv), -1);
	cr_assert_eq(h2s_dns_min_ttl(srv_30_5, sizeof(srv_30_5), ns_t_a), -1);
}

/* Records of the additional section (the SRV targets' addresses) are not answers. */
Test(dns_min_ttl, additional_section_is_ignored)
{
	cr_assert_eq(h2s_dns_min_ttl(srv_with_additional, sizeof(srv_with_additional), ns_t_srv),
		     30);
	cr_assert_eq(h2s_dns_min_ttl(srv_with_additional, sizeof(srv_with_additional), ns_t_a), -1);
}

Test(dns_min_ttl, zero_answers_give_minus_1)
{
	cr_assert_eq(h2s_dns_min_ttl(srv_nodata, sizeof(srv_nodata), ns_t_srv), -1);
	cr_assert_eq(h2s_dns_min_ttl(srv_nxdomain, sizeof(srv_nxdomain), ns_t_srv), -1);
}

/* TTL 0 ("do not cache") is a TTL, not "none". */
Test(dns_min_ttl, ttl_zero_is_a_ttl)
{
	unsigned char buf[sizeof(a_7_3)];

	memcpy(buf, a_7_3, sizeof(buf));
	set_ttl(buf, A_ANS1_TTL, 0);
	cr_assert_eq(h2s_dns_min_ttl(buf, sizeof(buf), ns_t_a), 0);
}

Test(dns_min_ttl, truncated_inside_an_answer_gives_minus_1)
{
	cr_assert_eq(h2s_dns_min_ttl(srv_30_5, sizeof(srv_30_5) - 1, ns_t_srv), -1);
	cr_assert_eq(h2s_dns_min_ttl(srv_30_5, 80, ns_t_srv), -1);
	cr_assert_eq(h2s_dns_min_ttl(a_7_3, 40, ns_t_a), -1);
}

Test(dns_min_ttl, shorter_than_a_header_gives_minus_1)
{
	cr_assert_eq(h2s_dns_min_ttl(srv_30_5, 11, ns_t_srv), -1);
	cr_assert_eq(h2s_dns_min_ttl(srv_30_5, 0, ns_t_srv), -1);
}

/* The header promises a third answer that is not there. */
Test(dns_min_ttl, missing_answer_gives_minus_1)
{
	unsigned char buf[sizeof(srv_30_5)];

	memcpy(buf, srv_30_5, sizeof(buf));
	buf[7] = 3;
	cr_assert_eq(h2s_dns_min_ttl(buf, sizeof(buf), ns_t_srv), -1);
}

Test(dns_min_ttl, garbage_gives_minus_1)
{
	static const char text[] = "hello, this is not a DNS message at all";

	cr_assert_eq(h2s_dns_min_ttl((const unsigned char *)text, sizeof(text) - 1, ns_t_srv), -1);
}

/* An answer's name is a compression pointer to itself: a loop, not a name. */
Test(dns_min_ttl, compression_loop_gives_minus_1)
{
	unsigned char buf[sizeof(a_7_3)];

	memcpy(buf, a_7_3, sizeof(buf));
	buf[A_ANS1] = 0xc0;
	buf[A_ANS1 + 1] = A_ANS1;
	cr_assert_eq(h2s_dns_min_ttl(buf, sizeof(buf), ns_t_a), -1);
}

/* ---- h2s_dns_server_add ---- */

static char csv[512];
static char derr[256];

static void server_setup(void)
{
	csv[0] = '\0';
	derr[0] = '\0';
}

TestSuite(dns_server_add, .init = server_setup);

static int add(const char *text)
{
	return h2s_dns_server_add(csv, sizeof(csv), text, derr, sizeof(derr));
}

static void expect_added(const char *text, const char *want_csv)
{
	cr_assert_eq(add(text), 0, "'%s': %s", text, derr);
	cr_assert_str_eq(csv, want_csv, "'%s'", text);
}

/* Rejected with -EINVAL, the CSV unchanged, the error quoting the text. */
static void expect_rejected(const char *text)
{
	char before[sizeof(csv)];

	memcpy(before, csv, sizeof(csv));
	derr[0] = '\0';
	cr_assert_eq(add(text), -EINVAL, "accepted '%s': %s", text, csv);
	cr_assert_str_eq(csv, before, "'%s' changed the list", text);
	cr_assert(strstr(derr, text), "error '%s' does not quote '%s'", derr, text);
	cr_assert(strstr(derr, "ADDR[:PORT]"), "%s", derr);
}

Test(dns_server_add, ipv4_without_port_gets_53)
{
	expect_added("127.0.0.1", "127.0.0.1:53");
}

Test(dns_server_add, ipv4_with_port)
{
	expect_added("127.0.0.1:5353", "127.0.0.1:5353");
}

Test(dns_server_add, bare_ipv6_gets_brackets_and_53)
{
	expect_added("::1", "[::1]:53");
}

Test(dns_server_add, bracketed_ipv6_with_port)
{
	expect_added("[::1]:5353", "[::1]:5353");
}

Test(dns_server_add, bracketed_ipv6_without_port_gets_53)
{
	expect_added("[2001:db8::53]", "[2001:db8::53]:53");
}

Test(dns_server_add, longer_bare_ipv6)
{
	expect_added("2001:db8::53", "[2001:db8::53]:53");
}

Test(dns_server_add, several_are_comma_separated)
{
	expect_added("127.0.0.1", "127.0.0.1:53");
	expect_added("[::1]:5353", "127.0.0.1:53,[::1]:5353");
	expect_added("10.0.0.53", "127.0.0.1:53,[::1]:5353,10.0.0.53:53");
}

Test(dns_server_add, hostname_is_rejected)
{
	expect_rejected("dns.google");
}

Test(dns_server_add, empty_is_rejected)
{
	expect_rejected("");
}

Test(dns_server_add, bad_port_is_rejected)
{
	expect_rejected("127.0.0.1:0");
	expect_rejected("127.0.0.1:65536");
	expect_rejected("127.0.0.1:dns");
	expect_rejected("127.0.0.1:");
}

Test(dns_server_add, bad_address_is_rejected)
{
	expect_rejected("127.0.0.256");
	expect_rejected("[::1");
	expect_rejected("[::1]:");
	expect_rejected("::g");
}

/* A rejected entry after good ones leaves the good ones. */
Test(dns_server_add, rejection_keeps_the_list)
{
	expect_added("127.0.0.1", "127.0.0.1:53");
	expect_rejected("nope");
	cr_assert_str_eq(csv, "127.0.0.1:53");
}

Test(dns_server_add, full_buffer_is_rejected)
{
	char small[32] = "";

	cr_assert_eq(h2s_dns_server_add(small, sizeof(small), "127.0.0.1", derr, sizeof(derr)), 0,
		     "%s", derr);
	cr_assert_eq(h2s_dns_server_add(small, sizeof(small), "127.0.0.2", derr, sizeof(derr)), 0,
		     "%s", derr);
	cr_assert_str_eq(small, "127.0.0.1:53,127.0.0.2:53");
	cr_assert_eq(h2s_dns_server_add(small, sizeof(small), "127.0.0.3", derr, sizeof(derr)),
		     -E2BIG);
	cr_assert_str_eq(small, "127.0.0.1:53,127.0.0.2:53");
	cr_assert(strstr(derr, "too many DNS servers"), "%s", derr);
}

/* A second entry that fits exactly (comma + text + NUL) is taken. */
Test(dns_server_add, second_entry_fitting_exactly_is_accepted)
{
	char small[26] = ""; /* "127.0.0.1:53,127.0.0.2:53" is 25 characters */

	cr_assert_eq(h2s_dns_server_add(small, sizeof(small), "127.0.0.1", derr, sizeof(derr)), 0,
		     "%s", derr);
	cr_assert_eq(h2s_dns_server_add(small, sizeof(small), "127.0.0.2", derr, sizeof(derr)), 0,
		     "%s", derr);
	cr_assert_str_eq(small, "127.0.0.1:53,127.0.0.2:53");
}

/* The daemon's CSV (512 bytes) takes at least 8 of the longest entries (the YAML limit). */
Test(dns_server_add, eight_longest_entries_fit_the_daemon_buffer)
{
	for (int i = 0; i < 8; i++) {
		char text[64];

		snprintf(text, sizeof(text), "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff%d]:65535", i);
		cr_assert_eq(add(text), 0, "entry %d: %s", i, derr);
	}
	cr_assert_lt(strlen(csv), sizeof(csv));
}
