/* h2alloc.h — the allocator every nghttp2 session of the proxy uses (h2alloc.c says why). */
#ifndef H2S_H2ALLOC_H
#define H2S_H2ALLOC_H

#include <nghttp2/nghttp2.h>

/* Stateless and shared by every loop: the same for all sessions. */
nghttp2_mem *h2s_nghttp2_mem(void);

#endif /* H2S_H2ALLOC_H */
