/* bytequeue.h — a FIFO of bytes in fixed-size chunks: the body of one direction of one relayed
 * stream. Bounded by HTTP/2 flow control (the peer may send at most one window ahead), so it
 * never needs a limit of its own. Chunks are recycled through a small per-thread cache.
 */
#ifndef H2S_BYTEQUEUE_H
#define H2S_BYTEQUEUE_H

#include <stddef.h>
#include <stdint.h>

#define H2S_CHUNK_SIZE 16384

struct h2s_chunk;

struct h2s_bytequeue {
	struct h2s_chunk *head, *tail;
	size_t len;     /* bytes queued */
	uint32_t r_off; /* read offset in head */
};

void h2s_bq_init(struct h2s_bytequeue *q);
/* 0, or -ENOMEM (nothing appended). */
int h2s_bq_append(struct h2s_bytequeue *q, const uint8_t *data, size_t len);
/* Copy up to len bytes out and drop them; returns the count. */
size_t h2s_bq_read(struct h2s_bytequeue *q, uint8_t *out, size_t len);
void h2s_bq_clear(struct h2s_bytequeue *q);
/* Move all of src to the end of dst (chunks change owner, no copy); src is left empty. */
void h2s_bq_concat(struct h2s_bytequeue *dst, struct h2s_bytequeue *src);
static inline size_t h2s_bq_len(const struct h2s_bytequeue *q)
{
	return q->len;
}
/* Free the calling thread's cached chunks beyond keep (memory given back after a burst). */
void h2s_bq_cache_trim(unsigned keep);
/* Release the calling thread's chunk cache (at exit, so leak checkers stay quiet). */
void h2s_bq_cache_release(void);

#endif /* H2S_BYTEQUEUE_H */
