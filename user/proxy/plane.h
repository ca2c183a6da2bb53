/* plane.h — the data plane of one event loop: what the proxy (both HTTP/2 legs, the relay,
 * spliced connections) and discovery work with, instead of the daemon. It holds the loop, the
 * maps, the registry (the services as this loop sees them), the settings, the counters, the
 * client and splice lists and the read buffer every socket of the loop shares.
 *
 * The daemon owns one per loop and hands it out. What the data plane must tell the daemon
 * goes through the callbacks the daemon sets in `ops`; nothing here knows the daemon.
 */
#ifndef H2S_PLANE_H
#define H2S_PLANE_H

#include "list.h"
#include "loop.h"
#include "outbuf.h"
#include "registry.h"
#include "settings.h"
#include "srcbudget.h"
#include "stats.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct h2s_maps;
struct h2s_plane;
struct h2s_stream;

struct h2s_plane_ops {
	/* The plane drains (`draining`) and its last client or spliced connection just went:
	 * the daemon decides whether the loop is done.
	 */
	void (*drained)(struct h2s_plane *p);
};

struct h2s_plane {
	struct h2s_loop loop;
	struct h2s_maps *maps;
	struct h2s_registry reg;
	struct h2s_settings set;
	struct h2s_stats stats;
	const struct h2s_plane_ops *ops;
	/* The backend for one attempt of a stream, in place of the registry's pick among the
	 * backends of the stream's service (relay.c): the relay's unit tests serve streams
	 * from backends of their own, which no maps list. NULL in the daemon.
	 */
	struct h2s_backend_rt *(*pick)(struct h2s_plane *p, struct h2s_stream *st);
	/* Shared by every session of every loop (read-only once made): h2s_plane_sessions. */
	nghttp2_session_callbacks *server_cbs, *upstream_cbs;
	nghttp2_option *opt;
	struct h2s_list clients; /* struct h2s_client.link */
	uint32_t nclients;
	struct h2s_list splices; /* splice.c: connections deciding, or relayed as bytes */
	uint32_t nsplices;
	bool draining; /* GOAWAY sent to the clients: new ones get it at once */
	struct h2s_timer refresh_timer;
	struct h2s_flush refresh_flush; /* the maps changed: reload after this turn */
	uint8_t rbuf[65536]; /* one read buffer for every socket of the loop */
	/* One write batch for every socket of the loop (conn.c): a connection keeps only what
	 * its socket did not take.
	 */
	struct h2s_outbuf wbuf;
	struct h2s_timer mem_timer; /* memory given back (relay.c: h2s_relay_housekeeping) */
	/* client_reset_source_*: resets per source address, whatever its connections (guard.c) */
	struct h2s_srcbudget src_resets;
	bool mem_busy;              /* streams were open since the last trim */
};

/* Lists, the event loop (busy polling as set says), the registry over maps. err gets a
 * reason on failure.
 */
int h2s_plane_init(struct h2s_plane *p, struct h2s_maps *maps, const struct h2s_settings *set,
		   const struct h2s_plane_ops *ops, char *err, size_t errlen);
/* The nghttp2 callbacks and options of both legs, made once (by the main loop) and shared
 * with `from` (NULL: make them).
 */
int h2s_plane_sessions(struct h2s_plane *p, const struct h2s_plane *from);
/* Read the services from the maps now, and again every little while. */
int h2s_plane_load_services(struct h2s_plane *p, char *err, size_t errlen);
/* Reload the registry at the end of this loop turn (the maps changed, e.g. by a resolver). */
void h2s_plane_refresh_soon(struct h2s_plane *p);
/* A client or spliced connection is gone: tell the daemon if that was the last of a drain. */
void h2s_plane_conn_gone(struct h2s_plane *p);
/* Close every client, spliced and upstream connection. */
void h2s_plane_close_all(struct h2s_plane *p, const char *why);
/* Free what init made; `own_sessions`: the nghttp2 callbacks and options too. */
void h2s_plane_fini(struct h2s_plane *p, bool own_sessions);

#endif /* H2S_PLANE_H */
