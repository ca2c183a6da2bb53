/* h2_server.h — captured client connections: HTTP/2 server sessions, one per connection. */
#ifndef H2S_H2_SERVER_H
#define H2S_H2_SERVER_H

#include "relay.h"

struct h2s_plane;

/* Take an accepted socket: find the service it was dialled for; its first bytes decide how
 * it is served (splice.c).
 */
void h2s_client_accept(struct h2s_plane *p, int fd);
/* fd spoke h2c first (splice.c decided): serve it as an HTTP/2 client connection. */
void h2s_client_start(struct h2s_plane *p, int fd, const struct h2s_addr *peer,
		      const struct h2s_origin *origin);
/* Graceful shutdown: GOAWAY now, final GOAWAY with the last stream id a little later. */
void h2s_client_shutdown(struct h2s_client *cl);

int h2s_server_callbacks(nghttp2_session_callbacks **out);

#endif /* H2S_H2_SERVER_H */
