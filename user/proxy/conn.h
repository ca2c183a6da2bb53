/* conn.h — what both legs of the proxy share: a non-blocking socket driven by one nghttp2
 * session, read with nghttp2_session_mem_recv and written in batches built with
 * nghttp2_session_mem_send once per loop turn.
 *
 * A conn made with fd -1 has no socket: its frames stay in `out` (one batch at most, as for a
 * socket that takes nothing) for whoever drives the session in memory, as the relay's unit
 * tests do, playing both peers.
 */
#ifndef H2S_CONN_H
#define H2S_CONN_H

#include "loop.h"
#include "outbuf.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct h2s_plane;

#define H2S_CONN_LINGER_MS 1000
/* The longest a PING's ACK waits for other frames to go with it (h2s_conn_ping). */
#define H2S_PING_ACK_HOLD_MS 5

struct h2s_conn {
	struct h2s_watch w;
	struct h2s_flush flush;
	struct h2s_reap reap;
	struct h2s_plane *p;
	nghttp2_session *ng;
	/* Serialized frames the socket did not take yet: only what a short write left (the
	 * batch is built in the plane's shared wbuf), freed once sent, so an idle connection
	 * holds no buffer. With fd -1 every frame stays here.
	 */
	struct h2s_outbuf out;
	/* The batch being serialized (the plane's wbuf, or out), while nghttp2_session_mem_send
	 * runs: where DATA sent without copying goes (h2s_conn_data_frame).
	 */
	struct h2s_outbuf *batch;
	uint64_t sent; /* bytes the socket took, in all (progress of a slow reader) */
	bool connecting; /* non-blocking connect() in progress */
	bool dead;       /* socket closed; memory freed after this loop turn */
	uint64_t last_rx_ms; /* loop time of the last bytes read from the socket */
	/* Optional: sees every byte read, before nghttp2 does (the client's frame tracker). */
	void (*on_read)(struct h2s_conn *c, const uint8_t *data, size_t n);
	/* Set by the leg: once the session is finished, send FIN and read on (and drop what
	 * comes) for up to H2S_CONN_LINGER_MS before closing, so that a peer still writing gets our
	 * last frames (a GOAWAY) instead of the TCP reset a close with unread bytes sends.
	 */
	bool linger;
	struct h2s_timer linger_timer;
	/* The ACK of the peer's last PING, not submitted yet (h2s_conn_ping). */
	bool ack_held;
	uint8_t ack_opaque[8];
	struct h2s_timer ack_timer;
	/* Leg-specific: release streams and the leg's own bookkeeping. Called once. */
	void (*teardown)(struct h2s_conn *c, const char *why);
	/* Upstream leg: connect() finished (err = 0 or errno). */
	void (*on_connected)(struct h2s_conn *c, int err);
	/* Client leg: takes the bytes read in place of nghttp2_session_mem_recv() (its frame
	 * tap); NULL: straight to nghttp2. Same result: bytes used, or an nghttp2 error.
	 */
	ssize_t (*recv)(struct h2s_conn *c, const uint8_t *buf, size_t len);
	/* Client leg: after each flush, pending = bytes wait for the socket to take them. */
	void (*after_flush)(struct h2s_conn *c, bool pending);
	/* Frees the leg's object (deferred to the end of the turn). */
	void (*destroy)(struct h2s_conn *c);
};

void h2s_conn_init(struct h2s_conn *c, struct h2s_plane *p, int fd);
/* Start watching the socket (EPOLLIN, plus EPOLLOUT while connecting); none with fd -1. */
int h2s_conn_start(struct h2s_conn *c);
/* Ask for this connection's output to be written at the end of the turn. */
void h2s_conn_mark(struct h2s_conn *c);
/* The peer sent a PING (not an ACK; the sessions are made with no_auto_ping_ack). Its ACK
 * goes out with the next frames written to the connection, or after H2S_PING_ACK_HOLD_MS
 * when none come: gRPC peers send a PING with their messages (grpc-go's BDP estimate), and an
 * ACK written on its own costs a send here and a wake-up of the peer for 17 bytes, per RPC
 * and per leg. A PING that comes while an ACK is held has the held one sent at once, so ACKs
 * keep their order and at most one waits. -1 when nghttp2 refused that one (too many ACKs
 * queued for a peer that does not read): the caller, inside nghttp2's receive, fails it.
 */
int h2s_conn_ping(struct h2s_conn *c, const uint8_t opaque[8]);
/* For the legs' send_data callbacks: DATA frames are queued with NGHTTP2_DATA_FLAG_NO_COPY
 * (relay.c), so that their bytes are copied once, from the stream's queue into the batch,
 * instead of into nghttp2's frame buffer first and from there into the batch. Puts the
 * frame's 9-byte header (framehd) in the batch and returns where its `length` data bytes
 * go; NULL when memory is short. Unpadded frames only: the sessions pad nothing (no
 * select_padding callback).
 */
uint8_t *h2s_conn_data_frame(struct h2s_conn *c, const uint8_t *framehd, size_t length);
/* After a frame of h2s_conn_data_frame: what the send_data callback returns. nghttp2 goes
 * on to the next frame by itself after one sent without copying, so a full batch is where
 * it is told to stop (NGHTTP2_ERR_PAUSE) and the batch goes to the socket first: the batch
 * stays bounded and a socket that is full back-pressures the streams, as for copied frames.
 */
int h2s_conn_data_sent(const struct h2s_conn *c);
/* Close the socket, tear the leg down, free it after the turn. Idempotent. */
void h2s_conn_close(struct h2s_conn *c, const char *why);

#endif /* H2S_CONN_H */
