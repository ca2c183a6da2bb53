/* frametrack.c — see frametrack.h. */
#include "frametrack.h"

#include <string.h>

#define PREFACE_LEN 24
#define T_HEADERS 0x1
#define T_PUSH_PROMISE 0x5
#define T_CONTINUATION 0x9
#define F_END_HEADERS 0x4

void h2s_ft_init_server(struct h2s_frametrack *ft)
{
	memset(ft, 0, sizeof(*ft));
	ft->skip = PREFACE_LEN;
}

/* The current frame's last byte went by. */
static unsigned frame_done(struct h2s_frametrack *ft)
{
	if (ft->ends_block)
		ft->in_block = false;
	ft->ends_block = false;
	return 1;
}

/* A whole frame header arrived: what the frame does to the header block. */
static unsigned header_done(struct h2s_frametrack *ft)
{
	uint8_t type = ft->hdr[3], flags = ft->hdr[4];

	ft->hlen = 0;
	ft->left = (uint32_t)ft->hdr[0] << 16 | (uint32_t)ft->hdr[1] << 8 | ft->hdr[2];
	if (type == T_HEADERS || type == T_PUSH_PROMISE) {
		ft->in_block = true;
		ft->ends_block = flags & F_END_HEADERS;
	} else if (type == T_CONTINUATION) {
		ft->ends_block = flags & F_END_HEADERS;
	}
	return ft->left ? 0 : frame_done(ft);
}

unsigned h2s_ft_feed(struct h2s_frametrack *ft, const uint8_t *data, size_t n)
{
	unsigned done = 0;

	while (n) {
		size_t k;

		if (ft->skip) {
			k = n < ft->skip ? n : ft->skip;
			ft->skip -= (uint32_t)k;
		} else if (ft->left) {
			k = n < ft->left ? n : ft->left;
			ft->left -= (uint32_t)k;
			if (!ft->left)
				done += frame_done(ft);
		} else {
			if (h2s_ft_idle(ft))
				ft->begun++;
			k = sizeof(ft->hdr) - ft->hlen;
			k = n < k ? n : k;
			memcpy(ft->hdr + ft->hlen, data, k);
			ft->hlen += (uint8_t)k;
			if (ft->hlen == sizeof(ft->hdr))
				done += header_done(ft);
		}
		data += k;
		n -= k;
	}
	return done;
}
