/* stats.c — see stats.h. */
#include "stats.h"

#include "addr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double h2s_lat_bounds[H2S_LAT_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

const char *h2s_rpc_status_label(int s)
{
	static const char *const labels[H2S_RPC__COUNT] = {
		"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
		"16", "reset", "none",
	};

	return s >= 0 && s < H2S_RPC__COUNT ? labels[s] : "none";
}

static unsigned bucket(const void *p, size_t n)
{
	const unsigned char *b = p;
	unsigned h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h % H2S_STATS_BUCKETS;
}

struct h2s_svc_stats *h2s_stats_service(struct h2s_stats *s, const struct h2s_addr *vip)
{
	unsigned k = bucket(vip, sizeof(*vip));
	struct h2s_svc_stats *e;

	for (e = s->svc[k]; e; e = e->next)
		if (h2s_addr_equal(&e->vip, vip))
			return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->vip = *vip;
	h2s_addr_format(vip, e->name, sizeof(e->name));
	e->next = s->svc[k];
	s->svc[k] = e;
	return e;
}

struct h2s_pair_stats *h2s_stats_pair(struct h2s_stats *s, const struct h2s_addr *vip,
				      const struct h2s_addr *be)
{
	struct h2s_addr key[2] = { *vip, *be };
	unsigned k = bucket(key, sizeof(key));
	struct h2s_pair_stats *e;

	for (e = s->pair[k]; e; e = e->next)
		if (h2s_addr_equal(&e->vip, vip) && h2s_addr_equal(&e->be, be))
			return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->vip = *vip;
	e->be = *be;
	e->svc = h2s_stats_service(s, vip);
	e->next = s->pair[k];
	s->pair[k] = e;
	return e;
}

struct h2s_be_stats *h2s_stats_backend(struct h2s_stats *s, const struct h2s_addr *addr)
{
	unsigned k = bucket(addr, sizeof(*addr));
	struct h2s_be_stats *e;

	for (e = s->be[k]; e; e = e->next)
		if (h2s_addr_equal(&e->addr, addr))
			return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->addr = *addr;
	h2s_addr_format(addr, e->name, sizeof(e->name));
	e->next = s->be[k];
	s->be[k] = e;
	return e;
}

void h2s_lat_add(struct h2s_lat *l, double seconds)
{
	int b = 0;

	while (b < H2S_LAT_BUCKETS && seconds > h2s_lat_bounds[b])
		b++;
	l->bucket[b]++;
	l->count++;
	l->sum += seconds;
}

double h2s_lat_quantile(const struct h2s_lat *l, double q)
{
	uint64_t want, cum = 0;

	if (!l->count)
		return 0;
	want = (uint64_t)(q * (double)l->count + 0.5);
	if (want < 1)
		want = 1;
	for (int b = 0; b < H2S_LAT_BUCKETS; b++) {
		cum += l->bucket[b];
		if (cum >= want)
			return h2s_lat_bounds[b];
	}
	return h2s_lat_bounds[H2S_LAT_BUCKETS - 1] * 2;
}

static struct h2s_method_stats *method_new(const char *path)
{
	struct h2s_method_stats *m = calloc(1, sizeof(*m));

	if (m)
		snprintf(m->path, sizeof(m->path), "%s", path);
	return m;
}

struct h2s_method_stats *h2s_stats_method(struct h2s_svc_stats *svc, const char *path)
{
	size_t len = strnlen(path, sizeof(((struct h2s_method_stats *)0)->path) - 1);
	unsigned k = bucket(path, len) % H2S_METHOD_BUCKETS;
	struct h2s_method_stats *m;

	for (m = svc->method[k]; m; m = m->next)
		if (strlen(m->path) == len && !memcmp(m->path, path, len))
			return m;
	if (svc->nmethods >= H2S_METHODS_MAX) {
		if (!svc->other)
			svc->other = method_new(H2S_METHOD_OTHER);
		return svc->other;
	}
	m = method_new(path);
	if (!m)
		return NULL;
	m->path[len] = '\0';
	m->next = svc->method[k];
	svc->method[k] = m;
	svc->nmethods++;
	return m;
}

void h2s_stats_rpc(struct h2s_pair_stats *p, struct h2s_method_stats *m, int status,
		   double seconds)
{
	p->rpcs[status >= 0 && status < H2S_RPC__COUNT ? status : H2S_RPC_NONE]++;
	if (p->svc)
		h2s_lat_add(&p->svc->lat, seconds);
	if (m) {
		m->rpcs++;
		m->errors += status != 0;
		h2s_lat_add(&m->lat, seconds);
	}
}

#define FREE_LIST(type, table)                                   \
	for (unsigned b = 0; b < H2S_STATS_BUCKETS; b++)        \
		while ((table)[b]) {                             \
			type *e = (table)[b];                    \
			(table)[b] = e->next;                    \
			free(e);                                 \
		}

static void free_methods(struct h2s_svc_stats *svc)
{
	for (unsigned b = 0; b < H2S_METHOD_BUCKETS; b++)
		while (svc->method[b]) {
			struct h2s_method_stats *m = svc->method[b];

			svc->method[b] = m->next;
			free(m);
		}
	free(svc->other);
	svc->other = NULL;
	svc->nmethods = 0;
}

void h2s_stats_free(struct h2s_stats *s)
{
	struct h2s_svc_stats *svc;

	h2s_stats_each(svc, s->svc)
		free_methods(svc);
	FREE_LIST(struct h2s_svc_stats, s->svc);
	FREE_LIST(struct h2s_pair_stats, s->pair);
	FREE_LIST(struct h2s_be_stats, s->be);
}

void h2s_stats_each_method(const struct h2s_svc_stats *svc,
			   void (*fn)(const struct h2s_method_stats *m, void *arg), void *arg)
{
	for (unsigned k = 0; k < H2S_METHOD_BUCKETS; k++)
		for (const struct h2s_method_stats *m = svc->method[k]; m; m = m->next)
			fn(m, arg);
	if (svc->other)
		fn(svc->other, arg);
}

static void lat_merge(struct h2s_lat *dst, const struct h2s_lat *src)
{
	for (int b = 0; b <= H2S_LAT_BUCKETS; b++)
		dst->bucket[b] += src->bucket[b];
	dst->count += src->count;
	dst->sum += src->sum;
}

static void method_merge(struct h2s_method_stats *dst, const struct h2s_method_stats *src)
{
	dst->rpcs += src->rpcs;
	dst->errors += src->errors;
	lat_merge(&dst->lat, &src->lat);
}

static int service_merge(struct h2s_svc_stats *dst, const struct h2s_svc_stats *src)
{
	lat_merge(&dst->lat, &src->lat);
	dst->bytes_request += src->bytes_request;
	dst->bytes_response += src->bytes_response;
	dst->lookups_ok += src->lookups_ok;
	dst->lookups_failed += src->lookups_failed;
	if (src->last_lookup_ok > dst->last_lookup_ok) {
		dst->last_lookup_ok = src->last_lookup_ok;
		dst->resolved = src->resolved;
	}
	for (unsigned k = 0; k < H2S_METHOD_BUCKETS; k++)
		for (const struct h2s_method_stats *m = src->method[k]; m; m = m->next) {
			struct h2s_method_stats *d = h2s_stats_method(dst, m->path);

			if (!d)
				return -ENOMEM;
			method_merge(d, m);
		}
	if (src->other) {
		if (!dst->other && !(dst->other = method_new(H2S_METHOD_OTHER)))
			return -ENOMEM;
		method_merge(dst->other, src->other);
	}
	return 0;
}

const char *h2s_abuse_name(enum h2s_abuse k)
{
	static const char *const names[H2S_ABUSE__COUNT] = {
		[H2S_ABUSE_SETTINGS] = "settings",
		[H2S_ABUSE_PING] = "ping",
		[H2S_ABUSE_WINDOW_UPDATE] = "window_update",
		[H2S_ABUSE_PRIORITY] = "priority",
		[H2S_ABUSE_EMPTY_DATA] = "empty_data",
		[H2S_ABUSE_UNKNOWN_FRAME] = "unknown_frame",
		[H2S_ABUSE_CLOSED_STREAM] = "closed_stream",
		[H2S_ABUSE_RAPID_RESET] = "rapid_reset",
		[H2S_ABUSE_MADE_YOU_RESET] = "made_you_reset",
		[H2S_ABUSE_PROTOCOL] = "protocol_error",
	};

	return (unsigned)k < H2S_ABUSE__COUNT ? names[k] : "?";
}

int h2s_stats_merge(struct h2s_stats *dst, const struct h2s_stats *src)
{
	struct h2s_svc_stats *s;
	struct h2s_pair_stats *p;
	struct h2s_be_stats *e;

	h2s_stats_each(s, src->svc)
	{
		struct h2s_svc_stats *d = h2s_stats_service(dst, &s->vip);

		if (!d || service_merge(d, s) < 0)
			return -ENOMEM;
	}
	h2s_stats_each(p, src->pair)
	{
		struct h2s_pair_stats *d = h2s_stats_pair(dst, &p->vip, &p->be);

		if (!d)
			return -ENOMEM;
		for (int c = 0; c < H2S_RPC__COUNT; c++)
			d->rpcs[c] += p->rpcs[c];
		d->spliced += p->spliced;
	}
	h2s_stats_each(e, src->be)
	{
		struct h2s_be_stats *d = h2s_stats_backend(dst, &e->addr);

		if (!d)
			return -ENOMEM;
		for (int k = 0; k < H2S_EJECT__COUNT; k++)
			d->ejections[k] += e->ejections[k];
		d->goaways += e->goaways;
		d->conns_opened += e->conns_opened;
		d->connect_failures += e->connect_failures;
		d->checks_ok += e->checks_ok;
		d->checks_failed += e->checks_failed;
		if (e->health_changed > d->health_changed) {
			d->health = e->health;
			d->health_changed = e->health_changed;
		}
		d->inflight += e->inflight;
		d->conns += e->conns;
		d->ejected |= e->ejected;
	}
	dst->conns_accepted += src->conns_accepted;
	dst->capture_misses += src->capture_misses;
	dst->conns_refused_total += src->conns_refused_total;
	dst->conns_refused_per_source += src->conns_refused_per_source;
	dst->accept_pauses += src->accept_pauses;
	dst->streams_total += src->streams_total;
	dst->streams_failed += src->streams_failed;
	dst->streams_live += src->streams_live;
	dst->retries += src->retries;
	dst->retries_denied += src->retries_denied;
	dst->retries_live += src->retries_live;
	dst->drains += src->drains;
	dst->splices_live += src->splices_live;
	dst->client_hdrs_too_large += src->client_hdrs_too_large;
	dst->backend_hdrs_too_large += src->backend_hdrs_too_large;
	dst->client_handshake_timeouts += src->client_handshake_timeouts;
	dst->client_idle_closed += src->client_idle_closed;
	dst->client_frame_timeouts += src->client_frame_timeouts;
	dst->backend_pings += src->backend_pings;
	dst->backend_ping_timeouts += src->backend_ping_timeouts;
	dst->try_timeouts += src->try_timeouts;
	dst->try_deadlines += src->try_deadlines;
	dst->ejections_spared += src->ejections_spared;
	for (int k = 0; k < H2S_ABUSE__COUNT; k++)
		dst->client_abuse[k] += src->client_abuse[k];
	dst->buffered += src->buffered;
	dst->mem_refused_conn += src->mem_refused_conn;
	dst->mem_refused_total += src->mem_refused_total;
	dst->mem_resets += src->mem_resets;
	dst->mem_upload_waits += src->mem_upload_waits;
	dst->clients_stalled += src->clients_stalled;
	dst->malloc_trims += src->malloc_trims;
	return 0;
}
