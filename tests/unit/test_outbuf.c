/* test_outbuf.c — the connection output buffer: order kept, and bounded for a peer that
 * always takes a little less than offered (that once grew it by every byte ever sent).
 */
#include "unit.h"

#include "outbuf.h"

#include <criterion/criterion.h>
#include <string.h>

Test(outbuf, pending_bytes_come_out_in_order)
{
	struct h2s_outbuf b = { 0 };

	cr_assert_eq(h2s_ob_append(&b, (const uint8_t *)"hello ", 6), 0);
	h2s_ob_consume(&b, 2);
	cr_assert_eq(h2s_ob_append(&b, (const uint8_t *)"world", 5), 0);
	cr_assert_eq(h2s_ob_pending(&b), 9);
	cr_assert_eq(memcmp(h2s_ob_data(&b), "llo world", 9), 0);
	h2s_ob_consume(&b, 9);
	cr_assert_eq(h2s_ob_pending(&b), 0);
	h2s_ob_free(&b);
}

Test(outbuf, short_writes_forever_do_not_grow_it)
{
	struct h2s_outbuf b = { 0 };
	static uint8_t batch[65536];

	/* Each round: top up to one batch pending, the socket takes all but 1000 bytes. */
	for (int round = 0; round < 2000; round++) {
		size_t room = sizeof(batch) - h2s_ob_pending(&b);

		cr_assert_eq(h2s_ob_append(&b, batch, room), 0);
		h2s_ob_consume(&b, h2s_ob_pending(&b) - 1000);
	}
	/* 130 MB went through; the buffer never needed more than one batch. */
	cr_assert_leq(b.cap, 2 * sizeof(batch), "capacity grew to %zu", b.cap);
	h2s_ob_free(&b);
}

Test(outbuf, extend_adds_room_after_what_is_pending)
{
	struct h2s_outbuf b = { 0 };
	uint8_t *at;

	cr_assert_eq(h2s_ob_append(&b, (const uint8_t *)"abcdef", 6), 0);
	h2s_ob_consume(&b, 4);
	at = h2s_ob_extend(&b, 40000); /* moves "ef" to the front and grows past 16 KiB */
	cr_assert_not_null(at);
	cr_assert_eq(at, b.buf + 2);
	memset(at, 'x', 40000);
	cr_assert_eq(h2s_ob_pending(&b), 40002);
	cr_assert_eq(memcmp(h2s_ob_data(&b), "efxx", 4), 0);
	cr_assert_eq(h2s_ob_data(&b)[40001], 'x');
	h2s_ob_free(&b);
}
