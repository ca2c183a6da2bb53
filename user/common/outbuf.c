/* outbuf.c — see outbuf.h. */
#include "outbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint8_t *h2s_ob_extend(struct h2s_outbuf *b, size_t n)
{
	uint8_t *at;

	if (b->off) {
		memmove(b->buf, b->buf + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		uint8_t *nb;

		while (cap < b->len + n)
			cap *= 2;
		nb = realloc(b->buf, cap);
		if (!nb)
			return NULL;
		b->buf = nb;
		b->cap = cap;
	}
	at = b->buf + b->len;
	b->len += n;
	return at;
}

int h2s_ob_append(struct h2s_outbuf *b, const uint8_t *p, size_t n)
{
	uint8_t *at = h2s_ob_extend(b, n);

	if (!at)
		return -ENOMEM;
	memcpy(at, p, n);
	return 0;
}

void h2s_ob_consume(struct h2s_outbuf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void h2s_ob_free(struct h2s_outbuf *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}
