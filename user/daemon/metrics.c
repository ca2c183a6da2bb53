/* metrics.c — see metrics.h. */
#include "metrics.h"

#include "addr.h"
#include "daemon.h"
#include "log.h"
#include "maps.h"
#include "relay.h"
#include "resolver.h"
#include "strbuf.h"
#include "workers.h"
#include "version.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

struct h2s_metrics {
	struct h2s_daemon *d;
	struct MHD_Daemon *mhd;
	struct h2s_watch w; /* MHD's epoll fd, nested in ours */
	struct h2s_timer timer;
};

/* ---- rendering ---- */

static void family(struct h2s_strbuf *b, const char *name, const char *type, const char *help)
{
	h2s_sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter split by result="ok" / result="failed". */
static void ok_failed(struct h2s_strbuf *b, const char *name, const char *key, const char *value,
		      uint64_t ok, uint64_t failed)
{
	h2s_sb_printf(b, "%s{%s=\"%s\",result=\"ok\"} %llu\n", name, key, value,
		      (unsigned long long)ok);
	h2s_sb_printf(b, "%s{%s=\"%s\",result=\"failed\"} %llu\n", name, key, value,
		      (unsigned long long)failed);
}

/* Per backend gauges: in flight and connections from every loop's registry (the totals),
 * ejected when any loop ejects it, and the kernel's count of L4 connections.
 */
static void each_backend_gauge(struct h2s_daemon *d, const struct h2s_totals *t,
			       struct h2s_strbuf *b, const char *what)
{
	const struct h2s_be_stats *e;

	h2s_stats_each(e, t->stats.be)
	{
		if (!strcmp(what, "inflight"))
			h2s_sb_printf(b, "h2steer_streams_in_flight{backend=\"%s\"} %u\n", e->name,
				      e->inflight);
		else if (!strcmp(what, "conns"))
			h2s_sb_printf(b, "h2steer_upstream_connections{backend=\"%s\"} %u\n",
				      e->name, e->conns);
		else if (!strcmp(what, "ejected"))
			h2s_sb_printf(b, "h2steer_backend_ejected{backend=\"%s\"} %d\n", e->name,
				      e->ejected);
		else if (!strcmp(what, "l4"))
			h2s_sb_printf(b, "h2steer_l4_connections{backend=\"%s\"} %lld\n", e->name,
				      h2s_l4_conns_get(d->p.maps, &e->addr));
	}
}

/* A Prometheus label value: \\, " and newline escaped; bytes outside printable ASCII (a
 * client's :path may hold anything) shown as '?', since the format wants UTF-8.
 */
static void label_value(char *out, size_t len, const char *in)
{
	size_t o = 0;

	for (; *in && o + 3 < len; in++) {
		unsigned char c = (unsigned char)*in;

		if (c == '\\' || c == '"') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else {
			out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
	}
	out[o] = '\0';
}

static void histogram(struct h2s_strbuf *b, const char *name, const char *labels,
		      const struct h2s_lat *l)
{
	uint64_t cum = 0;

	if (!l->count)
		return;
	for (int k = 0; k <= H2S_LAT_BUCKETS; k++) {
		cum += l->bucket[k];
		if (k < H2S_LAT_BUCKETS)
			h2s_sb_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels,
				      h2s_lat_bounds[k], (unsigned long long)cum);
		else
			h2s_sb_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels,
				      (unsigned long long)cum);
	}
	h2s_sb_printf(b, "%s_sum{%s} %.6f\n", name, labels, l->sum);
	h2s_sb_printf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)l->count);
}

struct method_line {
	struct h2s_strbuf *b;
	const struct h2s_svc_stats *svc;
	int what; /* 0: RPCs, 1: errors, 2: the latency histogram */
};

static void method_line(const struct h2s_method_stats *m, void *arg)
{
	const struct method_line *ml = arg;
	char path[2 * sizeof(m->path)], labels[sizeof(path) + 96];

	label_value(path, sizeof(path), m->path);
	snprintf(labels, sizeof(labels), "service=\"%s\",method=\"%s\"", ml->svc->name, path);
	if (ml->what == 0)
		h2s_sb_printf(ml->b, "h2steer_method_rpcs_total{%s} %llu\n", labels,
			      (unsigned long long)m->rpcs);
	else if (ml->what == 1)
		h2s_sb_printf(ml->b, "h2steer_method_errors_total{%s} %llu\n", labels,
			      (unsigned long long)m->errors);
	else
		histogram(ml->b, "h2steer_method_rpc_duration_seconds", labels, &m->lat);
}

/* Per gRPC method (at most H2S_METHODS_MAX per service, the rest as "(other)"). */
static void each_method(const struct h2s_totals *t, struct h2s_strbuf *b, int what)
{
	struct h2s_svc_stats *s;

	h2s_stats_each(s, t->stats.svc)
	h2s_stats_each_method(s, method_line, &(struct method_line){ b, s, what });
}

static void render_methods(const struct h2s_totals *t, struct h2s_strbuf *b)
{
	family(b, "h2steer_method_rpcs_total", "counter", "RPCs per service and gRPC method.");
	each_method(t, b, 0);
	family(b, "h2steer_method_errors_total", "counter",
	       "RPCs per service and gRPC method that did not end with grpc-status 0.");
	each_method(t, b, 1);
	family(b, "h2steer_method_rpc_duration_seconds", "histogram",
	       "Time from an RPC's request headers to its end, per service and gRPC method.");
	each_method(t, b, 2);
}

static void render_rpcs(struct h2s_daemon *d, const struct h2s_totals *t,
			       struct h2s_strbuf *b)
{
	struct h2s_pair_stats *p;
	struct h2s_svc_stats *s;
	char be[H2S_ADDR_STRLEN];

	family(b, "h2steer_rpcs_total", "counter",
	       "RPCs (HTTP/2 streams) relayed, by service, backend (none: answered by h2steer) "
	       "and how they ended (grpc_status: the gRPC code; reset: RST_STREAM; none: no "
	       "gRPC status).");
	h2s_stats_each(p, t->stats.pair)
	{
		bool none = !p->be.port;

		if (!none)
			h2s_addr_format(&p->be, be, sizeof(be));
		for (int k = 0; k < H2S_RPC__COUNT; k++)
			if (p->rpcs[k])
				h2s_sb_printf(b,
					      "h2steer_rpcs_total{service=\"%s\",backend=\"%s\","
					      "grpc_status=\"%s\"} %llu\n",
					      p->svc ? p->svc->name : "", none ? "none" : be,
					      h2s_rpc_status_label(k), (unsigned long long)p->rpcs[k]);
	}
	family(b, "h2steer_rpc_duration_seconds", "histogram",
	       "Time from an RPC's request headers to its end, per service.");
	h2s_stats_each(s, t->stats.svc)
	{
		char labels[96];

		snprintf(labels, sizeof(labels), "service=\"%s\"", s->name);
		histogram(b, "h2steer_rpc_duration_seconds", labels, &s->lat);
	}
	render_methods(t, b);
	family(b, "h2steer_relayed_bytes_total", "counter",
	       "Message bytes relayed (DATA payload), per service and direction.");
	h2s_stats_each(s, t->stats.svc)
	{
		h2s_sb_printf(b,
			      "h2steer_relayed_bytes_total{service=\"%s\",direction=\"request\"} "
			      "%llu\n",
			      s->name, (unsigned long long)s->bytes_request);
		h2s_sb_printf(b,
			      "h2steer_relayed_bytes_total{service=\"%s\",direction=\"response\"} "
			      "%llu\n",
			      s->name, (unsigned long long)s->bytes_response);
	}
	family(b, "h2steer_streams_in_flight", "gauge", "Streams open on each backend.");
	each_backend_gauge(d, t, b, "inflight");
}

static void render_connections(struct h2s_daemon *d, const struct h2s_totals *t,
			       struct h2s_strbuf *b)
{
	struct h2s_be_stats *e;

	family(b, "h2steer_spliced_connections", "gauge",
	       "Captured connections that did not speak h2c, relayed as bytes to one backend, open.");
	h2s_sb_printf(b, "h2steer_spliced_connections %u\n", t->stats.splices_live);
	family(b, "h2steer_spliced_connections_total", "counter",
	       "Captured connections relayed as bytes (TLS, HTTP/1.1, ...), per service and "
	       "backend.");
	{
		struct h2s_pair_stats *p;
		char be[H2S_ADDR_STRLEN];

		h2s_stats_each(p, t->stats.pair)
		{
			if (!p->spliced || !p->svc)
				continue;
			h2s_sb_printf(b,
				      "h2steer_spliced_connections_total{service=\"%s\","
				      "backend=\"%s\"} %llu\n",
				      p->svc->name, h2s_addr_format(&p->be, be, sizeof(be)),
				      (unsigned long long)p->spliced);
		}
	}
	family(b, "h2steer_l4_connections", "gauge",
	       "Connections the connect hooks sent straight to each backend (mode l4, or no daemon "
	       "accepting), still open.");
	each_backend_gauge(d, t, b, "l4");
	family(b, "h2steer_client_connections", "gauge", "Captured client connections open.");
	h2s_sb_printf(b, "h2steer_client_connections %u\n", t->clients);
	family(b, "h2steer_client_connections_accepted_total", "counter",
	       "Captured client connections accepted.");
	h2s_sb_printf(b, "h2steer_client_connections_accepted_total %llu\n",
		      (unsigned long long)t->stats.conns_accepted);
	family(b, "h2steer_capture_misses_total", "counter",
	       "Connections to the listener with no capture record (closed).");
	h2s_sb_printf(b, "h2steer_capture_misses_total %llu\n",
		      (unsigned long long)t->stats.capture_misses);
	family(b, "h2steer_busy_poll_seconds_total", "counter",
	       "Time the event loop spent polling instead of sleeping (setting busy_poll_us).");
	h2s_sb_printf(b, "h2steer_busy_poll_seconds_total %.6f\n",
		      (double)t->busy_poll_ns / 1e9);
	family(b, "h2steer_upstream_connections", "gauge", "Connections open to each backend.");
	each_backend_gauge(d, t, b, "conns");
	family(b, "h2steer_upstream_connections_opened_total", "counter",
	       "Connections opened to each backend.");
	h2s_stats_each(e, t->stats.be)
	h2s_sb_printf(b, "h2steer_upstream_connections_opened_total{backend=\"%s\"} %llu\n", e->name,
		      (unsigned long long)e->conns_opened);
	family(b, "h2steer_backend_connect_failures_total", "counter",
	       "Connects (or HTTP/2 handshakes) to each backend that failed.");
	h2s_stats_each(e, t->stats.be)
	h2s_sb_printf(b, "h2steer_backend_connect_failures_total{backend=\"%s\"} %llu\n", e->name,
		      (unsigned long long)e->connect_failures);
	family(b, "h2steer_backend_goaways_total", "counter", "GOAWAYs received from each backend.");
	h2s_stats_each(e, t->stats.be)
	h2s_sb_printf(b, "h2steer_backend_goaways_total{backend=\"%s\"} %llu\n", e->name,
		      (unsigned long long)e->goaways);
}

static void render_lifecycle(struct h2s_daemon *d, const struct h2s_totals *t,
			       struct h2s_strbuf *b)
{
	struct h2s_be_stats *e;
	struct h2s_svc_stats *s;

	family(b, "h2steer_ejections_total", "counter",
	       "Times each backend was ejected (reason: connect, outlier).");
	h2s_stats_each(e, t->stats.be)
	for (int r = H2S_EJECT_CONNECT; r < H2S_EJECT__COUNT; r++)
		h2s_sb_printf(b, "h2steer_ejections_total{backend=\"%s\",reason=\"%s\"} %llu\n",
			      e->name, h2s_eject_name(r), (unsigned long long)e->ejections[r]);
	family(b, "h2steer_backend_ejected", "gauge", "1 while the backend is ejected.");
	each_backend_gauge(d, t, b, "ejected");
	family(b, "h2steer_retries_total", "counter",
	       "Streams replayed on another backend (the first was provably not processed).");
	h2s_sb_printf(b, "h2steer_retries_total %llu\n", (unsigned long long)t->stats.retries);
	family(b, "h2steer_retries_denied_total", "counter",
	       "Replays the retry budget did not allow.");
	h2s_sb_printf(b, "h2steer_retries_denied_total %llu\n",
		      (unsigned long long)t->stats.retries_denied);
	family(b, "h2steer_drains_total", "counter",
	       "Backends that stopped taking new RPCs (drained or removed from a service).");
	h2s_sb_printf(b, "h2steer_drains_total %llu\n", (unsigned long long)t->stats.drains);
	family(b, "h2steer_backend_health", "gauge",
	       "Health of each backend: 1 for its current state, 0 for the others.");
	h2s_stats_each(e, t->stats.be)
	for (int h = 0; h < H2S_HEALTH__COUNT; h++)
		h2s_sb_printf(b, "h2steer_backend_health{backend=\"%s\",state=\"%s\"} %d\n",
			      e->name, h2s_health_name(h), e->health == h);
	family(b, "h2steer_backend_health_changed_timestamp_seconds", "gauge",
	       "When each backend's health state last changed.");
	h2s_stats_each(e, t->stats.be)
	if (e->health_changed > 0)
		h2s_sb_printf(b,
			      "h2steer_backend_health_changed_timestamp_seconds{backend=\"%s\"} "
			      "%.3f\n",
			      e->name, e->health_changed);
	family(b, "h2steer_health_checks_total", "counter",
	       "grpc.health.v1 check results per backend (ok: SERVING).");
	h2s_stats_each(e, t->stats.be)
		ok_failed(b, "h2steer_health_checks_total", "backend", e->name, e->checks_ok,
			  e->checks_failed);
	family(b, "h2steer_resolver_lookups_total", "counter",
	       "Resolver lookups per service (DNS answers, file reads).");
	h2s_stats_each(s, t->stats.svc)
	if (s->lookups_ok || s->lookups_failed)
		ok_failed(b, "h2steer_resolver_lookups_total", "service", s->name, s->lookups_ok,
			  s->lookups_failed);
	family(b, "h2steer_resolver_last_success_timestamp_seconds", "gauge",
	       "When each service's resolver last answered.");
	h2s_stats_each(s, t->stats.svc)
	if (s->last_lookup_ok > 0)
		h2s_sb_printf(b,
			      "h2steer_resolver_last_success_timestamp_seconds{service=\"%s\"} %.3f\n",
			      s->name, s->last_lookup_ok);
	family(b, "h2steer_resolver_backends", "gauge",
	       "Backends in each service's last good resolver answer.");
	h2s_stats_each(s, t->stats.svc)
	if (s->lookups_ok)
		h2s_sb_printf(b, "h2steer_resolver_backends{service=\"%s\"} %u\n", s->name,
			      s->resolved);
}

static void render_kernel(struct h2s_daemon *d, struct h2s_strbuf *b)
{
	static const struct {
		const char *family, *label_key, *help;
		struct {
			enum h2s_counter c;
			const char *label;
		} v[10];
	} fam[] = {
		{ "h2steer_kernel_connects_total", "result",
		  "connect()s to managed services seen by the kernel plane, by outcome.",
		  { { H2S_CNT_CAPTURED, "captured" },
		    { H2S_CNT_L4_FALLBACK, "direct_to_backend" },
		    { H2S_CNT_SKIP_DAEMON, "skipped_daemon" },
		    { H2S_CNT_SKIP_NO_LISTENER, "skipped_no_listener" },
		    { H2S_CNT_SKIP_OTHER_NETNS, "skipped_other_netns" },
		    { H2S_CNT_ERR_STORAGE, "storage_error" },
		    { H2S_CNT_CAPTURED_POD, "captured_from_pod" },
		    { H2S_CNT_L4_MODE, "l4_balanced" } } },
		{ "h2steer_kernel_origins_total", "event",
		  "Capture records (client 4-tuple -> service) written and removed by sockops.",
		  { { H2S_CNT_ORIGIN_ADDED, "added" },
		    { H2S_CNT_ORIGIN_REMOVED, "removed" },
		    { H2S_CNT_ERR_ORIGIN, "error" } } },
	};
	__u64 v[H2S_CNT__COUNT];

	if (h2s_counters_read(d->p.maps, v) < 0)
		return;
	family(b, "h2steer_kernel_captured_by_backend_total", "counter",
	       "Captured connects addressed to a backend (services with capture_backends: another "
	       "connect-time balancer rewrote the VIP before h2steer's hook).");
	h2s_sb_printf(b, "h2steer_kernel_captured_by_backend_total %llu\n",
		      (unsigned long long)v[H2S_CNT_BY_BACKEND]);
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		family(b, fam[f].family, "counter", fam[f].help);
		for (size_t i = 0; i < 10 && fam[f].v[i].label; i++)
			h2s_sb_printf(b, "%s{%s=\"%s\"} %llu\n", fam[f].family, fam[f].label_key,
				      fam[f].v[i].label, (unsigned long long)v[fam[f].v[i].c]);
	}
	family(b, "h2steer_kernel_daemon_unreachable_total", "counter",
	       "connect()s that found capture on but no daemon listening (killed or crashed).");
	h2s_sb_printf(b, "h2steer_kernel_daemon_unreachable_total %llu\n",
		      (unsigned long long)v[H2S_CNT_NO_DAEMON]);
	family(b, "h2steer_kernel_peername_rewrites_total", "counter",
	       "getpeername() answers the kernel plane changed back to the service address.");
	h2s_sb_printf(b, "h2steer_kernel_peername_rewrites_total %llu\n",
		      (unsigned long long)v[H2S_CNT_PEERNAME]);
}

char *h2s_metrics_render(struct h2s_daemon *d, size_t *len)
{
	struct h2s_strbuf b = { 0 };

	family(&b, "h2steer_build_info", "gauge", "The running h2steerd.");
	h2s_sb_printf(&b, "h2steer_build_info{version=\"%s\"} 1\n", H2S_VERSION);
	family(&b, "h2steer_start_time_seconds", "gauge", "When this h2steerd started.");
	h2s_sb_printf(&b, "h2steer_start_time_seconds %.3f\n", d->started_unix);
	struct h2s_totals t;

	h2s_totals_take(d, &t);
	family(&b, "h2steer_event_loops", "gauge", "Event loops serving clients (setting loops).");
	h2s_sb_printf(&b, "h2steer_event_loops %d\n", t.loops);
	family(&b, "h2steer_loop_client_connections_accepted_total", "counter",
	       "Captured client connections each event loop accepted (the kernel spreads them).");
	for (int i = 0; i < t.loops && i < H2S_LOOPS_MAX; i++)
		h2s_sb_printf(&b, "h2steer_loop_client_connections_accepted_total{loop=\"%d\"} %llu\n",
			      i, (unsigned long long)t.accepted[i]);
	render_rpcs(d, &t, &b);
	render_connections(d, &t, &b);
	render_lifecycle(d, &t, &b);
	render_kernel(d, &b);
	h2s_totals_free(&t);
	return h2s_sb_take(&b, len);
}

struct unanswered {
	bool any;
};

static void check_resolver(struct h2s_service_rt *s, void *arg)
{
	struct unanswered *u = arg;

	if (s->resolver && !s->resolver->answered)
		u->any = true;
}

const char *h2s_daemon_not_ready(struct h2s_daemon *d)
{
	struct unanswered u = { false };

	if (d->p.draining)
		return "draining";
	if (!d->p.maps || !d->p.maps->ctl_mem || !(d->p.maps->ctl_mem->flags & H2S_CTL_F_CAPTURE))
		return "capture is not on";
	h2s_registry_each_service(&d->p.reg, check_resolver, &u);
	if (u.any)
		return "a resolver has not answered yet";
	return NULL;
}

/* ---- HTTP ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *msg)
{
	char *body = strdup(msg);

	return body ? reply(c, status, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct h2s_metrics *m = cls;
	const char *why;
	char msg[128];

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	if (!strcmp(url, "/metrics")) {
		size_t len;
		char *page = h2s_metrics_render(m->d, &len);

		if (!page)
			return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", page, len);
	}
	if (!strcmp(url, "/healthz"))
		return text(c, MHD_HTTP_OK, "ok\n");
	if (!strcmp(url, "/readyz")) {
		why = h2s_daemon_not_ready(m->d);
		if (!why)
			return text(c, MHD_HTTP_OK, "ready\n");
		snprintf(msg, sizeof(msg), "not ready: %s\n", why);
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	return text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n");
}

static void rearm(struct h2s_metrics *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
		h2s_timer_arm(&m->d->p.loop, &m->timer, ms);
	else
		h2s_timer_cancel(&m->d->p.loop, &m->timer);
}

static void on_io(struct h2s_watch *w, uint32_t events)
{
	struct h2s_metrics *m = h2s_container_of(w, struct h2s_metrics, w);

	(void)events;
	MHD_run(m->mhd);
	rearm(m);
}

static void on_timer(struct h2s_timer *t)
{
	struct h2s_metrics *m = h2s_container_of(t, struct h2s_metrics, timer);

	MHD_run(m->mhd);
	rearm(m);
}

struct h2s_metrics *h2s_metrics_start(struct h2s_daemon *d, const struct h2s_addr *addr,
				      char *err, size_t errlen)
{
	struct h2s_metrics *m = calloc(1, sizeof(*m));
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	char name[H2S_ADDR_STRLEN];

	if (!m)
		return NULL;
	h2s_addr_to_sockaddr(addr, &ss);
	h2s_addr_format(addr, name, sizeof(name));
	m->d = d;
	m->timer.fire = on_timer;
	/* No thread of its own: MHD's epoll fd sits in our loop, so rendering reads the
	 * daemon's state without locks.
	 */
	m->mhd = MHD_start_daemon(MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0,
				  NULL, NULL, handle, m, MHD_OPTION_SOCK_ADDR, &ss,
				  MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT,
				  10u, MHD_OPTION_END);
	if (!m->mhd) {
		snprintf(err, errlen, "cannot serve metrics on %s: %s", name, strerror(errno));
		free(m);
		return NULL;
	}
	info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	m->w.fd = info ? info->epoll_fd : -1;
	m->w.on_io = on_io;
	if (m->w.fd < 0 || h2s_watch_add(&d->p.loop, &m->w, EPOLLIN) < 0) {
		snprintf(err, errlen, "cannot watch the metrics listener");
		MHD_stop_daemon(m->mhd);
		free(m);
		return NULL;
	}
	log_info("metrics on http://%s/metrics (and /healthz, /readyz)", name);
	return m;
}

void h2s_metrics_stop(struct h2s_metrics *m)
{
	if (!m)
		return;
	h2s_watch_del(&m->d->p.loop, &m->w);
	h2s_timer_cancel(&m->d->p.loop, &m->timer);
	MHD_stop_daemon(m->mhd);
	free(m);
}
