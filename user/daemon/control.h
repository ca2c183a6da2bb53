/* control.h — h2steerd's control socket: a Unix stream socket where the CLI asks for what only
 * the daemon knows (its connections, streams, counters, health). One request line in, one JSON
 * document out, then the connection closes. Its path is published in the ctl map.
 *
 *   conns | streams | stats | status
 */
#ifndef H2S_CONTROL_H
#define H2S_CONTROL_H

#include <stddef.h>

struct h2s_daemon;
struct h2s_control;

/* Listen on path (its directory is created 0700); NULL with a reason in err. */
struct h2s_control *h2s_control_start(struct h2s_daemon *d, const char *path, char *err,
				      size_t errlen);
void h2s_control_stop(struct h2s_control *ctl);

/* The reply to one request (malloc'ed JSON text), for the socket and for tests. */
char *h2s_control_answer(struct h2s_daemon *d, const char *request);

#endif /* H2S_CONTROL_H */
