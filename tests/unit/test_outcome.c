/* test_outcome.c — user/proxy/relay.c's rule for passive ejection: which requests are gRPC
 * requests (h2s_is_grpc_request) and what the end of one of their streams says about the
 * backend (h2s_rpc_outcome): only what the backend did counts, never what a client provoked.
 */
#include "unit.h"

#include "hdrs.h"
#include "relay.h"

#include <nghttp2/nghttp2.h>

/* gRPC status codes, by name (grpc/doc/statuscodes.md). */
enum {
	OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS,
	PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE,
	UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED,
};

static enum h2s_outcome status(int code)
{
	return h2s_rpc_outcome(true, H2S_END_STATUS, code);
}

static enum h2s_outcome reset(uint32_t code)
{
	return h2s_rpc_outcome(true, H2S_END_RESET, code);
}

/* ---- what a gRPC request's end says ---- */

Test(rpc_outcome, unavailable_counts_against_the_backend)
{
	cr_assert_eq(status(UNAVAILABLE), H2S_OUTCOME_FAILED);
}

Test(rpc_outcome, ok_and_statuses_of_a_served_request_count_for_the_backend)
{
	static const int served[] = {
		OK, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED,
		FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, UNAUTHENTICATED,
	};

	for (size_t i = 0; i < ARRAY_LEN(served); i++)
		cr_assert_eq(status(served[i]), H2S_OUTCOME_OK, "grpc-status %d", served[i]);
}

/* grpc-go answers an undecodable message INTERNAL, an oversized one RESOURCE_EXHAUSTED, a
 * deadline the client set too short DEADLINE_EXCEEDED: a healthy backend gives them too.
 */
Test(rpc_outcome, statuses_a_client_can_provoke_say_nothing)
{
	static const int provoked[] = {
		CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, DATA_LOSS,
	};

	for (size_t i = 0; i < ARRAY_LEN(provoked); i++)
		cr_assert_eq(status(provoked[i]), H2S_OUTCOME_NOTHING, "grpc-status %d",
			     provoked[i]);
}

Test(rpc_outcome, missing_or_unknown_status_says_nothing)
{
	cr_assert_eq(status(-1), H2S_OUTCOME_NOTHING);
	cr_assert_eq(status(17), H2S_OUTCOME_NOTHING);
	cr_assert_eq(status(99), H2S_OUTCOME_NOTHING);
}

Test(rpc_outcome, backend_reset_with_internal_error_counts_against_it)
{
	cr_assert_eq(reset(NGHTTP2_INTERNAL_ERROR), H2S_OUTCOME_FAILED);
}

/* NO_ERROR and CANCEL end a stream on purpose; REFUSED_STREAM is replayed elsewhere. */
Test(rpc_outcome, deliberate_resets_say_nothing)
{
	cr_assert_eq(reset(NGHTTP2_NO_ERROR), H2S_OUTCOME_NOTHING);
	cr_assert_eq(reset(NGHTTP2_CANCEL), H2S_OUTCOME_NOTHING);
	cr_assert_eq(reset(NGHTTP2_REFUSED_STREAM), H2S_OUTCOME_NOTHING);
}

/* Every other code blames the sender of the request: its client chose headers, sizes, pace. */
Test(rpc_outcome, resets_that_blame_the_request_say_nothing)
{
	static const uint32_t blaming[] = {
		NGHTTP2_PROTOCOL_ERROR, NGHTTP2_FLOW_CONTROL_ERROR, NGHTTP2_SETTINGS_TIMEOUT,
		NGHTTP2_STREAM_CLOSED, NGHTTP2_FRAME_SIZE_ERROR, NGHTTP2_COMPRESSION_ERROR,
		NGHTTP2_CONNECT_ERROR, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY,
		NGHTTP2_HTTP_1_1_REQUIRED, 0x100 /* unknown: an extension's */,
	};

	for (size_t i = 0; i < ARRAY_LEN(blaming); i++)
		cr_assert_eq(reset(blaming[i]), H2S_OUTCOME_NOTHING, "%s",
			     nghttp2_http2_strerror(blaming[i]));
}

Test(rpc_outcome, connection_lost_with_the_stream_open_counts_against_the_backend)
{
	cr_assert_eq(h2s_rpc_outcome(true, H2S_END_LOST, 0), H2S_OUTCOME_FAILED);
}

/* A GET that grpc-go resets with PROTOCOL_ERROR, and whatever else a non-gRPC request gets:
 * not even a failure the backend would own counts, nor an answer.
 */
Test(rpc_outcome, a_request_that_is_not_grpc_never_counts)
{
	cr_assert_eq(h2s_rpc_outcome(false, H2S_END_RESET, NGHTTP2_PROTOCOL_ERROR),
		     H2S_OUTCOME_NOTHING);
	cr_assert_eq(h2s_rpc_outcome(false, H2S_END_RESET, NGHTTP2_INTERNAL_ERROR),
		     H2S_OUTCOME_NOTHING);
	cr_assert_eq(h2s_rpc_outcome(false, H2S_END_LOST, 0), H2S_OUTCOME_NOTHING);
	cr_assert_eq(h2s_rpc_outcome(false, H2S_END_STATUS, UNAVAILABLE), H2S_OUTCOME_NOTHING);
	cr_assert_eq(h2s_rpc_outcome(false, H2S_END_STATUS, OK), H2S_OUTCOME_NOTHING);
	cr_assert_eq(h2s_rpc_outcome(false, H2S_END_STATUS, -1), H2S_OUTCOME_NOTHING);
}

/* ---- which requests are gRPC requests ---- */

static struct h2s_hdrs h;

static void setup(void)
{
	h2s_hdrs_init(&h);
}

static void teardown(void)
{
	h2s_hdrs_free(&h);
}

TestSuite(grpc_request, .init = setup, .fini = teardown);

static void add(const char *name, const char *value)
{
	cr_assert_eq(h2s_hdrs_add(&h, (const uint8_t *)name, strlen(name),
				  (const uint8_t *)value, strlen(value)),
		     0);
}

/* A request header block as grpc-go sends it for a unary call, with the value of header
 * name replaced by value, or that header left out (value NULL).
 */
static void request(const char *name, const char *value)
{
	static const char *const base[][2] = {
		{ ":method", "POST" },
		{ ":scheme", "http" },
		{ ":path", "/h2steer.test.Echo/Unary" },
		{ ":authority", "127.0.100.1:50051" },
		{ "content-type", "application/grpc" },
		{ "user-agent", "grpc-go/1.41.0" },
		{ "te", "trailers" },
	};

	for (size_t i = 0; i < ARRAY_LEN(base); i++) {
		if (name && strcmp(base[i][0], name) == 0) {
			if (value)
				add(name, value);
		} else {
			add(base[i][0], base[i][1]);
		}
	}
}

Test(grpc_request, grpc_go_unary_call_is_one)
{
	request(NULL, NULL);
	cr_assert(h2s_is_grpc_request(&h));
}

Test(grpc_request, content_type_with_a_codec_or_parameters_is_one)
{
	request("content-type", "application/grpc+proto");
	cr_assert(h2s_is_grpc_request(&h));
	h2s_hdrs_free(&h);
	h2s_hdrs_init(&h);
	request("content-type", "application/grpc;charset=utf-8");
	cr_assert(h2s_is_grpc_request(&h));
}

/* What curl --http2-prior-knowledge sends for http://VIP/. */
Test(grpc_request, plain_get_is_not)
{
	add(":method", "GET");
	add(":scheme", "http");
	add(":authority", "127.0.100.1:50051");
	add(":path", "/");
	add("user-agent", "curl/7.88.1");
	add("accept", "*/*");
	cr_assert_not(h2s_is_grpc_request(&h));
}

Test(grpc_request, get_with_grpc_headers_is_not)
{
	request(":method", "GET");
	cr_assert_not(h2s_is_grpc_request(&h));
}

Test(grpc_request, other_content_types_are_not)
{
	static const char *const others[] = {
		"application/json", "application/grpc-web", "application/grpcx", "application/gr",
		"Application/GRPC",
	};

	for (size_t i = 0; i < ARRAY_LEN(others); i++) {
		request("content-type", others[i]);
		cr_assert_not(h2s_is_grpc_request(&h), "%s", others[i]);
		h2s_hdrs_free(&h);
		h2s_hdrs_init(&h);
	}
	request("content-type", NULL);
	cr_assert_not(h2s_is_grpc_request(&h), "no content-type");
}

Test(grpc_request, without_te_trailers_is_not)
{
	request("te", NULL);
	cr_assert_not(h2s_is_grpc_request(&h));
}

Test(grpc_request, without_a_path_naming_a_method_is_not)
{
	request(":path", NULL);
	cr_assert_not(h2s_is_grpc_request(&h), "no :path");
	h2s_hdrs_free(&h);
	h2s_hdrs_init(&h);
	request(":path", "/");
	cr_assert_not(h2s_is_grpc_request(&h), ":path /");
}
