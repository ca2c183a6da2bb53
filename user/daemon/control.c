/* control.c — see control.h. */
#include "control.h"

#include "addr.h"
#include "daemon.h"
#include "lifecycle.h"
#include "kube.h"
#include "log.h"
#include "maps.h"
#include "metrics.h"
#include "relay.h"
#include "takeover.h"
#include "workers.h"
#include "version.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A request is one line (a takeover names a pin dir); anything longer is refused. */
#define REQ_MAX 640
/* A client has this long to send its line and read the answer, and at most CLIENTS_MAX are
 * served at once: one that never finishes its line, or never reads, cannot pile up.
 */
#define CLIENT_TIMEOUT_MS 5000
#define CLIENTS_MAX 256

struct ctl_client {
	struct h2s_watch w;
	struct h2s_timer timer; /* CLIENT_TIMEOUT_MS */
	struct h2s_reap reap;
	struct h2s_control *ctl;
	char req[REQ_MAX];
	size_t rlen;
	char *out;
	size_t olen, ooff;
	bool dead;
	struct ctl_client *next;
};

struct h2s_control {
	struct h2s_daemon *d;
	struct h2s_watch w;
	char path[108];
	struct ctl_client *clients;
	int nclients;
};

static double age_s(uint64_t since_ms)
{
	return (double)(h2s_now_ms() - since_ms) / 1000.0;
}

static json_t *addr_json(const struct h2s_addr *a)
{
	char s[H2S_ADDR_STRLEN];

	return json_string(h2s_addr_format(a, s, sizeof(s)));
}

/* Text a client sent (a :path): JSON strings must be UTF-8, and a truncated or hostile one may
 * not be; it is shown escaped rather than dropped.
 */
static json_t *text_json(const char *s)
{
	char safe[4 * 128 + 1];
	size_t used = 0;
	json_t *j = json_string(s);

	if (j)
		return j;
	for (; *s && used + 5 < sizeof(safe); s++)
		used += (size_t)snprintf(safe + used, sizeof(safe) - used,
					 (unsigned char)*s < 0x80 ? "%c" : "\\x%02x",
					 (unsigned char)*s);
	return json_string(safe);
}

static json_t *method_json(const struct h2s_svc_stats *s, const struct h2s_method_stats *m)
{
	return json_pack("{s:s,s:o,s:I,s:I,s:f,s:f,s:f}", "service", s->name, "method",
			 text_json(m->path), "rpcs", (json_int_t)m->rpcs, "errors",
			 (json_int_t)m->errors, "mean_latency_s",
			 m->lat.count ? m->lat.sum / (double)m->lat.count : 0.0, "p50_latency_s",
			 h2s_lat_quantile(&m->lat, 0.5), "p99_latency_s",
			 h2s_lat_quantile(&m->lat, 0.99));
}

struct method_list {
	json_t *arr;
	const struct h2s_svc_stats *svc;
};

static void append_method(const struct h2s_method_stats *m, void *arg)
{
	const struct method_list *ml = arg;

	json_array_append_new(ml->arr, method_json(ml->svc, m));
}

/* RPCs and latency per service and gRPC method (quantiles: the bucket bound they fall in). */
static json_t *methods_json(struct h2s_daemon *d)
{
	json_t *arr = json_array();
	struct h2s_svc_stats *s;
	struct h2s_totals t;

	h2s_totals_take(d, &t);
	h2s_stats_each(s, t.stats.svc)
	h2s_stats_each_method(s, append_method, &(struct method_list){ arr, s });
	h2s_totals_free(&t);
	return arr;
}

/* The client connections of one loop, appended to arr (run on that loop's thread). */
static void add_conns(struct h2s_daemon *d, void *arg)
{
	json_t *arr = arg;
	struct h2s_list *pos;

	for (pos = d->p.clients.next; pos != &d->p.clients; pos = pos->next) {
		struct h2s_client *cl = h2s_container_of(pos, struct h2s_client, link);

		json_array_append_new(
			arr, json_pack("{s:o,s:o,s:I,s:I,s:f,s:I,s:I,s:b}", "peer",
				       addr_json(&cl->peer), "service", addr_json(&cl->vip),
				       "streams_open", (json_int_t)cl->streams_open, "streams_total",
				       (json_int_t)cl->streams_total, "age_s", age_s(cl->accepted_ms),
				       "pid", (json_int_t)cl->origin.tgid, "cgroup_id",
				       (json_int_t)cl->origin.cgroup_id, "goaway",
				       h2s_timer_armed(&cl->goaway_timer) || d->p.draining));
	}
}

static json_t *conns_json(struct h2s_daemon *d)
{
	json_t *arr = json_array();

	add_conns(d, arr);
	h2s_workers_each(d, add_conns, arr);
	return arr;
}

/* The streams of one loop's clients, appended to arr (run on that loop's thread). */
static void add_streams(struct h2s_daemon *d, void *arg)
{
	json_t *arr = arg;
	struct h2s_list *pos, *sp;

	for (pos = d->p.clients.next; pos != &d->p.clients; pos = pos->next) {
		struct h2s_client *cl = h2s_container_of(pos, struct h2s_client, link);

		for (sp = cl->streams.next; sp != &cl->streams; sp = sp->next) {
			struct h2s_stream *st = h2s_container_of(sp, struct h2s_stream, cl_link);
			const char *state = st->flags & H2S_ST_CLIENT_CLOSED ? "closing"
					    : st->flags & H2S_ST_RESP_STARTED  ? "responding"
					    : st->up			       ? "sent"
										       : "picking";

			json_array_append_new(
				arr,
				json_pack("{s:o,s:o,s:i,s:o,s:o,s:s,s:f,s:i}", "client",
					  addr_json(&cl->peer), "service", addr_json(&cl->vip),
					  "stream", st->csid, "method", text_json(st->path), "backend",
					  st->up ? addr_json(&st->up->be->addr) : json_null(), "state",
					  state, "age_s", (double)(h2s_now_ns() - st->t0_ns) / 1e9,
					  "attempts", st->attempts));
		}
	}
}

static json_t *streams_json(struct h2s_daemon *d)
{
	json_t *arr = json_array();

	add_streams(d, arr);
	h2s_workers_each(d, add_streams, arr);
	return arr;
}

static json_t *stats_json(struct h2s_daemon *d)
{
	json_t *svcs = json_array(), *bes = json_array(), *o;
	struct h2s_svc_stats *s;
	struct h2s_pair_stats *p;
	struct h2s_be_stats *e;
	__u64 k[H2S_CNT__COUNT];
	struct h2s_totals t;
	const struct h2s_stats *st = &t.stats;

	h2s_totals_take(d, &t);

	h2s_stats_each(s, st->svc)
	{
		json_t *by = json_array();

		h2s_stats_each(p, st->pair)
		{
			json_t *codes;
			char be[H2S_ADDR_STRLEN];

			if (p->svc != s)
				continue;
			codes = json_object();
			for (int c = 0; c < H2S_RPC__COUNT; c++)
				if (p->rpcs[c])
					json_object_set_new(codes, h2s_rpc_status_label(c),
							    json_integer((json_int_t)p->rpcs[c]));
			json_array_append_new(
				by, json_pack("{s:s,s:o}", "backend",
					      p->be.port ? h2s_addr_format(&p->be, be, sizeof(be))
							 : "none",
					      "rpcs", codes));
		}
		json_array_append_new(
			svcs,
			json_pack("{s:s,s:I,s:f,s:I,s:I,s:o}", "service", s->name, "rpcs",
				  (json_int_t)s->lat.count, "mean_latency_s",
				  s->lat.count ? s->lat.sum / (double)s->lat.count : 0.0,
				  "bytes_request", (json_int_t)s->bytes_request, "bytes_response",
				  (json_int_t)s->bytes_response, "backends", by));
	}
	h2s_stats_each(e, st->be)
	{
		json_array_append_new(
			bes, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:s}", "backend", e->name,
				       "conns_opened", (json_int_t)e->conns_opened,
				       "connect_failures", (json_int_t)e->connect_failures,
				       "ejections",
				       (json_int_t)(e->ejections[H2S_EJECT_CONNECT] +
						    e->ejections[H2S_EJECT_OUTLIER]),
				       "goaways", (json_int_t)e->goaways, "health_checks_failed",
				       (json_int_t)e->checks_failed, "health",
				       h2s_health_name(e->health)));
	}
	o = json_pack("{s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "services", svcs, "backends", bes,
		      "client_connections_accepted", (json_int_t)st->conns_accepted,
		      "capture_misses", (json_int_t)st->capture_misses, "streams_total",
		      (json_int_t)st->streams_total, "streams_failed",
		      (json_int_t)st->streams_failed, "retries", (json_int_t)st->retries,
		      "retries_denied", (json_int_t)st->retries_denied, "drains",
		      (json_int_t)st->drains);
	if (h2s_counters_read(d->p.maps, k) == 0) {
		json_t *kern = json_object();

		for (int i = 0; i < H2S_CNT__COUNT; i++)
			json_object_set_new(kern, h2s_counter_name(i), json_integer((json_int_t)k[i]));
		json_object_set_new(o, "kernel", kern);
	}
	h2s_totals_free(&t);
	return o;
}

static json_t *status_json(struct h2s_daemon *d)
{
	const char *why = h2s_daemon_not_ready(d);
	json_t *listen = json_array();
	struct h2s_totals t;
	json_t *v;

	/* Each address once: after a takeover the main loop may hold several sockets there. */
	for (int i = 0; i < d->nlis; i++) {
		bool seen = false;

		for (int k = 0; k < i; k++)
			seen |= h2s_addr_equal(&d->lis[k].addr, &d->lis[i].addr);
		if (!seen)
			json_array_append_new(listen, addr_json(&d->lis[i].addr));
	}
	h2s_totals_take(d, &t);
	v = json_pack("{s:s,s:i,s:f,s:b,s:s?,s:b,s:i,s:i,s:i,s:o}", "version", H2S_VERSION, "pid",
		      (int)getpid(), "uptime_s", h2s_unix_now() - d->started_unix, "ready",
		      why == NULL, "not_ready", why, "draining", d->p.draining, "loops", t.loops,
		      "clients", (int)t.clients, "streams", (int)t.stats.streams_live, "listen",
		      listen);
	h2s_totals_free(&t);
	if (d->src.kube)
		json_object_set_new(v, "kubernetes", h2s_kube_status(d->src.kube));
	return v;
}

char *h2s_control_answer(struct h2s_daemon *d, const char *request)
{
	json_t *v;
	char *text;

	if (!strcmp(request, "conns"))
		v = conns_json(d);
	else if (!strcmp(request, "streams"))
		v = streams_json(d);
	else if (!strcmp(request, "stats"))
		v = stats_json(d);
	else if (!strcmp(request, "status"))
		v = status_json(d);
	else if (!strcmp(request, "methods"))
		v = methods_json(d);
	else
		v = json_pack("{s:s}", "error",
			      "unknown request (conns, streams, stats, status, methods)");
	text = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	return text;
}

/* ---- the socket ---- */

static const char *refusal(int rc)
{
	switch (rc) {
	case -ESHUTDOWN:
		return "this daemon is draining (stopped without --keep-state?)";
	case -EALREADY:
		return "this daemon is already handing over";
	case -EXDEV:
		return "this daemon serves another pin dir";
	default:
		return strerror(-rc);
	}
}

static char *error_json(const char *msg)
{
	json_t *v = json_pack("{s:s}", "error", msg);
	char *text = v ? json_dumps(v, JSON_COMPACT) : NULL;

	json_decref(v);
	return text;
}

static void client_free(struct h2s_reap *r)
{
	struct ctl_client *c = h2s_container_of(r, struct ctl_client, reap);

	free(c->out);
	free(c);
}

static void client_close(struct ctl_client *c)
{
	struct ctl_client **pp;

	if (c->dead)
		return;
	c->dead = true;
	for (pp = &c->ctl->clients; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->ctl->nclients--;
	h2s_timer_cancel(&c->ctl->d->p.loop, &c->timer);
	h2s_watch_del(&c->ctl->d->p.loop, &c->w);
	close(c->w.fd);
	c->reap.free = client_free;
	h2s_loop_defer_free(&c->ctl->d->p.loop, &c->reap);
}

static void client_timeout(struct h2s_timer *t)
{
	struct ctl_client *c = h2s_container_of(t, struct ctl_client, timer);

	log_limited(H2S_LOG_WARNING, "control socket: a request %s within %d ms: closed",
		    c->out ? "was not read" : "did not end its line", CLIENT_TIMEOUT_MS);
	client_close(c);
}

static void client_io(struct h2s_watch *w, uint32_t events)
{
	struct ctl_client *c = h2s_container_of(w, struct ctl_client, w);
	char *nl;
	ssize_t n;

	(void)events;
	if (c->dead)
		return;
	if (!c->out) {
		n = read(w->fd, c->req + c->rlen, sizeof(c->req) - 1 - c->rlen);
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			client_close(c);
			return;
		}
		c->rlen += (size_t)n;
		c->req[c->rlen] = '\0';
		nl = memchr(c->req, '\n', c->rlen); /* not strchr: the line may hold a NUL */
		if (!nl) {
			if (c->rlen == sizeof(c->req) - 1)
				client_close(c); /* no request is that long */
			return;
		}
		*nl = '\0';
		if (strlen(c->req) != (size_t)(nl - c->req)) {
			c->out = error_json("the request has a NUL byte");
		} else if (!strncmp(c->req, H2S_TAKEOVER_REQUEST " ", sizeof(H2S_TAKEOVER_REQUEST))) {
			int rc = h2s_daemon_hand_over(c->ctl->d, w->fd,
						      c->req + sizeof(H2S_TAKEOVER_REQUEST));

			if (rc == 0) {
				client_close(c);
				return;
			}
			log_warn("takeover asked for, refused: %s", refusal(rc));
			c->out = error_json(refusal(rc));
		} else {
			c->out = h2s_control_answer(c->ctl->d, c->req);
		}
		if (!c->out) {
			client_close(c);
			return;
		}
		c->olen = strlen(c->out);
		h2s_watch_set(&c->ctl->d->p.loop, w, EPOLLOUT);
	}
	while (c->ooff < c->olen) {
		n = send(w->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			break;
		}
		c->ooff += (size_t)n;
	}
	client_close(c);
}

static void on_accept(struct h2s_watch *w, uint32_t events)
{
	struct h2s_control *ctl = h2s_container_of(w, struct h2s_control, w);

	(void)events;
	for (int i = 0; i < 16; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ctl_client *c;

		if (fd < 0)
			return;
		if (ctl->nclients >= CLIENTS_MAX) {
			log_limited(H2S_LOG_WARNING,
				    "control socket: %d requests already open, closing another one",
				    CLIENTS_MAX);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->ctl = ctl;
		c->w.fd = fd;
		c->w.on_io = client_io;
		c->timer.fire = client_timeout;
		if (h2s_watch_add(&ctl->d->p.loop, &c->w, EPOLLIN) < 0) {
			close(fd);
			free(c);
			return;
		}
		h2s_timer_arm(&ctl->d->p.loop, &c->timer, CLIENT_TIMEOUT_MS);
		c->next = ctl->clients;
		ctl->clients = c;
		ctl->nclients++;
	}
}

/* Does something accept connections there? */
static bool socket_in_use(const struct sockaddr_un *sun)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used = s >= 0 && connect(s, (const struct sockaddr *)sun, sizeof(*sun)) == 0;

	if (s >= 0)
		close(s);
	return used;
}

struct h2s_control *h2s_control_start(struct h2s_daemon *d, const char *path, char *err,
				      size_t errlen)
{
	struct h2s_control *ctl = calloc(1, sizeof(*ctl));
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[108], *slash;

	if (!ctl)
		return NULL;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket path '%s' is too long", path);
		free(ctl);
		return NULL;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
			free(ctl);
			return NULL;
		}
	}
	memcpy(sun.sun_path, path, strlen(path));
	if (socket_in_use(&sun)) {
		snprintf(err, errlen, "control socket %s is in use by another daemon (give this one "
				      "another --control)", path);
		free(ctl);
		return NULL;
	}
	unlink(path); /* a leftover of a daemon that did not exit cleanly */
	ctl->d = d;
	ctl->w.on_io = on_accept;
	ctl->w.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->w.fd < 0 || bind(ctl->w.fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0600) < 0 || listen(ctl->w.fd, 16) < 0 ||
	    h2s_watch_add(&d->p.loop, &ctl->w, EPOLLIN) < 0) {
		snprintf(err, errlen, "cannot serve the control socket %s: %s", path,
			 strerror(errno));
		if (ctl->w.fd >= 0)
			close(ctl->w.fd);
		free(ctl);
		return NULL;
	}
	return ctl;
}

void h2s_control_stop(struct h2s_control *ctl)
{
	if (!ctl)
		return;
	while (ctl->clients)
		client_close(ctl->clients);
	h2s_watch_del(&ctl->d->p.loop, &ctl->w);
	close(ctl->w.fd);
	unlink(ctl->path);
	free(ctl);
}
