/* bytequeue.c — see bytequeue.h. */
#include "bytequeue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct h2s_chunk {
	struct h2s_chunk *next;
	uint32_t len; /* bytes written into data */
	uint8_t data[H2S_CHUNK_SIZE];
};

/* Enough to cover a burst on a busy loop without holding more than 4 MiB idle. */
#define CACHE_MAX 256

static __thread struct h2s_chunk *cache;
static __thread unsigned cache_n;

static struct h2s_chunk *chunk_get(void)
{
	struct h2s_chunk *c = cache;

	if (c) {
		cache = c->next;
		cache_n--;
	} else {
		c = malloc(sizeof(*c));
		if (!c)
			return NULL;
	}
	c->next = NULL;
	c->len = 0;
	return c;
}

static void chunk_put(struct h2s_chunk *c)
{
	if (cache_n >= CACHE_MAX) {
		free(c);
		return;
	}
	c->next = cache;
	cache = c;
	cache_n++;
}

void h2s_bq_cache_trim(unsigned keep)
{
	while (cache && cache_n > keep) {
		struct h2s_chunk *c = cache;

		cache = c->next;
		cache_n--;
		free(c);
	}
}

void h2s_bq_cache_release(void)
{
	h2s_bq_cache_trim(0);
}

void h2s_bq_init(struct h2s_bytequeue *q)
{
	memset(q, 0, sizeof(*q));
}

int h2s_bq_append(struct h2s_bytequeue *q, const uint8_t *data, size_t len)
{
	size_t room = q->tail ? H2S_CHUNK_SIZE - q->tail->len : 0;
	size_t first = len < room ? len : room;
	struct h2s_chunk *fresh = NULL, **link = &fresh;

	/* Get every chunk needed before copying, so that ENOMEM leaves the queue unchanged. */
	for (size_t need = len - first; need > 0;) {
		struct h2s_chunk *c = chunk_get();
		size_t n = need < H2S_CHUNK_SIZE ? need : H2S_CHUNK_SIZE;

		if (!c) {
			while (fresh) {
				c = fresh->next;
				chunk_put(fresh);
				fresh = c;
			}
			return -ENOMEM;
		}
		c->len = (uint32_t)n;
		*link = c;
		link = &c->next;
		need -= n;
	}
	if (first) {
		memcpy(q->tail->data + q->tail->len, data, first);
		q->tail->len += (uint32_t)first;
	}
	data += first;
	for (struct h2s_chunk *c = fresh; c; c = c->next) {
		memcpy(c->data, data, c->len);
		data += c->len;
		if (q->tail)
			q->tail->next = c;
		else
			q->head = c;
		q->tail = c;
	}
	q->len += len;
	return 0;
}

size_t h2s_bq_read(struct h2s_bytequeue *q, uint8_t *out, size_t len)
{
	size_t done = 0;

	while (done < len && q->head) {
		struct h2s_chunk *c = q->head;
		size_t avail = c->len - q->r_off;
		size_t n = len - done < avail ? len - done : avail;

		memcpy(out + done, c->data + q->r_off, n);
		done += n;
		q->r_off += (uint32_t)n;
		if (q->r_off == c->len) {
			/* Fully read: drop it, even the tail (a later append starts a new chunk). */
			q->head = c->next;
			if (!q->head)
				q->tail = NULL;
			q->r_off = 0;
			chunk_put(c);
		}
	}
	q->len -= done;
	return done;
}

void h2s_bq_clear(struct h2s_bytequeue *q)
{
	while (q->head) {
		struct h2s_chunk *c = q->head;

		q->head = c->next;
		chunk_put(c);
	}
	h2s_bq_init(q);
}

void h2s_bq_concat(struct h2s_bytequeue *dst, struct h2s_bytequeue *src)
{
	if (!src->head)
		return;
	if (!dst->head) {
		*dst = *src;
		h2s_bq_init(src);
		return;
	}
	if (src->r_off) {
		/* dst's reader cannot skip into the middle of a chunk: close the gap first. */
		struct h2s_chunk *c = src->head;

		memmove(c->data, c->data + src->r_off, c->len - src->r_off);
		c->len -= src->r_off;
		src->r_off = 0;
	}
	dst->tail->next = src->head;
	dst->tail = src->tail;
	dst->len += src->len;
	h2s_bq_init(src);
}
