/* dns.h — the daemon's DNS client: one c-ares channel driven by the event loop (its sockets in
 * epoll, its timeouts on a loop timer), shared by every DNS resolver.
 */
#ifndef H2S_DNS_H
#define H2S_DNS_H

#include <ares.h>
#include <stddef.h>

struct h2s_sources;
struct h2s_dns;

/* The loop's channel, created on first use with its DNS servers (or /etc/resolv.conf). */
struct h2s_dns *h2s_dns_get(struct h2s_sources *src, char *err, size_t errlen);
ares_channel h2s_dns_channel(struct h2s_dns *dns);
/* After starting queries: re-arm the timeout timer. */
void h2s_dns_kick(struct h2s_dns *dns);
/* Destroy the channel (pending callbacks run with ARES_EDESTRUCTION first). */
void h2s_dns_free(struct h2s_dns *dns);

/* Smallest TTL of the answer records of `type` in a raw DNS response, or -1 if none. */
long h2s_dns_min_ttl(const unsigned char *abuf, int alen, int type);

#endif /* H2S_DNS_H */
