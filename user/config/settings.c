/* settings.c — see settings.h. */
#include "settings.h"

void h2s_settings_default(struct h2s_settings *s)
{
	*s = (struct h2s_settings){
		/* Per stream and direction at most stream_window is buffered (flow control);
		 * per client connection at most client_buffer_max in all (relay.c: memory
		 * budgets). The connection window is acknowledged as bytes arrive, so it only
		 * bounds what is on the wire: 2 MiB is many times a fast link's round trip, and
		 * small against client_buffer_max, which the uploads of a connection then cannot
		 * overshoot.
		 */
		.max_streams = 256,
		.stream_window = 256u << 10,
		.conn_window = 2u << 20,
		/* What grpc-go accepts by default on either side (its transport's
		 * defaultServerMaxHeaderListSize and defaultClientMaxHeaderListSize): a call that
		 * works without h2steer works with it (README: max_header_list).
		 */
		.max_header_list = 16u << 20,
		.connect_timeout_ms = 2000,
		.handshake_timeout_ms = 10000,
		/* Idle: longer than a gRPC channel's usual idle_timeout (30 min in grpc-go, none
		 * in grpc-java), shorter would only make idle channels reconnect; a frame has 10
		 * s, which a 16 KiB frame needs only 1.6 KiB/s for (README: Timeouts).
		 */
		.client_idle_ms = 3600000,
		.client_frame_timeout_ms = 10000,
		.backend_ping_interval_ms = 10000,
		.backend_ping_timeout_ms = 5000,
		/* No per-try timeout by default: a call may legitimately wait long for its first
		 * answer (long polls, watches); a call's grpc-timeout still bounds its tries, and
		 * one of at least 1 s that passes unanswered counts against the backend.
		 */
		.try_timeout_ms = 0,
		.try_deadline_min_ms = 1000,
		.upstream_idle_ms = 60000,
		.drain_timeout_ms = 30000,
		.takeover_timeout_ms = 30000,
		.max_attempts = 5,
		.retry_percent = 10,
		.retry_min = 10,
		.replay_body_max = 65536,
		.resolver_grace_ms = 300000,
		.dns_ttl_cap_ms = 30000,
		.l4_fallback_ttl_ms = 600000,
		.node_index = H2S_NODE_INDEX_NONE,
		.ewma_decay_ms = 1000,
		/* Half: the local members left then take at most twice their share (README). */
		.locality_min_usable_percent = 50,
		.busy_poll_us = 0, /* off: it trades CPU time for latency (README) */
		.busy_poll_max_streams = 1,
		.busy_poll_share = 100,
		.loops = 1, /* README: Event loops */
		.max_client_connections = 0, /* from the file limit */
		.max_client_connections_per_source = 0,
		/* README "Hostile clients": no gRPC client comes near (keepalive and BDP pings,
		 * window updates and cancels are paid back by the data and streams they go with);
		 * each flood is cut off within its first thousand frames.
		 */
		.client_flood_burst = 1000,
		.client_flood_rate = 100,
		.client_reset_burst = 1000,
		.client_reset_rate = 100,
		.client_reset_source_burst = 4000,
		.client_reset_source_rate = 400,
		/* 32 full stream windows: what a client reading at its pace needs (16 RPCs of
		 * 1 MB in flight hold at most 4 MiB here), and what at most 32 such clients
		 * that stop reading can pin before the total bites (README: Memory).
		 */
		.client_buffer_max = 8u << 20,
		.buffer_total_mib = 256,
		.client_write_timeout_ms = 30000,
	};
	h2s_health_cfg_default(&s->health);
	h2s_outlier_cfg_default(&s->outlier);
}

void h2s_health_cfg_default(struct h2s_health_cfg *c)
{
	*c = (struct h2s_health_cfg){
		.interval_ms = 5000,
		.timeout_ms = 2000,
		.healthy_threshold = 1,
		.unhealthy_threshold = 2,
	};
}

uint32_t h2s_loop_share(uint64_t n, uint32_t loops)
{
	uint64_t share = loops > 1 ? (n + loops - 1) / loops : n;

	return share > UINT32_MAX ? UINT32_MAX : share ? (uint32_t)share : 1;
}
