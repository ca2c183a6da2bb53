/* frametrack.h — where a client's byte stream stands between HTTP/2 frames, followed beside
 * nghttp2 (which does not say): inside a frame (its header or payload partly read) or inside
 * a header block (HEADERS without END_HEADERS, until the CONTINUATION that ends it). What the
 * client connection's timeouts need (h2_server.c): a frame or header block left unfinished
 * for too long is slowloris; a completed frame is activity.
 *
 * It only counts bytes: validity is nghttp2's, which closes the connection on any violation.
 */
#ifndef H2S_FRAMETRACK_H
#define H2S_FRAMETRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_frametrack {
	uint32_t skip;    /* bytes of the connection preface still to come */
	uint8_t hdr[9];   /* a frame header partly read */
	uint8_t hlen;
	uint32_t left;    /* payload bytes of the current frame still to come */
	bool in_block;    /* a header block is open */
	bool ends_block;  /* the current frame closes it (END_HEADERS) */
	/* Bumped when a byte arrives between frames with no block open: something new began
	 * (what the caller times from).
	 */
	uint32_t begun;
};

/* A server's view: the 24-byte client preface comes first. */
void h2s_ft_init_server(struct h2s_frametrack *ft);
/* Follow n more bytes; returns how many frames they completed. */
unsigned h2s_ft_feed(struct h2s_frametrack *ft, const uint8_t *data, size_t n);
/* Between frames, with no header block open (the preface does not count: the handshake
 * timeout covers it).
 */
static inline bool h2s_ft_idle(const struct h2s_frametrack *ft)
{
	return !ft->hlen && !ft->left && !ft->in_block;
}

#endif /* H2S_FRAMETRACK_H */
