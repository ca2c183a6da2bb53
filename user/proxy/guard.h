/* guard.h — the client leg's guard: a tap on every frame header a client sends, seen before
 * libnghttp2 reads it, that pays the frame and reset budgets of calm.h and judges frames on
 * stream ids below the highest one used (RFC 9113 section 5.1), and what the client leg tells
 * it of the frames we send.
 *
 * libnghttp2 drops frames on streams it closed without a callback (and forgets the stream), so
 * neither their cost nor their legality can be judged after it: the tap hands nghttp2 the bytes
 * up to each frame header, judges the header with the session as the frames before it left
 * it, then lets the frame go on. Over a budget, or on a frame the RFC makes a connection
 * error, the connection gets GOAWAY (ENHANCE_YOUR_CALM, or the error's code), counted in
 * h2s_stats.client_abuse and logged at most once per cause and interval; nothing more it sends
 * is read.
 */
#ifndef H2S_GUARD_H
#define H2S_GUARD_H

#include "relay.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The client leg's h2s_conn.recv: in place of nghttp2_session_mem_recv(). */
ssize_t h2s_guard_recv(struct h2s_conn *c, const uint8_t *buf, size_t n);
/* We sent a DATA frame to the client (work: pays for frames that do none). */
void h2s_guard_sent_data(struct h2s_client *cl);
/* We sent RST_STREAM(code) on sid; relayed: the backend reset its side first. */
void h2s_guard_sent_rst(struct h2s_client *cl, int32_t sid, uint32_t code, bool relayed);
/* We sent a GOAWAY: a connection error of nghttp2's is counted and logged here. */
void h2s_guard_sent_goaway(struct h2s_client *cl, const nghttp2_goaway *g);
/* A client stream closed with code (NO_ERROR: answered in full). */
void h2s_guard_stream_closed(struct h2s_client *cl, uint32_t code);

#endif /* H2S_GUARD_H */
