/* lifecycle.h — how a daemon stops and how it hands the node to the next one.
 *
 * SIGTERM/SIGINT: drain. Capture goes off (with state kept, connects go straight to a backend
 *   until the next daemon is up; otherwise they are left alone), the listeners linger
 *   H2S_LINGER_MS for connects already on their way, every client gets GOAWAY, and the daemon
 *   exits once their streams are done (or after drain_timeout_ms). With --keep-state the node
 *   is left at once: the next daemon may start while this one drains.
 *
 * Takeover, asked by a new daemon on the control socket ("takeover PIN_DIR"):
 *   1. our listening sockets are sent to it; we let go of the control socket, the metrics
 *      listener and the pin dir lock so that it can take them, and keep serving meanwhile;
 *   2. it says "ready" once it serves: we leave the node and drain. If its connection closes
 *      without "ready", it failed: we take the node back (lock, control, metrics, capture).
 * A second Ctrl-C exits at once; a repeated SIGTERM does not cut a drain short.
 */
#ifndef H2S_LIFECYCLE_H
#define H2S_LIFECYCLE_H

struct h2s_daemon;

#define H2S_LINGER_MS 200

/* Watch the signalfd (d->sig.fd) and set up the timers and flushes. */
int h2s_lifecycle_init(struct h2s_daemon *d);
/* A worker's (workers.h): the drain and linger timers only; the main loop tells it when to
 * drain, and hands its sockets over with its own.
 */
void h2s_lifecycle_init_worker(struct h2s_daemon *w);
void h2s_lifecycle_fini(struct h2s_daemon *d);

/* Phase 1 of a takeover, asked on control connection fd for the pin dir `pin_dir`: negative
 * errno when this daemon cannot (draining, already handing over, another pin dir).
 */
int h2s_daemon_hand_over(struct h2s_daemon *d, int fd, const char *pin_dir);

#endif /* H2S_LIFECYCLE_H */
