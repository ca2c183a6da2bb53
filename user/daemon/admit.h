/* admit.h — the caps on one loop's captured client connections, checked as each is accepted:
 * in total (max_client_connections) and per source address (max_client_connections_per_source:
 * a pod is one address; the node's own processes share 127.0.0.1). A connection over a cap is
 * closed at once (daemon.c), so that one source holding idle connections can take neither
 * every descriptor of the process nor every place, and the others are still served.
 *
 * The total is the plane's exact count of open connections (nclients + nsplices). A count per
 * source must learn when a connection closes, which the proxy tells nobody (the daemon hears
 * of a close only as "the last of a drain", h2s_plane_conn_gone()). So it is the kernel that
 * says: each connection admitted is recorded with its descriptor and its socket's cookie
 * (SO_COOKIE: never reused while the machine runs), and a record whose descriptor no longer
 * holds that socket is stale. More records than open connections means some are stale, so
 * they are looked for only then, and only when it matters: a source at its cap, or the
 * records about to grow.
 */
#ifndef H2S_ADMIT_H
#define H2S_ADMIT_H

#include "h2s_maps.h"

#include <stdint.h>

/* A source at its cap has stale records looked for at most this often (less often when a
 * look takes long, admit.c): each look reads every record's socket, and a client closing and
 * reopening in a loop must not make us pay that for every connection it opens.
 */
#define H2S_ADMIT_SWEEP_MS 100

enum h2s_admit_verdict {
	H2S_ADMIT_OK,
	H2S_ADMIT_TOTAL,      /* max_total open on this loop */
	H2S_ADMIT_PER_SOURCE, /* max_per_source open from this address */
	H2S_ADMIT_NOMEM,      /* no memory to count it */
};

struct h2s_admit_rec;
struct h2s_admit_src;

struct h2s_admit {
	uint32_t max_total, max_per_source; /* max_per_source >= max_total: not counted */
	uint64_t seed;                      /* of the source table's hash */
	struct h2s_admit_rec *rec;          /* one per connection admitted, stale ones too */
	uint32_t nrec, rec_cap;
	struct h2s_admit_src *src; /* open addressing: records per address, rebuilt by a sweep */
	uint32_t nsrc, src_cap;
	uint64_t swept_ms, sweep_gap_ms; /* the last sweep; the next not before this after it */
};

void h2s_admit_init(struct h2s_admit *a, uint32_t max_total, uint32_t max_per_source);
/* May fd, just accepted from peer (its port is ignored), be served, `live` connections being
 * open now (each of them admitted here: the records beyond them are the stale ones)? OK: it
 * is counted from now on, until its socket closes.
 */
enum h2s_admit_verdict h2s_admit(struct h2s_admit *a, int fd, const struct h2s_addr *peer,
				 uint32_t live, uint64_t now_ms);
/* Open connections from the address of peer, as counted (stale records included). */
uint32_t h2s_admit_count(const struct h2s_admit *a, const struct h2s_addr *peer);
void h2s_admit_fini(struct h2s_admit *a);

#endif /* H2S_ADMIT_H */
