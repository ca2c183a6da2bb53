/* h2s_addr.h — building struct h2s_addr the same way in every hook and in the daemon.
 *
 * The kernel hands out ports differently per context: sock_addr's user_port is network order in
 * the low 16 bits; sockops' remote_port is network order shifted into the high 16 bits on
 * little-endian; sockops' local_port is host order. These helpers are the only place that knows,
 * so the key the sockops program writes and the key the daemon looks up are byte-identical
 * (tests/unit/test_addr.c pins this).
 */
#ifndef H2S_ADDR_H
#define H2S_ADDR_H

#include "h2s_maps.h"

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define h2s_htons(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define h2s_htonl(x) ((__u32)__builtin_bswap32((__u32)(x)))
#else
#define h2s_htons(x) ((__u16)(x))
#define h2s_htonl(x) ((__u32)(x))
#endif
#define h2s_ntohs(x) h2s_htons(x)
#define h2s_ntohl(x) h2s_htonl(x)

#define H2S_V4MAPPED_PREFIX h2s_htonl(0x0000ffff)

static inline __attribute__((always_inline)) void
h2s_addr_set4(struct h2s_addr *a, __u32 ip4_be, __u16 port_be)
{
	a->ip6[0] = 0;
	a->ip6[1] = 0;
	a->ip6[2] = H2S_V4MAPPED_PREFIX;
	a->ip6[3] = ip4_be;
	a->port = port_be;
	a->pad = 0;
}

static inline __attribute__((always_inline)) void
h2s_addr_set6(struct h2s_addr *a, __u32 w0, __u32 w1, __u32 w2, __u32 w3, __u16 port_be)
{
	a->ip6[0] = w0;
	a->ip6[1] = w1;
	a->ip6[2] = w2;
	a->ip6[3] = w3;
	a->port = port_be;
	a->pad = 0;
}

static inline __attribute__((always_inline)) int h2s_addr_is_v4(const struct h2s_addr *a)
{
	return a->ip6[0] == 0 && a->ip6[1] == 0 && a->ip6[2] == H2S_V4MAPPED_PREFIX;
}

/* sockops remote_port: the be16 port, in the high half of the u32 on little-endian. */
static inline __attribute__((always_inline)) __u16 h2s_sockops_remote_port(__u32 raw)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (__u16)(raw >> 16);
#else
	return (__u16)raw;
#endif
}

/* sockops local_port: host order. */
static inline __attribute__((always_inline)) __u16 h2s_sockops_local_port(__u32 raw)
{
	return h2s_htons((__u16)raw);
}

/* sock_addr user_port: the be16 port in the low half. */
static inline __attribute__((always_inline)) __u16 h2s_sockaddr_port(__u32 raw)
{
	return (__u16)raw;
}

#endif /* H2S_ADDR_H */
