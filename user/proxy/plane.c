/* plane.c — see plane.h. */
#include "plane.h"

#include "h2_server.h"
#include "h2_upstream.h"
#include "log.h"
#include "splice.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* nghttp2 1.61's cap on CONTINUATION frames per header block (CVE-2024-28182), which Debian
 * 12's 1.52 carries as a backport: weak, so that a 1.52 without it (and without the cap) links.
 */
void nghttp2_option_set_max_continuations(nghttp2_option *option, size_t val)
	__attribute__((weak));

/* nghttp2 1.57's limit on RST_STREAM frames a client sends (CVE-2023-44487), backported to
 * Debian 12's 1.52 whose version does not say so: found by its symbol, as above.
 */
void nghttp2_option_set_stream_reset_rate_limit(nghttp2_option *option, uint64_t burst,
						uint64_t rate) __attribute__((weak));

/* How often a loop looks for map changes when no RPC asks (to close dropped backends). */
#define REFRESH_MS 200

/* Polling pays while few streams are open: the loop waits for a backend or a client one
 * RPC at a time, where each wake-up is latency. With many, it is seldom idle anyway.
 */
static bool busy_poll_pays(struct h2s_loop *l)
{
	struct h2s_plane *p = h2s_container_of(l, struct h2s_plane, loop);

	return p->stats.streams_live <= p->set.busy_poll_max_streams;
}

static void refresh(struct h2s_plane *p)
{
	if (h2s_registry_refresh(&p->reg) < 0)
		log_warn("cannot reload services from the maps");
}

static void refresh_now(struct h2s_flush *f)
{
	refresh(h2s_container_of(f, struct h2s_plane, refresh_flush));
}

static void refresh_tick(struct h2s_timer *t)
{
	struct h2s_plane *p = h2s_container_of(t, struct h2s_plane, refresh_timer);

	refresh(p);
	h2s_timer_arm(&p->loop, t, REFRESH_MS);
}

int h2s_plane_init(struct h2s_plane *p, struct h2s_maps *maps, const struct h2s_settings *set,
		   const struct h2s_plane_ops *ops, char *err, size_t errlen)
{
	int rc;

	p->maps = maps;
	p->set = *set;
	p->ops = ops;
	h2s_list_init(&p->clients);
	h2s_list_init(&p->splices);
	rc = h2s_loop_init(&p->loop);
	if (rc < 0) {
		snprintf(err, errlen, "epoll: %s", strerror(-rc));
		return rc;
	}
	p->loop.poll.max_us = p->set.busy_poll_us;
	p->loop.poll.share_pct = p->set.busy_poll_share;
	p->loop.poll.pays = busy_poll_pays;
	h2s_registry_init(&p->reg, maps);
	p->reg.outlier = &p->set.outlier;
	p->reg.stats = &p->stats;
	p->reg.ewma_decay_ms = p->set.ewma_decay_ms;
	p->reg.locality_min_pct = p->set.locality_min_usable_percent;
	p->reg.on_idle = h2s_pool_idle;
	p->refresh_flush.run = refresh_now;
	p->refresh_timer.fire = refresh_tick;
	return 0;
}

int h2s_plane_sessions(struct h2s_plane *p, const struct h2s_plane *from)
{
	if (from) {
		p->server_cbs = from->server_cbs;
		p->upstream_cbs = from->upstream_cbs;
		p->opt = from->opt;
		return 0;
	}
	if (h2s_server_callbacks(&p->server_cbs) || h2s_upstream_callbacks(&p->upstream_cbs) ||
	    nghttp2_option_new(&p->opt))
		return -ENOMEM;
	/* We acknowledge received DATA ourselves, once the other leg took it (relay.h). */
	nghttp2_option_set_no_auto_window_update(p->opt, 1);
	/* What we accept we can send on. nghttp2 does not send a block whose deflate bound, 12
	 * + 5 (a priority field) + name + value + 12 a field, is over this (64 KiB by default):
	 * it closed such a request REFUSED_STREAM, replayed up to max_attempts. A block within
	 * max_header_list, which counts 32 a field (hdrs.h), is within it + 17.
	 */
	nghttp2_option_set_max_send_header_block_length(p->opt,
							(size_t)p->set.max_header_list + 17);
	/* Room for such a block in the 16 KiB frames we let peers send, twice over: a block up
	 * to about twice the limit is still read to its end and fails its stream alone; a flood
	 * of CONTINUATION frames beyond that is the connection error the cap is for (8 frames,
	 * nghttp2's default, end the connection at 144 KiB). What no option raises: one HPACK
	 * string over 64 KiB as sent (NGHTTP2_HD_MAX_NV) is a COMPRESSION_ERROR of the whole
	 * connection inside nghttp2's decoder, before any callback of ours.
	 */
	if (nghttp2_option_set_max_continuations)
		nghttp2_option_set_max_continuations(
			p->opt, 8 + 2 * (size_t)p->set.max_header_list / 16384);
	/* Our reset budget (h2_server.c, client_reset_*) closes the connection with
	 * ENHANCE_YOUR_CALM, counts resets we send too and is paid back by streams answered;
	 * nghttp2's (GOAWAY INTERNAL_ERROR), which counts every RST_STREAM received and is paid
	 * back by time alone, stays behind it as a backstop: twice our burst, ten times our rate.
	 */
	/* nghttp2 ends a session with more than this many PING and SETTINGS ACKs and RST_STREAMs
	 * queued (1000 by default), abruptly (NGHTTP2_ERR_FLOODED, no GOAWAY) and at about the
	 * point our budgets end it: room for both budgets, so that ours speak first.
	 */
	nghttp2_option_set_max_outbound_ack(p->opt, (size_t)p->set.client_flood_burst +
							    p->set.client_reset_burst + 1000);
	if (nghttp2_option_set_stream_reset_rate_limit)
		nghttp2_option_set_stream_reset_rate_limit(p->opt,
							   2 * (uint64_t)p->set.client_reset_burst,
							   10 * (uint64_t)p->set.client_reset_rate + 10);
	return 0;
}

int h2s_plane_load_services(struct h2s_plane *p, char *err, size_t errlen)
{
	int rc = h2s_registry_refresh(&p->reg);

	if (rc < 0) {
		snprintf(err, errlen, "cannot read services from the maps: %s", strerror(-rc));
		return rc;
	}
	h2s_timer_arm(&p->loop, &p->refresh_timer, REFRESH_MS);
	return 0;
}

void h2s_plane_refresh_soon(struct h2s_plane *p)
{
	h2s_flush_queue(&p->loop, &p->refresh_flush);
}

void h2s_plane_conn_gone(struct h2s_plane *p)
{
	if (p->draining && p->nclients == 0 && p->nsplices == 0 && p->ops && p->ops->drained)
		p->ops->drained(p);
}

void h2s_plane_close_all(struct h2s_plane *p, const char *why)
{
	struct h2s_list *pos, *tmp;

	h2s_list_for_each_safe(pos, tmp, &p->clients)
		h2s_conn_close(&h2s_container_of(pos, struct h2s_client, link)->c, why);
	h2s_splice_close_all(p);
	h2s_pool_close_all(p);
}

void h2s_plane_fini(struct h2s_plane *p, bool own_sessions)
{
	h2s_loop_fini(&p->loop); /* frees the closed connections */
	h2s_registry_fini(&p->reg);
	h2s_stats_free(&p->stats);
	if (!own_sessions)
		return;
	if (p->server_cbs)
		nghttp2_session_callbacks_del(p->server_cbs);
	if (p->upstream_cbs)
		nghttp2_session_callbacks_del(p->upstream_cbs);
	if (p->opt)
		nghttp2_option_del(p->opt);
}
