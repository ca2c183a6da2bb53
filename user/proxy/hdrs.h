/* hdrs.h — a header block held by the daemon: the copy of a request's headers kept until the
 * stream is committed to a backend (so it can be replayed elsewhere), and response headers and
 * trailers waiting for their turn on the other connection.
 */
#ifndef H2S_HDRS_H
#define H2S_HDRS_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_hdr {
	uint32_t name_off, name_len, value_off, value_len;
};

struct h2s_hdrs {
	struct h2s_hdr *h;
	size_t n, cap;
	uint8_t *buf;
	size_t used, size;
	size_t bytes; /* name+value bytes, for limits */
	bool over;    /* h2s_hdrs_add_within() refused a field: this is not the block that came */
};

/* RFC 9113 section 6.5.2: SETTINGS_MAX_HEADER_LIST_SIZE counts each field as its name and
 * value octets plus 32.
 */
#define H2S_HDR_OVERHEAD 32
/* Fields one block may hold whatever the byte limit allows: at 32 octets a field, 16 MiB would
 * still be half a million empty fields, each an entry here, an nghttp2_nv and a deflate step
 * when relayed. Proxies stop far lower (Envoy and nghttpx: 100 by default).
 */
#define H2S_HDRS_MAX_FIELDS 8192

void h2s_hdrs_init(struct h2s_hdrs *h);
void h2s_hdrs_free(struct h2s_hdrs *h);
/* 0 or -ENOMEM. */
int h2s_hdrs_add(struct h2s_hdrs *h, const uint8_t *name, size_t nlen, const uint8_t *value,
		 size_t vlen);
/* The size of h as SETTINGS_MAX_HEADER_LIST_SIZE counts it. */
size_t h2s_hdrs_list_size(const struct h2s_hdrs *h);
/* h2s_hdrs_add() for what a peer sends: -E2BIG when the field would take h past `limit`
 * (h2s_hdrs_list_size()) or H2S_HDRS_MAX_FIELDS; h is `over` from then on and takes no field
 * more, so that decoded headers a peer sends never pile up beyond the limit (an HPACK bomb
 * turns a few bytes on the wire into 4 KiB fields).
 */
int h2s_hdrs_add_within(struct h2s_hdrs *h, const uint8_t *name, size_t nlen,
			const uint8_t *value, size_t vlen, size_t limit);
/* Fill nv (room for h->n entries); pointers stay valid until the next add or free. */
void h2s_hdrs_to_nv(const struct h2s_hdrs *h, nghttp2_nv *nv);
/* Value of the first header with that name, or NULL; *len gets its length. */
const uint8_t *h2s_hdrs_get(const struct h2s_hdrs *h, const char *name, size_t *len);
/* Move src into dst (dst must be empty or freed); src is left empty. */
void h2s_hdrs_move(struct h2s_hdrs *dst, struct h2s_hdrs *src);

#endif /* H2S_HDRS_H */
