/* health.h — active health checks with grpc.health.v1, one checker per backend address, on an
 * HTTP/2 connection of its own:
 *
 *   Watch (server streaming) where the backend implements it: every status change is pushed
 *   and applied at once, so a backend that turns NOT_SERVING stops getting new RPCs within one
 *   round trip; Check every interval otherwise (thresholds apply to those); UNIMPLEMENTED
 *   counts as healthy, as gRPC's client-side health checking does (gRFC A17).
 *
 * A failing check connection is retried with back-off; unhealthy_threshold failures in a row
 * make the backend UNREACHABLE. A GOAWAY from the backend (e.g. MaxConnectionAge) is not a
 * failure: the checker reconnects at once.
 */
#ifndef H2S_HEALTH_H
#define H2S_HEALTH_H

#include "settings.h"

#include <stddef.h>
#include <stdint.h>

struct h2s_plane;
struct h2s_backend_rt;
struct h2s_health_check;



/* Start checking be (service: the name sent in the request, "" for the whole server). */
struct h2s_health_check *h2s_health_start(struct h2s_plane *p, struct h2s_backend_rt *be,
					  const char *service);
void h2s_health_stop(struct h2s_health_check *hc);
const char *h2s_health_service(const struct h2s_health_check *hc);

/* The wire format, by hand (one string field each way):
 *   HealthCheckRequest  { string service = 1; }   -> 0x0a <len> <bytes>
 *   HealthCheckResponse { ServingStatus status = 1; } -> 0x08 <varint>, absent when UNKNOWN (0)
 * each in a gRPC frame: 1 byte flag (0), 4 bytes big-endian length, the message.
 * encode returns the frame length (or -1 if buf is too small); decode gets the message (no
 * frame) and returns the status, or -1 when it is not a HealthCheckResponse.
 */
int h2s_health_request_encode(const char *service, uint8_t *buf, size_t len);
int h2s_health_response_decode(const uint8_t *msg, size_t len);

#define H2S_GRPC_SERVING_UNKNOWN 0
#define H2S_GRPC_SERVING 1
#define H2S_GRPC_NOT_SERVING 2
#define H2S_GRPC_SERVICE_UNKNOWN 3

#endif /* H2S_HEALTH_H */
