/* splice.h — the first bytes of every captured connection; one that does not speak h2c (TLS, HTTP/1.1, anything whose
 * first bytes are not the HTTP/2 client preface) is balanced per connection instead: one
 * backend of its service is picked and the bytes are relayed both ways, unparsed, half-closes
 * included, until both sides are done.
 *
 * The bytes read to decide were only peeked, so the backend gets the stream from its first
 * byte, and a backend that refuses the connect is replaced by another before anything is sent.
 */
#ifndef H2S_SPLICE_H
#define H2S_SPLICE_H

#include "h2s_maps.h"
#include "list.h"

struct h2s_plane;

/* A connection just accepted and captured (origin: where it was going; nothing read or
 * written yet): its first bytes decide between h2s_client_start and a spliced relay.
 */
void h2s_splice_accept(struct h2s_plane *p, int fd, const struct h2s_addr *peer,
		       const struct h2s_origin *origin);
/* Close every spliced connection (drain timeout, daemon stop). */
void h2s_splice_close_all(struct h2s_plane *p);

#endif /* H2S_SPLICE_H */
