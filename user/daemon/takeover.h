/* takeover.h — handing the node from a running daemon to a new one without a gap.
 *
 * The new daemon (h2steerd --takeover) asks the old one on its control socket ("takeover
 * PIN_DIR"); the old one answers with its listening sockets (SCM_RIGHTS) and lets go of what the
 * new one must bind and lock, still serving. Once the new daemon serves, it says "ready" on the
 * same connection and the old one leaves (lifecycle.h). Clients reconnect through the listener
 * addresses the kernel plane already points at; the new daemon holds those very sockets, so no
 * connection is refused and none falls back to L4. If the new daemon fails before "ready", its
 * connection closes and the old one carries on.
 */
#ifndef H2S_TAKEOVER_H
#define H2S_TAKEOVER_H

#include <stddef.h>
#include <sys/types.h>

#define H2S_TAKEOVER_REQUEST "takeover"
#define H2S_TAKEOVER_READY "ready"
#define H2S_HANDOVER_MAX 64 /* every loop's sockets (daemon.h H2S_LISTEN_SOCKETS_MAX) */

struct h2s_handover {
	int fds[H2S_HANDOVER_MAX]; /* listening sockets, ours to close */
	int n;
	pid_t from; /* the daemon that handed them over; 0: none was running */
	int conn;   /* the connection to it, until we say "ready" (-1: none) */
};

/* New daemon: ask the daemon serving pin_dir for its listeners. Returns 0 with h filled (from
 * 0 when no daemon runs there: start afresh), or a negative errno with a reason in err.
 */
int h2s_takeover_request(const char *pin_dir, unsigned timeout_ms, struct h2s_handover *h,
			 char *err, size_t errlen);
/* Close the handed-over sockets we hold (the ones in use were duplicated). */
void h2s_handover_close(struct h2s_handover *h);
/* We serve: tell the old daemon to leave. */
void h2s_takeover_ready(struct h2s_handover *h);
/* We failed (or are done): close the connection; before "ready", the old daemon carries on. */
void h2s_takeover_end(struct h2s_handover *h);

/* Old daemon: answer the request on fd with the n listening sockets in lfds. */
int h2s_takeover_answer(int fd, const int *lfds, int n);

#endif /* H2S_TAKEOVER_H */
