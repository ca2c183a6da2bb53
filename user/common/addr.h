/* addr.h — endpoints as text and as socket addresses, converted to and from struct h2s_addr. */
#ifndef H2S_USER_ADDR_H
#define H2S_USER_ADDR_H

#include "h2s_addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* "[ffff:...:ffff]:65535" plus NUL */
#define H2S_ADDR_STRLEN 64

/* Parse "A.B.C.D:PORT" or "[IPV6]:PORT" (numeric only, port 1..65535). On error returns -EINVAL
 * and, when err is not NULL, writes a one-line reason into err.
 */
int h2s_addr_parse(const char *text, struct h2s_addr *out, char *err, size_t errlen);

/* "A.B.C.D:PORT" for v4-mapped addresses, "[IPV6]:PORT" otherwise. Returns buf. */
char *h2s_addr_format(const struct h2s_addr *a, char *buf, size_t len);

/* A bare IP, no port ("10.22.0.5", "fd00::5"): into out with port 0 (IPv4 v4-mapped), or
 * -EINVAL. And back: the IP alone, without brackets. Returns buf.
 */
int h2s_ip_parse(const char *text, struct h2s_addr *out);
char *h2s_ip_format(const struct h2s_addr *a, char *buf, size_t len);

/* Address family a socket must use to reach a: AF_INET for v4-mapped addresses. */
int h2s_addr_family(const struct h2s_addr *a);

/* To/from socket addresses. to_sockaddr returns the length, from_sockaddr -EAFNOSUPPORT for
 * families other than AF_INET/AF_INET6.
 */
socklen_t h2s_addr_to_sockaddr(const struct h2s_addr *a, struct sockaddr_storage *ss);
int h2s_addr_from_sockaddr(const struct sockaddr *sa, struct h2s_addr *out);

bool h2s_addr_equal(const struct h2s_addr *a, const struct h2s_addr *b);
/* The source a peer address counts under (a pod, a host): its port and pad zeroed. */
struct h2s_addr h2s_addr_source(const struct h2s_addr *peer);
/* 127.0.0.0/8 or ::1. */
bool h2s_addr_is_loopback(const struct h2s_addr *a);
/* Stable hash of an address (for the daemon's tables). */
unsigned int h2s_addr_hash(const struct h2s_addr *a);

#endif /* H2S_USER_ADDR_H */
