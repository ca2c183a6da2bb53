/* h2_upstream.h — connections to backends: HTTP/2 client sessions, pooled per backend. */
#ifndef H2S_H2_UPSTREAM_H
#define H2S_H2_UPSTREAM_H

#include "relay.h"

struct h2s_plane;
struct h2s_backend_rt;

/* A connection to be with room for one more stream, opening one if needed; NULL if a new
 * connection could not even be started (the backend is then marked down).
 */
struct h2s_upstream *h2s_pool_get(struct h2s_plane *p, struct h2s_backend_rt *be);
/* No service wants new RPCs on be (removed or drained everywhere): close its idle
 * connections now; busy ones close when they go idle.
 */
void h2s_pool_idle(struct h2s_backend_rt *be, void *daemon);
/* Close every upstream connection (daemon exit). */
void h2s_pool_close_all(struct h2s_plane *p);

/* A connection of be's pool over fd: connected, or with connect() in progress; fd -1: no
 * socket, its session driven in memory (conn.h). NULL on failure (fd stays the caller's).
 */
struct h2s_upstream *h2s_upstream_new(struct h2s_plane *p, struct h2s_backend_rt *be, int fd,
				     bool connecting);
void h2s_upstream_busy(struct h2s_upstream *up);
/* A stream left up: start its idle clock or close it if its backend is gone. */
void h2s_upstream_stream_done(struct h2s_upstream *up);

int h2s_upstream_callbacks(nghttp2_session_callbacks **out);

#endif /* H2S_H2_UPSTREAM_H */
