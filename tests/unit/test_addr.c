/* test_addr.c — user/common/addr.c (text and sockaddr conversions) and the port helpers of
 * include/h2s_addr.h that the BPF programs and the daemon share.
 */
#include "unit.h"

#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/un.h>

/* ---- parse ---- */

Test(addr, parse_ipv4_stores_v4_mapped)
{
	struct h2s_addr a = addr_of("192.0.2.10:8080");

	cr_assert_eq(a.ip6[0], 0);
	cr_assert_eq(a.ip6[1], 0);
	cr_assert_eq(a.ip6[2], htonl(0x0000ffff));
	cr_assert_eq(a.ip6[3], inet_addr("192.0.2.10"));
	cr_assert_eq(a.port, htons(8080));
	cr_assert_eq(a.pad, 0);
	cr_assert(h2s_addr_is_v4(&a));
	cr_assert_eq(h2s_addr_family(&a), AF_INET);
}

Test(addr, parse_bracketed_ipv6)
{
	struct h2s_addr a = addr_of("[2001:db8::1]:443");
	struct in6_addr want;

	cr_assert_eq(inet_pton(AF_INET6, "2001:db8::1", &want), 1);
	cr_assert_arr_eq(a.ip6, want.s6_addr, 16);
	cr_assert_eq(a.port, htons(443));
	cr_assert_eq(a.pad, 0);
	cr_assert_not(h2s_addr_is_v4(&a));
	cr_assert_eq(h2s_addr_family(&a), AF_INET6);
}

/* A VIP written as IPv4 and as its v4-mapped IPv6 form must be one map key. */
Test(addr, parse_v4_mapped_ipv6_equals_ipv4)
{
	struct h2s_addr m = addr_of("[::ffff:10.1.2.3]:80");
	struct h2s_addr v4 = addr_of("10.1.2.3:80");

	cr_assert_eq(memcmp(&m, &v4, sizeof(m)), 0);
	cr_assert(h2s_addr_is_v4(&m));
}

Test(addr, parse_accepts_port_bounds)
{
	cr_assert_eq(addr_of("1.2.3.4:1").port, htons(1));
	cr_assert_eq(addr_of("1.2.3.4:65535").port, htons(65535));
	cr_assert_eq(addr_of("[::1]:65535").port, htons(65535));
}

/* text must be rejected with -EINVAL and an error that quotes it and gives reason. */
static void expect_reject(const char *text, const char *reason)
{
	struct h2s_addr a;
	char err[256] = "";

	cr_assert_eq(h2s_addr_parse(text, &a, err, sizeof(err)), -EINVAL, "'%s' was accepted",
		     text);
	if (*text)
		cr_assert(strstr(err, text), "error for '%s' does not quote it: %s", text, err);
	cr_assert(strstr(err, reason), "error for '%s' is '%s', expected it to mention '%s'", text,
		  err, reason);
}

Test(addr, rejects_missing_port)
{
	expect_reject("10.0.0.1", "missing :PORT");
}

Test(addr, rejects_empty_port)
{
	expect_reject("10.0.0.1:", "port must be a number from 1 to 65535");
	expect_reject("[::1]:", "port must be a number from 1 to 65535");
}

Test(addr, rejects_port_zero)
{
	expect_reject("10.0.0.1:0", "port must be a number from 1 to 65535");
}

Test(addr, rejects_port_65536)
{
	expect_reject("10.0.0.1:65536", "port must be a number from 1 to 65535");
	expect_reject("[::1]:65536", "port must be a number from 1 to 65535");
}

Test(addr, rejects_non_numeric_port)
{
	expect_reject("10.0.0.1:http", "port must be a number");
	expect_reject("10.0.0.1:80x", "port must be a number");
	expect_reject("10.0.0.1:+80", "port must be a number");
	expect_reject("10.0.0.1:-1", "port must be a number");
	expect_reject("10.0.0.1: 80", "port must be a number");
}

Test(addr, rejects_ipv6_without_brackets)
{
	expect_reject("::1:80", "IPv6 addresses need brackets");
	expect_reject("2001:db8::1:443", "IPv6 addresses need brackets");
}

Test(addr, rejects_unterminated_brackets)
{
	expect_reject("[::1", "expected [IPV6]:PORT");
	expect_reject("[::1]80", "expected [IPV6]:PORT");
}

Test(addr, rejects_host_names)
{
	expect_reject("localhost:80", "names are not resolved");
	expect_reject("[localhost]:80", "not a numeric IPv4 or IPv6 address");
}

Test(addr, rejects_ipv4_in_brackets)
{
	expect_reject("[127.0.0.1]:80", "not a numeric IPv4 or IPv6 address");
}

Test(addr, rejects_malformed_ipv4)
{
	expect_reject("256.1.1.1:80", "not a numeric IPv4 or IPv6 address");
	expect_reject("1.2.3:80", "not a numeric IPv4 or IPv6 address");
}

Test(addr, rejects_empty_host)
{
	expect_reject(":80", "bad host part");
	expect_reject("[]:80", "bad host part");
}

Test(addr, rejects_empty_text)
{
	expect_reject("", "empty");
}

Test(addr, rejects_null_text)
{
	struct h2s_addr a;
	char err[128] = "";

	cr_assert_eq(h2s_addr_parse(NULL, &a, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "empty"), "err: %s", err);
}

/* A host longer than any IPv6 address must not overflow the parser's host buffer. */
Test(addr, rejects_overlong_host)
{
	char text[200];

	memset(text, 0, sizeof(text));
	text[0] = '[';
	memset(text + 1, 'f', 150);
	strcat(text, "]:80");
	expect_reject(text, "bad host part");
}

Test(addr, parse_without_error_buffer)
{
	struct h2s_addr a;

	cr_assert_eq(h2s_addr_parse("nonsense", &a, NULL, 0), -EINVAL);
}

/* ---- format ---- */

Test(addr, format_ipv4)
{
	struct h2s_addr a = addr_of("192.0.2.10:8080");
	char buf[H2S_ADDR_STRLEN];

	cr_assert_str_eq(h2s_addr_format(&a, buf, sizeof(buf)), "192.0.2.10:8080");
}

Test(addr, format_ipv6_is_bracketed_and_canonical)
{
	struct h2s_addr a = addr_of("[2001:DB8:0:0:0:0:0:1]:443");
	char buf[H2S_ADDR_STRLEN];

	cr_assert_str_eq(h2s_addr_format(&a, buf, sizeof(buf)), "[2001:db8::1]:443");
}

Test(addr, format_v4_mapped_as_ipv4)
{
	struct h2s_addr a = addr_of("[::ffff:10.1.2.3]:80");
	char buf[H2S_ADDR_STRLEN];

	cr_assert_str_eq(h2s_addr_format(&a, buf, sizeof(buf)), "10.1.2.3:80");
}

Test(addr, format_longest_address_fits_strlen)
{
	const char *text = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535";
	struct h2s_addr a = addr_of(text);
	char buf[H2S_ADDR_STRLEN];

	cr_assert_str_eq(h2s_addr_format(&a, buf, sizeof(buf)), text);
}

Test(addr, format_parse_round_trip)
{
	static const char *const texts[] = {
		"0.0.0.0:1",  "127.0.0.1:15001", "255.255.255.255:65535", "[::]:1",
		"[::1]:15001", "[fe80::1:2:3:4]:50051", "[2001:db8:1:2:3:4:5:6]:8443",
	};

	for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
		struct h2s_addr a = addr_of(texts[i]), b;
		char buf[H2S_ADDR_STRLEN];

		cr_assert_str_eq(h2s_addr_format(&a, buf, sizeof(buf)), texts[i]);
		b = addr_of(buf);
		cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "%s does not round-trip", texts[i]);
	}
}

/* ---- socket addresses ---- */

Test(addr, to_sockaddr_ipv4)
{
	struct h2s_addr a = addr_of("192.0.2.10:8080");
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

	cr_assert_eq(h2s_addr_to_sockaddr(&a, &ss), sizeof(struct sockaddr_in));
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_eq(sin->sin_addr.s_addr, inet_addr("192.0.2.10"));
	cr_assert_eq(sin->sin_port, htons(8080));
}

Test(addr, to_sockaddr_ipv6)
{
	struct h2s_addr a = addr_of("[2001:db8::7]:443");
	struct sockaddr_storage ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
	struct in6_addr want;

	memset(&ss, 0xff, sizeof(ss)); /* the function must clear what it does not set */
	cr_assert_eq(inet_pton(AF_INET6, "2001:db8::7", &want), 1);
	cr_assert_eq(h2s_addr_to_sockaddr(&a, &ss), sizeof(struct sockaddr_in6));
	cr_assert_eq(s6->sin6_family, AF_INET6);
	cr_assert_arr_eq(&s6->sin6_addr, &want, sizeof(want));
	cr_assert_eq(s6->sin6_port, htons(443));
	cr_assert_eq(s6->sin6_flowinfo, 0);
	cr_assert_eq(s6->sin6_scope_id, 0);
}

Test(addr, sockaddr_round_trip_both_families)
{
	static const char *const texts[] = { "10.9.8.7:1234", "[2001:db8::42]:4321" };

	for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
		struct h2s_addr a = addr_of(texts[i]), b;
		struct sockaddr_storage ss;

		h2s_addr_to_sockaddr(&a, &ss);
		memset(&b, 0xa5, sizeof(b));
		cr_assert_eq(h2s_addr_from_sockaddr((struct sockaddr *)&ss, &b), 0);
		cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "%s does not round-trip", texts[i]);
	}
}

Test(addr, from_sockaddr_v4_mapped_in6_equals_in)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(80) };
	struct h2s_addr a, b;

	cr_assert_eq(inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr), 1);
	cr_assert_eq(inet_pton(AF_INET6, "::ffff:10.1.2.3", &s6.sin6_addr), 1);
	cr_assert_eq(h2s_addr_from_sockaddr((struct sockaddr *)&sin, &a), 0);
	cr_assert_eq(h2s_addr_from_sockaddr((struct sockaddr *)&s6, &b), 0);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0);
}

Test(addr, from_sockaddr_rejects_other_families)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "/tmp/x" };
	struct h2s_addr a;

	cr_assert_eq(h2s_addr_from_sockaddr((struct sockaddr *)&sun, &a), -EAFNOSUPPORT);
}

/* ---- equality and hash ---- */

Test(addr, equal_compares_address_and_port)
{
	struct h2s_addr a = addr_of("10.0.0.1:80");
	struct h2s_addr same = addr_of("10.0.0.1:80");
	struct h2s_addr other_port = addr_of("10.0.0.1:81");
	struct h2s_addr other_ip = addr_of("10.0.0.2:80");
	struct h2s_addr v6 = addr_of("[::a00:1]:80"); /* same low 32 bits, not v4-mapped */

	cr_assert(h2s_addr_equal(&a, &same));
	cr_assert_not(h2s_addr_equal(&a, &other_port));
	cr_assert_not(h2s_addr_equal(&a, &other_ip));
	cr_assert_not(h2s_addr_equal(&a, &v6));
}

Test(addr, hash_is_consistent_with_equal)
{
	struct h2s_addr a = addr_of("10.0.0.1:80");
	struct h2s_addr same = addr_of("[::ffff:10.0.0.1]:80");

	cr_assert(h2s_addr_equal(&a, &same));
	cr_assert_eq(h2s_addr_hash(&a), h2s_addr_hash(&same));
}

/* Every byte of the key feeds the hash: 4096 addresses differing in the port or the low address
 * bytes must not collide (FNV-1a over 20 bytes separates them all).
 */
Test(addr, hash_separates_ports_and_addresses)
{
	enum { N = 4096 };
	static unsigned int h[N];

	for (unsigned i = 0; i < N; i++) {
		struct h2s_addr a;

		h2s_addr_set4(&a, htonl(0x0a000000u | (i & 0x3f)), htons((uint16_t)(1000 + (i >> 6))));
		h[i] = h2s_addr_hash(&a);
	}
	for (unsigned i = 0; i < N; i++)
		for (unsigned k = 0; k < i; k++)
			cr_assert_neq(h[i], h[k], "hash collision between #%u and #%u", i, k);
}

/* ---- the kernel's port encodings (include/h2s_addr.h) ---- */

/* Fixtures: the raw u32 the kernel hands a BPF program for port 15001 (0x3a99) on this host's
 * byte order. bpf_sock_ops.remote_port is skc_dport (be16) shifted into the high half on
 * little-endian; local_port is skc_num (host order); bpf_sock_addr.user_port is sin_port (be16)
 * zero-extended (net/core/filter.c, sock_ops_convert_ctx_access / sock_addr_convert_ctx_access).
 */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RAW_SOCKOPS_REMOTE_15001 0x993a0000u
#define RAW_SOCK_ADDR_USER_15001 0x0000993au
#else
#define RAW_SOCKOPS_REMOTE_15001 0x00003a99u
#define RAW_SOCK_ADDR_USER_15001 0x00003a99u
#endif
#define RAW_SOCKOPS_LOCAL_40000 40000u

Test(addr, sockops_remote_port_is_network_order)
{
	cr_assert_eq(h2s_sockops_remote_port(RAW_SOCKOPS_REMOTE_15001), htons(15001));
}

Test(addr, sockops_local_port_converts_host_order)
{
	cr_assert_eq(h2s_sockops_local_port(RAW_SOCKOPS_LOCAL_40000), htons(40000));
}

Test(addr, sock_addr_user_port_is_network_order)
{
	cr_assert_eq(h2s_sockaddr_port(RAW_SOCK_ADDR_USER_15001), htons(15001));
}

/* The bpf_sock_ops fields tuple_of() reads, as the kernel fills them. */
struct sim_sockops {
	uint32_t family;
	uint32_t local_ip4, remote_ip4;       /* network order */
	uint32_t local_ip6[4], remote_ip6[4]; /* network order */
	uint32_t local_port, remote_port;     /* raw, see the fixtures above */
};

/* A copy of bpf/h2steer.bpf.c tuple_of(), minus the CTX_LOAD barriers. */
static int sim_tuple_of(const struct sim_sockops *s, struct h2s_tuple *t)
{
	memset(t, 0, sizeof(*t)); /* the program starts from `struct h2s_tuple t = {}` */
	if (s->family == AF_INET) {
		h2s_addr_set4(&t->client, s->local_ip4, h2s_sockops_local_port(s->local_port));
		h2s_addr_set4(&t->listener, s->remote_ip4, h2s_sockops_remote_port(s->remote_port));
	} else if (s->family == AF_INET6) {
		h2s_addr_set6(&t->client, s->local_ip6[0], s->local_ip6[1], s->local_ip6[2],
			      s->local_ip6[3], h2s_sockops_local_port(s->local_port));
		h2s_addr_set6(&t->listener, s->remote_ip6[0], s->remote_ip6[1], s->remote_ip6[2],
			      s->remote_ip6[3], h2s_sockops_remote_port(s->remote_port));
	} else {
		return -EAFNOSUPPORT;
	}
	return 0;
}

/* A copy of user/proxy/h2_server.c origin_of(): getpeername() is the client, getsockname() the
 * listener, both of the accepted socket.
 */
static int sim_origin_of(const struct sockaddr *peer, const struct sockaddr *self,
			 struct h2s_tuple *t)
{
	memset(t, 0, sizeof(*t));
	if (h2s_addr_from_sockaddr(peer, &t->client) < 0 ||
	    h2s_addr_from_sockaddr(self, &t->listener) < 0)
		return -EAFNOSUPPORT;
	return 0;
}

static struct sockaddr_in sin_of(const char *ip, uint16_t port)
{
	struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };

	cr_assert_eq(inet_pton(AF_INET, ip, &s.sin_addr), 1);
	return s;
}

static struct sockaddr_in6 sin6_of(const char *ip, uint16_t port)
{
	struct sockaddr_in6 s = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	cr_assert_eq(inet_pton(AF_INET6, ip, &s.sin6_addr), 1);
	return s;
}

static void ip6_words(const char *ip, uint32_t w[4])
{
	struct in6_addr a;

	cr_assert_eq(inet_pton(AF_INET6, ip, &a), 1);
	memcpy(w, &a, 16);
}

/* Connection 127.0.0.1:40000 -> 127.0.0.1:15001 on an AF_INET socket. */
Test(addr, origin_key_identical_ipv4)
{
	struct sim_sockops ops = {
		.family = AF_INET,
		.local_ip4 = inet_addr("127.0.0.1"),
		.remote_ip4 = inet_addr("127.0.0.1"),
		.local_port = RAW_SOCKOPS_LOCAL_40000,
		.remote_port = RAW_SOCKOPS_REMOTE_15001,
	};
	struct sockaddr_in peer = sin_of("127.0.0.1", 40000), self = sin_of("127.0.0.1", 15001);
	struct h2s_tuple kern, daemon;
	struct h2s_addr client = addr_of("127.0.0.1:40000"), listener = addr_of("127.0.0.1:15001");

	cr_assert_eq(sim_tuple_of(&ops, &kern), 0);
	cr_assert_eq(sim_origin_of((struct sockaddr *)&peer, (struct sockaddr *)&self, &daemon), 0);
	cr_assert_eq(memcmp(&kern, &daemon, sizeof(kern)), 0);
	cr_assert_eq(memcmp(&kern.client, &client, sizeof(client)), 0);
	cr_assert_eq(memcmp(&kern.listener, &listener, sizeof(listener)), 0);
}

/* A dual-stack AF_INET6 client socket connected to ::ffff:127.0.0.1: sockops reports family
 * AF_INET6 with v4-mapped addresses; the daemon accepted it on its IPv4 listener (AF_INET).
 */
Test(addr, origin_key_identical_v4_mapped_client_ipv4_listener)
{
	struct sim_sockops ops = {
		.family = AF_INET6,
		.local_port = RAW_SOCKOPS_LOCAL_40000,
		.remote_port = RAW_SOCKOPS_REMOTE_15001,
	};
	struct sockaddr_in peer = sin_of("127.0.0.1", 40000), self = sin_of("127.0.0.1", 15001);
	struct h2s_tuple kern, daemon;

	ip6_words("::ffff:127.0.0.1", ops.local_ip6);
	ip6_words("::ffff:127.0.0.1", ops.remote_ip6);
	cr_assert_eq(sim_tuple_of(&ops, &kern), 0);
	cr_assert_eq(sim_origin_of((struct sockaddr *)&peer, (struct sockaddr *)&self, &daemon), 0);
	cr_assert_eq(memcmp(&kern, &daemon, sizeof(kern)), 0);
}

/* Same client; the daemon's listener is a dual-stack AF_INET6 socket, so getpeername() and
 * getsockname() return v4-mapped sockaddr_in6.
 */
Test(addr, origin_key_identical_v4_mapped_both_sides)
{
	struct sim_sockops ops = {
		.family = AF_INET6,
		.local_port = RAW_SOCKOPS_LOCAL_40000,
		.remote_port = RAW_SOCKOPS_REMOTE_15001,
	};
	struct sockaddr_in6 peer = sin6_of("::ffff:127.0.0.1", 40000);
	struct sockaddr_in6 self = sin6_of("::ffff:127.0.0.1", 15001);
	struct h2s_tuple kern, daemon;

	ip6_words("::ffff:127.0.0.1", ops.local_ip6);
	ip6_words("::ffff:127.0.0.1", ops.remote_ip6);
	cr_assert_eq(sim_tuple_of(&ops, &kern), 0);
	cr_assert_eq(sim_origin_of((struct sockaddr *)&peer, (struct sockaddr *)&self, &daemon), 0);
	cr_assert_eq(memcmp(&kern, &daemon, sizeof(kern)), 0);
	cr_assert(h2s_addr_is_v4(&kern.client));
}

/* [::1]:40000 -> [::1]:15001. */
Test(addr, origin_key_identical_ipv6)
{
	struct sim_sockops ops = {
		.family = AF_INET6,
		.local_port = RAW_SOCKOPS_LOCAL_40000,
		.remote_port = RAW_SOCKOPS_REMOTE_15001,
	};
	struct sockaddr_in6 peer = sin6_of("::1", 40000), self = sin6_of("::1", 15001);
	struct h2s_tuple kern, daemon;
	struct h2s_addr listener = addr_of("[::1]:15001");

	ip6_words("::1", ops.local_ip6);
	ip6_words("::1", ops.remote_ip6);
	cr_assert_eq(sim_tuple_of(&ops, &kern), 0);
	cr_assert_eq(sim_origin_of((struct sockaddr *)&peer, (struct sockaddr *)&self, &daemon), 0);
	cr_assert_eq(memcmp(&kern, &daemon, sizeof(kern)), 0);
	cr_assert_eq(memcmp(&kern.listener, &listener, sizeof(listener)), 0);
}

/* connect4 (user_ip4) and connect6 with a v4-mapped destination (user_ip6) build the service
 * key the CLI wrote from "127.0.100.1:15001".
 */
Test(addr, connect4_and_connect6_build_the_cli_key)
{
	struct h2s_addr want = addr_of("127.0.100.1:15001"), k4, k6;
	uint32_t w[4];

	h2s_addr_set4(&k4, inet_addr("127.0.100.1"), h2s_sockaddr_port(RAW_SOCK_ADDR_USER_15001));
	ip6_words("::ffff:127.0.100.1", w);
	h2s_addr_set6(&k6, w[0], w[1], w[2], w[3], h2s_sockaddr_port(RAW_SOCK_ADDR_USER_15001));
	cr_assert_eq(memcmp(&k4, &want, sizeof(want)), 0);
	cr_assert_eq(memcmp(&k6, &want, sizeof(want)), 0);
}

Test(addr, loopback_is_127_slash_8_and_ipv6_one)
{
	static const struct {
		const char *text;
		bool loopback;
	} cases[] = {
		{ "127.0.0.1:1", true },   { "127.255.0.9:1", true },  { "[::1]:1", true },
		{ "128.0.0.1:1", false },  { "10.22.0.1:1", false },   { "[::2]:1", false },
		{ "[fd00::1]:1", false },  { "[::ffff:127.0.0.5]:1", true },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct h2s_addr a;

		cr_assert_eq(h2s_addr_parse(cases[i].text, &a, NULL, 0), 0, "%s", cases[i].text);
		cr_assert_eq(h2s_addr_is_loopback(&a), cases[i].loopback, "%s", cases[i].text);
	}
}

Test(addr, bare_ip_parses_without_port_and_formats_back)
{
	static const struct {
		const char *text, *back; /* back NULL: rejected */
	} cases[] = {
		{ "10.22.0.5", "10.22.0.5" },     { "fd00::5", "fd00::5" },
		{ "::ffff:10.0.0.1", "10.0.0.1" }, { "10.22.0.5:80", NULL },
		{ "[fd00::5]", NULL },             { "10.22.0.5/24", NULL },
		{ "", NULL },                      { "host.example", NULL },
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct h2s_addr a, want;
		char buf[H2S_ADDR_STRLEN];
		int rc = h2s_ip_parse(cases[i].text, &a);

		if (!cases[i].back) {
			cr_assert_eq(rc, -EINVAL, "%s accepted", cases[i].text);
			continue;
		}
		cr_assert_eq(rc, 0, "%s rejected", cases[i].text);
		cr_assert_eq(a.port, 0);
		cr_assert_str_eq(h2s_ip_format(&a, buf, sizeof(buf)), cases[i].back);
		snprintf(buf, sizeof(buf), strchr(cases[i].back, ':') ? "[%s]:1" : "%s:1",
			 cases[i].back);
		want = addr_of(buf);
		want.port = 0;
		cr_assert_eq(memcmp(&a, &want, sizeof(a)), 0, "%s", cases[i].text);
	}
	cr_assert_eq(h2s_ip_parse(NULL, &(struct h2s_addr){ 0 }), -EINVAL);
}

Test(addr, a_source_is_the_address_without_its_port)
{
	struct h2s_addr a, b, s1, s2;
	char err[128];

	cr_assert_eq(h2s_addr_parse("10.0.0.7:41000", &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(h2s_addr_parse("10.0.0.7:41002", &b, err, sizeof(err)), 0, "%s", err);
	s1 = h2s_addr_source(&a);
	s2 = h2s_addr_source(&b);
	cr_assert(h2s_addr_equal(&s1, &s2));
	cr_assert_eq(s1.port, 0);
	cr_assert_not(h2s_addr_equal(&a, &b));
	cr_assert_eq(h2s_addr_parse("[fd00::7]:41000", &a, err, sizeof(err)), 0, "%s", err);
	s2 = h2s_addr_source(&a);
	cr_assert_not(h2s_addr_equal(&s1, &s2), "v4 and v6 sources differ");
}
