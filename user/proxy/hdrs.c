/* hdrs.c — see hdrs.h. */
#include "hdrs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void h2s_hdrs_init(struct h2s_hdrs *h)
{
	memset(h, 0, sizeof(*h));
}

void h2s_hdrs_free(struct h2s_hdrs *h)
{
	free(h->h);
	free(h->buf);
	h2s_hdrs_init(h);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
	size_t c = *cap ? *cap : first;
	void *np;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	np = realloc(*p, c * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = c;
	return 0;
}

int h2s_hdrs_add(struct h2s_hdrs *h, const uint8_t *name, size_t nlen, const uint8_t *value,
		 size_t vlen)
{
	if (grow((void **)&h->h, &h->cap, h->n + 1, sizeof(*h->h), 16) < 0 ||
	    /* +1: the buffer exists once a header does, even an empty one */
	    grow((void **)&h->buf, &h->size, h->used + nlen + vlen + 1, 1, 512) < 0)
		return -ENOMEM;
	h->h[h->n] = (struct h2s_hdr){ .name_off = (uint32_t)h->used, .name_len = (uint32_t)nlen,
				       .value_off = (uint32_t)(h->used + nlen),
				       .value_len = (uint32_t)vlen };
	memcpy(h->buf + h->used, name, nlen);
	memcpy(h->buf + h->used + nlen, value, vlen);
	h->used += nlen + vlen;
	h->bytes += nlen + vlen;
	h->n++;
	return 0;
}

size_t h2s_hdrs_list_size(const struct h2s_hdrs *h)
{
	return h->bytes + h->n * H2S_HDR_OVERHEAD;
}

int h2s_hdrs_add_within(struct h2s_hdrs *h, const uint8_t *name, size_t nlen,
			const uint8_t *value, size_t vlen, size_t limit)
{
	size_t size = h2s_hdrs_list_size(h), room = size < limit ? limit - size : 0;

	/* Each length alone first, so that their sum cannot wrap. */
	if (h->over || h->n >= H2S_HDRS_MAX_FIELDS || nlen > room || vlen > room ||
	    nlen + vlen + H2S_HDR_OVERHEAD > room) {
		h->over = true;
		return -E2BIG;
	}
	return h2s_hdrs_add(h, name, nlen, value, vlen);
}

void h2s_hdrs_to_nv(const struct h2s_hdrs *h, nghttp2_nv *nv)
{
	for (size_t i = 0; i < h->n; i++) {
		nv[i] = (nghttp2_nv){ .name = h->buf + h->h[i].name_off,
				      .namelen = h->h[i].name_len,
				      .value = h->buf + h->h[i].value_off,
				      .valuelen = h->h[i].value_len,
				      .flags = NGHTTP2_NV_FLAG_NONE };
	}
}

const uint8_t *h2s_hdrs_get(const struct h2s_hdrs *h, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < h->n; i++)
		if (h->h[i].name_len == nlen && memcmp(h->buf + h->h[i].name_off, name, nlen) == 0) {
			*len = h->h[i].value_len;
			return h->buf + h->h[i].value_off;
		}
	return NULL;
}

void h2s_hdrs_move(struct h2s_hdrs *dst, struct h2s_hdrs *src)
{
	*dst = *src;
	h2s_hdrs_init(src);
}
