/* addr.c — see addr.h. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *text, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "invalid address '%s': %s", text, why);
	return -EINVAL;
}

static int parse_port(const char *p, __u16 *port_be)
{
	char *end;
	long v;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(p, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	*port_be = htons((uint16_t)v);
	return 0;
}

int h2s_addr_parse(const char *text, struct h2s_addr *out, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port, *close;
	struct in6_addr a6;
	struct in_addr a4;
	size_t hlen;
	__u16 pbe;

	if (!text || !*text)
		return fail(err, errlen, text ? text : "", "empty");
	if (text[0] == '[') {
		close = strchr(text, ']');
		if (!close || close[1] != ':')
			return fail(err, errlen, text, "expected [IPV6]:PORT");
		hlen = (size_t)(close - text - 1);
		port = close + 2;
	} else {
		port = strrchr(text, ':');
		if (!port)
			return fail(err, errlen, text, "missing :PORT (expected ADDR:PORT)");
		if (memchr(text, ':', (size_t)(port - text)))
			return fail(err, errlen, text, "IPv6 addresses need brackets: [IPV6]:PORT");
		hlen = (size_t)(port - text);
		port++;
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return fail(err, errlen, text, "bad host part");
	memcpy(host, text[0] == '[' ? text + 1 : text, hlen);
	host[hlen] = '\0';
	if (parse_port(port, &pbe) < 0)
		return fail(err, errlen, text, "port must be a number from 1 to 65535");
	if (text[0] != '[' && inet_pton(AF_INET, host, &a4) == 1) {
		h2s_addr_set4(out, a4.s_addr, pbe);
		return 0;
	}
	if (text[0] == '[' && inet_pton(AF_INET6, host, &a6) == 1) {
		h2s_addr_set6(out, a6.s6_addr32[0], a6.s6_addr32[1], a6.s6_addr32[2],
			      a6.s6_addr32[3], pbe);
		return 0;
	}
	return fail(err, errlen, text, "not a numeric IPv4 or IPv6 address (names are not resolved here)");
}

char *h2s_ip_format(const struct h2s_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (h2s_addr_is_v4(a))
		inet_ntop(AF_INET, &a->ip6[3], host, sizeof(host));
	else
		inet_ntop(AF_INET6, a->ip6, host, sizeof(host));
	snprintf(buf, len, "%s", host);
	return buf;
}

char *h2s_addr_format(const struct h2s_addr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	h2s_ip_format(a, host, sizeof(host));
	snprintf(buf, len, h2s_addr_is_v4(a) ? "%s:%u" : "[%s]:%u", host, ntohs(a->port));
	return buf;
}

int h2s_ip_parse(const char *text, struct h2s_addr *out)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (text && inet_pton(AF_INET, text, &a4) == 1) {
		h2s_addr_set4(out, a4.s_addr, 0);
		return 0;
	}
	if (text && inet_pton(AF_INET6, text, &a6) == 1) {
		h2s_addr_set6(out, a6.s6_addr32[0], a6.s6_addr32[1], a6.s6_addr32[2],
			      a6.s6_addr32[3], 0);
		return 0;
	}
	return -EINVAL;
}

int h2s_addr_family(const struct h2s_addr *a)
{
	return h2s_addr_is_v4(a) ? AF_INET : AF_INET6;
}

socklen_t h2s_addr_to_sockaddr(const struct h2s_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (h2s_addr_is_v4(a)) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = a->ip6[3];
		sin->sin_port = a->port;
		return sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->ip6, sizeof(a->ip6));
		sin6->sin6_port = a->port;
		return sizeof(*sin6);
	}
}

int h2s_addr_from_sockaddr(const struct sockaddr *sa, struct h2s_addr *out)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		h2s_addr_set4(out, sin->sin_addr.s_addr, sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		h2s_addr_set6(out, s6->sin6_addr.s6_addr32[0], s6->sin6_addr.s6_addr32[1],
			      s6->sin6_addr.s6_addr32[2], s6->sin6_addr.s6_addr32[3], s6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}

bool h2s_addr_equal(const struct h2s_addr *a, const struct h2s_addr *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

unsigned int h2s_addr_hash(const struct h2s_addr *a)
{
	/* FNV-1a over the 20 key bytes: small, and good enough for table buckets. */
	const unsigned char *p = (const unsigned char *)a;
	unsigned int h = 2166136261u;

	for (size_t i = 0; i < sizeof(*a); i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

struct h2s_addr h2s_addr_source(const struct h2s_addr *peer)
{
	struct h2s_addr ip = *peer;

	ip.port = 0;
	ip.pad = 0;
	return ip;
}

bool h2s_addr_is_loopback(const struct h2s_addr *a)
{
	static const unsigned char one6[16] = { [15] = 1 }; /* ::1 */

	if (h2s_addr_is_v4(a))
		return (ntohl(a->ip6[3]) >> 24) == 127;
	return !memcmp(a->ip6, one6, sizeof(one6));
}
