/* resolver_dns.c — a service's backends from DNS, through c-ares (dns.c):
 *
 *   NAME            A and AAAA records; every address on the configured port (the VIP's port
 *                   by default), e.g. a Kubernetes headless Service name
 *   _SVC._PROTO.N   SRV records: targets, ports and weights (lowest priority only, RFC 2782);
 *                   targets resolved to A/AAAA
 *
 * Re-resolved at the smallest TTL of the answer (at least 1 s, at most dns_ttl_cap_ms). Failed
 * lookups are retried after 1, 2, then every 4 s; the last good set stays meanwhile
 * (h2s_resolver_failed()).
 */
#include "addr.h"
#include "discovery.h"
#include "plane.h"
#include "dns.h"
#include "log.h"
#include "resolver.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TTL_FLOOR_MS 1000
/* Failed lookups are retried at 1, 2, 4, 4... s: a name that comes back is seen soon. */
#define RETRY_MAX_MS 4000

struct dns_res {
	struct h2s_resolver *r; /* NULL once stopped: then freed by the last pending callback */
	struct h2s_dns *dns;
	struct h2s_timer timer;
	int pending;		/* c-ares callbacks still to come */
	bool srv;
	__u16 port;		/* network order, for A/AAAA answers */
	uint64_t retry_ms;	/* back-off while failing */
	/* An SRV lookup in progress: its targets' addresses are gathered here. */
	struct h2s_endpoint *acc;
	size_t nacc, cap;
	long min_ttl;
	int targets_pending;
};

struct srv_target {
	struct dns_res *dr;
	__u16 port; /* network order */
	__u32 weight;
};

static void lookup(struct dns_res *dr);

static void maybe_free(struct dns_res *dr)
{
	if (!dr->r && dr->pending == 0) {
		free(dr->acc);
		free(dr);
	}
}

static void schedule(struct dns_res *dr, uint64_t delay_ms)
{
	h2s_timer_arm(&dr->r->src->p->loop, &dr->timer, delay_ms);
}

static void succeeded(struct dns_res *dr, long min_ttl_s)
{
	uint64_t cap = dr->r->src->p->set.dns_ttl_cap_ms;
	uint64_t delay = min_ttl_s > 0 ? (uint64_t)min_ttl_s * 1000 : 0;

	h2s_resolver_publish(dr->r, dr->acc, dr->nacc);
	dr->nacc = 0;
	dr->retry_ms = 0;
	schedule(dr, delay < TTL_FLOOR_MS ? TTL_FLOOR_MS : delay > cap ? cap : delay);
}

static void failed(struct dns_res *dr, const char *why)
{
	dr->nacc = 0;
	h2s_resolver_failed(dr->r, why);
	dr->retry_ms = dr->retry_ms ? dr->retry_ms * 2 : TTL_FLOOR_MS;
	if (dr->retry_ms > RETRY_MAX_MS)
		dr->retry_ms = RETRY_MAX_MS;
	schedule(dr, dr->retry_ms);
}

static int add(struct dns_res *dr, const struct sockaddr *sa, __u16 port, __u32 weight)
{
	struct h2s_endpoint e = { .weight = weight };

	if (h2s_addr_from_sockaddr(sa, &e.addr) < 0)
		return 0; /* not IPv4/IPv6: ignored */
	e.addr.port = port;
	if (dr->nacc == dr->cap) {
		size_t cap = dr->cap ? dr->cap * 2 : 16;
		void *p = realloc(dr->acc, cap * sizeof(*dr->acc));

		if (!p)
			return -ENOMEM;
		dr->acc = p;
		dr->cap = cap;
	}
	dr->acc[dr->nacc++] = e;
	return 0;
}

/* Fold one getaddrinfo answer in; returns the smallest TTL seen (or keeps ttl). */
static long gather(struct dns_res *dr, const struct ares_addrinfo *ai, __u16 port, __u32 weight,
		   long ttl)
{
	for (const struct ares_addrinfo_node *n = ai->nodes; n; n = n->ai_next) {
		if (add(dr, n->ai_addr, port, weight) < 0)
			break;
		if (ttl < 0 || n->ai_ttl < ttl)
			ttl = n->ai_ttl;
	}
	return ttl;
}

static void addrinfo_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct dns_res *dr = arg;

	(void)timeouts;
	dr->pending--;
	if (!dr->r) {
		if (ai)
			ares_freeaddrinfo(ai);
		maybe_free(dr);
		return;
	}
	if (status == ARES_SUCCESS && ai && ai->nodes) {
		long ttl = gather(dr, ai, dr->port, 1, -1);

		succeeded(dr, ttl);
	} else {
		failed(dr, status == ARES_SUCCESS ? "empty answer" : ares_strerror(status));
	}
	if (ai)
		ares_freeaddrinfo(ai);
}

/* Once every SRV target has answered (targets_pending holds one extra count while they are
 * being started, since c-ares may answer some at once, e.g. numeric targets).
 */
static void targets_settled(struct dns_res *dr)
{
	if (dr->targets_pending)
		return;
	if (dr->nacc)
		succeeded(dr, dr->min_ttl);
	else
		failed(dr, "no SRV target resolved to an address");
}

static void target_done(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct srv_target *t = arg;
	struct dns_res *dr = t->dr;

	(void)timeouts;
	dr->pending--;
	dr->targets_pending--;
	if (dr->r && status == ARES_SUCCESS && ai)
		dr->min_ttl = gather(dr, ai, t->port, t->weight, dr->min_ttl);
	if (ai)
		ares_freeaddrinfo(ai);
	free(t);
	if (!dr->r) {
		maybe_free(dr);
		return;
	}
	targets_settled(dr);
}

static void srv_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_res *dr = arg;
	struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC };
	struct ares_srv_reply *srv = NULL;
	unsigned short best = 0xffff;

	(void)timeouts;
	dr->pending--;
	if (!dr->r) {
		maybe_free(dr);
		return;
	}
	if (status == ARES_SUCCESS)
		status = ares_parse_srv_reply(abuf, alen, &srv);
	if (status != ARES_SUCCESS || !srv) {
		failed(dr, status == ARES_SUCCESS ? "no SRV records" : ares_strerror(status));
		return;
	}
	dr->min_ttl = h2s_dns_min_ttl(abuf, alen, ns_t_srv);
	dr->nacc = 0;
	dr->targets_pending = 1; /* held until every target query is started */
	for (struct ares_srv_reply *s = srv; s; s = s->next)
		if (s->priority < best)
			best = s->priority;
	for (struct ares_srv_reply *s = srv; s; s = s->next) {
		struct srv_target *t;

		if (s->priority != best)
			continue; /* only the most preferred group (RFC 2782) */
		t = calloc(1, sizeof(*t));
		if (!t)
			break;
		*t = (struct srv_target){ .dr = dr, .port = h2s_htons(s->port),
					  .weight = s->weight ? s->weight : 1 };
		if (t->weight > H2S_WEIGHT_MAX)
			t->weight = H2S_WEIGHT_MAX;
		dr->pending++;
		dr->targets_pending++;
		ares_getaddrinfo(h2s_dns_channel(dr->dns), s->host, NULL, &hints, target_done, t);
	}
	ares_free_data(srv);
	dr->targets_pending--;
	targets_settled(dr);
	h2s_dns_kick(dr->dns);
}

static void lookup(struct dns_res *dr)
{
	struct ares_addrinfo_hints hints = { .ai_family = AF_UNSPEC };

	dr->pending++;
	if (dr->srv)
		ares_query(h2s_dns_channel(dr->dns), dr->r->cfg.name, ns_c_in, ns_t_srv, srv_done, dr);
	else
		ares_getaddrinfo(h2s_dns_channel(dr->dns), dr->r->cfg.name, NULL, &hints,
				 addrinfo_done, dr);
	h2s_dns_kick(dr->dns);
}

static void on_timer(struct h2s_timer *t)
{
	lookup(h2s_container_of(t, struct dns_res, timer));
}

static int dns_start(struct h2s_resolver *r, char *err, size_t errlen)
{
	struct dns_res *dr;
	struct h2s_dns *dns = h2s_dns_get(r->src, err, errlen);

	if (!dns)
		return -EIO;
	if (!r->cfg.name[0]) {
		snprintf(err, errlen, "no name to resolve");
		return -EINVAL;
	}
	dr = calloc(1, sizeof(*dr));
	if (!dr)
		return -ENOMEM;
	dr->r = r;
	dr->dns = dns;
	dr->timer.fire = on_timer;
	dr->srv = r->cfg.name[0] == '_';
	dr->port = r->cfg.port ? r->cfg.port : r->vip.port;
	r->impl = dr;
	lookup(dr);
	return 0;
}

static void dns_stop(struct h2s_resolver *r)
{
	struct dns_res *dr = r->impl;

	if (!dr)
		return;
	h2s_timer_cancel(&r->src->p->loop, &dr->timer);
	dr->r = NULL; /* callbacks still pending see this and free it */
	r->impl = NULL;
	maybe_free(dr);
}

const struct h2s_resolver_ops h2s_resolver_dns_ops = {
	.source = H2S_SRC_DNS,
	.start = dns_start,
	.stop = dns_stop,
};
