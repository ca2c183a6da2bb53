/* outbuf.h — bytes serialized for a socket that the socket has not taken yet. Unsent bytes
 * are kept at the front, so a peer that always takes a little less than offered cannot make
 * the buffer grow beyond what is pending plus one append.
 */
#ifndef H2S_OUTBUF_H
#define H2S_OUTBUF_H

#include <stddef.h>
#include <stdint.h>

struct h2s_outbuf {
	uint8_t *buf;
	size_t off, len, cap; /* pending bytes are buf[off, len) */
};

/* 0, or -ENOMEM (nothing appended). */
int h2s_ob_append(struct h2s_outbuf *b, const uint8_t *p, size_t n);
/* n more pending bytes at the end, for the caller to fill; where they are, or NULL when
 * memory is short (nothing added).
 */
uint8_t *h2s_ob_extend(struct h2s_outbuf *b, size_t n);
/* The socket took n bytes. */
void h2s_ob_consume(struct h2s_outbuf *b, size_t n);
void h2s_ob_free(struct h2s_outbuf *b);

static inline size_t h2s_ob_pending(const struct h2s_outbuf *b)
{
	return b->len - b->off;
}

static inline const uint8_t *h2s_ob_data(const struct h2s_outbuf *b)
{
	return b->buf + b->off;
}

#endif /* H2S_OUTBUF_H */
