/* test_frametrack.c — user/proxy/frametrack.c, what the client timeouts see of a byte stream
 * (between frames or not, frames completed), and relay.c's grpc-timeout parser that bounds a
 * try.
 */
#include "unit.h"

#include "frametrack.h"
#include "relay.h"

#include <string.h>

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* A frame header (length, type, flags, stream) into out; returns 9. */
static size_t fhdr(uint8_t *out, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	out[0] = (uint8_t)(len >> 16);
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)len;
	out[3] = type;
	out[4] = flags;
	out[5] = (uint8_t)(sid >> 24);
	out[6] = (uint8_t)(sid >> 16);
	out[7] = (uint8_t)(sid >> 8);
	out[8] = (uint8_t)sid;
	return 9;
}

static struct h2s_frametrack started(void)
{
	struct h2s_frametrack ft;

	h2s_ft_init_server(&ft);
	cr_assert_eq(h2s_ft_feed(&ft, (const uint8_t *)preface, 24), 0);
	cr_assert(h2s_ft_idle(&ft));
	return ft;
}

Test(frametrack, the_preface_is_no_frame)
{
	struct h2s_frametrack ft;

	h2s_ft_init_server(&ft);
	cr_assert_eq(h2s_ft_feed(&ft, (const uint8_t *)preface, 10), 0);
	cr_assert(h2s_ft_idle(&ft));
	cr_assert_eq(ft.begun, 0);
	cr_assert_eq(h2s_ft_feed(&ft, (const uint8_t *)preface + 10, 14), 0);
	cr_assert_eq(ft.begun, 0);
}

Test(frametrack, whole_frames_in_one_read_leave_it_idle)
{
	struct h2s_frametrack ft = started();
	uint8_t buf[64];
	size_t n = fhdr(buf, 0, 0x4, 0, 0);           /* SETTINGS, empty */

	n += fhdr(buf + n, 8, 0x6, 0, 0);             /* PING */
	memset(buf + n, 'p', 8);
	n += 8;
	cr_assert_eq(h2s_ft_feed(&ft, buf, n), 2);
	cr_assert(h2s_ft_idle(&ft));
}

Test(frametrack, a_frame_fed_byte_by_byte_is_open_until_its_last_byte)
{
	struct h2s_frametrack ft = started();
	uint8_t buf[32];
	size_t n = fhdr(buf, 5, 0x0, 0, 1); /* DATA, 5 bytes */

	memset(buf + n, 'd', 5);
	n += 5;
	for (size_t i = 0; i + 1 < n; i++) {
		cr_assert_eq(h2s_ft_feed(&ft, buf + i, 1), 0, "byte %zu", i);
		cr_assert_not(h2s_ft_idle(&ft), "byte %zu", i);
	}
	cr_assert_eq(h2s_ft_feed(&ft, buf + n - 1, 1), 1);
	cr_assert(h2s_ft_idle(&ft));
	cr_assert_eq(ft.begun, 1, "one thing began");
}

/* Slow headers the other way: HEADERS without END_HEADERS, then CONTINUATIONs that each
 * complete, one at a time: the block stays open (and `begun` does not move) until the
 * CONTINUATION with END_HEADERS.
 */
Test(frametrack, a_header_block_is_open_across_its_continuations)
{
	struct h2s_frametrack ft = started();
	uint8_t buf[32];
	size_t n;

	n = fhdr(buf, 1, 0x1, 0, 1); /* HEADERS, no END_HEADERS */
	buf[n++] = 0x82;
	cr_assert_eq(h2s_ft_feed(&ft, buf, n), 1);
	cr_assert_not(h2s_ft_idle(&ft));
	for (int i = 0; i < 3; i++) {
		n = fhdr(buf, 1, 0x9, 0, 1); /* CONTINUATION, no END_HEADERS */
		buf[n++] = 0x84;
		cr_assert_eq(h2s_ft_feed(&ft, buf, n), 1);
		cr_assert_not(h2s_ft_idle(&ft), "continuation %d", i);
	}
	cr_assert_eq(ft.begun, 1);
	n = fhdr(buf, 1, 0x9, 0x4, 1); /* CONTINUATION, END_HEADERS */
	buf[n++] = 0x86;
	cr_assert_eq(h2s_ft_feed(&ft, buf, n), 1);
	cr_assert(h2s_ft_idle(&ft));
}

Test(frametrack, headers_with_end_headers_close_their_block)
{
	struct h2s_frametrack ft = started();
	uint8_t buf[32];
	size_t n = fhdr(buf, 2, 0x1, 0x4 | 0x1, 1);

	buf[n++] = 0x82;
	buf[n++] = 0x84;
	cr_assert_eq(h2s_ft_feed(&ft, buf, n), 1);
	cr_assert(h2s_ft_idle(&ft));
}

Test(frametrack, each_new_frame_after_idle_counts_as_begun)
{
	struct h2s_frametrack ft = started();
	uint8_t buf[32];
	size_t n = fhdr(buf, 0, 0x4, 0x1, 0); /* SETTINGS ACK */

	for (unsigned i = 1; i <= 3; i++) {
		cr_assert_eq(h2s_ft_feed(&ft, buf, 4), 0); /* part of the header */
		cr_assert_eq(ft.begun, i);
		cr_assert_eq(h2s_ft_feed(&ft, buf + 4, n - 4), 1);
		cr_assert_eq(ft.begun, i);
	}
}

/* ---- grpc-timeout ---- */

static uint64_t gt(const char *s)
{
	return h2s_grpc_timeout_ms((const uint8_t *)s, strlen(s));
}

Test(grpc_timeout, every_unit_in_ms_rounded_up)
{
	cr_assert_eq(gt("1H"), 3600000);
	cr_assert_eq(gt("2M"), 120000);
	cr_assert_eq(gt("5S"), 5000);
	cr_assert_eq(gt("250m"), 250);
	cr_assert_eq(gt("1500u"), 2);
	cr_assert_eq(gt("1000u"), 1);
	cr_assert_eq(gt("1n"), 1);
	cr_assert_eq(gt("99999999H"), 99999999ull * 3600000);
}

Test(grpc_timeout, malformed_is_none)
{
	static const char *bad[] = { "", "S", "10", "10s", "123456789S", "1.5S", "-1S", "1 S" };

	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		cr_assert_eq(gt(bad[i]), 0, "\"%s\"", bad[i]);
}

Test(grpc_timeout, zero_is_already_expired_not_none)
{
	cr_assert_eq(gt("0m"), 1);
}
