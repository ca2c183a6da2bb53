/* fuzz_health — a backend's grpc.health.v1 answers: h2s_health_response_decode on any
 * HealthCheckResponse message (the bytes after the gRPC framing on_data_chunk() takes off). A
 * status is one of the four, -1 is a malformed message; the request encoder is checked too
 * (the service name comes from config and annotations): what it writes is framed as gRPC.
 */
#include "fuzz.h"

#include "health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int st = h2s_health_response_decode(data, size);
	char service[H2S_HEALTH_NAME_MAX];
	uint8_t req[256];
	int n;

	FUZZ_CHECK(st >= -1 && st <= H2S_GRPC_SERVICE_UNKNOWN);
	snprintf(service, sizeof(service), "%.*s", (int)(size < sizeof(service) ? size : sizeof(service) - 1),
		 (const char *)data);
	n = h2s_health_request_encode(service, req, sizeof(req));
	if (n >= 0) {
		FUZZ_CHECK(n >= 5 && (size_t)n <= sizeof(req));
		FUZZ_CHECK(req[0] == 0);
		FUZZ_CHECK(((size_t)req[1] << 24 | (size_t)req[2] << 16 | (size_t)req[3] << 8 | req[4]) ==
			   (size_t)n - 5);
	}
	return 0;
}
