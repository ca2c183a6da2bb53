/* plane.c — see plane.h. */
#include "plane.h"

#include "bytequeue.h"
#include "clock.h"
#include "h2_server.h"
#include "h2_upstream.h"
#include "log.h"
#include "relay.h"
#include "splice.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
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
/* Sources a loop keeps a reset budget for at once (srcbudget.h): a node's pods, many times
 * over; 56 KiB.
 */
#define SRC_RESET_SLOTS 1024

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

/* ---- memory given back ----
 *
 * Once a second: the chunk cache of this loop's thread (up to 4 MiB) is cut to 16 chunks
 * while the loop has no stream open, and when the heap holds MEM_TRIM_FREE
 * more free bytes than after the last trim (peers left: their buffers, sessions and streams
 * were freed), malloc_trim(0) gives the free pages back, in every arena. At most once a
 * second for the process, whatever the number of loops; mallinfo2 is a walk of the free
 * lists, cheap at that rate.
 */
#define MEM_TICK_MS 1000
#define MEM_CACHE_KEEP 16
#define MEM_TRIM_FREE (4u << 20)

static _Atomic uint64_t mem_next_ms;
static _Atomic size_t mem_free_base; /* written by whichever loop trims */

static void mem_tick(struct h2s_timer *t)
{
	struct h2s_plane *p = h2s_container_of(t, struct h2s_plane, mem_timer);
	uint64_t now = h2s_now_ms(), next = atomic_load(&mem_next_ms);
	struct h2s_list *pos, *tmp;
	bool quiet;

	h2s_timer_arm(&p->loop, t, MEM_TICK_MS);
	if (!p->stats.streams_live)
		h2s_bq_cache_trim(MEM_CACHE_KEEP);
	h2s_list_for_each_safe(pos, tmp, &p->clients) {
		struct h2s_client *cl = h2s_container_of(pos, struct h2s_client, link);

		if (cl->conn_owed)
			h2s_relay_release_owed(cl); /* the total may have dropped meanwhile */
	}
	quiet = !p->stats.streams_live && p->mem_busy;
	if (p->stats.streams_live)
		p->mem_busy = true;
	if (now < next || !atomic_compare_exchange_strong(&mem_next_ms, &next, now + MEM_TICK_MS))
		return;
	struct mallinfo2 mi = mallinfo2();

	size_t base = atomic_load_explicit(&mem_free_base, memory_order_relaxed);

	if (mi.fordblks < base)
		base = mi.fordblks; /* reused since: measure from there */
	atomic_store_explicit(&mem_free_base, base, memory_order_relaxed);
	/* Trim when much was freed, or when the loop just went quiet after streams (what
	 * they freed last may be less than MEM_TRIM_FREE above a base taken mid-way).
	 */
	if (mi.fordblks < base + (quiet ? MEM_TRIM_FREE / 4 : MEM_TRIM_FREE))
		return;
	p->mem_busy = false;
	malloc_trim(0);
	p->stats.malloc_trims++;
	atomic_store_explicit(&mem_free_base, mallinfo2().fordblks, memory_order_relaxed);
	log_debug("gave free heap memory back (%zu KiB free, %zu KiB in use)",
		  mi.fordblks >> 10, mi.uordblks >> 10);
}

int h2s_plane_init(struct h2s_plane *p, struct h2s_maps *maps, const struct h2s_settings *set,
		   const struct h2s_plane_ops *ops, char *err, size_t errlen)
{
	int rc;

	p->maps = maps;
	p->set = *set;
	p->ops = ops;
	rc = h2s_srcbudget_init(&p->src_resets, SRC_RESET_SLOTS);
	if (rc < 0) {
		snprintf(err, errlen, "source budgets: %s", strerror(-rc));
		return rc;
	}
	h2s_list_init(&p->clients);
	h2s_list_init(&p->splices);
	rc = h2s_loop_init(&p->loop);
	if (rc < 0) {
		h2s_srcbudget_fini(&p->src_resets);
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
	p->mem_timer.fire = mem_tick;
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
	/* Closed streams are not kept for the priority tree (RFC 9113 deprecates it): nghttp2
	 * would otherwise hold up to max_streams of them per connection, idle or not.
	 */
	nghttp2_option_set_no_closed_streams(p->opt, 1);
	/* PING ACKs ride with the next frames (conn.h, h2s_conn_ping). */
	nghttp2_option_set_no_auto_ping_ack(p->opt, 1);
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
	if (!h2s_timer_armed(&p->mem_timer))
		h2s_timer_arm(&p->loop, &p->mem_timer, MEM_TICK_MS);
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
	h2s_ob_free(&p->wbuf);
	h2s_registry_fini(&p->reg);
	h2s_stats_free(&p->stats);
	h2s_srcbudget_fini(&p->src_resets);
	if (!own_sessions)
		return;
	if (p->server_cbs)
		nghttp2_session_callbacks_del(p->server_cbs);
	if (p->upstream_cbs)
		nghttp2_session_callbacks_del(p->upstream_cbs);
	if (p->opt)
		nghttp2_option_del(p->opt);
}
