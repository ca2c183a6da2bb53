/* fuzz_dns — DNS answers as the daemon consumes them (discovery/resolver_dns.c, dns.c): the
 * input is one raw DNS response message. For an SRV resolver srv_done() parses it with
 * ares_parse_srv_reply, takes h2s_dns_min_ttl over its SRV records and keeps the targets of
 * the most preferred priority with their ports and weights (0 -> 1, capped); an address
 * resolver gets it through ares_getaddrinfo, whose parsing of A and AAAA answers (addresses
 * and TTLs) ares_parse_a_reply / ares_parse_aaaa_reply do the same way.
 */
#include "fuzz.h"

#include "dns.h"
#include "h2s_maps.h"

#include <arpa/nameser.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ares_srv_reply *srv = NULL;
	struct ares_addrttl a[16];
	struct ares_addr6ttl a6[16];
	struct hostent *he = NULL;
	int alen = size > 65535 ? 65535 : (int)size, n;
	long ttl;

	if (ares_parse_srv_reply(data, alen, &srv) == ARES_SUCCESS && srv) {
		unsigned short best = 0xffff;
		size_t kept = 0;

		ttl = h2s_dns_min_ttl(data, alen, ns_t_srv);
		FUZZ_CHECK(ttl >= -1);
		for (struct ares_srv_reply *s = srv; s; s = s->next)
			if (s->priority < best)
				best = s->priority;
		for (struct ares_srv_reply *s = srv; s; s = s->next) {
			__u32 weight = s->weight ? s->weight : 1;

			if (s->priority != best)
				continue;
			FUZZ_CHECK(s->host && strlen(s->host) < 1024);
			if (weight > H2S_WEIGHT_MAX)
				weight = H2S_WEIGHT_MAX;
			FUZZ_CHECK(weight >= 1 && weight <= H2S_WEIGHT_MAX);
			kept++;
		}
		FUZZ_CHECK(kept > 0);
	}
	ares_free_data(srv);
	n = 16;
	if (ares_parse_a_reply(data, alen, &he, a, &n) == ARES_SUCCESS) {
		FUZZ_CHECK(n >= 0 && n <= 16);
		FUZZ_CHECK(h2s_dns_min_ttl(data, alen, ns_t_a) >= -1);
	}
	if (he)
		ares_free_hostent(he);
	he = NULL;
	n = 16;
	if (ares_parse_aaaa_reply(data, alen, &he, a6, &n) == ARES_SUCCESS) {
		FUZZ_CHECK(n >= 0 && n <= 16);
		FUZZ_CHECK(h2s_dns_min_ttl(data, alen, ns_t_aaaa) >= -1);
	}
	if (he)
		ares_free_hostent(he);
	/* h2s_dns_min_ttl on its own: any message, any type asked for. */
	FUZZ_CHECK(h2s_dns_min_ttl(data, alen, ns_t_srv) >= -1);
	FUZZ_CHECK(h2s_dns_min_ttl(data, alen, ns_t_a) >= -1);
	return 0;
}
