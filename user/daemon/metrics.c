/* metrics.c — see metrics.h.
 *
 * The kubelet's probes must be answered whatever else reaches the port (issue 15). A daemon in
 * the host network namespace serves it on the node, so any local process can connect, and
 * from 127.0.0.1, where the kubelet probes from too: no limit per address tells the two apart,
 * and any limit on connections an abuser can fill. libmicrohttpd alone failed that way: at its
 * connection limit it took its listener out of its epoll set, every probe timed out while 64
 * idle connections were held, and once they closed the probes went on timing out, since in
 * our external-epoll mode nothing ran it again to put the listener back.
 *
 * So the gate owns the listener and sorts each connection by its first request head, peeked:
 *
 *  - a GET or HEAD of /healthz or /readyz is answered at once from the gate (a few hundred
 *    bytes, which the fresh socket's buffer holds) and closed: a probe needs no slot anywhere;
 *  - any other whole head goes to libmicrohttpd (/metrics, 404s), unread, through
 *    MHD_add_connection, at most CONNECTIONS_MAX at once, each closed after
 *    CONNECTION_TIMEOUT_S idle: a scrape that is never read holds one of those, never a probe.
 *    A page is rendered again only after it has been served for PAGE_REUSE times as long as
 *    its rendering took, so a flood of scrapes cannot keep the loop rendering either;
 *  - a head not ended yet waits, at most HEAD_TIMEOUT_MS (from the accept: a byte a second
 *    extends nothing), in one of WAITERS_MAX places. When they are all taken the oldest waiter
 *    is closed for the newcomer, so that holding connections open keeps no one out: a probe
 *    that must wait (its head split, or later than DEFER_ACCEPT_S after its connect: until
 *    its first bytes the kernel holds a connection back from accept) is the newest and would
 *    be evicted only by WAITERS_MAX newer ones. At most ACCEPT_BATCH (a quarter of them) are
 *    accepted per turn of the loop, so it gets at least four turns.
 *
 * Open fds are bounded by 1 + WAITERS_MAX + CONNECTIONS_MAX whatever the clients do; what the
 * gate closes is counted in h2steer_metrics_connections_dropped_total and logged (rate-limited).
 * What is left to an abuser: delaying scrapes by taking libmicrohttpd's connections, and
 * flooding the port faster than the loop accepts (the probes then queue in the backlog), which
 * takes a CPU of its own.
 */
#include "metrics.h"

#include "addr.h"
#include "daemon.h"
#include "list.h"
#include "kube.h"
#include "log.h"
#include "maps.h"
#include "relay.h"
#include "resolver.h"
#include "strbuf.h"
#include "workers.h"
#include "version.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Real request heads are a few hundred bytes (a scraper's bearer token included). */
#define HEAD_MAX 8192
/* An honest client sends its head with its connect; the kubelet gives up after 1 s. */
#define HEAD_TIMEOUT_MS 2000
#define WAITERS_MAX 32
/* How long the kernel keeps a connection that has sent nothing from the gate (TCP_DEFER_ACCEPT). */
#define DEFER_ACCEPT_S 1
#define ACCEPT_BATCH (WAITERS_MAX / 4)
/* Scrapers: a Prometheus pair and someone with curl. */
#define CONNECTIONS_MAX 8
#define CONNECTION_TIMEOUT_S 5
#define PAGE_REUSE 10
/* Out of fds: how long the listener rests rather than spin. */
#define ACCEPT_PAUSE_MS 100

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define STR_(x) #x
#define STR(x) STR_(x)

enum drop {
	DROP_EVICTED,
	DROP_TIMEOUT,
	DROP_TOO_LARGE,
	DROP_BUSY,
	DROP__COUNT
};

static const char *const drop_name[DROP__COUNT] = { "evicted", "timeout", "too_large", "busy" };
static const char *const drop_why[DROP__COUNT] = {
	"a request head not ended, the oldest of " STR(WAITERS_MAX) ", made room for a new one",
	"no whole request head within " STR(HEAD_TIMEOUT_MS) " ms",
	"a request head over " STR(HEAD_MAX) " bytes",
	"a request for libmicrohttpd, all " STR(CONNECTIONS_MAX) " of its connections in use",
};

/* A connection whose request head has not ended yet. */
struct waiter {
	struct h2s_watch w;
	struct h2s_list link; /* h2s_metrics.waiting, oldest first */
	struct h2s_reap reap;
	struct h2s_metrics *m;
	uint64_t deadline_ms;
	bool dead;
	socklen_t sl;
	struct sockaddr_storage ss;
};

struct h2s_metrics {
	struct h2s_daemon *d;
	struct MHD_Daemon *mhd;
	struct h2s_watch w; /* MHD's epoll fd, nested in ours */
	struct h2s_timer timer; /* MHD's timeouts */
	struct h2s_watch listener;
	struct h2s_timer gate_timer; /* the oldest waiter's deadline, the end of a pause */
	struct h2s_list waiting;
	int nwaiting;
	uint64_t resume_ms; /* accepting again then (0: not paused) */
	uint64_t dropped[DROP__COUNT];
	struct h2s_log_limit lim[DROP__COUNT];
	struct MHD_Response *page; /* the last /metrics page, served again until page_until_ns */
	uint64_t page_until_ns;
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

/* The labels of a service: service="VIP:PORT", and for one Kubernetes declared (h2s_svc_names:
 * "NAMESPACE/SERVICE:PORT") namespace, kube_service and kube_port too, so dashboards can
 * group by what people call it.
 */
static void svc_labels(struct h2s_daemon *d, const char *vip_name, char *out, size_t len)
{
	struct h2s_svc_name nm;
	struct h2s_addr vip;
	char why[128], ns[64], svc[64], port[64];

	snprintf(out, len, "service=\"%s\"", vip_name);
	if (!d->p.maps || h2s_addr_parse(vip_name, &vip, why, sizeof(why)) < 0 ||
	    h2s_svc_name_get(d->p.maps, &vip, &nm) < 0 || nm.source != H2S_SRC_KUBE)
		return;
	nm.name[sizeof(nm.name) - 1] = '\0';
	if (sscanf(nm.name, "%63[^/]/%63[^:]:%63s", ns, svc, port) != 3)
		return;
	snprintf(out + strlen(out), len - strlen(out),
		 ",namespace=\"%s\",kube_service=\"%s\",kube_port=\"%s\"", ns, svc, port);
}

/* One line per named service: what its VIP is called, to join on (service="VIP"). */
static void render_service_info(struct h2s_daemon *d, const struct h2s_totals *t,
				struct h2s_strbuf *b)
{
	struct h2s_svc_stats *s;
	char labels[400];

	family(b, "h2steer_service_info", "gauge",
	       "1 per service declared by a discovery source that names it (Kubernetes: "
	       "namespace, kube_service, kube_port).");
	h2s_stats_each(s, t->stats.svc)
	{
		svc_labels(d, s->name, labels, sizeof(labels));
		if (strchr(labels, ','))
			h2s_sb_printf(b, "h2steer_service_info{%s} 1\n", labels);
	}
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
		char labels[400];

		if (!none)
			h2s_addr_format(&p->be, be, sizeof(be));
		svc_labels(d, p->svc ? p->svc->name : "", labels, sizeof(labels));
		for (int k = 0; k < H2S_RPC__COUNT; k++)
			if (p->rpcs[k])
				h2s_sb_printf(b,
					      "h2steer_rpcs_total{%s,backend=\"%s\","
					      "grpc_status=\"%s\"} %llu\n",
					      labels, none ? "none" : be,
					      h2s_rpc_status_label(k), (unsigned long long)p->rpcs[k]);
	}
	family(b, "h2steer_rpc_duration_seconds", "histogram",
	       "Time from an RPC's request headers to its end, per service.");
	h2s_stats_each(s, t->stats.svc)
	{
		char labels[400];

		svc_labels(d, s->name, labels, sizeof(labels));
		histogram(b, "h2steer_rpc_duration_seconds", labels, &s->lat);
	}
	render_service_info(d, t, b);
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
	family(b, "h2steer_client_connections_refused_total", "counter",
	       "Captured client connections closed at once: over max_client_connections (total) "
	       "or max_client_connections_per_source (per_source).");
	h2s_sb_printf(b, "h2steer_client_connections_refused_total{reason=\"total\"} %llu\n",
		      (unsigned long long)t->stats.conns_refused_total);
	h2s_sb_printf(b, "h2steer_client_connections_refused_total{reason=\"per_source\"} %llu\n",
		      (unsigned long long)t->stats.conns_refused_per_source);
	family(b, "h2steer_accept_pauses_total", "counter",
	       "Times accepting stopped for 100 ms: the process was out of file descriptors or "
	       "socket memory.");
	h2s_sb_printf(b, "h2steer_accept_pauses_total %llu\n",
		      (unsigned long long)t->stats.accept_pauses);
	family(b, "h2steer_header_list_too_large_total", "counter",
	       "Header blocks over max_header_list, by sender: each failed its own stream only.");
	h2s_sb_printf(b, "h2steer_header_list_too_large_total{from=\"client\"} %llu\n",
		      (unsigned long long)t->stats.client_hdrs_too_large);
	h2s_sb_printf(b, "h2steer_header_list_too_large_total{from=\"backend\"} %llu\n",
		      (unsigned long long)t->stats.backend_hdrs_too_large);
	family(b, "h2steer_client_timeouts_total", "counter",
	       "Captured client connections closed by a timeout: no preface and SETTINGS within "
	       "handshake_timeout_ms (handshake), no stream and no frame for client_idle_ms "
	       "(idle, after GOAWAY), a frame or header block unfinished after "
	       "client_frame_timeout_ms (incomplete_frame).");
	h2s_sb_printf(b, "h2steer_client_timeouts_total{reason=\"handshake\"} %llu\n",
		      (unsigned long long)t->stats.client_handshake_timeouts);
	h2s_sb_printf(b, "h2steer_client_timeouts_total{reason=\"idle\"} %llu\n",
		      (unsigned long long)t->stats.client_idle_closed);
	h2s_sb_printf(b, "h2steer_client_timeouts_total{reason=\"incomplete_frame\"} %llu\n",
		      (unsigned long long)t->stats.client_frame_timeouts);
	family(b, "h2steer_backend_pings_total", "counter",
	       "PINGs sent on backend connections with streams open that were silent for "
	       "backend_ping_interval_ms.");
	h2s_sb_printf(b, "h2steer_backend_pings_total %llu\n",
		      (unsigned long long)t->stats.backend_pings);
	family(b, "h2steer_backend_ping_timeouts_total", "counter",
	       "Backend connections closed as dead: nothing came back within "
	       "backend_ping_timeout_ms of a PING (their streams failed or were replayed).");
	h2s_sb_printf(b, "h2steer_backend_ping_timeouts_total %llu\n",
		      (unsigned long long)t->stats.backend_ping_timeouts);
	family(b, "h2steer_try_timeouts_total", "counter",
	       "Tries with no response headers from their backend in time: try_timeout_ms "
	       "(reason try_timeout), or the call's own grpc-timeout (deadline).");
	h2s_sb_printf(b, "h2steer_try_timeouts_total{reason=\"try_timeout\"} %llu\n",
		      (unsigned long long)t->stats.try_timeouts);
	h2s_sb_printf(b, "h2steer_try_timeouts_total{reason=\"deadline\"} %llu\n",
		      (unsigned long long)t->stats.try_deadlines);
	family(b, "h2steer_ejections_spared_total", "counter",
	       "Times a service kept using an ejected backend: ejecting it there too would take "
	       "more than outlier_max_ejection_percent of that service's backends out.");
	h2s_sb_printf(b, "h2steer_ejections_spared_total %llu\n",
		      (unsigned long long)t->stats.ejections_spared);
	family(b, "h2steer_client_abuse_total", "counter",
	       "Client connections closed for what they sent: GOAWAY ENHANCE_YOUR_CALM over a "
	       "budget (client_flood_*: settings, ping, window_update, priority, empty_data, "
	       "unknown_frame, closed_stream; client_reset_*: rapid_reset, made_you_reset), or a "
	       "connection error (protocol_error).");
	for (int k = 0; k < H2S_ABUSE__COUNT; k++)
		h2s_sb_printf(b, "h2steer_client_abuse_total{kind=\"%s\"} %llu\n",
			      h2s_abuse_name(k), (unsigned long long)t->stats.client_abuse[k]);
	family(b, "h2steer_buffered_bytes", "gauge",
	       "Request and response body bytes the daemon holds for its streams now (budgets: "
	       "client_buffer_max per client connection, buffer_total_mib in all).");
	h2s_sb_printf(b, "h2steer_buffered_bytes %llu\n", (unsigned long long)t->stats.buffered);
	family(b, "h2steer_memory_refused_streams_total", "counter",
	       "New streams refused (REFUSED_STREAM) while their connection (connection) or the "
	       "daemon (total) held its memory budget.");
	h2s_sb_printf(b, "h2steer_memory_refused_streams_total{budget=\"connection\"} %llu\n",
		      (unsigned long long)t->stats.mem_refused_conn);
	h2s_sb_printf(b, "h2steer_memory_refused_streams_total{budget=\"total\"} %llu\n",
		      (unsigned long long)t->stats.mem_refused_total);
	family(b, "h2steer_memory_reset_streams_total", "counter",
	       "Streams reset (ENHANCE_YOUR_CALM, RESOURCE_EXHAUSTED in gRPC) because their "
	       "response would have gone over a memory budget: the client did not read it.");
	h2s_sb_printf(b, "h2steer_memory_reset_streams_total %llu\n",
		      (unsigned long long)t->stats.mem_resets);
	family(b, "h2steer_memory_upload_waits_total", "counter",
	       "Times a client connection's uploads were held (no connection WINDOW_UPDATE) "
	       "because it was over a memory budget.");
	h2s_sb_printf(b, "h2steer_memory_upload_waits_total %llu\n",
		      (unsigned long long)t->stats.mem_upload_waits);
	family(b, "h2steer_clients_not_reading_closed_total", "counter",
	       "Client connections closed because their socket took no byte for "
	       "client_write_timeout_ms while responses waited.");
	h2s_sb_printf(b, "h2steer_clients_not_reading_closed_total %llu\n",
		      (unsigned long long)t->stats.clients_stalled);
	family(b, "h2steer_malloc_trims_total", "counter",
	       "Times the daemon gave freed heap memory back to the system (malloc_trim).");
	h2s_sb_printf(b, "h2steer_malloc_trims_total %llu\n",
		      (unsigned long long)t->stats.malloc_trims);
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

/* The Kubernetes source, when on: what its watches hold and how they fare. */
static void render_kube(struct h2s_daemon *d, struct h2s_strbuf *b)
{
	static const char *const res[] = { "services", "endpointslices" };
	static const struct {
		const char *metric, *field, *type, *help;
	} per[] = {
		{ "h2steer_kubernetes_objects", "objects", "gauge",
		  "Objects the watch of each resource holds." },
		{ "h2steer_kubernetes_events_total", "events", "counter",
		  "Watch events applied, per resource (bookmarks not counted)." },
		{ "h2steer_kubernetes_relists_total", "relists", "counter",
		  "Lists after the first (410 Gone, an ERROR event), per resource." },
	};
	json_t *st;

	if (!d->src.kube)
		return;
	st = h2s_kube_status(d->src.kube);
	family(b, "h2steer_kubernetes_synced", "gauge",
	       "1 once Services and EndpointSlices have been listed.");
	h2s_sb_printf(b, "h2steer_kubernetes_synced %d\n",
		      json_is_true(json_object_get(st, "synced")));
	family(b, "h2steer_kubernetes_balanced_services", "gauge",
	       "Services (cluster IP and port) declared from the API.");
	h2s_sb_printf(b, "h2steer_kubernetes_balanced_services %lld\n",
		      (long long)json_integer_value(json_object_get(st, "balanced")));
	family(b, "h2steer_kubernetes_skipped_services", "gauge",
	       "Services not balanced because of a bad annotation or object (see h2steer status).");
	h2s_sb_printf(b, "h2steer_kubernetes_skipped_services %zu\n",
		      json_object_size(json_object_get(st, "skipped")));
	for (size_t m = 0; m < sizeof(per) / sizeof(per[0]); m++) {
		family(b, per[m].metric, per[m].type, per[m].help);
		for (size_t r = 0; r < 2; r++)
			h2s_sb_printf(b, "%s{resource=\"%s\"} %lld\n", per[m].metric, res[r],
				      (long long)json_integer_value(json_object_get(
					      json_object_get(st, res[r]), per[m].field)));
	}
	json_decref(st);
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

static void render_port(const struct h2s_metrics *m, struct h2s_strbuf *b)
{
	family(b, "h2steer_metrics_connections_dropped_total", "counter",
	       "Connections to this port closed unanswered, by reason: evicted (the oldest whose "
	       "request head had not ended, for a new one), timeout (no whole head within "
	       STR(HEAD_TIMEOUT_MS) " ms), too_large (a head over " STR(HEAD_MAX) " bytes), busy "
	       "(a scrape, all " STR(CONNECTIONS_MAX) " scrape connections in use).");
	for (int r = 0; r < DROP__COUNT; r++)
		h2s_sb_printf(b, "h2steer_metrics_connections_dropped_total{reason=\"%s\"} %llu\n",
			      drop_name[r], (unsigned long long)(m ? m->dropped[r] : 0));
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
	render_kube(d, &b);
	render_port(d->metrics, &b);
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
	return h2s_kube_not_ready(d->src.kube);
}

/* ---- HTTP: the gate ---- */

/* What /healthz or /readyz answers (its status, the text in msg), or 0 for any other url: one
 * answer for the gate and for libmicrohttpd both.
 */
static unsigned probe_answer(struct h2s_daemon *d, const char *url, char *msg, size_t len)
{
	const char *why;

	if (!strcmp(url, "/healthz")) {
		snprintf(msg, len, "ok\n");
		return MHD_HTTP_OK;
	}
	if (strcmp(url, "/readyz"))
		return 0;
	why = h2s_daemon_not_ready(d);
	if (!why) {
		char note[300];

		/* Still ready: the node serves what it knew, which beats restarting it. */
		if (h2s_kube_degraded(d->src.kube, note, sizeof(note)))
			snprintf(msg, len, "ready (%s)\n", note);
		else
			snprintf(msg, len, "ready\n");
		return MHD_HTTP_OK;
	}
	snprintf(msg, len, "not ready: %s\n", why);
	return MHD_HTTP_SERVICE_UNAVAILABLE;
}

static void count_drop(struct h2s_metrics *m, enum drop r)
{
	m->dropped[r]++;
	h2s_log_limited(&m->lim[r], H2S_LOG_WARNING, "metrics port: %s: closed", drop_why[r]);
}

static void run_mhd(struct h2s_metrics *m)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(m->mhd);
	if (MHD_get_timeout(m->mhd, &ms) == MHD_YES)
		h2s_timer_arm(&m->d->p.loop, &m->timer, ms);
	else
		h2s_timer_cancel(&m->d->p.loop, &m->timer);
}

/* Length of the request head in buf (its request line and headers, up to and with the empty
 * line that ends them; bare LFs as well as CRLFs), or 0 when it has not ended yet.
 */
static size_t head_len(const char *buf, size_t n)
{
	for (const char *nl = memchr(buf, '\n', n); nl; nl = memchr(nl + 1, '\n', buf + n - nl - 1)) {
		const char *next = nl + 1;

		if (next < buf + n && *next == '\n')
			return (size_t)(next - buf) + 1;
		if (next + 1 < buf + n && next[0] == '\r' && next[1] == '\n')
			return (size_t)(next - buf) + 2;
	}
	return 0;
}

/* A probe's whole head is in buf: answer it here (the caller closes). False when it is no GET
 * or HEAD of /healthz or /readyz.
 */
static bool answer_probe(struct h2s_metrics *m, int fd, char *buf, size_t len)
{
	const char *sp = memchr(buf, ' ', len), *end;
	char url[16], msg[384], out[640];
	bool head_only;
	unsigned status;
	int n;

	if (!sp)
		return false;
	head_only = sp - buf == 4 && !memcmp(buf, "HEAD", 4);
	if (!head_only && !(sp - buf == 3 && !memcmp(buf, "GET", 3)))
		return false;
	end = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - buf));
	if (!end || (size_t)(end - sp - 1) >= sizeof(url))
		return false;
	memcpy(url, sp + 1, (size_t)(end - sp - 1));
	url[end - sp - 1] = '\0';
	status = probe_answer(m->d, url, msg, sizeof(msg));
	if (!status)
		return false;
	/* Read the head for real: closing with it unread would reset the connection, and the
	 * client could lose the answer to the reset.
	 */
	if (recv(fd, buf, len, MSG_DONTWAIT) != (ssize_t)len)
		return true;
	n = snprintf(out, sizeof(out),
		     "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n%s",
		     status, MHD_get_reason_phrase_for(status), TEXT_PLAIN, strlen(msg),
		     head_only ? "" : msg);
	/* A fresh socket's send buffer holds it whole: no connection waits on its reader. */
	send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	return true;
}

enum verdict {
	WAIT, /* its head has not ended yet */
	CLOSE, /* answered, gone, or refused */
	FOR_MHD, /* a whole request head that is no probe */
};

/* Look at what fd has sent so far (peeked: libmicrohttpd reads it again) and answer a probe.
 * peer_done: the peer has closed or shut down its side, its head will not end.
 */
static enum verdict admit(struct h2s_metrics *m, int fd, bool peer_done)
{
	char buf[HEAD_MAX];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	size_t len;

	if (n < 0 && (errno == EAGAIN || errno == EINTR) && !peer_done)
		return WAIT;
	if (n <= 0)
		return CLOSE;
	len = head_len(buf, (size_t)n);
	if (!len) {
		if ((size_t)n == sizeof(buf))
			count_drop(m, DROP_TOO_LARGE);
		return (size_t)n < sizeof(buf) && !peer_done ? WAIT : CLOSE;
	}
	return answer_probe(m, fd, buf, len) ? CLOSE : FOR_MHD;
}

static void finish(struct h2s_metrics *m, int fd, const struct sockaddr_storage *ss,
		   socklen_t sl, enum verdict v)
{
	if (v == CLOSE) {
		close(fd);
		return;
	}
	/* libmicrohttpd closes fd when it cannot take it: at its CONNECTIONS_MAX. */
	if (MHD_add_connection(m->mhd, fd, (const struct sockaddr *)ss, sl) != MHD_YES)
		count_drop(m, DROP_BUSY);
	run_mhd(m);
}

static void waiter_free(struct h2s_reap *r)
{
	free(h2s_container_of(r, struct waiter, reap));
}

/* Forget a waiter whose fd is closed or handed over; freed after this turn, as a later event
 * of the same batch may be its own.
 */
static void waiter_done(struct waiter *wt)
{
	struct h2s_metrics *m = wt->m;

	wt->dead = true;
	h2s_list_del(&wt->link);
	m->nwaiting--;
	wt->reap.free = waiter_free;
	h2s_loop_defer_free(&m->d->p.loop, &wt->reap);
}

static void waiter_drop(struct waiter *wt, enum drop r)
{
	h2s_watch_del(&wt->m->d->p.loop, &wt->w);
	close(wt->w.fd);
	count_drop(wt->m, r);
	waiter_done(wt);
}

static struct waiter *oldest(struct h2s_metrics *m)
{
	return h2s_list_empty(&m->waiting) ? NULL
					   : h2s_container_of(m->waiting.next, struct waiter, link);
}

static void gate_rearm(struct h2s_metrics *m)
{
	struct waiter *wt = oldest(m);
	uint64_t at = wt ? wt->deadline_ms : 0, now = h2s_now_ms();

	if (m->resume_ms && (!at || m->resume_ms < at))
		at = m->resume_ms;
	if (at)
		h2s_timer_arm(&m->d->p.loop, &m->gate_timer, at > now ? at - now : 0);
	else
		h2s_timer_cancel(&m->d->p.loop, &m->gate_timer);
}

static void waiter_io(struct h2s_watch *w, uint32_t events)
{
	struct waiter *wt = h2s_container_of(w, struct waiter, w);
	struct h2s_metrics *m = wt->m;
	enum verdict v;

	if (wt->dead)
		return;
	v = admit(m, w->fd, events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
	if (v == WAIT)
		return;
	h2s_watch_del(&m->d->p.loop, w);
	finish(m, w->fd, &wt->ss, wt->sl, v);
	waiter_done(wt);
	gate_rearm(m);
}

/* fd's head has not ended yet: wait for it, HEAD_TIMEOUT_MS at most, in one of WAITERS_MAX
 * places; when all are taken, the oldest one is given up. Edge-triggered: peeking leaves the
 * bytes in place, so a level-triggered watch would be ready again at once; this one is when
 * more arrive.
 */
static void wait_for_head(struct h2s_metrics *m, int fd, const struct sockaddr_storage *ss,
			  socklen_t sl)
{
	struct waiter *wt = calloc(1, sizeof(*wt));

	if (!wt) {
		close(fd);
		return;
	}
	if (m->nwaiting == WAITERS_MAX)
		waiter_drop(oldest(m), DROP_EVICTED);
	wt->m = m;
	wt->w.fd = fd;
	wt->w.on_io = waiter_io;
	wt->ss = *ss;
	wt->sl = sl;
	wt->deadline_ms = h2s_now_ms() + HEAD_TIMEOUT_MS;
	if (h2s_watch_add(&m->d->p.loop, &wt->w, EPOLLIN | EPOLLRDHUP | EPOLLET) < 0) {
		close(fd);
		free(wt);
		return;
	}
	h2s_list_add_tail(&m->waiting, &wt->link);
	m->nwaiting++;
	gate_rearm(m);
}

static void on_accept(struct h2s_watch *w, uint32_t events)
{
	struct h2s_metrics *m = h2s_container_of(w, struct h2s_metrics, listener);

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(w->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN) {
				/* Out of fds or memory: the listener would be ready again at once,
				 * and the loop spin; it waits a while instead.
				 */
				log_limited(H2S_LOG_WARNING,
					    "metrics port: cannot accept (%s): not for %d ms",
					    strerror(errno), ACCEPT_PAUSE_MS);
				h2s_watch_set(&m->d->p.loop, w, 0);
				m->resume_ms = h2s_now_ms() + ACCEPT_PAUSE_MS;
				gate_rearm(m);
			}
			return;
		}
		enum verdict v = admit(m, fd, false);

		if (v == WAIT)
			wait_for_head(m, fd, &ss, sl);
		else
			finish(m, fd, &ss, sl, v);
	}
}

static void on_gate_timer(struct h2s_timer *t)
{
	struct h2s_metrics *m = h2s_container_of(t, struct h2s_metrics, gate_timer);
	uint64_t now = h2s_now_ms();
	struct waiter *wt;

	while ((wt = oldest(m)) && wt->deadline_ms <= now)
		waiter_drop(wt, DROP_TIMEOUT);
	if (m->resume_ms && m->resume_ms <= now) {
		m->resume_ms = 0;
		h2s_watch_set(&m->d->p.loop, &m->listener, EPOLLIN);
	}
	gate_rearm(m);
}

/* ---- HTTP: libmicrohttpd, for all but the probes ---- */

static enum MHD_Result text(struct MHD_Connection *c, unsigned status, const char *msg)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, TEXT_PLAIN);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

/* The /metrics page, rendered again only once the last one has been served for PAGE_REUSE
 * times as long as it took to render: however fast scrapes come, rendering takes at most
 * 1 / (PAGE_REUSE + 1) of the loop. Responses are reference counted: the connections still
 * sending an older page keep it.
 */
static struct MHD_Response *page(struct h2s_metrics *m)
{
	uint64_t start = h2s_now_ns(), end;
	struct MHD_Response *r;
	size_t len;
	char *text;

	if (m->page && start < m->page_until_ns)
		return m->page;
	text = h2s_metrics_render(m->d, &len);
	r = text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE) : NULL;
	if (!r) {
		free(text);
		return NULL;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; version=0.0.4; charset=utf-8");
	if (m->page)
		MHD_destroy_response(m->page);
	m->page = r;
	end = h2s_now_ns();
	m->page_until_ns = end + (end - start) * PAGE_REUSE;
	return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct h2s_metrics *m = cls;
	unsigned status;
	char msg[384];

	(void)version;
	(void)upload;
	(void)upload_len;
	(void)state;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	if (!strcmp(url, "/metrics")) {
		struct MHD_Response *r = page(m);

		if (!r)
			return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
		return MHD_queue_response(c, MHD_HTTP_OK, r);
	}
	/* A probe the gate left alone (a second request on a kept-alive connection, say). */
	status = probe_answer(m->d, url, msg, sizeof(msg));
	if (status)
		return text(c, status, msg);
	return text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz or /readyz\n");
}

static void on_mhd_io(struct h2s_watch *w, uint32_t events)
{
	(void)events;
	run_mhd(h2s_container_of(w, struct h2s_metrics, w));
}

static void on_mhd_timer(struct h2s_timer *t)
{
	run_mhd(h2s_container_of(t, struct h2s_metrics, timer));
}

static int listen_on(const struct sockaddr_storage *ss)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* A connection that has sent nothing yet stays in the kernel until its first bytes
	 * (or DEFER_ACCEPT_S): a probe slowed between its connect and its send (a busy node)
	 * then comes to the gate with its head, is answered at once and never waits where
	 * newer connections can evict it. Best effort: without it the gate works as before.
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &(int){ DEFER_ACCEPT_S }, sizeof(int));
	if (bind(fd, (const struct sockaddr *)ss,
		 ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					   : sizeof(struct sockaddr_in)) < 0 ||
	    listen(fd, SOMAXCONN) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
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
	m->timer.fire = on_mhd_timer;
	m->gate_timer.fire = on_gate_timer;
	h2s_list_init(&m->waiting);
	m->listener.on_io = on_accept;
	m->listener.fd = listen_on(&ss);
	if (m->listener.fd < 0) {
		snprintf(err, errlen, "cannot serve metrics on %s: %s", name, strerror(errno));
		free(m);
		return NULL;
	}
	/* No thread of its own: MHD's epoll fd sits in our loop, so rendering reads the
	 * daemon's state without locks.
	 */
	m->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, handle,
				  m, MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				  MHD_OPTION_END);
	info = m->mhd ? MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	m->w.fd = info ? info->epoll_fd : -1;
	m->w.on_io = on_mhd_io;
	if (m->w.fd < 0 || h2s_watch_add(&d->p.loop, &m->w, EPOLLIN) < 0 ||
	    h2s_watch_add(&d->p.loop, &m->listener, EPOLLIN) < 0) {
		snprintf(err, errlen, "cannot watch the metrics listener");
		h2s_watch_del(&d->p.loop, &m->w);
		if (m->mhd)
			MHD_stop_daemon(m->mhd);
		close(m->listener.fd);
		free(m);
		return NULL;
	}
	log_info("metrics on http://%s/metrics (and /healthz, /readyz)", name);
	return m;
}

/* Called from a flush or after the loop (see lifecycle.c), never amid an epoll batch: the
 * waiters can be freed at once.
 */
void h2s_metrics_stop(struct h2s_metrics *m)
{
	struct waiter *wt;

	if (!m)
		return;
	while ((wt = oldest(m))) {
		h2s_watch_del(&m->d->p.loop, &wt->w);
		close(wt->w.fd);
		h2s_list_del(&wt->link);
		free(wt);
	}
	h2s_watch_del(&m->d->p.loop, &m->listener);
	close(m->listener.fd);
	h2s_watch_del(&m->d->p.loop, &m->w);
	h2s_timer_cancel(&m->d->p.loop, &m->timer);
	h2s_timer_cancel(&m->d->p.loop, &m->gate_timer);
	MHD_stop_daemon(m->mhd);
	if (m->page)
		MHD_destroy_response(m->page);
	free(m);
}
