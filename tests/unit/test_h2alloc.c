/* test_h2alloc.c — nghttp2's allocator (h2alloc.c): a frame-buffer-sized block is resident
 * only where it was written, heap blocks stay the heap's, blocks keep their contents across
 * realloc over and under the mapping threshold, and a real session lives on it through a
 * handshake and a request.
 */
#include "unit.h"

#include "h2alloc.h"

#include <criterion/criterion.h>
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* nghttp2's outbound frame buffer: 9 (frame header) + 1 + 16384 bytes. */
#define FRAMEBUF 16394

/* Which of the n pages from `start` are resident: bit i for page i. */
static unsigned resident(void *start, size_t n)
{
	unsigned char vec[8];
	unsigned bits = 0;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	cr_assert(n <= sizeof(vec));
	cr_assert_eq(mincore(start, n * pg, vec), 0, "mincore: %m");
	for (size_t i = 0; i < n; i++)
		if (vec[i] & 1)
			bits |= 1u << i;
	return bits;
}

Test(h2alloc, a_frame_buffer_is_resident_only_where_written)
{
	nghttp2_mem *m = h2s_nghttp2_mem();
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *b = m->calloc(1, FRAMEBUF, m->mem_user_data);
	unsigned last = (unsigned)((FRAMEBUF - 1) / pg);

	cr_assert(b);
	cr_assert_eq((uintptr_t)b % pg, 0, "a mapped block starts a page");
	cr_assert_eq(resident(b, 5), 0, "calloc faulted in pages: %#x", resident(b, 5));
	b[FRAMEBUF - 1] = 7;
	cr_assert_eq(resident(b, 5), 1u << last, "%#x", resident(b, 5));
	for (size_t i = 0; i < FRAMEBUF - 1; i++)
		cr_assert_eq(b[i], 0);
	m->free(b, m->mem_user_data);
}

Test(h2alloc, small_blocks_and_page_aligned_heap_blocks_are_the_heaps)
{
	nghttp2_mem *m = h2s_nghttp2_mem();
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	void *small = m->malloc(100, m->mem_user_data), *big = m->malloc(9000, m->mem_user_data);
	void *aligned = aligned_alloc(pg, pg); /* free() must not take it for a mapped one */

	cr_assert(small && big && aligned);
	cr_assert_neq((uintptr_t)small % pg, 0);
	cr_assert_eq((uintptr_t)big % pg, 0);
	m->free(aligned, m->mem_user_data);
	m->free(small, m->mem_user_data);
	m->free(big, m->mem_user_data);
	/* Many at once, freed in another order: the table grows and forgets. */
	void *many[600];

	for (int i = 0; i < 600; i++) {
		many[i] = m->malloc(8192 + (size_t)i, m->mem_user_data);
		cr_assert(many[i]);
		memset(many[i], i & 0xff, 8192);
	}
	for (int i = 0; i < 600; i += 2)
		m->free(many[i], m->mem_user_data);
	for (int i = 1; i < 600; i += 2) {
		cr_assert_eq(((uint8_t *)many[i])[8191], i & 0xff);
		m->free(many[i], m->mem_user_data);
	}
}

Test(h2alloc, realloc_keeps_the_contents_across_the_threshold)
{
	nghttp2_mem *m = h2s_nghttp2_mem();
	uint8_t *p = m->malloc(100, m->mem_user_data);

	cr_assert(p);
	for (int i = 0; i < 100; i++)
		p[i] = (uint8_t)i;
	p = m->realloc(p, 40000, m->mem_user_data); /* heap to mapped */
	cr_assert(p);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(p[i], (uint8_t)i);
	memset(p + 100, 0xab, 40000 - 100);
	p = m->realloc(p, 50, m->mem_user_data); /* mapped to heap */
	cr_assert(p);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(p[i], (uint8_t)i);
	p = m->realloc(p, 200, m->mem_user_data); /* heap to heap */
	cr_assert(p);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(p[i], (uint8_t)i);
	m->free(p, m->mem_user_data);
	m->free(NULL, m->mem_user_data);
	cr_assert_null(m->calloc((size_t)1 << 62, 16, m->mem_user_data));
	cr_assert_null(m->malloc(SIZE_MAX - 8, m->mem_user_data));
}

static ssize_t into(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *user)
{
	nghttp2_session *peer = user;

	(void)s;
	(void)flags;
	return nghttp2_session_mem_recv(peer, data, len) == (ssize_t)len ? (ssize_t)len
									 : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int got_headers(nghttp2_session *s, const nghttp2_frame *f, void *user)
{
	(void)s;
	if (f->hd.type == NGHTTP2_HEADERS)
		(*(int *)user)++;
	return 0;
}

Test(h2alloc, a_session_on_it_reads_a_request_from_one_on_the_heap)
{
	nghttp2_session_callbacks *scb, *ccb;
	nghttp2_session *server, *client;
	int heads = 0;
	const nghttp2_nv req[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":path", (uint8_t *)"/a.B/C", 5, 6, 0 },
		{ (uint8_t *)":authority", (uint8_t *)"x", 10, 1, 0 },
	};

	cr_assert_eq(nghttp2_session_callbacks_new(&scb), 0);
	cr_assert_eq(nghttp2_session_callbacks_new(&ccb), 0);
	nghttp2_session_callbacks_set_on_frame_recv_callback(scb, got_headers);
	nghttp2_session_callbacks_set_send_callback(ccb, into);
	cr_assert_eq(nghttp2_session_server_new3(&server, scb, &heads, NULL, h2s_nghttp2_mem()),
		     0);
	cr_assert_eq(nghttp2_session_client_new(&client, ccb, server), 0);
	cr_assert_eq(nghttp2_submit_settings(client, 0, NULL, 0), 0);
	cr_assert_gt(nghttp2_submit_request(client, NULL, req, ARRAY_LEN(req), NULL, NULL), 0);
	cr_assert_eq(nghttp2_session_send(client), 0);
	cr_assert_eq(heads, 1);
	/* The server's SETTINGS and its ACK, serialized in the mapped frame buffer. */
	cr_assert_gt(nghttp2_submit_settings(server, 0, NULL, 0), -1);
	for (;;) {
		const uint8_t *out;
		ssize_t n = nghttp2_session_mem_send(server, &out);

		cr_assert_geq(n, 0);
		if (!n)
			break;
		cr_assert_eq(nghttp2_session_mem_recv(client, out, (size_t)n), n);
	}
	nghttp2_session_del(client);
	nghttp2_session_del(server);
	nghttp2_session_callbacks_del(scb);
	nghttp2_session_callbacks_del(ccb);
}
