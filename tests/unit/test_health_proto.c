/* test_health_proto.c — user/discovery/health.c's hand-written grpc.health.v1 wire format:
 * h2s_health_request_encode (HealthCheckRequest in a gRPC frame) and h2s_health_response_decode
 * (HealthCheckResponse, no frame).
 *
 * The expected bytes come from /work/shared/notes/ecosystem-facts.md §2, checked there on the
 * wire against grpc-go 1.33.3 and python3-grpcio 1.51.1 and against protoc-c 1.4.1's output:
 * HealthCheckRequest{service:""} is 0 bytes (DATA 00 00 00 00 00), service:"echo.Echo" is
 * 0a 09 65 63 68 6f 2e 45 63 68 6f, and a SERVING response is DATA 00 00 00 00 02 08 01.
 */
#include "unit.h"

#include "health.h"

/* ---- request ---- */

Test(health_proto, encode_empty_service_is_an_empty_message)
{
	static const uint8_t want[] = { 0x00, 0x00, 0x00, 0x00, 0x00 };
	uint8_t buf[64];

	memset(buf, 0xa5, sizeof(buf));
	cr_assert_eq(h2s_health_request_encode("", buf, sizeof(buf)), 5);
	cr_assert_arr_eq(buf, want, sizeof(want));
}

Test(health_proto, encode_echo_service)
{
	static const uint8_t want[] = { 0x00, 0x00, 0x00, 0x00, 0x0b, /* frame: flag, length 11 */
					0x0a, 0x09, /* field 1, length-delimited, 9 bytes */
					0x65, 0x63, 0x68, 0x6f, 0x2e, 0x45, 0x63, 0x68, 0x6f };
	uint8_t buf[64];

	memset(buf, 0xa5, sizeof(buf));
	cr_assert_eq(h2s_health_request_encode("echo.Echo", buf, sizeof(buf)), (int)sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
	cr_assert_eq(buf[sizeof(want)], 0xa5, "wrote past the frame");
}

/* The largest name a one-byte length takes (127): frame 5 + 2 + 127 bytes. */
Test(health_proto, encode_127_byte_service)
{
	char name[128];
	uint8_t buf[5 + 2 + 127];

	memset(name, 'x', 127);
	name[127] = '\0';
	cr_assert_eq(h2s_health_request_encode(name, buf, sizeof(buf)), 134);
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(buf[1], 0);
	cr_assert_eq(buf[2], 0);
	cr_assert_eq(buf[3], 0);
	cr_assert_eq(buf[4], 129);
	cr_assert_eq(buf[5], 0x0a);
	cr_assert_eq(buf[6], 127);
	cr_assert_arr_eq(buf + 7, name, 127);
}

Test(health_proto, encode_128_byte_service_is_refused)
{
	char name[129];
	uint8_t buf[512];

	memset(name, 'x', 128);
	name[128] = '\0';
	cr_assert_eq(h2s_health_request_encode(name, buf, sizeof(buf)), -1);
}

Test(health_proto, encode_into_exact_buffer)
{
	uint8_t buf[16];

	cr_assert_eq(h2s_health_request_encode("echo.Echo", buf, 16), 16);
	cr_assert_eq(h2s_health_request_encode("", buf, 5), 5);
}

Test(health_proto, encode_too_small_buffer_is_refused)
{
	uint8_t buf[16];

	memset(buf, 0xa5, sizeof(buf));
	cr_assert_eq(h2s_health_request_encode("echo.Echo", buf, 15), -1);
	cr_assert_eq(h2s_health_request_encode("", buf, 4), -1);
	cr_assert_eq(h2s_health_request_encode("", buf, 0), -1);
	cr_assert_eq(buf[0], 0xa5, "wrote into a buffer it refused");
}

/* ---- response ---- */

static int decode(const uint8_t *msg, size_t len)
{
	return h2s_health_response_decode(msg, len);
}

#define DECODE(...) decode((const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))

/* proto3 leaves out the default: UNKNOWN is an empty message. */
Test(health_proto, decode_empty_message_is_unknown)
{
	cr_assert_eq(decode((const uint8_t *)"", 0), H2S_GRPC_SERVING_UNKNOWN);
}

Test(health_proto, decode_serving)
{
	cr_assert_eq(DECODE(0x08, 0x01), H2S_GRPC_SERVING);
}

Test(health_proto, decode_not_serving)
{
	cr_assert_eq(DECODE(0x08, 0x02), H2S_GRPC_NOT_SERVING);
}

Test(health_proto, decode_service_unknown)
{
	cr_assert_eq(DECODE(0x08, 0x03), H2S_GRPC_SERVICE_UNKNOWN);
}

/* An explicit 0 (allowed on the wire even if proto3 omits it). */
Test(health_proto, decode_explicit_unknown)
{
	cr_assert_eq(DECODE(0x08, 0x00), H2S_GRPC_SERVING_UNKNOWN);
}

/* A value this client does not know (a newer enum) is UNKNOWN, never "serving". */
Test(health_proto, decode_out_of_range_status_is_unknown)
{
	cr_assert_eq(DECODE(0x08, 0x07), H2S_GRPC_SERVING_UNKNOWN);
	cr_assert_eq(DECODE(0x08, 0x81, 0x01), H2S_GRPC_SERVING_UNKNOWN); /* 129 */
}

/* A negative enum value is a 10-byte varint. */
Test(health_proto, decode_negative_status_is_unknown)
{
	cr_assert_eq(DECODE(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		     H2S_GRPC_SERVING_UNKNOWN);
}

/* A non-minimal varint is still the value 1. */
Test(health_proto, decode_padded_varint)
{
	cr_assert_eq(DECODE(0x08, 0x81, 0x80, 0x00), H2S_GRPC_SERVING);
}

/* The last occurrence of a field wins (protobuf merge rule). */
Test(health_proto, decode_last_status_wins)
{
	cr_assert_eq(DECODE(0x08, 0x01, 0x08, 0x02), H2S_GRPC_NOT_SERVING);
}

Test(health_proto, decode_skips_length_delimited_field_before_status)
{
	/* field 2, length 3, "abc"; then status SERVING */
	cr_assert_eq(DECODE(0x12, 0x03, 'a', 'b', 'c', 0x08, 0x01), H2S_GRPC_SERVING);
}

Test(health_proto, decode_skips_unknown_varint_field)
{
	/* field 3 varint 300; then status NOT_SERVING */
	cr_assert_eq(DECODE(0x18, 0xac, 0x02, 0x08, 0x02), H2S_GRPC_NOT_SERVING);
}

Test(health_proto, decode_skips_fixed32_field)
{
	/* field 3, wire type 5 (fixed32), 4 bytes; then status SERVICE_UNKNOWN */
	cr_assert_eq(DECODE(0x1d, 0x01, 0x02, 0x03, 0x04, 0x08, 0x03), H2S_GRPC_SERVICE_UNKNOWN);
}

Test(health_proto, decode_skips_fixed64_field)
{
	/* field 2, wire type 1 (fixed64), 8 bytes; then status SERVING */
	cr_assert_eq(DECODE(0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0x01), H2S_GRPC_SERVING);
}

Test(health_proto, decode_skips_empty_length_delimited_field)
{
	cr_assert_eq(DECODE(0x08, 0x01, 0x12, 0x00), H2S_GRPC_SERVING);
}

/* A field number needing a two-byte key (field 16, varint). */
Test(health_proto, decode_skips_two_byte_key)
{
	cr_assert_eq(DECODE(0x80, 0x01, 0x05, 0x08, 0x02), H2S_GRPC_NOT_SERVING);
}

Test(health_proto, decode_truncated_status_varint)
{
	cr_assert_eq(DECODE(0x08), -1);
	cr_assert_eq(DECODE(0x08, 0x81), -1);
}

Test(health_proto, decode_truncated_key)
{
	cr_assert_eq(DECODE(0x08, 0x01, 0x80), -1);
}

Test(health_proto, decode_truncated_length)
{
	cr_assert_eq(DECODE(0x12), -1);
	cr_assert_eq(DECODE(0x12, 0x85), -1);
}

Test(health_proto, decode_length_past_the_end)
{
	cr_assert_eq(DECODE(0x12, 0x05, 'a', 'b', 'c'), -1);
}

/* A length so large that p + v would wrap around. */
Test(health_proto, decode_huge_length)
{
	cr_assert_eq(DECODE(0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), -1);
}

Test(health_proto, decode_truncated_fixed32)
{
	cr_assert_eq(DECODE(0x1d, 0x01, 0x02, 0x03), -1);
}

Test(health_proto, decode_truncated_fixed64)
{
	cr_assert_eq(DECODE(0x11, 1, 2, 3, 4, 5, 6, 7), -1);
}

/* More than 10 varint bytes is not a varint. */
Test(health_proto, decode_overlong_varint)
{
	cr_assert_eq(DECODE(0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
			    0x01),
		     -1);
}

/* Wire types 3 and 4 (groups) and 6, 7 (undefined) are not a HealthCheckResponse. */
Test(health_proto, decode_group_and_undefined_wire_types)
{
	cr_assert_eq(DECODE(0x0b, 0x0c), -1);
	cr_assert_eq(DECODE(0x0c), -1);
	cr_assert_eq(DECODE(0x0e, 0x00), -1);
	cr_assert_eq(DECODE(0x0f, 0x00), -1);
}

/* The SERVING reply of ecosystem-facts.md §2 as seen in DATA, its 5-byte gRPC frame stripped
 * as the caller does (the decoder gets the message only).
 */
Test(health_proto, decode_serving_reply_from_the_wire)
{
	static const uint8_t data[] = { 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x01 };

	cr_assert_eq(decode(data + 5, (size_t)data[4]), H2S_GRPC_SERVING);
}
