/* health.c — see health.h. */
#include "health.h"

#include "addr.h"
#include "conn.h"
#include "plane.h"
#include "log.h"
#include "maps.h"
#include "registry.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GRPC_UNIMPLEMENTED 12
#define BACKOFF_MAX_MS 30000

/* ---- wire format ---- */

int h2s_health_request_encode(const char *service, uint8_t *buf, size_t len)
{
	size_t sl = strlen(service), msg = sl ? 2 + sl : 0;

	/* One-byte length varint: service names up to 127 bytes (H2S_HEALTH_NAME_MAX - 1). */
	if (sl > 127 || len < 5 + msg)
		return -1;
	buf[0] = 0;
	buf[1] = (uint8_t)(msg >> 24);
	buf[2] = (uint8_t)(msg >> 16);
	buf[3] = (uint8_t)(msg >> 8);
	buf[4] = (uint8_t)msg;
	if (sl) {
		buf[5] = 0x0a; /* field 1, length-delimited */
		buf[6] = (uint8_t)sl;
		memcpy(buf + 7, service, sl);
	}
	return (int)(5 + msg);
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

int h2s_health_response_decode(const uint8_t *msg, size_t len)
{
	const uint8_t *p = msg, *end = msg + len;
	int status = H2S_GRPC_SERVING_UNKNOWN; /* proto3: absent means 0 */

	while (p < end) {
		uint64_t key, v;

		if (varint(&p, end, &key) < 0)
			return -1;
		switch (key & 7) {
		case 0: /* varint */
			if (varint(&p, end, &v) < 0)
				return -1;
			if (key >> 3 == 1)
				status = v > 3 ? H2S_GRPC_SERVING_UNKNOWN : (int)v;
			break;
		case 2: /* length-delimited: skipped (unknown fields are allowed) */
			if (varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -1;
			p += v;
			break;
		case 1:
			if (end - p < 8)
				return -1;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return -1;
			p += 4;
			break;
		default:
			return -1;
		}
	}
	return status;
}

/* ---- the checker ---- */

struct hc_conn {
	struct h2s_conn c;
	struct h2s_health_check *hc; /* NULL once the checker let go of it */
	bool goaway;                 /* the backend said GOAWAY: not a failure */
};

enum hc_timer { T_NONE, T_RECONNECT, T_NEXT, T_TIMEOUT };

struct h2s_health_check {
	struct h2s_plane *p;
	struct h2s_backend_rt *be;
	char service[H2S_HEALTH_NAME_MAX];
	struct hc_conn *conn;
	bool check_mode;  /* Watch is unimplemented: poll with Check */
	int32_t sid;      /* the request in flight, 0 if none */
	int grpc_status;  /* of the request in flight, -1 until seen */
	int last_status;  /* last HealthCheckResponse of the request in flight, -1 if none */
	uint8_t msg[512]; /* gRPC framing of the request in flight */
	size_t mlen;
	uint32_t ok_streak, fail_streak;
	uint64_t backoff_ms;
	struct h2s_timer timer;
	enum hc_timer timer_kind;
	struct h2s_reap reap;
	/* The request body (one HealthCheckRequest) of the request in flight: only one request
	 * is ever in flight, and a dropped connection never reads it again.
	 */
	struct body {
		uint8_t buf[140];
		size_t len, off;
	} body;
};

static const struct h2s_health_cfg *cfg_of(struct h2s_health_check *hc)
{
	return &hc->p->set.health;
}

const char *h2s_health_service(const struct h2s_health_check *hc)
{
	return hc->service;
}

static void arm(struct h2s_health_check *hc, enum hc_timer kind, uint64_t ms)
{
	hc->timer_kind = kind;
	h2s_timer_arm(&hc->p->loop, &hc->timer, ms);
}

static void set_health(struct h2s_health_check *hc, uint8_t h)
{
	h2s_backend_set_health(&hc->p->reg, hc->be, h);
}

/* Let go of the connection (it closes; its teardown no longer reports to us). */
static void drop_conn(struct h2s_health_check *hc)
{
	struct hc_conn *hcc = hc->conn;

	hc->conn = NULL;
	hc->sid = 0;
	if (hcc) {
		hcc->hc = NULL;
		h2s_conn_close(&hcc->c, "health check done with it");
	}
}

static void failure(struct h2s_health_check *hc, const char *why)
{
	const struct h2s_health_cfg *c = cfg_of(hc);

	struct h2s_be_stats *bs = h2s_stats_backend(&hc->p->stats, &hc->be->addr);

	if (bs)
		bs->checks_failed++;
	hc->ok_streak = 0;
	hc->fail_streak++;
	log_debug("backend %s: health check failed (%s), %u in a row", hc->be->name, why,
		  hc->fail_streak);
	if (hc->fail_streak >= c->unhealthy_threshold && hc->be->health != H2S_HEALTH_UNREACHABLE) {
		log_warn("backend %s: health checks fail (%s)", hc->be->name, why);
		set_health(hc, H2S_HEALTH_UNREACHABLE);
	}
	drop_conn(hc);
	hc->backoff_ms = hc->backoff_ms ? hc->backoff_ms * 2 : (c->interval_ms < 1000 ? c->interval_ms : 1000);
	if (hc->backoff_ms > BACKOFF_MAX_MS)
		hc->backoff_ms = BACKOFF_MAX_MS;
	arm(hc, T_RECONNECT, hc->backoff_ms);
}

/* A HealthCheckResponse. Watch updates are the backend's own word and count at once; Check
 * results go through the thresholds.
 */
static void result(struct h2s_health_check *hc, int status)
{
	const struct h2s_health_cfg *c = cfg_of(hc);
	bool ok = status == H2S_GRPC_SERVING;
	struct h2s_be_stats *bs = h2s_stats_backend(&hc->p->stats, &hc->be->addr);

	if (bs) {
		bs->checks_ok += ok;
		bs->checks_failed += !ok;
	}
	hc->backoff_ms = 0;
	if (ok) {
		hc->fail_streak = 0;
		hc->ok_streak++;
	} else {
		hc->ok_streak = 0;
		hc->fail_streak++;
	}
	if (!hc->check_mode || hc->be->health == H2S_HEALTH_UNKNOWN)
		set_health(hc, ok ? H2S_HEALTH_SERVING : H2S_HEALTH_NOT_SERVING);
	else if (ok && hc->ok_streak >= c->healthy_threshold)
		set_health(hc, H2S_HEALTH_SERVING);
	else if (!ok && hc->fail_streak >= c->unhealthy_threshold)
		set_health(hc, H2S_HEALTH_NOT_SERVING);
}

static ssize_t body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct body *b = src->ptr;
	size_t n = b->len - b->off < len ? b->len - b->off : len;

	(void)ng;
	(void)sid;
	(void)ud;
	memcpy(buf, b->buf + b->off, n);
	b->off += n;
	if (b->off == b->len)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Send a Watch (or, in check mode, a Check) on the current connection. */
static int send_request(struct h2s_health_check *hc)
{
	const char *path = hc->check_mode ? "/grpc.health.v1.Health/Check"
					  : "/grpc.health.v1.Health/Watch";
	char timeout[24];
	nghttp2_nv nv[] = {
		{ (uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0 },
		{ (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
		{ (uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0 },
		{ (uint8_t *)":authority", (uint8_t *)hc->be->name, 10, strlen(hc->be->name), 0 },
		{ (uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0 },
		{ (uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0 },
		{ (uint8_t *)"user-agent", (uint8_t *)"h2steer-health", 10, 14, 0 },
		{ (uint8_t *)"grpc-timeout", (uint8_t *)timeout, 12, 0, 0 }, /* Check only */
	};
	struct body *b = &hc->body;
	nghttp2_data_provider prd = { .source.ptr = b, .read_callback = body_read };
	int n;
	int32_t sid;

	n = h2s_health_request_encode(hc->service, b->buf, sizeof(b->buf));
	if (n < 0)
		return -EINVAL;
	b->len = (size_t)n;
	b->off = 0;
	snprintf(timeout, sizeof(timeout), "%um", cfg_of(hc)->timeout_ms);
	nv[7].valuelen = strlen(timeout);
	sid = nghttp2_submit_request(hc->conn->c.ng, NULL, nv, hc->check_mode ? 8 : 7, &prd, hc);
	if (sid < 0)
		return sid;
	hc->sid = sid;
	hc->grpc_status = -1;
	hc->last_status = -1;
	hc->mlen = 0;
	h2s_conn_mark(&hc->conn->c);
	/* Until the first answer (the only one, for Check). */
	arm(hc, T_TIMEOUT, cfg_of(hc)->timeout_ms);
	return 0;
}

/* ---- nghttp2 callbacks ---- */

static struct h2s_health_check *hc_of(void *ud, int32_t sid)
{
	struct hc_conn *hcc = ud;

	return hcc->hc && hcc->hc->sid == sid ? hcc->hc : NULL;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
		     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2s_health_check *hc = hc_of(ud, f->hd.stream_id);

	(void)ng;
	(void)flags;
	if (hc && nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		hc->grpc_status = 0;
		for (size_t i = 0; i < vlen && i < 4 && value[i] >= '0' && value[i] <= '9'; i++)
			hc->grpc_status = hc->grpc_status * 10 + (value[i] - '0');
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data,
			 size_t len, void *ud)
{
	struct h2s_health_check *hc = hc_of(ud, sid);

	(void)flags;
	(void)ng;
	if (!hc)
		return 0;
	if (len > sizeof(hc->msg) - hc->mlen) {
		failure(hc, "oversized health message");
		return 0;
	}
	memcpy(hc->msg + hc->mlen, data, len);
	hc->mlen += len;
	while (hc->mlen >= 5) {
		size_t mlen = (size_t)hc->msg[1] << 24 | (size_t)hc->msg[2] << 16 |
			      (size_t)hc->msg[3] << 8 | hc->msg[4];
		int status;

		if (hc->msg[0] != 0 || mlen > sizeof(hc->msg) - 5) {
			failure(hc, "bad gRPC message (compressed or too large)");
			return 0;
		}
		if (hc->mlen < 5 + mlen)
			break;
		status = h2s_health_response_decode(hc->msg + 5, mlen);
		memmove(hc->msg, hc->msg + 5 + mlen, hc->mlen - 5 - mlen);
		hc->mlen -= 5 + mlen;
		if (status < 0) {
			failure(hc, "malformed HealthCheckResponse");
			return 0;
		}
		hc->last_status = status;
		if (!hc->check_mode) {
			h2s_timer_cancel(&hc->p->loop, &hc->timer); /* the Watch is live */
			result(hc, status);
		}
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct hc_conn *hcc = ud;

	(void)ng;
	if (f->hd.type == NGHTTP2_GOAWAY)
		hcc->goaway = true;
	return 0;
}

static void next_check(struct h2s_health_check *hc)
{
	arm(hc, T_NEXT, cfg_of(hc)->interval_ms);
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct h2s_health_check *hc = hc_of(ud, sid);
	struct hc_conn *hcc = ud;
	char why[96];

	(void)ng;
	if (!hc)
		return 0;
	hc->sid = 0;
	h2s_timer_cancel(&hc->p->loop, &hc->timer);
	if (hc->grpc_status == GRPC_UNIMPLEMENTED) {
		if (!hc->check_mode) {
			log_info("backend %s: no health Watch: checking every %u ms", hc->be->name,
				 cfg_of(hc)->interval_ms);
			hc->check_mode = true;
			if (send_request(hc) < 0)
				failure(hc, "cannot send a health Check");
			return 0;
		}
		hc->backoff_ms = 0;
		set_health(hc, H2S_HEALTH_UNIMPLEMENTED); /* counts as healthy (gRFC A17) */
		next_check(hc);
		return 0;
	}
	if (hcc->goaway)
		return 0; /* the connection goes; its teardown reconnects */
	if (hc->check_mode && hc->grpc_status == 0 && hc->last_status >= 0) {
		result(hc, hc->last_status);
		next_check(hc);
		return 0;
	}
	if (!hc->check_mode && hc->grpc_status == 0) {
		next_check(hc); /* the backend ended its Watch: watch again later */
		return 0;
	}
	snprintf(why, sizeof(why), "grpc-status %d, stream closed with %s", hc->grpc_status,
		 nghttp2_http2_strerror(code));
	if (hc->check_mode && hc->grpc_status > 0) {
		/* An answer, just not SERVING (e.g. NOT_FOUND: unknown service). */
		result(hc, H2S_GRPC_SERVICE_UNKNOWN);
		next_check(hc);
		return 0;
	}
	failure(hc, why);
	return 0;
}

static nghttp2_session_callbacks *callbacks(void)
{
	static nghttp2_session_callbacks *cb;

	if (!cb && nghttp2_session_callbacks_new(&cb) == 0) {
		nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
		nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	}
	return cb;
}

/* ---- connection ---- */

static void hcc_teardown(struct h2s_conn *c, const char *why)
{
	struct hc_conn *hcc = h2s_container_of(c, struct hc_conn, c);
	struct h2s_health_check *hc = hcc->hc;

	if (!hc)
		return;
	hc->conn = NULL;
	hc->sid = 0;
	hcc->hc = NULL;
	if (hcc->goaway) {
		arm(hc, T_RECONNECT, 0); /* a graceful goodbye: reconnect now */
		return;
	}
	failure(hc, why);
}

static void hcc_destroy(struct h2s_conn *c)
{
	free(h2s_container_of(c, struct hc_conn, c));
}

static void hcc_connected(struct h2s_conn *c, int err)
{
	if (err)
		h2s_conn_close(c, strerror(err));
}

static void connect_now(struct h2s_health_check *hc)
{
	struct h2s_plane *p = hc->p;
	struct sockaddr_storage ss;
	socklen_t sl = h2s_addr_to_sockaddr(&hc->be->addr, &ss);
	struct hc_conn *hcc;
	int fd, one = 1, rc;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	hcc = calloc(1, sizeof(*hcc));
	if (fd < 0 || !hcc || h2s_maps_mark_daemon_socket(p->maps, fd, true) < 0) {
		if (fd >= 0)
			close(fd);
		free(hcc);
		failure(hc, "cannot create a socket");
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	h2s_conn_init(&hcc->c, p, fd);
	hcc->c.teardown = hcc_teardown;
	hcc->c.destroy = hcc_destroy;
	hcc->c.on_connected = hcc_connected;
	hcc->hc = hc;
	if (nghttp2_session_client_new2(&hcc->c.ng, callbacks(), hcc, NULL) != 0) {
		close(fd);
		free(hcc);
		failure(hc, "out of memory");
		return;
	}
	rc = connect(fd, (struct sockaddr *)&ss, sl);
	hcc->c.connecting = rc < 0 && errno == EINPROGRESS;
	if ((rc < 0 && errno != EINPROGRESS) || h2s_conn_start(&hcc->c) < 0) {
		char why[96];

		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		nghttp2_session_del(hcc->c.ng);
		close(fd);
		free(hcc);
		failure(hc, why);
		return;
	}
	hc->conn = hcc;
	nghttp2_submit_settings(hcc->c.ng, NGHTTP2_FLAG_NONE, NULL, 0);
	if (send_request(hc) < 0)
		failure(hc, "cannot send the health request");
	else if (!hcc->c.connecting)
		h2s_conn_mark(&hcc->c);
}

static void on_timer(struct h2s_timer *t)
{
	struct h2s_health_check *hc = h2s_container_of(t, struct h2s_health_check, timer);
	enum hc_timer kind = hc->timer_kind;

	hc->timer_kind = T_NONE;
	switch (kind) {
	case T_RECONNECT:
		connect_now(hc);
		break;
	case T_NEXT:
		if (!hc->conn)
			connect_now(hc);
		else if (send_request(hc) < 0)
			failure(hc, "cannot send the health request");
		break;
	case T_TIMEOUT:
		failure(hc, "no answer in time");
		break;
	case T_NONE:
		break;
	}
}

struct h2s_health_check *h2s_health_start(struct h2s_plane *p, struct h2s_backend_rt *be,
					  const char *service)
{
	struct h2s_health_check *hc = calloc(1, sizeof(*hc));

	if (!hc)
		return NULL;
	hc->p = p;
	hc->be = be;
	snprintf(hc->service, sizeof(hc->service), "%s", service);
	hc->timer.fire = on_timer;
	h2s_backend_set_health(&p->reg, be, H2S_HEALTH_UNKNOWN);
	log_info("backend %s: health checks (grpc.health.v1, service '%s')", be->name, service);
	connect_now(hc);
	return hc;
}

static void hc_free(struct h2s_reap *r)
{
	free(h2s_container_of(r, struct h2s_health_check, reap));
}

void h2s_health_stop(struct h2s_health_check *hc)
{
	if (!hc)
		return;
	h2s_timer_cancel(&hc->p->loop, &hc->timer);
	drop_conn(hc);
	hc->reap.free = hc_free;
	h2s_loop_defer_free(&hc->p->loop, &hc->reap);
}
