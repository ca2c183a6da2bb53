/* test_bytequeue.c — user/common/bytequeue.c: the chunked byte FIFO of a relayed stream body. */
#include "unit.h"

#include "bytequeue.h"

#include <stdlib.h>

static struct h2s_bytequeue q;

static void setup(void)
{
	h2s_bq_init(&q);
}

/* Drop the queue and the thread's chunk cache, so LeakSanitizer sees every chunk freed. */
static void teardown(void)
{
	h2s_bq_clear(&q);
	h2s_bq_cache_release();
}

TestSuite(bytequeue, .init = setup, .fini = teardown);

/* Byte i of a stream: a pattern with period 251 (prime), so it never lines up with a chunk. */
static uint8_t pat(size_t i)
{
	return (uint8_t)(i % 251);
}

static uint8_t *pattern(size_t off, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = pat(off + i);
	return p;
}

/* Append len pattern bytes starting at stream offset off. */
static void append_pattern(size_t off, size_t len)
{
	uint8_t *p = pattern(off, len);

	cr_assert_eq(h2s_bq_append(&q, p, len), 0);
	free(p);
}

/* Read len bytes and check they are the pattern from stream offset off. */
static void expect_pattern(size_t off, size_t len)
{
	uint8_t *got = malloc(len ? len : 1);

	cr_assert_not_null(got);
	cr_assert_eq(h2s_bq_read(&q, got, len), len);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(got[i], pat(off + i), "byte %zu (stream offset %zu): %u != %u", i,
			     off + i, got[i], pat(off + i));
	free(got);
}

Test(bytequeue, starts_empty)
{
	uint8_t buf[8];

	cr_assert_eq(h2s_bq_len(&q), 0);
	cr_assert_eq(h2s_bq_read(&q, buf, sizeof(buf)), 0);
	cr_assert_eq(h2s_bq_len(&q), 0);
}

Test(bytequeue, small_append_then_read)
{
	static const uint8_t msg[] = "hello, world";
	uint8_t out[sizeof(msg)];

	cr_assert_eq(h2s_bq_append(&q, msg, sizeof(msg)), 0);
	cr_assert_eq(h2s_bq_len(&q), sizeof(msg));
	cr_assert_eq(h2s_bq_read(&q, out, sizeof(out)), sizeof(msg));
	cr_assert_arr_eq(out, msg, sizeof(msg));
	cr_assert_eq(h2s_bq_len(&q), 0);
}

Test(bytequeue, read_more_than_queued_returns_what_is_there)
{
	static const uint8_t msg[] = { 1, 2, 3 };
	uint8_t out[16];

	cr_assert_eq(h2s_bq_append(&q, msg, sizeof(msg)), 0);
	cr_assert_eq(h2s_bq_read(&q, out, sizeof(out)), 3);
	cr_assert_arr_eq(out, msg, 3);
	cr_assert_eq(h2s_bq_read(&q, out, sizeof(out)), 0);
}

Test(bytequeue, zero_length_operations_change_nothing)
{
	uint8_t b = 7, out;

	cr_assert_eq(h2s_bq_append(&q, &b, 0), 0);
	cr_assert_eq(h2s_bq_len(&q), 0);
	cr_assert_eq(h2s_bq_append(&q, &b, 1), 0);
	cr_assert_eq(h2s_bq_read(&q, &out, 0), 0);
	cr_assert_eq(h2s_bq_len(&q), 1);
}

Test(bytequeue, exactly_one_chunk)
{
	append_pattern(0, H2S_CHUNK_SIZE);
	cr_assert_eq(h2s_bq_len(&q), H2S_CHUNK_SIZE);
	expect_pattern(0, H2S_CHUNK_SIZE);
	cr_assert_eq(h2s_bq_len(&q), 0);
}

/* One append spanning three chunks, starting in a partly filled tail. */
Test(bytequeue, append_fills_tail_then_spans_chunks)
{
	size_t first = 100, second = 2 * H2S_CHUNK_SIZE + 17;

	append_pattern(0, first);
	append_pattern(first, second);
	cr_assert_eq(h2s_bq_len(&q), first + second);
	expect_pattern(0, first + second);
}

/* Reads that stop one byte either side of a chunk boundary. */
Test(bytequeue, partial_reads_across_boundaries)
{
	size_t total = 3 * H2S_CHUNK_SIZE, off = 0;
	static const size_t steps[] = { H2S_CHUNK_SIZE - 1, 2, H2S_CHUNK_SIZE - 2, 1, 1000 };

	append_pattern(0, total);
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		expect_pattern(off, steps[i]);
		off += steps[i];
		cr_assert_eq(h2s_bq_len(&q), total - off);
	}
	expect_pattern(off, total - off);
	cr_assert_eq(h2s_bq_len(&q), 0);
}

/* Appending after the queue was drained to empty (the tail chunk was dropped) starts over. */
Test(bytequeue, append_after_drain)
{
	append_pattern(0, 10);
	expect_pattern(0, 10);
	append_pattern(10, H2S_CHUNK_SIZE + 5);
	expect_pattern(10, H2S_CHUNK_SIZE + 5);
	cr_assert_eq(h2s_bq_len(&q), 0);
}

/* Appending into a tail that is partly read (head == tail, r_off > 0). */
Test(bytequeue, append_into_partly_read_chunk)
{
	append_pattern(0, 1000);
	expect_pattern(0, 600);
	append_pattern(1000, H2S_CHUNK_SIZE);
	cr_assert_eq(h2s_bq_len(&q), 400 + H2S_CHUNK_SIZE);
	expect_pattern(600, 400 + H2S_CHUNK_SIZE);
}

/* Random-sized appends and reads interleaved, checked against the stream offset. */
Test(bytequeue, interleaved_append_and_read)
{
	uint32_t seed = 0xb17e;
	size_t written = 0, read = 0;

	for (int i = 0; i < 2000; i++) {
		size_t a = xorshift32(&seed) % (H2S_CHUNK_SIZE + 500);
		size_t r = xorshift32(&seed) % (H2S_CHUNK_SIZE + 500);

		append_pattern(written, a);
		written += a;
		if (r > written - read)
			r = written - read;
		expect_pattern(read, r);
		read += r;
		cr_assert_eq(h2s_bq_len(&q), written - read);
	}
	expect_pattern(read, written - read);
}

Test(bytequeue, one_megabyte_round_trip)
{
	enum { MB = 1 << 20 };
	uint8_t *in = pattern(0, MB), *out = malloc(MB);

	cr_assert_not_null(out);
	cr_assert_eq(h2s_bq_append(&q, in, MB), 0);
	cr_assert_eq(h2s_bq_len(&q), MB);
	cr_assert_eq(h2s_bq_read(&q, out, MB), MB);
	cr_assert_eq(memcmp(in, out, MB), 0);
	cr_assert_eq(h2s_bq_len(&q), 0);
	free(in);
	free(out);
}

Test(bytequeue, clear_empties_and_queue_is_reusable)
{
	append_pattern(0, 3 * H2S_CHUNK_SIZE + 3);
	expect_pattern(0, 5);
	h2s_bq_clear(&q);
	cr_assert_eq(h2s_bq_len(&q), 0);
	cr_assert_null(q.head);
	cr_assert_null(q.tail);
	cr_assert_eq(q.r_off, 0);
	append_pattern(77, 300);
	expect_pattern(77, 300);
}

/* Chunks recycled through the cache carry no stale bytes or lengths into the next queue. */
Test(bytequeue, recycled_chunks_start_clean)
{
	struct h2s_bytequeue other;
	uint8_t out[4] = { 0 };

	append_pattern(0, 4 * H2S_CHUNK_SIZE);
	h2s_bq_clear(&q); /* four full chunks go to the cache */
	h2s_bq_init(&other);
	cr_assert_eq(h2s_bq_append(&other, (const uint8_t *)"ab", 2), 0);
	cr_assert_eq(h2s_bq_len(&other), 2);
	cr_assert_eq(h2s_bq_read(&other, out, sizeof(out)), 2);
	cr_assert_arr_eq(out, "ab", 2);
	h2s_bq_clear(&other);
}

Test(bytequeue, concat_moves_everything_in_order)
{
	struct h2s_bytequeue a, b;
	uint8_t in[3 * H2S_CHUNK_SIZE], out[sizeof(in)];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7);
	h2s_bq_init(&a);
	h2s_bq_init(&b);
	cr_assert_eq(h2s_bq_append(&a, in, 1000), 0);
	cr_assert_eq(h2s_bq_append(&b, in + 1000, sizeof(in) - 1000), 0);
	/* b's reader is mid-chunk: concat must not lose or repeat those bytes. */
	cr_assert_eq(h2s_bq_read(&b, out, 10), 10);
	cr_assert_eq(memcmp(out, in + 1000, 10), 0);
	h2s_bq_concat(&a, &b);
	cr_assert_eq(h2s_bq_len(&b), 0);
	cr_assert_eq(h2s_bq_len(&a), sizeof(in) - 10);
	cr_assert_eq(h2s_bq_read(&a, out, sizeof(out)), sizeof(in) - 10);
	cr_assert_eq(memcmp(out, in, 1000), 0);
	cr_assert_eq(memcmp(out + 1000, in + 1010, sizeof(in) - 1010), 0);
	h2s_bq_clear(&a);
}

Test(bytequeue, concat_into_empty_takes_over)
{
	struct h2s_bytequeue a, b;
	uint8_t out[8];

	h2s_bq_init(&a);
	h2s_bq_init(&b);
	cr_assert_eq(h2s_bq_append(&b, (const uint8_t *)"abcdefgh", 8), 0);
	cr_assert_eq(h2s_bq_read(&b, out, 3), 3);
	h2s_bq_concat(&a, &b);
	cr_assert_eq(h2s_bq_read(&a, out, 8), 5);
	cr_assert_eq(memcmp(out, "defgh", 5), 0);
	h2s_bq_concat(&a, &b); /* empty source: nothing happens */
	cr_assert_eq(h2s_bq_len(&a), 0);
}
