/* guard.c — see guard.h. */
#include "guard.h"

#include "log.h"
#include "plane.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const abuse_what[H2S_ABUSE__COUNT] = {
	[H2S_ABUSE_SETTINGS] = "SETTINGS flood",
	[H2S_ABUSE_PING] = "PING flood",
	[H2S_ABUSE_WINDOW_UPDATE] = "WINDOW_UPDATE flood",
	[H2S_ABUSE_PRIORITY] = "PRIORITY flood",
	[H2S_ABUSE_EMPTY_DATA] = "flood of empty DATA frames",
	[H2S_ABUSE_UNKNOWN_FRAME] = "flood of frames of unknown types",
	[H2S_ABUSE_CLOSED_STREAM] = "flood of frames on closed streams",
	[H2S_ABUSE_RAPID_RESET] = "streams reset by the client (Rapid Reset)",
	[H2S_ABUSE_MADE_YOU_RESET] = "streams it made us reset (MadeYouReset)",
	[H2S_ABUSE_PROTOCOL] = "protocol error",
};

/* Close cl for what it sent: GOAWAY with code (streams up to the last one processed are
 * finished or failed by the teardown), counted and logged once per cause and interval.
 */
static void calm_close(struct h2s_client *cl, enum h2s_abuse kind, uint32_t code,
		       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void calm_close(struct h2s_client *cl, enum h2s_abuse kind, uint32_t code,
		       const char *fmt, ...)
{
	static struct h2s_log_limit lim[H2S_ABUSE__COUNT];
	char why[200];
	va_list ap;

	if (cl->calm_closed)
		return;
	cl->calm_closed = true;
	cl->c.linger = true; /* it is likely still sending: let the GOAWAY reach it */
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	cl->c.p->stats.client_abuse[kind]++;
	h2s_log_limited(&lim[kind], H2S_LOG_WARNING, "client %s: %s: %s: GOAWAY %s", cl->name,
			abuse_what[kind], why, nghttp2_http2_strerror(code));
	nghttp2_session_terminate_session(cl->c.ng, code);
	h2s_conn_mark(&cl->c);
}

/* One frame that does no work, of kind. */
static void pay_frame(struct h2s_client *cl, enum h2s_abuse kind)
{
	const struct h2s_settings *set = &cl->c.p->set;

	if (!h2s_bucket_take(&cl->flood, set->client_flood_burst, set->client_flood_rate,
			     cl->c.p->loop.now_ms))
		calm_close(cl, kind, NGHTTP2_ENHANCE_YOUR_CALM,
			   "more than client_flood_burst (%u) frames that do no work, %u more a "
			   "second",
			   set->client_flood_burst, set->client_flood_rate);
}

static void pay_reset(struct h2s_client *cl, enum h2s_abuse kind, int32_t sid)
{
	struct h2s_plane *p = cl->c.p;
	const struct h2s_settings *set = &p->set;

	if (!h2s_bucket_take(&cl->resets, set->client_reset_burst, set->client_reset_rate,
			     p->loop.now_ms))
		calm_close(cl, kind, NGHTTP2_ENHANCE_YOUR_CALM,
			   "stream %d: more than client_reset_burst (%u) streams reset before "
			   "their answer, %u more a second",
			   sid, set->client_reset_burst, set->client_reset_rate);
	else if (!h2s_srcbudget_take(&p->src_resets, &cl->peer,
				     h2s_loop_share(set->client_reset_source_burst, set->loops),
				     h2s_loop_share(set->client_reset_source_rate, set->loops),
				     p->loop.now_ms))
		calm_close(cl, kind, NGHTTP2_ENHANCE_YOUR_CALM,
			   "stream %d: more than client_reset_source_burst (%u) streams reset "
			   "before their answer on the connections from its address, %u more a "
			   "second%s",
			   sid, set->client_reset_source_burst, set->client_reset_source_rate,
			   set->loops > 1 ? " (each loop its share)" : "");
}

void h2s_guard_sent_goaway(struct h2s_client *cl, const nghttp2_goaway *g)
{
	if (g->error_code == NGHTTP2_NO_ERROR || cl->calm_closed)
		return;
	cl->calm_closed = true;
	cl->c.linger = true;
	cl->c.p->stats.client_abuse[H2S_ABUSE_PROTOCOL]++;
	log_limited(H2S_LOG_WARNING, "client %s: protocol error: %.*s: GOAWAY %s", cl->name,
		    (int)(g->opaque_data_len < 120 ? g->opaque_data_len : 120),
		    g->opaque_data ? (const char *)g->opaque_data : "",
		    nghttp2_http2_strerror(g->error_code));
}

enum { F_DATA, F_HEADERS, F_PRIORITY, F_RST_STREAM, F_SETTINGS, F_PUSH_PROMISE, F_PING,
       F_GOAWAY, F_WINDOW_UPDATE, F_CONTINUATION };

/* A frame on client stream sid, at most the highest one opened, that nghttp2 has closed. */
static void closed_stream_frame(struct h2s_client *cl, uint8_t type, int32_t sid)
{
	uint8_t *s = h2s_sids_get(&cl->sids, sid);

	if (type == F_RST_STREAM || !s) {
		/* Resets cross on the wire; too old to tell: as after a reset of ours. */
		pay_frame(cl, H2S_ABUSE_CLOSED_STREAM);
	} else if (!(*s & H2S_SID_OPENED)) {
		/* RFC 9113 5.1.1: opening stream N closed every idle stream below it; a frame on
		 * one of them is an unexpected stream identifier.
		 */
		calm_close(cl, H2S_ABUSE_PROTOCOL, NGHTTP2_PROTOCOL_ERROR,
			   "%s on stream %d, below stream %d and never opened",
			   type == F_HEADERS ? "HEADERS" : "DATA", sid, cl->sids.max);
	} else if (*s & H2S_SID_CLIENT_ENDED) {
		/* 5.1: frames after END_STREAM are a connection error STREAM_CLOSED. */
		calm_close(cl, H2S_ABUSE_PROTOCOL, NGHTTP2_STREAM_CLOSED,
			   "%s on stream %d after its END_STREAM",
			   type == F_HEADERS ? "HEADERS" : "DATA", sid);
	} else if (*s & H2S_SID_WE_RESET) {
		pay_frame(cl, H2S_ABUSE_CLOSED_STREAM); /* 5.1: ignored after our RST_STREAM */
	} else if (*s & H2S_SID_CLIENT_RESET) {
		/* 5.1: after its own RST_STREAM, a stream error STREAM_CLOSED. */
		nghttp2_submit_rst_stream(cl->c.ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_STREAM_CLOSED);
		h2s_conn_mark(&cl->c);
	} else {
		pay_frame(cl, H2S_ABUSE_CLOSED_STREAM);
	}
}

/* Open or half-closed to nghttp2 (which keeps closed streams around, for priorities). */
static bool stream_live(nghttp2_session *ng, int32_t sid)
{
	nghttp2_stream *s = nghttp2_session_find_stream(ng, sid);
	nghttp2_stream_proto_state state = s ? nghttp2_stream_get_state(s)
					     : NGHTTP2_STREAM_STATE_CLOSED;

	return state != NGHTTP2_STREAM_STATE_CLOSED && state != NGHTTP2_STREAM_STATE_IDLE;
}

static void tap_frame(struct h2s_client *cl, const uint8_t *hd)
{
	uint32_t len = (uint32_t)hd[0] << 16 | (uint32_t)hd[1] << 8 | hd[2];
	uint8_t type = hd[3], flags = hd[4];
	int32_t sid = (int32_t)(((uint32_t)hd[5] << 24 | (uint32_t)hd[6] << 16 |
				 (uint32_t)hd[7] << 8 | hd[8]) & 0x7fffffffu);
	bool end = flags & NGHTTP2_FLAG_END_STREAM;
	uint8_t *s;

	cl->payload_left = len;
	switch (type) {
	case F_SETTINGS:
		if (!(flags & NGHTTP2_FLAG_ACK))
			pay_frame(cl, H2S_ABUSE_SETTINGS);
		return;
	case F_PING:
		pay_frame(cl, H2S_ABUSE_PING);
		return;
	case F_WINDOW_UPDATE:
		pay_frame(cl, H2S_ABUSE_WINDOW_UPDATE);
		return;
	case F_PRIORITY:
		pay_frame(cl, H2S_ABUSE_PRIORITY);
		return;
	case F_PUSH_PROMISE:
	case F_GOAWAY:
	case F_CONTINUATION: /* nghttp2 caps them (plane.c) and checks their order */
		return;
	case F_DATA:
	case F_HEADERS:
	case F_RST_STREAM:
		break;
	default:
		pay_frame(cl, H2S_ABUSE_UNKNOWN_FRAME); /* ignored, as RFC 9113 5.5 says */
		return;
	}
	if (sid == 0 || !(sid & 1))
		return; /* nghttp2's connection error */
	if (sid > cl->sids.max) {
		if (type != F_HEADERS)
			return; /* on an idle stream: nghttp2's connection error */
		h2s_sids_open(&cl->sids, sid);
		if (end)
			*h2s_sids_get(&cl->sids, sid) |= H2S_SID_CLIENT_ENDED;
		/* A stream is work: its request's WINDOW_UPDATEs and PINGs are paid. */
		h2s_bucket_give(&cl->flood, cl->c.p->set.client_flood_burst, 2);
		return;
	}
	if (!stream_live(cl->c.ng, sid)) {
		closed_stream_frame(cl, type, sid);
		return;
	}
	s = h2s_sids_get(&cl->sids, sid);
	if (type == F_RST_STREAM) {
		if (s)
			*s |= H2S_SID_CLIENT_RESET;
		pay_reset(cl, H2S_ABUSE_RAPID_RESET, sid);
		return;
	}
	if (end && s)
		*s |= H2S_SID_CLIENT_ENDED;
	if (type == F_DATA && len == 0 && !end)
		pay_frame(cl, H2S_ABUSE_EMPTY_DATA);
}

/* Hand nghttp2 n bytes; after calm_close() nothing more is read. */
static ssize_t feed(struct h2s_client *cl, const uint8_t *buf, size_t n)
{
	ssize_t rc;

	if (!n || cl->calm_closed || cl->c.dead)
		return 0;
	rc = nghttp2_session_mem_recv(cl->c.ng, buf, n);
	return rc < 0 ? rc : 0;
}

ssize_t h2s_guard_recv(struct h2s_conn *c, const uint8_t *buf, size_t n)
{
	struct h2s_client *cl = h2s_container_of(c, struct h2s_client, c);
	size_t i = 0, from = 0, k;
	ssize_t rc;

	while (i < n && !cl->calm_closed && !c->dead) {
		if (cl->preface_left || cl->payload_left) {
			uint32_t *left = cl->preface_left ? &cl->preface_left : &cl->payload_left;

			k = n - i < *left ? n - i : *left;
			i += k;
			*left -= (uint32_t)k;
			continue;
		}
		if (!cl->hd_have) {
			/* A frame header starts: nghttp2 reads every frame before it first. */
			if ((rc = feed(cl, buf + from, i - from)) < 0)
				return rc;
			from = i;
			if (cl->calm_closed || c->dead)
				break;
		}
		uint8_t held = cl->hd_have; /* its head, read last time and not handed over */

		k = n - i < 9u - held ? n - i : 9u - held;
		memcpy(cl->hd + held, buf + i, k);
		cl->hd_have = (uint8_t)(held + k);
		i += k;
		if (cl->hd_have < 9) {
			from = i; /* kept in hd until the header is whole */
			break;
		}
		cl->hd_have = 0;
		tap_frame(cl, cl->hd);
		if (held && (rc = feed(cl, cl->hd, held)) < 0)
			return rc; /* from is 0: the header's tail, in this read, follows */
	}
	if ((rc = feed(cl, buf + from, n - from)) < 0)
		return rc;
	return (ssize_t)n;
}

void h2s_guard_sent_data(struct h2s_client *cl)
{
	/* Work done: the WINDOW_UPDATEs and PINGs it calls for are paid. */
	h2s_bucket_give(&cl->flood, cl->c.p->set.client_flood_burst, 1);
}

void h2s_guard_sent_rst(struct h2s_client *cl, int32_t sid, uint32_t code, bool relayed)
{
	uint8_t *s = h2s_sids_get(&cl->sids, sid);

	if (s)
		*s |= H2S_SID_WE_RESET; /* its late frames are ignored (RFC 9113 5.1) */
	/* MadeYouReset (CVE-2025-8671): a reset we send because of what the client sent (a
	 * malformed request, a stream window past 2^31-1, a stream over the limit) is
	 * paid like one it sends; not those ending a request we answered, nor those relaying
	 * its backend's.
	 */
	if (code != NGHTTP2_NO_ERROR && !relayed)
		pay_reset(cl, H2S_ABUSE_MADE_YOU_RESET, sid);
}

void h2s_guard_stream_closed(struct h2s_client *cl, uint32_t code)
{
	/* A stream answered in full pays back one reset: resets are bounded by the work done. */
	if (code == NGHTTP2_NO_ERROR) {
		const struct h2s_settings *set = &cl->c.p->set;

		h2s_bucket_give(&cl->resets, set->client_reset_burst, 1);
		/* Only a connection that paid resets pays its source back: the lookup is not
		 * worth an RPC's time on the others.
		 */
		if (cl->resets.started)
			h2s_srcbudget_give(&cl->c.p->src_resets, &cl->peer,
				   h2s_loop_share(set->client_reset_source_burst, set->loops), 1);
	}
}
