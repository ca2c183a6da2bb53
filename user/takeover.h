/* takeover.h — handing the node from a running daemon to a new one without a gap.
 *
 * The new daemon (h2steerd --takeover) asks the old one on its control socket; the old one
 * answers with its listening sockets (SCM_RIGHTS) and leaves: it stops accepting, stops writing
 * the maps, lets go of the pin dir and sends GOAWAY to its clients. They reconnect through the
 * same listener addresses the kernel plane already points at, so the new daemon, holding the
 * very same sockets, accepts them: no connection is refused and none falls back to L4.
 */
#ifndef H2S_TAKEOVER_H
#define H2S_TAKEOVER_H

#include <stddef.h>
#include <sys/types.h>

#define H2S_TAKEOVER_REQUEST "takeover"
#define H2S_HANDOVER_MAX 8

struct h2s_handover {
	int fds[H2S_HANDOVER_MAX]; /* listening sockets, ours to close */
	int n;
	pid_t from; /* the daemon that handed them over; 0: none was running */
};

/* New daemon: ask the daemon serving pin_dir for its listeners. Returns 0 with h filled (from
 * 0 when no daemon runs there: start afresh), or a negative errno with a reason in err.
 */
int h2s_takeover_request(const char *pin_dir, unsigned timeout_ms, struct h2s_handover *h,
			 char *err, size_t errlen);
void h2s_handover_close(struct h2s_handover *h);

/* Old daemon: answer the request on fd with the n listening sockets in lfds. */
int h2s_takeover_answer(int fd, const int *lfds, int n);

#endif /* H2S_TAKEOVER_H */
