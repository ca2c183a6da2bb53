/* test_hdrs.c — user/proxy/hdrs.c: the header blocks the daemon keeps for replay and relaying. */
#include "unit.h"

#include "hdrs.h"

#include <errno.h>
#include <stdio.h>

static struct h2s_hdrs h;

static void setup(void)
{
	h2s_hdrs_init(&h);
}

static void teardown(void)
{
	h2s_hdrs_free(&h);
}

TestSuite(hdrs, .init = setup, .fini = teardown);

static void add(struct h2s_hdrs *hd, const char *name, const void *value, size_t vlen)
{
	cr_assert_eq(h2s_hdrs_add(hd, (const uint8_t *)name, strlen(name), value, vlen), 0);
}

static void add_str(struct h2s_hdrs *hd, const char *name, const char *value)
{
	add(hd, name, value, strlen(value));
}

/* A gRPC request header block (as grpc-go sends it for a unary call). */
static void add_grpc_request(struct h2s_hdrs *hd)
{
	add_str(hd, ":method", "POST");
	add_str(hd, ":scheme", "http");
	add_str(hd, ":path", "/helloworld.Greeter/SayHello");
	add_str(hd, ":authority", "127.0.100.1:50051");
	add_str(hd, "content-type", "application/grpc");
	add_str(hd, "te", "trailers");
}

static void expect_value(const struct h2s_hdrs *hd, const char *name, const void *want,
			 size_t wlen)
{
	size_t len = 12345;
	const uint8_t *v = h2s_hdrs_get(hd, name, &len);

	cr_assert_not_null(v, "no header %s", name);
	cr_assert_eq(len, wlen, "%s: length %zu, expected %zu", name, len, wlen);
	cr_assert_eq(memcmp(v, want, wlen), 0, "%s: wrong bytes", name);
}

Test(hdrs, starts_empty)
{
	size_t len;

	cr_assert_eq(h.n, 0);
	cr_assert_eq(h.bytes, 0);
	cr_assert_null(h2s_hdrs_get(&h, ":path", &len));
}

Test(hdrs, get_finds_each_value)
{
	add_grpc_request(&h);
	cr_assert_eq(h.n, 6);
	expect_value(&h, ":method", "POST", 4);
	expect_value(&h, ":path", "/helloworld.Greeter/SayHello", 28);
	expect_value(&h, "te", "trailers", 8);
}

Test(hdrs, get_missing_returns_null)
{
	size_t len = 7;

	add_grpc_request(&h);
	cr_assert_null(h2s_hdrs_get(&h, "grpc-timeout", &len));
	cr_assert_eq(len, 7, "len must be left alone on a miss");
}

/* Names match whole and byte for byte: neither a prefix nor another case matches. */
Test(hdrs, get_matches_whole_name_exactly)
{
	size_t len;

	add_str(&h, "content-type", "application/grpc");
	cr_assert_null(h2s_hdrs_get(&h, "content", &len));
	cr_assert_null(h2s_hdrs_get(&h, "content-type-x", &len));
	cr_assert_null(h2s_hdrs_get(&h, "Content-Type", &len));
}

Test(hdrs, get_returns_first_of_duplicates)
{
	add_str(&h, "x-tag", "one");
	add_str(&h, "x-tag", "two");
	expect_value(&h, "x-tag", "one", 3);
}

/* -bin metadata is arbitrary bytes, NUL included. */
Test(hdrs, binary_value_with_nul_is_kept)
{
	static const uint8_t bin[] = { 0x00, 0xff, 'a', 0x00, 0x00, 0x7f };

	add_str(&h, ":status", "200");
	add(&h, "trace-bin", bin, sizeof(bin));
	add_str(&h, "after", "x");
	expect_value(&h, "trace-bin", bin, sizeof(bin));
	expect_value(&h, "after", "x", 1);
	cr_assert_eq(h.bytes, 7 + 3 + 9 + sizeof(bin) + 5 + 1);
}

Test(hdrs, empty_value_is_kept)
{
	add_str(&h, "grpc-message", "");
	add_str(&h, "grpc-status", "0");
	expect_value(&h, "grpc-message", "", 0);
	expect_value(&h, "grpc-status", "0", 1);
}

Test(hdrs, to_nv_preserves_order_and_bytes)
{
	static const char *const names[] = { ":method", ":scheme", ":path", ":authority",
					     "content-type", "te" };
	static const char *const values[] = { "POST", "http", "/helloworld.Greeter/SayHello",
					      "127.0.100.1:50051", "application/grpc", "trailers" };
	nghttp2_nv nv[6];

	add_grpc_request(&h);
	h2s_hdrs_to_nv(&h, nv);
	for (size_t i = 0; i < 6; i++) {
		cr_assert_eq(nv[i].namelen, strlen(names[i]), "nv[%zu]", i);
		cr_assert_eq(memcmp(nv[i].name, names[i], nv[i].namelen), 0, "nv[%zu]", i);
		cr_assert_eq(nv[i].valuelen, strlen(values[i]), "nv[%zu]", i);
		cr_assert_eq(memcmp(nv[i].value, values[i], nv[i].valuelen), 0, "nv[%zu]", i);
		cr_assert_eq(nv[i].flags, NGHTTP2_NV_FLAG_NONE, "nv[%zu]", i);
	}
}

/* Far more headers and bytes than the first allocation (16 entries, 512 bytes). */
Test(hdrs, many_headers_grow)
{
	enum { N = 1000 };
	nghttp2_nv *nv = calloc(N, sizeof(*nv));
	size_t bytes = 0;

	cr_assert_not_null(nv);
	for (int i = 0; i < N; i++) {
		char name[32], value[128];
		int vl = snprintf(value, sizeof(value), "%0*d", 1 + i % 100, i);

		snprintf(name, sizeof(name), "x-h%d", i);
		add(&h, name, value, (size_t)vl);
		bytes += strlen(name) + (size_t)vl;
	}
	cr_assert_eq(h.n, N);
	cr_assert_eq(h.bytes, bytes);
	h2s_hdrs_to_nv(&h, nv);
	for (int i = 0; i < N; i++) {
		char name[32], value[128];
		int vl = snprintf(value, sizeof(value), "%0*d", 1 + i % 100, i);
		int nl = snprintf(name, sizeof(name), "x-h%d", i);

		cr_assert_eq(nv[i].namelen, (size_t)nl, "header %d", i);
		cr_assert_eq(memcmp(nv[i].name, name, (size_t)nl), 0, "header %d", i);
		cr_assert_eq(nv[i].valuelen, (size_t)vl, "header %d", i);
		cr_assert_eq(memcmp(nv[i].value, value, (size_t)vl), 0, "header %d", i);
	}
	free(nv);
}

Test(hdrs, move_transfers_and_empties_source)
{
	struct h2s_hdrs dst;

	add_grpc_request(&h);
	h2s_hdrs_init(&dst);
	h2s_hdrs_move(&dst, &h);
	cr_assert_eq(dst.n, 6);
	expect_value(&dst, ":authority", "127.0.100.1:50051", 17);
	cr_assert_eq(h.n, 0);
	cr_assert_eq(h.bytes, 0);
	cr_assert_null(h.h);
	cr_assert_null(h.buf);
	/* The source is usable again and independent of dst. */
	add_str(&h, ":status", "200");
	expect_value(&h, ":status", "200", 3);
	expect_value(&dst, ":method", "POST", 4);
	h2s_hdrs_free(&dst);
}

Test(hdrs, free_resets_for_reuse)
{
	size_t len;

	add_grpc_request(&h);
	h2s_hdrs_free(&h);
	cr_assert_eq(h.n, 0);
	cr_assert_eq(h.bytes, 0);
	cr_assert_null(h2s_hdrs_get(&h, ":method", &len));
	add_str(&h, ":method", "GET");
	expect_value(&h, ":method", "GET", 3);
}

/* The API takes any lengths; a zero-length name and value as the very first header leaves the
 * buffer unallocated and must still be stored (and not memcpy into a NULL buffer, which is
 * undefined behaviour that UBSan aborts on).
 */
Test(hdrs, empty_name_and_value_as_first_header)
{
	add(&h, "", "", 0);
	cr_assert_eq(h.n, 1);
	expect_value(&h, "", "", 0);
}

/* ---- limits on what a peer sends (h2s_hdrs_add_within) ---- */

static int add_within(const char *name, const char *value, size_t limit)
{
	return h2s_hdrs_add_within(&h, (const uint8_t *)name, strlen(name), (const uint8_t *)value,
				   strlen(value), limit);
}

/* RFC 9113 section 6.5.2: name + value + 32 per field, pseudo-headers included. */
Test(hdrs, list_size_counts_32_octets_per_field)
{
	cr_assert_eq(h2s_hdrs_list_size(&h), 0);
	add_grpc_request(&h);
	cr_assert_eq(h2s_hdrs_list_size(&h), h.bytes + 6 * 32);
	add(&h, "", "", 0);
	cr_assert_eq(h2s_hdrs_list_size(&h), h.bytes + 7 * 32);
}

/* A block of exactly the limit is whole; one octet more is refused. */
Test(hdrs, within_takes_exactly_the_limit)
{
	/* 2 + 30 + 32 = 64 octets a field. */
	static const char v30[] = "012345678901234567890123456789";

	cr_assert_eq(add_within("x1", v30, 128), 0);
	cr_assert_eq(add_within("x2", v30, 128), 0);
	cr_assert_eq(h2s_hdrs_list_size(&h), 128);
	cr_assert(!h.over);
	h2s_hdrs_free(&h);
	cr_assert_eq(add_within("x1", v30, 127), 0);
	cr_assert_eq(add_within("x2", v30, 127), -E2BIG);
	cr_assert(h.over);
	cr_assert_eq(h.n, 1, "the refused field was stored");
}

/* Once over, the block takes nothing more, even a field that would fit: what it holds is not
 * the block the peer sent, and must not pass for it.
 */
Test(hdrs, over_takes_no_field_after)
{
	char big[200];

	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(add_within(":status", "200", 128), 0);
	cr_assert_eq(add_within("x-big", big, 128), -E2BIG);
	cr_assert_eq(add_within("x", "", 128), -E2BIG);
	cr_assert_eq(h.n, 1);
	h2s_hdrs_free(&h);
	cr_assert(!h.over, "free must make the block reusable");
	cr_assert_eq(add_within("x", "", 128), 0);
}

/* A single field larger than the limit, and lengths near SIZE_MAX, cannot wrap the sum. */
Test(hdrs, within_refuses_a_field_larger_than_the_limit)
{
	cr_assert_eq(h2s_hdrs_add_within(&h, (const uint8_t *)"x", 1, (const uint8_t *)"", 0, 32),
		     -E2BIG, "1 + 0 + 32 octets is over 32");
	h2s_hdrs_free(&h);
	cr_assert_eq(h2s_hdrs_add_within(&h, (const uint8_t *)"x", SIZE_MAX - 8,
					 (const uint8_t *)"", 0, 1 << 20),
		     -E2BIG);
}

/* Empty fields cost 32 octets each, so a byte limit alone lets a block have very many; the
 * field cap stops them first.
 */
Test(hdrs, within_caps_the_number_of_fields)
{
	for (int i = 0; i < H2S_HDRS_MAX_FIELDS; i++)
		cr_assert_eq(add_within("", "", 16u << 20), 0, "field %d", i);
	cr_assert_eq(add_within("", "", 16u << 20), -E2BIG);
	cr_assert(h.over);
	cr_assert_eq(h.n, H2S_HDRS_MAX_FIELDS);
}
